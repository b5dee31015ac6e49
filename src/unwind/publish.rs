//! How the module list reaches the hot paths: built off them by [`refresh`], published
//! through an atomic pointer, and a replaced list freed only once no walk reads any list.

use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use super::caches::{ALL_CACHES, PoolUpkeep, empty_stale_caches, fill_pool};
use super::modules::{COPY_LIMIT, Modules, build, loader_generation};
use super::stats::{COPIED, REBUILDS};

/// Replaced module lists waiting for their last reader; no new list is built while full.
const RETIRED: usize = 4;

pub(super) static CURRENT: AtomicPtr<Modules> = AtomicPtr::new(std::ptr::null_mut());
/// Unwinds in progress (any list): a replaced list is freed when this is 0.
static READERS: AtomicUsize = AtomicUsize::new(0);

/// The list builder's state (off the hot paths only).
struct Builder {
    /// `dl_iterate_phdr`'s loaded/unloaded counters when the current list was built.
    generation: Option<(u64, u64)>,
    retired: Vec<*mut Modules>,
    /// The rule caches' upkeep, done with the list's.
    pool: PoolUpkeep,
}

// SAFETY: the raw pointers are lists only the builder frees.
unsafe impl Send for Builder {}

static BUILDER: Mutex<Builder> = Mutex::new(Builder {
    generation: None,
    retired: Vec::new(),
    pool: PoolUpkeep {
        misses: 0,
        stale: 0,
    },
});

/// Counts a reader in [`READERS`] for its scope.
pub(super) struct Reading;

impl Reading {
    pub(super) fn enter() -> Reading {
        READERS.fetch_add(1, Ordering::SeqCst);
        Reading
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        READERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Builds the module list if there is none or the loaded objects changed since, and frees
/// replaced lists no reader uses any more. Off the hot paths only (it allocates, and
/// `dl_iterate_phdr` takes the loader's lock): the collectors call it.
pub(crate) fn refresh() {
    if !cfg!(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )) {
        return;
    }
    let mut builder = BUILDER.lock().unwrap_or_else(|e| e.into_inner());
    free_retired(&mut builder);
    fill_pool(&mut builder.pool);
    empty_stale_caches(&mut builder.pool);
    let generation = loader_generation();
    if builder.generation.is_some() && builder.generation == generation {
        return;
    }
    if builder.retired.len() >= RETIRED {
        return;
    }
    let copy_budget = COPY_LIMIT.saturating_sub(
        builder
            .retired
            .iter()
            // SAFETY: retired lists are alive until freed here.
            .map(|&m| unsafe { (*m).copied })
            .sum(),
    );
    let modules = Box::into_raw(Box::new(build(copy_budget)));
    // SAFETY: just built.
    COPIED.store(unsafe { (*modules).copied }, Ordering::Relaxed);
    REBUILDS.fetch_add(1, Ordering::Relaxed);
    let old = CURRENT.swap(modules, Ordering::SeqCst);
    builder.generation = generation;
    if !old.is_null() {
        builder.retired.push(old);
        // What the caches hold was cached for the old list.
        builder.pool.stale = ALL_CACHES;
        empty_stale_caches(&mut builder.pool);
    }
    free_retired(&mut builder);
}

/// Frees the replaced lists if no unwind is in progress: a reader counts itself before it
/// loads [`CURRENT`], so once the count is seen at 0 after the swap, none holds an old list.
fn free_retired(builder: &mut Builder) {
    if builder.retired.is_empty() || READERS.load(Ordering::SeqCst) != 0 {
        return;
    }
    for modules in builder.retired.drain(..) {
        // SAFETY: unpublished, and no reader (see above).
        drop(unsafe { Box::from_raw(modules) });
    }
}
