//! Strict fake Pyroscope and profefe servers on 127.0.0.1 for the upload tests: a minimal
//! HTTP/1.1 server on a Tokio listener that records every request, answers like the real
//! servers (rejecting what they reject), and can inject faults.
//!
//! Also the small helpers several test files share: a runtime for the servers, and sums
//! over a decoded profile's stacks.

#![allow(dead_code)]

pub mod host;

use std::collections::{BTreeMap, VecDeque};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------------
// pprof
// ---------------------------------------------------------------------------------------------

/// A decoded pprof profile (the crate's own prost messages, which the Go captures check).
pub type Pprof = caddyprof::profile::proto::Profile;

/// `type/unit` of each sample type of `pprof`.
pub fn sample_types(pprof: &Pprof) -> Vec<String> {
    let s = |i: i64| {
        pprof
            .string_table
            .get(i as usize)
            .cloned()
            .unwrap_or_default()
    };
    pprof
        .sample_type
        .iter()
        .map(|t| format!("{}/{}", s(t.r#type), s(t.unit)))
        .collect()
}

/// A small gzip pprof with `types` (such as `[("samples","count"),("cpu","nanoseconds")]`) and
/// `samples` samples, each value `marker`.
pub fn make_pprof(types: &[(&str, &str)], samples: usize, marker: i64) -> Vec<u8> {
    let mut builder = caddyprof::profile::ProfileBuilder::new();
    for (ty, unit) in types {
        builder.sample_type(ty, unit);
    }
    if let Some((ty, unit)) = types.last() {
        builder.period(ty, unit, 1);
    }
    let values = vec![marker; types.len()];
    for _ in 0..samples {
        builder.add_sample_at(&[], &values, &[]);
    }
    builder.encode_gzip()
}

/// Decodes a pprof, gzip-compressed or not.
pub fn decode_pprof(data: &[u8]) -> Result<Pprof, String> {
    caddyprof::profile::decode(data).map_err(|e| e.to_string())
}

/// The sample types of each profile type, as the Go runtime writes them.
pub fn types_of(
    profile_type: caddyprof::config::ProfileType,
) -> &'static [(&'static str, &'static str)] {
    use caddyprof::config::ProfileType as T;
    match profile_type {
        T::Cpu => &[("samples", "count"), ("cpu", "nanoseconds")],
        T::Heap | T::Allocs => &[
            ("alloc_objects", "count"),
            ("alloc_space", "bytes"),
            ("inuse_objects", "count"),
            ("inuse_space", "bytes"),
        ],
        T::Goroutine => &[("goroutine", "count")],
        T::ThreadCreate => &[("threadcreate", "count")],
        T::Block | T::Mutex => &[("contentions", "count"), ("delay", "nanoseconds")],
    }
}

/// A `Profile` of `profile_type` with `samples` samples valued `marker`, for a window of 15 s
/// starting at `start_secs` since the epoch.
pub fn profile(
    profile_type: caddyprof::config::ProfileType,
    samples: usize,
    marker: i64,
    start_secs: u64,
) -> caddyprof::runtime::Profile {
    caddyprof::runtime::Profile {
        profile_type,
        start: SystemTime::UNIX_EPOCH + Duration::from_secs(start_secs),
        duration: Duration::from_secs(15),
        pprof_gz: make_pprof(types_of(profile_type), samples, marker).into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

/// Everything a `tracing` subscriber writes to it, as bytes (a writer for
/// `tracing_subscriber::fmt().with_writer(log.clone())`).
#[derive(Clone, Default)]
pub struct Log(pub Arc<Mutex<Vec<u8>>>);

impl Log {
    /// A new log, the process's `tracing` subscriber from now on (info and above, no colors).
    pub fn install() -> Log {
        let log = Log::default();
        tracing_subscriber::fmt()
            .with_writer(log.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .init();
        log
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Log {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Log {
    type Writer = Log;
    fn make_writer(&'a self) -> Log {
        self.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Recording
// ---------------------------------------------------------------------------------------------

/// One multipart part.
#[derive(Clone, Debug)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    /// Header lines as sent, in order.
    pub headers: Vec<(String, String)>,
    pub data: Vec<u8>,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query (without `?`).
    pub query: String,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The multipart parts, when the body is multipart and parses.
    pub parts: Vec<Part>,
    /// The request line and header lines, as received.
    pub head: String,
    /// The status answered (0 when the connection was closed or the answer was garbage).
    pub status: u16,
    pub at: Instant,
}

impl Recorded {
    /// The first header called `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The decoded query (`+` and `%XX` unescaped), keys in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// One query value.
    pub fn query_value(&self, key: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The part called `name`.
    pub fn part(&self, name: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.name == name)
    }
}

/// A fault to inject into the next request (one fault per request, in order).
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this status with this body (and a `Retry-After` when given, in seconds).
    Status(u16, &'static str, Option<u64>),
    /// Read the request, then wait this long before answering normally.
    Hang(Duration),
    /// Read the request, then close the connection without answering.
    Close,
    /// Read the request, then answer bytes that are not HTTP and close.
    Garbage,
    /// Read the request, then send bytes that are not HTTP without end (until the peer
    /// closes).
    EndlessGarbage,
    /// Answer this status with a body made while it is sent (see [`Body`]).
    Answer(u16, Body),
}

/// A body the server makes while sending it, so that its size costs the test nothing.
#[derive(Clone, Debug)]
pub enum Body {
    /// This many bytes (`x`), with a `Content-Length`.
    Sized(u64),
    /// A chunked body that never ends (until the peer closes).
    Endless,
    /// A chunked body of one byte (`x`) per interval, never ending.
    Trickle(Duration),
    /// The request's header lines as received, as some servers and proxies echo them in
    /// their error pages.
    EchoHeaders,
}

/// Which server to mimic.
#[derive(Clone, Debug)]
pub enum Kind {
    /// Pyroscope `/ingest` under `prefix` (`""` for none); `tenant_required` mimics
    /// `-auth.multitenancy-enabled=true`.
    Pyroscope {
        prefix: String,
        tenant_required: bool,
    },
    /// profefe `/api/0/profiles`.
    Profefe,
}

struct ServerState {
    requests: Vec<Recorded>,
    faults: VecDeque<Fault>,
    /// Connections accepted so far.
    connections: usize,
    /// Connections open now, and the most open at once.
    open: usize,
    most_open: usize,
}

/// A fake server; see the module docs.
pub struct FakeServer {
    pub addr: SocketAddr,
    kind: Kind,
    state: Arc<Mutex<ServerState>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl FakeServer {
    /// Starts on an ephemeral port of 127.0.0.1.
    pub async fn start(kind: Kind) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(
            kind,
            listener,
            Arc::new(Mutex::new(ServerState {
                requests: vec![],
                faults: VecDeque::new(),
                connections: 0,
                open: 0,
                most_open: 0,
            })),
        )
    }

    /// An address nothing listens on (yet): bind an ephemeral port and release it.
    pub async fn free_addr() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    /// Starts on `addr` (for a server that comes up after an outage), retrying the bind for
    /// up to 2 s.
    pub async fn start_on(kind: Kind, addr: SocketAddr) -> FakeServer {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => {
                    return Self::serve(
                        kind,
                        listener,
                        Arc::new(Mutex::new(ServerState {
                            requests: vec![],
                            faults: VecDeque::new(),
                            connections: 0,
                            open: 0,
                            most_open: 0,
                        })),
                    );
                }
                Err(e) if Instant::now() > deadline => panic!("cannot bind {addr}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn serve(kind: Kind, listener: TcpListener, state: Arc<Mutex<ServerState>>) -> FakeServer {
        let addr = listener.local_addr().unwrap();
        let task = {
            let (kind, state) = (kind.clone(), Arc::clone(&state));
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    {
                        let mut state = state.lock().unwrap();
                        state.connections += 1;
                        state.open += 1;
                        state.most_open = state.most_open.max(state.open);
                    }
                    let (kind, state) = (kind.clone(), Arc::clone(&state));
                    tokio::spawn(async move {
                        let _ = handle(stream, &kind, &state).await;
                        state.lock().unwrap().open -= 1;
                    });
                }
            })
        };
        FakeServer {
            addr,
            kind,
            state,
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues faults for the next requests.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.lock().unwrap().faults.extend(faults);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// The most connections that were open at once so far.
    pub fn most_open(&self) -> usize {
        self.state.lock().unwrap().most_open
    }

    /// Waits until `n` requests were recorded (panics after `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Recorded> {
        let deadline = Instant::now() + within;
        loop {
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} requests within {within:?}, got {}",
                requests.len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops listening (the port is closed; open connections are not waited for).
    pub fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Which server this mimics.
    pub fn kind(&self) -> &Kind {
        &self.kind
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1
// ---------------------------------------------------------------------------------------------

async fn handle(
    mut stream: TcpStream,
    kind: &Kind,
    state: &Mutex<ServerState>,
) -> std::io::Result<()> {
    let Some(mut recorded) = read_request(&mut stream).await? else {
        return Ok(());
    };
    let fault = state.lock().unwrap().faults.pop_front();
    let answer = match fault {
        Some(Fault::Close) => None,
        Some(Fault::Garbage) => {
            stream
                .write_all(b"\x00\x01 this is not HTTP \xff\r\n\r\n")
                .await?;
            None
        }
        Some(Fault::EndlessGarbage) => {
            state.lock().unwrap().requests.push(recorded);
            let garbage: Vec<u8> = (0..=255u8).cycle().take(64 << 10).collect();
            loop {
                stream.write_all(&garbage).await?;
            }
        }
        Some(Fault::Answer(status, body)) => {
            recorded.status = status;
            let head = recorded.head.clone();
            state.lock().unwrap().requests.push(recorded);
            return send_made_body(&mut stream, status, body, &head).await;
        }
        Some(Fault::Status(status, body, retry_after)) => {
            Some((status, body.to_string(), retry_after))
        }
        Some(Fault::Hang(wait)) => {
            tokio::time::sleep(wait).await;
            let (status, body) = respond(kind, &mut recorded);
            Some((status, body, None))
        }
        None => {
            let (status, body) = respond(kind, &mut recorded);
            Some((status, body, None))
        }
    };
    if let Some((status, _, _)) = &answer {
        recorded.status = *status;
    }
    state.lock().unwrap().requests.push(recorded);
    if let Some((status, body, retry_after)) = answer {
        let mut head = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        if body.starts_with('{') {
            head.push_str("Content-Type: application/json; charset=utf-8\r\n");
        }
        if let Some(seconds) = retry_after {
            head.push_str(&format!("Retry-After: {seconds}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await
}

/// Answers `status` with `body`, made while it is sent; returns when the body ends or the
/// peer goes away.
async fn send_made_body(
    stream: &mut TcpStream,
    status: u16,
    body: Body,
    request_head: &str,
) -> std::io::Result<()> {
    let chunked = format!("HTTP/1.1 {status} X\r\nTransfer-Encoding: chunked\r\n\r\n");
    match body {
        Body::Sized(length) => {
            let head = format!("HTTP/1.1 {status} X\r\nContent-Length: {length}\r\n\r\n");
            stream.write_all(head.as_bytes()).await?;
            let block = vec![b'x'; 64 << 10];
            let mut left = length;
            while left > 0 {
                let n = left.min(block.len() as u64);
                stream.write_all(&block[..n as usize]).await?;
                left -= n;
            }
        }
        Body::Endless => {
            stream.write_all(chunked.as_bytes()).await?;
            let mut chunk = format!("{:x}\r\n", 64 << 10).into_bytes();
            chunk.extend(std::iter::repeat_n(b'x', 64 << 10));
            chunk.extend_from_slice(b"\r\n");
            loop {
                stream.write_all(&chunk).await?;
            }
        }
        Body::Trickle(interval) => {
            stream.write_all(chunked.as_bytes()).await?;
            loop {
                stream.write_all(b"1\r\nx\r\n").await?;
                stream.flush().await?;
                tokio::time::sleep(interval).await;
            }
        }
        Body::EchoHeaders => {
            let headers = request_head.split_once("\r\n").map_or("", |(_, h)| h);
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                headers.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(headers.as_bytes()).await?;
        }
    }
    stream.shutdown().await
}

/// Reads one request (Content-Length or chunked body); `None` when the peer sent nothing.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Recorded>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&buffer, b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let target = request_line.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = buffer[head_end + 4..].to_vec();
    if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            if let Some(decoded) = dechunk(&body) {
                body = decoded;
                break;
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        let length: usize = get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while body.len() < length {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(length);
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    let parts = get("content-type")
        .and_then(|ct| boundary_of(&ct))
        .and_then(|b| parse_multipart(&body, &b))
        .unwrap_or_default();
    Ok(Some(Recorded {
        method,
        path,
        query,
        headers,
        body,
        parts,
        head,
        status: 0,
        at: Instant::now(),
    }))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The decoded body if `data` holds a complete chunked body.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..line_end])
                .split(';')
                .next()?
                .trim(),
            16,
        )
        .ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary_of(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k.eq_ignore_ascii_case("boundary")).then(|| v.trim_matches('"').to_string())
    })
}

/// Parses a multipart body strictly (CRLF line ends, a closing delimiter); `None` if malformed.
pub fn parse_multipart(body: &[u8], boundary: &str) -> Option<Vec<Part>> {
    let delimiter = format!("--{boundary}");
    let mut rest = body.strip_prefix(delimiter.as_bytes())?;
    let mut parts = Vec::new();
    let separator = format!("\r\n--{boundary}");
    loop {
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let head_end = find(rest, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&rest[..head_end]).ok()?;
        let headers: Vec<(String, String)> = head
            .split("\r\n")
            .map(|l| {
                l.split_once(':')
                    .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            })
            .collect::<Option<_>>()?;
        rest = &rest[head_end + 4..];
        let end = find(rest, separator.as_bytes())?;
        let data = rest[..end].to_vec();
        rest = &rest[end + separator.len()..];
        let disposition = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-disposition"))?
            .1
            .clone();
        let param = |key: &str| {
            disposition.split(';').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k == key).then(|| v.trim_matches('"').to_string())
            })
        };
        parts.push(Part {
            name: param("name")?,
            filename: param("filename"),
            content_type: headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.clone()),
            headers,
            data,
        });
    }
}

// ---------------------------------------------------------------------------------------------
// The servers' rules
// ---------------------------------------------------------------------------------------------

fn respond(kind: &Kind, request: &mut Recorded) -> (u16, String) {
    match kind {
        Kind::Pyroscope {
            prefix,
            tenant_required,
        } => pyroscope(prefix, *tenant_required, request),
        Kind::Profefe => profefe(request),
    }
}

/// Pyroscope's `/ingest` (pkg/ingester/pyroscope/ingest_handler.go), multipart pprof only.
fn pyroscope(prefix: &str, tenant_required: bool, r: &Recorded) -> (u16, String) {
    if r.path != format!("{prefix}/ingest") {
        return (404, "404 page not found\n".into());
    }
    if r.method != "POST" {
        return (405, String::new());
    }
    if tenant_required && r.header("x-scope-orgid").is_none_or(str::is_empty) {
        return (401, "no org id\n".into());
    }
    let Some(name) = r.query_value("name") else {
        return (400, "name is required\n".into());
    };
    if let Err(e) = parse_labelset(&name) {
        return (400, format!("{e}\n"));
    }
    for key in ["from", "until"] {
        if let Some(v) = r.query_value(key)
            && (v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()))
        {
            return (400, format!("invalid {key}\n"));
        }
    }
    if r.query_value("format").is_some() {
        // A format other than multipart would make the server parse the body otherwise.
        return (422, "unexpected format with a multipart body\n".into());
    }
    let is_multipart = r
        .header("content-type")
        .is_some_and(|ct| ct.contains("multipart/form-data"));
    if !is_multipart {
        return (
            422,
            "not a multipart body: parsed as groups and failed\n".into(),
        );
    }
    if r.parts.is_empty() {
        return (422, "multipart: malformed body\n".into());
    }
    if r.part("prev_profile").is_some() {
        return (
            422,
            "unsupported client version. Please update github.com/grafana/pyroscope-go\n".into(),
        );
    }
    let Some(profile) = r.part("profile") else {
        return (422, "no profile part\n".into());
    };
    match decode_pprof(&profile.data) {
        Ok(p) if !p.sample_type.is_empty() => {}
        Ok(_) => return (422, "profile has no sample types\n".into()),
        Err(e) => return (422, format!("failed to parse pprof: {e}\n")),
    }
    if let Some(config) = r.part("sample_type_config") {
        let parsed: Result<BTreeMap<String, BTreeMap<String, serde_json::Value>>, _> =
            serde_json::from_slice(&config.data);
        if parsed.is_err() {
            return (422, "bad sample_type_config\n".into());
        }
    }
    (200, String::new())
}

/// `labelset.Parse`: `service{k=v,…}`.
pub fn parse_labelset(name: &str) -> Result<(String, BTreeMap<String, String>), String> {
    let name = name.trim();
    let (service, rest) = match name.split_once('{') {
        Some((s, r)) => (s, Some(r.strip_suffix('}').ok_or("unclosed {")?)),
        None => (name, None),
    };
    let service_ok = !service.is_empty()
        && service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
    if !service_ok {
        return Err(format!("invalid service name {service:?}"));
    }
    let mut labels = BTreeMap::new();
    for pair in rest.unwrap_or("").split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or("bad label")?;
        if k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.".contains(c))
        {
            return Err(format!("invalid label key {k:?}"));
        }
        if k == "__name__" {
            return Err("reserved label".into());
        }
        labels.insert(k.to_string(), v.to_string());
    }
    Ok((service.to_string(), labels))
}

/// profefe's `POST /api/0/profiles` (pkg/profefe/profiles_handler.go).
fn profefe(r: &Recorded) -> (u16, String) {
    let error = |code: u16, message: &str| {
        (
            code,
            format!("{}\n", serde_json::json!({"code": code, "error": message})),
        )
    };
    if r.path != "/api/0/profiles" {
        return error(404, "not found");
    }
    if r.method != "POST" {
        return error(405, "method not allowed");
    }
    let Some(service) = r.query_value("service").filter(|s| !s.is_empty()) else {
        return error(400, "bad request: missing \"service\"");
    };
    let kind = r.query_value("type").unwrap_or_default();
    let known = [
        "cpu",
        "heap",
        "block",
        "mutex",
        "goroutine",
        "threadcreate",
        "other",
        "trace",
    ];
    if !known.contains(&kind.as_str()) {
        return error(400, "bad request: unknown profile type");
    }
    match decode_pprof(&r.body) {
        Err(e) => {
            return error(
                400,
                &format!("malformed profile (could not parse pprof profile: {e})"),
            );
        }
        Ok(p) if p.sample.is_empty() => {
            return error(
                400,
                "malformed profile (could not parse pprof profile: profile is empty: no samples)",
            );
        }
        Ok(_) => {}
    }
    let id = format!("{:020x}", fastrand::u128(..) & ((1 << 80) - 1));
    (
        200,
        format!(
            "{}\n",
            serde_json::json!({"code": 200, "body": {"id": id, "type": kind, "service": service, "created_at": "2026-01-01T00:00:00Z"}})
        ),
    )
}

/// The resolved settings of a standalone pyroscope app, sampling CPU at `cpu_hz`.
pub fn pyroscope_settings(
    app: &caddyprof::apps::PyroscopeApp,
    cpu_hz: u64,
) -> caddyprof::runtime::plan::PyroscopeSettings {
    let config = caddyprof::Config {
        pyroscope: Some(app.clone()),
        ..caddyprof::Config::default()
    };
    let sink = resolve(&config).sinks.remove(0);
    let mut settings = sink
        .as_any()
        .downcast_ref::<caddyprof::runtime::plan::PyroscopeSettings>()
        .unwrap_or_else(|| panic!("not a pyroscope sink: {sink:?}"))
        .clone();
    settings.sampling.cpu_hz = cpu_hz;
    settings
}

/// The resolved settings of a standalone profefe app.
pub fn profefe_settings(
    app: &caddyprof::apps::ProfefeApp,
) -> caddyprof::runtime::plan::ProfefeSettings {
    let config = caddyprof::Config {
        profefe: Some(app.clone()),
        ..caddyprof::Config::default()
    };
    let sink = resolve(&config).sinks.remove(0);
    sink.as_any()
        .downcast_ref::<caddyprof::runtime::plan::ProfefeSettings>()
        .unwrap_or_else(|| panic!("not a profefe sink: {sink:?}"))
        .clone()
}

fn resolve(config: &caddyprof::Config) -> caddyprof::runtime::plan::Plan {
    let options = caddyprof::runtime::plan::PlanOptions {
        env: Box::new(|_| None),
        executable_name: "test".into(),
    };
    caddyprof::runtime::plan::Plan::resolve(config, &options)
        .unwrap_or_else(|e| panic!("{}", e.render_plain()))
        .plan
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// A Tokio runtime (one worker) to run the fake servers on.
pub fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A fake Pyroscope server at the root path, no tenant required.
pub fn pyroscope_server(rt: &tokio::runtime::Runtime) -> FakeServer {
    rt.block_on(FakeServer::start(Kind::Pyroscope {
        prefix: String::new(),
        tenant_required: false,
    }))
}

/// The sum of value `index` over the samples whose stack has a function ending in `name`.
pub fn sum_in_stacks(
    profile: &caddyprof::profile::proto::Profile,
    name: &str,
    index: usize,
) -> i64 {
    let symbols = caddyprof::profile::Symbols::new(profile);
    profile
        .sample
        .iter()
        .filter(|s| symbols.stack(s).iter().any(|f| f.ends_with(name)))
        .map(|s| s.value[index])
        .sum()
}

/// Makes the tests of one binary that share a process-wide profiler take turns.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The source lines `hot_spin` spans, for checking a profile's line numbers.
pub const HOT_SPIN_LINES: std::ops::Range<i64> = (line!() as i64 + 1)..(line!() as i64 + 18);

/// Burns CPU for `duration` in this very function (a xorshift loop, no calls), so a CPU
/// profile of the caller has `hot_spin` as its leaf.
#[inline(never)]
pub fn hot_spin(duration: Duration) -> u64 {
    let start = Instant::now();
    let mut x = std::hint::black_box(0x9e37_79b9_7f4a_7c15_u64);
    while start.elapsed() < duration {
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        x = std::hint::black_box(x);
    }
    x
}

/// Whether `go` is installed, for the checks with `go tool pprof`; says `SKIPPED` for `test`
/// when it is not.
pub fn go_is_installed(test: &str) -> bool {
    let installed = std::process::Command::new("go")
        .arg("version")
        .output()
        .is_ok();
    if !installed {
        eprintln!("SKIPPED {test}: `go` is not installed");
    }
    installed
}

/// The standard output of `go tool pprof ARGS file`, an independent pprof reader, with its
/// caches under `scratch`; fails the test if pprof fails or cannot tell the profile's main
/// binary.
pub fn go_tool_pprof(args: &[&str], file: &std::path::Path, scratch: &std::path::Path) -> String {
    let output = std::process::Command::new("go")
        .args(["tool", "pprof"])
        .args(args)
        .arg(file)
        .env("HOME", scratch)
        .env("PPROF_TMPDIR", scratch)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "go tool pprof failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("Main binary filename not available"),
        "{stderr}"
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

// ---------------------------------------------------------------------------------------------
// mappings
// ---------------------------------------------------------------------------------------------

/// An executable file mapping of `/proc/self/maps`: start, end, file offset, path.
type MapsLine = (u64, u64, u64, String);

/// The executable mappings of files in `/proc/self/maps` now.
fn executable_maps() -> Vec<MapsLine> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (range, perms, offset) = (fields.next()?, fields.next()?, fields.next()?);
            let path = fields.nth(2)?;
            let (start, end) = range.split_once('-')?;
            let hex = |h: &str| u64::from_str_radix(h, 16).unwrap();
            perms
                .contains('x')
                .then(|| (hex(start), hex(end), hex(offset), path.to_owned()))
        })
        .collect()
}

/// The GNU build ID of the file at `path`, in hex, read from its `.note.gnu.build-id`
/// section.
pub fn file_build_id(path: &std::path::Path) -> String {
    use object::{Object, ObjectSection};
    let bytes = std::fs::read(path).unwrap();
    let file = object::File::parse(bytes.as_slice()).unwrap();
    let note = file
        .section_by_name(".note.gnu.build-id")
        .expect("the file has a build ID note")
        .data()
        .unwrap();
    let word = |at: usize| u32::from_ne_bytes(note[at..at + 4].try_into().unwrap()) as usize;
    let (name_size, desc_size) = (word(0), word(4));
    let desc_at = (12 + name_size).next_multiple_of(4);
    note[desc_at..desc_at + desc_size]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks that a profile collected in this process names its binaries as the Go runtime
/// does: the first mapping is this test binary (its path, and the build ID of its file);
/// each mapping is an executable file mapping of `/proc/self/maps`; every location whose
/// address lies in one points at the mapping holding it, every other location at none; and
/// each mapping's `has_*` flags say what its locations hold (none for a mapping no location
/// lies in). Returns the filenames of the mappings locations lie in.
pub fn check_mappings(profile: &Pprof) -> Vec<String> {
    let s = |i: i64| profile.string_table[i as usize].as_str();
    let program = std::env::current_exe().unwrap();
    let first = profile.mapping.first().expect("the program's mapping");
    assert_eq!(s(first.filename), program.to_str().unwrap());
    assert_eq!(s(first.build_id), file_build_id(&program));

    let maps = executable_maps();
    for (index, mapping) in profile.mapping.iter().enumerate() {
        assert_eq!(mapping.id, index as u64 + 1);
        let filename = s(mapping.filename);
        let line = maps
            .iter()
            .find(|m| {
                (m.0, m.1, m.2)
                    == (
                        mapping.memory_start,
                        mapping.memory_limit,
                        mapping.file_offset,
                    )
            })
            .unwrap_or_else(|| panic!("mapping {filename} not in /proc/self/maps: {maps:?}"));
        if filename.starts_with('/') {
            assert_eq!(line.3, filename);
        }
    }
    let functions: std::collections::HashMap<u64, &caddyprof::profile::proto::Function> =
        profile.function.iter().map(|f| (f.id, f)).collect();
    let mut used = Vec::new();
    for location in &profile.location {
        let in_file = maps.iter().any(|m| (m.0..m.1).contains(&location.address));
        if location.address == 0 || !in_file {
            assert_eq!(location.mapping_id, 0, "{location:?}");
            continue;
        }
        let mapping = &profile.mapping[location.mapping_id as usize - 1];
        assert!(
            (mapping.memory_start..mapping.memory_limit).contains(&location.address),
            "{location:?} outside {mapping:?}"
        );
        used.push(s(mapping.filename).to_owned());
    }
    for mapping in &profile.mapping {
        let lines: Vec<Vec<(&str, i64, i64)>> = profile
            .location
            .iter()
            .filter(|l| l.mapping_id == mapping.id)
            .map(|l| {
                l.line
                    .iter()
                    .map(|line| {
                        let function = functions[&line.function_id];
                        (s(function.name), function.filename, line.line)
                    })
                    .collect()
            })
            .collect();
        let all = |has: fn(&(&str, i64, i64)) -> bool| {
            !lines.is_empty() && lines.iter().flatten().all(has)
        };
        // A function nothing named stands in as `file+0xoffset`.
        let short = s(mapping.filename).rsplit('/').next().unwrap().to_owned() + "+0x";
        let named = !lines.is_empty() && lines.iter().flatten().all(|l| !l.0.starts_with(&short));
        let flags = (
            mapping.has_functions,
            mapping.has_filenames,
            mapping.has_line_numbers,
            mapping.has_inline_frames,
        );
        let expected = (
            named,
            all(|l| l.1 != 0),
            all(|l| l.2 != 0),
            lines.iter().any(|l| l.len() > 1),
        );
        assert_eq!(flags, expected, "{mapping:?}");
    }
    used.sort();
    used.dedup();
    used
}
