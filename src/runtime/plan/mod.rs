//! The runtime plan: a validated [`Config`] turned into the list of sinks to run, each with
//! fully resolved, typed settings, and what the collectors must sample for them.
//!
//! This file drives the resolution (which sinks, in which order, and the one list of the
//! sinks a child profiler may be, `SINKS`); the generic field resolver is `resolver.rs`, the
//! parameters a sink samples with `sampling.rs`, the merge for the collectors
//! `collectors.rs`, and each sink's own settings are resolved in its app's folder
//! (`apps/<app>/settings.rs`).
//!
//! Resolution follows `docs/profilingfile.md` §13:
//!
//! - `profiling` propagates its parameters to each child. A child's own
//!   `parameters.profile_types` replaces the inherited list wholesale; each rate the child
//!   leaves unset is inherited.
//! - Omitted `profile_types`: each app's `DEFAULT_PROFILE_TYPES`: pyroscope
//!   [`pyroscope::DEFAULT_PROFILE_TYPES`] (`cpu`, `heap`, `allocs`: the Go agent's cpu,
//!   inuse_objects/inuse_space and alloc_objects/alloc_space), profefe
//!   [`profefe::DEFAULT_PROFILE_TYPES`] (`cpu`), the file sink [`file::DEFAULT_PROFILE_TYPES`]
//!   (`cpu`, `heap`: memory without writing the same allocation sample twice).
//! - `cpu_profile_rate` unset or 0 means [`DEFAULT_CPU_HZ`]. `block_profile_rate` /
//!   `mutex_profile_fraction` unset or 0 mean those profiles carry no samples: one warning
//!   lists every sink that enables the type anyway.
//! - Every other unset field takes the default of its app's field table
//!   ([`FieldSpec::default`]); `application_name` / `service` unset: the executable's file
//!   name ([`PlanOptions::executable_name`]). An unset profefe `address` or pyroscope
//!   `server_address` is said in a warning.
//! - Runtime placeholders `{env.NAME}` in any string, URL or duration are replaced from
//!   [`PlanOptions::env`], in one pass (a value is never expanded again). An unset variable is
//!   an error naming the variable and the JSON path. Other `{…}` text is kept as written (with
//!   a warning, except in secrets). Then URLs and durations are checked with the loader's
//!   rules.
//! - Secrets (fields marked secret in their table) are held in [`Secret`], which prints as
//!   `[redacted]`; no error or warning quotes them.
//! - Pyroscope auth: basic auth when `basic_auth_user` and `basic_auth_password` are both set
//!   (and it wins over `auth_token`, as in the Go agent, with a warning), else a bearer
//!   `auth_token`, else none. Only one of the basic auth pair is an error.
//! - `threadcreate` is dropped from pyroscope sinks (the Go agent does not support it either),
//!   with one warning. `disable_gc_runs` is accepted and has no effect (Rust has no garbage
//!   collector), with a warning.
//!
//! ```
//! use caddyprof::runtime::plan::{Plan, PlanOptions, PyroscopeSettings};
//!
//! let config = caddyprof::Config::from_json(
//!     r#"{"apps": {"pyroscope": {"server_address": "{env.URL}", "upload_rate": "10s"}}}"#,
//! )?;
//! let options = PlanOptions {
//!     env: Box::new(|name| (name == "URL").then(|| "http://pyroscope:4040".to_owned())),
//!     executable_name: "api".into(),
//! };
//! let planned = Plan::resolve(&config, &options)?;
//! let sink = planned.plan.sinks[0].as_any().downcast_ref::<PyroscopeSettings>().unwrap();
//! assert_eq!(sink.server_url.as_str(), "http://pyroscope:4040/");
//! assert_eq!(sink.application_name, "api");
//! assert_eq!(planned.plan.collectors.cpu_hz, Some(100));
//! # Ok::<(), caddyprof::Error>(())
//! ```

mod collectors;
pub(crate) mod resolver;
pub(crate) mod sampling;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::apps::{ChildProfiler, FileSink, ProfefeApp, PyroscopeApp};
use crate::config::Config;
use crate::diagnostic::{Diagnostic, Error};
use crate::fields::Parameters;
use crate::runtime::sink::{ResolveChild, ResolveSink, SinkSettings, child_sink};
#[cfg(doc)]
use crate::{
    apps::{file, profefe, pyroscope},
    fields::{FieldSpec, parameters::DEFAULT_CPU_HZ},
};
pub use resolver::{PlanOptions, executable_name};
use resolver::{Refusals, Resolver};

pub use crate::apps::file::settings::FileSettings;
pub use crate::apps::profefe::settings::ProfefeSettings;
pub use crate::apps::pyroscope::settings::{Auth, PyroscopeSettings};
pub use crate::redact::Secret;
pub use collectors::Collectors;
pub use sampling::Sampling;

/// Above this many sinks in one configuration, resolving it warns: each sink uploads every
/// profile on its own, and sinks that differ (in window length, profile types or rates) also
/// collect and build their own profiles. Measured on a 2-core machine (docs/benchmarks.md, "Many
/// profilers"): 1,000 alike profilers took 30 MiB and 4 % of a core; 1,000 that differ,
/// 94 MiB and a third of a core, and could not all send their last window at the stop.
pub const MANY_PROFILERS: usize = 100;

/// The whole runtime plan.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The sinks, in configuration order: the profiling app's children, then the standalone
    /// pyroscope app, then the standalone profefe app.
    pub sinks: Vec<Arc<dyn SinkSettings>>,
    /// What the collectors must sample for them.
    pub collectors: Collectors,
}

/// A resolved plan and the warnings found on the way (log each once).
#[derive(Clone, Debug)]
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// Warnings (never errors), in the order found.
    pub warnings: Vec<Diagnostic>,
}

/// What [`Plan::check`] finds: what running the config would warn about and refuse.
#[derive(Clone, Debug)]
pub struct Checked {
    /// Every warning of [`Plan::resolve`] and, as warnings, its errors, in the order found.
    pub warnings: Vec<Diagnostic>,
    /// Whether [`Plan::resolve`] fails (its errors are among the warnings).
    pub would_fail: bool,
}

impl Plan {
    /// Resolves `config` into a plan: inheritance, defaults, placeholders and validation.
    /// Every problem is reported (the error holds them all); nothing is produced on error.
    pub fn resolve(config: &Config, options: &PlanOptions) -> Result<Planned, Error> {
        let mut r = Resolver::new(options, Refusals::Errors);
        let mut sinks = Vec::new();
        r.sinks(config, |sink| sinks.push(sink));
        if !r.errors.is_empty() {
            return Err(r.errors.into());
        }
        let collectors = Collectors::merge(&sinks);
        Ok(Planned {
            plan: Plan { sinks, collectors },
            warnings: r.warnings,
        })
    }

    /// What [`resolve`](Self::resolve) would say of `config`, without failing: each of its
    /// errors (an `{env.NAME}` whose variable is unset, …) becomes a warning with the same
    /// message that says `caddyprof run` would stop there. For `caddyprof validate`, which
    /// checks a config for an environment it may not run in.
    ///
    /// ```
    /// use caddyprof::runtime::plan::{Plan, PlanOptions};
    ///
    /// let config = caddyprof::Config::from_json(
    ///     r#"{"apps": {"pyroscope": {"server_address": "http://p:4040", "auth_token": "{env.TOKEN}"}}}"#,
    /// )?;
    /// let options = PlanOptions { env: Box::new(|_| None), executable_name: "api".into() };
    /// let checked = Plan::check(&config, &options);
    /// assert!(checked.would_fail);
    /// assert_eq!(
    ///     checked.warnings[0].message(),
    ///     "apps.pyroscope.auth_token: environment variable TOKEN is not set"
    /// );
    /// assert!(!checked.warnings[0].is_error());
    /// # Ok::<(), caddyprof::Error>(())
    /// ```
    pub fn check(config: &Config, options: &PlanOptions) -> Checked {
        let mut r = Resolver::new(options, Refusals::Warnings);
        // The sinks are not kept: a large config's would take as much memory again.
        r.sinks(config, drop);
        Checked {
            would_fail: r.refused() > 0,
            warnings: r.warnings,
        }
    }
}

/// The sinks a child profiler of `profiling` may be: the runtime's one list of them (a new
/// sink adds its line here, and one to `apps::profiling::CHILDREN`).
const SINKS: &[ResolveChild] = &[
    child_sink::<PyroscopeApp>,
    child_sink::<ProfefeApp>,
    child_sink::<FileSink>,
];

/// Resolves a child profiler of `profiling` into its sink's settings.
fn resolve_child(
    r: &mut Resolver,
    child: &ChildProfiler,
    inherited: Option<&Parameters>,
    path: String,
) -> Option<Arc<dyn SinkSettings>> {
    let resolved = SINKS
        .iter()
        .find_map(|resolve| resolve(r, child, inherited, &path));
    debug_assert!(resolved.is_some(), "{}: no sink in SINKS", child.name());
    resolved.flatten()
}

impl Resolver<'_> {
    /// Resolves the sinks of `config`, handing each to `sink`, then says the warnings said
    /// once for all of them.
    fn sinks(&mut self, config: &Config, mut sink: impl FnMut(Arc<dyn SinkSettings>)) {
        // How many sinks, and the path of the first beyond [`MANY_PROFILERS`].
        let mut count = 0;
        let mut beyond = None;
        let mut sink = |settings: Arc<dyn SinkSettings>| {
            count += 1;
            if count == MANY_PROFILERS + 1 {
                beyond = Some(settings.path().to_owned());
            }
            sink(settings);
        };
        if let Some(app) = &config.profiling {
            for (i, child) in app.profilers.iter().enumerate() {
                let path = format!("apps.profiling.profilers[{i}]");
                let inherited = Some(&app.parameters);
                resolve_child(self, child, inherited, path).map(&mut sink);
            }
        }
        let pyroscope = config
            .pyroscope
            .as_ref()
            .and_then(|app| app.resolve(self, None, "apps.pyroscope".into()));
        if let Some(settings) = pyroscope {
            sink(Arc::new(settings));
        }
        let profefe = config
            .profefe
            .as_ref()
            .and_then(|app| app.resolve(self, None, "apps.profefe".into()));
        if let Some(settings) = profefe {
            sink(Arc::new(settings));
        }
        if let Some(path) = beyond {
            self.warnings.push(
                Diagnostic::warning(format!(
                    "{path}: {count} profilers in one process, more than {MANY_PROFILERS}: \
                     each uploads every profile on its own, and those that differ in \
                     upload_rate, interval, profile types or rates also collect and build \
                     their own (1,000 that differ took 94 MiB and a third of a CPU core here, \
                     and could not all send their last window at the stop)"
                ))
                .help(
                    "profile with one profiler per server, or give the profilers the same \
                     upload_rate and parameters so that they share one collection (1,000 alike \
                     took 30 MiB and 4 % of a core); see docs/runtime.md, \"Many profilers\"",
                ),
            );
        }
        self.summary_warnings();
    }
}
