//! Thread snapshots (`goroutine`, `threadcreate`) of threads parked in known functions.

use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use caddyprof::collect::threads;
use caddyprof::config::ProfileType;
use caddyprof::profile::{Symbols, decode};

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

    // The interrupted threads carried on: they stop when told.
    for (tx, handle) in parked {
        tx.send(()).unwrap();
        handle.join().unwrap();
    }
}
