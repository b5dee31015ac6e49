//! The CPU collector, with real sampling and real decoding. Every test here shares the one
//! process-wide profiler, so they take turns (`SERIAL`).

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant, UNIX_EPOCH};

use caddyprof::collect::cpu;
use caddyprof::config::ProfileType;
use caddyprof::profile::{decode, proto};
use support::{
    HOT_SPIN_LINES, check_mappings, file_build_id, go_is_installed, go_tool_pprof, hot_spin, serial,
};

fn s(profile: &proto::Profile, index: i64) -> &str {
    &profile.string_table[index as usize]
}

fn function_names(profile: &proto::Profile, sample: &proto::Sample) -> Vec<String> {
    caddyprof::profile::Symbols::new(profile)
        .stack(sample)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// The number of samples (by the `samples/count` value), and how many have `function` in
/// their stack.
fn share(profile: &proto::Profile, function: &str) -> (i64, i64) {
    let mut total = 0;
    let mut with = 0;
    for sample in &profile.sample {
        total += sample.value[0];
        if function_names(profile, sample)
            .iter()
            .any(|name| name.ends_with(function))
        {
            with += sample.value[0];
        }
    }
    (total, with)
}

fn check_cpu_shape(profile: &proto::Profile, hz: i64) {
    let types = support::sample_types(profile);
    assert_eq!(types, ["samples/count", "cpu/nanoseconds"]);
    let period_type = profile.period_type.unwrap();
    assert_eq!(s(profile, period_type.r#type), "cpu");
    assert_eq!(s(profile, period_type.unit), "nanoseconds");
    assert_eq!(profile.period, 1_000_000_000 / hz);
    for sample in &profile.sample {
        assert!(sample.value[0] > 0);
        assert_eq!(sample.value[1], sample.value[0] * profile.period);
        let thread = sample
            .label
            .iter()
            .find(|l| s(profile, l.key) == "thread")
            .expect("every sample has a thread label");
        assert!(!s(profile, thread.str).is_empty());
    }
}

#[test]
fn a_hot_function_dominates_its_window() {
    let _serial = serial();
    let hz = cpu::start(100).unwrap();
    assert_eq!(hz, 100);
    let mut subscription = cpu::subscribe(100).unwrap();
    let window_start = subscription.window_start();
    let began = Instant::now();
    black_box(hot_spin(Duration::from_millis(1500)));
    let profile = subscription.collect().unwrap();
    let elapsed = began.elapsed();

    assert_eq!(profile.profile_type, ProfileType::Cpu);
    assert_eq!(profile.start, window_start);
    let decoded = decode(&profile.pprof_gz).unwrap();
    check_cpu_shape(&decoded, 100);
    let time = UNIX_EPOCH + Duration::from_nanos(decoded.time_nanos as u64);
    assert_eq!(time, window_start);
    let duration = Duration::from_nanos(decoded.duration_nanos as u64);
    assert_eq!(duration, profile.duration);
    assert!(
        duration >= Duration::from_millis(1500) && duration <= elapsed + Duration::from_millis(50),
        "window {duration:?}, measured {elapsed:?}"
    );

    let (total, hot) = share(&decoded, "hot_spin");
    eprintln!("{hot} of {total} samples in hot_spin");
    // 1.5 s at 100 Hz is about 150 samples; a loaded machine gives fewer.
    assert!(total >= 30, "only {total} samples");
    assert!(hot * 2 > total, "hot_spin in {hot} of {total} samples");
    assert!(decoded.location.iter().all(|l| l.address != 0));
    // The signal handler's own frames are not part of any stack.
    for sample in &decoded.sample {
        let names = function_names(&decoded, sample);
        assert!(!names.iter().any(|n| n.contains("on_sigprof")), "{names:?}");
    }
    // hot_spin is symbolized with its file and line.
    let function = decoded
        .function
        .iter()
        .find(|f| s(&decoded, f.name).ends_with("hot_spin"))
        .unwrap();
    assert!(s(&decoded, function.filename).ends_with("support/mod.rs"));
    let lines: Vec<i64> = decoded
        .location
        .iter()
        .flat_map(|l| &l.line)
        .filter(|l| l.function_id == function.id)
        .map(|l| l.line)
        .collect();
    assert!(
        lines.iter().all(|l| HOT_SPIN_LINES.contains(l)),
        "{lines:?}"
    );
}

#[test]
fn samples_carry_their_thread_name_and_the_rate_is_fixed_once_started() {
    let _serial = serial();
    cpu::start(100).unwrap();
    // A later, higher rate is not applied: the subscription says what is in use.
    let mut subscription = cpu::subscribe(250).unwrap();
    assert_eq!(subscription.frequency(), 100);
    assert_eq!(cpu::frequency(), Some(100));
    std::thread::Builder::new()
        .name("cpu-worker".into())
        .spawn(|| black_box(hot_spin(Duration::from_millis(800))))
        .unwrap()
        .join()
        .unwrap();
    let profile = decode(&subscription.collect().unwrap().pprof_gz).unwrap();
    check_cpu_shape(&profile, 100);
    let mut worker_hot = 0;
    let mut total = 0;
    for sample in &profile.sample {
        total += sample.value[0];
        let thread = sample
            .label
            .iter()
            .find(|l| s(&profile, l.key) == "thread")
            .unwrap();
        if s(&profile, thread.str) == "cpu-worker"
            && function_names(&profile, sample)
                .iter()
                .any(|n| n.ends_with("hot_spin"))
        {
            worker_hot += sample.value[0];
        }
    }
    assert!(
        worker_hot * 2 > total,
        "{worker_hot} of {total} on cpu-worker"
    );
}

#[test]
fn two_subscribers_both_get_every_sample_and_idle_windows_are_empty() {
    let _serial = serial();
    let mut first = cpu::subscribe(100).unwrap();
    let mut second = cpu::subscribe(100).unwrap();
    black_box(hot_spin(Duration::from_millis(1000)));
    let a = decode(&first.collect().unwrap().pprof_gz).unwrap();
    let b = decode(&second.collect().unwrap().pprof_gz).unwrap();
    let hz = i64::from(first.frequency());
    check_cpu_shape(&a, hz);
    check_cpu_shape(&b, hz);
    let (total_a, hot_a) = share(&a, "hot_spin");
    let (total_b, hot_b) = share(&b, "hot_spin");
    eprintln!("first: {hot_a}/{total_a}, second: {hot_b}/{total_b}");
    assert!(total_a >= 20 && hot_a * 2 > total_a);
    assert!(total_b >= 20 && hot_b * 2 > total_b);
    // Both saw the same samples (the second subscribed a moment later).
    assert!(
        hot_b <= hot_a + 2 && hot_a <= hot_b + 5,
        "{hot_a} vs {hot_b}"
    );

    // A window with no CPU work has no hot_spin samples and far fewer samples than a busy
    // one. Not none: the collector's own work after a window's boundary (encoding, and
    // symbolizing addresses seen for the first time, slow in a debug build) falls into the
    // next window; settle it first, but on a loaded machine tens of samples remain.
    first.collect().unwrap();
    second.collect().unwrap();
    first.collect().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let idle = decode(&first.collect().unwrap().pprof_gz).unwrap();
    check_cpu_shape(&idle, hz);
    let (total, hot) = share(&idle, "hot_spin");
    if total > 0 {
        for sample in &idle.sample {
            let names = function_names(&idle, sample);
            eprintln!("{} {:?}", sample.value[0], &names[..names.len().min(8)]);
        }
    }
    assert_eq!(hot, 0);
    assert!(
        total * 2 < total_a,
        "{total} samples while sleeping, {total_a} while busy"
    );

    // The second subscriber's next window holds only what happened since its own collection.
    black_box(hot_spin(Duration::from_millis(500)));
    let next = decode(&second.collect().unwrap().pprof_gz).unwrap();
    let (total, hot) = share(&next, "hot_spin");
    assert!(hot * 2 > total, "{hot}/{total}");
    // Half the hot work of its previous window: had the baseline not moved, it would hold
    // both (at least hot_b).
    assert!(hot > 0 && hot < hot_b, "{hot} hot samples after {hot_b}");
}

/// A CPU profile names the binaries its samples ran in, the test binary first.
#[test]
fn a_cpu_profile_names_its_binaries() {
    let _serial = serial();
    let mut subscription = cpu::subscribe(100).unwrap();
    black_box(hot_spin(Duration::from_millis(300)));
    let profile = decode(&subscription.collect().unwrap().pprof_gz).unwrap();
    let program = std::env::current_exe().unwrap();
    let used = check_mappings(&profile);
    assert!(used.contains(&program.display().to_string()), "{used:?}");
}

/// `go tool pprof -raw`, an independent decoder, reads a real CPU profile of ours and sees
/// which binary it belongs to.
#[test]
fn go_tool_pprof_reads_our_profile() {
    let _serial = serial();
    if !go_is_installed("go_tool_pprof_reads_our_profile") {
        return;
    }
    let mut subscription = cpu::subscribe(100).unwrap();
    black_box(hot_spin(Duration::from_millis(600)));
    let profile = subscription.collect().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cpu.pprof.gz");
    std::fs::write(&path, &profile.pprof_gz).unwrap();
    let stdout = go_tool_pprof(&["-raw"], &path, dir.path());
    if std::env::var_os("CPU_PROFILE_SHOW").is_some() {
        eprintln!("{stdout}");
    }
    let hz = i64::from(subscription.frequency());
    assert!(stdout.contains("PeriodType: cpu nanoseconds"), "{stdout}");
    assert!(
        stdout.contains(&format!("Period: {}", 1_000_000_000 / hz)),
        "{stdout}"
    );
    assert!(stdout.contains("samples/count cpu/nanoseconds"), "{stdout}");
    assert!(stdout.contains("hot_spin"), "{stdout}");
    assert!(stdout.contains("thread:["), "{stdout}");
    // pprof's own account of the main binary: `1: start/limit/offset path build-id [FN]...`.
    let program = std::env::current_exe().unwrap();
    let first_mapping = stdout
        .lines()
        .skip_while(|line| *line != "Mappings")
        .nth(1)
        .unwrap_or_else(|| panic!("no mappings: {stdout}"));
    let fields: Vec<&str> = first_mapping.split_whitespace().collect();
    assert_eq!(fields[0], "1:", "{first_mapping}");
    assert_eq!(fields[2], program.to_str().unwrap(), "{first_mapping}");
    assert_eq!(fields[3], file_build_id(&program), "{first_mapping}");
    assert!(fields[4].starts_with("[FN]"), "{first_mapping}");
}

/// The sampling timer runs only while someone subscribes: a process that stops profiling
/// pays nothing more for it.
#[test]
fn the_timer_stops_with_the_last_subscription() {
    let _serial = serial();
    let armed = || {
        // SAFETY: getitimer writes the current ITIMER_PROF setting into `timer`.
        let mut timer: libc::itimerval = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::getitimer(libc::ITIMER_PROF, &mut timer) }, 0);
        timer.it_interval.tv_sec != 0 || timer.it_interval.tv_usec != 0
    };
    let first = cpu::subscribe(100).unwrap();
    let second = cpu::subscribe(100).unwrap();
    assert!(armed());
    drop(first);
    assert!(armed(), "one subscription is still alive");
    drop(second);
    assert!(!armed());
    let mut again = cpu::subscribe(100).unwrap();
    assert!(armed());
    black_box(hot_spin(Duration::from_millis(300)));
    let (total, _) = share(
        &decode(&again.collect().unwrap().pprof_gz).unwrap(),
        "hot_spin",
    );
    assert!(total > 0, "sampling resumed");
}
