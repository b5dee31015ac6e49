//! A program that takes SIGPROF or `ITIMER_PROF` over after caddyprof started: caddyprof
//! notices at its next window, says so once, writes no more (empty) CPU profiles, and leaves
//! the program's handler and timer as the program set them, through `stop()`.
//!
//! One test in this binary: the cases change process-wide signal state one after the other.

mod support;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use caddyprof::profile::decode;

use caddyprof::runtime::{self, Running};
use support::host::{
    CapturedLog, counting_handler_installed, files_starting, install_counting_handler,
    prof_timer_interval, set_prof_timer, ticks,
};
use support::hot_spin;

const WINDOW: Duration = Duration::from_millis(200);

/// The latest end of the windows of the CPU profiles written in `dir`.
fn last_window_end(dir: &Path) -> SystemTime {
    files_starting(dir, "cpu-")
        .iter()
        .filter(|name| name.ends_with(".pb.gz"))
        .map(|name| {
            let profile = decode(&std::fs::read(dir.join(name)).unwrap()).unwrap();
            UNIX_EPOCH + Duration::from_nanos((profile.time_nanos + profile.duration_nanos) as u64)
        })
        .max()
        .expect("a CPU profile")
}

/// Starts a file sink of cpu profiles into `dir`, [`WINDOW`] long, and burns CPU until it has
/// written a first one.
fn profiling_cpu(dir: &Path) -> Running {
    let interval = format!("{}ms", WINDOW.as_millis());
    let json = serde_json::json!({"apps": {"profiling": {
        "profile_types": ["cpu"],
        "profilers": [{"profiler": "file", "directory": dir, "interval": interval}],
    }}});
    let config = caddyprof::Config::from_json(&json.to_string()).unwrap();
    let running = runtime::start(&config).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while files_starting(dir, "cpu-").is_empty() {
        assert!(Instant::now() < deadline, "no CPU profile written");
        black_box(hot_spin(Duration::from_millis(50)));
    }
    running
}

#[test]
fn a_program_taking_sigprof_over_after_the_start_is_noticed_and_left_alone() {
    let log = CapturedLog::get();

    // The program sets its own timer interval; caddyprof's handler is still installed.
    let dir = tempfile::tempdir().unwrap();
    let running = profiling_cpu(dir.path());
    set_prof_timer(Duration::from_millis(30));
    let taken_over = SystemTime::now();
    black_box(hot_spin(Duration::from_secs(1)));
    let reports = running.stop();
    assert_eq!(prof_timer_interval(), Duration::from_millis(30));
    let warnings = log.warnings_with("set the ITIMER_PROF timer (every 30ms");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    // No window after the change (it would be empty); the window cut as it happened may
    // end a moment after it.
    assert!(last_window_end(dir.path()) <= taken_over + WINDOW);
    assert_eq!(
        reports[0]
            .errors
            .iter()
            .filter(|e| e.message.contains("ITIMER_PROF"))
            .count(),
        1,
        "{reports:?}"
    );
    set_prof_timer(Duration::ZERO);

    // The program installs its own handler, and a timer at caddyprof's very interval.
    let dir = tempfile::tempdir().unwrap();
    let running = profiling_cpu(dir.path());
    install_counting_handler(libc::SIGPROF);
    set_prof_timer(Duration::from_millis(10));
    let taken_over = SystemTime::now();
    black_box(hot_spin(Duration::from_secs(1)));
    let reports = running.stop();
    assert!(counting_handler_installed(libc::SIGPROF));
    assert_eq!(prof_timer_interval(), Duration::from_millis(10));
    let warnings = log.warnings_with("installed its own SIGPROF handler after");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(last_window_end(dir.path()) <= taken_over + WINDOW);
    assert!(!reports[0].is_clean(), "{reports:?}");
    // The program's timer still runs after the stop.
    let before = ticks();
    black_box(hot_spin(Duration::from_millis(500)));
    assert!(ticks() > before, "the program's timer was disarmed");
}
