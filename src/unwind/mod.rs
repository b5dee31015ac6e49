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
//!
//! # Where each part is
//!
//! `registers.rs` captures the registers a walk starts from; `walk.rs` walks from them (or
//! hands the stack to libgcc); `caches.rs` keeps the pool of rule caches; `stack_bounds.rs`
//! finds the thread's stack in `/proc/self/maps`; `modules.rs` builds the module list from
//! the loaded [`objects`], and `publish.rs` publishes it and frees the lists it replaces;
//! `stats.rs` counts what they did.

mod caches;
mod modules;
pub mod objects;
mod publish;
mod registers;
mod stack_bounds;
mod stats;
mod walk;

pub use caches::CACHES;
pub use modules::COPY_LIMIT;
pub(crate) use publish::refresh;
pub(crate) use registers::{interrupted_pc, interrupted_registers};
pub use stats::{Stats, stats};
pub(crate) use walk::{current_stack, unwind};

#[cfg(test)]
mod tests {
    use std::ffi::c_void;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::registers::current_registers;
    use super::*;

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
}
