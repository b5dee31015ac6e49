//! A forked child's copy of the running profiler is inert: a child that forks while the
//! profiler is busy (10 ms windows of every profile type) and then drops or stops its copy of
//! the handle, as returning from `main` would, returns at once, whatever lock a parent thread
//! held at the fork; the sampling allocator and the instrumented locks keep working in it.
//!
//! One test in this binary: it forks the whole process.

use std::hint::black_box;
use std::time::{Duration, Instant};

use caddyprof::allocator::Sampled;
use caddyprof::collect::contention;
use caddyprof::runtime;

#[global_allocator]
static ALLOC: Sampled<std::alloc::System> = Sampled::new(std::alloc::System);

const FORKS: usize = 1000;

/// How long a child may take before it counts as hung (its work takes microseconds; the
/// margin is for a loaded machine).
const HUNG_AFTER: Duration = Duration::from_secs(10);

/// What a child reports through its exit status.
const CHILD_OK: i32 = 0;
const CHILD_STOP_REPORTED: i32 = 3;
const CHILD_LOCK_EVENTS_ON: i32 = 4;
const CHILD_WAITED: i32 = 5;
const CHILD_STARTED_AGAIN: i32 = 6;

/// "At once", generously: the parent's `stop()` may wait up to 2 s for its sinks; a child has
/// none to wait for.
const AT_ONCE: Duration = Duration::from_secs(1);

/// A lock the parent's threads fight over, so that contention events are recorded while
/// children fork.
static CONTENDED: caddyprof::sync::Mutex<u64> = caddyprof::sync::Mutex::new(0);

/// The child's life after `fork()`: give up the handle, allocate (sampled at every
/// allocation), take a lock, try to start profiling again (refused: the collectors' state
/// belongs to the parent's threads), and leave without running the parent's exit handlers.
fn child(handle: runtime::Running, stop: bool, config: &caddyprof::Config) -> ! {
    let mut status = CHILD_OK;
    let began = Instant::now();
    if stop {
        if !handle.stop().is_empty() {
            status = CHILD_STOP_REPORTED;
        }
    } else {
        drop(handle);
    }
    if began.elapsed() >= AT_ONCE {
        status = CHILD_WAITED;
    }
    // A lock a parent thread may have held at the fork must not be waited for: the child
    // records no contention.
    if contention::block_rate() != 0 || contention::mutex_fraction() != 0 {
        status = CHILD_LOCK_EVENTS_ON;
    }
    caddyprof::allocator::set_rate(1);
    let kept: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 100 + i]).collect();
    black_box(&kept);
    drop(kept);
    // (Not `CONTENDED`: a parent thread held it at the fork, and no thread of the child
    // will release it.)
    let own = caddyprof::sync::Mutex::new(0u64);
    *own.lock() += 1;
    black_box(&own);
    match runtime::start(config) {
        Err(refused) if refused.to_string().contains("forked") => {}
        _ => status = CHILD_STARTED_AGAIN,
    }
    // SAFETY: _exit ends the child without running the parent's atexit handlers or the test
    // harness's code.
    unsafe { libc::_exit(status) }
}

/// Waits for `pid` at most [`HUNG_AFTER`]; `None` if it had to be killed.
fn wait_for(pid: libc::pid_t) -> Option<i32> {
    let deadline = Instant::now() + HUNG_AFTER;
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid status pointer.
        let waited = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(waited >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if waited == pid {
            assert!(
                libc::WIFEXITED(status),
                "child {pid} ended by status {status}"
            );
            return Some(libc::WEXITSTATUS(status));
        }
        if Instant::now() > deadline {
            // SAFETY: our own child, then reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn children_that_drop_or_stop_the_handle_never_hang() {
    let dir = tempfile::tempdir().unwrap();
    let json = serde_json::json!({"apps": {"profiling": {
        "profile_types": ["cpu", "heap", "goroutine", "threadcreate", "block", "mutex"],
        "block_profile_rate": 1,
        "mutex_profile_fraction": 1,
        "profilers": [{"profiler": "file", "directory": dir.path(), "interval": "10ms",
                       "keep": 2}],
    }}});
    let config = caddyprof::Config::from_json(&json.to_string()).unwrap();
    let mut running = Some(runtime::start(&config).unwrap());
    assert!(contention::block_rate() > 0);

    // Busy threads: allocating, and fighting over a lock.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let done = done.clone();
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut guard = CONTENDED.lock();
                    *guard += black_box(vec![1u8; 256]).len() as u64;
                    std::thread::sleep(Duration::from_micros(50));
                }
            })
        })
        .collect();

    let mut outcomes = Vec::new();
    for i in 0..FORKS {
        // Land forks at different moments of the windows.
        std::thread::sleep(Duration::from_micros(fastrand::u64(0..3000)));
        // SAFETY: the child only runs `child`, which ends in _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            child(running.take().unwrap(), i % 2 == 1, &config);
        }
        match wait_for(pid) {
            Some(status) => outcomes.push(status),
            None => panic!(
                "child {i} (of {FORKS}) hung after {}ing its handle",
                if i % 2 == 1 { "stopp" } else { "dropp" }
            ),
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    let failed: Vec<_> = outcomes.iter().filter(|&&s| s != CHILD_OK).collect();
    assert!(failed.is_empty(), "children's statuses: {failed:?}");

    let reports = running.take().unwrap().stop();
    assert_eq!(reports.len(), 1);
    assert!(reports[0].files_written > 0, "{reports:?}");
}
