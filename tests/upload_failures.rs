//! Failure behaviour of the uploader against a fault-injecting server on 127.0.0.1: retries
//! with a fresh body, final 4xx, timeouts, a bounded queue, outages, and a prompt stop.

mod support;

use std::time::{Duration, Instant};

use caddyprof::apps::ProfefeApp;
use caddyprof::apps::PyroscopeApp;
use caddyprof::apps::profefe::sink::ProfefeSink;
use caddyprof::apps::pyroscope::sink::PyroscopeSink;
use caddyprof::config::ProfileType;
use caddyprof::runtime::upload::{Connections, RetryPolicy, Submitted, UploaderOptions};
use support::{FakeServer, Fault, Kind, profile};

const WAIT: Duration = Duration::from_secs(5);

fn options() -> UploaderOptions {
    UploaderOptions {
        retry: RetryPolicy::fast(),
        timeout: Some(Duration::from_millis(300)),
        ..UploaderOptions::new("test")
    }
}

async fn pyroscope() -> FakeServer {
    FakeServer::start(Kind::Pyroscope {
        prefix: String::new(),
        tenant_required: false,
    })
    .await
}

fn pyroscope_sink(url: String, options: UploaderOptions) -> PyroscopeSink {
    let app = PyroscopeApp {
        server_address: Some(url),
        application_name: Some("app".into()),
        ..PyroscopeApp::default()
    };
    PyroscopeSink::start(
        &support::pyroscope_settings(&app, 100),
        options,
        &Connections::new().unwrap(),
    )
    .unwrap()
}

fn profefe_sink(url: String, options: UploaderOptions) -> ProfefeSink {
    let app = ProfefeApp {
        address: Some(url),
        service: Some("svc".into()),
        ..ProfefeApp::default()
    };
    ProfefeSink::start(
        &support::profefe_settings(&app),
        options,
        &Connections::new().unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn server_errors_are_retried_with_a_fresh_identical_body() {
    let server = pyroscope().await;
    server.inject([
        Fault::Status(500, "boom", None),
        Fault::Status(503, "", None),
        Fault::Status(429, "{\"code\":\"resource_exhausted\"}", Some(0)),
    ]);
    let sink = pyroscope_sink(server.url(), options());
    sink.submit(&profile(ProfileType::Heap, 1, 1, 1_700_000_000));
    let requests = server.wait_for(4, WAIT).await;
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 503, 429, 200]);
    for r in &requests[1..] {
        assert_eq!(
            r.body, requests[0].body,
            "every attempt sends the whole body"
        );
        assert_eq!(r.query, requests[0].query);
    }
    // Backoff: 20 ms, 40 ms, 80 ms.
    assert!(requests[3].at - requests[0].at >= Duration::from_millis(140));
    let stats = sink.stop(Duration::from_secs(2)).await;
    assert_eq!((stats.delivered, stats.retries, stats.failed), (1, 3, 0));
}

#[tokio::test]
async fn client_errors_are_final() {
    let server = FakeServer::start(Kind::Profefe).await;
    server.inject([Fault::Status(400, "{\"code\":400,\"error\":\"bad\"}", None)]);
    let sink = profefe_sink(server.url(), options());
    sink.submit(&profile(ProfileType::Cpu, 1, 1, 1_700_000_000));
    sink.submit(&profile(ProfileType::Cpu, 1, 2, 1_700_000_000));
    let requests = server.wait_for(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.requests().len(), 2, "the 400 is not retried");
    assert_eq!(requests[0].status, 400);
    assert_eq!(requests[1].status, 200);
    let stats = sink.stop(Duration::from_secs(2)).await;
    assert_eq!((stats.rejected, stats.delivered, stats.retries), (1, 1, 0));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = pyroscope().await;
    server.inject([Fault::Status(307, "", None)]);
    let sink = pyroscope_sink(server.url(), options());
    sink.submit(&profile(ProfileType::Cpu, 1, 1, 1_700_000_000));
    let stats = sink.stop(Duration::from_secs(2)).await;
    assert_eq!(stats.rejected, 1);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn timeouts_closed_connections_and_garbage_are_retried() {
    let server = FakeServer::start(Kind::Profefe).await;
    server.inject([
        Fault::Hang(Duration::from_secs(3)),
        Fault::Close,
        Fault::Garbage,
    ]);
    let sink = profefe_sink(server.url(), options());
    let started = Instant::now();
    sink.submit(&profile(ProfileType::Heap, 1, 1, 1_700_000_000));
    let stats = loop {
        let stats = sink.stats();
        if stats.delivered == 1 || started.elapsed() > WAIT {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!((stats.delivered, stats.retries), (1, 3));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the hang was cut by the 300 ms timeout"
    );
    sink.stop(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn retries_give_up_after_max_attempts() {
    let server = pyroscope().await;
    server.inject((0..10).map(|_| Fault::Status(502, "", None)));
    let options = UploaderOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::fast()
        },
        ..options()
    };
    let sink = pyroscope_sink(server.url(), options);
    sink.submit(&profile(ProfileType::Cpu, 1, 1, 1_700_000_000));
    sink.submit(&profile(ProfileType::Cpu, 1, 2, 1_700_000_000));
    server.wait_for(6, WAIT).await;
    let stats = sink.stop(Duration::from_secs(2)).await;
    assert_eq!((stats.failed, stats.delivered, stats.retries), (2, 0, 4));
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_an_outage_is_survived() {
    // The server is down: the first profile is in flight (retrying), the queue holds 3.
    let addr = FakeServer::free_addr().await;
    let options = UploaderOptions {
        queue_capacity: 3,
        retry: RetryPolicy {
            max_attempts: 1000,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(50),
            ..RetryPolicy::fast()
        },
        ..options()
    };
    let sink = profefe_sink(format!("http://{addr}"), options);
    sink.submit(&profile(ProfileType::Cpu, 1, 1, 1_700_000_000));
    tokio::time::sleep(Duration::from_millis(100)).await;
    for marker in 2..=6 {
        assert_eq!(
            sink.submit(&profile(ProfileType::Cpu, 1, marker, 1_700_000_000)),
            Submitted::Queued
        );
    }
    let stats = sink.stats();
    assert_eq!((stats.queued, stats.dropped, stats.delivered), (6, 2, 0));
    assert!(stats.retries >= 1);
    // The outage lasts a while longer, then the server comes up on the same port.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let server = FakeServer::start_on(Kind::Profefe, addr).await;
    let requests = server.wait_for(4, WAIT).await;
    let markers: Vec<i64> = requests
        .iter()
        .map(|r| support::decode_pprof(&r.body).unwrap().sample[0].value[0])
        .collect();
    assert_eq!(
        markers,
        [1, 4, 5, 6],
        "profiles 2 and 3 were the oldest queued"
    );
    assert!(requests.iter().all(|r| r.status == 200));
    let stats = sink.stop(Duration::from_secs(2)).await;
    assert_eq!((stats.delivered, stats.dropped, stats.failed), (4, 2, 0));
}

#[tokio::test]
async fn stop_mid_retry_makes_a_last_attempt_and_returns_in_time() {
    let server = pyroscope().await;
    server.inject((0..10).map(|_| Fault::Status(503, "", None)));
    let options = UploaderOptions {
        retry: RetryPolicy {
            initial_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(60),
            max_elapsed: Duration::from_secs(600),
            ..RetryPolicy::default()
        },
        ..options()
    };
    let sink = pyroscope_sink(server.url(), options);
    sink.submit(&profile(ProfileType::Cpu, 1, 1, 1_700_000_000));
    server.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let stats = sink.stop(Duration::from_secs(2)).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        server.requests().len(),
        2,
        "one last attempt instead of the 30 s wait"
    );
    assert_eq!((stats.failed, stats.delivered), (1, 0));
    assert_eq!(
        sink.submit(&profile(ProfileType::Cpu, 1, 1, 1_700_000_000)),
        Submitted::Closed
    );
}

#[tokio::test]
async fn stop_returns_within_the_deadline_when_the_server_hangs() {
    let server = FakeServer::start(Kind::Profefe).await;
    server.inject((0..10).map(|_| Fault::Hang(Duration::from_secs(30))));
    let options = UploaderOptions {
        timeout: None,
        ..options()
    };
    let sink = profefe_sink(server.url(), options);
    for marker in 1..=3 {
        sink.submit(&profile(ProfileType::Cpu, 1, marker, 1_700_000_000));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let stats = sink.stop(Duration::from_secs(2)).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    assert_eq!(stats.abandoned, 3, "one in flight, two queued");
}

#[tokio::test]
async fn stop_flushes_the_queue() {
    let server = pyroscope().await;
    let sink = pyroscope_sink(server.url(), options());
    for marker in 1..=5 {
        sink.submit(&profile(ProfileType::Goroutine, 1, marker, 1_700_000_000));
    }
    let stats = sink.stop(Duration::from_secs(2)).await;
    assert_eq!(stats.delivered, 5);
    assert_eq!(server.requests().len(), 5);
}

#[tokio::test]
async fn a_server_that_never_comes_up_does_not_hurt_the_host() {
    let addr = FakeServer::free_addr().await;
    let sink = profefe_sink(format!("http://{addr}"), options());
    for marker in 1..=100 {
        sink.submit(&profile(ProfileType::Cpu, 1, marker, 1_700_000_000));
    }
    let started = Instant::now();
    let stats = sink.stop(Duration::from_secs(2)).await;
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert_eq!(stats.queued, 100);
    // 64 queued, plus the one in flight if the worker took one before the pushes ended.
    assert!((35..=36).contains(&stats.dropped), "{stats:?}");
    assert_eq!(stats.delivered, 0);
    assert_eq!(
        stats.dropped + stats.failed + stats.abandoned,
        100,
        "{stats:?}"
    );
}
