//! The signals caddyprof sends (SIGURG for thread snapshots, SIGPROF for CPU samples) do not
//! cut a thread's blocking calls short: its handlers are installed with `SA_RESTART`, so a
//! blocking `read` from a pipe restarts, and `std::thread::sleep` sleeps its whole time (it
//! retries the `nanosleep` the signal interrupts). A raw `nanosleep` does return `EINTR`, as
//! `docs/runtime.md` says: the kernel never restarts it.
//!
//! One test in this binary: it installs the process's SIGURG and SIGPROF handlers.

use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use caddyprof::collect::{cpu, threads};

const SLEEP: Duration = Duration::from_millis(1500);

/// Snapshots in which each blocked thread must have answered, so was interrupted in its call
/// (the reader before the test lets its call end).
const INTERRUPTIONS: usize = 5;

fn spawn<T: Send + 'static>(
    name: &str,
    body: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .unwrap()
}

#[test]
fn blocking_reads_and_sleeps_are_not_cut_short() {
    let _cpu = cpu::subscribe(1000).unwrap();
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors into `fds`.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let [read_end, write_end] = fds;

    let reader = spawn("pipe-reader", move || {
        let mut buffer = [0u8; 16];
        // SAFETY: read into a buffer of the given length.
        let n = unsafe { libc::read(read_end, buffer.as_mut_ptr() as *mut c_void, buffer.len()) };
        let error = std::io::Error::last_os_error();
        (n, buffer, error)
    });
    let slept = Arc::new(AtomicBool::new(false));
    let sleeper = spawn("sleeper", {
        let slept = slept.clone();
        move || {
            let began = Instant::now();
            std::thread::sleep(SLEEP);
            slept.store(true, Ordering::Relaxed);
            began.elapsed()
        }
    });
    let raw_sleeper = spawn("raw-sleeper", || {
        let request = libc::timespec {
            tv_sec: 10,
            tv_nsec: 0,
        };
        // SAFETY: nanosleep with a valid request and no remainder wanted.
        let result = unsafe { libc::nanosleep(&request, std::ptr::null_mut()) };
        (result, std::io::Error::last_os_error())
    });

    let answered = |name: &str, snapshot: &[threads::ThreadStack]| {
        snapshot
            .iter()
            .any(|t| t.thread.name == name && !t.stack.is_empty())
    };
    let mut reader_interrupted = 0;
    let mut sleeper_interrupted = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    // (A read cut short ends the reader early: then its result tells.)
    while !reader.is_finished()
        && (reader_interrupted < INTERRUPTIONS
            || !raw_sleeper.is_finished()
            || !slept.load(Ordering::Relaxed))
    {
        assert!(
            Instant::now() < deadline,
            "the threads were not interrupted"
        );
        let snapshot = threads::stacks().unwrap();
        reader_interrupted += usize::from(answered("pipe-reader", &snapshot));
        if !slept.load(Ordering::Relaxed) {
            sleeper_interrupted += usize::from(answered("sleeper", &snapshot));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: write from a valid buffer.
    let written = unsafe { libc::write(write_end, b"restarted".as_ptr() as *const c_void, 9) };
    assert_eq!(written, 9);

    let (n, buffer, error) = reader.join().unwrap();
    assert_eq!(n, 9, "read returned {n}: {error}");
    assert_eq!(&buffer[..9], b"restarted");
    let elapsed = sleeper.join().unwrap();
    assert!(
        sleeper_interrupted >= INTERRUPTIONS,
        "the sleeper was interrupted {sleeper_interrupted} times"
    );
    assert!(
        elapsed >= SLEEP,
        "std::thread::sleep returned after {elapsed:?}"
    );
    let (result, error) = raw_sleeper.join().unwrap();
    assert_eq!(result, -1);
    assert_eq!(error.raw_os_error(), Some(libc::EINTR));
    // SAFETY: our own descriptors.
    unsafe {
        libc::close(read_end);
        libc::close(write_end);
    }
}
