//! The profefe sink against a strict fake collector on 127.0.0.1.

mod support;

use std::time::Duration;

use caddyprof::apps::ProfefeApp;
use caddyprof::apps::profefe::sink::{self, ProfefeSink};
use caddyprof::config::ProfileType;
use caddyprof::runtime::upload::{Connections, NotSent, RetryPolicy, Submitted, UploaderOptions};
use support::{FakeServer, Kind, decode_pprof, profile};

const WAIT: Duration = Duration::from_secs(5);

fn start(server: &FakeServer) -> ProfefeSink {
    let app = ProfefeApp {
        address: Some(server.url()),
        service: Some("caddy-run2".into()),
        ..ProfefeApp::default()
    };
    let options = UploaderOptions {
        retry: RetryPolicy::fast(),
        ..sink::uploader_options(&support::profefe_settings(&app))
    };
    ProfefeSink::start(
        &support::profefe_settings(&app),
        options,
        &Connections::new().unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn every_type_as_the_go_agent_sends_it() {
    let server = FakeServer::start(Kind::Profefe).await;
    let sink = start(&server);
    let cases = [
        (ProfileType::Cpu, "cpu"),
        (ProfileType::Heap, "heap"),
        (ProfileType::Allocs, "heap"),
        (ProfileType::Block, "block"),
        (ProfileType::Mutex, "mutex"),
        (ProfileType::Goroutine, "goroutine"),
        (ProfileType::ThreadCreate, "threadcreate"),
    ];
    let profiles: Vec<_> = cases
        .iter()
        .map(|(t, _)| profile(*t, 2, 5, 1_700_000_000))
        .collect();
    for p in &profiles {
        assert_eq!(sink.submit(p), Submitted::Queued);
    }
    let requests = server.wait_for(cases.len(), WAIT).await;
    for ((r, (t, name)), p) in requests.iter().zip(&cases).zip(&profiles) {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/api/0/profiles");
        assert_eq!(
            r.query,
            format!("labels=&service=caddy-run2&type={name}"),
            "{t}"
        );
        assert_eq!(r.header("content-type"), None);
        assert_eq!(r.header("authorization"), None);
        assert_eq!(r.body, &p.pprof_gz[..], "raw gzip pprof body");
        assert!(!decode_pprof(&r.body).unwrap().sample.is_empty());
        assert_eq!(r.status, 200);
    }
    let stats = sink.stop(Duration::from_secs(2)).await;
    assert_eq!(stats.delivered, cases.len() as u64);
}

#[tokio::test]
async fn empty_profiles_are_never_sent() {
    let server = FakeServer::start(Kind::Profefe).await;
    let sink = start(&server);
    assert_eq!(
        sink.submit(&profile(ProfileType::Mutex, 0, 0, 1_700_000_000)),
        Submitted::Skipped(NotSent::Empty)
    );
    let mut not_pprof = profile(ProfileType::Cpu, 1, 1, 1_700_000_000);
    not_pprof.pprof_gz = vec![0x1f, 0x8b, 0, 0].into();
    assert!(matches!(
        sink.submit(&not_pprof),
        Submitted::Skipped(NotSent::Invalid(_))
    ));
    assert_eq!(
        sink.submit(&profile(ProfileType::Block, 1, 1, 1_700_000_000)),
        Submitted::Queued
    );
    sink.stop(Duration::from_secs(2)).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].query.ends_with("type=block"));
}

#[tokio::test]
async fn the_strict_server_answers_like_profefe() {
    let server = FakeServer::start(Kind::Profefe).await;
    let client = reqwest::Client::new();
    let post = |query: &str, body: Vec<u8>| {
        client
            .post(format!("{}/api/0/profiles?{query}", server.url()))
            .body(body)
            .send()
    };
    let empty = support::make_pprof(&[("contentions", "count")], 0, 0);
    let r = post("labels=&service=s&type=mutex", empty).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        "{\"code\":400,\"error\":\"malformed profile (could not parse pprof profile: profile is empty: no samples)\"}\n"
    );
    let one = support::make_pprof(&[("samples", "count")], 1, 1);
    let r = post("labels=&type=cpu", one.clone()).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("missing \\\"service\\\""));
    let r = post("labels=&service=s&type=allocs", one.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = post("labels=&service=s&type=cpu", one).await.unwrap();
    assert_eq!(r.status(), 200);
    let json: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(json["code"], 200);
    assert_eq!(json["body"]["type"], "cpu");
    assert_eq!(json["body"]["service"], "s");
}
