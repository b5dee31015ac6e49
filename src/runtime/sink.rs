//! The interface between the host and the sinks: each app that receives profiles (pyroscope,
//! profefe, file) resolves its config into [`SinkSettings`] and starts a [`Sink`] from them,
//! in its own folder (`apps/<app>/settings.rs` and `sink.rs`). The host calls these two
//! traits only: it does not know which sinks exist. The runtime's one list of them is
//! `SINKS` in `runtime/plan/mod.rs` (the children of `profiling`), beside the standalone apps
//! of [`crate::Config`].

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::Profile;
use super::plan::resolver::Resolver;
use super::plan::sampling::Sampling;
use super::upload::{Connections, HttpSink, RequestTarget, Submitted, UploadStats};
use crate::apps::ChildProfiler;
use crate::apps::child::ChildConfig;
use crate::fields::Parameters;

/// A sink's config resolved into its settings; each sink implements it in its `settings.rs`.
pub(crate) trait ResolveSink: ChildConfig {
    /// What it resolves into.
    type Settings: SinkSettings;

    /// Resolves the config (standalone, or a child of `profiling` inheriting its parameters)
    /// at `path`; `None` when anything is refused.
    fn resolve(
        &self,
        r: &mut Resolver,
        inherited: Option<&Parameters>,
        path: String,
    ) -> Option<Self::Settings>;
}

/// How a child profiler of one kind becomes a sink: `None` when the child is of another kind,
/// else its settings (`None` when anything is refused). `runtime/plan/mod.rs` lists one,
/// [`child_sink`], for each kind.
pub(crate) type ResolveChild = fn(
    &mut Resolver,
    &ChildProfiler,
    Option<&Parameters>,
    &str,
) -> Option<Option<Arc<dyn SinkSettings>>>;

/// The [`ResolveChild`] of the children whose config is a `T`.
pub(crate) fn child_sink<T: ResolveSink>(
    r: &mut Resolver,
    child: &ChildProfiler,
    inherited: Option<&Parameters>,
    path: &str,
) -> Option<Option<Arc<dyn SinkSettings>>> {
    let config = child.get::<T>()?;
    // A refused child is still this kind's: `Some(None)`.
    Some(
        config
            .resolve(r, inherited, path.to_owned())
            .map(|settings| Arc::new(settings) as Arc<dyn SinkSettings>),
    )
}

/// A future a [`Sink`] returns, boxed so that sinks can be called through `dyn Sink`.
pub type SinkFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A sink's resolved settings: what the host needs to know to run it.
pub trait SinkSettings: fmt::Debug + Send + Sync + 'static {
    /// The JSON path of its configuration (`apps.pyroscope`, `apps.profiling.profilers[0]`),
    /// to name it in logs and reports.
    fn path(&self) -> &str;

    /// What it samples.
    fn sampling(&self) -> &Sampling;

    /// The length of its windows: how often it gets a profile of each type.
    fn window(&self) -> Duration;

    /// Whether it gets cumulative block, mutex and heap profiles (since the start, not per
    /// window), as profefe's Go module sends them.
    fn cumulative(&self) -> bool {
        false
    }

    /// Starts the sink, inside the host's Tokio runtime, uploading (if it does) over
    /// `connections`. The error says why it cannot start.
    fn start(&self, connections: &Connections) -> Result<Box<dyn Sink>, String>;

    /// The settings as `Any`, to look at those of one kind of sink (in tests, or an embedder's
    /// checks): `settings.as_any().downcast_ref::<PyroscopeSettings>()`.
    fn as_any(&self) -> &dyn Any;
}

/// What a sink did with a profile handed to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Handed to its upload queue (or refused by it, or skipped, with why).
    Submitted(Submitted),
    /// Written to these files.
    Written(Vec<PathBuf>),
    /// Not delivered: what went wrong (said in the sink's log and report).
    Failed(String),
}

/// A started sink: where the host hands each of its profiles.
pub trait Sink: Send + Sync {
    /// Hands `profile` over: queued for upload, or written.
    fn deliver(&self, profile: Profile) -> SinkFuture<'_, Delivery>;

    /// Stops, flushing what it can within `left`; the upload counters of a sink that
    /// uploads.
    fn stop(&self, left: Duration) -> SinkFuture<'_, Option<UploadStats>>;
}

/// Every HTTP sink is a sink: it queues what it is handed.
impl<T: RequestTarget + Send + Sync> Sink for HttpSink<T> {
    fn deliver(&self, profile: Profile) -> SinkFuture<'_, Delivery> {
        let submitted = self.submit(&profile);
        Box::pin(std::future::ready(Delivery::Submitted(submitted)))
    }

    fn stop(&self, left: Duration) -> SinkFuture<'_, Option<UploadStats>> {
        Box::pin(async move { Some(HttpSink::stop(self, left).await) })
    }
}
