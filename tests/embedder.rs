//! caddyprof inside a service as users build it: `tests/fixtures/embedder`, a separate crate
//! in a plain debug build (none of this crate's `[profile.dev.package.*]` optimizations), whose
//! work walks through 512 distinct functions, so each window has real symbolization to do.
//! With cpu, heap and goroutine at 1 s windows, while two busy processes keep every core
//! loaded, every full window must still be cut on the clock, and `stop()` must keep its
//! promise: within 2 s, with every sink reported.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use caddyprof::profile::Symbols;

/// Builds the fixture (debug, its own target directory) and returns its executable.
fn build_embedder() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture = root.join("tests/fixtures/embedder");
    // The fixture resolves its dependencies from this crate's lock file: the same versions.
    std::fs::copy(root.join("Cargo.lock"), fixture.join("Cargo.lock")).unwrap();
    let target = root.join("target/embedder");
    let output = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--manifest-path"])
        .arg(fixture.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        // A plain debug build, whatever the environment of this test asks for.
        .env_remove("CARGO_PROFILE_DEV_OPT_LEVEL")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "building the fixture failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    target.join("debug/embedder")
}

/// Busy processes, killed when dropped.
struct Load(Vec<Child>);

impl Load {
    fn busy(processes: usize) -> Load {
        Load(
            (0..processes)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .stdin(Stdio::null())
                        .spawn()
                        .unwrap()
                })
                .collect(),
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the fixture for `seconds` with `config`; returns its standard output.
fn run_embedder(binary: &Path, config: &Path, seconds: u32) -> String {
    let mut child = Command::new(binary)
        .arg(config)
        .arg(seconds.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(u64::from(seconds) + 30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the embedder did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn windows_are_cut_on_the_clock_in_a_loaded_debug_build() {
    let binary = build_embedder();
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles");
    let config = dir.path().join("Profilingfile");
    std::fs::write(
        &config,
        format!(
            "profiling {{\n\tfile {} {{\n\t\tinterval 1s\n\t\tkeep 100\n\t\tprofile_types cpu heap goroutine\n\t}}\n}}\n",
            profiles.display()
        ),
    )
    .unwrap();

    let load = Load::busy(2);
    // Long enough for the first windows' symbolization (seconds of CPU in a debug build on a
    // loaded machine) to be caught up with before the stop.
    let output = run_embedder(&binary, &config, 10);
    drop(load);

    // stop() kept its promise, and reported the sink.
    let stop_ms: u64 = output
        .lines()
        .find_map(|l| l.strip_prefix("stop_ms "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no stop time in {output}"));
    assert!(stop_ms <= 2_000, "stop() took {stop_ms} ms");
    assert!(
        output.contains("report apps.profiling.profilers[0] "),
        "the sink is missing from stop()'s report: {output}"
    );

    let mut files: Vec<PathBuf> = std::fs::read_dir(&profiles)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut step_functions = std::collections::BTreeSet::new();
    for kind in ["cpu", "heap"] {
        let windows: Vec<(PathBuf, caddyprof::profile::proto::Profile)> = files
            .iter()
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(kind))
            .map(|p| {
                let bytes = std::fs::read(p).unwrap();
                (p.clone(), caddyprof::profile::decode(&bytes).unwrap())
            })
            .collect();
        // A first window, at least seven full ones, and the last, partial one.
        assert!(
            windows.len() >= 9,
            "{kind}: {} windows; {output}",
            windows.len()
        );
        for (path, profile) in &windows[1..windows.len() - 1] {
            let length = Duration::from_nanos(profile.duration_nanos as u64);
            let off = length.abs_diff(Duration::from_secs(1));
            assert!(
                off <= Duration::from_millis(100),
                "{kind} window {} lasted {length:?}",
                path.display()
            );
        }
        for (_, profile) in &windows {
            let symbols = Symbols::new(profile);
            for sample in &profile.sample {
                for function in symbols.stack(sample) {
                    if let Some(step) = function.strip_prefix("embedder::workload::part_")
                        && step.contains("::step_")
                    {
                        step_functions.insert(step.to_owned());
                    }
                }
            }
        }
    }
    // The work did walk through many distinct functions, and they were symbolized.
    assert!(
        step_functions.len() >= 100,
        "{} step functions in the profiles",
        step_functions.len()
    );
    let goroutine = files
        .iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("goroutine")
        })
        .count();
    assert!(goroutine >= 8, "{goroutine} goroutine profiles");
}
