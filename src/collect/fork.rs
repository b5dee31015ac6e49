//! What a child process forked while caddyprof runs inherits of it, and how that copy is made
//! inert.
//!
//! `fork()` copies the whole memory of the process but only the calling thread: every lock a
//! parent thread held at that moment (the Tokio runtime's, the collectors' registries, the
//! symbolizer's) stays held forever in the child, with no thread left to release it. Timers
//! (`ITIMER_PROF`) are not inherited; signal handlers are.
//!
//! So, in a child:
//!
//! - [`crate::runtime::Running`] notices that it runs in another process than the one that
//!   started it and, when dropped or stopped, leaks its state instead of shutting it down
//!   (shutting down the runtime would wait for locks parent threads held);
//! - a `pthread_atfork` child handler, registered when caddyprof first starts, turns off what
//!   would take a lock or record samples on the child's own threads: lock-contention events
//!   (the instrumented locks keep working, uninstrumented) and the CPU sampler's handler
//!   (inert, should the child arm `ITIMER_PROF` for itself);
//! - caddyprof cannot be started again in the child ([`forked_after_start`]): its collectors'
//!   state belongs to threads the child does not have. A program that forks workers starts
//!   caddyprof in each worker, after the fork, and not in their parent.
//!
//! The sampling allocator takes no lock and keeps sampling in the child (its tables are the
//! child's copy).

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{contention, sampler};

/// Set in a child forked after caddyprof started in one of its ancestors.
static FORKED: AtomicBool = AtomicBool::new(false);

/// Registers the `pthread_atfork` child handler (once per process). Called when the runtime
/// starts.
pub(crate) fn prepare() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: registers a child handler that only stores atomics (async-signal-safe,
        // as a handler run after fork() in a multithreaded process must be).
        let error = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        if error != 0 {
            tracing::warn!(
                "pthread_atfork failed ({}): a forked child may record lock contention it \
                 cannot report",
                std::io::Error::from_raw_os_error(error)
            );
        }
    });
}

/// Whether this process is a child forked after caddyprof started in its parent (or an
/// earlier ancestor): caddyprof cannot start here.
pub fn forked_after_start() -> bool {
    FORKED.load(Ordering::Relaxed)
}

/// The `pthread_atfork` child handler: runs in the child's only thread, right after the fork.
extern "C" fn in_child() {
    FORKED.store(true, Ordering::Relaxed);
    // Recording an event takes the registry's lock, which a parent thread may have held.
    contention::set_block_rate(0);
    contention::set_mutex_fraction(0);
    sampler::stop_recording();
}
