//! The sampling allocator under stress: many threads allocating, reallocating and freeing
//! (across threads too) while heap profiles are collected in a loop, while the CPU sampler's
//! SIGPROF and the thread snapshots' SIGURG interrupt them, while the rate changes, and while short-lived threads come and go
//! (allocating in their thread-local destructors). Passes if nothing deadlocks (a watchdog
//! fails the test), nothing crashes, the sampler never re-enters itself, and everything the
//! workers sampled is out of `inuse_*` once they have freed it.
//!
//! A soak run: `HEAP_SOAK_SECONDS=60 cargo test --release --test heap_safety -- --nocapture`.

mod support;

use std::alloc::System;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use caddyprof::allocator::{self, Sampled};
use caddyprof::collect::{cpu, heap};
use caddyprof::config::ProfileType;
use caddyprof::profile::decode;

#[global_allocator]
static ALLOC: Sampled<System> = Sampled::new(System);

fn seconds() -> u64 {
    std::env::var("HEAP_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One worker: a mix of small and large allocations, growth (realloc), shrinking,
/// zeroed buffers, maps and strings, freed out of order; some blocks go to `peer` to be
/// freed by another thread.
#[inline(never)]
fn safety_worker(
    seed: u64,
    stop: &AtomicBool,
    peer: mpsc::Sender<Vec<u8>>,
    inbox: mpsc::Receiver<Vec<u8>>,
) -> u64 {
    let mut rng = Rng(seed | 1);
    let mut live: Vec<Vec<u8>> = Vec::new();
    let mut map: HashMap<u64, String> = HashMap::new();
    let mut ops = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..256 {
            let r = rng.next();
            match r % 8 {
                0 | 1 => live.push(Vec::with_capacity(8 + (r >> 8) as usize % 512)),
                2 => live.push(vec![0u8; 1024 + (r >> 8) as usize % 65536]),
                3 => {
                    let mut v: Vec<u64> = Vec::new();
                    for i in 0..(r >> 8) % 2000 {
                        v.push(i);
                    }
                    v.truncate(3);
                    v.shrink_to_fit();
                    black_box(v);
                }
                4 => {
                    map.insert(r % 4096, format!("value {r:x}"));
                }
                5 if r % 64 == 5 => live.push(Vec::with_capacity(1 << 20 | (r >> 42) as usize)),
                6 if !live.is_empty() => {
                    let i = (r >> 8) as usize % live.len();
                    let block = live.swap_remove(i);
                    let _ = peer.send(block);
                }
                _ if !live.is_empty() => {
                    let i = (r >> 8) as usize % live.len();
                    drop(live.swap_remove(i));
                }
                _ => {}
            }
            if live.len() > 512 {
                live.drain(..256);
            }
            while let Ok(block) = inbox.try_recv() {
                drop(block);
            }
            ops += 1;
        }
    }
    drop(live);
    drop(map);
    while let Ok(block) = inbox.try_recv() {
        drop(block);
    }
    ops
}

struct AllocatesOnExit(Vec<u8>);

impl Drop for AllocatesOnExit {
    fn drop(&mut self) {
        // Runs during thread exit, after other thread-locals may be gone.
        let mut copy = self.0.clone();
        copy.extend_from_slice(&[1; 4096]);
        black_box(copy);
    }
}

thread_local! {
    static EXIT_WORK: RefCell<Option<AllocatesOnExit>> = const { RefCell::new(None) };
}

/// A short-lived thread: allocates, arms a thread-local destructor that allocates, exits.
#[inline(never)]
fn short_lived_thread(n: usize) {
    let blocks: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 100 + i * 37]).collect();
    EXIT_WORK.with(|w| *w.borrow_mut() = Some(AllocatesOnExit(vec![7; 10_000])));
    black_box(blocks);
}

#[test]
fn threads_allocating_while_profiled_exit_and_are_interrupted_without_harm() {
    let duration = Duration::from_secs(seconds());
    // Frequent samples: more pressure on the tables and the unwinder.
    allocator::set_rate(16 * 1024);
    let mut deltas = heap::subscribe().unwrap();
    let mut totals = heap::subscribe().unwrap();
    let mut cpu_profile = cpu::subscribe(250).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let profiles_taken = Arc::new(AtomicU64::new(0));

    // Workers in a ring: each sends blocks to the next, which frees them.
    let workers = 6;
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..workers).map(|_| mpsc::channel()).unzip();
    let mut handles = Vec::new();
    for (i, inbox) in receivers.into_iter().enumerate() {
        let peer = senders[(i + 1) % workers].clone();
        let stop = Arc::clone(&stop);
        handles.push(
            std::thread::Builder::new()
                .name(format!("heap-worker-{i}"))
                .spawn(move || safety_worker(i as u64 * 7919 + 1, &stop, peer, inbox))
                .unwrap(),
        );
    }
    drop(senders);
    let spawner = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut spawned = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<_> = (0..4)
                    .map(|k| std::thread::spawn(move || short_lived_thread(50 + k * 10)))
                    .collect();
                for t in batch {
                    t.join().unwrap();
                }
                spawned += 4;
            }
            spawned
        })
    };
    let rates = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                allocator::set_rate([16 * 1024, 1024, 64 * 1024][k % 3]);
                k += 1;
                std::thread::sleep(Duration::from_millis(150));
            }
            allocator::set_rate(16 * 1024);
        })
    };

    // This thread collects, as the runtime would, but far more often.
    let began = Instant::now();
    let mut cpu_samples = 0;
    let mut thread_snapshots = 0;
    while began.elapsed() < duration {
        for (subscription, accumulation) in [
            (&mut deltas, heap::Accumulation::Delta),
            (&mut totals, heap::Accumulation::Cumulative),
        ] {
            let profile = subscription.collect(ProfileType::Heap, accumulation);
            let decoded = decode(&profile.pprof_gz).unwrap();
            assert_eq!(decoded.sample_type.len(), 4);
            profiles_taken.fetch_add(1, Ordering::Relaxed);
        }
        let cpu_decoded = decode(&cpu_profile.collect().unwrap().pprof_gz).unwrap();
        cpu_samples += cpu_decoded.sample.iter().map(|s| s.value[0]).sum::<i64>();
        // And every thread's stack, interrupting the workers mid-allocation (SIGURG).
        let snapshot = caddyprof::collect::threads::stacks().unwrap();
        assert!(snapshot.iter().any(|t| !t.stack.is_empty()));
        thread_snapshots += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);

    // Watchdog: a deadlocked worker would never finish.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut waiting: Vec<&std::thread::JoinHandle<u64>> = handles.iter().collect();
    while !waiting.is_empty() {
        assert!(
            Instant::now() < deadline,
            "workers still running: deadlock?"
        );
        waiting.retain(|h| !h.is_finished());
        std::thread::sleep(Duration::from_millis(20));
    }
    let ops: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    while !spawner.is_finished() {
        assert!(
            Instant::now() < deadline,
            "spawner still running: deadlock?"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let threads = spawner.join().unwrap();
    rates.join().unwrap();

    let stats = allocator::stats();
    eprintln!(
        "{ops} worker operations, {threads} short-lived threads, {} profiles, {cpu_samples} \
         CPU samples, {thread_snapshots} thread snapshots in {:?}; {stats:?}; unwinder \
         {:?}, signal handlers' libgcc walks {}",
        profiles_taken.load(Ordering::Relaxed),
        began.elapsed(),
        caddyprof::unwind::stats(),
        caddyprof::collect::sampler::libgcc_walks(),
    );
    assert_eq!(stats.reentered, 0, "the sampler allocated while sampling");
    assert!(stats.samples > 1000, "{stats:?}");
    assert!(cpu_samples > 0);
    assert!(thread_snapshots > 0);

    // Everything the workers and the short-lived threads allocated is freed.
    let last = decode(
        &totals
            .collect(ProfileType::Heap, heap::Accumulation::Cumulative)
            .pprof_gz,
    )
    .unwrap();
    for name in ["safety_worker", "short_lived_thread"] {
        let allocated = support::sum_in_stacks(&last, name, 1);
        let in_use = support::sum_in_stacks(&last, name, 3);
        eprintln!("{name}: alloc_space {allocated}, inuse_space {in_use}");
        assert!(allocated > 0, "{name} was never sampled");
        assert_eq!(in_use, 0, "{name}");
    }
    allocator::set_rate(allocator::DEFAULT_RATE);
}
