//! The profiler is not in the program's heap profile: a program whose own allocations are
//! known (two functions, known sizes), profiled by the runtime with cpu, heap and goroutine
//! into a file sink, which symbolizes this debug build's frames while the program works.
//! Its heap profiles hold no caddyprof frame and the program's bytes within 10 %, and the
//! profiler's own allocations are counted apart and reported (at the stop and in the log).
//! One test: the counts are process-wide.

mod support;

use std::alloc::System;
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use caddyprof::allocator::{self, Sampled};
use caddyprof::apps::file::sink::file_name;
use caddyprof::config::ProfileType;
use caddyprof::profile::{Symbols, decode};
use caddyprof::runtime;
use caddyprof::runtime::windows::Windows;
use support::Log;

#[global_allocator]
static ALLOC: Sampled<System> = Sampled::new(System);

const ALLOC_SPACE: usize = 1;

/// Allocates and frees blocks of 1–64 KiB, `bytes` in all (about); returns the bytes.
#[inline(never)]
fn allocate_large(x: &mut u64, bytes: u64) -> u64 {
    let mut done = 0;
    while done < bytes {
        let size = 1024 + (next(x) % (63 * 1024)) as usize;
        drop(black_box(Vec::<u8>::with_capacity(size)));
        done += size as u64;
    }
    done
}

/// Allocates and frees blocks of 256 B–16 KiB, `bytes` in all (about); returns the bytes.
#[inline(never)]
fn allocate_small(x: &mut u64, bytes: u64) -> u64 {
    let mut done = 0;
    while done < bytes {
        let size = 256 + (next(x) % (16 * 1024 - 256)) as usize;
        drop(black_box(Vec::<u8>::with_capacity(size)));
        done += size as u64;
    }
    done
}

fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn the_profilers_own_allocations_are_counted_apart_from_the_programs_heap_profile() {
    let log = Log::install();
    // Fine sampling, so that 10 % is far outside the sampling error (≈ 2 % per function).
    allocator::set_rate(16 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let interval = Duration::from_secs(2);
    let json = serde_json::json!({"apps": {"profiling": {
        "profile_types": ["cpu", "heap", "goroutine"],
        "profilers": [{"profiler": "file", "directory": dir.path(), "interval": "2s"}],
    }}});
    let config = caddyprof::Config::from_json(&json.to_string()).unwrap();
    // The sink's windows and the names of heap files starting then (a window's file is
    // named by when its window was cut, a little after; the names sort by time), named now:
    // while heap profiles are taken, this thread calls nothing of caddyprof's.
    let mut windows = Windows::new(SystemTime::now(), interval);
    let windows: Vec<(SystemTime, String)> = (0..120)
        .map(|_| {
            let (start, _) = windows.next_window();
            (start, file_name(ProfileType::Heap, start))
        })
        .collect();
    let running = runtime::start(&config).unwrap();
    // The heap subscription starts on the runtime's threads; the work starts with the next
    // full window, after the sink's clock has started.
    let waiting = Instant::now();
    while !allocator::is_active() {
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "no heap subscription"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let now = SystemTime::now();
    let first = windows.iter().position(|(start, _)| *start > now).unwrap();
    let wait = windows[first].0.duration_since(now).unwrap_or_default();
    std::thread::sleep(wait + Duration::from_millis(50));

    // About 3 s of work, while windows are cut and built (symbolized) beside it.
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let (mut large, mut small) = (0u64, 0u64);
    for _ in 0..30 {
        large += allocate_large(&mut x, 6 << 20);
        small += allocate_small(&mut x, 2 << 20);
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every window of the work is built once the next one is (built in order).
    let now = SystemTime::now();
    let after = windows.iter().position(|(start, _)| *start > now).unwrap();
    let heap_files_in = |from: &str, to: &str| {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|entry| entry.unwrap().file_name().into_string().ok())
            .filter(|name| name.starts_with("heap-") && name.as_str() >= from && name.as_str() < to)
            .count()
    };
    let waiting = Instant::now();
    while heap_files_in(&windows[after].1, &windows[after + 1].1) == 0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "{} not written",
            windows[after].1
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let reports = running.stop();
    assert_eq!(reports.len(), 1, "the sink did not report in time");
    let report = &reports[0];
    assert!(report.errors.is_empty(), "{report:?}");
    for pair in windows[first..=after + 1].windows(2) {
        assert_eq!(
            heap_files_in(&pair[0].1, &pair[1].1),
            1,
            "the heap file of the window from {} (a window of the work was not built?): \
             {report:?}",
            pair[0].1
        );
    }

    let mut heap_files = 0;
    let mut other_files = 0;
    let (mut large_seen, mut small_seen, mut all_seen) = (0i64, 0i64, 0i64);
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".pb.gz"))
        .collect();
    files.sort();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("heap-") {
            other_files += 1;
            continue;
        }
        heap_files += 1;
        let profile = decode(&std::fs::read(file).unwrap()).unwrap();
        let symbols = Symbols::new(&profile);
        for sample in &profile.sample {
            let stack = symbols.stack(sample);
            let ours: Vec<&str> = stack
                .iter()
                .map(|f| f.as_ref())
                .filter(|f: &&str| f.contains("caddyprof::"))
                .collect();
            assert!(
                ours.is_empty(),
                "{name}: a sample of {} bytes at caddyprof's frames {ours:?}, stack {stack:?}",
                sample.value[ALLOC_SPACE]
            );
            all_seen += sample.value[ALLOC_SPACE];
        }
        large_seen += support::sum_in_stacks(&profile, "allocate_large", ALLOC_SPACE);
        small_seen += support::sum_in_stacks(&profile, "allocate_small", ALLOC_SPACE);
    }
    let own = report
        .own_usage
        .expect("the sampling allocator counts caddyprof's own");
    eprintln!(
        "{heap_files} heap and {other_files} other profiles; alloc_space: large {large_seen} \
         (true {large}), small {small_seen} (true {small}), every stack {all_seen}; {own:?}, \
         {own}; symbolizer index {} bytes",
        caddyprof::collect::symbolize::symbolizer().index_bytes()
    );
    assert!(
        other_files >= 2 * heap_files,
        "cpu and goroutine profiles too: {files:?}"
    );
    for (seen, truth) in [(large_seen, large), (small_seen, small)] {
        assert!(
            (seen as f64 / truth as f64 - 1.0).abs() <= 0.10,
            "{seen} vs {truth}"
        );
    }
    // What else the program allocated is little next to its work: nothing of the
    // profiler's (tens of MiB, symbolizing this debug build) is in there.
    assert!(
        (all_seen as f64) <= (large + small) as f64 * 1.10,
        "{all_seen} vs {}",
        large + small
    );

    // The profiler's own: counted, and plausible. It allocated during the run, holds at
    // most what it allocated (nothing was its own before the start), and at least the
    // symbolizer's index of this binary's debug info, which it keeps.
    assert!(own.allocations > 0 && own.allocated_bytes > 0, "{own:?}");
    assert!(own.allocations_per_second() > 0.0, "{own:?}");
    assert!(own.elapsed >= Duration::from_secs(3), "{own:?}");
    let index = caddyprof::collect::symbolize::symbolizer().index_bytes() as u64;
    assert!(index > 0);
    assert!(
        (index..=own.allocated_bytes).contains(&own.in_use_bytes),
        "in use {} outside {index}..={}",
        own.in_use_bytes,
        own.allocated_bytes
    );
    let text = log.text();
    let line = text
        .lines()
        .find(|l| l.contains("caddyprof itself: "))
        .unwrap_or_else(|| panic!("no line of caddyprof's own usage in {text}"));
    assert!(line.contains("INFO"), "{line}");
    assert!(line.ends_with(&own.to_string()), "{line} vs {own}");
}
