//! Many profilers in one process (children of one `profiling` app) pushing to one loopback
//! server: they share a few connections, and what each one costs in memory stays small.
//! The sampling allocator is this binary's global allocator, so caddyprof's own allocations
//! are counted (`allocator::own_allocations`).

mod support;

use std::alloc::System;
use std::time::Duration;

use caddyprof::allocator::{self, Sampled};
use caddyprof::runtime;
use caddyprof::runtime::upload::UPLOADS_PER_SERVER;
use support::{FakeServer, Fault, pyroscope_server, serial, server_runtime};

#[global_allocator]
static ALLOC: Sampled<System> = Sampled::new(System);

/// A Pyroscope profiler named `many-{i}` pushing to `server` every `rate`.
fn profiler(server: &FakeServer, i: usize, rate: &str) -> serde_json::Value {
    serde_json::json!({
        "profiler": "pyroscope",
        "server_address": server.url(),
        "application_name": format!("many-{i}"),
        "upload_rate": rate,
    })
}

/// `profilers` of `types` in one `profiling` app.
fn config_of(profilers: Vec<serde_json::Value>, types: &[&str]) -> caddyprof::Config {
    let json = serde_json::json!({"apps": {"profiling": {
        "profile_types": types,
        "profilers": profilers,
    }}});
    caddyprof::Config::from_json(&json.to_string()).unwrap()
}

/// `profilers` Pyroscope profilers of `types`, all to `server`, each window `rate` long.
fn config(server: &FakeServer, profilers: usize, types: &[&str], rate: &str) -> caddyprof::Config {
    config_of(
        (0..profilers).map(|i| profiler(server, i, rate)).collect(),
        types,
    )
}

/// 50 profilers whose windows all end at the same moments upload over a few shared
/// connections, not one each.
#[test]
fn profilers_share_a_few_connections() {
    let _serial = serial();
    let rt = server_runtime();
    let server = pyroscope_server(&rt);
    let running = runtime::start(&config(&server, 50, &["cpu", "goroutine"], "1s")).unwrap();
    // Two windows of each profiler: 200 uploads.
    rt.block_on(server.wait_for(200, Duration::from_secs(20)));
    let reports = running.stop();
    assert_eq!(reports.len(), 50);
    for report in &reports {
        let uploads = report.uploads.unwrap();
        assert!(uploads.delivered >= 2, "{report:?}");
    }
    // (The fake server closes each connection after its answer: it counts each upload's.)
    let open = server.most_open();
    assert!(
        (1..=UPLOADS_PER_SERVER).contains(&open),
        "{open} connections open at once for 50 profilers ({} in all)",
        server.connections()
    );
}

/// A server that does not answer holds its own upload turns only: the profilers of another
/// server still deliver.
#[test]
fn a_hung_server_does_not_hold_another_servers_uploads() {
    let _serial = serial();
    let rt = server_runtime();
    let hung = pyroscope_server(&rt);
    hung.inject(std::iter::repeat_n(
        Fault::Hang(Duration::from_secs(30)),
        50,
    ));
    let answering = pyroscope_server(&rt);
    let mut profilers: Vec<_> = (0..8).map(|i| profiler(&hung, i, "1s")).collect();
    profilers.push(profiler(&answering, 8, "1s"));
    let running = runtime::start(&config_of(profilers, &["cpu"])).unwrap();
    rt.block_on(answering.wait_for(3, Duration::from_secs(20)));
    assert!(
        hung.most_open() <= UPLOADS_PER_SERVER,
        "{}",
        hung.most_open()
    );
    drop(running.stop());
}

/// caddyprof's own memory in use while `profilers` profilers run: measured after `windows`
/// windows of 2 s (the fake server answers the uploads within the window), once their
/// uploads are done.
fn in_use_with(profilers: usize, windows: usize) -> u64 {
    let rt = server_runtime();
    let server = pyroscope_server(&rt);
    let types = ["cpu", "heap", "goroutine"];
    let running = runtime::start(&config(&server, profilers, &types, "2s")).unwrap();
    rt.block_on(server.wait_for(profilers * types.len() * windows, Duration::from_secs(60)));
    // Mid-window: the last window's profiles are built and sent, the next is not cut yet.
    std::thread::sleep(Duration::from_millis(300));
    let in_use = allocator::own_allocations().in_use_bytes();
    drop(running.stop());
    in_use
}

/// What one more profiler costs in caddyprof's own memory is small and does not grow with
/// the windows: measured with 1 and with 51 profilers (cpu, heap and goroutine, uploading
/// every 2 s) after 2 windows and after 4.
#[test]
fn memory_per_profiler_is_small() {
    let _serial = serial();
    let mut per_profiler = Vec::new();
    for windows in [2, 4] {
        let one = in_use_with(1, windows);
        let many = in_use_with(51, windows);
        per_profiler.push(many.saturating_sub(one) / 50);
    }
    eprintln!("bytes per profiler after 2 and 4 windows: {per_profiler:?}");
    for bytes in &per_profiler {
        assert!(*bytes < 64 << 10, "{per_profiler:?}");
    }
}
