//! The hot-path stack unwinder: the heap sampler's (inside the global allocator) and the
//! SIGPROF and SIGURG handlers' (inside signal handlers).
//!
//! libgcc's `_Unwind_Backtrace` costs about 18 000 instructions a stack here: it looks up and
//! interprets the DWARF CFI of every frame, every time. This unwinder is
//! [framehop](https://docs.rs/framehop), fed with the same CFI (each loaded object's
//! `.eh_frame_hdr` and `.eh_frame`), with a cache of the rule found for each address, so a
//! stack seen before unwinds with a handful of loads per frame.
//!
//! # What makes it safe to run inside `malloc` and inside a signal handler
//!
//! - **No allocation, no lock, no blocking** while unwinding: framehop with
//!   `MustNotAllocateDuringUnwind` (gimli's evaluation on the stack); its caches are
//!   preallocated (two per CPU, up to [`CACHES`]) and taken with a compare-and-swap (a thread
//!   that finds none free does not wait: the caller falls back to libgcc).
//! - **Stack reads are bounded**: only 8-byte-aligned words in `[sp, stack_end)` of the
//!   current thread's own stack are read, so a wrong rule (stale modules, a garbage frame
//!   pointer) can end the walk early but never fault. The thread's stack mapping is found
//!   once per thread (again if `sp` leaves it) in `/proc/self/maps`, read with `open`/`read`
//!   into a buffer on the stack: only async-signal-safe system calls, no allocation, so it
//!   works inside the allocator and inside a signal handler alike, and is cached in a
//!   `const`-initialized thread-local of `Cell`s (no lazy initialization, no destructor).
//! - **Unknown code ends the walk**: a return address outside every known object's code is
//!   kept as the last frame, and nothing is unwound from it (framehop would guess with frame
//!   pointers).
//! - **The module list is immutable and published through an atomic pointer.** It is built
//!   off the hot paths (`refresh`, called by the collectors' threads and when sampling
//!   starts) whenever `dl_iterate_phdr`'s counters of loaded and unloaded objects have
//!   changed. A replaced list is freed only once no reader is inside any list (a global count
//!   of readers); until then it waits in a short retired list, and while that is full no new
//!   list is built (readers then keep the old one, and unwinding through a newly loaded
//!   library stops at it).
//! - **dlclose**: the CFI read is the program's own mapped `.eh_frame` (a program is never
//!   unloaded) and the vDSO's; every other object's `.eh_frame_hdr` and `.eh_frame` are
//!   **copied** into the list (about 0.25 MiB for libc, libm, libgcc_s and the loader)
//!   inside `dl_iterate_phdr`'s callback, while the loader's lock keeps them mapped, so a
//!   list that outlives a `dlclose` reads only its own memory. A library unloaded and
//!   another loaded at its address before the next `refresh` can give wrong frames for a
//!   moment, never a fault. Copies are capped at [`COPY_LIMIT`] bytes in all; objects beyond
//!   it are unknown.
//!
//! # Same frames as libgcc
//!
//! The same CFI, interpreted the same way, gives the same return addresses:
//! `tests::same_frames_as_libgcc` compares the two from one function. Where this unwinder
//! cannot run (no stack bounds, no free cache, an unsupported platform) `unwind` says so and
//! the caller uses libgcc as before.

use std::cell::Cell;
use std::ffi::c_void;
use std::ops::Deref;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use framehop::{
    CacheNative, ExplicitModuleSectionInfo, Module, MustNotAllocateDuringUnwind, Unwinder,
    UnwinderNative,
};

pub mod objects;

use objects::{each_object, object_name, program_headers};

/// The most preallocated rule caches: as many stacks can be unwound at the same moment (each
/// about 32 KiB: framehop's 509 cached rules and gimli's evaluation state). See
/// `fill_pool` for how many are made (two per CPU to begin with).
pub const CACHES: usize = 16;

/// One bit per cache of the pool (`Builder::stale`).
const ALL_CACHES: u32 = u32::MAX >> (32 - CACHES);
const _: () = assert!(CACHES >= 1 && CACHES <= 32);

/// The most bytes of unwind sections copied from shared libraries, all lists together.
pub const COPY_LIMIT: usize = 16 << 20;

/// Replaced module lists waiting for their last reader; no new list is built while full.
const RETIRED: usize = 4;

/// Times a thread looks its stack up in `/proc/self/maps` before it gives up (the main
/// thread's stack grows; a thread on other stacks, e.g. coroutines, would look again at every
/// sample).
const MAX_LOOKUPS: u32 = 64;

type Cache = CacheNative<MustNotAllocateDuringUnwind>;

/// A loaded object's unwind section: its own mapped memory (the program, the vDSO: never
/// unmapped) or a copy (libraries, which `dlclose` can unmap).
enum Section {
    Mapped(&'static [u8]),
    Copied(Box<[u8]>),
}

impl Deref for Section {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Section::Mapped(bytes) => bytes,
            Section::Copied(bytes) => bytes,
        }
    }
}

/// One immutable list of the loaded objects, as the hot paths read it.
struct Modules {
    unwinder: UnwinderNative<Section, MustNotAllocateDuringUnwind>,
    /// The objects' code, sorted, [start, end): where a walk may go on.
    code: Box<[(u64, u64)]>,
    /// Bytes copied into this list.
    copied: usize,
}

impl Modules {
    fn knows(&self, address: u64) -> bool {
        let i = self.code.partition_point(|&(start, _)| start <= address);
        i > 0 && address < self.code[i - 1].1
    }
}

static CURRENT: AtomicPtr<Modules> = AtomicPtr::new(std::ptr::null_mut());
/// Unwinds in progress (any list): a replaced list is freed when this is 0.
static READERS: AtomicUsize = AtomicUsize::new(0);

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

/// The list builder's state (off the hot paths only).
struct Builder {
    /// `dl_iterate_phdr`'s loaded/unloaded counters when the current list was built.
    generation: Option<(u64, u64)>,
    retired: Vec<*mut Modules>,
    /// [`NO_CACHE`] at the last [`fill_pool`].
    misses: u64,
    /// The pool's caches (one bit each) still holding rules cached for a replaced list.
    stale: u32,
}

// SAFETY: the raw pointers are lists only the builder frees.
unsafe impl Send for Builder {}

static BUILDER: Mutex<Builder> = Mutex::new(Builder {
    generation: None,
    retired: Vec::new(),
    misses: 0,
    stale: 0,
});

static WALKS: AtomicU64 = AtomicU64::new(0);
static NO_STACK: AtomicU64 = AtomicU64::new(0);
static NO_CACHE: AtomicU64 = AtomicU64::new(0);
static REBUILDS: AtomicU64 = AtomicU64::new(0);
static COPIED: AtomicUsize = AtomicUsize::new(0);
static EMPTIED: AtomicU64 = AtomicU64::new(0);

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

/// The registers a walk starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Registers {
    /// The instruction address.
    pub pc: u64,
    /// The stack pointer.
    pub sp: u64,
    /// The frame pointer (rbp, x29).
    pub fp: u64,
    /// The link register (aarch64 only; 0 elsewhere).
    pub lr: u64,
}

/// The registers at this point of the caller (inlined into it): one `asm!` block, so the
/// instruction address, stack pointer and frame pointer belong to the same instruction.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn current_registers() -> Option<Registers> {
    let (pc, sp, fp): (u64, u64, u64);
    // SAFETY: reads three registers; touches no memory, no stack, no flags.
    unsafe {
        std::arch::asm!(
            "lea {pc}, [rip]",
            "mov {sp}, rsp",
            "mov {fp}, rbp",
            pc = out(reg) pc,
            sp = out(reg) sp,
            fp = out(reg) fp,
            options(nomem, nostack, preserves_flags)
        );
    }
    Some(Registers { pc, sp, fp, lr: 0 })
}

/// The registers at this point of the caller (inlined into it): one `asm!` block.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub(crate) fn current_registers() -> Option<Registers> {
    let (pc, sp, fp, lr): (u64, u64, u64, u64);
    // SAFETY: reads four registers; touches no memory, no stack, no flags.
    unsafe {
        std::arch::asm!(
            "adr {pc}, .",
            "mov {sp}, sp",
            "mov {fp}, x29",
            "mov {lr}, x30",
            pc = out(reg) pc,
            sp = out(reg) sp,
            fp = out(reg) fp,
            lr = out(reg) lr,
            options(nomem, nostack, preserves_flags)
        );
    }
    Some(Registers { pc, sp, fp, lr })
}

/// No register capture on this architecture: callers use libgcc.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(always)]
pub(crate) fn current_registers() -> Option<Registers> {
    None
}

/// The interrupted registers of a signal.
///
/// # Safety
/// `context` is the `ucontext_t` the kernel passed to a SA_SIGINFO handler.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub(crate) unsafe fn interrupted_registers(context: *mut c_void) -> Option<Registers> {
    // SAFETY: per this function's contract.
    let gregs = unsafe { &(*(context as *const libc::ucontext_t)).uc_mcontext.gregs };
    Some(Registers {
        pc: gregs[libc::REG_RIP as usize] as u64,
        sp: gregs[libc::REG_RSP as usize] as u64,
        fp: gregs[libc::REG_RBP as usize] as u64,
        lr: 0,
    })
}

/// The interrupted registers of a signal.
///
/// # Safety
/// `context` is the `ucontext_t` the kernel passed to a SA_SIGINFO handler.
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
pub(crate) unsafe fn interrupted_registers(context: *mut c_void) -> Option<Registers> {
    // SAFETY: per this function's contract.
    let mcontext = unsafe { &(*(context as *const libc::ucontext_t)).uc_mcontext };
    Some(Registers {
        pc: mcontext.pc,
        sp: mcontext.sp,
        fp: mcontext.regs[29],
        lr: mcontext.regs[30],
    })
}

/// No register access on this platform.
///
/// # Safety
/// None needed.
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
pub(crate) unsafe fn interrupted_registers(_context: *mut c_void) -> Option<Registers> {
    None
}

/// Why [`unwind`] did not walk the stack (the caller falls back to libgcc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotUnwound {
    /// No module list yet (`refresh` has not run), or an unsupported platform.
    Modules,
    /// The current thread's stack bounds are unknown (or `sp` is outside them).
    Stack,
    /// Every cache is in use.
    Cache,
}

/// The current thread's stack from the calling function on (inlined into it, so the walk
/// starts in the caller's own frame) into `stack`; returns the depth, and whether libgcc's
/// unwinder had to take it because this one could not run. Allocates nothing and takes no
/// lock: callable inside the allocator.
#[inline(always)]
pub(crate) fn current_stack(stack: &mut [usize]) -> (usize, bool) {
    match current_registers().map(|r| unwind(r, stack)) {
        Some(Ok(depth)) => (depth, false),
        _ => (libgcc_stack(stack), true),
    }
}

/// The current stack from libgcc's unwinder, the fallback of [`current_stack`].
#[inline(never)]
fn libgcc_stack(stack: &mut [usize]) -> usize {
    let mut depth = 0;
    // SAFETY: libgcc's unwinder walks this thread's own stack; backtrace-rs's `trace` lock
    // exists for Windows' dbghelp, not for libgcc, and taking it inside the allocator could
    // deadlock.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            if depth == stack.len() {
                return false;
            }
            stack[depth] = frame.ip() as usize;
            depth += 1;
            true
        });
    }
    depth
}

/// Walks the current thread's stack from `registers` into `stack`: `registers.pc` first, then
/// the return addresses of its callers; returns the depth. Allocates nothing, takes no lock,
/// reads only the current thread's stack between `registers.sp` and its end, and the unwind
/// sections of the module list: callable from the allocator and from signal handlers, on the
/// thread whose registers these are.
pub(crate) fn unwind(registers: Registers, stack: &mut [usize]) -> Result<usize, NotUnwound> {
    let Some(stack_end) = stack_end(registers.sp) else {
        NO_STACK.fetch_add(1, Ordering::Relaxed);
        return Err(NotUnwound::Stack);
    };
    let _reading = Reading::enter();
    let modules = CURRENT.load(Ordering::SeqCst);
    if modules.is_null() {
        return Err(NotUnwound::Modules);
    }
    // SAFETY: a published list is freed only when READERS is 0, and we are counted in it.
    let modules = unsafe { &*modules };
    let Some(cache) = CacheGuard::take() else {
        NO_CACHE.fetch_add(1, Ordering::Relaxed);
        return Err(NotUnwound::Cache);
    };
    WALKS.fetch_add(1, Ordering::Relaxed);
    Ok(walk(modules, registers, stack_end, cache.cache, stack))
}

fn walk(
    modules: &Modules,
    registers: Registers,
    stack_end: u64,
    cache: &mut Cache,
    stack: &mut [usize],
) -> usize {
    let low = registers.sp;
    let mut read_stack = |address: u64| -> Result<u64, ()> {
        if !address.is_multiple_of(8) || address < low || address >= stack_end - 7 {
            return Err(());
        }
        // SAFETY: an aligned word inside the current thread's stack mapping, which is
        // mapped and readable for as long as the thread runs.
        Ok(unsafe { std::ptr::read_volatile(address as *const u64) })
    };
    let mut frames = modules.unwinder.iter_frames(
        registers.pc,
        native_registers(registers),
        cache,
        &mut read_stack,
    );
    let mut depth = 0;
    while depth < stack.len() {
        let Ok(Some(frame)) = frames.next() else {
            break;
        };
        let address = frame.address();
        stack[depth] = address as usize;
        depth += 1;
        if !modules.knows(frame.address_for_lookup()) {
            // Its caller is unknown to us: framehop would guess with frame pointers.
            break;
        }
    }
    depth
}

#[cfg(target_arch = "x86_64")]
fn native_registers(r: Registers) -> framehop::UnwindRegsNative {
    framehop::UnwindRegsNative::new(r.pc, r.sp, r.fp)
}

#[cfg(target_arch = "aarch64")]
fn native_registers(r: Registers) -> framehop::UnwindRegsNative {
    framehop::UnwindRegsNative::new(r.lr, r.sp, r.fp)
}

/// Counts a reader in [`READERS`] for its scope.
struct Reading;

impl Reading {
    fn enter() -> Reading {
        READERS.fetch_add(1, Ordering::SeqCst);
        Reading
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        READERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A cache of the pool, held.
struct CacheGuard {
    slot: &'static CacheSlot,
    cache: &'static mut Cache,
}

impl CacheGuard {
    fn take() -> Option<CacheGuard> {
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

struct StackBounds {
    low: Cell<u64>,
    high: Cell<u64>,
    lookups: Cell<u32>,
}

thread_local! {
    // `const`, `Cell`s, no `Drop`: plain thread-local memory, readable from a signal handler
    // and inside the allocator (no lazy initialization, no destructor registration).
    static BOUNDS: StackBounds = const {
        StackBounds { low: Cell::new(0), high: Cell::new(0), lookups: Cell::new(0) }
    };
}

/// The end of the current thread's stack mapping when `sp` lies in it.
///
/// Only the thread's own stack is cached (the main thread's `[stack]`, or the mapping that
/// also holds the thread's static TLS, as glibc lays its threads out): it lasts as long as the
/// thread. Any other mapping (a coroutine's stack, an alternate signal stack) is looked up for
/// that walk only, since it may be unmapped and its addresses reused later; a thread looks up
/// at most [`MAX_LOOKUPS`] times, then its stacks are left to libgcc.
fn stack_end(sp: u64) -> Option<u64> {
    BOUNDS
        .try_with(|b| {
            if (b.low.get()..b.high.get()).contains(&sp) {
                return Some(b.high.get());
            }
            if b.lookups.get() >= MAX_LOOKUPS {
                return None;
            }
            b.lookups.set(b.lookups.get() + 1);
            let mapping = mapping_of(sp)?;
            let tls = b as *const StackBounds as u64;
            if mapping.stack || (mapping.start..mapping.end).contains(&tls) {
                b.low.set(mapping.start);
                b.high.set(mapping.end);
            }
            Some(mapping.end)
        })
        .ok()
        .flatten()
}

/// A readable line of `/proc/self/maps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mapping {
    start: u64,
    end: u64,
    /// Named `[stack]`: the main thread's stack.
    stack: bool,
}

/// The readable mapping of `/proc/self/maps` that contains `address`. Async-signal-safe:
/// `open`, `read`, `close` and a buffer on the stack.
fn mapping_of(address: u64) -> Option<Mapping> {
    // The allocating code may be between a failed system call and reading its errno.
    // SAFETY: errno is thread-local.
    let errno = unsafe { *libc::__errno_location() };
    let found = read_maps(address);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
    found
}

fn read_maps(address: u64) -> Option<Mapping> {
    let path = c"/proc/self/maps";
    // SAFETY: open with a NUL-terminated path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let mut parser = MapsParser::new(address);
    let mut buffer = [0u8; 1024];
    let found = loop {
        // SAFETY: read into a buffer of that length.
        let n = unsafe { libc::read(fd, buffer.as_mut_ptr() as *mut c_void, buffer.len()) };
        if n <= 0 {
            break None;
        }
        if let Some(found) = parser.feed(&buffer[..n as usize]) {
            break found;
        }
    };
    // SAFETY: our descriptor.
    unsafe { libc::close(fd) };
    found
}

/// A `/proc/self/maps` reader, byte by byte (lines can straddle reads):
/// `start-end perms offset device inode [name]`.
struct MapsParser {
    address: u64,
    field: u8,
    start: u64,
    end: u64,
    readable: bool,
    /// The last bytes of the line, for its name.
    tail: u64,
}

impl MapsParser {
    fn new(address: u64) -> Self {
        MapsParser {
            address,
            field: 0,
            start: 0,
            end: 0,
            readable: false,
            tail: 0,
        }
    }

    /// `Some(answer)` once the line of `address` is read (`None` inside when not readable).
    fn feed(&mut self, bytes: &[u8]) -> Option<Option<Mapping>> {
        const STACK: &[u8; 7] = b"[stack]";
        for &byte in bytes {
            match (self.field, byte) {
                (4, b'\n') => {
                    let name = self.tail & 0x00ff_ffff_ffff_ffff;
                    let stack = name == STACK.iter().fold(0, |t, &b| t << 8 | u64::from(b));
                    return Some(self.readable.then_some(Mapping {
                        start: self.start,
                        end: self.end,
                        stack,
                    }));
                }
                (_, b'\n') => {
                    self.field = 0;
                    self.start = 0;
                    self.end = 0;
                }
                (0, b'-') => self.field = 1,
                (0, _) => self.start = self.start << 4 | u64::from(hex(byte)),
                (1, b' ') => {
                    self.field = if (self.start..self.end).contains(&self.address) {
                        3
                    } else {
                        2
                    };
                }
                (1, _) => self.end = self.end << 4 | u64::from(hex(byte)),
                (3, _) => {
                    self.readable = byte == b'r';
                    self.field = 4;
                }
                (4, _) => self.tail = self.tail << 8 | u64::from(byte),
                _ => {}
            }
        }
        None
    }
}

fn hex(byte: u8) -> u8 {
    match byte {
        b'0'..=b'9' => byte - b'0',
        b'a'..=b'f' => byte - b'a' + 10,
        b'A'..=b'F' => byte - b'A' + 10,
        _ => 0,
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
    fill_pool(&mut builder);
    empty_stale_caches(&mut builder);
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
        builder.stale = ALL_CACHES;
        empty_stale_caches(&mut builder);
    }
    free_retired(&mut builder);
}

/// Empties the caches marked stale that no walk holds (those held now are emptied at a later
/// call). framehop tags a cached rule with a 16-bit generation counted across all its
/// unwinders, and each list takes one per object: after some thousands of rebuilds the count
/// wraps, and a rule cached for an old list could be taken for the new one.
fn empty_stale_caches(builder: &mut Builder) {
    for (i, slot) in POOL.iter().enumerate() {
        if builder.stale & (1 << i) == 0 {
            continue;
        }
        let cache = slot.cache.load(Ordering::Acquire);
        if cache.is_null() {
            builder.stale &= !(1 << i);
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
            builder.stale &= !(1 << i);
            EMPTIED.fetch_add(1, Ordering::Relaxed);
        }
    }
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

/// Allocates the rule caches: two per CPU to begin with (a walk takes a microsecond or two,
/// so more at once means threads preempted mid-walk, or a signal handler walking on a thread
/// that was walking), one more each time walks found none free since the last call, up to
/// [`CACHES`].
fn fill_pool(builder: &mut Builder) {
    let misses = NO_CACHE.load(Ordering::Relaxed);
    let have = POOL
        .iter()
        .filter(|slot| !slot.cache.load(Ordering::Acquire).is_null())
        .count();
    let want = if have == 0 {
        2 * std::thread::available_parallelism().map_or(2, |n| n.get())
    } else if misses > builder.misses {
        have + 1
    } else {
        have
    };
    builder.misses = misses;
    for slot in POOL.iter().take(want.min(CACHES)) {
        if slot.cache.load(Ordering::Acquire).is_null() {
            let cache = Box::into_raw(Box::new(Cache::default()));
            // Never freed: a reader may hold it at any time.
            slot.cache.store(cache, Ordering::Release);
        }
    }
}

/// `dl_iterate_phdr`'s counts of objects loaded and unloaded so far.
fn loader_generation() -> Option<(u64, u64)> {
    let mut generation = None;
    each_object(|info| {
        generation = Some((info.dlpi_adds, info.dlpi_subs));
        false
    });
    generation
}

/// One object's unwind data, as found by `dl_iterate_phdr`.
struct Found {
    name: String,
    bias: u64,
    code: (u64, u64),
    /// `.eh_frame_hdr`, runtime address and size.
    hdr: (u64, u64),
    /// The loaded segment holding `.eh_frame`, [start, end) runtime addresses.
    segments: Vec<(u64, u64)>,
    first: bool,
}

/// One object ready for the unwinder: its unwind sections taken (copied where the object
/// can be unloaded) while `dl_iterate_phdr` held the loader's lock, so no `dlclose` can
/// unmap them while they are read.
struct Taken {
    found: Found,
    hdr: Section,
    eh_frame: Section,
    eh_frame_address: u64,
}

/// What [`build`]'s `dl_iterate_phdr` callback fills.
struct Taking {
    objects: Vec<Taken>,
    /// Bytes that may still be copied.
    budget: usize,
    copied: usize,
}

/// Reads one object's unwind sections, inside [`each_object`] (the object stays loaded).
fn take(info: &libc::dl_phdr_info, taking: &mut Taking) {
    let headers = program_headers(info);
    let bias = info.dlpi_addr;
    let mut code: Option<(u64, u64)> = None;
    let mut hdr = None;
    let mut segments = Vec::new();
    for h in headers {
        let start = bias.wrapping_add(h.p_vaddr);
        let end = start.wrapping_add(h.p_memsz);
        if h.p_type == libc::PT_LOAD {
            segments.push((start, start.wrapping_add(h.p_filesz)));
            if h.p_flags & libc::PF_X != 0 {
                code = Some(code.map_or((start, end), |(s, e)| (s.min(start), e.max(end))));
            }
        } else if h.p_type == libc::PT_GNU_EH_FRAME {
            hdr = Some((start, h.p_memsz));
        }
    }
    let name = object_name(info);
    let (Some(code), Some(hdr)) = (code, hdr) else {
        return;
    };
    let found = Found {
        first: taking.objects.is_empty() && name.is_empty(),
        name,
        bias,
        code,
        hdr,
        segments,
    };
    // SAFETY: the object is loaded, and stays so during the callback.
    let Some((hdr, eh_frame, eh_frame_address)) = (unsafe { sections(&found) }) else {
        return;
    };
    // The program is never unmapped, nor is the vDSO; anything else may be (dlclose).
    let copy = !(found.first || found.name.contains("linux-vdso"));
    let (hdr, eh_frame) = if copy {
        let size = hdr.len() + eh_frame.len();
        if size > taking.budget {
            return;
        }
        taking.budget -= size;
        taking.copied += size;
        (
            Section::Copied(hdr.into()),
            Section::Copied(eh_frame.into()),
        )
    } else {
        (Section::Mapped(hdr), Section::Mapped(eh_frame))
    };
    taking.objects.push(Taken {
        found,
        hdr,
        eh_frame,
        eh_frame_address,
    });
}

fn build(copy_budget: usize) -> Modules {
    let mut taking = Taking {
        objects: Vec::new(),
        budget: copy_budget,
        copied: 0,
    };
    each_object(|info| {
        take(info, &mut taking);
        true
    });

    let mut unwinder = UnwinderNative::new();
    let mut code = Vec::new();
    for Taken {
        found: object,
        hdr,
        eh_frame,
        eh_frame_address,
    } in taking.objects
    {
        let svma = |avma: u64, len: usize| avma - object.bias..avma - object.bias + len as u64;
        let info = ExplicitModuleSectionInfo {
            base_svma: 0,
            text_svma: Some(object.code.0 - object.bias..object.code.1 - object.bias),
            eh_frame_svma: Some(svma(eh_frame_address, eh_frame.len())),
            eh_frame_hdr_svma: Some(svma(object.hdr.0, hdr.len())),
            eh_frame_hdr: Some(hdr),
            eh_frame: Some(eh_frame),
            text: None,
            stubs_svma: None,
            stub_helper_svma: None,
            got_svma: None,
            unwind_info: None,
            debug_frame: None,
            text_segment_svma: None,
            text_segment: None,
        };
        unwinder.add_module(Module::new(
            object.name,
            object.code.0..object.code.1,
            object.bias,
            info,
        ));
        code.push(object.code);
    }
    code.sort_unstable();
    Modules {
        unwinder,
        code: code.into_boxed_slice(),
        copied: taking.copied,
    }
}

/// An object's `.eh_frame_hdr` and `.eh_frame` in memory, and the latter's address. The
/// `.eh_frame` is found through the header's pointer and measured by walking its entries up
/// to the zero terminator, within its loaded segment.
///
/// # Safety
/// `object` is being reported by `dl_iterate_phdr` (inside its callback), so it stays loaded.
unsafe fn sections(object: &Found) -> Option<(&'static [u8], &'static [u8], u64)> {
    let (hdr_address, hdr_len) = object.hdr;
    let within = |address: u64, len: u64| {
        object
            .segments
            .iter()
            .find(|&&(s, e)| address >= s && address.checked_add(len).is_some_and(|end| end <= e))
            .copied()
    };
    within(hdr_address, hdr_len.max(8))?;
    // SAFETY: inside a loaded segment (checked above).
    let hdr = unsafe { std::slice::from_raw_parts(hdr_address as *const u8, hdr_len as usize) };
    if hdr.len() < 8 || hdr[0] != 1 {
        return None;
    }
    let eh_frame_address = read_encoded(hdr[1], &hdr[4..], hdr_address + 4)?;
    let (_, segment_end) = within(eh_frame_address, 4)?;
    // SAFETY: [eh_frame_address, segment_end) is inside a loaded segment.
    let rest = unsafe {
        std::slice::from_raw_parts(
            eh_frame_address as *const u8,
            (segment_end - eh_frame_address) as usize,
        )
    };
    let mut at = 0usize;
    while at + 4 <= rest.len() {
        let length = u32::from_le_bytes(rest[at..at + 4].try_into().ok()?);
        if length == 0 {
            at += 4;
            break;
        }
        let next = if length == u32::MAX {
            let long = u64::from_le_bytes(rest.get(at + 4..at + 12)?.try_into().ok()?);
            (at + 12).checked_add(usize::try_from(long).ok()?)?
        } else {
            at + 4 + length as usize
        };
        if next > rest.len() {
            return None;
        }
        at = next;
    }
    Some((hdr, &rest[..at.min(rest.len())], eh_frame_address))
}

/// A DWARF exception-header pointer (`DW_EH_PE_*`) at the start of `bytes`, found at runtime
/// address `address`: the forms linkers write for `eh_frame_ptr`.
fn read_encoded(encoding: u8, bytes: &[u8], address: u64) -> Option<u64> {
    let value = match encoding & 0x0f {
        0x00 | 0x04 => u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?),
        0x03 => u64::from(u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?)),
        0x0b => i64::from(i32::from_le_bytes(bytes.get(..4)?.try_into().ok()?)) as u64,
        0x0c => i64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as u64,
        _ => return None,
    };
    match encoding & 0x70 {
        0x00 => Some(value),
        0x10 => Some(address.wrapping_add(value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_are_parsed_across_reads() {
        let maps = b"00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/dbus-daemon\n\
                     7ffd10000000-7ffd10021000 rw-p 00000000 00:00 0    [stack]\n\
                     7ffd20000000-7ffd20001000 ---p 00000000 00:00 0\n\
                     7ffd30000000-7ffd30001000 rw-p 00000000 00:00 0\n";
        for split in [1, 7, 30, maps.len()] {
            let mut parser = MapsParser::new(0x7ffd_1002_0ff8);
            let mut answer = None;
            for chunk in maps.chunks(split) {
                answer = parser.feed(chunk);
                if answer.is_some() {
                    break;
                }
            }
            let stack = Mapping {
                start: 0x7ffd_1000_0000,
                end: 0x7ffd_1002_1000,
                stack: true,
            };
            assert_eq!(answer, Some(Some(stack)));
        }
        let mut parser = MapsParser::new(0x7ffd_2000_0010);
        assert_eq!(parser.feed(maps), Some(None), "not readable");
        let mut parser = MapsParser::new(0x7ffd_3000_0010);
        let anonymous = Mapping {
            start: 0x7ffd_3000_0000,
            end: 0x7ffd_3000_1000,
            stack: false,
        };
        assert_eq!(parser.feed(maps), Some(Some(anonymous)));
        let mut parser = MapsParser::new(0x10);
        assert_eq!(parser.feed(maps), None, "not mapped");
    }

    #[test]
    fn a_thread_caches_its_own_stack_only() {
        for _ in 0..2 {
            std::thread::spawn(|| {
                let local = 0u64;
                let sp = &local as *const u64 as u64;
                assert!(stack_end(sp).expect("stack bounds") > sp);
                let (low, high, lookups) =
                    BOUNDS.with(|b| (b.low.get(), b.high.get(), b.lookups.get()));
                assert!((low..high).contains(&sp), "cached: a glibc thread's stack");
                assert_eq!(lookups, 1);
                // Not a stack: found, but not cached.
                let heap = Box::new([0u64; 1024]);
                let address = heap.as_ptr() as u64;
                assert!(stack_end(address).is_some());
                assert_eq!(BOUNDS.with(|b| b.high.get()), high);
            })
            .join()
            .expect("thread");
        }
    }

    /// Our stack and libgcc's, from the same function.
    #[inline(never)]
    fn both() -> (Vec<usize>, Vec<usize>) {
        let mut ours = [0usize; 128];
        let registers = current_registers().expect("registers");
        let depth = unwind(registers, &mut ours).expect("unwound");
        let mut libgcc = Vec::new();
        backtrace::trace(|frame| {
            libgcc.push(frame.ip() as usize);
            true
        });
        (ours[..depth].to_vec(), libgcc)
    }

    #[inline(never)]
    fn through_std() -> (Vec<usize>, Vec<usize>) {
        let mut out = Vec::new();
        // A closure, called by an iterator adapter, called by `Vec::extend`.
        out.extend((0..1).map(|_| std::hint::black_box(both())));
        out.pop().expect("one")
    }

    #[inline(never)]
    fn level_two() -> (Vec<usize>, Vec<usize>) {
        std::hint::black_box(through_std())
    }

    #[inline(never)]
    fn level_one() -> (Vec<usize>, Vec<usize>) {
        std::hint::black_box(level_two())
    }

    /// The first frames differ (ours starts at the capture in `both`, libgcc's in
    /// backtrace-rs); from `both`'s return address on, the two must be the same addresses.
    fn assert_same_frames(ours: &[usize], libgcc: &[usize]) {
        let described = || {
            let mut text = String::new();
            for (i, address) in ours.iter().enumerate() {
                let mut name = String::new();
                backtrace::resolve(*address as *mut c_void, |s| {
                    if name.is_empty() {
                        name = s.name().map(|n| n.to_string()).unwrap_or_default();
                    }
                });
                let theirs = libgcc.get(i + libgcc.len().saturating_sub(ours.len()));
                text += &format!("{i:3} {address:#x} {name}  (libgcc {theirs:x?})\n");
            }
            text += &format!("libgcc: {libgcc:x?}");
            text
        };
        let start = libgcc
            .iter()
            .position(|&a| a == ours[1])
            .unwrap_or_else(|| {
                panic!(
                    "libgcc never returns into both()'s caller:\n{}",
                    described()
                )
            });
        let theirs = &libgcc[start..];
        let ours = &ours[1..];
        let common = ours.len().min(theirs.len());
        assert_eq!(ours[..common], theirs[..common], "{}", described());
        // libgcc may go one frame further (the thread's entry, which has no caller to return
        // to) or stop one earlier; nothing more.
        assert!(ours.len().abs_diff(theirs.len()) <= 1, "{}", described());
        assert!(common >= 8, "{}", described());
    }

    #[test]
    fn same_frames_as_libgcc() {
        refresh();
        // Twice: the second walk runs on cached rules.
        for _ in 0..2 {
            let (ours, libgcc) = level_one();
            assert_same_frames(&ours, &libgcc);
        }
        // On a thread of our own too (another stack mapping).
        let (ours, libgcc) = std::thread::spawn(level_one).join().expect("thread");
        assert_same_frames(&ours, &libgcc);
    }

    /// A library loaded and unloaded again and again while other threads walk their stacks
    /// and the list is rebuilt: no fault, every walk goes through.
    #[test]
    fn libraries_come_and_go_while_stacks_are_walked() {
        use std::sync::Arc;
        refresh();
        let stop = Arc::new(AtomicBool::new(false));
        let walkers: Vec<_> = (0..2)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut walks = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let (ours, _) = level_one();
                        assert!(ours.len() >= 8, "{ours:x?}");
                        walks += 1;
                    }
                    walks
                })
            })
            .collect();
        let before = stats();
        let mut cycles = 0;
        for _ in 0..100 {
            // SAFETY: dlopen/dlclose of zlib (part of every Debian system: dpkg needs it),
            // whose code nothing here calls.
            let handle = unsafe { libc::dlopen(c"libz.so.1".as_ptr(), libc::RTLD_NOW) };
            if handle.is_null() {
                break;
            }
            refresh();
            // SAFETY: the handle dlopen just returned.
            unsafe { libc::dlclose(handle) };
            refresh();
            cycles += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let walks: u64 = walkers.into_iter().map(|w| w.join().expect("walker")).sum();
        if cycles == 0 {
            eprintln!("SKIPPED: libz.so.1 cannot be loaded here");
            return;
        }
        assert!(walks > 0);
        let after = stats();
        assert!(after.lists > before.lists, "{after:?}");
        // The caches filled for replaced lists were emptied, even while walks held some.
        assert!(after.emptied_caches > before.emptied_caches, "{after:?}");
    }

    #[test]
    fn the_current_stack_is_found() {
        let local = 0u64;
        let sp = &local as *const u64 as u64;
        let end = stack_end(sp).expect("stack bounds");
        assert!(end > sp);
    }
}
