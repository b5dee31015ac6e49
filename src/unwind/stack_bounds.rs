//! The current thread's stack bounds: found in `/proc/self/maps` with async-signal-safe
//! system calls and a buffer on the stack, and cached per thread, so a walk reads only words
//! of its own thread's stack.

use std::cell::Cell;
use std::ffi::c_void;

/// Times a thread looks its stack up in `/proc/self/maps` before it gives up (the main
/// thread's stack grows; a thread on other stacks, e.g. coroutines, would look again at every
/// sample).
const MAX_LOOKUPS: u32 = 64;

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
pub(super) fn stack_end(sp: u64) -> Option<u64> {
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

    #[test]
    fn the_current_stack_is_found() {
        let local = 0u64;
        let sp = &local as *const u64 as u64;
        let end = stack_end(sp).expect("stack bounds");
        assert!(end > sp);
    }
}
