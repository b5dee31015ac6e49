//! The unwinder's counters: what the walks, the caches and the module lists did.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub(super) static WALKS: AtomicU64 = AtomicU64::new(0);
pub(super) static NO_STACK: AtomicU64 = AtomicU64::new(0);
pub(super) static NO_CACHE: AtomicU64 = AtomicU64::new(0);
pub(super) static REBUILDS: AtomicU64 = AtomicU64::new(0);
pub(super) static COPIED: AtomicUsize = AtomicUsize::new(0);
pub(super) static EMPTIED: AtomicU64 = AtomicU64::new(0);

/// The unwinder's counters since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Stacks unwound.
    pub walks: u64,
    /// Stacks not unwound because the thread's stack bounds were unknown (the caller fell
    /// back to libgcc).
    pub no_stack: u64,
    /// Stacks not unwound because every cache was in use.
    pub no_cache: u64,
    /// Module lists built.
    pub lists: u64,
    /// Bytes of unwind sections copied into the current list.
    pub copied_bytes: usize,
    /// Rule caches emptied because the list they were filled for was replaced.
    pub emptied_caches: u64,
}

/// The unwinder's counters.
pub fn stats() -> Stats {
    Stats {
        walks: WALKS.load(Ordering::Relaxed),
        no_stack: NO_STACK.load(Ordering::Relaxed),
        no_cache: NO_CACHE.load(Ordering::Relaxed),
        lists: REBUILDS.load(Ordering::Relaxed),
        copied_bytes: COPIED.load(Ordering::Relaxed),
        emptied_caches: EMPTIED.load(Ordering::Relaxed),
    }
}
