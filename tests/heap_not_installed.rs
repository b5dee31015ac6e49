//! `heap` asked for in a program whose global allocator is not the sampling one: one clear
//! warning (however many sinks ask), nothing sent for heap, and CPU profiles still flow.

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use caddyprof::runtime;
use support::Log;

#[inline(never)]
fn spin(duration: Duration) -> u64 {
    let start = Instant::now();
    let mut x = 1u64;
    while start.elapsed() < duration {
        for _ in 0..10_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        x = black_box(x);
    }
    x
}

#[test]
fn heap_without_the_sampling_allocator_warns_once_and_cpu_keeps_working() {
    let log = Log::default();
    let writer = log.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();
    assert!(!caddyprof::allocator::is_installed());

    let rt = support::server_runtime();
    let pyroscope = support::pyroscope_server(&rt);
    let dir = tempfile::tempdir().unwrap();
    let json = serde_json::json!({"apps": {"profiling": {
        "profile_types": ["cpu", "heap", "allocs"],
        "profilers": [
            {"profiler": "pyroscope", "server_address": pyroscope.url(),
             "application_name": "no-heap", "upload_rate": "1s"},
            {"profiler": "file", "directory": dir.path(), "interval": "1h"},
        ],
    }}});
    let config = caddyprof::Config::from_json(&json.to_string()).unwrap();
    let running = runtime::start(&config).unwrap();
    black_box(spin(Duration::from_millis(1500)));
    let reports = running.stop();
    for report in &reports {
        assert!(report.is_clean(), "{report:?}");
    }

    let text = log.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("sampling allocator"))
        .collect();
    eprintln!("{text}");
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("WARN"), "{text}");
    assert!(
        warnings[0].contains("#[global_allocator]")
            && warnings[0].contains("caddyprof::allocator::Sampled"),
        "{text}"
    );

    // CPU went on; no heap profile was sent or written.
    let requests = pyroscope.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r.status, 200);
        assert_eq!(r.query_value("units").as_deref(), Some("samples"), "{r:?}");
    }
    let files = &reports
        .iter()
        .find(|r| r.uploads.is_none())
        .unwrap()
        .last_files;
    assert!(!files.is_empty());
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("cpu-"), "{name}");
    }
}
