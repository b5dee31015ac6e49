//! The demo: embeds caddyprof in a program, profiles it while it works (CPU in `busy_work`,
//! two threads contending on a caddyprof lock in `lock_work`, allocations in `alloc_work` on
//! a thread of its own, some kept live until the end), and shows what was written. No server
//! is needed: the default config writes profiles (and flame graphs) under `./profiles`.
//!
//! ```sh
//! cargo run --release --example demo -- [CONFIG] [--seconds N]
//! ```
//!
//! CONFIG defaults to `examples/demo.Profilingfile`; N (default 20) is how long the work runs.

use std::alloc::System;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The sampling allocator: what makes heap profiles possible.
#[global_allocator]
static ALLOC: caddyprof::allocator::Sampled<System> = caddyprof::allocator::Sampled::new(System);

/// Burns CPU until `until`: the function the CPU profile should show on top.
#[inline(never)]
fn busy_work(until: Instant) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    while Instant::now() < until {
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        black_box(x);
    }
    x
}

/// Allocates until `until`: blocks of 1–64 KiB (about 50 MB/s), freed at once except one
/// in 64, which stay live until the end (returned). Sleeps between rounds: it is busy_work
/// that takes the CPU.
#[inline(never)]
fn alloc_work(until: Instant) -> Vec<Vec<u8>> {
    let mut kept = Vec::new();
    let mut x = 0x2545_F491_4F6C_DD1D_u64;
    while Instant::now() < until {
        for _ in 0..8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut block = vec![0u8; 1024 + (x % (63 * 1024)) as usize];
            block[0] = x as u8;
            if x.is_multiple_of(64) {
                kept.push(block);
            } else {
                black_box(block);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    kept
}

/// Two threads take turns on one caddyprof lock until `until`, each holding it for a moment:
/// the function the block, mutex and thread profiles should show.
#[inline(never)]
fn lock_work(lock: &caddyprof::sync::Mutex<u64>, until: Instant) {
    while Instant::now() < until {
        let mut turns = lock.lock();
        *turns += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn main() -> ExitCode {
    let mut config = String::from("examples/demo.Profilingfile");
    let mut seconds = 20u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => seconds = n,
                None => {
                    eprintln!("--seconds needs a whole number");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("usage: demo [CONFIG] [--seconds N]");
                return ExitCode::SUCCESS;
            }
            _ => config = arg,
        }
    }

    let running = match caddyprof::runtime::start_file(&config) {
        Ok(running) => running,
        Err(error) => {
            eprintln!("{:?}", miette::Report::new(error));
            return ExitCode::from(1);
        }
    };
    for warning in running.warnings() {
        if warning.severity() != miette::Severity::Advice {
            eprintln!("{:?}", miette::Report::new(warning.clone()));
        }
    }
    println!(
        "profiling with {config}; working for {seconds} s in busy_work, in lock_work on two \
         threads and in alloc_work …"
    );
    let until = Instant::now() + Duration::from_secs(seconds);
    let allocating = std::thread::spawn(move || alloc_work(until));
    let lock = std::sync::Arc::new(caddyprof::sync::Mutex::new(0));
    let lockers: Vec<_> = (1..=2)
        .map(|i| {
            let lock = std::sync::Arc::clone(&lock);
            std::thread::Builder::new()
                .name(format!("lock-worker-{i}"))
                .spawn(move || lock_work(&lock, until))
                .expect("spawning a demo thread")
        })
        .collect();
    black_box(busy_work(until));
    for locker in lockers {
        locker.join().expect("the demo thread ends");
    }
    let kept = allocating.join().unwrap_or_default();
    println!(
        "alloc_work keeps {} blocks ({} MiB) live until the end",
        kept.len(),
        kept.iter().map(Vec::len).sum::<usize>() >> 20
    );

    let reports = running.stop();
    drop(kept);
    let mut first_cpu = None;
    let mut first_heap = None;
    for report in &reports {
        println!("\n{}: {} profile(s)", report.path, report.profiles);
        if let Some(uploads) = &report.uploads {
            println!(
                "  uploads: {} delivered, {} failed, {} dropped",
                uploads.delivered,
                uploads.failed + uploads.rejected + uploads.abandoned,
                uploads.dropped
            );
        }
        if report.uploads.is_none() {
            println!("  {} file(s) written; the last:", report.files_written);
        }
        for file in &report.last_files {
            println!("  {}", file.display());
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            if name.ends_with(".pb.gz") {
                if name.starts_with("cpu-") && first_cpu.is_none() {
                    first_cpu = Some(file.clone());
                } else if name.starts_with("heap-") && first_heap.is_none() {
                    first_heap = Some(file.clone());
                }
            }
        }
        for error in &report.errors {
            println!("  error: {error}");
        }
    }
    if let Some(profile) = first_cpu {
        println!(
            "\nLook at a CPU profile with:\n  go tool pprof -top {}",
            profile.display()
        );
        println!("or open a flame graph (.svg) beside it in a browser.");
    }
    if let Some(profile) = first_heap {
        println!(
            "Look at what was allocated in a window, and what is still in use, with:\n  \
             go tool pprof -sample_index=alloc_space -top {0}\n  \
             go tool pprof -sample_index=inuse_space -top {0}",
            profile.display()
        );
    }
    ExitCode::SUCCESS
}
