//! Drop-in locks that feed the `block` and `mutex` profiles.
//!
//! [`Mutex`] and [`RwLock`] wrap the standard library's and have the same shape, without
//! poisoning (like `parking_lot`'s: a panic while holding the lock does not make later
//! `lock()` calls fail). When a thread has to wait for one of them, the wait is offered to
//! the `block` profile at the waiter's stack, and the holder's release, the delay it caused,
//! to the `mutex` profile at the releaser's stack ([`crate::collect::contention`] has the
//! sampling rules: Go's `block_profile_rate` and `mutex_profile_fraction`).
//!
//! The uncontended path costs one atomic load more than the standard lock: acquiring is the
//! standard `try_lock`, and releasing reads the waiter count before unlocking
//! (`benches/locks.rs` measures it). Everything else happens only when a thread waits.
//!
//! ```
//! use caddyprof::sync::Mutex;
//!
//! let counter = Mutex::new(0);
//! *counter.lock() += 1;
//! assert_eq!(*counter.lock(), 1);
//! ```

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{LazyLock, PoisonError, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use crate::collect::contention;

/// The waiters of one lock, for the profiles.
#[derive(Debug, Default)]
struct Contention {
    /// Threads waiting to acquire the lock.
    waiters: AtomicU32,
    /// When the current wait began (nanoseconds since [`EPOCH`], + 1), 0 if none: since the
    /// first waiter arrived, or since the last release that left waiters behind.
    wait_since: AtomicU64,
}

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ns() -> u64 {
    u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
}

impl Contention {
    const fn new() -> Self {
        Contention {
            waiters: AtomicU32::new(0),
            wait_since: AtomicU64::new(0),
        }
    }

    /// Acquires through `acquire` after a failed `try_lock`, as a waiter.
    fn wait<G>(&self, acquire: impl FnOnce() -> G) -> G {
        let start = Instant::now();
        self.waiters.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .wait_since
            .compare_exchange(0, now_ns(), Ordering::Relaxed, Ordering::Relaxed);
        let guard = acquire();
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        contention::block_event(start.elapsed());
        guard
    }

    /// The lock was released while `waiters` threads waited: the delay it caused them.
    #[inline(never)]
    fn released_to_waiters(&self, waiters: u32) {
        let now = now_ns();
        let waiters = u64::from(waiters);
        let since = self
            .wait_since
            .swap(if waiters > 1 { now } else { 0 }, Ordering::Relaxed);
        if since == 0 || waiters == 0 || contention::mutex_fraction() == 0 {
            return;
        }
        let delay = now.saturating_sub(since).saturating_mul(waiters);
        contention::mutex_event(Duration::from_nanos(delay));
    }
}

/// The guard of a `try_lock`-like call, `None` if the lock is taken (poisoning ignored).
fn taken_now<G>(result: TryLockResult<G>) -> Option<G> {
    match result {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// A guard that tells its lock's [`Contention`] about releases others waited for.
struct Tracked<'a, G> {
    contention: &'a Contention,
    inner: ManuallyDrop<G>,
}

impl<'a, G> Tracked<'a, G> {
    fn new(contention: &'a Contention, inner: G) -> Self {
        Tracked {
            contention,
            inner: ManuallyDrop::new(inner),
        }
    }
}

impl<G> Drop for Tracked<'_, G> {
    #[inline]
    fn drop(&mut self) {
        // Read before unlocking: once unlocked, the waiter may leave the count.
        let waiters = self.contention.waiters.load(Ordering::Relaxed);
        // SAFETY: dropped once, here; never used again.
        unsafe { ManuallyDrop::drop(&mut self.inner) };
        if waiters > 0 {
            self.contention.released_to_waiters(waiters);
        }
    }
}

/// A mutual-exclusion lock like [`std::sync::Mutex`], without poisoning, that feeds the
/// `block` and `mutex` profiles.
#[derive(Debug, Default)]
pub struct Mutex<T: ?Sized> {
    contention: Contention,
    inner: std::sync::Mutex<T>,
}

/// Holds a [`Mutex`] locked; unlocks it when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized>(Tracked<'a, std::sync::MutexGuard<'a, T>>);

impl<T> Mutex<T> {
    /// A new unlocked mutex holding `value`.
    pub const fn new(value: T) -> Self {
        Mutex {
            contention: Contention::new(),
            inner: std::sync::Mutex::new(value),
        }
    }

    /// Consumes the mutex, returning its value.
    pub fn into_inner(self) -> T {
        self.inner
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, waiting as long as it takes.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        match taken_now(self.inner.try_lock()) {
            Some(guard) => MutexGuard(Tracked::new(&self.contention, guard)),
            None => self.lock_contended(),
        }
    }

    #[inline(never)]
    fn lock_contended(&self) -> MutexGuard<'_, T> {
        let guard = self
            .contention
            .wait(|| self.inner.lock().unwrap_or_else(PoisonError::into_inner));
        MutexGuard(Tracked::new(&self.contention, guard))
    }

    /// Locks the mutex if it is free now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        taken_now(self.inner.try_lock()).map(|g| MutexGuard(Tracked::new(&self.contention, g)))
    }

    /// The value, through a unique reference (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.inner
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0.inner
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

/// A reader-writer lock like [`std::sync::RwLock`], without poisoning, that feeds the
/// `block` and `mutex` profiles.
#[derive(Debug, Default)]
pub struct RwLock<T: ?Sized> {
    contention: Contention,
    inner: std::sync::RwLock<T>,
}

/// Holds an [`RwLock`] shared; releases it when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized>(Tracked<'a, std::sync::RwLockReadGuard<'a, T>>);

/// Holds an [`RwLock`] exclusively; releases it when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized>(Tracked<'a, std::sync::RwLockWriteGuard<'a, T>>);

impl<T> RwLock<T> {
    /// A new unlocked lock holding `value`.
    pub const fn new(value: T) -> Self {
        RwLock {
            contention: Contention::new(),
            inner: std::sync::RwLock::new(value),
        }
    }

    /// Consumes the lock, returning its value.
    pub fn into_inner(self) -> T {
        self.inner
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Locks for reading, waiting while a writer holds or waits for the lock.
    #[inline]
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        match taken_now(self.inner.try_read()) {
            Some(guard) => RwLockReadGuard(Tracked::new(&self.contention, guard)),
            None => self.read_contended(),
        }
    }

    #[inline(never)]
    fn read_contended(&self) -> RwLockReadGuard<'_, T> {
        let guard = self
            .contention
            .wait(|| self.inner.read().unwrap_or_else(PoisonError::into_inner));
        RwLockReadGuard(Tracked::new(&self.contention, guard))
    }

    /// Locks for writing, waiting while anyone holds the lock.
    #[inline]
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        match taken_now(self.inner.try_write()) {
            Some(guard) => RwLockWriteGuard(Tracked::new(&self.contention, guard)),
            None => self.write_contended(),
        }
    }

    #[inline(never)]
    fn write_contended(&self) -> RwLockWriteGuard<'_, T> {
        let guard = self
            .contention
            .wait(|| self.inner.write().unwrap_or_else(PoisonError::into_inner));
        RwLockWriteGuard(Tracked::new(&self.contention, guard))
    }

    /// The value, through a unique reference (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.inner
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.inner
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0.inner
    }
}
