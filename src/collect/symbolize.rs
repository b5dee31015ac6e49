//! Symbolization shared by the collectors: instruction addresses → functions, files, lines.
//!
//! Collectors keep their stacks unresolved (instruction addresses, leaf first) and symbolize a
//! stack only when a profile contains it, each address once: the process-wide [`Symbolizer`]
//! caches every address it has resolved. Its batches ([`Symbolizer::end_batch`]) decide when
//! backtrace-rs's parsed debug info is dropped: at the first batch that needed no new address.
//! Once the set of hot stacks is known new addresses are rare, and keeping the parsed debug
//! info of the whole binary resident is what costs the peers 150–190 MiB of RSS. (Clearing
//! after every batch instead made each later batch re-read and re-parse the debug info: about
//! 1.5 s of CPU per batch in a debug build, visible in the next window's profile.) The memory
//! freed is handed back to the kernel with `malloc_trim` (glibc).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, MutexGuard};

use crate::profile::Frame;

/// A symbolized instruction address.
#[derive(Debug)]
pub struct Location {
    /// The instruction address.
    pub address: u64,
    /// The functions at this address, innermost (inlined) first; at least one.
    pub lines: Vec<Frame<'static>>,
}

/// The address → location cache. Get the process-wide one with [`symbolizer`].
#[derive(Debug, Default)]
pub struct Symbolizer {
    by_address: HashMap<usize, usize>,
    locations: Vec<Location>,
    /// Whether the current batch resolved a new address.
    new_in_batch: bool,
    /// Whether backtrace-rs holds parsed debug info we may drop.
    cache_warm: bool,
}

static SYMBOLIZER: LazyLock<Mutex<Symbolizer>> = LazyLock::new(Mutex::default);

/// The process-wide symbolizer, locked.
pub fn symbolizer() -> MutexGuard<'static, Symbolizer> {
    SYMBOLIZER.lock().unwrap_or_else(|e| e.into_inner())
}

impl Symbolizer {
    /// The locations of a stack of instruction addresses (leaf first), as indexes for
    /// [`location`](Self::location). Zero addresses (some unwinders end stacks with one) are
    /// skipped.
    pub fn resolve(&mut self, addresses: &[usize]) -> Vec<usize> {
        let mut out = Vec::with_capacity(addresses.len());
        for &address in addresses.iter().filter(|&&a| a != 0) {
            let next = self.locations.len();
            let index = *self.by_address.entry(address).or_insert(next);
            if index == next {
                self.locations.push(symbolize(address));
                self.new_in_batch = true;
            }
            out.push(index);
        }
        out
    }

    /// A location resolved before.
    pub fn location(&self, index: usize) -> &Location {
        &self.locations[index]
    }

    /// Ends a batch of [`resolve`](Self::resolve) calls (a collection). Keeps backtrace-rs's
    /// DWARF caches while new addresses keep coming; drops them at the first batch that
    /// needed none.
    pub fn end_batch(&mut self) {
        if std::mem::take(&mut self.new_in_batch) {
            self.cache_warm = true;
        } else if std::mem::take(&mut self.cache_warm) {
            release_symbol_cache();
        }
    }
}

/// Drops backtrace-rs's parsed debug info and gives the freed memory back to the system.
pub fn release_symbol_cache() {
    backtrace::clear_symbol_cache();
    // glibc keeps freed heap memory mapped; the debug info was tens of MiB of small blocks.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only returns free memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Symbolizes one instruction address (a return address, except for the interrupted frame).
fn symbolize(address: usize) -> Location {
    // Return addresses point after the call: look up the call instruction itself. The
    // interrupted frame's address is exact, though, and may be a function's first
    // instruction: when `address - 1` finds nothing, `address` is tried.
    let mut lines = symbolize_exact(address, address.saturating_sub(1));
    if lines.is_empty() {
        lines = symbolize_exact(address, address);
    }
    if lines.is_empty() {
        lines.push(Frame::new(format!("{address:#x}")));
    }
    Location {
        address: address as u64,
        lines,
    }
}

fn symbolize_exact(address: usize, lookup: usize) -> Vec<Frame<'static>> {
    let mut lines = Vec::new();
    backtrace::resolve(lookup as *mut std::ffi::c_void, |symbol| {
        let (function, system_name) = match symbol.name() {
            Some(name) => (
                format!("{name:#}"),
                name.as_str().unwrap_or_default().to_owned(),
            ),
            None => (format!("{address:#x}"), String::new()),
        };
        let mut frame = Frame::new(function);
        if system_name != frame.function {
            frame = frame.system_name(system_name);
        }
        if let Some(file) = symbol.filename() {
            frame = frame.file(file.to_string_lossy().into_owned());
        }
        lines.push(frame.line(symbol.lineno().unwrap_or(0)));
    });
    lines
}
