//! The host: runs a resolved [`Plan`] inside the process. It owns a small Tokio runtime of its
//! own (so the host process needs none, and is never blocked by the network), starts every
//! sink in order (stopping those already started if one fails), all uploading over one
//! connection pool ([`Connections`]), and gives each group of sinks that share their
//! windows (the same length, the same profile types and rates) a task with two halves:
//!
//! - the **clock** ends each window on time: at the window's end it [cuts](Sources::cut) the
//!   raw data of every profile type the group wants (quick), queues it (at most
//!   [`PENDING_WINDOWS`]) and waits for the next end;
//! - the **builder** [builds](Cut::build) the queued windows in order, symbolizing and
//!   encoding them (one build at a time in the process), and hands each profile to every
//!   sink of the group.
//!
//! So a window's length never depends on what symbolizing costs (seconds of CPU in a debug
//! build), and a thousand profilers alike cost one profiler's collecting and building (each
//! still has its own upload queue). [`Running::stop`] ends the current window early, builds
//! what it can, makes a best-effort final flush and returns within [`STOP_DEADLINE`] with
//! every sink's report.
//!
//! Profile types: each group collects from its own [`Sources`] (`cpu` from the process-wide
//! sampler, every group getting the full data of its own windows; `block` and `mutex` from
//! the instrumented locks; `goroutine` and `threadcreate` from thread snapshots; `heap` and
//! `allocs` from the sampling allocator, one profile per window for a sink that wants either
//! or both, or one warning when the program has not installed it).

use std::mem::ManuallyDrop;
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Semaphore, mpsc as queue, watch};

use super::Profile;
use super::own_usage::{OwnMark, OwnUsage, log_own_usage};
use super::plan::{Plan, PlanOptions, Sampling};
use super::sink::{Delivery, Sink, SinkSettings};
use super::sources::{Cut, Sources};
use super::upload::{Connections, NotSent, STOP_DEADLINE, Submitted, UploadStats};
use super::windows::Windows;
use crate::allocator;
use crate::collect::cpu::{self, CpuError};
use crate::collect::{contention, fork};
use crate::config::Config;
use crate::diagnostic::{Diagnostic, Error};

/// The part of [`STOP_DEADLINE`] kept for the sinks' tasks to report once their own
/// deadline has passed.
const STOP_MARGIN: Duration = Duration::from_millis(300);

/// The part of a sink's stop deadline kept for its final flush: windows not built by then
/// are given up.
const FLUSH_SHARE: Duration = Duration::from_millis(400);

/// Windows a sink's clock may have cut ahead of its builder; beyond them a window is
/// dropped (counted, and said at most once a minute).
pub const PENDING_WINDOWS: usize = 8;

/// One window is built at a time in the process: builds share the process's symbolizer, and
/// blocking threads held waiting for it would keep clocks from cutting on time.
static BUILDING: Semaphore = Semaphore::const_new(1);

/// A running configuration. Dropping it without [`Running::stop`] stops it too, without
/// waiting.
///
/// In a child forked while it runs, the child's copy is inert: dropping or stopping it
/// returns at once, stops nothing (the threads are the parent's) and takes no lock (see
/// [`crate::collect::fork`]).
pub struct Running {
    /// Shared with the profiler's threads, through locks those threads may hold: never
    /// dropped in a forked child.
    threads: ManuallyDrop<Threads>,
    /// The process that started it.
    started_in: u32,
    /// The JSON paths of the sinks started, in order.
    sinks: Vec<String>,
    warnings: Vec<Diagnostic>,
    /// caddyprof's own allocations at the start (`None` without the sampling allocator).
    own_since: Option<OwnMark>,
}

/// The profiler's threads and the channels to them.
struct Threads {
    runtime: Option<tokio::runtime::Runtime>,
    /// `Some(deadline)` once stopping.
    stop: watch::Sender<Option<Instant>>,
    reports: mpsc::Receiver<SinkReport>,
}

/// The files a [`SinkReport`] names: the last ones written.
pub const LAST_FILES: usize = 8;

/// The kinds of errors a [`SinkReport`] keeps (the most recent), each with its count.
pub const ERROR_KINDS: usize = 8;

/// How often an error of one kind may be logged again: its first time is logged at once,
/// then at most one line per interval says how many more there were.
pub const ERROR_WARN_INTERVAL: Duration = Duration::from_secs(60);

/// What one sink did, reported when it stops. Its size does not grow with the time it ran:
/// it keeps counts, the last files written and one entry per kind of error.
#[derive(Clone, Debug, Default)]
pub struct SinkReport {
    /// The sink's JSON path (`apps.pyroscope`, `apps.profiling.profilers[1]`).
    pub path: String,
    /// Profiles handed to the sink.
    pub profiles: u64,
    /// For pyroscope and profefe: the uploader's counters.
    pub uploads: Option<UploadStats>,
    /// For the file sink: how many files were written (profiles and flame graphs).
    pub files_written: u64,
    /// For the file sink: the last files written, at most [`LAST_FILES`], oldest first.
    pub last_files: Vec<std::path::PathBuf>,
    /// Profiles not sent because they had no samples (the server refuses empty ones).
    pub skipped_empty: u64,
    /// Profiles not sent because the server takes no profiles of their type
    /// (`threadcreate` to Pyroscope).
    pub skipped_unsupported: u64,
    /// Windows cut but never built into profiles: the builder fell more than
    /// [`PENDING_WINDOWS`] behind, or the stop deadline came first.
    pub windows_lost: u64,
    /// Problems met (collection or writing errors), already logged: one entry per kind
    /// (messages that differ only in their numbers are one kind), in the order they were
    /// last met, the most recent [`ERROR_KINDS`] kinds.
    pub errors: Vec<RepeatedError>,
    /// What caddyprof's own work allocated from the start to the stop, process-wide (the
    /// same in every report of a stop, and said at info); `None` unless
    /// [`allocator::Sampled`] is the global allocator. Never part of the heap profiles.
    pub own_usage: Option<OwnUsage>,
}

/// One kind of error a sink met, and how often.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepeatedError {
    /// Its latest message.
    pub message: String,
    /// How many times it happened.
    pub count: u64,
}

impl std::fmt::Display for RepeatedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.count {
            1 => f.write_str(&self.message),
            n => write!(f, "{} ({n} times)", self.message),
        }
    }
}

impl SinkReport {
    /// Whether everything handed over was delivered: no failed, dropped or abandoned upload,
    /// no lost window and no error.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
            && self.windows_lost == 0
            && self
                .uploads
                .as_ref()
                .is_none_or(|u| u.failed + u.rejected + u.dropped + u.abandoned == 0)
    }
}

/// Starts `config` with the process environment for its `{env.*}` placeholders.
///
/// ```no_run
/// let config = caddyprof::Config::from_json(
///     r#"{"apps": {"profiling": {"profilers": [{"profiler": "file", "directory": "profiles"}]}}}"#,
/// )?;
/// let running = caddyprof::runtime::start(&config)?;
/// // … the host process does its work …
/// for sink in running.stop() {
///     println!("{}: {} profiles", sink.path, sink.profiles);
/// }
/// # Ok::<(), caddyprof::Error>(())
/// ```
pub fn start(config: &Config) -> Result<Running, Error> {
    start_with(config, &PlanOptions::default())
}

/// Starts a Profilingfile or JSON config file (see [`crate::load_config`]).
pub fn start_file(path: impl AsRef<Path>) -> Result<Running, Error> {
    let _own = allocator::own_work();
    let loaded = crate::load_config(path.as_ref(), None)?;
    let mut running = start(&loaded.config)?;
    let mut warnings = loaded.warnings;
    warnings.append(&mut running.warnings);
    running.warnings = warnings;
    Ok(running)
}

/// Starts `config`, resolving it with `options`.
pub fn start_with(config: &Config, options: &PlanOptions) -> Result<Running, Error> {
    let _own = allocator::own_work();
    let own_since = OwnMark::now();
    let planned = Plan::resolve(config, options)?;
    if fork::forked_after_start() {
        return Err(Diagnostic::error(
            "caddyprof cannot start in a process forked from one where it was started: its \
             collectors' state belongs to the parent's threads",
        )
        .help(
            "start it in each process after fork(), not in their parent (or exec a new \
             program in the child)",
        )
        .into());
    }
    fork::prepare();
    // One client, so one connection pool, for every sink (see `Connections`).
    let connections = Connections::new()
        .map_err(|e| Diagnostic::error(format!("cannot start the profiler's HTTP client: {e}")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        // Cutting windows, at most one build, file writes, name lookups: never all waiting.
        .max_blocking_threads(4)
        .thread_name("caddyprof")
        // Everything its threads allocate is caddyprof's own, never the program's profile.
        .on_thread_start(allocator::own_thread)
        .enable_all()
        .build()
        .map_err(|e| Diagnostic::error(format!("cannot start the profiler's threads: {e}")))?;
    let (stop, stopping) = watch::channel(None);
    let (report, reports) = mpsc::channel();
    let plan = planned.plan;
    if let Some(hz) = plan.collectors.cpu_hz {
        // Before any sink subscribes: the sampler's rate is fixed once it runs.
        let hz = u32::try_from(hz).unwrap_or(u32::MAX);
        match cpu::start(hz) {
            // Said by each sink that wants cpu: its source fails to open, and its report and
            // log say why (once).
            Ok(_) | Err(CpuError::Host(_)) => {}
            Err(e) => {
                return Err(Diagnostic::error(format!("cannot start CPU profiling: {e}")).into());
            }
        }
    }
    // The instrumented locks record only what some sink wants (0: nothing).
    contention::set_block_rate(plan.collectors.block_rate);
    contention::set_mutex_fraction(plan.collectors.mutex_fraction);
    let mut started = Vec::new();
    {
        let _context = runtime.enter();
        for settings in &plan.sinks {
            match settings.start(&connections) {
                Ok(sink) => started.push((settings.clone(), sink)),
                Err(message) => {
                    // The Go module forgets this: stop what was started before failing. (Not
                    // with `block_on`: the caller may be inside an async runtime.)
                    let deadline = Instant::now() + STOP_DEADLINE;
                    let (stopped, wait) = mpsc::channel();
                    let started = std::mem::take(&mut started);
                    runtime.spawn(async move {
                        for (_, sink) in &started {
                            stop_sink(&**sink, deadline).await;
                        }
                        let _ = stopped.send(());
                    });
                    let _ = wait.recv_timeout(STOP_DEADLINE + STOP_MARGIN);
                    runtime.shutdown_background();
                    return Err(Diagnostic::error(format!(
                        "{}: cannot start: {message}",
                        settings.path()
                    ))
                    .into());
                }
            }
        }
    }
    let sinks: Vec<String> = started.iter().map(|(s, _)| s.path().to_owned()).collect();
    for group in Group::of(started) {
        runtime.spawn(run_group(group, stopping.clone(), report.clone()));
    }
    if own_since.is_some() {
        runtime.spawn(log_own_usage());
    }
    tracing::info!(sinks = sinks.len(), "profiling started");
    Ok(Running {
        threads: ManuallyDrop::new(Threads {
            runtime: Some(runtime),
            stop,
            reports,
        }),
        started_in: std::process::id(),
        sinks,
        warnings: planned.warnings,
        own_since,
    })
}

impl Running {
    /// The warnings found when resolving the configuration (log them).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The JSON paths of the sinks started (`apps.profiling.profilers[0]`, `apps.pyroscope`),
    /// in the order of the configuration: [`stop`](Self::stop) returns one report for each,
    /// unless some miss its deadline. Compare the two to say which reports were lost.
    pub fn sinks(&self) -> &[String] {
        &self.sinks
    }

    /// Stops every sink: each cuts its last, partial window, builds what it can, flushes it
    /// on a best-effort basis and reports. Returns within [`STOP_DEADLINE`]; a sink that has
    /// not reported by then (an overloaded machine) is left out of the reports, with a
    /// warning that names it: compare the reports with [`sinks`](Self::sinks). Do not call
    /// it from an async task (it blocks the calling thread while it waits).
    ///
    /// In a child forked while it ran, returns at once with no report (see [`Running`]).
    pub fn stop(mut self) -> Vec<SinkReport> {
        if self.in_forked_child() {
            return Vec::new();
        }
        let _own = allocator::own_work();
        let end = Instant::now() + STOP_DEADLINE;
        self.threads.stop.send_replace(Some(end - STOP_MARGIN));
        let mut reports = Vec::with_capacity(self.sinks.len());
        while reports.len() < self.sinks.len() {
            let left = end.saturating_duration_since(Instant::now());
            match self.threads.reports.recv_timeout(left) {
                Ok(report) => reports.push(report),
                Err(_) => {
                    let missing = missing_reports(&self.sinks, &reports);
                    tracing::warn!(
                        missing = missing.len(),
                        "no report within the stop deadline from {}",
                        listed(&missing)
                    );
                    break;
                }
            }
        }
        if let Some(runtime) = self.threads.runtime.take() {
            runtime.shutdown_background();
        }
        stop_lock_events();
        tracing::info!("profiling stopped");
        let own_usage = self.own_since.map(|since| since.usage());
        if let Some(usage) = own_usage {
            tracing::info!("{usage}");
            for report in &mut reports {
                report.own_usage = Some(usage);
            }
        }
        reports
    }

    /// Whether this is a forked child's copy: the threads it would stop are not in this
    /// process, and the locks they share may have been held by them at the fork.
    fn in_forked_child(&self) -> bool {
        std::process::id() != self.started_in
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.in_forked_child() {
            // Leaked: dropping the runtime, the watch sender or the receiver takes locks.
            return;
        }
        let _own = allocator::own_work();
        self.threads.stop.send_replace(Some(Instant::now()));
        if let Some(runtime) = self.threads.runtime.take() {
            runtime.shutdown_background();
            stop_lock_events();
        }
        // SAFETY: dropped once, here, and never used again.
        unsafe { ManuallyDrop::drop(&mut self.threads) };
    }
}

/// The paths of `sinks` that have no report among `reports`, in order.
pub fn missing_reports<'a>(sinks: &'a [String], reports: &[SinkReport]) -> Vec<&'a str> {
    let reported: std::collections::HashSet<&str> =
        reports.iter().map(|r| r.path.as_str()).collect();
    sinks
        .iter()
        .map(String::as_str)
        .filter(|path| !reported.contains(path))
        .collect()
}

/// How many paths a message lists before saying how many more there are.
const LISTED_PATHS: usize = 10;

/// `paths` for a message: the first [`LISTED_PATHS`], then how many more.
fn listed(paths: &[&str]) -> String {
    let mut text = paths[..paths.len().min(LISTED_PATHS)].join(", ");
    if paths.len() > LISTED_PATHS {
        text.push_str(&format!(" and {} more", paths.len() - LISTED_PATHS));
    }
    text
}

/// Once stopped, the instrumented locks stop recording (their fast path never did).
fn stop_lock_events() {
    contention::set_block_rate(0);
    contention::set_mutex_fraction(0);
}

/// Hands `profile` to `sink`, counting what became of it in `report` and `problems`.
async fn deliver(
    sink: &dyn Sink,
    profile: Profile,
    report: &mut SinkReport,
    problems: &mut Problems,
) {
    report.profiles += 1;
    match sink.deliver(profile).await {
        Delivery::Submitted(Submitted::Queued | Submitted::Closed) => {}
        Delivery::Submitted(Submitted::Skipped(NotSent::Empty)) => report.skipped_empty += 1,
        Delivery::Submitted(Submitted::Skipped(NotSent::Unsupported)) => {
            report.skipped_unsupported += 1;
        }
        Delivery::Submitted(Submitted::Skipped(NotSent::Invalid(message))) => {
            problems.record(format!("profile not sent: {message}"));
        }
        Delivery::Written(paths) => {
            for path in paths {
                tracing::debug!(path = %path.display(), "profile written");
                report.files_written += 1;
                if report.last_files.len() == LAST_FILES {
                    report.last_files.remove(0);
                }
                report.last_files.push(path);
            }
        }
        Delivery::Failed(message) => problems.record(message),
    }
}

/// Stops `sink` (uploaders flush within what is left before `deadline`).
async fn stop_sink(sink: &dyn Sink, deadline: Instant) -> Option<UploadStats> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    sink.stop(left).await
}

/// Sinks that share their windows: the same window length and the same data to collect
/// (profile types and rates, and whether block, mutex and heap counts are cumulative). They
/// share one clock, one set of [`Sources`] and one build of each profile, which each of them
/// gets: a thousand profilers of one kind cost one profiler's collecting and building, and
/// each its own uploads.
struct Group {
    rate: Duration,
    sampling: Sampling,
    cumulative: bool,
    members: Vec<(String, Box<dyn Sink>)>,
}

impl Group {
    /// The groups of `sinks`, in the order of their first sinks.
    fn of(sinks: Vec<(Arc<dyn SinkSettings>, Box<dyn Sink>)>) -> Vec<Group> {
        let mut groups: Vec<Group> = Vec::new();
        for (settings, sink) in sinks {
            let rate = settings.window();
            let cumulative = settings.cumulative();
            let sampling = settings.sampling();
            let member = (settings.path().to_owned(), sink);
            match groups
                .iter_mut()
                .find(|g| g.rate == rate && g.cumulative == cumulative && g.sampling == *sampling)
            {
                Some(group) => group.members.push(member),
                None => groups.push(Group {
                    rate,
                    sampling: sampling.clone(),
                    cumulative,
                    members: vec![member],
                }),
            }
        }
        groups
    }

    /// The group's name in logs: its sink's path, or its first sink's and how many more.
    fn name(&self) -> String {
        match self.members.as_slice() {
            [(path, _)] => path.clone(),
            [(path, _), more @ ..] => {
                format!("{path} and {} more sinks with its windows", more.len())
            }
            [] => String::new(),
        }
    }
}

/// One sink of a group while it runs: what it delivers to, and what it has done.
struct Member {
    sink: Box<dyn Sink>,
    report: SinkReport,
    /// Its own problems (writing, sending); what collecting meets is the group's.
    problems: Problems,
}

/// One window of a group, cut and waiting to be built.
struct Window {
    cuts: Vec<Cut>,
    /// What cutting it met, to log and report.
    errors: Vec<String>,
}

/// Runs a group until stopped: its clock cuts each window on time, its builder builds them
/// and delivers each profile to every sink of the group (see the [module docs](self)); at
/// the stop, every sink's uploads stop at once and each sends its report to `reports`.
async fn run_group(
    group: Group,
    stopping: watch::Receiver<Option<Instant>>,
    reports: mpsc::Sender<SinkReport>,
) {
    let name = group.name();
    let mut problems = Problems::new(&name);
    let Group {
        rate,
        sampling,
        cumulative,
        members,
    } = group;
    let mut members: Vec<Member> = members
        .into_iter()
        .map(|(path, sink)| Member {
            sink,
            problems: Problems::new(&path),
            report: SinkReport {
                path,
                ..SinkReport::default()
            },
        })
        .collect();
    let path = name.clone();
    let opened =
        tokio::task::spawn_blocking(move || Sources::open(&path, &sampling, cumulative)).await;
    let sources = match opened {
        Ok((sources, errors)) => {
            for error in errors {
                problems.record(format!("cannot collect: {error}"));
            }
            Some(sources)
        }
        Err(e) => {
            problems.record(format!("cannot start collecting: {e}"));
            None
        }
    };
    let (pending, windows) = queue::channel(PENDING_WINDOWS);
    let clock = cut_windows(&name, sources, rate, stopping.clone(), pending);
    let builder = build_windows(&name, &mut members, windows, stopping, &mut problems);
    let ((deadline, dropped), given_up) = tokio::join!(clock, builder);
    let collecting = problems.into_errors();
    let mut stops = tokio::task::JoinSet::new();
    for member in members {
        let (collecting, reports) = (collecting.clone(), reports.clone());
        stops.spawn(async move {
            let mut report = member.report;
            report.windows_lost += dropped + given_up;
            report.uploads = stop_sink(&*member.sink, deadline).await;
            // The group's kinds first: the most recent kinds of the two lists are kept.
            let mut errors = collecting;
            errors.extend(member.problems.into_errors());
            let extra = errors.len().saturating_sub(ERROR_KINDS);
            errors.drain(..extra);
            report.errors = errors;
            let _ = reports.send(report);
        });
    }
    while stops.join_next().await.is_some() {}
}

/// The clock of a sink: cuts each window at its end (and the last, partial one at the stop)
/// and queues it for the builder. Returns the stop deadline and the windows dropped because
/// the queue was full.
async fn cut_windows(
    path: &str,
    mut sources: Option<Sources>,
    rate: Duration,
    mut stopping: watch::Receiver<Option<Instant>>,
    pending: queue::Sender<Window>,
) -> (Instant, u64) {
    let mut windows = Windows::new(SystemTime::now(), rate);
    let mut dropped = 0u64;
    let mut last_warning: Option<Instant> = None;
    loop {
        let (_, end) = windows.next_window();
        let wait = end
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let deadline = tokio::select! {
            () = tokio::time::sleep(wait) => None,
            changed = stopping.wait_for(Option::is_some) => match changed {
                Ok(deadline) => *deadline,
                Err(_) => Some(Instant::now()),
            },
        };
        if let Some(mut taken) = sources.take() {
            let cut = tokio::task::spawn_blocking(move || {
                let cut = taken.cut();
                (taken, cut)
            })
            .await;
            let window = match cut {
                Ok((taken, (cuts, errors))) => {
                    sources = Some(taken);
                    Window { cuts, errors }
                }
                Err(e) => Window {
                    cuts: Vec::new(),
                    errors: vec![format!("collecting failed: {e}")],
                },
            };
            if let Err(error) = pending.try_send(window) {
                dropped += 1;
                // Closed: the builder gave up at a stop, and said so.
                let full = matches!(error, queue::error::TrySendError::Full(_));
                if full && last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                    last_warning = Some(Instant::now());
                    tracing::warn!(
                        sink = %path,
                        windows_lost = dropped,
                        "building profiles fell {PENDING_WINDOWS} windows behind the clock: \
                         a window was dropped (symbolizing is slow, or the machine is \
                         overloaded)"
                    );
                }
            }
        }
        if let Some(deadline) = deadline {
            return (deadline, dropped);
        }
    }
}

/// The builder of a group: builds each queued window's profiles (one build at a time in the
/// process) and delivers each to every member, in order, until the clock stops queueing.
/// At a stop, what is not built [`FLUSH_SHARE`] before the deadline is given up; returns
/// how many windows were (each member counts them in [`SinkReport::windows_lost`]).
async fn build_windows(
    name: &str,
    members: &mut [Member],
    mut windows: queue::Receiver<Window>,
    mut stopping: watch::Receiver<Option<Instant>>,
    problems: &mut Problems,
) -> u64 {
    while let Some(window) = windows.recv().await {
        for error in window.errors {
            problems.record(format!("cannot collect: {error}"));
        }
        let delivered = async {
            for cut in window.cuts {
                let Ok(permit) = BUILDING.acquire().await else {
                    return;
                };
                let built = tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    cut.build()
                })
                .await;
                match built {
                    Ok(profile) => {
                        for member in members.iter_mut() {
                            let Member {
                                sink,
                                report,
                                problems,
                            } = member;
                            deliver(&**sink, profile.clone(), report, problems).await;
                        }
                    }
                    Err(e) => problems.record(format!("building a profile failed: {e}")),
                }
            }
        };
        let given_up = tokio::select! {
            () = delivered => false,
            () = building_deadline(&mut stopping) => true,
        };
        if given_up {
            let lost = 1 + windows.len() as u64;
            windows.close();
            tracing::warn!(
                sink = %name,
                windows_lost = lost,
                "stop deadline: the last windows could not be built in time"
            );
            return lost;
        }
    }
    0
}

/// The errors a sink meets: each kind (see [`SinkReport::errors`]) is logged at once the
/// first time, then at most once per [`ERROR_WARN_INTERVAL`] with how many came since; the
/// most recent [`ERROR_KINDS`] kinds are kept, counted, for the report.
struct Problems {
    sink: String,
    /// In the order last met, the most recent last.
    kinds: Vec<Problem>,
}

struct Problem {
    /// The message without its numbers: what makes messages one kind.
    kind: String,
    error: RepeatedError,
    warned_at: Instant,
    /// Times met since the last line that said it.
    unsaid: u64,
}

impl Problems {
    fn new(sink: &str) -> Self {
        Problems {
            sink: sink.to_owned(),
            kinds: Vec::new(),
        }
    }

    /// Counts an error, and logs it if it is new or its kind was last said an interval ago.
    fn record(&mut self, message: String) {
        let kind = without_numbers(&message);
        let Some(index) = self.kinds.iter().position(|p| p.kind == kind) else {
            tracing::warn!(sink = %self.sink, "{message}");
            if self.kinds.len() == ERROR_KINDS {
                self.kinds.remove(0);
            }
            self.kinds.push(Problem {
                kind,
                error: RepeatedError { message, count: 1 },
                warned_at: Instant::now(),
                unsaid: 0,
            });
            return;
        };
        let mut problem = self.kinds.remove(index);
        problem.error.count += 1;
        problem.error.message = message;
        problem.unsaid += 1;
        if problem.warned_at.elapsed() >= ERROR_WARN_INTERVAL {
            tracing::warn!(
                sink = %self.sink,
                count = problem.error.count,
                "{} (again: {} times since it was last said)",
                problem.error.message,
                problem.unsaid,
            );
            problem.warned_at = Instant::now();
            problem.unsaid = 0;
        }
        self.kinds.push(problem);
    }

    /// What the report keeps.
    fn into_errors(self) -> Vec<RepeatedError> {
        self.kinds.into_iter().map(|p| p.error).collect()
    }
}

/// `message` with each run of digits replaced by `#`: the messages of one error at different
/// times (file names with timestamps, counters) are the same.
fn without_numbers(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

/// Waits until a stop has begun and its deadline, less [`FLUSH_SHARE`], has passed.
async fn building_deadline(stopping: &mut watch::Receiver<Option<Instant>>) {
    let deadline = match stopping.wait_for(Option::is_some).await {
        Ok(deadline) => deadline.unwrap_or_else(Instant::now),
        Err(_) => Instant::now(),
    };
    let until = deadline.checked_sub(FLUSH_SHARE).unwrap_or(deadline);
    tokio::time::sleep_until(until.into()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_reports_are_named_in_order() {
        let sinks: Vec<String> = (0..12)
            .map(|i| format!("apps.profiling.profilers[{i}]"))
            .collect();
        let reports: Vec<SinkReport> = [sinks[5].clone(), sinks[0].clone()]
            .into_iter()
            .map(|path| SinkReport {
                path,
                ..SinkReport::default()
            })
            .collect();
        let missing = missing_reports(&sinks, &reports);
        assert_eq!(missing.len(), 10);
        assert_eq!(missing[0], "apps.profiling.profilers[1]");
        assert_eq!(missing[4], "apps.profiling.profilers[6]");
        assert_eq!(missing_reports(&sinks, &[]).len(), 12);
        assert_eq!(
            listed(&missing_reports(&sinks, &[])),
            format!("{} and 2 more", sinks[..10].join(", "))
        );
        assert_eq!(listed(&missing[..2]), missing[..2].join(", "));
    }

    #[test]
    fn errors_are_counted_by_kind_and_bounded() {
        let mut problems = Problems::new("sink");
        for window in 0..100 {
            problems.record(format!(
                "cannot create /p/.cpu-{window}.tmp: denied (os error 13)"
            ));
            problems.record("cannot collect: goroutine: gone".to_owned());
        }
        let errors = problems.into_errors();
        assert_eq!(
            errors,
            [
                RepeatedError {
                    message: "cannot create /p/.cpu-99.tmp: denied (os error 13)".into(),
                    count: 100
                },
                RepeatedError {
                    message: "cannot collect: goroutine: gone".into(),
                    count: 100
                },
            ]
        );
        assert_eq!(
            errors[1].to_string(),
            "cannot collect: goroutine: gone (100 times)"
        );

        let mut problems = Problems::new("sink");
        let kinds = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        for kind in kinds {
            problems.record(kind.to_owned());
        }
        let kept: Vec<String> = problems
            .into_errors()
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(kept, kinds[kinds.len() - ERROR_KINDS..]);
    }
}
