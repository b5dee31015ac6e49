//! The walk: from a thread's registers to the return addresses of its stack, with framehop
//! over the published module list, a rule cache of the pool and reads bounded to the
//! thread's own stack; libgcc's unwinder where this one cannot run.

use std::sync::atomic::Ordering;

use framehop::Unwinder;

use super::caches::{Cache, CacheGuard};
use super::modules::Modules;
use super::publish::{CURRENT, Reading};
use super::registers::{Registers, current_registers, native_registers};
use super::stack_bounds::stack_end;
use super::stats::{NO_CACHE, NO_STACK, WALKS};

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
