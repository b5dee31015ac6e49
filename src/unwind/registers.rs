//! Register capture: the registers a walk starts from, taken at the caller (one `asm!`
//! block, inlined into it) or from the `ucontext_t` a signal handler receives.

use std::ffi::c_void;

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

/// The interrupted instruction's address.
///
/// # Safety
/// `context` is the `ucontext_t` the kernel passed to a SA_SIGINFO handler.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub(crate) unsafe fn interrupted_pc(context: *mut c_void) -> usize {
    // SAFETY: per this function's contract.
    unsafe {
        (*(context as *const libc::ucontext_t)).uc_mcontext.gregs[libc::REG_RIP as usize] as usize
    }
}

/// The interrupted instruction's address.
///
/// # Safety
/// `context` is the `ucontext_t` the kernel passed to a SA_SIGINFO handler.
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
pub(crate) unsafe fn interrupted_pc(context: *mut c_void) -> usize {
    // SAFETY: per this function's contract.
    unsafe { (*(context as *const libc::ucontext_t)).uc_mcontext.pc as usize }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
pub(crate) unsafe fn interrupted_pc(_context: *mut c_void) -> usize {
    0
}

#[cfg(target_arch = "x86_64")]
pub(super) fn native_registers(r: Registers) -> framehop::UnwindRegsNative {
    framehop::UnwindRegsNative::new(r.pc, r.sp, r.fp)
}

#[cfg(target_arch = "aarch64")]
pub(super) fn native_registers(r: Registers) -> framehop::UnwindRegsNative {
    framehop::UnwindRegsNative::new(r.lr, r.sp, r.fp)
}
