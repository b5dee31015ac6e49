//! `block` and `mutex` profiles from caddyprof's instrumented locks, against the waits the
//! test measures itself. The rates are process-wide, so the tests take turns (`SERIAL`).

mod support;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use caddyprof::collect::contention::{self, ContentionProfile};
use caddyprof::profile::{Symbols, decode, proto};
use caddyprof::sync::{Mutex, RwLock};
use support::{check_mappings, sample_types, serial, sum_in_stacks};

const ROUNDS: u32 = 8;
const HOLD: Duration = Duration::from_millis(40);

/// Holds `lock` for [`HOLD`] once the waiter is about to wait.
#[inline(never)]
fn hold_lock(lock: &Mutex<u64>, ready: &Barrier) {
    let mut guard = lock.lock();
    ready.wait();
    std::thread::sleep(HOLD);
    *guard += 1;
}

/// Waits for `lock` while the holder has it; returns how long it waited.
#[inline(never)]
fn wait_for_lock(lock: &Mutex<u64>, ready: &Barrier) -> Duration {
    ready.wait();
    // Let the holder's sleep begin: the wait below is all contention.
    let start = Instant::now();
    let guard = lock.lock();
    let waited = start.elapsed();
    drop(guard);
    waited
}

/// Per sample: (stack function names, contentions, delay).
fn samples(profile: &proto::Profile) -> Vec<(Vec<String>, i64, i64)> {
    let symbols = Symbols::new(profile);
    profile
        .sample
        .iter()
        .map(|s| {
            let names = symbols.stack(s).into_iter().map(str::to_owned).collect();
            (names, s.value[0], s.value[1])
        })
        .collect()
}

fn check_shape(profile: &proto::Profile) {
    let s = |i: i64| profile.string_table[i as usize].as_str();
    assert_eq!(
        sample_types(profile),
        ["contentions/count", "delay/nanoseconds"]
    );
    let period = profile.period_type.unwrap();
    assert_eq!((s(period.r#type), s(period.unit)), ("contentions", "count"));
    assert_eq!(profile.period, 1);
}

#[test]
fn waits_show_at_the_waiter_and_delays_at_the_holder() {
    let _serial = serial();
    contention::set_block_rate(1);
    contention::set_mutex_fraction(1);
    let mut block = contention::subscribe(ContentionProfile::Block, false);
    let mut mutex = contention::subscribe(ContentionProfile::Mutex, false);
    let walks_before = caddyprof::unwind::stats().walks;

    let lock = Arc::new(Mutex::new(0));
    let ready = Arc::new(Barrier::new(2));
    let holder = {
        let (lock, ready) = (Arc::clone(&lock), Arc::clone(&ready));
        std::thread::spawn(move || {
            for _ in 0..ROUNDS {
                hold_lock(&lock, &ready);
                // Let the waiter take its turn before the next round.
                ready.wait();
            }
        })
    };
    let mut waited = Duration::ZERO;
    for _ in 0..ROUNDS {
        waited += wait_for_lock(&lock, &ready);
        ready.wait();
    }
    holder.join().unwrap();
    assert_eq!(*lock.lock(), u64::from(ROUNDS));
    let waited = waited.as_nanos() as i64;
    // Each event's stack was taken by the cached unwinder, not libgcc's (one per wait and
    // one per delayed release, at least).
    if cfg!(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )) {
        let walks = caddyprof::unwind::stats().walks - walks_before;
        assert!(walks >= 2 * u64::from(ROUNDS), "{walks} walks");
    }

    let block_profile = decode(&block.collect().profile.pprof_gz).unwrap();
    check_shape(&block_profile);
    let program = std::env::current_exe().unwrap().display().to_string();
    assert!(check_mappings(&block_profile).contains(&program));
    let block_samples = samples(&block_profile);
    let at_waiter = sum_in_stacks(&block_profile, "wait_for_lock", 1);
    let total: i64 = block_samples.iter().map(|s| s.2).sum();
    eprintln!("block: {at_waiter} ns at wait_for_lock of {total}; measured {waited} ns");
    let contentions: i64 = block_samples
        .iter()
        .filter(|(n, _, _)| n.iter().any(|n| n.ends_with("wait_for_lock")))
        .map(|s| s.1)
        .sum();
    assert_eq!(contentions, i64::from(ROUNDS));
    assert!(
        (at_waiter - waited).abs() * 5 <= waited,
        "block delay {at_waiter} vs measured {waited}"
    );
    // The lock's own frames (and the unwinder's) are trimmed: the waiter is the leaf.
    for (names, _, _) in &block_samples {
        if names.iter().any(|n| n.ends_with("wait_for_lock")) {
            assert!(names[0].ends_with("wait_for_lock"), "{names:?}");
        }
    }

    let mutex_profile = decode(&mutex.collect().profile.pprof_gz).unwrap();
    check_shape(&mutex_profile);
    assert!(check_mappings(&mutex_profile).contains(&program));
    let mutex_samples = samples(&mutex_profile);
    let at_holder = sum_in_stacks(&mutex_profile, "hold_lock", 1);
    let total: i64 = mutex_samples.iter().map(|s| s.2).sum();
    for (names, _, _) in &mutex_samples {
        if names.iter().any(|n| n.ends_with("hold_lock")) {
            assert!(names[0].ends_with("hold_lock"), "{names:?}");
        }
    }
    eprintln!("mutex: {at_holder} ns at hold_lock of {total}; measured {waited} ns");
    assert!(
        (at_holder - waited).abs() * 5 <= waited,
        "mutex delay {at_holder} vs measured {waited}"
    );

    // The next windows are empty: deltas.
    assert_eq!(block.collect().samples, 0);
    assert_eq!(mutex.collect().samples, 0);
    contention::set_block_rate(0);
    contention::set_mutex_fraction(0);
}

#[test]
fn rates_at_zero_record_nothing_and_cumulative_subscriptions_keep_totals() {
    let _serial = serial();
    contention::set_block_rate(0);
    contention::set_mutex_fraction(0);
    let mut off = contention::subscribe(ContentionProfile::Block, false);
    let lock = Arc::new(RwLock::new(0));
    let contend = |lock: &Arc<RwLock<i32>>| {
        let guard = lock.write();
        let other = {
            let lock = Arc::clone(lock);
            std::thread::spawn(move || *lock.read())
        };
        std::thread::sleep(Duration::from_millis(20));
        drop(guard);
        other.join().unwrap();
    };
    contend(&lock);
    assert_eq!(
        off.collect().samples,
        0,
        "block_profile_rate 0 records nothing"
    );

    contention::set_block_rate(1);
    let mut cumulative = contention::subscribe(ContentionProfile::Block, true);
    contend(&lock);
    let first = cumulative.collect();
    assert!(first.samples > 0);
    contend(&lock);
    let second = decode(&cumulative.collect().profile.pprof_gz).unwrap();
    let count: i64 = second.sample.iter().map(|s| s.value[0]).sum();
    assert!(count >= 2, "cumulative: both waits, got {count}");
    contention::set_block_rate(0);
}
