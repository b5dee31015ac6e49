//! The demo: embeds caddyprof in a program, profiles it while it works (CPU in `busy_work`,
//! two threads contending on a caddyprof lock in `lock_work`), and shows what was written. No server is needed: the default config writes profiles (and flame graphs) under
//! `./profiles`.
//!
//! ```sh
//! cargo run --release --example demo -- [CONFIG] [--seconds N]
//! ```
//!
//! CONFIG defaults to `examples/demo.Profilingfile`; N (default 20) is how long the work runs.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

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
        "profiling with {config}; working for {seconds} s in busy_work, and in lock_work on \
         two threads …"
    );
    let until = Instant::now() + Duration::from_secs(seconds);
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

    let reports = running.stop();
    let mut first_profile = None;
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
        for file in &report.files {
            println!("  {}", file.display());
            if first_profile.is_none() && file.to_string_lossy().ends_with(".pb.gz") {
                first_profile = Some(file.clone());
            }
        }
        for error in &report.errors {
            println!("  error: {error}");
        }
    }
    if let Some(profile) = first_profile {
        println!(
            "\nLook at a profile with:\n  go tool pprof -top {}",
            profile.display()
        );
        println!("or open a flame graph (.svg) beside it in a browser.");
    }
    ExitCode::SUCCESS
}
