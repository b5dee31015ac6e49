//! An HTTP sink: what makes a server's upload request of a profile ([`RequestTarget`]), and
//! the sink that queues those requests on an [`Uploader`].

use std::time::Duration;

use super::{Connections, UploadRequest, UploadStats, Uploader, UploaderOptions};
use crate::runtime::Profile;

/// Why a profile is not sent to a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotSent {
    /// It has no samples, and the server refuses empty profiles (profefe).
    Empty,
    /// The server takes no profiles of its type (`threadcreate` to Pyroscope).
    Unsupported,
    /// It cannot be sent as it is (a malformed profile: a bug worth reporting).
    Invalid(String),
}

/// What [`HttpSink::submit`] did with a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Queued for upload.
    Queued,
    /// Not sent, and why.
    Skipped(NotSent),
    /// Not sent: the sink is stopping.
    Closed,
}

/// What makes an upload request of a profile, for one kind of server.
pub trait RequestTarget: Sized {
    /// The resolved settings the target is made from.
    type Settings;
    /// The sink's name in logs (`pyroscope`).
    const NAME: &'static str;
    /// The target of `settings`; the error names the bad field (never a secret's value).
    fn new(settings: &Self::Settings) -> Result<Self, String>;
    /// The request for `profile`, or why it is not sent.
    fn request(&self, profile: &Profile) -> Result<UploadRequest, NotSent>;
}

/// A running HTTP sink: a [`RequestTarget`] and its [`Uploader`].
pub struct HttpSink<T> {
    target: T,
    uploader: Uploader,
}

impl<T: RequestTarget> HttpSink<T> {
    /// Starts the sink of `settings` on the current Tokio runtime, with `options` for its
    /// queue, sending over `connections`.
    pub fn start(
        settings: &T::Settings,
        options: UploaderOptions,
        connections: &Connections,
    ) -> Result<Self, String> {
        let target = T::new(settings)?;
        let uploader = Uploader::start(options, connections);
        Ok(HttpSink { target, uploader })
    }

    /// The request target.
    pub fn target(&self) -> &T {
        &self.target
    }

    /// Queues `profile` for upload without blocking, unless the target does not send it or
    /// the sink is stopping.
    pub fn submit(&self, profile: &Profile) -> Submitted {
        match self.target.request(profile) {
            Ok(request) => {
                if self.uploader.push(request) {
                    Submitted::Queued
                } else {
                    Submitted::Closed
                }
            }
            Err(reason) => {
                tracing::debug!(
                    "{}: {} profile not uploaded: {reason:?}",
                    T::NAME,
                    profile.profile_type
                );
                Submitted::Skipped(reason)
            }
        }
    }

    /// The upload counters.
    pub fn stats(&self) -> UploadStats {
        self.uploader.stats()
    }

    /// Stops with a best-effort flush, within `deadline` (see [`Uploader::stop`]).
    pub async fn stop(&self, deadline: Duration) -> UploadStats {
        self.uploader.stop(deadline).await
    }
}
