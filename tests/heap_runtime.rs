//! Heap profiles through the runtime, with the sampling allocator installed in this test
//! binary: real sampling, real HTTP to the strict fake servers on 127.0.0.1, real decoding.
//! Pyroscope gets one heap profile per window (even with both `heap` and `allocs` asked for)
//! with the Go agent's query and `sample_type_config`, alloc_* per window; profefe gets
//! `type=heap` with alloc_* since the start; a file sink writes them.

mod support;

use std::alloc::System;
use std::hint::black_box;
use std::time::{Duration, Instant};

use caddyprof::allocator::{self, Sampled};
use caddyprof::apps::pyroscope::sink::HEAP_SAMPLE_TYPE_CONFIG;
use caddyprof::profile::{decode, proto};
use caddyprof::runtime;
use support::{
    FakeServer, Kind, go_is_installed, go_tool_pprof, pyroscope_server, serial, server_runtime,
    sum_in_stacks,
};

#[global_allocator]
static ALLOC: Sampled<System> = Sampled::new(System);

/// Allocates blocks of 1–64 KiB for `duration`, keeping one in eight until the end and
/// freeing the rest; returns the kept blocks.
#[inline(never)]
fn alloc_work(duration: Duration) -> Vec<Vec<u8>> {
    let start = Instant::now();
    let mut kept = Vec::new();
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let mut n = 0u64;
    while start.elapsed() < duration {
        for _ in 0..16 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let block: Vec<u8> = black_box(Vec::with_capacity(1024 + (x % (63 * 1024)) as usize));
            n += 1;
            if n.is_multiple_of(8) {
                kept.push(block);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    kept
}

const ALLOC_SPACE: usize = 1;
const INUSE_SPACE: usize = 3;

fn check_go_heap_shape(profile: &proto::Profile) {
    assert_eq!(
        support::sample_types(profile),
        [
            "alloc_objects/count",
            "alloc_space/bytes",
            "inuse_objects/count",
            "inuse_space/bytes"
        ]
    );
    let s = |i: i64| profile.string_table[i as usize].as_str();
    let period_type = profile.period_type.unwrap();
    assert_eq!(
        (s(period_type.r#type), s(period_type.unit)),
        ("space", "bytes")
    );
    // The default rate, as the Go captures show (524288).
    assert_eq!(profile.period, 512 * 1024);
}

#[test]
fn heap_profiles_go_to_pyroscope_per_window_and_to_profefe_cumulative() {
    let _serial = serial();
    let rt = server_runtime();
    let pyroscope = pyroscope_server(&rt);
    let profefe = rt.block_on(FakeServer::start(Kind::Profefe));
    let json = serde_json::json!({"apps": {"profiling": {
        "profile_types": ["heap", "allocs"],
        "profilers": [
            {"profiler": "pyroscope", "server_address": pyroscope.url(),
             "application_name": "rt-heap", "upload_rate": "1s"},
            {"profiler": "profefe", "address": profefe.url(), "service": "rt-heap"},
        ],
    }}});
    let config = caddyprof::Config::from_json(&json.to_string()).unwrap();
    let running = runtime::start(&config).unwrap();
    let kept = alloc_work(Duration::from_millis(2500));
    let reports = running.stop();
    assert_eq!(reports.len(), 2, "{reports:?}");
    for report in &reports {
        assert!(report.is_clean(), "{report:?}");
    }

    // Pyroscope: one heap upload per window, as pyroscope-go sends it.
    let requests = pyroscope.requests();
    assert!(requests.len() >= 2, "{requests:?}");
    let mut windows: Vec<(String, String)> = Vec::new();
    let mut profiles = Vec::new();
    for r in &requests {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.query_value("sampleRate").as_deref(), Some("100"));
        assert_eq!(r.query_value("units").as_deref(), Some(""));
        assert_eq!(r.query_value("aggregationType").as_deref(), Some(""));
        let window = (
            r.query_value("from").unwrap(),
            r.query_value("until").unwrap(),
        );
        assert!(!windows.contains(&window), "two uploads for {window:?}");
        windows.push(window);
        let config = r.part("sample_type_config").expect("a sample_type_config");
        assert_eq!(config.filename.as_deref(), Some("sample_type_config.json"));
        assert_eq!(
            String::from_utf8_lossy(&config.data),
            HEAP_SAMPLE_TYPE_CONFIG
        );
        let profile = r.part("profile").expect("a profile part");
        assert_eq!(profile.filename.as_deref(), Some("profile.pprof"));
        let decoded = decode(&profile.data).unwrap();
        check_go_heap_shape(&decoded);
        profiles.push(decoded);
    }
    let per_window: Vec<i64> = profiles
        .iter()
        .map(|p| sum_in_stacks(p, "alloc_work", ALLOC_SPACE))
        .collect();
    eprintln!("pyroscope alloc_space of alloc_work per window: {per_window:?}");
    // The work spans the windows: more than one saw it allocate (deltas, not totals).
    assert!(
        per_window.iter().filter(|&&v| v > 0).count() >= 2,
        "{per_window:?}"
    );
    let pyroscope_total: i64 = per_window.iter().sum();
    // The last window's in-use memory is what alloc_work kept.
    let kept_bytes: i64 = kept.iter().map(|v| v.capacity() as i64).sum();
    let last_inuse = sum_in_stacks(profiles.last().unwrap(), "alloc_work", INUSE_SPACE);
    eprintln!("in use at the end: {last_inuse} (kept {kept_bytes})");
    assert!(
        (last_inuse as f64 / kept_bytes as f64 - 1.0).abs() < 0.35,
        "{last_inuse} vs {kept_bytes}"
    );

    // profefe: type=heap, cumulative alloc_* (at least everything Pyroscope saw in pieces).
    let requests = profefe.requests();
    assert!(matches!(requests.len(), 1 | 2), "{requests:?}");
    for r in &requests {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.query_value("type").as_deref(), Some("heap"));
    }
    let last = decode(&requests.last().unwrap().body).unwrap();
    check_go_heap_shape(&last);
    let cumulative = sum_in_stacks(&last, "alloc_work", ALLOC_SPACE);
    eprintln!(
        "profefe alloc_space of alloc_work: {cumulative}, pyroscope windows: {pyroscope_total}"
    );
    assert!(
        cumulative >= pyroscope_total,
        "{cumulative} < {pyroscope_total}"
    );
    assert_eq!(allocator::stats().reentered, 0);
    drop(kept);
}

/// `go tool pprof -sample_index=alloc_space -top` reads a heap profile the file sink wrote.
#[test]
fn file_sink_heap_profile_reads_in_go_tool_pprof() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("profiles");
    let json = serde_json::json!({"apps": {"profiling": {
        "profile_types": ["heap"],
        "profilers": [{"profiler": "file", "directory": out, "interval": "1h"}],
    }}});
    let config = caddyprof::Config::from_json(&json.to_string()).unwrap();
    // The profile is written when stopping, which must finish within the stop deadline:
    // load this test binary's debug info first (about 0.2 s of the 2 s in a debug build), so
    // that a slow moment of the machine does not push the stop past it.
    let work: fn(Duration) -> Vec<Vec<u8>> = alloc_work;
    caddyprof::collect::symbolize::symbolizer().resolve(&[work as usize]);
    let running = runtime::start(&config).unwrap();
    let kept = alloc_work(Duration::from_millis(600));
    let reports = running.stop();
    assert_eq!(
        reports.len(),
        1,
        "the file sink did not report before the stop deadline"
    );
    assert!(reports[0].is_clean(), "{reports:?}");
    let file = reports[0]
        .last_files
        .iter()
        .find(|f| f.to_string_lossy().ends_with(".pb.gz"))
        .expect("a profile written");
    assert!(
        file.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("heap-"),
        "{file:?}"
    );
    let decoded = decode(&std::fs::read(file).unwrap()).unwrap();
    check_go_heap_shape(&decoded);
    assert!(sum_in_stacks(&decoded, "alloc_work", ALLOC_SPACE) > 0);
    drop(kept);

    if !go_is_installed("file_sink_heap_profile_reads_in_go_tool_pprof (go tool pprof part)") {
        return;
    }
    let stdout = go_tool_pprof(&["-sample_index=alloc_space", "-top"], file, dir.path());
    assert!(stdout.contains("Type: alloc_space"), "{stdout}");
    assert!(stdout.contains("alloc_work"), "{stdout}");
}
