//! The process-wide heap collector: `heap` and `allocs` profiles from the sampling allocator
//! ([`crate::allocator::Sampled`], which must be the program's global allocator).
//!
//! Every consumer [`subscribe`]s; sampling runs while at least one [`HeapSubscription`] is
//! alive. Each [`HeapSubscription::collect`] returns a pprof with Go's four sample types:
//!
//! | sample type | meaning |
//! |---|---|
//! | `alloc_objects/count`, `alloc_space/bytes` | allocated in this window ([`Accumulation::Delta`], what Pyroscope gets, as godeltaprof sends it) or since sampling began ([`Accumulation::Cumulative`], what profefe gets, like Go's own heap profile) |
//! | `inuse_objects/count`, `inuse_space/bytes` | allocated and not yet freed, at the end of the window |
//!
//! Period type `space/bytes`, period the sampling rate ([`crate::allocator::rate`]); the
//! values are un-sampled (see [`crate::allocator::Weight`]). Stacks start at the function
//! that allocated: the sampler's and the allocator shims' frames are cut from the leaf
//! (`alloc::raw_vec::…` and the like stay: they say how the program allocated). Stacks with
//! nothing to report in the window are left out, as godeltaprof leaves out zero rows.
//!
//! `heap` and `allocs` are the same profile (as in Go, where they differ only in the default
//! sample type shown): a sink that wants both gets one.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::symbolize::{ProfileLocations, symbolizer};
use crate::allocator::{self, OBJECT_SCALE, OVERFLOW, STACK_SLOTS, Totals};
use crate::fields::ProfileType;
use crate::profile::{Frame, Profile, ProfileBuilder};

/// How to install the sampling allocator, for messages.
pub const INSTALL_HINT: &str = "add `#[global_allocator] static ALLOC: \
     caddyprof::allocator::Sampled<std::alloc::System> = \
     caddyprof::allocator::Sampled::new(std::alloc::System);` to the program (any allocator \
     can be wrapped)";

/// The function name given to samples whose stack found no room in the stack table.
pub const OVERFLOW_FRAME: &str = "[caddyprof: stack table full]";

/// Why there is no heap profile.
#[derive(Debug, thiserror::Error)]
pub enum HeapError {
    /// The sampling allocator is not the global allocator.
    #[error(
        "heap and allocs profiles need caddyprof's sampling allocator as the global \
         allocator, and it is not installed: {INSTALL_HINT}"
    )]
    NotInstalled,
}

/// How `alloc_*` values are counted in a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accumulation {
    /// Since the subscription's previous collection (Pyroscope, the file sink).
    Delta,
    /// Since sampling began (profefe, like Go's heap profile).
    Cumulative,
}

/// The symbolized, trimmed locations of each stack slot, once needed.
static RESOLVED: Mutex<Vec<Option<Vec<usize>>>> = Mutex::new(Vec::new());
/// The table-full counters as last reported.
static REPORTED_STACKS_LOST: AtomicU64 = AtomicU64::new(0);
static REPORTED_LIVE_LOST: AtomicU64 = AtomicU64::new(0);

/// Subscribes a consumer: sampling starts (if it had not) and the first window starts now.
///
/// # Errors
///
/// [`HeapError::NotInstalled`] when [`allocator::Sampled`] is not the global allocator.
pub fn subscribe() -> Result<HeapSubscription, HeapError> {
    let _own = crate::allocator::own_work();
    if !allocator::is_installed() {
        return Err(HeapError::NotInstalled);
    }
    allocator::activate();
    let mut subscription = HeapSubscription {
        previous: Vec::new(),
        start: SystemTime::now(),
        started: Instant::now(),
    };
    allocator::for_each_stack(|slot, _, totals| {
        subscription.remember(slot, &totals);
    });
    Ok(subscription)
}

/// One consumer's view of the heap samples. Dropping the last subscription stops sampling
/// (allocations then pass straight through; live samples are still forgotten when freed).
#[derive(Debug)]
pub struct HeapSubscription {
    /// Per stack slot: the alloc totals at the previous collection.
    previous: Vec<(u64, u64)>,
    start: SystemTime,
    started: Instant,
}

impl HeapSubscription {
    /// When the current window started (the subscription or the last collection).
    pub fn window_start(&self) -> SystemTime {
        self.start
    }

    fn remember(&mut self, slot: usize, totals: &Totals) {
        if self.previous.len() <= slot {
            self.previous.resize(slot + 1, (0, 0));
        }
        self.previous[slot] = (totals.alloc_objects, totals.alloc_bytes);
    }

    /// Ends the current window and returns its profile (see the [module docs](self)),
    /// tagged `profile_type` (`heap` shows `inuse_space` by default, `allocs` `alloc_space`):
    /// [`cut`](Self::cut) then [`HeapWindow::build`]. The next window starts now.
    pub fn collect(&mut self, profile_type: ProfileType, accumulation: Accumulation) -> Profile {
        self.cut(profile_type, accumulation).build()
    }

    /// Ends the current window and returns its values per stack, not yet symbolized
    /// (quick: a read of the sampler's tables). The next window starts now.
    pub fn cut(&mut self, profile_type: ProfileType, accumulation: Accumulation) -> HeapWindow {
        let _own = crate::allocator::own_work();
        // Libraries loaded or unloaded since: the sampler's unwinder gets a new module list.
        crate::unwind::refresh();
        let end = SystemTime::now();
        let duration = end
            .duration_since(self.start)
            .unwrap_or(self.started.elapsed())
            .max(Duration::from_nanos(1));
        let mut rows: Vec<(usize, Vec<usize>, [i64; 4])> = Vec::new();
        allocator::for_each_stack(|slot, addresses, totals| {
            let (objects, bytes) = match accumulation {
                Accumulation::Delta => {
                    let (objects, bytes) = self.previous.get(slot).copied().unwrap_or_default();
                    (
                        totals.alloc_objects.wrapping_sub(objects),
                        totals.alloc_bytes.wrapping_sub(bytes),
                    )
                }
                Accumulation::Cumulative => (totals.alloc_objects, totals.alloc_bytes),
            };
            self.remember(slot, &totals);
            let values = [
                objects_of(objects),
                clamp(bytes),
                objects_of(totals.alloc_objects.saturating_sub(totals.free_objects)),
                clamp(totals.alloc_bytes.saturating_sub(totals.free_bytes)),
            ];
            if values != [0; 4] {
                rows.push((slot, addresses.to_vec(), values));
            }
        });
        report_lost();
        let start = std::mem::replace(&mut self.start, end);
        self.started = Instant::now();
        HeapWindow {
            profile_type,
            rate: allocator::rate(),
            start,
            duration,
            rows,
        }
    }
}

/// A heap window's values per stack, cut and not yet symbolized.
#[derive(Debug)]
pub struct HeapWindow {
    profile_type: ProfileType,
    rate: u64,
    start: SystemTime,
    duration: Duration,
    /// Per stack slot: its addresses and the four sample values.
    rows: Vec<(usize, Vec<usize>, [i64; 4])>,
}

impl HeapWindow {
    /// The window's profile (see the [module docs](self)).
    pub fn build(self) -> Profile {
        let _own = crate::allocator::own_work();
        let mut builder = ProfileBuilder::new();
        builder
            .sample_type("alloc_objects", "count")
            .sample_type("alloc_space", "bytes")
            .sample_type("inuse_objects", "count")
            .sample_type("inuse_space", "bytes")
            .default_sample_type(if self.profile_type == ProfileType::Allocs {
                "alloc_space"
            } else {
                "inuse_space"
            })
            .period(
                "space",
                "bytes",
                i64::try_from(self.rate).unwrap_or(i64::MAX),
            )
            .window(self.start, self.duration);
        {
            let mut symbolizer = symbolizer();
            let mut resolved = RESOLVED.lock().unwrap_or_else(|e| e.into_inner());
            if resolved.len() < STACK_SLOTS + 1 {
                resolved.resize(STACK_SLOTS + 1, None);
            }
            symbolizer.prepare(
                self.rows
                    .iter()
                    .filter(|(slot, _, _)| *slot != OVERFLOW && resolved[*slot].is_none())
                    .flat_map(|(_, addresses, _)| addresses.iter().copied()),
            );
            let mut ids = ProfileLocations::default();
            for (slot, addresses, values) in self.rows {
                if slot == OVERFLOW {
                    let location = builder.location(0, &[Frame::new(OVERFLOW_FRAME)]);
                    builder.add_sample_at(&[location], &values, &[]);
                    continue;
                }
                let locations = resolved[slot]
                    .get_or_insert_with(|| symbolizer.resolve(&addresses))
                    .as_slice();
                let frames = symbolizer.frames(locations);
                let names: Vec<&str> = frames.iter().map(|&f| symbolizer.function(f)).collect();
                let stack =
                    ids.of_frames(&frames, program_frames(&names), &symbolizer, &mut builder);
                builder.add_sample_at(&stack, &values, &[]);
            }
            symbolizer.end_batch();
        }
        builder.into_profile(self.profile_type)
    }
}

impl Drop for HeapSubscription {
    fn drop(&mut self) {
        allocator::deactivate();
    }
}

/// Fixed-point objects to whole objects, rounded.
fn objects_of(fixed: u64) -> i64 {
    clamp((fixed + OBJECT_SCALE / 2) / OBJECT_SCALE)
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Where the program's frames start in a sampled stack (leaf first): after the outermost
/// entry into the allocator (`__rust_alloc`, the `#[global_allocator]` shim, `Sampled`'s
/// methods) and the `alloc::alloc` functions that called it. Everything before is the
/// sampler's own. 0 when there is no such entry.
fn program_frames(names: &[&str]) -> usize {
    let Some(entry) = names.iter().rposition(|f| is_allocator_entry(f)) else {
        return 0;
    };
    let mut cut = entry + 1;
    while cut < names.len() && is_alloc_plumbing(names[cut]) {
        cut += 1;
    }
    if cut == names.len() { 0 } else { cut }
}

/// The functions through which every allocation enters the sampler.
fn is_allocator_entry(function: &str) -> bool {
    function.contains("caddyprof::allocator::")
        || function.contains("__rust_alloc")
        || function.contains("__rust_realloc")
        || function.contains("__rust_dealloc")
        || function.contains("__rg_alloc")
        || function.contains("__rg_realloc")
}

/// The standard library's functions between the program and `__rust_alloc`.
fn is_alloc_plumbing(function: &str) -> bool {
    function.starts_with("alloc::alloc::") || function.starts_with("<alloc::alloc::Global")
}

/// Warns when a table of the sampler was full since the last report.
fn report_lost() {
    let stats = allocator::stats();
    let stacks = REPORTED_STACKS_LOST.swap(stats.stacks_lost, Ordering::Relaxed);
    if stats.stacks_lost > stacks {
        tracing::warn!(
            samples = stats.stacks_lost - stacks,
            "heap profiler: the stack table is full ({STACK_SLOTS} stacks); new stacks are \
             counted as {OVERFLOW_FRAME:?}"
        );
    }
    let live = REPORTED_LIVE_LOST.swap(stats.live_lost, Ordering::Relaxed);
    if stats.live_lost > live {
        tracing::warn!(
            samples = stats.live_lost - live,
            "heap profiler: the live-allocation table is full ({} entries); those samples \
             count in alloc_* but not in inuse_*",
            allocator::LIVE_SLOTS
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sampler_and_the_allocation_plumbing_are_cut() {
        let stack = [
            "backtrace::backtrace::libunwind::trace",
            "caddyprof::allocator::sample",
            "std::thread::local::LocalKey<T>::try_with",
            "caddyprof::allocator::Sampled<A>::slow_path",
            "<caddyprof::allocator::Sampled<std::alloc::System> as core::alloc::global::GlobalAlloc>::alloc",
            "__rustc::__rust_alloc",
            "alloc::alloc::alloc",
            "<alloc::alloc::Global as core::alloc::Allocator>::allocate",
            "alloc::raw_vec::RawVec<T,A>::grow_one",
            "myapp::alloc_work",
            "main",
        ];
        assert_eq!(program_frames(&stack), 8);
        // No entry (a stack that did not come through the allocator): nothing cut.
        assert_eq!(program_frames(&stack[8..]), 0);
        // Nothing but the sampler: nothing cut either.
        assert_eq!(program_frames(&stack[..7]), 0);
    }

    #[test]
    fn not_installed_says_how_to_install() {
        // This test binary's global allocator is the default one.
        let error = subscribe().unwrap_err();
        let message = error.to_string();
        assert!(message.contains("#[global_allocator]"), "{message}");
        assert!(
            message.contains("caddyprof::allocator::Sampled"),
            "{message}"
        );
    }
}
