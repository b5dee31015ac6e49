//! The runtime host end to end: real CPU sampling of this process, real HTTP to the strict fake
//! servers on 127.0.0.1, real decoding of what they received. The CPU sampler is one per
//! process, so the tests take turns (`SERIAL`). The fake servers run on a runtime of their own
//! (`Running::stop` blocks its caller: it is never called from an async task).

mod support;

use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use caddyprof::profile::{decode, proto};
use caddyprof::runtime::host::LAST_FILES;
use caddyprof::runtime::plan::PlanOptions;
use caddyprof::runtime::{self, SinkReport};
use support::{
    FakeServer, Fault, Kind, Recorded, hot_spin, pyroscope_server, serial, server_runtime,
    sum_in_stacks,
};

/// `Running::stop` returns within its 2 s deadline plus a margin; this is what we allow.
const STOP_BOUND: Duration = Duration::from_millis(2500);

/// Spins for at least `at_least`, then until the wall clock is 400–600 ms past a whole second,
/// so that a stop right after leaves a last (partial) 1 s-aligned window of about half a
/// second.
fn hot_spin_to_mid_second(at_least: Duration) {
    black_box(hot_spin(at_least));
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_millis();
        if (400..600).contains(&ms) || Instant::now() > deadline {
            return;
        }
        black_box(hot_spin(Duration::from_millis(10)));
    }
}

fn function_names(profile: &proto::Profile, sample: &proto::Sample) -> Vec<String> {
    caddyprof::profile::Symbols::new(profile)
        .stack(sample)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// `(samples, samples with hot_spin on their stack)`, by the `samples/count` value.
fn hot_share(profile: &proto::Profile) -> (i64, i64) {
    let mut total = 0;
    let mut hot = 0;
    for sample in &profile.sample {
        total += sample.value[0];
        if function_names(profile, sample)
            .iter()
            .any(|n| n.ends_with("hot_spin"))
        {
            hot += sample.value[0];
        }
    }
    (total, hot)
}

fn dominated_by_hot_spin(profile: &proto::Profile, min_samples: i64) -> bool {
    let (total, hot) = hot_share(profile);
    total >= min_samples && hot * 2 > total
}

/// The CPU uploads a fake Pyroscope server accepted, decoded.
fn pyroscope_cpu_profiles(requests: &[Recorded]) -> Vec<proto::Profile> {
    requests
        .iter()
        .filter(|r| r.status == 200 && r.query_value("units").as_deref() == Some("samples"))
        .map(|r| decode(&r.part("profile").expect("a profile part").data).unwrap())
        .collect()
}

/// Threads of this process named `caddyprof` (the host runtime's).
fn host_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|name| name.trim() == "caddyprof")
                })
                .count()
        })
        .unwrap_or(0)
}

/// Waits (at most `within`) until the host's threads are gone; returns how many are left.
fn host_threads_gone(within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let n = host_threads();
        if n == 0 || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn timed_stop(running: runtime::Running) -> (Vec<SinkReport>, Duration) {
    let began = Instant::now();
    let reports = running.stop();
    (reports, began.elapsed())
}

fn report<'a>(reports: &'a [SinkReport], path: &str) -> &'a SinkReport {
    reports
        .iter()
        .find(|r| r.path == path)
        .unwrap_or_else(|| panic!("no report for {path}: {reports:?}"))
}

#[test]
fn profiling_host_sends_cpu_to_pyroscope_and_profefe() {
    let _serial = serial();
    let rt = server_runtime();
    let pyroscope = pyroscope_server(&rt);
    let profefe = rt.block_on(FakeServer::start(Kind::Profefe));
    let json = serde_json::json!({"apps": {"profiling": {
        "cpu_profile_rate": 100,
        "profile_types": ["cpu"],
        "profilers": [
            {"profiler": "pyroscope", "server_address": pyroscope.url(),
             "application_name": "rt-both", "upload_rate": "1s"},
            {"profiler": "profefe", "address": profefe.url(), "service": "rt-both"},
        ],
    }}});
    let config = caddyprof::Config::from_json(&json.to_string()).unwrap();
    let running = runtime::start(&config).unwrap();
    hot_spin_to_mid_second(Duration::from_secs(2));
    let (reports, took) = timed_stop(running);
    assert!(took <= STOP_BOUND, "stop took {took:?}");
    assert_eq!(reports.len(), 2, "{reports:?}");

    // Pyroscope: a window every second, and the last, partial one at stop.
    let requests = pyroscope.requests();
    let profiles = pyroscope_cpu_profiles(&requests);
    assert!(!profiles.is_empty(), "{requests:?}");
    let shares: Vec<(i64, i64)> = profiles.iter().map(hot_share).collect();
    eprintln!("pyroscope windows (samples, hot_spin): {shares:?}");
    assert!(
        profiles.iter().any(|p| dominated_by_hot_spin(p, 20)),
        "no window dominated by hot_spin: {shares:?}"
    );
    for r in &requests {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.query_value("sampleRate").as_deref(), Some("100"));
        assert!(r.query_value("name").unwrap().starts_with("rt-both{"));
    }
    let py = report(&reports, "apps.profiling.profilers[0]");
    assert!(py.is_clean(), "{py:?}");
    let uploads = py.uploads.unwrap();
    assert_eq!(uploads.delivered, requests.len() as u64, "{py:?}");
    assert!(uploads.delivered >= 2, "{py:?}");

    // profefe: its windows are 15 s, aligned to multiples of 15 s: the stop's final flush
    // delivers the last one, and a boundary may fall inside the run (then two uploads).
    let requests = profefe.requests();
    assert!(matches!(requests.len(), 1 | 2), "{requests:?}");
    let mut profiles = Vec::new();
    for r in &requests {
        assert_eq!(r.status, 200);
        assert_eq!(r.query_value("type").as_deref(), Some("cpu"));
        assert_eq!(r.query_value("service").as_deref(), Some("rt-both"));
        profiles.push(decode(&r.body).unwrap());
    }
    let shares: Vec<(i64, i64)> = profiles.iter().map(hot_share).collect();
    eprintln!("profefe windows (samples, hot_spin): {shares:?}");
    let (total, hot) = shares
        .iter()
        .fold((0, 0), |(t, h), (total, hot)| (t + total, h + hot));
    assert!(total >= 40 && hot * 2 > total, "{shares:?}");
    let pf = report(&reports, "apps.profiling.profilers[1]");
    assert!(pf.is_clean(), "{pf:?}");
    assert_eq!(
        pf.uploads.unwrap().delivered,
        requests.len() as u64,
        "{pf:?}"
    );
    assert_eq!(host_threads_gone(Duration::from_secs(2)), 0);
}

#[test]
fn file_sink_from_a_profilingfile_writes_profiles_and_flame_graphs() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out profiles");
    let file = dir.path().join("Profilingfile");
    std::fs::write(
        &file,
        format!(
            "profiling {{\n\tcpu_profile_rate 100\n\tfile {:?} {{\n\t\tinterval 1s\n\t\tflamegraph\n\t\tprofile_types cpu\n\t}}\n}}\n",
            out.to_str().unwrap()
        ),
    )
    .unwrap();
    let running = runtime::start_file(&file).unwrap();
    hot_spin_to_mid_second(Duration::from_millis(2500));
    let (reports, took) = timed_stop(running);
    assert!(took <= STOP_BOUND, "stop took {took:?}");
    let sink = report(&reports, "apps.profiling.profilers[0]");
    assert!(sink.is_clean(), "{sink:?}");
    assert!(sink.uploads.is_none());

    let mut profiles: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(".pb.gz"))
        .collect();
    let svgs: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    // Names carry the window's UTC start: sorting them sorts by time.
    profiles.sort();
    assert!(profiles.len() >= 3, "{profiles:?}");
    assert!(
        !svgs.is_empty(),
        "no flame graph among {:?}",
        sink.last_files
    );
    // Nothing was pruned (20 files of each kind are kept): each was counted, the last named.
    assert_eq!(
        sink.files_written as usize,
        profiles.len() + svgs.len(),
        "{sink:?}"
    );
    for path in &sink.last_files {
        assert!(profiles.contains(path) || svgs.contains(path), "{path:?}");
    }
    assert!(
        sink.last_files.contains(profiles.last().unwrap()),
        "{sink:?}"
    );
    let svg = std::fs::read_to_string(&svgs[0]).unwrap();
    assert!(
        svg.starts_with("<?xml") || svg.starts_with("<svg"),
        "{svg:.100}"
    );
    let decoded: Vec<proto::Profile> = profiles
        .iter()
        .map(|p| decode(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    let shares: Vec<(i64, i64)> = decoded.iter().map(hot_share).collect();
    eprintln!("file windows (samples, hot_spin), oldest first: {shares:?}");
    assert!(
        decoded.iter().any(|p| dominated_by_hot_spin(p, 20)),
        "no window dominated by hot_spin: {shares:?}"
    );
    // The newest, partial window (about half a second, flushed by stop): hot_spin is in it.
    // Its share is not checked: on a loaded machine the host's own work (symbolizing,
    // rendering the previous flame graph, unoptimized in a debug build) can take much of so
    // short a window.
    let (_, hot) = *shares.last().unwrap();
    assert!(hot > 0, "{shares:?}");
    assert!(
        svgs.iter()
            .any(|p| std::fs::read_to_string(p).unwrap().contains("hot_spin")),
        "no flame graph shows hot_spin"
    );
}

#[test]
fn env_placeholders_are_resolved_and_an_unset_one_is_an_error() {
    let _serial = serial();
    let rt = server_runtime();
    let pyroscope = pyroscope_server(&rt);
    let config = |name: &str| {
        let json = serde_json::json!({"apps": {"pyroscope": {
            "server_address": pyroscope.url(), "application_name": name, "upload_rate": "1s",
            "parameters": {"profile_types": ["cpu"]},
        }}});
        caddyprof::Config::from_json(&json.to_string()).unwrap()
    };
    let options = || PlanOptions {
        env: Box::new(|name| (name == "RT_APP").then(|| "rt-env-app".to_owned())),
        executable_name: "unused".into(),
    };

    let Err(error) = runtime::start_with(&config("{env.RT_UNSET}-x"), &options()) else {
        panic!("started with an unset variable");
    };
    let message = error.render_plain();
    assert!(message.contains("RT_UNSET"), "{message}");
    assert!(
        message.contains("apps.pyroscope.application_name"),
        "{message}"
    );

    let running = runtime::start_with(&config("{env.RT_APP}{region=eu}"), &options()).unwrap();
    black_box(hot_spin(Duration::from_millis(1200)));
    let (reports, took) = timed_stop(running);
    assert!(took <= STOP_BOUND, "stop took {took:?}");
    assert!(reports[0].is_clean(), "{reports:?}");
    let requests = pyroscope.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r.status, 200, "{r:?}");
        let name = r.query_value("name").unwrap();
        let (service, labels) = support::parse_labelset(&name).unwrap();
        assert_eq!(service, "rt-env-app");
        assert_eq!(labels.get("region").map(String::as_str), Some("eu"));
    }
}

#[test]
fn a_sink_that_fails_to_start_stops_the_ones_started_before() {
    let _serial = serial();
    let rt = server_runtime();
    let pyroscope = pyroscope_server(&rt);
    assert_eq!(host_threads_gone(Duration::from_secs(2)), 0);
    // `app{novalue}` passes resolution (with a warning) but is no valid pyroscope name.
    let json = serde_json::json!({"apps": {"profiling": {
        "profile_types": ["cpu"],
        "profilers": [
            {"profiler": "pyroscope", "server_address": pyroscope.url(),
             "application_name": "first", "upload_rate": "1s"},
            {"profiler": "pyroscope", "server_address": pyroscope.url(),
             "application_name": "app{novalue}", "upload_rate": "1s"},
        ],
    }}});
    let config = caddyprof::Config::from_json(&json.to_string()).unwrap();
    let Err(error) = runtime::start(&config) else {
        panic!("started with an invalid application name");
    };
    let message = error.render_plain();
    assert!(
        message.contains("apps.profiling.profilers[1]") && message.contains("application_name"),
        "{message}"
    );
    // The first sink was started (a runtime, an uploader) and stopped: nothing is left
    // running, and nothing is ever uploaded.
    assert_eq!(host_threads_gone(Duration::from_secs(2)), 0);
    black_box(hot_spin(Duration::from_millis(1500)));
    assert!(
        pyroscope.requests().is_empty(),
        "{:?}",
        pyroscope.requests()
    );
}

#[test]
fn a_hung_server_does_not_hold_stop() {
    let _serial = serial();
    let rt = server_runtime();
    let pyroscope = pyroscope_server(&rt);
    pyroscope.inject((0..20).map(|_| Fault::Hang(Duration::from_secs(60))));
    let json = serde_json::json!({"apps": {"pyroscope": {
        "server_address": pyroscope.url(), "application_name": "rt-hang", "upload_rate": "1s",
        "parameters": {"profile_types": ["cpu"]},
    }}});
    let config = caddyprof::Config::from_json(&json.to_string()).unwrap();
    let running = runtime::start(&config).unwrap();
    black_box(hot_spin(Duration::from_millis(1500)));
    // A window has ended by now: its upload hangs (the fake records it only once answered).
    let (reports, took) = timed_stop(running);
    assert!(took <= STOP_BOUND, "stop took {took:?}");
    assert_eq!(reports.len(), 1, "{reports:?}");
    let uploads = reports[0].uploads.unwrap();
    eprintln!("{uploads:?}");
    assert!(!reports[0].is_clean());
    assert_eq!(uploads.delivered, 0, "{uploads:?}");
    assert!(uploads.abandoned >= 1, "{uploads:?}");
    assert_eq!(
        uploads.queued,
        uploads.abandoned + uploads.failed + uploads.dropped,
        "{uploads:?}"
    );
    assert_eq!(host_threads_gone(Duration::from_secs(2)), 0);
}

#[test]
fn stop_mid_retry_makes_one_last_attempt_and_returns_in_time() {
    let _serial = serial();
    let rt = server_runtime();
    let pyroscope = pyroscope_server(&rt);
    pyroscope.inject((0..50).map(|_| Fault::Status(503, "overloaded", None)));
    let json = serde_json::json!({"apps": {"pyroscope": {
        "server_address": pyroscope.url(), "application_name": "rt-retry", "upload_rate": "1s",
        "parameters": {"profile_types": ["cpu"]},
    }}});
    let config = caddyprof::Config::from_json(&json.to_string()).unwrap();
    let running = runtime::start(&config).unwrap();
    black_box(hot_spin(Duration::from_millis(1500)));
    // A window has ended and its upload was refused with a 503: it waits for its retry.
    assert!(!pyroscope.requests().is_empty());
    let (reports, took) = timed_stop(running);
    assert!(took <= STOP_BOUND, "stop took {took:?}");
    let uploads = reports[0].uploads.unwrap();
    eprintln!("{uploads:?}");
    assert_eq!(uploads.delivered, 0, "{uploads:?}");
    assert!(uploads.failed >= 1, "{uploads:?}");
    assert_eq!(
        uploads.queued,
        uploads.failed + uploads.abandoned,
        "{uploads:?}"
    );
    assert!(pyroscope.requests().iter().all(|r| r.status == 503));
}

// ---------------------------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------------------------

fn pyroscope_profilingfile(dir: &Path, url: &str, upload_rate: &str) -> std::path::PathBuf {
    let path = dir.join("cli.Profilingfile");
    std::fs::write(
        &path,
        format!(
            "pyroscope {url} {{\n\tapplication_name rt-cli\n\tupload_rate {upload_rate}\n\tprofile_types cpu\n}}\n"
        ),
    )
    .unwrap();
    path
}

/// `caddyprof ARGS FILE` in FILE's directory, logging at info; stderr piped.
fn caddyprof_command(args: &[&str], file: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_caddyprof"));
    command
        .args(args)
        .arg(file)
        .current_dir(file.parent().unwrap())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

fn caddyprof(args: &[&str], file: &Path) -> Child {
    caddyprof_command(args, file).spawn().unwrap()
}

/// Waits for `child` at most `within`; kills it (and panics) past that. Returns the status
/// and how long it took.
fn wait_bounded(child: &mut Child, within: Duration) -> (ExitStatus, Duration) {
    let began = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, began.elapsed());
        }
        if began.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            panic!("caddyprof still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads the child's stderr on a thread; the receiver gets each line.
fn stderr_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// The child's stderr up to the first line containing `needle` (15 s at most; past that the
/// child is killed and the test fails with `missing` and what it did print).
fn read_until(
    child: &mut Child,
    lines: &std::sync::mpsc::Receiver<String>,
    needle: &str,
    missing: &str,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut log = String::new();
    while !log.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                log.push_str(&line);
                log.push('\n');
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{missing}:\n{log}");
            }
        }
    }
    log
}

/// `caddyprof run FILE` once it has said that profiling started: the child, its stderr's
/// lines, and what it printed so far.
fn run_started(file: &Path) -> (Child, std::sync::mpsc::Receiver<String>, String) {
    let mut child = caddyprof(&["run"], file);
    let lines = stderr_lines(&mut child);
    let log = read_until(
        &mut child,
        &lines,
        "profiling started",
        "caddyprof did not start",
    );
    (child, lines, log)
}

/// Sends SIGTERM to `child`.
fn send_sigterm(child: &Child) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) with the id of a child we have not reaped yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
}

/// Sends SIGTERM to `child` and waits for it (bounded, see `wait_bounded`).
fn terminate(child: &mut Child) -> (ExitStatus, Duration) {
    send_sigterm(child);
    wait_bounded(child, Duration::from_secs(10))
}

fn collect_lines(lines: &std::sync::mpsc::Receiver<String>) -> String {
    let mut all = String::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
        all.push_str(&line);
        all.push('\n');
    }
    all
}

#[test]
fn cli_run_once_pushes_one_window_and_reports_failure() {
    let _serial = serial();
    let rt = server_runtime();
    let pyroscope = pyroscope_server(&rt);
    let dir = tempfile::tempdir().unwrap();
    let file = pyroscope_profilingfile(dir.path(), &pyroscope.url(), "10s");
    let mut child = caddyprof(&["run", "--once", "--window", "2s"], &file);
    let lines = stderr_lines(&mut child);
    let (status, took) = wait_bounded(&mut child, Duration::from_secs(20));
    let log = collect_lines(&lines);
    assert!(status.success(), "{status:?} after {took:?}\n{log}");
    assert!(took < Duration::from_secs(5), "took {took:?}\n{log}");
    let requests = pyroscope.requests();
    assert!(!requests.is_empty(), "{log}");
    for r in &requests {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.query_value("units").as_deref(), Some("samples"));
        decode(&r.part("profile").unwrap().data).unwrap();
    }

    // The server is down: the window cannot be pushed, and the exit status says so.
    let down = rt.block_on(FakeServer::free_addr());
    let file = pyroscope_profilingfile(dir.path(), &format!("http://{down}"), "10s");
    let mut child = caddyprof(&["run", "--once", "--window", "1s"], &file);
    let lines = stderr_lines(&mut child);
    let (status, took) = wait_bounded(&mut child, Duration::from_secs(20));
    let log = collect_lines(&lines);
    assert_eq!(status.code(), Some(1), "{status:?}\n{log}");
    assert!(took < Duration::from_secs(6), "took {took:?}\n{log}");
}

#[test]
fn cli_run_stops_on_sigterm_with_a_final_upload() {
    let _serial = serial();
    let rt = server_runtime();
    let pyroscope = pyroscope_server(&rt);
    let dir = tempfile::tempdir().unwrap();
    // A rate long enough that only the final flush uploads anything.
    let file = pyroscope_profilingfile(dir.path(), &pyroscope.url(), "1h");
    let (mut child, lines, mut log) = run_started(&file);
    std::thread::sleep(Duration::from_millis(300));
    assert!(pyroscope.requests().is_empty());
    let (status, took) = terminate(&mut child);
    log.push_str(&collect_lines(&lines));
    assert!(status.success(), "{status:?}\n{log}");
    assert!(took <= STOP_BOUND, "took {took:?}\n{log}");
    let requests = pyroscope.requests();
    assert_eq!(requests.len(), 1, "{log}");
    assert_eq!(requests[0].status, 200);
    assert_eq!(requests[0].query_value("units").as_deref(), Some("samples"));
}

/// A second SIGTERM while the final flush waits for a hung server stops at once, as Caddy
/// does; the sink's final report is lost, and the exit status says so (not 0).
#[test]
fn cli_run_exits_non_zero_when_final_reports_are_lost() {
    let _serial = serial();
    let rt = server_runtime();
    let pyroscope = pyroscope_server(&rt);
    pyroscope.inject([Fault::Hang(Duration::from_secs(10))]);
    let dir = tempfile::tempdir().unwrap();
    // A rate long enough that only the final flush uploads anything.
    let file = pyroscope_profilingfile(dir.path(), &pyroscope.url(), "1h");
    let (mut child, lines, mut log) = run_started(&file);
    send_sigterm(&child);
    // The final upload has reached the server, which does not answer.
    let deadline = Instant::now() + Duration::from_secs(5);
    while pyroscope.connections() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(pyroscope.connections(), 1, "{log}");
    let (status, took) = terminate(&mut child);
    log.push_str(&collect_lines(&lines));
    assert_eq!(status.code(), Some(1), "{status:?}\n{log}");
    assert!(log.contains("their final reports are lost"), "{log}");
    assert!(!log.contains("sink stopped"), "{log}");
    // It did not wait for the stop deadline.
    assert!(took < Duration::from_secs(1), "took {took:?}\n{log}");
}

/// A server that is down is said at the first failed upload, not when the retries give up
/// minutes later.
#[test]
fn cli_run_says_at_once_that_the_server_is_down() {
    let _serial = serial();
    let rt = server_runtime();
    let down = rt.block_on(FakeServer::free_addr());
    let dir = tempfile::tempdir().unwrap();
    let file = pyroscope_profilingfile(dir.path(), &format!("http://{down}"), "1s");
    let mut child = caddyprof(&["run"], &file);
    let lines = stderr_lines(&mut child);
    // The first window ends within a second; its upload fails at once.
    let mut log = read_until(&mut child, &lines, "failed", "no word of the failed upload");
    let (status, _) = terminate(&mut child);
    log.push_str(&collect_lines(&lines));
    let line = log.lines().find(|l| l.contains("failed")).unwrap();
    assert!(line.contains("WARN"), "{log}");
    assert!(line.contains("cannot connect"), "{log}");
    assert!(line.contains("retrying in"), "{log}");
    assert!(line.contains(&format!("http://{down}/ingest")), "{log}");
    assert!(status.success(), "{status:?}\n{log}");
}

/// The value of `name=N` in a log line.
fn field(line: &str, name: &str) -> u64 {
    let key = format!(" {name}=");
    let at = line
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    line[at + key.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not a number in {line}"))
}

/// The summary of `run --once` accounts for every profile: the idle process's empty CPU
/// profile, which profefe would refuse, is counted as skipped, and the run says why its CPU
/// profiles are empty.
#[test]
fn cli_run_summary_accounts_for_every_profile() {
    let _serial = serial();
    let rt = server_runtime();
    let profefe = rt.block_on(FakeServer::start(Kind::Profefe));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Profilingfile");
    std::fs::write(
        &file,
        format!(
            "profefe {} {{\n\tservice idle\n\tparameters {{\n\t\tprofile_types cpu heap goroutine threadcreate\n\t}}\n}}\n",
            profefe.url()
        ),
    )
    .unwrap();
    let mut child = caddyprof(&["run", "--once", "--window", "1s"], &file);
    let lines = stderr_lines(&mut child);
    let (status, _) = wait_bounded(&mut child, Duration::from_secs(20));
    let log = collect_lines(&lines);
    assert!(status.success(), "{status:?}\n{log}");
    assert!(
        log.contains("its own process") && log.contains("--example demo"),
        "no word of the idle process:\n{log}"
    );
    let summary = log
        .lines()
        .find(|l| l.contains("sink stopped"))
        .unwrap_or_else(|| panic!("no summary:\n{log}"));
    let profiles = field(summary, "profiles");
    let accounted = [
        "delivered",
        "failed",
        "dropped",
        "skipped_empty",
        "skipped_unsupported",
    ]
    .iter()
    .map(|name| field(summary, name))
    .sum::<u64>();
    // One window of each of the four types, or two when one of profefe's 15 s boundaries
    // (aligned to the clock) falls inside the 1 s run.
    assert!(profiles == 4 || profiles == 8, "{summary}");
    assert_eq!(accounted, profiles, "{summary}");
    assert!(field(summary, "skipped_empty") >= 1, "{summary}");
    assert_eq!(
        field(summary, "delivered"),
        profefe.requests().len() as u64,
        "{summary}"
    );
}

/// What resolving a Profilingfile's config warns about points at the line that configured
/// it, not only at a JSON path.
#[test]
fn cli_run_warnings_point_at_the_profilingfile() {
    let _serial = serial();
    let rt = server_runtime();
    let pyroscope = pyroscope_server(&rt);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Profilingfile");
    std::fs::write(
        &file,
        format!(
            "profiling {{\n\tprofile_types cpu\n\tpyroscope {} {{\n\t\tdisable_gc_runs\n\t}}\n}}\n",
            pyroscope.url()
        ),
    )
    .unwrap();
    let mut child = caddyprof(&["run", "--once", "--window", "1s"], &file);
    let lines = stderr_lines(&mut child);
    let (status, _) = wait_bounded(&mut child, Duration::from_secs(20));
    let log = collect_lines(&lines);
    assert!(status.success(), "{status:?}\n{log}");
    let warning = log
        .find("apps.profiling.profilers[0].disable_gc_runs: has no effect")
        .unwrap_or_else(|| panic!("no warning:\n{log}"));
    assert!(
        log[warning..].contains("/Profilingfile:4:3]"),
        "the warning names no line:\n{log}"
    );
}

/// A SIGTERM while the config is still being started stops the process cleanly too (exit 0),
/// rather than killing it before its signal handlers are in place.
#[test]
fn cli_run_stops_cleanly_on_a_sigterm_during_start_up() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("caddy.json");
    // The ignored `http` app makes a note on stderr before the runtime starts.
    std::fs::write(
        &file,
        r#"{"apps": {"http": {}, "profiling": {"profile_types": ["cpu"], "profilers": [{"profiler": "file", "directory": "out", "interval": "1h"}]}}}"#,
    )
    .unwrap();
    let mut child = caddyprof(&["run"], &file);
    let lines = stderr_lines(&mut child);
    let mut log = read_until(&mut child, &lines, "ignored", "no note about the http app");
    let (status, took) = terminate(&mut child);
    log.push_str(&collect_lines(&lines));
    assert!(status.success(), "{status:?}\n{log}");
    // That the file profiler is a caddyprof extension is validate's to say, not run's.
    assert!(!log.contains("extension"), "{log}");
    assert!(took <= STOP_BOUND, "took {took:?}\n{log}");
    // The final flush wrote the (short) window.
    let written: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(
        written
            .iter()
            .any(|n| n.to_string_lossy().ends_with(".pb.gz")),
        "{written:?}\n{log}"
    );
}

/// Two threads taking turns on a caddyprof lock, each holding it for a while.
#[inline(never)]
fn lock_contention_work(lock: &caddyprof::sync::Mutex<u64>, until: Instant) {
    while Instant::now() < until {
        let mut guard = lock.lock();
        *guard += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn threads_and_lock_contention_reach_pyroscope_and_profefe() {
    let _serial = serial();
    let rt = server_runtime();
    let pyroscope = pyroscope_server(&rt);
    let profefe = rt.block_on(FakeServer::start(Kind::Profefe));
    let json = serde_json::json!({"apps": {"profiling": {
        "block_profile_rate": 1,
        "mutex_profile_fraction": 1,
        "profile_types": ["goroutine", "threadcreate", "block", "mutex"],
        "profilers": [
            {"profiler": "pyroscope", "server_address": pyroscope.url(),
             "application_name": "rt-locks", "upload_rate": "1s"},
            {"profiler": "profefe", "address": profefe.url(), "service": "rt-locks"},
        ],
    }}});
    let config = caddyprof::Config::from_json(&json.to_string()).unwrap();
    let running = runtime::start(&config).unwrap();
    let lock = std::sync::Arc::new(caddyprof::sync::Mutex::new(0));
    let until = Instant::now() + Duration::from_millis(1500);
    let workers: Vec<_> = (0..2)
        .map(|i| {
            let lock = std::sync::Arc::clone(&lock);
            std::thread::Builder::new()
                .name(format!("lock-worker-{i}"))
                .spawn(move || lock_contention_work(&lock, until))
                .unwrap()
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let (reports, took) = timed_stop(running);
    assert!(took <= STOP_BOUND, "stop took {took:?}");
    for report in &reports {
        assert!(report.is_clean(), "{report:?}");
    }

    // The last value: goroutine/count, or delay/nanoseconds.
    let in_stack = |profile: &proto::Profile, function: &str| -> i64 {
        sum_in_stacks(profile, function, profile.sample_type.len() - 1)
    };

    // Pyroscope: goroutine, block and mutex with the Go agent's sample_type_config; no
    // threadcreate (the Go agent does not support it either).
    let mut seen = std::collections::BTreeMap::new();
    for r in pyroscope.requests() {
        assert_eq!(r.status, 200, "{r:?}");
        let config =
            String::from_utf8_lossy(&r.part("sample_type_config").unwrap().data).into_owned();
        let profile = decode(&r.part("profile").unwrap().data).unwrap();
        let kind = if config.contains("goroutines") {
            "goroutine"
        } else if config.contains("block_duration") {
            "block"
        } else if config.contains("mutex_duration") {
            "mutex"
        } else {
            panic!("unexpected sample_type_config {config}")
        };
        seen.entry(kind).or_insert_with(Vec::new).push(profile);
    }
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        ["block", "goroutine", "mutex"]
    );
    let block_delay: i64 = seen["block"]
        .iter()
        .map(|p| in_stack(p, "lock_contention_work"))
        .sum();
    let mutex_delay: i64 = seen["mutex"]
        .iter()
        .map(|p| in_stack(p, "lock_contention_work"))
        .sum();
    eprintln!("pyroscope: block {block_delay} ns, mutex {mutex_delay} ns");
    // Two threads taking turns for 1.5 s: each waits about half the time.
    assert!(block_delay > 300_000_000, "block delay {block_delay}");
    assert!(mutex_delay > 300_000_000, "mutex delay {mutex_delay}");
    assert!(
        seen["goroutine"]
            .iter()
            .any(|p| in_stack(p, "lock_contention_work") == 2),
        "a goroutine snapshot shows both workers in lock_contention_work"
    );

    // profefe: every type, block and mutex cumulative (the last holds all the delay).
    let requests = profefe.requests();
    let types: std::collections::BTreeSet<String> = requests
        .iter()
        .map(|r| r.query_value("type").unwrap())
        .collect();
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        ["block", "goroutine", "mutex", "threadcreate"]
    );
    let last_block = requests
        .iter()
        .rfind(|r| r.query_value("type").as_deref() == Some("block"))
        .map(|r| decode(&r.body).unwrap())
        .unwrap();
    assert!(in_stack(&last_block, "lock_contention_work") >= block_delay * 9 / 10);
    // The last one (a 15 s boundary may also fall inside the run).
    let threads = requests
        .iter()
        .rfind(|r| r.query_value("type").as_deref() == Some("threadcreate"))
        .map(|r| decode(&r.body).unwrap())
        .unwrap();
    // Taken at the stop, after the workers ended: the host's own threads remain.
    assert!(threads.string_table.iter().any(|s| s == "caddyprof"));
    assert!(!threads.string_table.iter().any(|s| s == "lock-worker-0"));
}

#[test]
fn an_enabled_lock_profile_with_nothing_to_report_is_not_sent() {
    let _serial = serial();
    let rt = server_runtime();
    // Pyroscope gets per-window deltas (profefe's cumulative totals would hold what earlier
    // tests in this process recorded).
    let pyroscope = pyroscope_server(&rt);
    let json = serde_json::json!({"apps": {"pyroscope": {
        "server_address": pyroscope.url(), "application_name": "rt-quiet",
        "parameters": {"block_profile_rate": 1, "profile_types": ["block", "goroutine"]},
    }}});
    let config = caddyprof::Config::from_json(&json.to_string()).unwrap();
    let running = runtime::start(&config).unwrap();
    // Contention on a standard lock is not seen: only caddyprof::sync locks are instrumented.
    let lock = std::sync::Arc::new(std::sync::Mutex::new(()));
    let guard = lock.lock().unwrap();
    let waiter = {
        let lock = std::sync::Arc::clone(&lock);
        std::thread::spawn(move || drop(lock.lock().unwrap()))
    };
    std::thread::sleep(Duration::from_millis(50));
    drop(guard);
    waiter.join().unwrap();
    let (reports, _) = timed_stop(running);
    assert!(reports[0].is_clean(), "{reports:?}");
    let configs: Vec<String> = pyroscope
        .requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.part("sample_type_config").unwrap().data).into_owned())
        .collect();
    assert_eq!(configs.len(), 1, "{configs:?}");
    assert!(
        configs[0].contains("goroutines"),
        "no empty block profile: {configs:?}"
    );
}

/// Planted secrets: every value contains `SECRET`, which nothing else does.
const PLANTED: [(&str, &str); 4] = [
    ("TOKEN", "tok-SECRET-1"),
    ("PASSWORD", "pw-SECRET-2"),
    ("IGNORED_TOKEN", "tok-SECRET-3"),
    ("URL_USERINFO", "user-SECRET-4:pw-SECRET-5"),
];

/// What `caddyprof run --once` prints on stdout and stderr, at `trace` in `format`, for a
/// config with planted secrets in every secret-bearing field and in the userinfo of its
/// servers' URLs (`pyroscope` and `profefe` are `host:port`).
fn run_with_planted_secrets(
    dir: &Path,
    format: &str,
    pyroscope: &str,
    profefe: &str,
) -> (std::process::ExitStatus, String) {
    let file = dir.join("secrets.json");
    std::fs::write(
        &file,
        r#"{"apps": {
            "profiling": {"profile_types": ["cpu", "goroutine"], "profilers": [
                {"profiler": "pyroscope", "server_address": "http://{env.URL_USERINFO}@{env.PYROSCOPE}",
                 "auth_token": "{env.TOKEN}", "tenant_id": "tenant", "upload_rate": "1s"},
                {"profiler": "pyroscope", "server_address": "http://{env.URL_USERINFO}@{env.PYROSCOPE}",
                 "basic_auth_user": "name", "basic_auth_password": "{env.PASSWORD}",
                 "auth_token": "{env.IGNORED_TOKEN}", "upload_rate": "1s"},
                {"profiler": "pyroscope", "server_address": "http://{env.URL_USERINFO}@{env.PYROSCOPE}",
                 "upload_rate": "1s"},
                {"profiler": "file", "directory": "out", "interval": "1s"}
            ]},
            "profefe": {"address": "http://{env.URL_USERINFO}@{env.PROFEFE}",
                        "parameters": {"profile_types": ["goroutine"]}}
        }}"#,
    )
    .unwrap();
    let out = dir.join(format!("{format}.out"));
    let mut child = caddyprof_command(
        &["run", "--once", "--window", "1s", "--log-format", format],
        &file,
    )
    .envs(PLANTED)
    .env("PYROSCOPE", pyroscope)
    .env("PROFEFE", profefe)
    .env("RUST_LOG", "trace")
    .stdout(std::fs::File::create(&out).unwrap())
    .spawn()
    .unwrap();
    let lines = stderr_lines(&mut child);
    let (status, _) = wait_bounded(&mut child, Duration::from_secs(30));
    let mut output = collect_lines(&lines);
    output.push_str(&std::fs::read_to_string(&out).unwrap());
    (status, output)
}

/// Every byte of every file under `dir`.
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    files
}

/// Secrets never leave, whatever happens to the uploads (ok, a 401 or 503 whose body echoes
/// the request's headers, a server down, an invalid URL), in human and JSON logs at `trace`:
/// not as written, nor in the `Basic` encodings sent.
#[test]
fn cli_run_never_shows_a_secret() {
    use base64::Engine as _;
    let _serial = serial();
    let rt = server_runtime();
    let encoded = |pair: &str| base64::prelude::BASE64_STANDARD.encode(pair);
    let forbidden = [
        "SECRET".to_owned(),
        encoded("name:pw-SECRET-2"),
        encoded("user-SECRET-4:pw-SECRET-5"),
    ];
    let echo = |status| vec![Fault::Answer(status, support::Body::EchoHeaders); 200];
    let scenarios: [(&str, Option<Vec<Fault>>, &str); 5] = [
        ("ok", Some(vec![]), "sink stopped"),
        ("401 echoing headers", Some(echo(401)), "status 401"),
        ("503 echoing headers", Some(echo(503)), "status 503"),
        ("down", None, "cannot connect"),
        ("invalid URL", None, "invalid URL"),
    ];
    for (scenario, faults, expected) in scenarios {
        let pyroscope = pyroscope_server(&rt);
        let profefe = rt.block_on(FakeServer::start(Kind::Profefe));
        let (pyroscope_at, profefe_at) = match &faults {
            Some(faults) => {
                pyroscope.inject(faults.clone());
                profefe.inject(faults.clone());
                (pyroscope.addr.to_string(), profefe.addr.to_string())
            }
            None if scenario == "down" => {
                let down = rt.block_on(FakeServer::free_addr()).to_string();
                (down.clone(), down)
            }
            None => ("127.0.0.1:99999".to_owned(), "127.0.0.1:99999".to_owned()),
        };
        let dir = tempfile::tempdir().unwrap();
        for format in ["human", "json"] {
            let (status, output) =
                run_with_planted_secrets(dir.path(), format, &pyroscope_at, &profefe_at);
            let what = format!("{scenario}, {format} logs");
            assert!(
                matches!(status.code(), Some(0 | 1)),
                "{what}: {status:?}\n{output}"
            );
            assert!(
                output.contains(expected),
                "{what}: no {expected:?} in\n{output}"
            );
            for secret in &forbidden {
                assert!(
                    !output.contains(secret.as_str()),
                    "{what}: {secret} in\n{output}"
                );
            }
        }
        for (path, bytes) in files_under(dir.path()) {
            for secret in &forbidden {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{scenario}: {secret} in {}",
                    path.display()
                );
            }
        }
        if faults.is_some() {
            // The servers did get the credentials, so the logs had them to hide.
            let sent = pyroscope.requests();
            assert!(
                sent.iter().any(|r| r.header("authorization").is_some()),
                "{scenario}"
            );
            assert!(!profefe.requests().is_empty(), "{scenario}");
        }
    }
}

/// A file sink's report keeps counts and the last few files, however long it runs (each
/// 10 ms window writes a file).
#[test]
fn a_file_sink_report_does_not_grow_with_uptime() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let config = caddyprof::Config::from_json(&format!(
        r#"{{"apps": {{"profiling": {{"profile_types": ["cpu"], "profilers": [
            {{"profiler": "file", "directory": {:?}, "interval": "10ms", "keep": 2}}]}}}}}}"#,
        out.to_str().unwrap()
    ))
    .unwrap();
    let running = runtime::start(&config).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let (reports, _) = timed_stop(running);
    let sink = report(&reports, "apps.profiling.profilers[0]");
    assert!(
        sink.files_written > 2 * LAST_FILES as u64,
        "too few windows to tell: {sink:?}"
    );
    assert_eq!(sink.last_files.len(), LAST_FILES, "{sink:?}");
    // The newest files: those still on disk are the last two named.
    let kept: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    for path in &kept {
        assert!(
            sink.last_files[LAST_FILES - 2..].contains(path),
            "{path:?}: {sink:?}"
        );
    }
}

/// An error met every window is logged once (then once a minute), and reported once with
/// its count.
#[test]
fn cli_run_says_a_lasting_error_once() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // The sink's directory is a file: every write fails the same way.
    std::fs::write(dir.path().join("blocked"), "").unwrap();
    let file = dir.path().join("blocked.json");
    std::fs::write(
        &file,
        r#"{"apps": {"profiling": {"profile_types": ["cpu"], "profilers": [
            {"profiler": "file", "directory": "blocked", "interval": "10ms"}]}}}"#,
    )
    .unwrap();
    let mut child = caddyprof(&["run", "--once", "--window", "1s"], &file);
    let lines = stderr_lines(&mut child);
    let (status, _) = wait_bounded(&mut child, Duration::from_secs(20));
    let log = collect_lines(&lines);
    assert_eq!(status.code(), Some(1), "{log}");
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cannot create directory"))
        .collect();
    assert_eq!(said.len(), 1, "{log}");
    assert!(said[0].contains("WARN"), "{log}");
    let summary = log
        .lines()
        .find(|l| l.contains("sink stopped"))
        .unwrap_or_else(|| panic!("no summary:\n{log}"));
    assert_eq!(field(summary, "files"), 0, "{summary}");
    assert!(field(summary, "errors") > 1, "{summary}");
    assert_eq!(
        field(summary, "errors"),
        field(summary, "profiles"),
        "{summary}"
    );
}
