//! The SIGPROF sampler: the signal handler, its timer, and the ring of samples it fills.
//!
//! `setitimer(ITIMER_PROF)` delivers SIGPROF at the configured frequency of the process's CPU
//! time, to the thread that is running. The handler records, without allocating or taking a
//! lock, the interrupted thread's name and its stack (instruction addresses, leaf first) into
//! a free slot of a fixed ring; the collector ([`super::cpu`]) drains the ring a few times a
//! second. A sample that finds no free slot is counted and dropped, never waited for.
//!
//! # The program's own SIGPROF
//!
//! SIGPROF and `ITIMER_PROF` are one per process, so caddyprof uses them only when the program
//! does not. [`arm`] refuses (changing nothing) when the program has its own SIGPROF handler or
//! an armed `ITIMER_PROF`; [`check`], at each window, notices a handler or timer the program
//! set since (the handler is no longer caddyprof's, or the interval is not the one caddyprof
//! set) and leaves them alone from then on; [`disarm`] puts back what [`arm`] found, unless
//! the program has taken over since. The one exception is `SIG_DFL`: caddyprof's handler then
//! stays installed, recording nothing, because a SIGPROF still pending after the timer is
//! disarmed would kill the process under `SIG_DFL` ("Profiling timer expired"). A program
//! that arms `ITIMER_PROF` with exactly caddyprof's interval after it started cannot be told
//! from caddyprof; its handler can.
//!
//! # Memory
//!
//! The ring is [`SLOTS`] × [`MAX_DEPTH`] addresses: about 0.5 MiB, allocated once. (pprof-rs
//! 0.15, which this replaces, preallocates and touches a 68 MiB table of 16 384 stacks of 128
//! 32-byte frames; the 10 MiB budget of the runtime could not hold it.)
//!
//! # Unwinding
//!
//! The handler walks the interrupted thread's stack from the interrupted registers (read
//! from the signal's `ucontext`) with [`crate::unwind`]: framehop over the objects'
//! `.eh_frame`, with cached rules, stack reads bounded to the thread's own stack, no
//! allocation, no lock. The leaf is the interrupted instruction, and the handler's own frames
//! never appear. Where that unwinder cannot run (the thread's stack mapping not found, every
//! rule cache in use) libgcc's `_Unwind_Backtrace` (through backtrace-rs's
//! `trace_unsynchronized`) walks from the handler through the kernel's signal trampoline
//! instead, as before; its classic deadlock, the loader lock taken by `dl_iterate_phdr`, is
//! gone with GCC ≥ 12 and glibc ≥ 2.35 (`_dl_find_object`). libgcc crashes unwinding from a
//! PC inside its own unwinder, so such samples are dropped on that path only: see
//! [`super::cpu::DEFAULT_BLOCKLIST`]. Unwind tables (`.eh_frame`) are always present, so no
//! frame-pointer build flag is needed.

use std::cell::UnsafeCell;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::unwind;
use crate::unwind::objects::mapped_objects;

/// The deepest stack recorded, in frames (Go records 64, pprof-rs 128); deeper stacks keep
/// their innermost frames.
pub const MAX_DEPTH: usize = 128;

/// Slots in the ring: at 1 000 Hz on 4 busy cores, 1/8 s of samples.
pub const SLOTS: usize = 512;

/// The length of a thread name on Linux, its terminating NUL included.
const NAME_LEN: usize = 16;

/// Address ranges whose samples are dropped (see [`super::cpu::DEFAULT_BLOCKLIST`]).
const MAX_BLOCKED: usize = 32;

const FREE: u8 = 0;
const WRITING: u8 = 1;
const READY: u8 = 2;
const READING: u8 = 3;

/// One sample, as the signal handler wrote it.
pub struct Sample<'a> {
    /// The thread's id.
    pub tid: u32,
    /// The thread's name, empty when unnamed.
    pub name: &'a [u8],
    /// Instruction addresses, the interrupted one first.
    pub stack: &'a [usize],
}

struct Slot {
    state: AtomicU8,
    data: UnsafeCell<SlotData>,
}

struct SlotData {
    tid: u32,
    depth: u16,
    name: [u8; NAME_LEN],
    stack: [usize; MAX_DEPTH],
}

/// The samples not yet drained. Slots are claimed round-robin; each one moves FREE → WRITING
/// (the handler) → READY → READING (the collector) → FREE, so a writer and a reader never
/// touch one slot at the same time.
struct Ring {
    next: AtomicUsize,
    slots: Box<[Slot]>,
}

// SAFETY: a slot's data is only accessed by whoever moved its state to WRITING or READING.
unsafe impl Sync for Ring {}

static RING: AtomicPtr<Ring> = AtomicPtr::new(std::ptr::null_mut());
static SAMPLING: AtomicBool = AtomicBool::new(false);
static PREPARED: AtomicBool = AtomicBool::new(false);
static BLOCKED: [AtomicU64; 2 * MAX_BLOCKED] = [const { AtomicU64::new(0) }; 2 * MAX_BLOCKED];
static BLOCKED_LEN: AtomicUsize = AtomicUsize::new(0);

/// Samples lost since the process started: no free slot (the ring full), or the PC in a
/// blocklisted library.
static DROPPED_FULL: AtomicU64 = AtomicU64::new(0);
static DROPPED_BLOCKED: AtomicU64 = AtomicU64::new(0);

/// Samples (CPU and thread snapshots) whose stack libgcc's unwinder took.
static LIBGCC_WALKS: AtomicU64 = AtomicU64::new(0);

/// Nanoseconds spent in the signal handler since the process started.
static HANDLER_NANOS: AtomicU64 = AtomicU64::new(0);

/// The time the signal handler has taken so far, all threads together: the sampler's cost
/// on the threads it interrupts (measured in the handler, so not blurred by the machine's
/// other load as an A/B comparison is).
pub fn handler_time() -> std::time::Duration {
    std::time::Duration::from_nanos(HANDLER_NANOS.load(Ordering::Relaxed))
}

/// How many stacks the signal handlers (SIGPROF and SIGURG) had libgcc's unwinder take,
/// where [`crate::unwind`] could not run (a thread's stack bounds unknown, every cache in
/// use): the rest were walked by the faster unwinder.
pub fn libgcc_walks() -> u64 {
    LIBGCC_WALKS.load(Ordering::Relaxed)
}

/// Counts of samples dropped since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// The ring had no free slot (the collector fell behind).
    pub ring_full: u64,
    /// The interrupted instruction was in a blocklisted library and only libgcc's unwinder
    /// could have walked the stack.
    pub blocklisted: u64,
}

/// The samples dropped so far.
pub fn dropped() -> Dropped {
    Dropped {
        ring_full: DROPPED_FULL.load(Ordering::Relaxed),
        blocklisted: DROPPED_BLOCKED.load(Ordering::Relaxed),
    }
}

/// Why the sampler cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    /// This platform is not supported (Linux on x86_64 or aarch64 is).
    #[error("CPU sampling is supported on Linux (x86_64, aarch64) only")]
    Unsupported,
    /// A system call failed.
    #[error("{call} failed: {error}")]
    System {
        /// The call.
        call: &'static str,
        /// The error.
        error: std::io::Error,
    },
    /// The program uses the signal (or timer) itself: caddyprof leaves it alone.
    #[error("{0}")]
    Host(HostSignal),
}

/// The program's own use of a signal or timer caddyprof needs, found before caddyprof used
/// it or since. caddyprof then leaves the program's handler and timer as they are.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostSignal {
    /// A SIGPROF handler was installed before CPU profiling started.
    #[error(
        "the program has its own SIGPROF handler: no CPU profile is taken, and the program's \
         handler and ITIMER_PROF timer are left alone"
    )]
    ProfHandler,
    /// `ITIMER_PROF` was armed before CPU profiling started.
    #[error(
        "the program's ITIMER_PROF timer is armed ({}): no CPU profile is taken, and the \
         program's timer and SIGPROF handler are left alone",
        every(*interval)
    )]
    ProfTimer {
        /// Its interval (zero: it fires once).
        interval: Duration,
    },
    /// Another SIGPROF handler replaced caddyprof's after CPU profiling started.
    #[error(
        "the program installed its own SIGPROF handler after CPU profiling started: no more \
         CPU profiles are taken, and the program's handler and timer are left alone"
    )]
    ProfHandlerSinceStart,
    /// `ITIMER_PROF` was set to another interval after CPU profiling started.
    #[error(
        "the program set the ITIMER_PROF timer ({}, caddyprof's fired every {ours:?}) after CPU \
         profiling started: no more CPU profiles are taken, and the program's timer and \
         SIGPROF handler are left alone",
        every(*found)
    )]
    ProfTimerSinceStart {
        /// caddyprof's interval.
        ours: Duration,
        /// The interval found (zero: disarmed, or firing once).
        found: Duration,
    },
    /// A SIGURG handler was installed before the first thread snapshot.
    #[error(
        "the program has its own SIGURG handler: no thread stacks (goroutine profiles) are \
         taken, and the program's handler is left alone"
    )]
    UrgHandler,
    /// Another SIGURG handler replaced caddyprof's after thread snapshots began.
    #[error(
        "the program installed its own SIGURG handler after thread snapshots began: no more \
         thread stacks (goroutine profiles) are taken, and the program's handler is left alone"
    )]
    UrgHandlerSinceStart,
}

/// A timer interval in words.
fn every(interval: Duration) -> String {
    if interval.is_zero() {
        "set to fire once, or disarmed".to_owned()
    } else {
        format!("every {interval:?}")
    }
}

/// Prepares the sampler (once per process): the ring, and the libraries whose names contain
/// one of `blocklist` as blocked ranges. Installs no handler and arms no timer ([`arm`]).
pub fn prepare(blocklist: &[String]) -> Result<(), SamplerError> {
    if !cfg!(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )) {
        return Err(SamplerError::Unsupported);
    }
    if PREPARED.load(Ordering::Acquire) {
        return Ok(());
    }
    block_libraries(blocklist);
    let slots = (0..SLOTS)
        .map(|_| Slot {
            state: AtomicU8::new(FREE),
            data: UnsafeCell::new(SlotData {
                tid: 0,
                depth: 0,
                name: [0; NAME_LEN],
                stack: [0; MAX_DEPTH],
            }),
        })
        .collect();
    let ring = Box::new(Ring {
        next: AtomicUsize::new(0),
        slots,
    });
    // Never freed: a signal may arrive at any time for the rest of the process's life.
    RING.store(Box::into_raw(ring), Ordering::Release);
    // The unwinder's module list, and libgcc's state (the fallback's; set up on first use):
    // both here, not in a signal handler.
    unwind::refresh();
    backtrace::trace(|_| true);
    PREPARED.store(true, Ordering::Release);
    Ok(())
}

/// What [`arm`] found and set: to [`check`] that the program has not taken SIGPROF over since,
/// and to [`disarm`].
#[derive(Debug)]
pub struct Armed {
    /// The SIGPROF disposition before caddyprof's handler (`SIG_DFL`, `SIG_IGN`, or
    /// caddyprof's own, left from an earlier run).
    previous: libc::sigaction,
    /// The timer's interval as the kernel keeps it.
    interval: libc::timeval,
}

/// Whether the program uses SIGPROF or `ITIMER_PROF` itself (a handler that is neither the
/// default, ignoring, nor caddyprof's; an armed timer while caddyprof's is not armed):
/// `None` when caddyprof may [`arm`].
pub fn host_signal() -> Result<Option<HostSignal>, SamplerError> {
    if !is_ours_or_default(&current_action(libc::SIGPROF, "sigaction(SIGPROF)")?) {
        return Ok(Some(HostSignal::ProfHandler));
    }
    let timer = current_timer()?;
    if timer.it_value.tv_sec != 0 || timer.it_value.tv_usec != 0 {
        return Ok(Some(HostSignal::ProfTimer {
            interval: duration(timer.it_interval),
        }));
    }
    Ok(None)
}

/// Installs the handler (unless it is there) and arms `ITIMER_PROF` at `frequency` Hz (> 0),
/// unless the program uses SIGPROF or the timer itself ([`HostSignal`]): then changes nothing.
/// The sampler must be [prepared](prepare).
pub fn arm(frequency: u32) -> Result<Armed, SamplerError> {
    debug_assert!(PREPARED.load(Ordering::Acquire));
    if let Some(host) = host_signal()? {
        return Err(SamplerError::Host(host));
    }
    let previous = current_action(libc::SIGPROF, "sigaction(SIGPROF)")?;
    if previous.sa_sigaction != on_sigprof as Handler as usize {
        // Nor a thread-stack request (SIGURG, `super::threads`) while this handler unwinds.
        install_handler(
            libc::SIGPROF,
            on_sigprof,
            libc::SIGURG,
            "sigaction(SIGPROF)",
        )?;
    }
    let micros = (1_000_000 / i64::from(frequency.max(1))).max(1);
    let interval = libc::timeval {
        tv_sec: (micros / 1_000_000) as libc::time_t,
        tv_usec: (micros % 1_000_000) as libc::suseconds_t,
    };
    SAMPLING.store(true, Ordering::Release);
    if let Err(e) = set_timer(interval) {
        SAMPLING.store(false, Ordering::Release);
        restore(&previous);
        return Err(e);
    }
    // The kernel may round the interval: what it reports is what later checks compare with.
    let interval = current_timer()?.it_interval;
    Ok(Armed { previous, interval })
}

/// Whether SIGPROF and `ITIMER_PROF` are still as [`arm`] left them: the program may have
/// installed its own handler or set the timer since. A handler or timer that is the
/// program's is then left alone, and the handler records nothing more.
pub fn check(armed: &Armed) -> Result<(), SamplerError> {
    let action = current_action(libc::SIGPROF, "sigaction(SIGPROF)")?;
    let host = if action.sa_sigaction != on_sigprof as Handler as usize {
        Some(HostSignal::ProfHandlerSinceStart)
    } else {
        let found = current_timer()?.it_interval;
        (found.tv_sec != armed.interval.tv_sec || found.tv_usec != armed.interval.tv_usec).then(
            || HostSignal::ProfTimerSinceStart {
                ours: duration(armed.interval),
                found: duration(found),
            },
        )
    };
    match host {
        None => Ok(()),
        Some(host) => {
            SAMPLING.store(false, Ordering::Release);
            Err(SamplerError::Host(host))
        }
    }
}

/// Disarms the timer and puts back the SIGPROF disposition found by [`arm`], unless the
/// program has taken either over since ([`check`]'s error: then nothing is touched).
///
/// `SIG_IGN` is put back; `SIG_DFL` is not: caddyprof's handler stays, and records nothing.
/// A SIGPROF generated just before the timer was disarmed may still be pending on a thread
/// that blocks it, and under `SIG_DFL` it would kill the process ("Profiling timer expired").
pub fn disarm(armed: Armed) -> Result<(), SamplerError> {
    check(&armed)?;
    SAMPLING.store(false, Ordering::Release);
    set_timer(libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    })?;
    if armed.previous.sa_sigaction == libc::SIG_IGN {
        restore(&armed.previous);
    }
    Ok(())
}

/// Puts `action` back as SIGPROF's disposition (best effort: it was valid when read).
fn restore(action: &libc::sigaction) {
    // SAFETY: a disposition sigaction itself returned.
    unsafe { libc::sigaction(libc::SIGPROF, action, std::ptr::null_mut()) };
}

/// Sets `ITIMER_PROF` to fire now + `interval`, then every `interval` (0: disarms it).
fn set_timer(interval: libc::timeval) -> Result<(), SamplerError> {
    let timer = libc::itimerval {
        it_interval: interval,
        it_value: interval,
    };
    // SAFETY: setitimer with a valid itimerval.
    if unsafe { libc::setitimer(libc::ITIMER_PROF, &timer, std::ptr::null_mut()) } != 0 {
        return Err(system("setitimer(ITIMER_PROF)"));
    }
    Ok(())
}

/// The current `ITIMER_PROF` setting.
fn current_timer() -> Result<libc::itimerval, SamplerError> {
    // SAFETY: getitimer writes into a zeroed itimerval.
    unsafe {
        let mut timer: libc::itimerval = std::mem::zeroed();
        if libc::getitimer(libc::ITIMER_PROF, &mut timer) != 0 {
            return Err(system("getitimer(ITIMER_PROF)"));
        }
        Ok(timer)
    }
}

fn duration(interval: libc::timeval) -> Duration {
    Duration::from_secs(interval.tv_sec as u64) + Duration::from_micros(interval.tv_usec as u64)
}

/// The current disposition of `signal`.
pub(crate) fn current_action(
    signal: c_int,
    call: &'static str,
) -> Result<libc::sigaction, SamplerError> {
    // SAFETY: sigaction only reads the current disposition into a zeroed struct.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, std::ptr::null(), &mut current) != 0 {
            return Err(system(call));
        }
        Ok(current)
    }
}

/// Whether SIGPROF's disposition is the default, ignoring, or caddyprof's handler.
fn is_ours_or_default(action: &libc::sigaction) -> bool {
    [libc::SIG_DFL, libc::SIG_IGN, on_sigprof as Handler as usize].contains(&action.sa_sigaction)
}

/// Makes the handler record nothing more (the timer stays as it is): for a forked child, whose
/// ring belongs to its parent's collector thread. Only stores an atomic.
pub(crate) fn stop_recording() {
    SAMPLING.store(false, Ordering::Release);
}

/// Hands every sample in the ring to `each`, and frees its slot.
pub fn drain(mut each: impl FnMut(Sample<'_>)) {
    let ring = RING.load(Ordering::Acquire);
    if ring.is_null() {
        return;
    }
    // SAFETY: the ring is never freed once published.
    let ring = unsafe { &*ring };
    for slot in ring.slots.iter() {
        if slot
            .state
            .compare_exchange(READY, READING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            continue;
        }
        // SAFETY: READING is ours alone; the writer published the data with READY (Release).
        let data = unsafe { &*slot.data.get() };
        let name_len = data.name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        each(Sample {
            tid: data.tid,
            name: &data.name[..name_len],
            stack: &data.stack[..usize::from(data.depth)],
        });
        slot.state.store(FREE, Ordering::Release);
    }
}

/// A signal handler taking the `SA_SIGINFO` arguments.
pub(crate) type Handler = extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void);

/// Installs `handler` for `signal` (`SA_SIGINFO | SA_RESTART`), with `also_blocked` blocked
/// while it runs: the profilers' handlers unwind, and the unwinder is not re-entrant.
pub(crate) fn install_handler(
    signal: c_int,
    handler: Handler,
    also_blocked: c_int,
    call: &'static str,
) -> Result<(), SamplerError> {
    // SAFETY: sigaction with a zeroed struct, a valid handler and a mask built by sigaddset.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaddset(&mut action.sa_mask, also_blocked);
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(system(call));
        }
    }
    Ok(())
}

/// The error of a failed system call, from `errno`.
pub(crate) fn system(call: &'static str) -> SamplerError {
    SamplerError::System {
        call,
        error: std::io::Error::last_os_error(),
    }
}

/// Records the loaded segments of every library whose path contains one of `names`.
fn block_libraries(names: &[String]) {
    let _own = crate::allocator::own_work();
    let ranges: Vec<(u64, u64)> = mapped_objects()
        .into_iter()
        .filter(|o| names.iter().any(|n| o.name.contains(n.as_str())))
        .flat_map(|o| o.segments)
        .take(MAX_BLOCKED)
        .collect();
    for (i, (start, end)) in ranges.iter().enumerate() {
        BLOCKED[2 * i].store(*start, Ordering::Relaxed);
        BLOCKED[2 * i + 1].store(*end, Ordering::Relaxed);
    }
    BLOCKED_LEN.store(ranges.len(), Ordering::Release);
}

/// Whether `pc` lies in a blocklisted library (libgcc's unwinder must not unwind itself).
pub(crate) fn is_blocked(pc: usize) -> bool {
    let pc = pc as u64;
    let len = BLOCKED_LEN.load(Ordering::Acquire);
    (0..len).any(|i| {
        let start = BLOCKED[2 * i].load(Ordering::Relaxed);
        let end = BLOCKED[2 * i + 1].load(Ordering::Relaxed);
        (start..end).contains(&pc)
    })
}

/// The SIGPROF handler. Async-signal-safe: atomics, `clock_gettime`, `prctl`, `gettid` and
/// the unwinders ([`unwind_interrupted`]); no allocation, no lock.
extern "C" fn on_sigprof(_signal: c_int, _info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: errno is thread-local; the handler must leave it as it found it.
    let errno = unsafe { *libc::__errno_location() };
    let start = monotonic_nanos();
    record(context);
    HANDLER_NANOS.fetch_add(monotonic_nanos().wrapping_sub(start), Ordering::Relaxed);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// CLOCK_MONOTONIC in nanoseconds (`clock_gettime` is async-signal-safe).
fn monotonic_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into `now`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(now.tv_nsec as u64)
}

fn record(context: *mut c_void) {
    if !SAMPLING.load(Ordering::Acquire) {
        return;
    }
    let ring = RING.load(Ordering::Acquire);
    if ring.is_null() || context.is_null() {
        return;
    }
    // SAFETY: the kernel passes the interrupted context to an SA_SIGINFO handler.
    let pc = unsafe { unwind::interrupted_pc(context) };
    if pc == 0 {
        return;
    }
    // SAFETY: the ring is never freed once published.
    let ring = unsafe { &*ring };
    let index = ring.next.fetch_add(1, Ordering::Relaxed) % ring.slots.len();
    let slot = &ring.slots[index];
    if slot
        .state
        .compare_exchange(FREE, WRITING, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        DROPPED_FULL.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // SAFETY: WRITING is ours alone until we publish READY.
    let data = unsafe { &mut *slot.data.get() };
    // SAFETY: prctl(PR_GET_NAME) writes at most 16 bytes; gettid has no preconditions.
    unsafe {
        data.name = [0; NAME_LEN];
        libc::prctl(libc::PR_GET_NAME, data.name.as_mut_ptr());
        data.tid = libc::syscall(libc::SYS_gettid) as u32;
    }
    // SAFETY: the handler's context and the pc read from it.
    match unsafe { unwind_interrupted(context, pc, &mut data.stack) } {
        Some(depth) => {
            data.depth = depth as u16;
            slot.state.store(READY, Ordering::Release);
        }
        None => {
            DROPPED_BLOCKED.fetch_add(1, Ordering::Relaxed);
            slot.state.store(FREE, Ordering::Release);
        }
    }
}

/// Unwinds, from inside a signal handler, the interrupted thread's stack into `stack`: the
/// interrupted instruction `pc` first, then its callers; returns the depth, or `None` when
/// the stack could not be unwound safely (see below). Allocates nothing and takes no lock.
///
/// The walk starts from the interrupted registers in `context` ([`crate::unwind`]). Where
/// that unwinder cannot run (the thread's stack bounds unknown, every cache in use), libgcc's
/// unwinder walks from the handler through the signal frame instead, unless `pc` is in a
/// blocklisted library ([`is_blocked`]: libgcc crashes unwinding from inside itself), which
/// gives `None`.
///
/// # Safety
/// `context` is the `ucontext_t` the kernel passed to this SA_SIGINFO handler, and `pc` the
/// interrupted instruction's address read from it.
pub(crate) unsafe fn unwind_interrupted(
    context: *mut c_void,
    pc: usize,
    stack: &mut [usize],
) -> Option<usize> {
    // SAFETY: per this function's contract.
    if let Some(registers) = unsafe { unwind::interrupted_registers(context) }
        && let Ok(depth) = unwind::unwind(registers, stack)
    {
        return Some(depth);
    }
    if is_blocked(pc) {
        return None;
    }
    LIBGCC_WALKS.fetch_add(1, Ordering::Relaxed);
    Some(libgcc_unwind_interrupted(pc, stack))
}

/// libgcc's walk from the handler: the frames from the interrupted instruction `pc` on. If
/// the unwinder never reaches the interrupted frame, the stack is just `pc`. Must not run
/// with `pc` inside libgcc (see [`is_blocked`]).
fn libgcc_unwind_interrupted(pc: usize, stack: &mut [usize]) -> usize {
    let Some(first) = stack.first_mut() else {
        return 0;
    };
    *first = pc;
    let mut depth = 1;
    let mut reached = false;
    // SAFETY: libgcc's unwinder, not re-entered (a handler's own signal is blocked while it
    // runs); backtrace-rs's `trace` lock exists for Windows' dbghelp, not for libgcc.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            let ip = frame.ip() as usize;
            if !reached {
                // The handler's frames and the signal trampoline come first.
                reached = ip == pc;
                return true;
            }
            if depth == stack.len() {
                return false;
            }
            stack[depth] = ip;
            depth += 1;
            true
        });
    }
    if reached { depth } else { 1 }
}
