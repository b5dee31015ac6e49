//! A program that uses SIGPROF or `ITIMER_PROF` itself before caddyprof starts keeps them:
//! caddyprof takes no CPU profile, says why once, and leaves the program's handler and timer
//! exactly as they were, during the run and after `stop()`. With SIGPROF ignored and no
//! timer, caddyprof profiles and puts both back at `stop()`.
//!
//! One test in this binary: the cases change process-wide signal state one after the other.

mod support;

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use caddyprof::runtime::{self, SinkReport};
use support::host::{
    CapturedLog, counting_handler_installed, disposition, files_starting, ignore,
    install_counting_handler, prof_timer_interval, set_prof_timer, ticks,
};
use support::hot_spin;

const HOST_INTERVAL: Duration = Duration::from_millis(20);

/// Runs a file sink of cpu profiles into `dir` while this thread burns CPU for `busy`;
/// returns its report.
fn profile_cpu(dir: &Path, busy: Duration) -> SinkReport {
    let json = serde_json::json!({"apps": {"profiling": {
        "profile_types": ["cpu"],
        "profilers": [{"profiler": "file", "directory": dir, "interval": "1h"}],
    }}});
    let config = caddyprof::Config::from_json(&json.to_string()).unwrap();
    let running = runtime::start(&config).unwrap();
    black_box(hot_spin(busy));
    let mut reports = running.stop();
    assert_eq!(reports.len(), 1, "{reports:?}");
    reports.remove(0)
}

#[test]
fn a_programs_own_sigprof_handler_and_timer_are_left_alone() {
    let log = CapturedLog::get();

    // A handler and a 20 ms timer of the program's.
    install_counting_handler(libc::SIGPROF);
    set_prof_timer(HOST_INTERVAL);
    let dir = tempfile::tempdir().unwrap();
    let before = ticks();
    let report = profile_cpu(dir.path(), Duration::from_secs(1));
    let during = ticks() - before;
    assert!(counting_handler_installed(libc::SIGPROF));
    assert_eq!(prof_timer_interval(), HOST_INTERVAL);
    // About 50 at 20 ms of CPU time; caddyprof's timer took them all before.
    assert!(
        during >= 10,
        "the program's handler got {during} signals in 1 s"
    );
    let warnings = log.warnings_with("SIGPROF handler");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].contains("no CPU profile is taken"),
        "{warnings:#?}"
    );
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.message.contains("SIGPROF handler")),
        "{report:?}"
    );
    assert!(files_starting(dir.path(), "cpu-").is_empty());
    // The program's timer goes on after the stop.
    let after_stop = ticks();
    black_box(hot_spin(Duration::from_millis(500)));
    assert!(ticks() > after_stop);

    // The program's timer alone (SIGPROF ignored): left alone too.
    ignore(libc::SIGPROF);
    set_prof_timer(HOST_INTERVAL);
    let dir = tempfile::tempdir().unwrap();
    let report = profile_cpu(dir.path(), Duration::from_millis(300));
    assert_eq!(prof_timer_interval(), HOST_INTERVAL);
    assert_eq!(disposition(libc::SIGPROF), libc::SIG_IGN);
    let warnings = log.warnings_with("ITIMER_PROF timer is armed (every 20ms)");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(!report.errors.is_empty(), "{report:?}");
    assert!(files_starting(dir.path(), "cpu-").is_empty());

    // SIGPROF ignored and no timer: caddyprof profiles, then puts both back.
    set_prof_timer(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let report = profile_cpu(dir.path(), Duration::from_millis(500));
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(files_starting(dir.path(), "cpu-").len(), 1);
    assert_eq!(prof_timer_interval(), Duration::ZERO);
    assert_eq!(disposition(libc::SIGPROF), libc::SIG_IGN);
}
