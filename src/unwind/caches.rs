//! The rule caches: framehop's cache of the rule found for each address, preallocated in a
//! pool that walks take with a compare-and-swap (none free: the caller falls back to
//! libgcc), and emptied when the module list they were filled for is replaced.

use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use framehop::{CacheNative, MustNotAllocateDuringUnwind};

use super::stats::{EMPTIED, NO_CACHE};

/// The most preallocated rule caches: as many stacks can be unwound at the same moment (each
/// about 32 KiB: framehop's 509 cached rules and gimli's evaluation state). See
/// `fill_pool` for how many are made (two per CPU to begin with).
pub const CACHES: usize = 16;

/// One bit per cache of the pool (`PoolUpkeep::stale`).
pub(super) const ALL_CACHES: u32 = u32::MAX >> (32 - CACHES);
const _: () = assert!(CACHES >= 1 && CACHES <= 32);

pub(super) type Cache = CacheNative<MustNotAllocateDuringUnwind>;

struct CacheSlot {
    busy: AtomicBool,
    cache: AtomicPtr<Cache>,
}

static POOL: [CacheSlot; CACHES] = [const {
    CacheSlot {
        busy: AtomicBool::new(false),
        cache: AtomicPtr::new(std::ptr::null_mut()),
    }
}; CACHES];

/// The pool's upkeep, done by the list builder (off the hot paths only).
pub(super) struct PoolUpkeep {
    /// [`NO_CACHE`] at the last [`fill_pool`].
    pub(super) misses: u64,
    /// The pool's caches (one bit each) still holding rules cached for a replaced list.
    pub(super) stale: u32,
}

/// A cache of the pool, held.
pub(super) struct CacheGuard {
    slot: &'static CacheSlot,
    pub(super) cache: &'static mut Cache,
}

impl CacheGuard {
    pub(super) fn take() -> Option<CacheGuard> {
        for slot in &POOL {
            if slot
                .busy
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                let cache = slot.cache.load(Ordering::Acquire);
                if cache.is_null() {
                    slot.busy.store(false, Ordering::Release);
                    return None;
                }
                // SAFETY: the cache is never freed, and `busy` makes it ours alone.
                return Some(CacheGuard {
                    slot,
                    cache: unsafe { &mut *cache },
                });
            }
        }
        None
    }
}

impl Drop for CacheGuard {
    fn drop(&mut self) {
        self.slot.busy.store(false, Ordering::Release);
    }
}

/// Empties the caches marked stale that no walk holds (those held now are emptied at a later
/// call). framehop tags a cached rule with a 16-bit generation counted across all its
/// unwinders, and each list takes one per object: after some thousands of rebuilds the count
/// wraps, and a rule cached for an old list could be taken for the new one.
pub(super) fn empty_stale_caches(upkeep: &mut PoolUpkeep) {
    for (i, slot) in POOL.iter().enumerate() {
        if upkeep.stale & (1 << i) == 0 {
            continue;
        }
        let cache = slot.cache.load(Ordering::Acquire);
        if cache.is_null() {
            upkeep.stale &= !(1 << i);
            continue;
        }
        if slot
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            // SAFETY: the cache is never freed, and `busy` makes it ours alone (a walk takes
            // `busy` before it reads the cache).
            unsafe { *cache = Cache::default() };
            slot.busy.store(false, Ordering::Release);
            upkeep.stale &= !(1 << i);
            EMPTIED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Allocates the rule caches: two per CPU to begin with (a walk takes a microsecond or two,
/// so more at once means threads preempted mid-walk, or a signal handler walking on a thread
/// that was walking), one more each time walks found none free since the last call, up to
/// [`CACHES`].
pub(super) fn fill_pool(upkeep: &mut PoolUpkeep) {
    let misses = NO_CACHE.load(Ordering::Relaxed);
    let have = POOL
        .iter()
        .filter(|slot| !slot.cache.load(Ordering::Acquire).is_null())
        .count();
    let want = if have == 0 {
        2 * std::thread::available_parallelism().map_or(2, |n| n.get())
    } else if misses > upkeep.misses {
        have + 1
    } else {
        have
    };
    upkeep.misses = misses;
    for slot in POOL.iter().take(want.min(CACHES)) {
        if slot.cache.load(Ordering::Acquire).is_null() {
            let cache = Box::into_raw(Box::new(Cache::default()));
            // Never freed: a reader may hold it at any time.
            slot.cache.store(cache, Ordering::Release);
        }
    }
}
