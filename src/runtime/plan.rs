//! The runtime plan: a validated [`Config`] turned into the list of sinks to run, each with
//! fully resolved, typed settings, and what the collectors must sample for them.
//!
//! Resolution follows `profilingfile.md` §3:
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
//! - Secrets (`auth_token`, `basic_auth_password`) are held in [`Secret`], which prints as
//!   `[redacted]`; no error or warning quotes them.
//! - Pyroscope auth: basic auth when `basic_auth_user` and `basic_auth_password` are both set
//!   (and it wins over `auth_token`, as in the Go agent, with a warning), else a bearer
//!   `auth_token`, else none. Only one of the basic auth pair is an error.
//! - `threadcreate` is dropped from pyroscope sinks (the Go agent does not support it either),
//!   with one warning. `disable_gc_runs` is accepted and has no effect (Rust has no garbage
//!   collector), with a warning.
//!
//! ```
//! use caddyprof::runtime::plan::{Plan, PlanOptions, SinkSettings};
//!
//! let config = caddyprof::Config::from_json(
//!     r#"{"apps": {"pyroscope": {"server_address": "{env.URL}", "upload_rate": "10s"}}}"#,
//! )?;
//! let options = PlanOptions {
//!     env: Box::new(|name| (name == "URL").then(|| "http://pyroscope:4040".to_owned())),
//!     executable_name: "api".into(),
//! };
//! let planned = Plan::resolve(&config, &options)?;
//! let SinkSettings::Pyroscope(sink) = &planned.plan.sinks[0] else { unreachable!() };
//! assert_eq!(sink.server_url.as_str(), "http://pyroscope:4040/");
//! assert_eq!(sink.application_name, "api");
//! assert_eq!(planned.plan.collectors.cpu_hz, Some(100));
//! # Ok::<(), caddyprof::Error>(())
//! ```

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::EnvFn;
use crate::apps::{ChildProfiler, FileSink, ProfefeApp, PyroscopeApp, file, profefe, pyroscope};
use crate::config::Config;
use crate::config::duration::DURATION_HELP;
use crate::diagnostic::{Diagnostic, Error};
use crate::fields::parameters::DEFAULT_CPU_HZ;
use crate::fields::{self, FieldSpec, Parameters, ProfileType, URL_HELP};

/// Above this many sinks in one configuration, resolving it warns: each sink uploads every
/// profile on its own, and sinks that differ (in window length, profile types or rates) also
/// collect and build their own profiles. Measured on a 2-core machine (README, "Many
/// profilers"): 1,000 alike profilers took 30 MiB and 4 % of a core; 1,000 that differ,
/// 94 MiB and a third of a core, and could not all send their last window at the stop.
pub const MANY_PROFILERS: usize = 100;

/// A secret value (a token or password): its `Debug` and `Display` print `[redacted]`. Use
/// [`Secret::expose`] only where the value is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, to put in a request header. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::redact::REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::redact::REDACTED)
    }
}

/// How a pyroscope sink authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// No authentication.
    None,
    /// HTTP basic auth.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: Secret,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
}

/// What one sink samples: its enabled profile types and rates, defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sampling {
    /// The enabled profile types, without duplicates, in [`ProfileType::ALL`] order.
    pub profile_types: Vec<ProfileType>,
    /// CPU samples per second (never 0).
    pub cpu_hz: u64,
    /// Go semantics: one sampled event per this many nanoseconds blocked; 0 = no samples.
    pub block_rate: u64,
    /// Go semantics: 1/N of contention events are sampled; 0 = no samples.
    pub mutex_fraction: u64,
}

impl Sampling {
    /// Whether `profile_type` is enabled.
    pub fn has(&self, profile_type: ProfileType) -> bool {
        self.profile_types.contains(&profile_type)
    }
}

/// A resolved pyroscope sink. Its `Debug` shows the server without userinfo.
#[derive(Clone, PartialEq)]
pub struct PyroscopeSettings {
    /// The JSON path of its configuration (`apps.pyroscope`, `apps.profiling.profilers[0]`),
    /// to name it in logs.
    pub path: String,
    /// The application name.
    pub application_name: String,
    /// The server.
    pub server_url: Url,
    /// The authentication.
    pub auth: Auth,
    /// The tenant (`X-Scope-OrgID`), if any.
    pub tenant_id: Option<String>,
    /// How often profiles are uploaded (positive).
    pub upload_rate: Duration,
    /// What to sample (never `threadcreate`).
    pub sampling: Sampling,
}

/// A resolved profefe sink. Its `Debug` shows the address without userinfo.
#[derive(Clone, PartialEq)]
pub struct ProfefeSettings {
    /// The JSON path of its configuration.
    pub path: String,
    /// The collector.
    pub address: Url,
    /// The service name.
    pub service: String,
    /// The per-request timeout: the default of [`profefe::TIMEOUT`] when unset, `None` (no timeout)
    /// when configured as 0.
    pub timeout: Option<Duration>,
    /// How often profiles are uploaded: [`profefe::UPLOAD_RATE`] (profefe has no setting).
    pub upload_rate: Duration,
    /// What to sample.
    pub sampling: Sampling,
}

impl fmt::Debug for PyroscopeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let PyroscopeSettings {
            path,
            application_name,
            server_url,
            auth,
            tenant_id,
            upload_rate,
            sampling,
        } = self;
        f.debug_struct("PyroscopeSettings")
            .field("path", path)
            .field("application_name", application_name)
            .field("server_url", &crate::redact::url(server_url.as_str()))
            .field("auth", auth)
            .field("tenant_id", tenant_id)
            .field("upload_rate", upload_rate)
            .field("sampling", sampling)
            .finish()
    }
}

impl fmt::Debug for ProfefeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ProfefeSettings {
            path,
            address,
            service,
            timeout,
            upload_rate,
            sampling,
        } = self;
        f.debug_struct("ProfefeSettings")
            .field("path", path)
            .field("address", &crate::redact::url(address.as_str()))
            .field("service", service)
            .field("timeout", timeout)
            .field("upload_rate", upload_rate)
            .field("sampling", sampling)
            .finish()
    }
}

/// A resolved file sink (a caddyprof extension).
#[derive(Clone, Debug, PartialEq)]
pub struct FileSettings {
    /// The JSON path of its configuration.
    pub path: String,
    /// The directory the profiles are written into (created when needed).
    pub directory: PathBuf,
    /// How often a profile of each type is written (positive).
    pub interval: Duration,
    /// How many files of each profile type are kept (at least 1).
    pub keep: usize,
    /// Whether an SVG flame graph of each CPU window is written too.
    pub flamegraph: bool,
    /// What to sample.
    pub sampling: Sampling,
}

/// One sink to run.
#[derive(Clone, Debug, PartialEq)]
pub enum SinkSettings {
    /// Push to a Pyroscope server.
    Pyroscope(PyroscopeSettings),
    /// Push to a profefe collector.
    Profefe(ProfefeSettings),
    /// Write to a local directory.
    File(FileSettings),
}

impl SinkSettings {
    /// What this sink samples.
    pub fn sampling(&self) -> &Sampling {
        match self {
            SinkSettings::Pyroscope(s) => &s.sampling,
            SinkSettings::Profefe(s) => &s.sampling,
            SinkSettings::File(s) => &s.sampling,
        }
    }

    /// The JSON path of its configuration.
    pub fn path(&self) -> &str {
        match self {
            SinkSettings::Pyroscope(s) => &s.path,
            SinkSettings::Profefe(s) => &s.path,
            SinkSettings::File(s) => &s.path,
        }
    }
}

/// What the collectors must sample, across every sink.
///
/// `heap` and `allocs` come from one allocation sampler ([`Collectors::memory`]), so asking
/// for both never samples twice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Collectors {
    /// The highest CPU rate any sink with `cpu` asks for; `None` when no sink wants `cpu`.
    pub cpu_hz: Option<u64>,
    /// Whether any sink wants `heap` or `allocs`.
    pub memory: bool,
    /// Whether any sink wants `heap`.
    pub heap: bool,
    /// Whether any sink wants `allocs`.
    pub allocs: bool,
    /// Whether any sink wants `goroutine`.
    pub goroutine: bool,
    /// Whether any sink wants `threadcreate`.
    pub threadcreate: bool,
    /// Whether any sink wants `block`.
    pub block: bool,
    /// The finest (smallest non-zero) block rate among sinks with `block`; 0 = no samples.
    pub block_rate: u64,
    /// Whether any sink wants `mutex`.
    pub mutex: bool,
    /// The finest (smallest non-zero) mutex fraction among sinks with `mutex`; 0 = no samples.
    pub mutex_fraction: u64,
}

/// The whole runtime plan.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// The sinks, in configuration order: the profiling app's children, then the standalone
    /// pyroscope app, then the standalone profefe app.
    pub sinks: Vec<SinkSettings>,
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

/// Where resolution takes what is not in the configuration.
pub struct PlanOptions {
    /// Where `{env.NAME}` values come from: a name to its value, `None` when unset (the
    /// process environment by default).
    pub env: Box<EnvFn>,
    /// The default application name and profefe service: the executable's file name without
    /// extension by default (`caddyprof` if it cannot be found).
    pub executable_name: String,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            env: Box::new(crate::syntax::env::process_env),
            executable_name: executable_name(),
        }
    }
}

/// The running executable's file name without extension, or `caddyprof`.
pub fn executable_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|path| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "caddyprof".to_owned())
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
        let collectors = collectors(&sinks);
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
            warnings: r.warnings,
            would_fail: r.refused > 0,
        }
    }
}

impl<'a> Resolver<'a> {
    fn new(options: &'a PlanOptions, refusals: Refusals) -> Self {
        Resolver {
            options,
            refusals,
            refused: 0,
            errors: Vec::new(),
            warnings: Vec::new(),
            no_block_samples: Vec::new(),
            no_mutex_samples: Vec::new(),
            threadcreate_dropped: Vec::new(),
        }
    }

    /// Resolves the sinks of `config`, handing each to `sink`, then says the warnings said
    /// once for all of them.
    fn sinks(&mut self, config: &Config, mut sink: impl FnMut(SinkSettings)) {
        // How many sinks, and the path of the first beyond [`MANY_PROFILERS`].
        let mut count = 0;
        let mut beyond = None;
        let mut sink = |settings: SinkSettings| {
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
                let resolved = match child {
                    ChildProfiler::Pyroscope(p) => self.pyroscope(p, inherited, path),
                    ChildProfiler::Profefe(p) => self.profefe(p, inherited, path),
                    ChildProfiler::File(f) => self.file(f, inherited, path),
                };
                resolved.map(&mut sink);
            }
        }
        if let Some(app) = &config.pyroscope {
            self.pyroscope(app, None, "apps.pyroscope".into())
                .map(&mut sink);
        }
        if let Some(app) = &config.profefe {
            self.profefe(app, None, "apps.profefe".into())
                .map(&mut sink);
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
                     took 30 MiB and 4 % of a core); see the README, \"Many profilers\"",
                ),
            );
        }
        self.summary_warnings();
    }
}

/// Merges what the sinks ask for.
fn collectors(sinks: &[SinkSettings]) -> Collectors {
    let mut c = Collectors::default();
    let finest = |current: u64, rate: u64| match (current, rate) {
        (0, rate) => rate,
        (current, 0) => current,
        (current, rate) => current.min(rate),
    };
    for sink in sinks {
        let s = sink.sampling();
        for &t in &s.profile_types {
            match t {
                ProfileType::Cpu => c.cpu_hz = Some(c.cpu_hz.unwrap_or(0).max(s.cpu_hz)),
                ProfileType::Heap => c.heap = true,
                ProfileType::Allocs => c.allocs = true,
                ProfileType::Goroutine => c.goroutine = true,
                ProfileType::ThreadCreate => c.threadcreate = true,
                ProfileType::Block => {
                    c.block = true;
                    c.block_rate = finest(c.block_rate, s.block_rate);
                }
                ProfileType::Mutex => {
                    c.mutex = true;
                    c.mutex_fraction = finest(c.mutex_fraction, s.mutex_fraction);
                }
            }
        }
    }
    c.memory = c.heap || c.allocs;
    c
}

/// How the resolver reports what stops the config from running.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refusals {
    /// As errors ([`Plan::resolve`]).
    Errors,
    /// As warnings that say so ([`Plan::check`]).
    Warnings,
}

struct Resolver<'a> {
    options: &'a PlanOptions,
    refusals: Refusals,
    /// How many problems found stop the config from running.
    refused: usize,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    no_block_samples: Vec<String>,
    no_mutex_samples: Vec<String>,
    threadcreate_dropped: Vec<String>,
}

impl Resolver<'_> {
    fn pyroscope(
        &mut self,
        app: &PyroscopeApp,
        inherited: Option<&Parameters>,
        path: String,
    ) -> Option<SinkSettings> {
        let refused_before = self.refused;
        if app.server_address.is_none() {
            self.warnings.push(
                Diagnostic::warning(format!(
                    "{path}.server_address: not set: sending to {}",
                    pyroscope::SERVER_ADDRESS.default.unwrap_or_default()
                ))
                .help("set the Pyroscope server's address, such as http://pyroscope:4040"),
            );
        }
        let application_name = self
            .string(&app.application_name, &path, &pyroscope::APPLICATION_NAME)
            .unwrap_or_else(|| self.options.executable_name.clone());
        let server_url = self.url(&app.server_address, &path, &pyroscope::SERVER_ADDRESS);
        let token = self.string(&app.auth_token, &path, &pyroscope::AUTH_TOKEN);
        let user = self.string(&app.basic_auth_user, &path, &pyroscope::BASIC_AUTH_USER);
        let password = self.string(
            &app.basic_auth_password,
            &path,
            &pyroscope::BASIC_AUTH_PASSWORD,
        );
        let tenant_id = self.string(&app.tenant_id, &path, &pyroscope::TENANT_ID);
        let upload_rate = self
            .duration(&app.upload_rate, &path, &pyroscope::UPLOAD_RATE)
            .unwrap_or_default();
        let auth = match (user, password, token) {
            (Some(user), Some(password), token) => {
                if token.is_some() {
                    self.warnings.push(
                        Diagnostic::warning(format!(
                            "{path}.auth_token: ignored: basic auth is used when \
                             basic_auth_user and basic_auth_password are set"
                        ))
                        .help("keep either the token or the basic auth pair"),
                    );
                }
                Auth::Basic {
                    user,
                    password: Secret(password),
                }
            }
            (Some(_), None, _) => {
                self.error(
                    format!("{path}.basic_auth_user: basic_auth_password is not set"),
                    "set both basic_auth_user and basic_auth_password, or neither",
                );
                Auth::None
            }
            (None, Some(_), _) => {
                self.error(
                    format!("{path}.basic_auth_password: basic_auth_user is not set"),
                    "set both basic_auth_user and basic_auth_password, or neither",
                );
                Auth::None
            }
            (None, None, Some(token)) => Auth::Bearer(Secret(token)),
            (None, None, None) => Auth::None,
        };
        if app.disable_gc_runs.is_some() {
            self.warnings.push(
                Diagnostic::warning(format!(
                    "{path}.disable_gc_runs: has no effect: Rust has no garbage collector to run \
                     before heap profiles"
                ))
                .help("remove it; it is accepted for compatibility with the Go module"),
            );
        }
        let mut sampling = self.sampling(
            app.parameters.as_ref(),
            inherited,
            pyroscope::DEFAULT_PROFILE_TYPES,
            &path,
        );
        if sampling.has(ProfileType::ThreadCreate) {
            sampling
                .profile_types
                .retain(|&t| t != ProfileType::ThreadCreate);
            self.threadcreate_dropped.push(path.clone());
        }
        let server_url = server_url.filter(|_| self.refused == refused_before)?;
        Some(SinkSettings::Pyroscope(PyroscopeSettings {
            path,
            application_name,
            server_url,
            auth,
            tenant_id,
            upload_rate,
            sampling,
        }))
    }

    fn profefe(
        &mut self,
        app: &ProfefeApp,
        inherited: Option<&Parameters>,
        path: String,
    ) -> Option<SinkSettings> {
        let refused_before = self.refused;
        if app.address.is_none() {
            self.warnings.push(
                Diagnostic::warning(format!(
                    "{path}.address: not set: sending to {}",
                    profefe::ADDRESS.default.unwrap_or_default()
                ))
                .help("set the profefe collector's address, such as http://profefe:10100"),
            );
        }
        let address = self.url(&app.address, &path, &profefe::ADDRESS);
        let service = self
            .string(&app.service, &path, &profefe::SERVICE)
            .unwrap_or_else(|| self.options.executable_name.clone());
        // Unset: a default, so that a hung collector cannot hold the queue forever; 0: none.
        let timeout = self
            .duration(&app.timeout, &path, &profefe::TIMEOUT)
            .filter(|timeout| !timeout.is_zero());
        let sampling = self.sampling(
            app.parameters.as_ref(),
            inherited,
            profefe::DEFAULT_PROFILE_TYPES,
            &path,
        );
        let address = address.filter(|_| self.refused == refused_before)?;
        Some(SinkSettings::Profefe(ProfefeSettings {
            path,
            address,
            service,
            timeout,
            upload_rate: profefe::UPLOAD_RATE,
            sampling,
        }))
    }

    fn file(
        &mut self,
        sink: &FileSink,
        inherited: Option<&Parameters>,
        path: String,
    ) -> Option<SinkSettings> {
        let refused_before = self.refused;
        let directory = self
            .string(&sink.directory, &path, &file::DIRECTORY)
            .or_else(|| file::DIRECTORY.default.map(str::to_owned))
            .unwrap_or_default();
        let interval = self
            .duration(&sink.interval, &path, &file::INTERVAL)
            .unwrap_or_default();
        let keep = sink
            .keep
            .or_else(|| file::KEEP.default_count())
            .unwrap_or(1);
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        let sampling = self.sampling(
            sink.parameters.as_ref(),
            inherited,
            file::DEFAULT_PROFILE_TYPES,
            &path,
        );
        (self.refused == refused_before).then(|| {
            SinkSettings::File(FileSettings {
                path,
                directory: PathBuf::from(directory),
                interval,
                keep,
                flamegraph: sink.flamegraph.unwrap_or(false),
                sampling,
            })
        })
    }

    /// The sink's parameters over the inherited ones, with the defaults.
    fn sampling(
        &mut self,
        own: Option<&Parameters>,
        inherited: Option<&Parameters>,
        default_types: &[ProfileType],
        path: &str,
    ) -> Sampling {
        let pick = |get: fn(&Parameters) -> Option<u64>| {
            own.and_then(get).or_else(|| inherited.and_then(get))
        };
        let types = own
            .and_then(|p| p.profile_types.as_deref())
            .or_else(|| inherited.and_then(|p| p.profile_types.as_deref()))
            .unwrap_or(default_types);
        let profile_types: Vec<ProfileType> = ProfileType::ALL
            .into_iter()
            .filter(|t| types.contains(t))
            .collect();
        let sampling = Sampling {
            cpu_hz: pick(|p| p.cpu_profile_rate)
                .filter(|&hz| hz > 0)
                .unwrap_or(DEFAULT_CPU_HZ),
            block_rate: pick(|p| p.block_profile_rate).unwrap_or(0),
            mutex_fraction: pick(|p| p.mutex_profile_fraction).unwrap_or(0),
            profile_types,
        };
        if sampling.has(ProfileType::Block) && sampling.block_rate == 0 {
            self.no_block_samples.push(path.to_owned());
        }
        if sampling.has(ProfileType::Mutex) && sampling.mutex_fraction == 0 {
            self.no_mutex_samples.push(path.to_owned());
        }
        sampling
    }

    /// The warnings said once for the whole configuration.
    fn summary_warnings(&mut self) {
        let lists = [
            (
                std::mem::take(&mut self.no_block_samples),
                "block profiles will carry no samples: block_profile_rate is unset or 0",
                "set block_profile_rate (nanoseconds blocked per sampled event, e.g. 10000), \
                 or remove block from profile_types",
            ),
            (
                std::mem::take(&mut self.no_mutex_samples),
                "mutex profiles will carry no samples: mutex_profile_fraction is unset or 0",
                "set mutex_profile_fraction (1/N of contention events are sampled, e.g. 10), \
                 or remove mutex from profile_types",
            ),
            (
                std::mem::take(&mut self.threadcreate_dropped),
                "threadcreate is not supported by pyroscope (nor by its Go agent): not sent",
                "remove threadcreate from the pyroscope profile_types",
            ),
        ];
        for (paths, message, help) in lists {
            if !paths.is_empty() {
                self.warnings.push(
                    Diagnostic::warning(format!("{message} (in {})", paths.join(", "))).help(help),
                );
            }
        }
    }

    fn error(&mut self, message: String, help: &str) {
        self.refused += 1;
        match self.refusals {
            Refusals::Errors => self.errors.push(Diagnostic::error(message).help(help)),
            Refusals::Warnings => self
                .warnings
                .push(Diagnostic::warning(message).help(format!(
                    "{help}; until then, `caddyprof run` fails with this error"
                ))),
        }
    }

    /// A string field with its placeholders resolved; `None` when unset or on error.
    fn string(&mut self, value: &Option<String>, path: &str, field: &FieldSpec) -> Option<String> {
        let resolved = self.placeholders(value.as_deref()?, path, field)?;
        if resolved.is_empty() {
            self.error(
                format!(
                    "{path}.{}: empty after replacing its placeholders",
                    field.name
                ),
                "set the environment variable to a value, or leave the field out to use the \
                 default",
            );
            return None;
        }
        Some(resolved)
    }

    /// A URL field, resolved and checked; the field's default when unset; `None` on error.
    fn url(&mut self, value: &Option<String>, path: &str, field: &FieldSpec) -> Option<Url> {
        let text = match value {
            Some(_) => self.string(value, path, field)?,
            None => field.default?.to_owned(),
        };
        let checked = if fields::has_placeholder(&text) {
            // What is left is not an `{env.…}` placeholder: it cannot be a host.
            Err(format!(
                "invalid URL '{}': unresolved placeholder",
                crate::redact::url(&text)
            ))
        } else {
            fields::validate_url(&text)
        };
        match checked.and_then(|()| Url::parse(&text).map_err(|e| e.to_string())) {
            Ok(url) => Some(url),
            Err(reason) => {
                self.error(format!("{path}.{}: {reason}", field.name), URL_HELP);
                None
            }
        }
    }

    /// A duration field, resolved and checked against its bound (with the table's one
    /// message): the field's default when unset (zero when it has none), `None` on error.
    fn duration(
        &mut self,
        value: &Option<fields::Duration>,
        path: &str,
        field: &FieldSpec,
    ) -> Option<Duration> {
        let field_path = || format!("{path}.{}", field.name);
        let resolved = match value {
            None => return Some(field.default_duration().unwrap_or_default()),
            Some(fields::Duration::Placeholder(text)) => {
                let text = self.placeholders(text, path, field)?;
                match fields::Duration::parse(&text) {
                    Ok(fields::Duration::Placeholder(_)) => {
                        self.error(
                            format!("{}: invalid duration '{text}'", field_path()),
                            DURATION_HELP,
                        );
                        return None;
                    }
                    Ok(duration) => duration,
                    Err(reason) => {
                        self.error(format!("{}: {reason}", field_path()), DURATION_HELP);
                        return None;
                    }
                }
            }
            Some(duration) => duration.clone(),
        };
        if let Some(refusal) = field.out_of_bounds(&resolved) {
            self.error(format!("{}: {}", field_path(), refusal.message), field.help);
            return None;
        }
        Some(resolved.to_std().unwrap_or_default())
    }

    /// Replaces each `{env.NAME}` in `text`, the value of `field` in the object at `path`.
    /// Errors name the variable and the path, never the value. Other `{…}` is kept as
    /// written, with a warning unless the field is secret.
    fn placeholders(&mut self, text: &str, path: &str, field: &FieldSpec) -> Option<String> {
        if !text.contains('{') {
            return Some(text.to_owned());
        }
        let field_path = format!("{path}.{}", field.name);
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut ok = true;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let name_len = after
                .find(|c: char| c == '{' || c == '}' || c.is_whitespace())
                .unwrap_or(after.len());
            if name_len == 0 || !after[name_len..].starts_with('}') {
                out.push('{');
                rest = after;
                continue;
            }
            let inner = &after[..name_len];
            rest = &after[name_len + 1..];
            match inner.strip_prefix("env.") {
                Some("") => {
                    ok = false;
                    self.error(
                        format!("{field_path}: {{env.}} names no environment variable"),
                        "write {env.NAME}",
                    );
                }
                Some(name) => match (self.options.env)(name) {
                    Some(value) => out.push_str(&value),
                    None => {
                        ok = false;
                        self.error(
                            format!("{field_path}: environment variable {name} is not set"),
                            &format!("set {name} in the environment of the process"),
                        );
                    }
                },
                None => {
                    if !field.secret {
                        self.warnings.push(
                            Diagnostic::warning(format!(
                                "{field_path}: {{{inner}}} is not a placeholder caddyprof knows; \
                                 kept as written"
                            ))
                            .help("only {env.NAME} placeholders are replaced"),
                        );
                    }
                    out.push('{');
                    out.push_str(inner);
                    out.push('}');
                }
            }
        }
        out.push_str(rest);
        ok.then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProfileType::*;

    fn options(vars: &[(&str, &str)]) -> PlanOptions {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PlanOptions {
            env: Box::new(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())),
            executable_name: "myexe".into(),
        }
    }

    fn resolve_with(apps: &str, vars: &[(&str, &str)]) -> Result<Planned, Error> {
        let config = Config::from_json(&format!(r#"{{"apps": {{{apps}}}}}"#))
            .unwrap_or_else(|e| panic!("{}", e.render_plain()));
        Plan::resolve(&config, &options(vars))
    }

    fn resolve(apps: &str) -> Planned {
        resolve_with(apps, &[]).unwrap_or_else(|e| panic!("{}", e.render_plain()))
    }

    fn errors(apps: &str, vars: &[(&str, &str)]) -> Vec<String> {
        let error = resolve_with(apps, vars).expect_err("should fail");
        error
            .diagnostics()
            .iter()
            .map(|d| d.message().to_owned())
            .collect()
    }

    fn warnings(planned: &Planned) -> Vec<&str> {
        planned.warnings.iter().map(Diagnostic::message).collect()
    }

    fn pyroscope(sink: &SinkSettings) -> &PyroscopeSettings {
        match sink {
            SinkSettings::Pyroscope(s) => s,
            other => panic!("not pyroscope: {other:?}"),
        }
    }

    fn profefe(sink: &SinkSettings) -> &ProfefeSettings {
        match sink {
            SinkSettings::Profefe(s) => s,
            other => panic!("not profefe: {other:?}"),
        }
    }

    fn file(sink: &SinkSettings) -> &FileSettings {
        match sink {
            SinkSettings::File(s) => s,
            other => panic!("not file: {other:?}"),
        }
    }

    #[test]
    fn children_inherit_rates_and_replace_types_wholesale() {
        let planned = resolve(
            r#""profiling": {"cpu_profile_rate": 250, "block_profile_rate": 7,
                "mutex_profile_fraction": 5, "profile_types": ["cpu", "goroutine", "block"],
                "profilers": [
                    {"profiler": "pyroscope"},
                    {"profiler": "pyroscope", "parameters": {"profile_types": ["heap"], "cpu_profile_rate": 50}},
                    {"profiler": "profefe", "parameters": {"block_profile_rate": 9}},
                    {"profiler": "file", "parameters": {}}
                ]}"#,
        );
        let sinks = &planned.plan.sinks;
        assert_eq!(sinks.len(), 4);
        let inherited = Sampling {
            profile_types: vec![Cpu, Goroutine, Block],
            cpu_hz: 250,
            block_rate: 7,
            mutex_fraction: 5,
        };
        assert_eq!(sinks[0].sampling(), &inherited);
        assert_eq!(
            sinks[1].sampling(),
            &Sampling {
                profile_types: vec![Heap],
                cpu_hz: 50,
                ..inherited.clone()
            }
        );
        assert_eq!(
            sinks[2].sampling(),
            &Sampling {
                block_rate: 9,
                ..inherited.clone()
            }
        );
        assert_eq!(sinks[3].sampling(), &inherited);
        assert_eq!(sinks[2].path(), "apps.profiling.profilers[2]");
    }

    #[test]
    fn more_than_many_profilers_is_a_warning() {
        let children = |n: usize| {
            let child = r#"{"profiler": "file", "directory": "/tmp/p"}"#;
            format!(
                r#""profiling": {{"profilers": [{}]}}"#,
                vec![child; n].join(",")
            )
        };
        let many = |planned: &Planned| -> Vec<String> {
            warnings(planned)
                .into_iter()
                .filter(|w| w.contains("profilers in one process"))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(many(&resolve(&children(MANY_PROFILERS))), [] as [String; 0]);
        let planned = resolve(&children(MANY_PROFILERS + 1));
        assert_eq!(planned.plan.sinks.len(), MANY_PROFILERS + 1);
        let said = many(&planned);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with(&format!(
                "apps.profiling.profilers[{MANY_PROFILERS}]: {} profilers in one process, \
                 more than {MANY_PROFILERS}",
                MANY_PROFILERS + 1
            )),
            "{said:?}"
        );
        // The top-level apps count too.
        let planned = resolve(&format!(
            r#"{}, "pyroscope": {{"server_address": "http://p:4040"}}"#,
            children(MANY_PROFILERS)
        ));
        assert!(many(&planned)[0].starts_with("apps.pyroscope: 101 profilers"));
    }

    #[test]
    fn default_profile_types_per_sink() {
        let planned = resolve(
            r#""profiling": {"profilers": [{"profiler": "pyroscope"}, {"profiler": "profefe"},
                {"profiler": "file"}]}"#,
        );
        let types: Vec<&[ProfileType]> = planned
            .plan
            .sinks
            .iter()
            .map(|s| s.sampling().profile_types.as_slice())
            .collect();
        assert_eq!(types, [&[Cpu, Heap, Allocs][..], &[Cpu], &[Cpu, Heap]]);
        // The profiling app's list applies when the child has none of its own.
        let planned = resolve(
            r#""profiling": {"profile_types": ["mutex"], "mutex_profile_fraction": 3,
                "profilers": [{"profiler": "pyroscope"}]}"#,
        );
        assert_eq!(planned.plan.sinks[0].sampling().profile_types, [Mutex]);
    }

    #[test]
    fn types_are_deduplicated_in_canonical_order() {
        let planned =
            resolve(r#""profefe": {"parameters": {"profile_types": ["heap", "cpu", "heap"]}}"#);
        assert_eq!(planned.plan.sinks[0].sampling().profile_types, [Cpu, Heap]);
    }

    #[test]
    fn rate_defaults() {
        let planned = resolve(
            r#""pyroscope": {"parameters": {"cpu_profile_rate": 0}},
               "profefe": {"parameters": {"cpu_profile_rate": 0, "block_profile_rate": 0}}"#,
        );
        for sink in &planned.plan.sinks {
            assert_eq!(sink.sampling().cpu_hz, DEFAULT_CPU_HZ);
            assert_eq!(sink.sampling().block_rate, 0);
            assert_eq!(sink.sampling().mutex_fraction, 0);
        }
        // Block/mutex not enabled: no warning about their rates.
        assert!(warnings(&planned).iter().all(|w| !w.contains("no samples")));
    }

    #[test]
    fn pyroscope_defaults() {
        let planned = resolve(r#""pyroscope": {}"#);
        let sink = pyroscope(&planned.plan.sinks[0]);
        assert_eq!(sink.path, "apps.pyroscope");
        assert_eq!(sink.application_name, "myexe");
        assert_eq!(sink.server_url.as_str(), "http://localhost:4040/");
        assert_eq!(sink.auth, Auth::None);
        assert_eq!(sink.tenant_id, None);
        assert_eq!(sink.upload_rate, Duration::from_secs(15));
        assert_eq!(sink.sampling.cpu_hz, 100);
        assert_eq!(
            warnings(&planned),
            ["apps.pyroscope.server_address: not set: sending to http://localhost:4040"]
        );
    }

    #[test]
    fn pyroscope_fields() {
        let planned = resolve(
            r#""pyroscope": {"application_name": "shop", "server_address": "https://p.example/x",
                "tenant_id": "t1", "upload_rate": "1m", "basic_auth_user": "u",
                "basic_auth_password": "pw"}"#,
        );
        let sink = pyroscope(&planned.plan.sinks[0]);
        assert_eq!(sink.application_name, "shop");
        assert_eq!(sink.server_url.as_str(), "https://p.example/x");
        assert_eq!(sink.tenant_id.as_deref(), Some("t1"));
        assert_eq!(sink.upload_rate, Duration::from_secs(60));
        let Auth::Basic { user, password } = &sink.auth else {
            panic!("expected basic auth: {:?}", sink.auth);
        };
        assert_eq!((user.as_str(), password.expose()), ("u", "pw"));
        assert!(planned.warnings.is_empty(), "{:?}", planned.warnings);
    }

    #[test]
    fn auth_choices() {
        let planned = resolve(r#""pyroscope": {"auth_token": "tok"}"#);
        assert_eq!(
            pyroscope(&planned.plan.sinks[0]).auth,
            Auth::Bearer(Secret::new("tok"))
        );
        // Basic auth wins over a token, as in the Go agent, with a warning.
        let planned = resolve(
            r#""pyroscope": {"server_address": "http://p", "auth_token": "tok",
               "basic_auth_user": "u", "basic_auth_password": "pw"}"#,
        );
        assert!(matches!(
            pyroscope(&planned.plan.sinks[0]).auth,
            Auth::Basic { .. }
        ));
        assert!(warnings(&planned)[0].contains("auth_token: ignored"));
        // Half a pair is an error.
        assert_eq!(
            errors(r#""pyroscope": {"basic_auth_user": "u"}"#, &[]),
            ["apps.pyroscope.basic_auth_user: basic_auth_password is not set"]
        );
        assert_eq!(
            errors(r#""pyroscope": {"basic_auth_password": "hunter2"}"#, &[]),
            ["apps.pyroscope.basic_auth_password: basic_auth_user is not set"]
        );
    }

    #[test]
    fn profefe_defaults_and_timeout() {
        let planned = resolve(r#""profefe": {}"#);
        let sink = profefe(&planned.plan.sinks[0]);
        assert_eq!(sink.address.as_str(), "http://localhost:10100/");
        assert_eq!(sink.service, "myexe");
        assert_eq!(sink.timeout, Some(Duration::from_secs(30)));
        assert_eq!(sink.upload_rate, profefe::UPLOAD_RATE);
        assert_eq!(
            warnings(&planned),
            ["apps.profefe.address: not set: sending to http://localhost:10100"]
        );

        let planned = resolve(r#""profefe": {"address": "http://c:1", "timeout": "0"}"#);
        assert_eq!(profefe(&planned.plan.sinks[0]).timeout, None);
        assert!(planned.warnings.is_empty());
        let planned = resolve(r#""profefe": {"address": "http://c:1", "timeout": "1.5s"}"#);
        assert_eq!(
            profefe(&planned.plan.sinks[0]).timeout,
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn file_defaults_and_fields() {
        let planned = resolve(r#""profiling": {"profilers": [{"profiler": "file"}]}"#);
        let sink = file(&planned.plan.sinks[0]);
        assert_eq!(sink.directory, PathBuf::from("./profiles"));
        assert_eq!(sink.interval, Duration::from_secs(15));
        assert_eq!(sink.keep, 20);
        let planned = resolve(
            r#""profiling": {"profilers": [{"profiler": "file", "directory": "/var/p",
                "interval": "2s", "keep": 3}]}"#,
        );
        let sink = file(&planned.plan.sinks[0]);
        assert_eq!(sink.directory, PathBuf::from("/var/p"));
        assert_eq!(sink.interval, Duration::from_secs(2));
        assert_eq!(sink.keep, 3);
    }

    #[test]
    fn placeholders_are_resolved_everywhere() {
        let vars = [
            ("NAME", "shop"),
            ("HOST", "pyro.internal"),
            ("RATE", "30s"),
            ("TOKEN", "s3cret"),
            ("TENANT", "team-a"),
            ("DIR", "/data"),
            ("TIMEOUT", "0"),
        ];
        let planned = resolve_with(
            r#""profiling": {"profilers": [{"profiler": "file", "directory": "{env.DIR}/prof",
                   "interval": "{env.RATE}"}]},
               "pyroscope": {"application_name": "{env.NAME}-{env.NAME}",
                 "server_address": "http://{env.HOST}:4040", "auth_token": "{env.TOKEN}",
                 "tenant_id": "{env.TENANT}", "upload_rate": "{env.RATE}"},
               "profefe": {"address": "http://{env.HOST}", "service": "{env.NAME}",
                 "timeout": "{env.TIMEOUT}"}"#,
            &vars,
        )
        .unwrap();
        let sinks = &planned.plan.sinks;
        let f = file(&sinks[0]);
        assert_eq!(f.directory, PathBuf::from("/data/prof"));
        assert_eq!(f.interval, Duration::from_secs(30));
        let p = pyroscope(&sinks[1]);
        assert_eq!(p.application_name, "shop-shop");
        assert_eq!(p.server_url.as_str(), "http://pyro.internal:4040/");
        assert_eq!(p.auth, Auth::Bearer(Secret::new("s3cret")));
        assert_eq!(p.tenant_id.as_deref(), Some("team-a"));
        assert_eq!(p.upload_rate, Duration::from_secs(30));
        let q = profefe(&sinks[2]);
        assert_eq!(q.address.as_str(), "http://pyro.internal/");
        assert_eq!(q.service, "shop");
        assert_eq!(q.timeout, None);
    }

    #[test]
    fn unset_variables_are_errors_naming_variable_and_path() {
        assert_eq!(
            errors(
                r#""pyroscope": {"auth_token": "{env.PYROSCOPE_AUTH_TOKEN}",
                   "server_address": "{env.URL}", "upload_rate": "{env.RATE}"},
                   "profefe": {"service": "{env.SVC}"}"#,
                &[]
            ),
            [
                "apps.pyroscope.server_address: environment variable URL is not set",
                "apps.pyroscope.auth_token: environment variable PYROSCOPE_AUTH_TOKEN is not set",
                "apps.pyroscope.upload_rate: environment variable RATE is not set",
                "apps.profefe.service: environment variable SVC is not set",
            ]
        );
        assert_eq!(
            errors(
                r#""profiling": {"profilers": [{"profiler": "file", "directory": "{env.D}"}]}"#,
                &[]
            ),
            ["apps.profiling.profilers[0].directory: environment variable D is not set"]
        );
    }

    #[test]
    fn resolved_values_are_validated() {
        let apps = r#""pyroscope": {"server_address": "{env.URL}", "upload_rate": "{env.RATE}"},
                      "profefe": {"address": "http://x", "timeout": "{env.T}"}"#;
        let errors = errors(
            apps,
            &[("URL", "localhost:4040"), ("RATE", "0s"), ("T", "-1s")],
        );
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("apps.pyroscope.server_address: invalid URL"));
        assert!(errors[1].starts_with("apps.pyroscope.upload_rate: must be greater than zero"));
        assert!(errors[2].starts_with("apps.profefe.timeout: must not be negative"));
        let errors = self::errors(
            r#""pyroscope": {"upload_rate": "{env.RATE}", "application_name": "{env.N}"}"#,
            &[("RATE", "10 s"), ("N", "")],
        );
        assert!(errors[0].contains("application_name: empty"), "{errors:?}");
        assert!(
            errors[1].contains("upload_rate: unknown unit"),
            "{errors:?}"
        );
        assert!(
            self::errors(
                r#""pyroscope": {"upload_rate": "{env.R}"}"#,
                &[("R", "{x}")]
            )[0]
            .contains("invalid duration '{x}'")
        );
    }

    #[test]
    fn values_are_not_expanded_twice_and_unknown_placeholders_are_kept() {
        let planned = resolve_with(
            r#""profefe": {"address": "http://x", "service": "{env.A}{system.hostname}"}"#,
            &[("A", "{env.B}")],
        )
        .unwrap();
        assert_eq!(
            profefe(&planned.plan.sinks[0]).service,
            "{env.B}{system.hostname}"
        );
        assert_eq!(
            warnings(&planned),
            [
                "apps.profefe.service: {system.hostname} is not a placeholder caddyprof knows; \
                 kept as written"
            ]
        );
        assert!(
            errors(r#""profefe": {"service": "{env.}"}"#, &[])[0]
                .contains("names no environment variable")
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
        let planned = resolve_with(
            r#""pyroscope": {"server_address": "http://p", "auth_token": "{env.T}"},
               "profiling": {"profilers": [{"profiler": "pyroscope", "server_address": "http://p",
                 "basic_auth_user": "u",
                 "basic_auth_password": "pw-{x}-hunter2"}]}"#,
            &[("T", "tok-hunter2")],
        )
        .unwrap();
        let debug = format!("{:?}", planned.plan);
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("[redacted]"));
        // A secret's unknown `{…}` is not quoted in a warning.
        assert!(planned.warnings.is_empty(), "{:?}", planned.warnings);
        // Errors about secret fields never show their value.
        let error = resolve_with(
            r#""pyroscope": {"basic_auth_password": "hunter2", "auth_token": "{env.NOPE}"}"#,
            &[],
        )
        .unwrap_err();
        let all = format!("{error} {} {error:?}", error.render_plain());
        assert!(all.contains("NOPE is not set"), "{all}");
        assert!(!all.contains("hunter2"), "{all}");
    }

    /// `check` says what `resolve` says, errors included (as warnings, with the same
    /// messages, in the order found), and whether `resolve` fails.
    #[test]
    fn check_says_what_resolve_refuses_as_warnings() {
        let apps = r#""pyroscope": {"server_address": "{env.URL}", "auth_token": "{env.T}",
                        "disable_gc_runs": true},
                      "profefe": {"address": "http://x", "timeout": "{env.TIMEOUT}"}"#;
        let config = Config::from_json(&format!(r#"{{"apps": {{{apps}}}}}"#)).unwrap();
        let checked = Plan::check(&config, &options(&[("TIMEOUT", "soon")]));
        assert!(checked.would_fail);
        let messages: Vec<&str> = checked.warnings.iter().map(Diagnostic::message).collect();
        assert_eq!(
            messages,
            [
                "apps.pyroscope.server_address: environment variable URL is not set",
                "apps.pyroscope.auth_token: environment variable T is not set",
                "apps.pyroscope.disable_gc_runs: has no effect: Rust has no garbage collector \
                 to run before heap profiles",
                "apps.profefe.timeout: invalid duration 'soon': expected a number",
            ]
        );
        assert!(checked.warnings.iter().all(|w| !w.is_error()));
        let errors = errors(apps, &[("TIMEOUT", "soon")]);
        assert_eq!(errors.len(), 3);
        for error in &errors {
            assert!(messages.contains(&error.as_str()), "{error}");
        }
        assert!(checked.warnings[1].help_text().unwrap().starts_with(
            "set T in the environment of the process; until then, `caddyprof run` fails"
        ));

        // Resolved, it is what `resolve` warns about.
        let vars = [("URL", "http://p"), ("T", "t"), ("TIMEOUT", "5s")];
        let checked = Plan::check(&config, &options(&vars));
        assert!(!checked.would_fail);
        let planned = resolve_with(apps, &vars).unwrap();
        let messages: Vec<&str> = checked.warnings.iter().map(Diagnostic::message).collect();
        assert_eq!(messages, warnings(&planned));
    }

    #[test]
    fn warnings_said_once() {
        let planned = resolve(
            r#""profiling": {"profile_types": ["block", "mutex", "threadcreate"], "profilers": [
                   {"profiler": "pyroscope", "server_address": "http://p", "disable_gc_runs": true},
                   {"profiler": "pyroscope", "server_address": "http://p",
                    "parameters": {"block_profile_rate": 5}},
                   {"profiler": "file"}]}"#,
        );
        assert_eq!(
            warnings(&planned),
            [
                "apps.profiling.profilers[0].disable_gc_runs: has no effect: Rust has no garbage \
                 collector to run before heap profiles",
                "block profiles will carry no samples: block_profile_rate is unset or 0 (in \
                 apps.profiling.profilers[0], apps.profiling.profilers[2])",
                "mutex profiles will carry no samples: mutex_profile_fraction is unset or 0 (in \
                 apps.profiling.profilers[0], apps.profiling.profilers[1], \
                 apps.profiling.profilers[2])",
                "threadcreate is not supported by pyroscope (nor by its Go agent): not sent (in \
                 apps.profiling.profilers[0], apps.profiling.profilers[1])",
            ]
        );
        let sinks = &planned.plan.sinks;
        assert_eq!(sinks[0].sampling().profile_types, [Block, Mutex]);
        assert_eq!(
            sinks[2].sampling().profile_types,
            [ThreadCreate, Block, Mutex]
        );
    }

    #[test]
    fn collectors_merge_sinks() {
        let planned = resolve(
            r#""profiling": {"cpu_profile_rate": 50, "block_profile_rate": 100,
                "mutex_profile_fraction": 4, "profilers": [
                   {"profiler": "pyroscope", "parameters": {"profile_types": ["cpu", "heap", "allocs", "block"]}},
                   {"profiler": "profefe", "address": "http://x", "parameters": {"cpu_profile_rate": 400,
                     "block_profile_rate": 10, "profile_types": ["cpu", "block", "mutex", "goroutine"]}},
                   {"profiler": "file", "parameters": {"cpu_profile_rate": 999, "block_profile_rate": 0,
                     "profile_types": ["allocs", "block"]}}]}"#,
        );
        assert_eq!(
            planned.plan.collectors,
            Collectors {
                cpu_hz: Some(400),
                memory: true,
                heap: true,
                allocs: true,
                goroutine: true,
                threadcreate: false,
                block: true,
                block_rate: 10,
                mutex: true,
                mutex_fraction: 4,
            }
        );
        let planned = resolve(r#""profefe": {"parameters": {"profile_types": ["allocs"]}}"#);
        let c = &planned.plan.collectors;
        assert_eq!(
            (c.cpu_hz, c.memory, c.heap, c.allocs),
            (None, true, false, true)
        );
        assert_eq!(
            Plan::resolve(&Config::default(), &options(&[]))
                .unwrap()
                .plan,
            Plan::default()
        );
    }

    fn example(name: &str) -> Config {
        let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
        let adapted = crate::adapt_file(&path).unwrap();
        Config::from_json(&adapted.json.to_string()).unwrap()
    }

    #[test]
    fn seed_profiling_example() {
        let planned = Plan::resolve(&example("profiling.Profilingfile"), &options(&[])).unwrap();
        let all = Sampling {
            profile_types: vec![Cpu, Heap, Allocs, Goroutine],
            cpu_hz: 2,
            block_rate: 2,
            mutex_fraction: 2,
        };
        let sinks = &planned.plan.sinks;
        assert_eq!(sinks.len(), 3);
        let first = pyroscope(&sinks[0]);
        assert_eq!(first.server_url.as_str(), "http://localhost:4040/");
        assert_eq!(first.application_name, "myexe");
        assert_eq!(first.sampling, all);
        let second = pyroscope(&sinks[1]);
        assert_eq!(
            second.server_url.as_str(),
            "http://another-instance.local:4040/"
        );
        assert_eq!(
            second.sampling,
            Sampling {
                profile_types: vec![Heap],
                ..all.clone()
            }
        );
        let third = profefe(&sinks[2]);
        assert_eq!(third.address.as_str(), "http://localhost:10100/");
        assert_eq!(third.service, "myexe");
        assert_eq!(third.sampling, all);
        assert_eq!(
            warnings(&planned),
            ["apps.profiling.profilers[2].address: not set: sending to http://localhost:10100"]
        );
        assert_eq!(planned.plan.collectors.cpu_hz, Some(2));
    }

    #[test]
    fn seed_pyroscope_example() {
        let config = example("pyroscope.Profilingfile");
        assert_eq!(
            Plan::resolve(&config, &options(&[]))
                .unwrap_err()
                .to_string(),
            "apps.pyroscope.auth_token: environment variable PYROSCOPE_AUTH_TOKEN is not set"
        );
        let planned = Plan::resolve(&config, &options(&[("PYROSCOPE_AUTH_TOKEN", "tok")])).unwrap();
        let sink = pyroscope(&planned.plan.sinks[0]);
        assert_eq!(sink.application_name, "my_cool_app");
        assert_eq!(sink.server_url.as_str(), "http://localhost:4040/");
        assert_eq!(sink.auth, Auth::Bearer(Secret::new("tok")));
        assert_eq!(sink.upload_rate, profefe::UPLOAD_RATE);
        assert_eq!(sink.sampling.profile_types, [Cpu, Heap, Allocs, Goroutine]);
        assert_eq!(
            (
                sink.sampling.cpu_hz,
                sink.sampling.block_rate,
                sink.sampling.mutex_fraction
            ),
            (2, 2, 2)
        );
        assert!(planned.warnings.is_empty());
    }

    #[test]
    fn seed_profefe_example() {
        let planned = Plan::resolve(&example("profefe.Profilingfile"), &options(&[])).unwrap();
        let sink = profefe(&planned.plan.sinks[0]);
        assert_eq!(sink.address.as_str(), "http://localhost:4040/");
        assert_eq!(sink.service, "my_cool_app");
        assert_eq!(sink.timeout, Some(Duration::from_secs(600)));
        assert_eq!(sink.sampling.profile_types, [Cpu, Heap, Allocs, Goroutine]);
        assert!(planned.warnings.is_empty());
    }

    #[test]
    fn executable_name_is_not_empty() {
        assert!(!executable_name().is_empty());
        assert!(!PlanOptions::default().executable_name.is_empty());
    }
}
