//! The sampling global allocator behind the `heap` and `allocs` profiles.
//!
//! Rust has no heap profiler built in. [`Sampled`] wraps any [`GlobalAlloc`] (`System`,
//! mimalloc, jemalloc …) and samples allocations the way Go's runtime does: a Poisson process
//! with a mean of one sample every [`rate`] bytes allocated (Go's `MemProfileRate`, 512 KiB by
//! default). Install it once per program:
//!
//! ```
//! use std::alloc::System;
//!
//! #[global_allocator]
//! static ALLOC: caddyprof::allocator::Sampled<System> = caddyprof::allocator::Sampled::new(System);
//! # fn main() {}
//! ```
//!
//! (The module is `allocator`, not `alloc`: the crate root already holds the `alloc` crate.)
//!
//! # What it costs
//!
//! - **Every allocation**: a thread-local byte countdown, decremented. When it reaches zero
//!   (on average once per [`rate`] bytes) the slow path runs: a new exponential draw and, if
//!   a profile is being taken, a sample.
//! - **Every free**: one byte of a 64 KiB filter of the sampled live addresses (indexed by
//!   address, so nearby frees share cache lines) is read; only
//!   a hit looks further (in the live table). And the thread-local that says whether the
//!   thread is doing caddyprof's own work (see below): three instructions.
//! - **A sample**: the stack is walked from the registers of the sampling function (one
//!   `asm!` block) by [`crate::unwind`] (framehop over the objects' `.eh_frame`,
//!   with cached rules; libgcc's unwinder where it cannot run) into a fixed array on the
//!   thread's stack, interned in a fixed
//!   table of stacks, and the allocation remembered in a fixed table of live samples. No
//!   allocation and no lock on this path; allocations made by anything it calls would pass
//!   straight through (a thread-local guard), and are counted ([`Stats::reentered`]).
//!
//! Before a profile is first asked for ([`crate::collect::heap::subscribe`]) and after the
//! last subscription ends, allocations pass straight through: only the countdown runs.
//!
//! # caddyprof's own allocations
//!
//! What caddyprof allocates for itself (symbolizing, encoding, uploading, its tables) is not
//! the program's, and is never sampled into its profiles. Its own work is: everything on the
//! threads it starts (the runtime's `caddyprof` threads, the CPU collector's
//! `caddyprof-cpu`), and, on the program's threads, its public entry points while they run
//! (`runtime::start`, `Running::stop`, the collectors' subscribe, cut, collect and build
//! calls, the symbolizer's methods, the instrumented locks' event recording). While a thread
//! does such work, each allocation takes the slow path (its countdown is parked at 0 and given
//! back afterwards, so the program's own sampling is not shifted) and is counted in
//! [`own_allocations`] instead of sampled; each free on such a thread is counted too.
//!
//! So [`OwnAllocations::in_use_bytes`] is *bytes allocated during caddyprof's work minus
//! bytes freed during it*: exact for what caddyprof allocates and frees itself (all of the
//! runtime's windows, profiles and uploads). It is off where a block crosses over: a block
//! caddyprof allocated and the program freed (a [`Profile`](crate::profile::Profile)
//! returned by a direct collector call, the stop reports, a log line a `tracing` subscriber
//! frees on another thread) stays counted as in use; a block of the program freed during
//! caddyprof's work is counted as freed by it (the total never goes below 0). Frees of the
//! program's sampled blocks leave its live samples wherever they happen.
//!
//! # Memory
//!
//! Fixed, in zeroed statics touched only as they are used: [`STACK_SLOTS`] stacks with
//! [`ARENA_WORDS`] words of addresses (1 MiB) and their counters (192 KiB),
//! [`LIVE_SLOTS`] live samples (512 KiB) and the filter (64 KiB). When a table is full the
//! sample is still counted (under a `[stack table full]` stack, or as freed at once), never
//! stored by growing; [`Stats`] says how often.
//!
//! # Semantics
//!
//! - `realloc` is a free of the old block and an allocation of `new_size` bytes (as jemalloc
//!   counts it): a sampled old block leaves the live table first, and the new block goes
//!   through the countdown.
//! - `alloc_zeroed` is an allocation.
//! - A sample of `size` bytes counts `1/(1-exp(-size/rate))` objects and that many times
//!   `size` bytes (computed when sampled, with the rate of that moment): the `alloc_*`
//!   totals estimate all allocations, sampled or not. `inuse_*` is what was sampled and not
//!   yet freed, scaled the same way.

mod table;

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::unwind;

pub use table::{
    ARENA_WORDS, LIVE_SLOTS, MAX_DEPTH, OBJECT_SCALE, OVERFLOW, STACK_SLOTS, Totals, Weight,
    for_each_stack,
};

/// The default mean distance between samples, in bytes allocated: Go's `MemProfileRate`.
pub const DEFAULT_RATE: u64 = 512 * 1024;

/// The countdown while sampling is off (rate 0): how often the slow path looks again.
const IDLE_COUNTDOWN: i64 = 1 << 20;

/// A [`GlobalAlloc`] that samples the allocations of `A` for heap profiles. See the
/// [module docs](self).
#[derive(Debug)]
pub struct Sampled<A> {
    inner: A,
    rate: u64,
}

impl<A> Sampled<A> {
    /// Wraps `inner`, sampling at [`DEFAULT_RATE`].
    pub const fn new(inner: A) -> Self {
        Self::with_rate(inner, DEFAULT_RATE)
    }

    /// Wraps `inner`, sampling on average once per `rate` bytes (0: never; 1: every
    /// allocation). [`set_rate`] changes it later.
    pub const fn with_rate(inner: A, rate: u64) -> Self {
        Sampled { inner, rate }
    }

    /// The wrapped allocator.
    pub fn inner(&self) -> &A {
        &self.inner
    }
}

impl<A: Default> Default for Sampled<A> {
    fn default() -> Self {
        Self::new(A::default())
    }
}

/// Whether a [`Sampled`] allocator has allocated, i.e. is the global allocator.
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// How many consumers want samples (heap subscriptions).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// The rate in use; [`RATE_UNSET`] until the allocator or [`set_rate`] sets it.
static RATE: AtomicU64 = AtomicU64::new(RATE_UNSET);
const RATE_UNSET: u64 = u64::MAX;
/// Samples taken.
static SAMPLES: AtomicU64 = AtomicU64::new(0);
/// Allocations made while the same thread was taking a sample.
static REENTERED: AtomicU64 = AtomicU64::new(0);
/// Samples whose stack libgcc's unwinder took (the faster one could not run).
static LIBGCC_WALKS: AtomicU64 = AtomicU64::new(0);
/// Time spent taking samples (the stack walk and the tables), in nanoseconds.
static SAMPLING_NANOS: AtomicU64 = AtomicU64::new(0);
/// Seeds for the threads' generators.
static SEEDS: AtomicU64 = AtomicU64::new(0x853c_49e6_748f_ea9b);

struct ThreadState {
    /// Bytes left before the next sample.
    countdown: Cell<i64>,
    /// The xorshift state; 0 until the thread's first slow path.
    rng: Cell<u64>,
    /// Whether this thread is taking a sample.
    busy: Cell<bool>,
    /// How many [`OwnWork`] scopes the thread is in (a whole caddyprof thread: one that never
    /// ends). Above 0, its allocations and frees are caddyprof's own.
    own_depth: Cell<u32>,
    /// The countdown put aside while the thread does caddyprof's own work.
    saved_countdown: Cell<i64>,
}

thread_local! {
    // `const`, and no `Drop`: no lazy initialization, no destructor, usable during thread
    // exit.
    static STATE: ThreadState = const {
        ThreadState {
            countdown: Cell::new(0),
            rng: Cell::new(0),
            busy: Cell::new(false),
            own_depth: Cell::new(0),
            saved_countdown: Cell::new(0),
        }
    };
}

/// Counts of caddyprof's own allocations and frees, apart from the other statics (every
/// thread of caddyprof writes them).
#[repr(align(64))]
struct OwnCounters {
    allocations: AtomicU64,
    allocated_bytes: AtomicU64,
    frees: AtomicU64,
    freed_bytes: AtomicU64,
}

static OWN: OwnCounters = OwnCounters {
    allocations: AtomicU64::new(0),
    allocated_bytes: AtomicU64::new(0),
    frees: AtomicU64::new(0),
    freed_bytes: AtomicU64::new(0),
};

/// Whether a [`Sampled`] allocator is the program's global allocator (it has allocated).
pub fn is_installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// The mean number of bytes between samples.
pub fn rate() -> u64 {
    match RATE.load(Ordering::Relaxed) {
        RATE_UNSET => DEFAULT_RATE,
        rate => rate,
    }
}

/// Sets the mean number of bytes between samples, like Go's `runtime.MemProfileRate`
/// (0: no samples; 1: every allocation). Samples taken before keep their weights. The
/// calling thread draws its next countdown with the new rate at once; other threads at
/// their next draw (within about one old rate's worth of their allocations).
pub fn set_rate(bytes: u64) {
    let rate = bytes.min(RATE_UNSET - 1);
    RATE.store(rate, Ordering::Relaxed);
    let _ = STATE.try_with(|s| {
        if s.own_depth.get() > 0 {
            s.saved_countdown.set(next_countdown(s, rate));
        } else if !s.busy.get() {
            s.countdown.set(next_countdown(s, rate));
        }
    });
}

/// caddyprof's own work on the current thread, until dropped (scopes nest): its allocations
/// are counted in [`own_allocations`], not sampled. See the [module docs](self).
#[must_use = "the work is caddyprof's only while the scope lives"]
pub(crate) struct OwnWork {
    /// Dropped on the thread that made it.
    _not_send: PhantomData<*const ()>,
}

/// Starts a scope of caddyprof's own work on the current thread. A function's parameters
/// are dropped after its locals, so after the scope: consume inside it what the work frees.
pub(crate) fn own_work() -> OwnWork {
    let _ = STATE.try_with(enter_own_work);
    OwnWork {
        _not_send: PhantomData,
    }
}

impl Drop for OwnWork {
    fn drop(&mut self) {
        let _ = STATE.try_with(|s| match s.own_depth.get() {
            0 => {}
            1 => {
                s.own_depth.set(0);
                s.countdown.set(s.saved_countdown.get());
            }
            depth => s.own_depth.set(depth - 1),
        });
    }
}

/// Makes all of the current thread's work caddyprof's own, to its end (for the threads
/// caddyprof starts).
pub(crate) fn own_thread() {
    let _ = STATE.try_with(enter_own_work);
}

fn enter_own_work(s: &ThreadState) {
    let depth = s.own_depth.get();
    if depth == 0 {
        s.saved_countdown.set(s.countdown.get());
        // Every allocation takes the slow path, which counts it.
        s.countdown.set(0);
    }
    s.own_depth.set(depth.saturating_add(1));
}

/// Whether the current thread is doing caddyprof's own work.
#[inline(always)]
fn in_own_work() -> bool {
    STATE.try_with(|s| s.own_depth.get() != 0).unwrap_or(false)
}

/// What caddyprof's own work allocated and freed since the process started (see the
/// [module docs](self#caddyprofs-own-allocations)); all 0 unless a [`Sampled`] allocator is
/// the global allocator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OwnAllocations {
    /// Allocations made (a `realloc` counts as one, and as one free).
    pub allocations: u64,
    /// Bytes allocated.
    pub allocated_bytes: u64,
    /// Frees made.
    pub frees: u64,
    /// Bytes freed.
    pub freed_bytes: u64,
}

impl OwnAllocations {
    /// Bytes allocated less bytes freed (0 at least): what caddyprof holds, as far as it
    /// can tell (see the [module docs](self#caddyprofs-own-allocations)).
    pub fn in_use_bytes(&self) -> u64 {
        self.allocated_bytes.saturating_sub(self.freed_bytes)
    }
}

/// caddyprof's own allocations so far.
pub fn own_allocations() -> OwnAllocations {
    // Frees first: a block's free is then never seen without its allocation.
    let frees = OWN.frees.load(Ordering::Relaxed);
    let freed_bytes = OWN.freed_bytes.load(Ordering::Relaxed);
    OwnAllocations {
        allocations: OWN.allocations.load(Ordering::Relaxed),
        allocated_bytes: OWN.allocated_bytes.load(Ordering::Relaxed),
        frees,
        freed_bytes,
    }
}

#[cold]
fn count_own_free(size: usize) {
    OWN.frees.fetch_add(1, Ordering::Relaxed);
    OWN.freed_bytes.fetch_add(size as u64, Ordering::Relaxed);
}

/// Starts sampling for one more consumer (see [`crate::collect::heap`]).
pub(crate) fn activate() {
    // The unwinder's module list, built here rather than inside an allocation.
    unwind::refresh();
    if ACTIVE.fetch_add(1, Ordering::AcqRel) == 0 {
        // libgcc (the fallback unwinder) sets up its state on first use: do that here, not
        // inside an allocation.
        backtrace::trace(|_| true);
    }
}

/// Ends [`activate`].
pub(crate) fn deactivate() {
    let _ = ACTIVE.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
}

/// Whether samples are being taken.
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed) > 0
}

/// The sampler's counters since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Whether a [`Sampled`] allocator is the global allocator.
    pub installed: bool,
    /// Whether samples are being taken.
    pub active: bool,
    /// The mean bytes between samples.
    pub rate: u64,
    /// Samples taken.
    pub samples: u64,
    /// Allocations made by the sampler itself while taking a sample (they pass through
    /// unsampled; 0 is expected: the sampling path does not allocate).
    pub reentered: u64,
    /// Distinct stacks stored.
    pub stacks: usize,
    /// Samples counted under `[stack table full]` for want of room.
    pub stacks_lost: u64,
    /// Sampled allocations the live table had no room for (counted as freed at once).
    pub live_lost: u64,
    /// Samples whose stack was walked by libgcc's unwinder, where the faster one could not
    /// run (see [`crate::unwind`]).
    pub libgcc_walks: u64,
    /// Time spent taking samples (walking the stack, the tables), in nanoseconds of wall
    /// time on the allocating threads: what sampling costs the program, beside the
    /// countdown.
    pub sampling_nanos: u64,
}

/// The sampler's counters.
pub fn stats() -> Stats {
    Stats {
        installed: is_installed(),
        active: is_active(),
        rate: rate(),
        samples: SAMPLES.load(Ordering::Relaxed),
        reentered: REENTERED.load(Ordering::Relaxed),
        stacks: table::stacks_used(),
        stacks_lost: table::STACKS_LOST.load(Ordering::Relaxed),
        live_lost: table::LIVE_LOST.load(Ordering::Relaxed),
        libgcc_walks: LIBGCC_WALKS.load(Ordering::Relaxed),
        sampling_nanos: SAMPLING_NANOS.load(Ordering::Relaxed),
    }
}

impl<A> Sampled<A> {
    /// Counts `size` bytes allocated at `ptr` down (in place of a block of `replaced` bytes,
    /// for a `realloc`; else 0); samples when the countdown runs out.
    #[inline(always)]
    fn allocated(&self, ptr: *mut u8, size: usize, replaced: usize) {
        let due = STATE
            .try_with(|s| {
                let left = s.countdown.get().wrapping_sub(size as i64);
                s.countdown.set(left);
                left <= 0
            })
            .unwrap_or(false);
        if due {
            self.slow_path(ptr, size, replaced);
        }
    }

    #[cold]
    #[inline(never)]
    fn slow_path(&self, ptr: *mut u8, size: usize, replaced: usize) {
        if !INSTALLED.load(Ordering::Relaxed) {
            let _ = RATE.compare_exchange(
                RATE_UNSET,
                self.rate.min(RATE_UNSET - 1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            INSTALLED.store(true, Ordering::Relaxed);
        }
        let _ = STATE.try_with(|s| {
            if s.own_depth.get() > 0 {
                OWN.allocations.fetch_add(1, Ordering::Relaxed);
                OWN.allocated_bytes
                    .fetch_add(size as u64, Ordering::Relaxed);
                if replaced > 0 {
                    count_own_free(replaced);
                }
                s.countdown.set(0);
                return;
            }
            if s.busy.get() {
                REENTERED.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let rate = rate();
            let first = s.rng.get() == 0;
            let next = next_countdown(s, rate);
            // A thread's first draw is not a sample: its countdown started at zero.
            if first || rate == 0 || !is_active() {
                s.countdown.set(next);
                return;
            }
            s.busy.set(true);
            // Any allocation made while sampling comes back here, and is counted.
            s.countdown.set(0);
            let began = Instant::now();
            sample(ptr as usize, size, rate);
            let took = began.elapsed().as_nanos();
            SAMPLING_NANOS.fetch_add(u64::try_from(took).unwrap_or(u64::MAX), Ordering::Relaxed);
            s.countdown.set(next);
            s.busy.set(false);
        });
    }
}

/// A new countdown: an exponential draw with mean `rate`; 0 (sample the next allocation) for
/// rate 1, which samples every allocation, as in Go.
fn next_countdown(s: &ThreadState, rate: u64) -> i64 {
    let mut x = s.rng.get();
    if x == 0 {
        x = (s as *const ThreadState as u64)
            ^ SEEDS.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        x |= 1;
    }
    // xorshift64*
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s.rng.set(x);
    match rate {
        0 => return IDLE_COUNTDOWN,
        1 => return 0,
        _ => {}
    }
    let bits = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
    // Uniform in (0, 1].
    let u = (bits as f64 + 1.0) / (1u64 << 53) as f64;
    let draw = -u.ln() * rate as f64;
    draw.clamp(1.0, (i64::MAX / 4) as f64) as i64
}

/// Takes a sample: the stack, its slot, the counts, the live entry.
#[inline(never)]
fn sample(address: usize, size: usize, rate: u64) {
    let mut stack = [0usize; MAX_DEPTH];
    // The walk starts in `sample` itself (cut from the profile with the allocator's other
    // frames, see `collect::heap`).
    let (depth, by_libgcc) = unwind::current_stack(&mut stack);
    if by_libgcc {
        LIBGCC_WALKS.fetch_add(1, Ordering::Relaxed);
    }
    let weight = Weight::of(size, rate);
    let slot = table::intern(&stack[..depth]);
    table::add_alloc(slot, weight);
    if !table::insert_live(address, slot, weight) {
        table::add_free(slot, weight);
    }
    SAMPLES.fetch_add(1, Ordering::Relaxed);
}

/// Forgets a freed (or reallocated) block, counting the free if it was sampled.
#[inline(always)]
fn freed(ptr: *mut u8) {
    if let Some((slot, weight)) = table::remove_live(ptr as usize) {
        table::add_free(slot, weight);
    }
}

// SAFETY: every call is forwarded to `inner` with the caller's arguments; the bookkeeping
// around it neither allocates through the global allocator nor touches the memory.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Sampled<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `inner`'s.
        let ptr = unsafe { self.inner.alloc(layout) };
        if !ptr.is_null() {
            self.allocated(ptr, layout.size(), 0);
        }
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.allocated(ptr, layout.size(), 0);
        }
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // First: nothing then needs `layout` past `freed`'s call (no register to save).
        if in_own_work() {
            count_own_free(layout.size());
        }
        // Before the block can be handed out again.
        freed(ptr);
        // SAFETY: as for `alloc`.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Out of the live table before the old block can be handed out again.
        let old = table::remove_live(ptr as usize);
        // SAFETY: as for `alloc`.
        let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if new.is_null() {
            // The old block lives on.
            if let Some((slot, weight)) = old
                && !table::insert_live(ptr as usize, slot, weight)
            {
                table::add_free(slot, weight);
            }
            return new;
        }
        if let Some((slot, weight)) = old {
            table::add_free(slot, weight);
        }
        self.allocated(new, new_size, layout.size());
        new
    }
}
