//! Throughput of `adapt` on generated Profilingfiles of about 0.5, 1 and 2 MB: thousands of
//! child profilers, quoted strings, heredocs, comments and snippet imports.
//!
//! Run with `cargo bench --bench adapt`; criterion prints the time and MB/s for each size.
//! Time should grow linearly with size (2× input → ≤ 2.2× time).
//!
//! Two paths are measured: `adapt/text` is what `caddyprof adapt` does (JSON text out, the
//! target's measure), `adapt/value` the library call returning a `serde_json::Value`.
//!
//! `ADAPT_REPEAT=300 cargo bench --bench adapt` adapts the 1 MB file 300 times and prints
//! the median of each block of 30 runs instead (see `repeat`).
//!
//! For counting instructions, `ADAPT_ONCE=BYTES` adapts one generated file of about that size
//! to text once and exits, without criterion (with `ADAPT_VALUE=1`, to a Value):
//! `ADAPT_ONCE=1048576 valgrind --tool=callgrind --toggle-collect='caddyprof::adapt_source_to_text' target/release/deps/adapt-…`
//! (`--toggle-collect='caddyprof::adapt'` for the Value).

use std::hint::black_box;

use caddyprof::{AdaptOptions, SourceFile};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};

#[path = "adapt-ab/input.rs"]
mod input;

use input::generate;

fn adapt(c: &mut Criterion) {
    let options = AdaptOptions::default();
    let mut group = c.benchmark_group("adapt");
    group.sample_size(20);
    for size in [512 * 1024, 1024 * 1024, 2 * 1024 * 1024] {
        let text = generate(size);
        // The generated file must be valid, or the benchmark measures an early error.
        caddyprof::adapt(&text).expect("the generated Profilingfile adapts");
        group.throughput(Throughput::Bytes(text.len() as u64));
        // What `caddyprof adapt` does: Profilingfile text in, JSON text out.
        group.bench_with_input(BenchmarkId::new("text", text.len()), &text, |b, text| {
            b.iter(|| {
                let file = SourceFile::new("Profilingfile", black_box(text.as_str()));
                caddyprof::adapt_source_to_text(&file, &options, false).expect("adapts")
            })
        });
        // The library call that returns a serde_json::Value.
        group.bench_with_input(BenchmarkId::new("value", text.len()), &text, |b, text| {
            b.iter(|| caddyprof::adapt(black_box(text)).expect("adapts"))
        });
    }
    group.finish();
}

criterion_group!(benches, adapt);

fn main() {
    if let Some(size) = std::env::var("ADAPT_ONCE")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        let text = generate(size);
        if std::env::var_os("ADAPT_VALUE").is_some() {
            black_box(caddyprof::adapt(black_box(&text)).expect("adapts"));
        } else {
            let file = SourceFile::new("Profilingfile", text.as_str());
            let options = AdaptOptions::default();
            black_box(caddyprof::adapt_source_to_text(&file, &options, false).expect("adapts"));
        }
        println!("adapted {} bytes", text.len());
        return;
    }
    if let Some(times) = std::env::var("ADAPT_REPEAT")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        repeat(times);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

/// Adapts the 1 MB file to text `times` times and prints the median time of each tenth of
/// the runs: on a machine whose speed changes for minutes at a time (a shared VM), this shows
/// the fast and the slow phases apart, where one criterion median mixes them.
fn repeat(times: usize) {
    let text = generate(1024 * 1024);
    let options = AdaptOptions::default();
    let mut millis: Vec<f64> = (0..times)
        .map(|_| {
            let start = std::time::Instant::now();
            let file = SourceFile::new("Profilingfile", black_box(text.as_str()));
            black_box(caddyprof::adapt_source_to_text(&file, &options, false).expect("adapts"));
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let block = (times / 10).max(1);
    let medians: Vec<String> = millis
        .chunks_mut(block)
        .map(|runs| {
            runs.sort_by(f64::total_cmp);
            format!("{:.1}", runs[runs.len() / 2])
        })
        .collect();
    println!(
        "{} bytes to JSON text, median ms of each {block} runs: {}",
        text.len(),
        medians.join(" ")
    );
}
