//! Thread snapshots (`goroutine`, `threadcreate`) of threads parked in known functions.

mod support;

use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use caddyprof::collect::threads;
use caddyprof::config::ProfileType;
use caddyprof::profile::{Symbols, decode};
use support::{check_mappings, go_is_installed, go_tool_pprof};

/// The tests look at every thread of the process: they take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Parks until `stop` says so (a channel receive: a futex wait in the kernel).
#[inline(never)]
fn parked_in_receive(stop: mpsc::Receiver<()>) {
    stop.recv().ok();
}

/// Sleeps in a loop until `stop` says so (nanosleep, restarted after each interruption).
#[inline(never)]
fn parked_in_sleep(stop: mpsc::Receiver<()>) {
    while stop.try_recv().is_err() {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn spawn(
    name: &str,
    body: fn(mpsc::Receiver<()>),
) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || body(rx))
        .unwrap();
    (tx, handle)
}

#[test]
fn a_snapshot_shows_every_named_thread_in_its_function() {
    let _serial = serial();
    let parked = [
        spawn("parked-recv-1", parked_in_receive),
        spawn("parked-recv-2", parked_in_receive),
        spawn("parked-sleep", parked_in_sleep),
    ];
    // Let them reach their functions.
    std::thread::sleep(Duration::from_millis(100));

    let snapshot = threads::stacks().unwrap();
    let at = SystemTime::now();
    let profile = decode(&threads::goroutine_profile(&snapshot, at).pprof_gz).unwrap();
    let s = |i: i64| profile.string_table[i as usize].as_str();
    assert_eq!(profile.sample_type.len(), 1);
    assert_eq!(
        (
            s(profile.sample_type[0].r#type),
            s(profile.sample_type[0].unit)
        ),
        ("goroutine", "count")
    );
    assert_eq!(profile.period, 1);
    let symbols = Symbols::new(&profile);
    let threads_in = |thread: &str, function: &str| -> i64 {
        profile
            .sample
            .iter()
            .filter(|sample| {
                sample
                    .label
                    .iter()
                    .any(|l| s(l.key) == "thread" && s(l.str) == thread)
                    && symbols.stack(sample).iter().any(|n| n.ends_with(function))
            })
            .map(|sample| sample.value[0])
            .sum()
    };
    for name in ["parked-recv-1", "parked-recv-2"] {
        assert_eq!(threads_in(name, "parked_in_receive"), 1, "{name}");
    }
    assert_eq!(threads_in("parked-sleep", "parked_in_sleep"), 1);
    // The snapshotting thread answers for itself too.
    let total: i64 = profile.sample.iter().map(|s| s.value[0]).sum();
    assert_eq!(total as usize, snapshot.len());
    assert!(
        snapshot.iter().all(|t| !t.stack.is_empty()),
        "every thread answered"
    );

    // threadcreate: one sample per live thread, named.
    let live = threads::threads();
    let created = threads::threadcreate_profile(&live, at);
    assert_eq!(created.profile_type, ProfileType::ThreadCreate);
    let created = decode(&created.pprof_gz).unwrap();
    let names: Vec<&str> = created
        .sample
        .iter()
        .flat_map(|sample| &sample.label)
        .map(|l| created.string_table[l.str as usize].as_str())
        .collect();
    for name in ["parked-recv-1", "parked-recv-2", "parked-sleep"] {
        assert!(names.contains(&name), "{names:?}");
    }

    // Both name their binaries: the goroutine profile's parked threads wait inside the C
    // library; the threadcreate profile's frames (`thread <name>`) are in no binary.
    let program = std::env::current_exe().unwrap().display().to_string();
    let used = check_mappings(&profile);
    assert!(used.contains(&program), "{used:?}");
    assert!(used.iter().any(|f| f.contains("/libc")), "{used:?}");
    assert_eq!(check_mappings(&created), Vec::<String>::new());

    // The interrupted threads carried on: they stop when told.
    for (tx, handle) in parked {
        tx.send(()).unwrap();
        handle.join().unwrap();
    }
}

/// `go tool pprof -raw` reads both profiles and knows their main binary, though no frame of
/// the threadcreate profile lies in it.
#[test]
fn go_tool_pprof_reads_both_profiles() {
    let _serial = serial();
    if !go_is_installed("go_tool_pprof_reads_both_profiles") {
        return;
    }
    let at = SystemTime::now();
    let dir = tempfile::tempdir().unwrap();
    let profiles = [
        (
            "goroutine",
            threads::goroutine_profile(&threads::stacks().unwrap(), at),
        ),
        (
            "threadcreate",
            threads::threadcreate_profile(&threads::threads(), at),
        ),
    ];
    for (name, profile) in profiles {
        let path = dir.path().join(format!("{name}.pprof.gz"));
        std::fs::write(&path, &profile.pprof_gz).unwrap();
        let stdout = go_tool_pprof(&["-raw"], &path, dir.path());
        let program = std::env::current_exe().unwrap();
        let mappings = stdout.split_once("\nMappings\n").map(|m| m.1);
        assert!(
            mappings.is_some_and(|m| m.starts_with("1: ") && m.contains(program.to_str().unwrap())),
            "{name}: {stdout}"
        );
    }
}

/// Snapshots while threads come and go and the CPU sampler interrupts them too: every
/// snapshot returns, and every thread finishes its work.
#[test]
fn snapshots_survive_threads_coming_and_going_under_the_cpu_sampler() {
    let _serial = serial();
    let mut cpu = caddyprof::collect::cpu::subscribe(100).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spawner = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut finished = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let workers: Vec<_> = (0..4)
                    .map(|i| {
                        std::thread::spawn(move || {
                            let mut x = i as u64;
                            for _ in 0..20_000 {
                                x = std::hint::black_box(x.wrapping_mul(6364136223846793005) + 1);
                            }
                            x
                        })
                    })
                    .collect();
                for worker in workers {
                    worker.join().unwrap();
                    finished += 1;
                }
            }
            finished
        })
    };
    for _ in 0..20 {
        let snapshot = threads::stacks().unwrap();
        assert!(snapshot.iter().any(|t| !t.stack.is_empty()));
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let finished = spawner.join().unwrap();
    assert!(finished > 0);
    cpu.collect().unwrap();
}
