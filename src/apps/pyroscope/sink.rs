//! The runtime side of the pyroscope app: turns [`Profile`]s into `POST {server_address}/ingest`
//! requests exactly as pyroscope-go v1.2.0 sends them, and queues them on an [`Uploader`](crate::runtime::upload::Uploader).
//!
//! On the wire (checked against captures of the real Go agent):
//!
//! - Path: the path of `server_address` (a prefix is kept, a trailing `/` is not doubled) plus
//!   `/ingest`; any query of `server_address` is replaced.
//! - Query, keys sorted, values escaped like Go's `url.QueryEscape`: `aggregationType`,
//!   `from` and `until` (Unix nanoseconds of the window), `name` (`app{__session_id__=…,k=v}`
//!   with the keys sorted), `sampleRate`, `spyName` ([`SPY_NAME`]) and `units`. No `format`.
//!   Per type: cpu `aggregationType=sum`, `sampleRate=` the CPU rate in Hz, `units=samples`;
//!   heap and allocs empty/`100`/empty; goroutine `average`/`0`/`goroutines`; block and mutex
//!   empty/`0`/empty.
//! - Body: `multipart/form-data` with a file part `profile` (`profile.pprof`,
//!   `application/octet-stream`, the gzip pprof), then, for every type but cpu, a file part
//!   `sample_type_config` (`sample_type_config.json`) with the Go agent's JSON for the type.
//! - Headers: `Content-Type: multipart/form-data; boundary=…`; `Authorization: Basic …` when
//!   both `basic_auth_user` and `basic_auth_password` are set, else `Authorization: Bearer …`
//!   when `auth_token` is set (to any host, as pyroscope-go ≥ 1.2.1; v1.2.0 sent it only to
//!   `*.pyroscope.cloud`); `X-Scope-OrgID` when `tenant_id` is set.
//! - `threadcreate` profiles are not sent (the Go module does not support them either).
//! - `disable_gc_runs` is accepted and has no effect: Rust has no garbage collector, and heap
//!   profiles are produced every window whatever it says.
//!
//! Cadence: every `upload_rate` (default 15 s), in windows aligned to multiples of the rate
//! ([`Windows`](crate::runtime::windows::Windows)); the collector produces the profiles of each
//! window and calls [`PyroscopeSink::submit`]. CPU uses the same windows as every other type.

use crate::runtime::plan::sampling::Sampling;
use crate::runtime::sink::{Sink, SinkSettings};
use crate::runtime::upload::{Connections, UploaderOptions};
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use bytes::Bytes;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::settings::{Auth, PyroscopeSettings};
use crate::fields::ProfileType;
use crate::runtime::Profile;
use crate::runtime::upload::{HttpSink, NotSent, RequestTarget, UploadRequest};
use crate::runtime::windows::unix_nanos;

/// The `spyName` sent with every upload (stored by the server as the `pyroscope_spy` label).
/// pyroscope-go sends `gospy`; this agent is not Go, so it names itself after Rust.
pub const SPY_NAME: &str = "rustspy";

/// The `sample_type_config` JSON the Go agent sends for a heap (or allocs) profile.
pub const HEAP_SAMPLE_TYPE_CONFIG: &str = r#"{"alloc_objects":{"units":"objects"},"alloc_space":{"units":"bytes"},"inuse_objects":{"units":"objects","aggregation":"average"},"inuse_space":{"units":"bytes","aggregation":"average"}}"#;
/// The `sample_type_config` JSON the Go agent sends for a goroutine profile.
pub const GOROUTINE_SAMPLE_TYPE_CONFIG: &str =
    r#"{"goroutine":{"units":"goroutines","aggregation":"average","display-name":"goroutines"}}"#;
/// The `sample_type_config` JSON the Go agent sends for a block profile.
pub const BLOCK_SAMPLE_TYPE_CONFIG: &str = r#"{"contentions":{"units":"lock_samples","display-name":"block_count"},"delay":{"units":"lock_nanoseconds","display-name":"block_duration"}}"#;
/// The `sample_type_config` JSON the Go agent sends for a mutex profile.
pub const MUTEX_SAMPLE_TYPE_CONFIG: &str = r#"{"contentions":{"units":"lock_samples","display-name":"mutex_count"},"delay":{"units":"lock_nanoseconds","display-name":"mutex_duration"}}"#;

/// The per-type upload parameters: `(aggregationType, sampleRate, units, sample_type_config)`,
/// with `sampleRate` `None` for the CPU rate; `None` for a type that is not uploaded.
fn type_parameters(
    profile_type: ProfileType,
) -> Option<(
    &'static str,
    Option<u64>,
    &'static str,
    Option<&'static str>,
)> {
    Some(match profile_type {
        ProfileType::Cpu => ("sum", None, "samples", None),
        ProfileType::Heap | ProfileType::Allocs => {
            ("", Some(100), "", Some(HEAP_SAMPLE_TYPE_CONFIG))
        }
        ProfileType::Goroutine => (
            "average",
            Some(0),
            "goroutines",
            Some(GOROUTINE_SAMPLE_TYPE_CONFIG),
        ),
        ProfileType::Block => ("", Some(0), "", Some(BLOCK_SAMPLE_TYPE_CONFIG)),
        ProfileType::Mutex => ("", Some(0), "", Some(MUTEX_SAMPLE_TYPE_CONFIG)),
        ProfileType::ThreadCreate => return None,
    })
}

/// The `sample_type_config` JSON sent with a profile type, if any.
pub fn sample_type_config(profile_type: ProfileType) -> Option<&'static str> {
    type_parameters(profile_type).and_then(|p| p.3)
}

/// This process's session id: 16 lowercase hex digits, random, the same for the whole process.
pub fn session_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| format!("{:016x}", fastrand::u64(..)))
}

/// The `name` query value: the application name (which may carry `{k=v,…}` tags) with
/// `__session_id__` added, tags sorted by key, as pyroscope-go normalizes it.
///
/// ```
/// use caddyprof::apps::pyroscope::sink::ingest_name;
/// assert_eq!(ingest_name("shop{region=eu, az=1}", "0123456789abcdef").unwrap(),
///            "shop{__session_id__=0123456789abcdef,az=1,region=eu}");
/// assert!(ingest_name("{a=b}", "0123456789abcdef").is_err());
/// ```
pub fn ingest_name(application_name: &str, session_id: &str) -> Result<String, String> {
    let text = application_name.trim();
    let (service, tags) = match text.split_once('{') {
        Some((service, rest)) => {
            let inner = rest
                .strip_suffix('}')
                .ok_or_else(|| format!("application name {text:?}: missing closing '}}'"))?;
            (service.trim(), inner)
        }
        None => (text, ""),
    };
    if service.is_empty() {
        return Err("the application name is empty".into());
    }
    let mut labels = BTreeMap::new();
    for pair in tags.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("application name tag {pair:?}: expected key=value"))?;
        let key = key.trim();
        if key.is_empty() || key == "__name__" {
            return Err(format!("application name tag {pair:?}: invalid key"));
        }
        labels.insert(key.to_string(), value.trim().to_string());
    }
    labels.insert("__session_id__".into(), session_id.into());
    let tags: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Ok(format!("{service}{{{}}}", tags.join(",")))
}

/// Escapes a query value like Go's `url.QueryEscape`: letters, digits and `-_.~` stay, a
/// space becomes `+`, every other byte `%XX`.
pub fn go_query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Where and how one pyroscope app uploads: everything about a request but the profile.
#[derive(Clone)]
pub struct IngestTarget {
    ingest_url: Url,
    name: String,
    headers: HeaderMap,
    cpu_sample_rate: u64,
}

impl std::fmt::Debug for IngestTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestTarget")
            .field("ingest_url", &crate::redact::url(self.ingest_url.as_str()))
            .field("name", &self.name)
            .field("cpu_sample_rate", &self.cpu_sample_rate)
            .finish_non_exhaustive()
    }
}

impl RequestTarget for IngestTarget {
    type Settings = PyroscopeSettings;
    const NAME: &'static str = "pyroscope";

    fn new(settings: &PyroscopeSettings) -> Result<Self, String> {
        let mut ingest_url = settings.server_url.clone();
        let path = format!("{}/ingest", ingest_url.path().trim_end_matches('/'));
        ingest_url.set_path(&path);
        ingest_url.set_query(None);
        ingest_url.set_fragment(None);
        let name = ingest_name(&settings.application_name, session_id())
            .map_err(|e| format!("pyroscope application_name: {e}"))?;

        let mut headers = HeaderMap::new();
        let auth = match &settings.auth {
            Auth::None => None,
            Auth::Basic { user, password } => Some((
                "basic_auth",
                format!(
                    "Basic {}",
                    BASE64_STANDARD.encode(format!("{user}:{}", password.expose()))
                ),
            )),
            Auth::Bearer(token) => Some(("auth_token", format!("Bearer {}", token.expose()))),
        };
        if let Some((field, value)) = auth {
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| format!("pyroscope {field}: invalid characters for an HTTP header"))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        if let Some(tenant) = &settings.tenant_id {
            let value = HeaderValue::from_str(tenant)
                .map_err(|_| "pyroscope tenant_id: invalid characters for an HTTP header")?;
            headers.insert(HeaderName::from_static("x-scope-orgid"), value);
        }
        Ok(IngestTarget {
            ingest_url,
            name,
            headers,
            cpu_sample_rate: settings.sampling.cpu_hz,
        })
    }

    fn request(&self, profile: &Profile) -> Result<UploadRequest, NotSent> {
        self.upload_request(profile).ok_or(NotSent::Unsupported)
    }
}

impl IngestTarget {
    /// The `name` query value (`app{__session_id__=…}`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `/ingest` URL without its query.
    pub fn ingest_url(&self) -> &Url {
        &self.ingest_url
    }

    /// The full URL for `profile`, or `None` for a type that is not uploaded (threadcreate).
    pub fn url(&self, profile: &Profile) -> Option<Url> {
        let (aggregation, rate, units, _) = type_parameters(profile.profile_type)?;
        let rate = rate.unwrap_or(self.cpu_sample_rate);
        let query = format!(
            "aggregationType={}&from={}&name={}&sampleRate={rate}&spyName={}&units={}&until={}",
            go_query_escape(aggregation),
            unix_nanos(profile.start),
            go_query_escape(&self.name),
            go_query_escape(SPY_NAME),
            go_query_escape(units),
            unix_nanos(profile.end()),
        );
        let mut url = self.ingest_url.clone();
        url.set_query(Some(&query));
        Some(url)
    }

    /// The upload request for `profile`, or `None` for a type that is not uploaded.
    pub fn upload_request(&self, profile: &Profile) -> Option<UploadRequest> {
        let url = self.url(profile)?;
        let config = sample_type_config(profile.profile_type);
        let boundary = boundary();
        let mut body = Vec::with_capacity(profile.pprof_gz.len() + 600);
        let mut part = |first: bool, name: &str, filename: &str, data: &[u8]| {
            if !first {
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                     filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(data);
        };
        part(true, "profile", "profile.pprof", &profile.pprof_gz);
        if let Some(config) = config {
            part(
                false,
                "sample_type_config",
                "sample_type_config.json",
                config.as_bytes(),
            );
        }
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());

        let mut headers = self.headers.clone();
        let content_type =
            HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
                .expect("a hex boundary is a valid header value");
        headers.insert(CONTENT_TYPE, content_type);
        Some(UploadRequest {
            url,
            headers,
            body: Bytes::from(body),
            what: format!("{} profile", profile.profile_type),
        })
    }
}

/// A random multipart boundary like Go's: 30 random bytes in hex.
fn boundary() -> String {
    (0..30).fold(String::with_capacity(60), |mut s, _| {
        let _ = write!(s, "{:02x}", fastrand::u8(..));
        s
    })
}

/// A running pyroscope sink.
pub type PyroscopeSink = HttpSink<IngestTarget>;

impl SinkSettings for PyroscopeSettings {
    fn path(&self) -> &str {
        &self.path
    }

    fn sampling(&self) -> &Sampling {
        &self.sampling
    }

    fn window(&self) -> Duration {
        self.upload_rate
    }

    fn start(&self, connections: &Connections) -> Result<Box<dyn Sink>, String> {
        let options = UploaderOptions::new(self.path.clone());
        Ok(Box::new(PyroscopeSink::start(self, options, connections)?))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn escape_matches_go() {
        assert_eq!(
            go_query_escape("caddy-ref{__session_id__=77e425ea48b3919f}"),
            "caddy-ref%7B__session_id__%3D77e425ea48b3919f%7D"
        );
        assert_eq!(go_query_escape("a b*~"), "a+b%2A~");
    }

    #[test]
    fn session_id_is_stable_hex() {
        let id = session_id();
        assert_eq!(id.len(), 16);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(id, session_id());
    }

    fn settings(server: &str) -> PyroscopeSettings {
        PyroscopeSettings {
            path: "apps.pyroscope".into(),
            application_name: "a".into(),
            server_url: Url::parse(server).unwrap(),
            auth: Auth::None,
            tenant_id: None,
            upload_rate: Duration::from_secs(15),
            sampling: crate::runtime::plan::Sampling {
                profile_types: vec![ProfileType::Cpu],
                cpu_hz: 100,
                block_rate: 0,
                mutex_fraction: 0,
            },
        }
    }

    #[test]
    fn prefix_kept_and_query_replaced() {
        let t = IngestTarget::new(&settings("http://h:1/p/q/?x=1")).unwrap();
        assert_eq!(t.ingest_url().as_str(), "http://h:1/p/q/ingest");
        let bare = IngestTarget::new(&settings("http://h:1")).unwrap();
        assert_eq!(bare.ingest_url().as_str(), "http://h:1/ingest");
    }
}
