//! What one sink collects at the end of each window: a source per enabled profile type.
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
//! level.

use std::collections::HashSet;
use std::time::SystemTime;

use super::Profile;
use crate::collect::contention::{self, ContentionSubscription, Kind};
use crate::collect::cpu::{self, CpuSubscription};
use crate::collect::heap::{self, Accumulation, HeapError, HeapSubscription};
use crate::collect::threads;
use crate::config::ProfileType;

use super::plan::Sampling;

/// The sources of one sink.
#[derive(Debug)]
pub struct Sources {
    /// The sink's JSON path, for logs.
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
                    .push(contention::subscribe(Kind::Block, cumulative)),
                ProfileType::Mutex => sources
                    .contention
                    .push(contention::subscribe(Kind::Mutex, cumulative)),
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

    /// Ends the window: the profiles to hand over, and the errors met (blocking).
    pub fn collect(&mut self) -> (Vec<Profile>, Vec<String>) {
        let mut profiles = Vec::new();
        let mut errors = Vec::new();
        if let Some(cpu) = &mut self.cpu {
            profiles.push(cpu.collect());
        }
        for subscription in &mut self.contention {
            let collected = subscription.collect();
            let kind = subscription.kind();
            if collected.samples > 0 {
                profiles.push(collected.profile);
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
            profiles.push(subscription.collect(*profile_type, *accumulation));
        }
        if self.goroutine || self.threadcreate {
            let at = SystemTime::now();
            if self.goroutine {
                match threads::stacks() {
                    Ok(snapshot) => profiles.push(threads::goroutine_profile(&snapshot, at)),
                    Err(e) => errors.push(format!("goroutine: {e}")),
                }
            }
            if self.threadcreate {
                profiles.push(threads::threadcreate_profile(&threads::threads(), at));
            }
        }
        (profiles, errors)
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
fn empty_reason(kind: Kind) -> &'static str {
    match kind {
        Kind::Block if contention::block_rate() == 0 => "block_profile_rate is 0",
        Kind::Mutex if contention::mutex_fraction() == 0 => "mutex_profile_fraction is 0",
        _ => {
            "no caddyprof::sync lock was waited for in this window (std and other locks are \
             not instrumented; said once)"
        }
    }
}
