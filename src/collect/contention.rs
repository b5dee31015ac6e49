//! The lock-contention registry behind the `block` and `mutex` profiles.
//!
//! Rust has no runtime hook for blocking, so the events come from the instrumented locks of
//! [`crate::sync`]. Sampling follows Go:
//!
//! - **block** (`block_profile_rate` R ns, [`set_block_rate`]): a thread that waited W ns to
//!   acquire a lock is recorded at its own stack if W ≥ R, and with probability W/R if not;
//!   a sampled short wait stands for R/W such waits (count R/W, delay R), so totals are
//!   unbiased.
//! - **mutex** (`mutex_profile_fraction` N, [`set_mutex_fraction`]): when a holder releases a
//!   lock others wait for, the delay it caused them is recorded at the releaser's stack for 1
//!   release in N, counted N times.
//!
//! 0 turns a profile off (Go's default). Events are kept as cumulative counts per stack,
//! like Go's; [`subscribe`] gives per-window deltas (for Pyroscope) or the cumulative totals
//! (for profefe, as the Go module sends them).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::symbolize::{ProfileLocations, symbolizer};
use crate::fields::ProfileType;
use crate::profile::{Profile, ProfileBuilder};

/// Distinct contention stacks kept per kind; events at new stacks beyond it are only
/// counted as lost.
pub const MAX_STACKS: usize = 4096;

/// The deepest stack recorded, in frames.
const MAX_DEPTH: usize = 64;

/// Which of the two contention profiles an event feeds, and so what it measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentionProfile {
    /// Time a thread waited to acquire a lock, at the waiter's stack.
    Block,
    /// Delay a holder caused its waiters, at the releaser's stack.
    Mutex,
}

impl ContentionProfile {
    /// The profile type it feeds.
    pub fn profile_type(self) -> ProfileType {
        match self {
            ContentionProfile::Block => ProfileType::Block,
            ContentionProfile::Mutex => ProfileType::Mutex,
        }
    }
}

static BLOCK_RATE: AtomicU64 = AtomicU64::new(0);
static MUTEX_FRACTION: AtomicU64 = AtomicU64::new(0);

/// Sets Go's `block_profile_rate`: sample waits of at least `rate_ns` fully, shorter ones
/// with probability wait/rate; 0 turns block events off.
pub fn set_block_rate(rate_ns: u64) {
    if rate_ns > 0 {
        // The unwinder's module list, built here rather than inside a lock operation.
        crate::unwind::refresh();
    }
    BLOCK_RATE.store(rate_ns, Ordering::Relaxed);
}

/// Sets Go's `mutex_profile_fraction`: sample 1 in `fraction` contended releases; 0 turns
/// mutex events off.
pub fn set_mutex_fraction(fraction: u64) {
    if fraction > 0 {
        crate::unwind::refresh();
    }
    MUTEX_FRACTION.store(fraction, Ordering::Relaxed);
}

/// The current `block_profile_rate` (0: off).
pub fn block_rate() -> u64 {
    BLOCK_RATE.load(Ordering::Relaxed)
}

/// The current `mutex_profile_fraction` (0: off).
pub fn mutex_fraction() -> u64 {
    MUTEX_FRACTION.load(Ordering::Relaxed)
}

/// Cumulative values of one stack: contentions and delay in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Values {
    count: i64,
    delay: i64,
}

struct Stack {
    addresses: Arc<[usize]>,
    values: Values,
}

#[derive(Default)]
struct Table {
    index: HashMap<Box<[usize]>, usize>,
    stacks: Vec<Stack>,
    /// Contentions at new stacks not recorded once the table was full.
    lost: i64,
}

#[derive(Default)]
struct Registry {
    block: Table,
    mutex: Table,
}

impl Registry {
    fn table(&mut self, kind: ContentionProfile) -> &mut Table {
        match kind {
            ContentionProfile::Block => &mut self.block,
            ContentionProfile::Mutex => &mut self.mutex,
        }
    }
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A thread waited `wait` to acquire an instrumented lock (from the lock's slow path).
pub(crate) fn block_event(wait: Duration) {
    let rate = BLOCK_RATE.load(Ordering::Relaxed);
    if rate == 0 {
        return;
    }
    let wait = i64::try_from(wait.as_nanos()).unwrap_or(i64::MAX).max(1);
    let rate_i = i64::try_from(rate).unwrap_or(i64::MAX);
    let values = if wait >= rate_i {
        Values {
            count: 1,
            delay: wait,
        }
    } else if fastrand::i64(0..rate_i) < wait {
        Values {
            count: (rate_i + wait / 2) / wait,
            delay: rate_i,
        }
    } else {
        return;
    };
    record(ContentionProfile::Block, values);
}

/// A holder released an instrumented lock that others waited for, `delay` in total since
/// they began waiting (from the lock's release slow path).
pub(crate) fn mutex_event(delay: Duration) {
    let fraction = MUTEX_FRACTION.load(Ordering::Relaxed);
    if fraction == 0 || (fraction > 1 && fastrand::u64(0..fraction) != 0) {
        return;
    }
    let scale = i64::try_from(fraction).unwrap_or(i64::MAX);
    let delay = i64::try_from(delay.as_nanos()).unwrap_or(i64::MAX);
    record(
        ContentionProfile::Mutex,
        Values {
            count: scale,
            delay: delay.saturating_mul(scale),
        },
    );
}

/// Adds `values` at the current stack (the lock's own frames are trimmed when a profile
/// is built, by name: inlining makes counting frames here unreliable).
#[inline(never)]
fn record(kind: ContentionProfile, values: Values) {
    let _own = crate::allocator::own_work();
    let mut addresses = [0usize; MAX_DEPTH];
    // The cached unwinder: no lock, a few hundred instructions for a stack seen before.
    let (depth, _) = crate::unwind::current_stack(&mut addresses);
    let stack = &addresses[..depth];
    let mut registry = registry();
    let table = registry.table(kind);
    let i = match table.index.get(stack) {
        Some(&i) => i,
        None if table.stacks.len() >= MAX_STACKS => {
            let first = table.lost == 0;
            table.lost = table.lost.saturating_add(values.count);
            drop(registry);
            if first {
                tracing::warn!(
                    "{kind:?} events at new stacks are no longer recorded: {MAX_STACKS} distinct \
                     stacks are kept (said once)"
                );
            }
            return;
        }
        None => {
            table.index.insert(stack.into(), table.stacks.len());
            table.stacks.push(Stack {
                addresses: stack.into(),
                values: Values::default(),
            });
            table.stacks.len() - 1
        }
    };
    let total = &mut table.stacks[i].values;
    total.count = total.count.saturating_add(values.count);
    total.delay = total.delay.saturating_add(values.delay);
}

/// Whether a function is the unwinder's or the instrumented lock's own: the frames a
/// contention stack starts with (the locks call no user code, so they appear nowhere else).
fn is_instrumentation(function: &str) -> bool {
    const OURS: &[&str] = &[
        "backtrace::",
        "caddyprof::collect::contention::",
        "caddyprof::sync::",
        "<caddyprof::sync::",
        "core::ptr::drop_in_place<caddyprof::sync::",
        "core::mem::drop<caddyprof::sync::",
    ];
    OURS.iter().any(|p| function.starts_with(p))
}

/// Subscribes to `kind` events: each [`ContentionSubscription::collect`] gives the events
/// since the previous one, or all of them with `cumulative`.
pub fn subscribe(kind: ContentionProfile, cumulative: bool) -> ContentionSubscription {
    let _own = crate::allocator::own_work();
    let mut registry = registry();
    let baseline = if cumulative {
        Vec::new()
    } else {
        registry
            .table(kind)
            .stacks
            .iter()
            .map(|s| s.values)
            .collect()
    };
    ContentionSubscription {
        kind,
        cumulative,
        baseline,
        start: SystemTime::now(),
    }
}

/// One consumer's view of the `block` or `mutex` events.
#[derive(Debug)]
pub struct ContentionSubscription {
    kind: ContentionProfile,
    cumulative: bool,
    /// Per stack, the cumulative values at the last collection (deltas only).
    baseline: Vec<Values>,
    start: SystemTime,
}

/// What a collection found.
#[derive(Debug)]
pub struct Contentions {
    /// The profile: sample types `contentions/count` and `delay/nanoseconds`, period type
    /// `contentions/count`, period 1, one sample per stack.
    pub profile: Profile,
    /// The number of samples in it (0: nothing to report).
    pub samples: usize,
}

impl ContentionSubscription {
    /// The kind of events it receives.
    pub fn kind(&self) -> ContentionProfile {
        self.kind
    }

    /// Ends the current window and returns its profile: [`cut`](Self::cut) then
    /// [`ContentionWindow::build`].
    pub fn collect(&mut self) -> Contentions {
        let window = self.cut();
        let samples = window.samples();
        Contentions {
            profile: window.build(),
            samples,
        }
    }

    /// Ends the current window and returns its events per stack, not yet symbolized (quick:
    /// the instrumented locks wait for the registry only while it is read).
    pub fn cut(&mut self) -> ContentionWindow {
        let _own = crate::allocator::own_work();
        // Libraries loaded or unloaded since: a new module list for the unwinder.
        crate::unwind::refresh();
        let end = SystemTime::now();
        let duration = end
            .duration_since(self.start)
            .unwrap_or_default()
            .max(Duration::from_nanos(1));
        let mut registry = registry();
        let table = registry.table(self.kind);
        let mut stacks = Vec::new();
        for (i, stack) in table.stacks.iter().enumerate() {
            let before = self.baseline.get(i).copied().unwrap_or_default();
            let count = stack.values.count - before.count;
            let delay = stack.values.delay - before.delay;
            if count > 0 || delay > 0 {
                stacks.push((Arc::clone(&stack.addresses), count, delay));
            }
        }
        if !self.cumulative {
            self.baseline = table.stacks.iter().map(|s| s.values).collect();
        }
        drop(registry);
        let start = self.start;
        if !self.cumulative {
            self.start = end;
        }
        ContentionWindow {
            kind: self.kind,
            start,
            duration,
            stacks,
        }
    }
}

/// A `block` or `mutex` window's events per stack, cut and not yet symbolized.
#[derive(Debug)]
pub struct ContentionWindow {
    kind: ContentionProfile,
    start: SystemTime,
    duration: Duration,
    /// Each stack with events: its addresses, contentions and delay.
    stacks: Vec<(Arc<[usize]>, i64, i64)>,
}

impl ContentionWindow {
    /// The number of samples its profile has (0: nothing to report).
    pub fn samples(&self) -> usize {
        self.stacks.len()
    }

    /// The window's profile: sample types `contentions/count` and `delay/nanoseconds`,
    /// period type `contentions/count`, period 1, one sample per stack, the lock's own frames
    /// cut.
    pub fn build(self) -> Profile {
        let _own = crate::allocator::own_work();
        let mut builder = ProfileBuilder::new();
        builder
            .sample_type("contentions", "count")
            .sample_type("delay", "nanoseconds")
            .default_sample_type("delay")
            .period("contentions", "count", 1)
            .window(self.start, self.duration);
        let mut symbolizer = symbolizer();
        symbolizer.prepare(self.stacks.iter().flat_map(|(a, _, _)| a.iter().copied()));
        let mut ids = ProfileLocations::default();
        // Consumed (so freed) inside the own-work scope, which ends before parameters drop.
        for (addresses, count, delay) in self.stacks {
            let resolved = symbolizer.resolve(&addresses);
            let frames = symbolizer.frames(&resolved);
            // Up to the outermost frame of the lock's (inlined standard-library frames may
            // sit between its own).
            let cut = frames
                .iter()
                .rposition(|&f| is_instrumentation(symbolizer.function(f)))
                .map_or(0, |last| last + 1);
            let cut = if cut < frames.len() { cut } else { 0 };
            let locations = ids.of_frames(&frames, cut, &symbolizer, &mut builder);
            builder.add_sample_at(&locations, &[count, delay], &[]);
        }
        symbolizer.end_batch();
        drop(symbolizer);
        builder.into_profile(self.kind.profile_type())
    }
}
