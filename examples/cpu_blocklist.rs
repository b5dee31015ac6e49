//! Measures what a shared-library blocklist (pprof-rs's idea) costs, and whether sampling
//! without it is safe: a workload that spends much of its time inside libc (malloc, free, memset), and one
//! that unwinds panics (libgcc's unwinder interrupted by the sampler's own unwinding).
//!
//! ```sh
//! cargo run --example cpu_blocklist -- libc,libgcc,pthread,vdso   # pprof-rs's usual list
//! cargo run --example cpu_blocklist -- libgcc,vdso                # caddyprof's default
//! cargo run --example cpu_blocklist -- none 1000 panic            # no blocklist, 1000 Hz, panics
//! ```
//!
//! Arguments: the blocklist (comma-separated, or `none`), the frequency (default 100), the
//! workload (`libc`, default, or `panic`), the seconds (default 4).

use std::hint::black_box;
use std::time::{Duration, Instant};

use caddyprof::collect::cpu::{self, CpuOptions};
use caddyprof::profile::{decode, proto};

/// Process CPU time (user + system) from /proc/self/stat, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based, in ticks).
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// VmRSS and VmHWM (peak) of this process, in MiB.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Allocates, fills and frees buffers: most of its time is in libc.
#[inline(never)]
fn libc_heavy(until: Instant) -> u64 {
    let mut sum = 0u64;
    let mut size = 4096usize;
    while Instant::now() < until {
        for _ in 0..64 {
            size = size * 7 % 200_000 + 4096;
            let mut buffer: Vec<u8> = Vec::with_capacity(size);
            // SAFETY: the capacity is `size`; write_bytes initializes it (a memset call).
            unsafe {
                std::ptr::write_bytes(buffer.as_mut_ptr(), (size & 0xff) as u8, size);
                buffer.set_len(size);
            }
            sum = sum.wrapping_add(u64::from(buffer[size / 2]));
            drop(black_box(buffer));
        }
        sum = sum.wrapping_add(rust_only(2_000));
    }
    sum
}

/// Pure Rust work, for comparison.
#[inline(never)]
fn rust_only(rounds: u64) -> u64 {
    let mut x = black_box(0x2545_f491_4f6c_dd1d_u64);
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// Panics and catches them: the sampler's unwinder runs while libgcc's is mid-unwind.
#[inline(never)]
fn panic_heavy(until: Instant) -> u64 {
    let mut caught = 0;
    while Instant::now() < until {
        for _ in 0..100 {
            if std::panic::catch_unwind(|| panic!("measured")).is_err() {
                caught += 1;
            }
        }
    }
    caught
}

fn names(profile: &proto::Profile, sample: &proto::Sample) -> Vec<String> {
    caddyprof::profile::Symbols::new(profile)
        .stack(sample)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let blocklist: Vec<String> = match args.first().map(String::as_str) {
        None | Some("none") => Vec::new(),
        Some(list) => list.split(',').map(str::to_owned).collect(),
    };
    let frequency: u32 = args.get(1).map_or(100, |f| f.parse().unwrap());
    let workload = args.get(2).map_or("libc", String::as_str).to_owned();
    let seconds: f64 = args.get(3).map_or(4.0, |s| s.parse().unwrap());
    if workload == "panic" {
        std::panic::set_hook(Box::new(|_| {}));
    }

    let (rss_initial, _) = rss_mib();
    cpu::start_with(CpuOptions {
        frequency,
        blocklist: blocklist.clone(),
    })
    .unwrap();
    let (rss_started, _) = rss_mib();
    let mut subscription = cpu::subscribe(frequency).unwrap();
    let cpu_before = cpu_seconds();
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let result = match workload.as_str() {
        "panic" => panic_heavy(until),
        _ => libc_heavy(until),
    };
    black_box(result);
    let cpu_used = cpu_seconds() - cpu_before;
    let (rss_before, _) = rss_mib();
    let symbolizing = Instant::now();
    let profile = decode(&subscription.collect().unwrap().pprof_gz).unwrap();
    let symbolized_in = symbolizing.elapsed();
    let (rss_symbolized, peak) = rss_mib();
    // Idle collections: the first ones symbolize the previous collections' own stacks; one
    // with no new address drops the symbolizer's parsed state.
    let extra = 5;
    for _ in 0..extra {
        std::thread::sleep(Duration::from_millis(200));
        subscription.collect().unwrap();
    }
    let (rss_after, _) = rss_mib();

    let mut total = 0;
    let mut libc_leaf = 0;
    let mut in_workload = 0;
    let mut rust_leaf = 0;
    for sample in &profile.sample {
        let count = sample.value[0];
        let names = names(&profile, sample);
        total += count;
        let leaf = names.first().map_or("", String::as_str);
        if [
            "memset", "malloc", "free", "_int_", "memcpy", "mmap", "munmap",
        ]
        .iter()
        .any(|n| leaf.contains(n))
        {
            libc_leaf += count;
        }
        if leaf.ends_with("rust_only") {
            rust_leaf += count;
        }
        if names
            .iter()
            .any(|n| n.ends_with("libc_heavy") || n.ends_with("panic_heavy"))
        {
            in_workload += count;
        }
    }
    let expected = cpu_used * f64::from(frequency);
    let pct = |n: i64| 100.0 * n as f64 / total.max(1) as f64;
    println!(
        "blocklist={blocklist:?} hz={frequency} workload={workload}: cpu {cpu_used:.2} s → \
         expected ~{expected:.0} samples, got {total} ({:.0} %); leaf in libc alloc/mem*: \
         {libc_leaf} ({:.1} %), leaf rust_only: {rust_leaf} ({:.1} %), under the workload \
         function: {in_workload} ({:.1} %)",
        100.0 * total as f64 / expected.max(1.0),
        pct(libc_leaf),
        pct(rust_leaf),
        pct(in_workload),
    );
    let handled = caddyprof::collect::sampler::handler_time();
    println!(
        "signal handler: {handled:.2?} in all ({:.1} µs a sample); libgcc walks {}, dropped \
         {:?}; unwinder {:?}",
        handled.as_secs_f64() * 1e6 / total.max(1) as f64,
        caddyprof::collect::sampler::libgcc_walks(),
        caddyprof::collect::sampler::dropped(),
        caddyprof::unwind::stats(),
    );
    println!(
        "RSS: {rss_initial:.1} MiB at start, {rss_started:.1} MiB with the profiler started, \
         {rss_before:.1} MiB after the workload, before symbolizing, {rss_symbolized:.1} MiB after the first \
         collection ({symbolized_in:.2?}, {} locations), {rss_after:.1} MiB after {extra} more \
         collections (caches dropped once no new address is seen); peak {peak:.1} MiB",
        profile.location.len()
    );
}
