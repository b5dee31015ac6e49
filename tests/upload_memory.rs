//! What a server sends back cannot grow the host: whatever the body of an answer (100 MB, a
//! chunked body without end, garbage without end), the uploader's peak resident memory stays
//! within a few MiB of what it was. The only test of its binary, so that nothing else moves the
//! peak while it measures.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use caddyprof::runtime::upload::{
    Connections, RetryPolicy, UploadRequest, UploadStats, Uploader, UploaderOptions,
};
use reqwest::header::HeaderMap;
use support::{Body, FakeServer, Fault, Kind};

/// A `kB` line of /proc/self/status, in bytes.
fn status_bytes(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in /proc/self/status"));
    let kb: u64 = line
        .trim_start_matches(key)
        .trim_start_matches(':')
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

/// Waits until the uploader has settled its one request (at most 30 s).
async fn settled(uploader: &Uploader) -> UploadStats {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = uploader.stats();
        if stats.delivered + stats.failed + stats.rejected >= 1 {
            return stats;
        }
        assert!(Instant::now() < deadline, "not settled: {stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Uploads one small request to `server` with `faults` injected; returns its counters.
async fn upload_once(server: &FakeServer, faults: Vec<Fault>) -> UploadStats {
    server.inject(faults);
    let uploader = Uploader::start(
        UploaderOptions {
            retry: RetryPolicy {
                max_attempts: 2,
                ..RetryPolicy::fast()
            },
            timeout: Some(Duration::from_secs(10)),
            ..UploaderOptions::new("memory")
        },
        &Connections::new().unwrap(),
    );
    uploader.push(UploadRequest {
        url: format!("{}/ingest", server.url()).parse().unwrap(),
        headers: HeaderMap::new(),
        body: Bytes::from_static(b"profile"),
        what: "test profile".into(),
    });
    let stats = settled(&uploader).await;
    uploader.stop(Duration::from_secs(2)).await;
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_body_grows_the_host() {
    let server = FakeServer::start(Kind::Pyroscope {
        prefix: String::new(),
        tenant_required: false,
    })
    .await;
    // Warm up: the client, the runtime's threads and the server's buffers exist before the
    // peak is taken.
    let warm_up = vec![Fault::Status(200, "", None)];
    assert_eq!(upload_once(&server, warm_up).await.delivered, 1);
    // What is sent back, and the (delivered, failed) counts it must give.
    let scenarios = [
        (
            "a 100 MB body with 200",
            vec![Fault::Answer(200, Body::Sized(100 << 20))],
            (1, 0),
        ),
        (
            "an endless chunked body with 200",
            vec![Fault::Answer(200, Body::Endless)],
            (1, 0),
        ),
        (
            "an endless chunked body with 503, twice",
            vec![
                Fault::Answer(503, Body::Endless),
                Fault::Answer(503, Body::Endless),
            ],
            (0, 1),
        ),
        (
            "endless garbage, twice",
            vec![Fault::EndlessGarbage, Fault::EndlessGarbage],
            (0, 1),
        ),
    ];
    for (name, faults, expected) in scenarios {
        let peak_before = status_bytes("VmHWM");
        let stats = upload_once(&server, faults).await;
        let growth = status_bytes("VmHWM").saturating_sub(peak_before);
        assert_eq!(
            (stats.delivered, stats.failed),
            expected,
            "{name}: {stats:?}"
        );
        assert!(
            growth < 8 << 20,
            "{name}: the peak resident memory grew by {} MiB",
            growth >> 20
        );
    }
}
