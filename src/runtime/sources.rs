//! What one group of alike sinks (see [`super::host`]) collects at the end of each window: a
//! source per enabled profile type.
//!
//! - `cpu`: a subscription to the process-wide sampler ([`crate::collect::cpu`]).
//! - `block`, `mutex`: subscriptions to the contention registry
//!   ([`crate::collect::contention`]), per-window deltas, or cumulative totals for profefe
//!   (as the Go module sends them).
//! - `goroutine`, `threadcreate`: a snapshot of the threads ([`crate::collect::threads`]).
//! - `heap`, `allocs`: one subscription to the sampling allocator ([`crate::collect::heap`])
//!   for either or both (the same profile: sent once, tagged `heap` if asked for, else
//!   `allocs`), `alloc_*` per window, or since the start for profefe (as the Go modules send
//!   them). When the program has not installed [`crate::allocator::Sampled`], one warning per
//!   process says how to, and nothing is sent for them.
//!
//! A type with nothing to report in a window (no instrumented lock waited for, a rate at 0)
//! is not handed over (profefe refuses empty profiles), and the sink says why once, at info
//! level. A type that becomes unavailable because the program took its signal over (SIGPROF
//! or `ITIMER_PROF` for `cpu`, SIGURG for `goroutine`: [`HostSignal`]) drops out: its error
//! is reported once, and no empty profile follows.
//!
//! [`HostSignal`]: crate::collect::sampler::HostSignal
//!
//! A window is taken in two steps: [`Sources::cut`] ends it on time and takes its raw data
//! (counts and addresses: quick), and [`Cut::build`] symbolizes and encodes it later, off the
//! clock, so that what symbolizing costs (seconds of CPU for a debug build's first windows)
//! never moves a window's end.

use std::collections::HashSet;
use std::time::SystemTime;

use super::Profile;
use crate::collect::contention::{
    self, ContentionProfile, ContentionSubscription, ContentionWindow,
};
use crate::collect::cpu::{self, CpuError, CpuSubscription, CpuWindow};
use crate::collect::heap::{self, Accumulation, HeapError, HeapSubscription, HeapWindow};
use crate::collect::sampler::SamplerError;
use crate::collect::threads::{self, ThreadInfo, ThreadStack};
use crate::fields::ProfileType;

use super::plan::Sampling;

/// The sources of one sink, or of a group of alike sinks.
#[derive(Debug)]
pub struct Sources {
    /// The sink's JSON path (or its group's name), for logs.
    path: String,
    cpu: Option<CpuSubscription>,
    contention: Vec<ContentionSubscription>,
    goroutine: bool,
    threadcreate: bool,
    /// The heap subscription, the type its profiles carry, and how alloc_* accumulate.
    memory: Option<(HeapSubscription, ProfileType, Accumulation)>,
    /// The types already reported as empty (said once).
    said_empty: HashSet<ProfileType>,
}

impl Sources {
    /// Opens a source for every type of `sampling` (blocking: may start the CPU sampler).
    /// `cumulative`: block and mutex profiles carry totals since the start, not deltas.
    /// Sources that cannot start are skipped; their errors are returned.
    pub fn open(path: &str, sampling: &Sampling, cumulative: bool) -> (Sources, Vec<String>) {
        let _own = crate::allocator::own_work();
        let mut errors = Vec::new();
        let mut sources = Sources {
            path: path.to_owned(),
            cpu: None,
            contention: Vec::new(),
            goroutine: sampling.has(ProfileType::Goroutine),
            threadcreate: sampling.has(ProfileType::ThreadCreate),
            memory: None,
            said_empty: HashSet::new(),
        };
        for &profile_type in &sampling.profile_types {
            match profile_type {
                ProfileType::Cpu => {
                    let hz = u32::try_from(sampling.cpu_hz).unwrap_or(u32::MAX);
                    match cpu::subscribe(hz) {
                        Ok(subscription) => sources.cpu = Some(subscription),
                        Err(e) => errors.push(format!("cpu: {e}")),
                    }
                }
                ProfileType::Block => sources
                    .contention
                    .push(contention::subscribe(ContentionProfile::Block, cumulative)),
                ProfileType::Mutex => sources
                    .contention
                    .push(contention::subscribe(ContentionProfile::Mutex, cumulative)),
                ProfileType::Goroutine | ProfileType::ThreadCreate => {}
                ProfileType::Heap | ProfileType::Allocs => {}
            }
        }
        // `heap` and `allocs` are one profile: a sink that wants both gets it once.
        let memory_type = [ProfileType::Heap, ProfileType::Allocs]
            .into_iter()
            .find(|&t| sampling.has(t));
        if let Some(profile_type) = memory_type {
            match heap::subscribe() {
                Ok(subscription) => {
                    let accumulation = if cumulative {
                        Accumulation::Cumulative
                    } else {
                        Accumulation::Delta
                    };
                    sources.memory = Some((subscription, profile_type, accumulation));
                }
                Err(e) => warn_memory_unavailable(path, &e),
            }
        }
        (sources, errors)
    }

    /// Ends the window: its raw data per profile type to [build](Cut::build), and the errors
    /// met (blocking, but quick: no symbolization, no encoding).
    pub fn cut(&mut self) -> (Vec<Cut>, Vec<String>) {
        let _own = crate::allocator::own_work();
        let mut cuts = Vec::new();
        let mut errors = Vec::new();
        if let Some(cpu) = &mut self.cpu {
            match cpu.cut() {
                Ok(window) => cuts.push(Cut::Cpu(window)),
                Err(e) => {
                    // The program took SIGPROF over: said once, and no empty profiles after.
                    if matches!(e, CpuError::Host(_)) {
                        self.cpu = None;
                    }
                    errors.push(format!("cpu: {e}"));
                }
            }
        }
        for subscription in &mut self.contention {
            let window = subscription.cut();
            let kind = subscription.kind();
            if window.samples() > 0 {
                cuts.push(Cut::Contention(window));
            } else if self.said_empty.insert(kind.profile_type()) {
                tracing::info!(
                    sink = %self.path,
                    "{} profile not sent: {}",
                    kind.profile_type(),
                    empty_reason(kind)
                );
            }
        }
        if let Some((subscription, profile_type, accumulation)) = &mut self.memory {
            cuts.push(Cut::Heap(subscription.cut(*profile_type, *accumulation)));
        }
        if self.goroutine || self.threadcreate {
            let at = SystemTime::now();
            if self.goroutine {
                match threads::stacks() {
                    Ok(snapshot) => cuts.push(Cut::Goroutine(snapshot, at)),
                    Err(e) => {
                        // The program handles SIGURG: said once, and no empty profiles after.
                        if matches!(e, SamplerError::Host(_)) {
                            self.goroutine = false;
                        }
                        errors.push(format!("goroutine: {e}"));
                    }
                }
            }
            if self.threadcreate {
                cuts.push(Cut::ThreadCreate(threads::threads(), at));
            }
        }
        (cuts, errors)
    }
}

/// One profile type's data of a window, cut on time and not yet symbolized.
#[derive(Debug)]
pub enum Cut {
    /// CPU samples.
    Cpu(CpuWindow),
    /// Block or mutex events.
    Contention(ContentionWindow),
    /// Heap and allocation samples.
    Heap(HeapWindow),
    /// Every thread's stack, and when it was taken.
    Goroutine(Vec<ThreadStack>, SystemTime),
    /// The live threads, and when they were listed.
    ThreadCreate(Vec<ThreadInfo>, SystemTime),
}

impl Cut {
    /// The profile: symbolized and encoded (blocking: takes the process's symbolizer).
    pub fn build(self) -> Profile {
        let _own = crate::allocator::own_work();
        match self {
            Cut::Cpu(window) => window.build(),
            Cut::Contention(window) => window.build(),
            Cut::Heap(window) => window.build(),
            Cut::Goroutine(snapshot, at) => threads::goroutine_profile(&snapshot, at),
            Cut::ThreadCreate(threads, at) => threads::threadcreate_profile(&threads, at),
        }
    }
}

/// Says, once per process, why `heap`/`allocs` profiles cannot be collected.
fn warn_memory_unavailable(sink: &str, error: &HeapError) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            %sink,
            "{error}. Nothing is sent for heap and allocs; the other profile types are not \
             affected"
        );
    }
}

/// Why a block or mutex window has no samples.
fn empty_reason(kind: ContentionProfile) -> &'static str {
    match kind {
        ContentionProfile::Block if contention::block_rate() == 0 => "block_profile_rate is 0",
        ContentionProfile::Mutex if contention::mutex_fraction() == 0 => {
            "mutex_profile_fraction is 0"
        }
        _ => {
            "no caddyprof::sync lock was waited for in this window (std and other locks are \
             not instrumented; said once)"
        }
    }
}
