//! A program that installs its own SIGURG handler after caddyprof began taking thread
//! snapshots: caddyprof notices at the next snapshot, says once that goroutine profiles are
//! no longer available, stops sending SIGURG (no more 50 ms waits for each thread), and
//! `stop()` returns within its deadline with the sink's report.
//!
//! One test in this binary: it changes the process's SIGURG handler.

mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use caddyprof::runtime;
use support::host::{
    CapturedLog, counting_handler_installed, files_starting, install_counting_handler, ticks,
};

/// Threads parked in a channel receive, as a service's idle workers are.
const PARKED: usize = 50;

/// What `stop()` promises.
const STOP_DEADLINE: Duration = Duration::from_secs(2);

#[test]
fn a_sigurg_handler_installed_after_the_start_ends_thread_snapshots() {
    let log = CapturedLog::get();
    let (release, parked) = mpsc::channel::<()>();
    let parked = std::sync::Arc::new(std::sync::Mutex::new(parked));
    let threads: Vec<_> = (0..PARKED)
        .map(|_| {
            let parked = parked.clone();
            std::thread::spawn(move || {
                let _ = parked.lock().map(|p| p.recv());
            })
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let json = serde_json::json!({"apps": {"profiling": {
        "profile_types": ["goroutine"],
        "profilers": [{"profiler": "file", "directory": dir.path(), "interval": "200ms"}],
    }}});
    let config = caddyprof::Config::from_json(&json.to_string()).unwrap();
    let running = runtime::start(&config).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while files_starting(dir.path(), "goroutine-").is_empty() {
        assert!(Instant::now() < deadline, "no goroutine profile written");
        std::thread::sleep(Duration::from_millis(20));
    }

    install_counting_handler(libc::SIGURG);
    let before = ticks();
    std::thread::sleep(Duration::from_secs(1));
    let signalled = ticks() - before;
    let began = Instant::now();
    let reports = running.stop();
    let stopping = began.elapsed();

    assert!(stopping <= STOP_DEADLINE, "stop() took {stopping:?}");
    assert_eq!(reports.len(), 1, "the sink did not report: {reports:?}");
    let unavailable: Vec<_> = reports[0]
        .errors
        .iter()
        .filter(|e| e.message.contains("goroutine:") && e.message.contains("SIGURG"))
        .collect();
    assert_eq!(unavailable.len(), 1, "{reports:?}");
    assert_eq!(unavailable[0].count, 1, "{reports:?}");
    let warnings = log.warnings_with("installed its own SIGURG handler after");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    // The snapshot that noticed it may have sent one signal before; none after.
    assert!(
        signalled <= 1,
        "{signalled} SIGURG sent to the program's handler"
    );
    assert!(counting_handler_installed(libc::SIGURG));

    drop(release);
    for thread in threads {
        thread.join().unwrap();
    }
}
