//! What symbolizing costs in memory and time: symbolizes addresses of this program's own
//! functions with caddyprof's symbolizer, in batches as the collectors do, and prints the
//! resident memory after each batch (anonymous and file-backed, from
//! `/proc/self/smaps_rollup`) and one JSON line of totals. Build it with the debug info to
//! measure (`CARGO_PROFILE_RELEASE_DEBUG=true cargo build --release --example
//! symbolize_footprint`, or the debug build).
//!
//! ```sh
//! symbolize_footprint [--addresses N] [--batch N] [--quiet]
//! ```
//!
//! `peak` is the batch's peak RSS (VmHWM, reset before each batch). The addresses are N
//! function symbols of the executable spread over its text (each at an
//! instruction a few bytes in, as a sample's return address would be), `--batch` at a time;
//! then three batches of addresses already seen (what a steady state looks like).

use std::process::ExitCode;
use std::time::Instant;

use caddyprof::collect::symbolize::symbolizer;
use caddyprof::unwind::objects::mapped_objects;
use object::{Object, ObjectSymbol};

/// Resident memory in KiB: (anonymous, file-backed).
fn resident() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let rss = field("Rss:");
    let anon = field("Anonymous:");
    (anon, rss.saturating_sub(anon))
}

fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Runtime addresses of up to `count` functions of this executable, spread over its text.
fn function_addresses(count: usize) -> Vec<usize> {
    let exe = std::fs::read("/proc/self/exe").expect("reading /proc/self/exe");
    let file = object::File::parse(&*exe).expect("parsing /proc/self/exe");
    let bias = mapped_objects()[0].bias;
    let mut functions: Vec<(u64, u64)> = file
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.size() > 8)
        .map(|s| (s.address(), s.size()))
        .collect();
    functions.sort_unstable();
    functions.dedup_by_key(|f| f.0);
    let step = (functions.len() / count.max(1)).max(1);
    functions
        .iter()
        .step_by(step)
        .take(count)
        .map(|&(address, size)| (bias + address + (size / 2).min(5)) as usize)
        .collect()
}

fn main() -> ExitCode {
    let mut addresses = 2_000usize;
    let mut batch = 50usize;
    let mut quiet = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let number = |value: Option<String>| value.and_then(|v| v.parse().ok());
        match arg.as_str() {
            "--addresses" => match number(args.next()) {
                Some(n) => addresses = n,
                None => return usage(),
            },
            "--batch" => match number(args.next()) {
                Some(n) if n > 0 => batch = n,
                _ => return usage(),
            },
            "--quiet" => quiet = true,
            _ => return usage(),
        }
    }
    let targets = function_addresses(addresses);
    let before = resident();
    let started = Instant::now();
    let mut frames = 0usize;
    let mut worst_batch = 0f64;
    let mut peak_resident = before;
    let mut worst_peak = 0u64;
    let mut batches: Vec<&[usize]> = targets.chunks(batch).collect();
    // Then addresses already seen: the steady state.
    let seen: Vec<&[usize]> = batches.iter().take(3).copied().collect();
    batches.extend(seen);
    for (i, addresses) in batches.iter().enumerate() {
        // Resets VmHWM, so that it tells this batch's peak.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let began = Instant::now();
        {
            let mut symbolizer = symbolizer();
            // As the collectors do: the window's addresses at once, then each stack.
            symbolizer.prepare(addresses.iter().copied());
            for &address in *addresses {
                let resolved = symbolizer.resolve(&[address]);
                frames += resolved
                    .iter()
                    .map(|&l| symbolizer.location(l).depth())
                    .sum::<usize>();
            }
            symbolizer.end_batch();
        }
        let took = began.elapsed().as_secs_f64();
        worst_batch = worst_batch.max(took);
        let now = resident();
        if now.0 + now.1 > peak_resident.0 + peak_resident.1 {
            peak_resident = now;
        }
        let batch_peak = peak_kib();
        worst_peak = worst_peak.max(batch_peak);
        if !quiet {
            eprintln!(
                "batch {i:3}: {:7.1} ms, anon {:6} KiB, file {:6} KiB, peak {batch_peak:6} KiB",
                took * 1e3,
                now.0,
                now.1
            );
        }
    }
    let after = resident();
    println!(
        "{{\"addresses\": {}, \"batch\": {batch}, \"frames\": {frames}, \"seconds\": {:.3}, \
         \"worst_batch_s\": {worst_batch:.3}, \"before_kib\": [{}, {}], \"peak_kib\": [{}, {}], \
         \"after_kib\": [{}, {}], \"batch_peak_kib\": {worst_peak}}}",
        targets.len(),
        started.elapsed().as_secs_f64(),
        before.0,
        before.1,
        peak_resident.0,
        peak_resident.1,
        after.0,
        after.1,
    );
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!("usage: symbolize_footprint [--addresses N] [--batch N] [--quiet]");
    ExitCode::from(2)
}
