//! Thread snapshots: the `goroutine` profile (the current stack of every thread) and the
//! `threadcreate` profile (the live threads).
//!
//! A Rust process has threads where Go has goroutines. A snapshot lists
//! `/proc/self/task`, then interrupts each thread in turn with `SIGURG` (ignored by default,
//! so one arriving after a snapshot gave up on it does nothing; Go uses it for preemption
//! too) and waits up to [`THREAD_TIMEOUT`] for the thread's handler to unwind its own stack
//! into a static buffer, without allocating or locking (the CPU sampler's unwinder). A thread
//! that does not answer in time (stopped, or blocking the signal) is counted with an empty
//! stack.
//!
//! The handler is installed with `SA_RESTART`: a blocking call the signal interrupts is
//! restarted, except those Linux never restarts (`poll`, `epoll_wait`, `nanosleep`, …: they
//! return `EINTR`; `std::thread::sleep` and Tokio retry them). `docs/runtime.md` lists them.
//!
//! A program with its own `SIGURG` handler keeps it: one installed before the first snapshot
//! is never replaced, one installed since is noticed before each snapshot and whenever a
//! thread does not answer; [`stacks`] then fails with [`HostSignal`] and signals no thread.
//!
//! `threadcreate`: Rust keeps no stack of where a thread was created (Go's own
//! `threadcreate` profile has been broken since 2013, golang/go#6104), so the profile has one
//! sample per live thread, labelled with its name, at a single frame naming the thread.

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::sampler::{self, HostSignal, MAX_DEPTH, SamplerError};
use super::symbolize::{ProfileLocations, symbolizer};
use crate::fields::ProfileType;
use crate::profile::{Frame, Label, Profile, ProfileBuilder};

/// How long a snapshot waits for one thread's stack.
pub const THREAD_TIMEOUT: Duration = Duration::from_millis(50);

/// The signal that asks a thread for its stack.
const SIGNAL: c_int = libc::SIGURG;

const IDLE: u8 = 0;
const REQUESTED: u8 = 1;
const WRITING: u8 = 2;
const DONE: u8 = 3;

/// The one outstanding request: which thread, and the stack it writes.
static STATE: AtomicU8 = AtomicU8::new(IDLE);
static TARGET: AtomicI32 = AtomicI32::new(0);
static DEPTH: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

struct StackBuffer(UnsafeCell<[usize; MAX_DEPTH]>);
// SAFETY: written only by the handler that moved STATE to WRITING, read only by the snapshot
// that saw DONE.
unsafe impl Sync for StackBuffer {}
static BUFFER: StackBuffer = StackBuffer(UnsafeCell::new([0; MAX_DEPTH]));

/// Snapshots are taken one at a time (one request slot).
static SNAPSHOTS: Mutex<()> = Mutex::new(());

/// One live thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadInfo {
    /// Its id.
    pub tid: i32,
    /// Its name (`/proc/self/task/<tid>/comm`), or its id when unnamed.
    pub name: String,
}

/// One thread's stack at a snapshot.
#[derive(Clone, Debug)]
pub struct ThreadStack {
    /// The thread.
    pub thread: ThreadInfo,
    /// Instruction addresses, the interrupted one first; empty if it did not answer.
    pub stack: Vec<usize>,
}

/// The threads of the process now.
pub fn threads() -> Vec<ThreadInfo> {
    let _own = crate::allocator::own_work();
    let Ok(entries) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut threads: Vec<ThreadInfo> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let tid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(entry.path().join("comm"))
                .map(|n| n.trim_end_matches('\n').to_owned())
                .ok()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| tid.to_string());
            Some(ThreadInfo { tid, name })
        })
        .collect();
    threads.sort_by_key(|t| t.tid);
    threads
}

/// The current stack of every thread of the process.
///
/// Fails with [`SamplerError::Host`] when the program has its own SIGURG handler: installed
/// before the first snapshot (caddyprof then never installs its own), or since (noticed before
/// each snapshot, and when a thread does not answer): no thread is asked, and the program's
/// handler is left alone.
pub fn stacks() -> Result<Vec<ThreadStack>, SamplerError> {
    let _own = crate::allocator::own_work();
    let _one_at_a_time = SNAPSHOTS.lock().unwrap_or_else(|e| e.into_inner());
    install()?;
    // Libraries loaded or unloaded since: a new module list for the handler's unwinder.
    crate::unwind::refresh();
    let mut snapshot = Vec::new();
    for thread in threads() {
        let stack = match stack_of(thread.tid) {
            Some(stack) => stack,
            None => {
                // Replaced mid-snapshot, the handler would leave every thread unanswered.
                install()?;
                Vec::new()
            }
        };
        snapshot.push(ThreadStack { thread, stack });
    }
    Ok(snapshot)
}

/// Installs the handler, unless the program handles `SIGURG` itself; once installed, checks
/// that it is still there.
fn install() -> Result<(), SamplerError> {
    let current = sampler::current_action(SIGNAL, "sigaction(SIGURG)")?;
    if INSTALLED.load(Ordering::Acquire) {
        return if current.sa_sigaction == on_request as sampler::Handler as usize {
            Ok(())
        } else {
            Err(SamplerError::Host(HostSignal::UrgHandlerSinceStart))
        };
    }
    if current.sa_sigaction != libc::SIG_DFL && current.sa_sigaction != libc::SIG_IGN {
        return Err(SamplerError::Host(HostSignal::UrgHandler));
    }
    // No CPU sample while this handler unwinds (nor the other way round).
    sampler::install_handler(SIGNAL, on_request, libc::SIGPROF, "sigaction(SIGURG)")?;
    INSTALLED.store(true, Ordering::Release);
    Ok(())
}

/// Asks thread `tid` for its stack and waits for it (at most [`THREAD_TIMEOUT`]); `None` if
/// it did not answer (or has exited).
fn stack_of(tid: i32) -> Option<Vec<usize>> {
    TARGET.store(tid, Ordering::Relaxed);
    STATE.store(REQUESTED, Ordering::Release);
    // SAFETY: tgkill with our own pid; a thread that has exited makes it fail (ESRCH).
    let sent = unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            libc::getpid(),
            libc::c_long::from(tid),
            libc::c_long::from(SIGNAL),
        )
    } == 0;
    let deadline = Instant::now() + THREAD_TIMEOUT;
    loop {
        if STATE.load(Ordering::Acquire) == DONE {
            // SAFETY: DONE: the handler finished writing and will not write again until the
            // next request.
            let stack = unsafe { &*BUFFER.0.get() };
            let depth = DEPTH.load(Ordering::Relaxed).min(MAX_DEPTH);
            let out = stack[..depth].to_vec();
            STATE.store(IDLE, Ordering::Release);
            return Some(out);
        }
        if !sent || Instant::now() >= deadline {
            // Withdraw the request, unless the handler has begun: then it finishes soon.
            if STATE
                .compare_exchange(REQUESTED, IDLE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return None;
            }
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// The `SIGURG` handler: if this thread is the one asked, unwinds its stack. Only atomics,
/// `gettid` and the unwinder: async-signal-safe.
extern "C" fn on_request(_signal: c_int, _info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: errno is thread-local; the handler must leave it as it found it.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
    if TARGET.load(Ordering::Relaxed) == tid
        && !context.is_null()
        && STATE
            .compare_exchange(REQUESTED, WRITING, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        // SAFETY: the kernel passes the interrupted context to an SA_SIGINFO handler.
        let pc = unsafe { crate::unwind::interrupted_pc(context) };
        // SAFETY: WRITING is ours alone until DONE.
        let stack = unsafe { &mut *BUFFER.0.get() };
        let depth = if pc == 0 {
            0
        } else {
            // SAFETY: the handler's context and the pc read from it.
            unsafe { sampler::unwind_interrupted(context, pc, stack) }.unwrap_or_else(|| {
                // Inside libgcc's unwinder, and libgcc would have had to unwind: the leaf only.
                stack[0] = pc;
                1
            })
        };
        DEPTH.store(depth, Ordering::Relaxed);
        STATE.store(DONE, Ordering::Release);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// The `goroutine` profile of a snapshot: sample type and period type `goroutine/count`,
/// period 1, one sample per distinct (thread name, stack) with the number of threads, and a
/// `thread` label.
pub fn goroutine_profile(snapshot: &[ThreadStack], at: SystemTime) -> Profile {
    let _own = crate::allocator::own_work();
    let mut counts: HashMap<(&str, &[usize]), i64> = HashMap::new();
    for thread in snapshot {
        *counts
            .entry((thread.thread.name.as_str(), thread.stack.as_slice()))
            .or_insert(0) += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_unstable();
    let mut builder = ProfileBuilder::new();
    builder
        .sample_type("goroutine", "count")
        .period("goroutine", "count", 1)
        .window(at, Duration::ZERO);
    let mut symbolizer = symbolizer();
    symbolizer.prepare(
        counts
            .iter()
            .flat_map(|((_, stack), _)| stack.iter().copied()),
    );
    let mut ids = ProfileLocations::default();
    for ((name, stack), count) in counts {
        let resolved = symbolizer.resolve(stack);
        let locations = ids.of(&resolved, &symbolizer, &mut builder);
        builder.add_sample_at(&locations, &[count], &[Label::str("thread", name)]);
    }
    symbolizer.end_batch();
    builder.into_profile(ProfileType::Goroutine)
}

/// The `threadcreate` profile of the live threads: sample type and period type
/// `threadcreate/count`, period 1, one sample per thread at a frame `thread <name>`, with a
/// `thread` label.
pub fn threadcreate_profile(threads: &[ThreadInfo], at: SystemTime) -> Profile {
    let _own = crate::allocator::own_work();
    let mut builder = ProfileBuilder::new();
    builder
        .sample_type("threadcreate", "count")
        .period("threadcreate", "count", 1)
        .window(at, Duration::ZERO);
    for thread in threads {
        let frame = Frame::new(format!("thread {}", thread.name));
        builder.add_sample(&[frame], &[1], &[Label::str("thread", &thread.name)]);
    }
    builder.into_profile(ProfileType::ThreadCreate)
}
