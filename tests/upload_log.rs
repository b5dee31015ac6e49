//! What a sink logs while its server fails: the first failed attempt at once, then at most one
//! line per warn interval, and one line when deliveries resume. The log is captured from a
//! process-wide `tracing` subscriber; each test reads the lines of its own sink.

mod support;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use caddyprof::apps::PyroscopeApp;
use caddyprof::apps::pyroscope::sink::PyroscopeSink;
use caddyprof::config::ProfileType;
use caddyprof::runtime::upload::{Connections, RetryPolicy, Submitted, UploaderOptions};
use support::{Body, FakeServer, Fault, Kind, Log, profile};

/// Every line logged by this test binary.
fn log() -> &'static Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(Log::install)
}

/// The lines logged so far by the sink called `sink`.
fn lines_of(sink: &str) -> Vec<String> {
    let text = log().text();
    let field = format!("sink={sink} ");
    text.lines()
        .filter(|line| line.contains(&field))
        .map(str::to_owned)
        .collect()
}

/// Waits (at most `within`) for a line of `sink` containing `text`.
async fn wait_for_line(sink: &str, text: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        if let Some(line) = lines_of(sink).into_iter().find(|l| l.contains(text)) {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "no line with {text:?} within {within:?}; lines of {sink}: {:#?}",
            lines_of(sink)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn warnings(sink: &str) -> Vec<String> {
    lines_of(sink)
        .into_iter()
        .filter(|l| l.contains(" WARN "))
        .collect()
}

fn sink_to(url: String, options: UploaderOptions) -> PyroscopeSink {
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

/// Quick retries that never give up within a test.
fn patient() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 1_000,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        multiplier: 2,
        jitter: 0.0,
        max_elapsed: Duration::from_secs(60),
    }
}

fn pyroscope_kind() -> Kind {
    Kind::Pyroscope {
        prefix: String::new(),
        tenant_required: false,
    }
}

#[tokio::test]
async fn an_outage_is_said_at_once_then_summed_up_when_deliveries_resume() {
    log();
    let sink_name = "outage";
    let addr = FakeServer::free_addr().await;
    let sink = sink_to(
        format!("http://{addr}"),
        UploaderOptions {
            sink: sink_name.into(),
            queue_capacity: 2,
            timeout: Some(Duration::from_millis(300)),
            retry: patient(),
            warn_interval: Duration::from_secs(60),
        },
    );

    // Nothing listens: the first refused connection is said at once.
    assert_eq!(
        sink.submit(&profile(ProfileType::Cpu, 3, 1, 1_000)),
        Submitted::Queued
    );
    let first = wait_for_line(sink_name, "failed", Duration::from_secs(5)).await;
    assert!(first.contains(" WARN "), "{first}");
    assert!(first.contains("cannot connect"), "{first}");
    assert!(first.contains("retrying in 0."), "{first}");
    assert!(
        first.contains(&format!("url=http://{addr}/ingest")),
        "{first}"
    );
    // Four more profiles into a queue of two (one is in flight): two are dropped.
    for marker in 2..6 {
        assert_eq!(
            sink.submit(&profile(ProfileType::Cpu, 3, marker, 1_000)),
            Submitted::Queued
        );
    }

    // The server comes up but hangs twice past the timeout, then answers.
    let server = FakeServer::start_on(pyroscope_kind(), addr).await;
    server.inject([
        Fault::Hang(Duration::from_secs(2)),
        Fault::Hang(Duration::from_secs(2)),
    ]);
    let recovered = wait_for_line(sink_name, "delivered again", Duration::from_secs(10)).await;
    assert!(recovered.contains(" INFO "), "{recovered}");
    assert!(recovered.contains("2 profiles dropped"), "{recovered}");
    let attempts: u64 = recovered
        .split("after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no attempt count in {recovered}"));
    // At least one refused connection and the two timeouts.
    assert!(attempts >= 3, "{recovered}");
    server.wait_for(5, Duration::from_secs(5)).await;

    // One warning for the whole outage (refusals and timeouts), within the minute.
    let warned = warnings(sink_name);
    assert_eq!(warned.len(), 1, "{warned:#?}");
    let stats = sink.stop(Duration::from_secs(2)).await;
    assert_eq!((stats.delivered, stats.dropped), (3, 2), "{stats:?}");
}

#[tokio::test]
async fn a_lasting_outage_is_summed_up_once_per_interval() {
    log();
    let sink_name = "lasting";
    let addr = FakeServer::free_addr().await;
    let interval = Duration::from_millis(400);
    let sink = sink_to(
        format!("http://{addr}"),
        UploaderOptions {
            sink: sink_name.into(),
            retry: patient(),
            warn_interval: interval,
            ..UploaderOptions::new(sink_name)
        },
    );
    let started = Instant::now();
    assert_eq!(
        sink.submit(&profile(ProfileType::Cpu, 3, 1, 1_000)),
        Submitted::Queued
    );
    wait_for_line(sink_name, "still failing", Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let warned = warnings(sink_name);
    let elapsed = started.elapsed();
    sink.stop(Duration::from_millis(200)).await;

    assert!(warned[0].contains("cannot connect"), "{warned:#?}");
    let later = &warned[1..];
    assert!(!later.is_empty(), "{warned:#?}");
    for line in later {
        assert!(line.contains("still failing after"), "{line}");
        assert!(line.contains("failed attempts"), "{line}");
        assert!(line.contains("last: cannot connect"), "{line}");
    }
    // The first line, then at most one per interval (attempts come every 200 ms).
    let most = 1 + (elapsed.as_millis() / interval.as_millis()) as usize;
    assert!(
        warned.len() <= most,
        "{} lines in {elapsed:?}",
        warned.len()
    );
}

#[tokio::test]
async fn a_refusal_is_said_once_and_a_later_delivery_ends_it() {
    log();
    let sink_name = "refused";
    let server = FakeServer::start(pyroscope_kind()).await;
    server.inject([
        Fault::Status(401, "{\"error\":\"unauthorized\"}", None),
        Fault::Status(401, "{\"error\":\"unauthorized\"}", None),
    ]);
    let sink = sink_to(
        server.url(),
        UploaderOptions {
            retry: patient(),
            ..UploaderOptions::new(sink_name)
        },
    );
    for marker in 1..4 {
        assert_eq!(
            sink.submit(&profile(ProfileType::Cpu, 3, marker, 1_000)),
            Submitted::Queued
        );
    }
    let recovered = wait_for_line(sink_name, "delivered again", Duration::from_secs(5)).await;
    assert!(
        recovered.contains("after 2 failed attempts, 2 profiles dropped"),
        "{recovered}"
    );
    let warned = warnings(sink_name);
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert!(warned[0].contains("status 401"), "{}", warned[0]);
    assert!(warned[0].contains("profile not retried"), "{}", warned[0]);
    sink.stop(Duration::from_secs(1)).await;
}

/// Starts a sink named `sink_name` to `server` whose first answers are `faults`, uploads one
/// profile, and returns the warning of its first failure and the line of its delivery.
async fn first_failure_then_delivery(sink_name: &str, faults: Vec<Fault>) -> (String, String) {
    log();
    let server = FakeServer::start(pyroscope_kind()).await;
    server.inject(faults);
    let sink = sink_to(
        server.url(),
        UploaderOptions {
            retry: patient(),
            ..UploaderOptions::new(sink_name)
        },
    );
    sink.submit(&profile(ProfileType::Cpu, 3, 1, 1_000));
    let delivered = wait_for_line(sink_name, "delivered again", Duration::from_secs(10)).await;
    let stats = sink.stop(Duration::from_secs(1)).await;
    assert_eq!((stats.delivered, stats.failed), (1, 0), "{stats:?}");
    let warned = warnings(sink_name);
    assert_eq!(warned.len(), 1, "{warned:#?}");
    (warned[0].clone(), delivered)
}

#[tokio::test]
async fn a_body_that_trickles_is_read_for_a_moment_only() {
    let second = Duration::from_secs(1);
    let (warned, delivered) = first_failure_then_delivery(
        "trickle",
        vec![
            Fault::Answer(503, Body::Trickle(second)),
            Fault::Answer(200, Body::Trickle(second)),
        ],
    )
    .await;
    // What had come when reading stopped; the 200 that never ends is a delivery.
    assert!(
        warned.contains("status 503 Service Unavailable, body \"x"),
        "{warned}"
    );
    assert!(delivered.contains("after 1 failed attempts"), "{delivered}");
}

#[tokio::test]
async fn of_a_huge_body_an_excerpt_is_logged() {
    let (warned, delivered) = first_failure_then_delivery(
        "huge",
        vec![
            Fault::Answer(500, Body::Sized(100 << 20)),
            Fault::Answer(200, Body::Endless),
        ],
    )
    .await;
    let excerpt = format!("body \"{}\"", "x".repeat(200));
    assert!(warned.contains(&excerpt), "{warned}");
    assert!(delivered.contains("after 1 failed attempts"), "{delivered}");
}

#[tokio::test]
async fn credentials_echoed_by_a_server_are_not_logged() {
    let pyroscope = |user_info: &str, auth: &[(&str, &str)]| {
        let mut app = PyroscopeApp {
            application_name: Some("app".into()),
            tenant_id: Some("tenant-1".into()),
            ..PyroscopeApp::default()
        };
        for &(field, value) in auth {
            let value = Some(value.to_owned());
            match field {
                "auth_token" => app.auth_token = value,
                "basic_auth_user" => app.basic_auth_user = value,
                "basic_auth_password" => app.basic_auth_password = value,
                _ => unreachable!("{field}"),
            }
        }
        (user_info.to_owned(), app)
    };
    let cases = [
        (
            "echo-bearer",
            pyroscope("", &[("auth_token", "tok-SECRET")]),
        ),
        (
            "echo-basic",
            pyroscope(
                "",
                &[
                    ("basic_auth_user", "name"),
                    ("basic_auth_password", "pw-SECRET"),
                ],
            ),
        ),
        (
            "echo-userinfo",
            pyroscope("us%65r-SECRET:p%40ss-SECRET@", &[]),
        ),
    ];
    for (sink_name, (user_info, mut app)) in cases {
        log();
        let server = FakeServer::start(pyroscope_kind()).await;
        server.inject([Fault::Answer(401, Body::EchoHeaders)]);
        app.server_address = Some(format!("http://{user_info}{}", server.addr));
        let sink = PyroscopeSink::start(
            &support::pyroscope_settings(&app, 100),
            UploaderOptions::new(sink_name),
            &Connections::new().unwrap(),
        )
        .unwrap();
        sink.submit(&profile(ProfileType::Cpu, 3, 1, 1_000));
        let warned = wait_for_line(sink_name, "status 401", Duration::from_secs(5)).await;
        sink.stop(Duration::from_secs(1)).await;
        // The server did get the credentials, and echoed them where the excerpt shows them.
        let sent = server.requests()[0]
            .header("authorization")
            .unwrap()
            .to_owned();
        assert!(warned.contains("authorization: [redacted]"), "{warned}");
        assert!(warned.contains("x-scope-orgid: tenant-1"), "{warned}");
        let (_, credential) = sent.split_once(' ').unwrap();
        for shown in ["SECRET", credential] {
            assert!(!warned.contains(shown), "{shown:?} in {warned}");
        }
    }
}
