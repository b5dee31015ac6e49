//! The Pyroscope sink against a strict fake `/ingest` on 127.0.0.1.

mod support;

use std::time::Duration;

use caddyprof::apps::PyroscopeApp;
use caddyprof::apps::pyroscope::sink::{self, PyroscopeSink};
use caddyprof::config::ProfileType;
use caddyprof::runtime::upload::{Connections, NotSent, RetryPolicy, Submitted, UploaderOptions};
use support::{FakeServer, Kind, decode_pprof, profile};

const WAIT: Duration = Duration::from_secs(5);

fn options() -> UploaderOptions {
    UploaderOptions {
        retry: RetryPolicy::fast(),
        timeout: Some(Duration::from_secs(2)),
        ..UploaderOptions::new("pyroscope")
    }
}

fn app(server: &FakeServer, path: &str) -> PyroscopeApp {
    PyroscopeApp {
        server_address: Some(format!("{}{path}", server.url())),
        application_name: Some("caddy-ref".into()),
        ..PyroscopeApp::default()
    }
}

async fn pyroscope(prefix: &str, tenant_required: bool) -> FakeServer {
    FakeServer::start(Kind::Pyroscope {
        prefix: prefix.into(),
        tenant_required,
    })
    .await
}

#[tokio::test]
async fn cpu_upload_is_byte_for_byte_the_go_agents() {
    let server = pyroscope("/prefix", false).await;
    let sink = PyroscopeSink::start(
        &support::pyroscope_settings(&app(&server, "/prefix/"), 250),
        options(),
        &Connections::new().unwrap(),
    )
    .unwrap();
    assert_eq!(
        sink.submit(&profile(ProfileType::Cpu, 3, 7, 1_795_639_350)),
        Submitted::Queued
    );
    let r = &server.wait_for(1, WAIT).await[0];
    assert_eq!(r.status, 200);
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/prefix/ingest");
    let session = sink::session_id();
    assert_eq!(
        r.query,
        format!(
            "aggregationType=sum&from=1795639350000000000&name=caddy-ref%7B__session_id__%3D{session}%7D\
             &sampleRate=250&spyName=rustspy&units=samples&until=1795639365000000000"
        )
    );
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.header("x-scope-orgid"), None);
    let content_type = r.header("content-type").unwrap();
    let boundary = support::boundary_of(content_type).unwrap();
    assert_eq!(boundary.len(), 60);
    assert_eq!(
        content_type,
        format!("multipart/form-data; boundary={boundary}")
    );
    assert_eq!(
        r.header("content-length").unwrap(),
        r.body.len().to_string()
    );
    assert_eq!(r.parts.len(), 1, "cpu has no sample_type_config");
    let part = &r.parts[0];
    assert_eq!(
        part.headers,
        [
            (
                "Content-Disposition".to_string(),
                r#"form-data; name="profile"; filename="profile.pprof""#.to_string()
            ),
            (
                "Content-Type".to_string(),
                "application/octet-stream".to_string()
            ),
        ]
    );
    assert_eq!(&part.data[..2], &[0x1f, 0x8b]);
    let pprof = decode_pprof(&part.data).unwrap();
    assert_eq!(
        support::sample_types(&pprof),
        ["samples/count", "cpu/nanoseconds"]
    );
    assert_eq!(pprof.sample.len(), 3);
    // The layout of the Go agent's body: first delimiter, CRLF between parts, closing one.
    assert!(r.body.starts_with(format!("--{boundary}\r\n").as_bytes()));
    assert!(
        r.body
            .ends_with(format!("\r\n--{boundary}--\r\n").as_bytes())
    );
    let stats = sink.stop(Duration::from_secs(2)).await;
    assert_eq!((stats.delivered, stats.retries), (1, 0));
}

#[tokio::test]
async fn every_type_gets_the_go_query_and_sample_type_config() {
    let server = pyroscope("", false).await;
    let sink = PyroscopeSink::start(
        &support::pyroscope_settings(&app(&server, ""), 100),
        options(),
        &Connections::new().unwrap(),
    )
    .unwrap();
    let cases = [
        (
            ProfileType::Heap,
            "",
            "100",
            "",
            Some(sink::HEAP_SAMPLE_TYPE_CONFIG),
        ),
        (
            ProfileType::Allocs,
            "",
            "100",
            "",
            Some(sink::HEAP_SAMPLE_TYPE_CONFIG),
        ),
        (
            ProfileType::Goroutine,
            "average",
            "0",
            "goroutines",
            Some(sink::GOROUTINE_SAMPLE_TYPE_CONFIG),
        ),
        (
            ProfileType::Block,
            "",
            "0",
            "",
            Some(sink::BLOCK_SAMPLE_TYPE_CONFIG),
        ),
        (
            ProfileType::Mutex,
            "",
            "0",
            "",
            Some(sink::MUTEX_SAMPLE_TYPE_CONFIG),
        ),
        (ProfileType::Cpu, "sum", "100", "samples", None),
    ];
    for (t, ..) in &cases {
        assert_eq!(
            sink.submit(&profile(*t, 1, 1, 1_700_000_000)),
            Submitted::Queued
        );
    }
    assert_eq!(
        sink.submit(&profile(ProfileType::ThreadCreate, 1, 1, 1_700_000_000)),
        Submitted::Skipped(NotSent::Unsupported)
    );
    let requests = server.wait_for(cases.len(), WAIT).await;
    for (r, (t, aggregation, rate, units, config)) in requests.iter().zip(&cases) {
        assert_eq!(r.status, 200, "{t}");
        let keys: Vec<String> = r.query_pairs().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "aggregationType",
                "from",
                "name",
                "sampleRate",
                "spyName",
                "units",
                "until"
            ]
        );
        assert_eq!(
            r.query_value("aggregationType").unwrap(),
            *aggregation,
            "{t}"
        );
        assert_eq!(r.query_value("sampleRate").unwrap(), *rate, "{t}");
        assert_eq!(r.query_value("units").unwrap(), *units, "{t}");
        assert_eq!(r.query_value("from").unwrap(), "1700000000000000000");
        assert_eq!(r.query_value("until").unwrap(), "1700000015000000000");
        let pprof = decode_pprof(&r.part("profile").unwrap().data).unwrap();
        let expected: Vec<String> = support::types_of(*t)
            .iter()
            .map(|(a, b)| format!("{a}/{b}"))
            .collect();
        assert_eq!(support::sample_types(&pprof), expected);
        match config {
            Some(json) => {
                let part = r.part("sample_type_config").unwrap();
                assert_eq!(part.filename.as_deref(), Some("sample_type_config.json"));
                assert_eq!(
                    part.content_type.as_deref(),
                    Some("application/octet-stream")
                );
                assert_eq!(std::str::from_utf8(&part.data).unwrap(), *json);
                assert_eq!(r.parts[0].name, "profile", "profile part first");
            }
            None => assert!(r.part("sample_type_config").is_none()),
        }
    }
    sink.stop(Duration::from_secs(2)).await;
    assert_eq!(
        server.requests().len(),
        cases.len(),
        "threadcreate is not sent"
    );
}

#[test]
fn the_configs_are_the_captured_ones() {
    // Captures of the real Go agent (tests/fixtures/go-captures/README.md).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go-captures");
    for (file, config) in [
        ("heap", sink::HEAP_SAMPLE_TYPE_CONFIG),
        ("goroutine", sink::GOROUTINE_SAMPLE_TYPE_CONFIG),
        ("block", sink::BLOCK_SAMPLE_TYPE_CONFIG),
        ("mutex", sink::MUTEX_SAMPLE_TYPE_CONFIG),
    ] {
        let path = dir.join(format!("pyroscope-{file}.sample_type_config.json"));
        let captured = std::fs::read_to_string(&path).unwrap();
        assert_eq!(captured.trim_end(), config, "{file}");
    }
}

#[tokio::test]
async fn auth_headers() {
    let server = pyroscope("", true).await;
    let base = app(&server, "");
    let variants = [
        (
            PyroscopeApp {
                basic_auth_user: Some("user".into()),
                basic_auth_password: Some("pass".into()),
                auth_token: Some("ignored".into()),
                tenant_id: Some("tenant-a".into()),
                ..base.clone()
            },
            Some("Basic dXNlcjpwYXNz"),
            200,
        ),
        (
            PyroscopeApp {
                auth_token: Some("t0k3n".into()),
                tenant_id: Some("tenant-b".into()),
                ..base.clone()
            },
            Some("Bearer t0k3n"),
            200,
        ),
        // No tenant on a multi-tenant server: 401, not retried.
        (
            PyroscopeApp {
                auth_token: Some("t0k3n".into()),
                ..base.clone()
            },
            Some("Bearer t0k3n"),
            401,
        ),
    ];
    for (i, (app, authorization, status)) in variants.iter().enumerate() {
        let sink = PyroscopeSink::start(
            &support::pyroscope_settings(app, 100),
            options(),
            &Connections::new().unwrap(),
        )
        .unwrap();
        assert_eq!(
            sink.submit(&profile(ProfileType::Heap, 1, 1, 1_700_000_000)),
            Submitted::Queued
        );
        let stats = sink.stop(Duration::from_secs(2)).await;
        let requests = server.requests();
        assert_eq!(requests.len(), i + 1, "one request each, no retry");
        let r = &requests[i];
        assert_eq!(r.header("authorization"), *authorization);
        assert_eq!(r.header("x-scope-orgid"), app.tenant_id.as_deref());
        assert_eq!(r.status, *status);
        assert_eq!(stats.delivered + stats.rejected, 1);
        assert_eq!(stats.rejected, u64::from(*status != 200));
    }
}

#[tokio::test]
async fn application_name_tags_are_sorted_with_the_session_id() {
    let server = pyroscope("", false).await;
    let app = PyroscopeApp {
        application_name: Some("shop{region=eu,az=b}".into()),
        ..app(&server, "")
    };
    let sink = PyroscopeSink::start(
        &support::pyroscope_settings(&app, 100),
        options(),
        &Connections::new().unwrap(),
    )
    .unwrap();
    sink.submit(&profile(ProfileType::Goroutine, 1, 1, 1_700_000_000));
    let r = &server.wait_for(1, WAIT).await[0];
    let name = r.query_value("name").unwrap();
    assert_eq!(
        name,
        format!(
            "shop{{__session_id__={},az=b,region=eu}}",
            sink::session_id()
        )
    );
    let (service, labels) = support::parse_labelset(&name).unwrap();
    assert_eq!(service, "shop");
    assert_eq!(labels["__session_id__"].len(), 16);
    sink.stop(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn the_strict_server_rejects_garbage() {
    // The fake must refuse what the real one refuses, or the tests above prove nothing.
    let server = pyroscope("", false).await;
    let client = reqwest::Client::new();
    let post = |query: &'static str, ct: &'static str, body: Vec<u8>| {
        client
            .post(format!("{}/ingest?{query}", server.url()))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let missing_name = post("from=1", "multipart/form-data; boundary=x", vec![])
        .await
        .unwrap();
    assert_eq!(missing_name.status(), 400);
    let bad_name = post("name=a%20b", "multipart/form-data; boundary=x", vec![])
        .await
        .unwrap();
    assert_eq!(bad_name.status(), 400);
    let garbage = b"--x\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"p\"\r\n\r\nnot a profile\x1f\r\n--x--\r\n".to_vec();
    let not_pprof = post("name=a", "multipart/form-data; boundary=x", garbage)
        .await
        .unwrap();
    assert_eq!(not_pprof.status(), 422);
    let get = client
        .get(format!("{}/ingest?name=a", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
}
