//! A program with its own SIGURG handler before caddyprof's first thread snapshot keeps it:
//! no SIGURG is sent, goroutine profiles are reported unavailable once (not at every window),
//! and the other types carry on.
//!
//! One test in this binary: it sets the process's SIGURG handler.

mod support;

use std::time::Duration;

use caddyprof::runtime;
use support::host::{
    CapturedLog, counting_handler_installed, files_starting, install_counting_handler, ticks,
};

#[test]
fn a_programs_own_sigurg_handler_is_left_alone() {
    let log = CapturedLog::get();
    install_counting_handler(libc::SIGURG);
    let dir = tempfile::tempdir().unwrap();
    let json = serde_json::json!({"apps": {"profiling": {
        "profile_types": ["goroutine", "threadcreate"],
        "profilers": [{"profiler": "file", "directory": dir.path(), "interval": "100ms"}],
    }}});
    let config = caddyprof::Config::from_json(&json.to_string()).unwrap();
    let running = runtime::start(&config).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let reports = running.stop();

    assert_eq!(reports.len(), 1, "{reports:?}");
    let unavailable: Vec<_> = reports[0]
        .errors
        .iter()
        .filter(|e| e.message.contains("goroutine:"))
        .collect();
    assert_eq!(unavailable.len(), 1, "{reports:?}");
    // Said once, not once a window.
    assert_eq!(unavailable[0].count, 1, "{reports:?}");
    assert!(
        unavailable[0]
            .message
            .contains("the program has its own SIGURG handler"),
        "{unavailable:?}"
    );
    assert_eq!(log.warnings_with("SIGURG").len(), 1);
    assert_eq!(ticks(), 0, "SIGURG sent to the program's handler");
    assert!(counting_handler_installed(libc::SIGURG));
    assert!(files_starting(dir.path(), "goroutine-").is_empty());
    assert!(!files_starting(dir.path(), "threadcreate-").is_empty());
}
