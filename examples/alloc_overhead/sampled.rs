//! The allocation benchmark with `caddyprof::allocator::Sampled<System>` as the global
//! allocator, at the default rate (512 KiB). With `--active`, heap profiles are taken as the
//! runtime would (a subscription, collected every second on a thread of its own, whose
//! collection time is part of the CPU time); without, the wrapper only counts down.
//! Prints one JSON line. Run by `benches/alloc_overhead.sh`.

#[path = "workload.rs"]
mod workload;

use std::alloc::System;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use caddyprof::allocator::{self, Sampled};
use caddyprof::collect::heap::{self, Accumulation};
use caddyprof::config::ProfileType;

#[global_allocator]
static ALLOC: Sampled<System> = Sampled::new(System);

/// CPU seconds of the calling thread.
fn thread_cpu_seconds() -> f64 {
    // SAFETY: clock_gettime fills the struct it is given.
    let t = unsafe {
        let mut t: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t);
        t
    };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

fn main() -> ExitCode {
    let options = match workload::Options::parse_or_exit() {
        Ok(options) => options,
        Err(code) => return code,
    };
    if let Some(rate) = options.rate {
        allocator::set_rate(rate);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let collector = if options.active {
        let mut subscription = match heap::subscribe() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let stop = Arc::clone(&stop);
        Some(std::thread::spawn(move || {
            let mut profiles = 0u64;
            let mut bytes = 0usize;
            while !stop.load(Ordering::Relaxed) {
                std::thread::park_timeout(Duration::from_secs(1));
                let profile = subscription.collect(ProfileType::Heap, Accumulation::Delta);
                bytes += profile.pprof_gz.len();
                profiles += 1;
            }
            (profiles, bytes, thread_cpu_seconds())
        }))
    } else {
        None
    };
    let (wall, cpu, allocations, bytes_allocated) = workload::run(&options);
    stop.store(true, Ordering::Relaxed);
    let (profiles, bytes, collector_cpu) = match collector {
        Some(handle) => {
            handle.thread().unpark();
            handle.join().unwrap_or_default()
        }
        None => (0, 0, 0.0),
    };
    let stats = allocator::stats();
    println!(
        r#"{{"allocator":"{}","threads":{},"rounds":{},"allocations":{allocations},"bytes":{bytes_allocated},"wall_s":{wall:.4},"cpu_s":{cpu:.4},"samples":{},"stacks":{},"profiles":{profiles},"profile_bytes":{bytes},"collector_cpu_s":{collector_cpu:.4},"sampling_s":{:.4},"rate":{}}}"#,
        if options.active {
            "sampled"
        } else {
            "wrapper-idle"
        },
        options.threads,
        options.rounds,
        stats.samples,
        stats.stacks,
        stats.sampling_nanos as f64 / 1e9,
        stats.rate
    );
    ExitCode::SUCCESS
}
