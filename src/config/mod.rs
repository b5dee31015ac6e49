//! The typed, validated configuration, and its JSON loader.
//!
//! The JSON is `{"apps": {"profiling": …, "pyroscope": …, "profefe": …}}` (see the contract,
//! docs/profilingfile.md §11). Decoding is strict: every unknown field, duplicated key or bad value
//! is an error pointing at the exact token, with the JSON path and a fix. Loading collects every
//! problem before failing, and produces nothing when anything is wrong.
//!
//! The validators ([`validate_url`], [`parse_rate`], [`Duration::parse`], `ProfileType`'s
//! `FromStr`) are public so that the Profilingfile adapter checks tokens with the same rules.

#![warn(missing_docs)]

pub(crate) mod decode;
pub mod duration;
pub(crate) mod json;
pub mod parameters;
pub mod profile_type;

use serde_json::{Map, Value};

use crate::adapt::locate::SourceMap;
use crate::apps::{ProfefeApp, ProfilingApp, PyroscopeApp};
use crate::apps::{profefe, profiling, pyroscope};
use crate::diagnostic::{Diagnostic, Error, suggest};
use crate::source::SourceFile;
use decode::Decoder;
use json::Kind;

pub use duration::Duration;
pub use parameters::Parameters;
pub use profile_type::ProfileType;

/// The names of the apps caddyprof reads, in canonical order.
pub const APPS: &[&str] = &["profiling", "pyroscope", "profefe"];

/// The help line for a bad URL.
pub const URL_HELP: &str = "write a full URL with scheme and host, such as http://localhost:4040";

/// A whole caddyprof configuration: the three apps, each optional.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// The `profiling` host app and its child profilers.
    pub profiling: Option<ProfilingApp>,
    /// The standalone `pyroscope` app.
    pub pyroscope: Option<PyroscopeApp>,
    /// The standalone `profefe` app.
    pub profefe: Option<ProfefeApp>,
}

impl Config {
    /// What keeps Caddy itself from loading this configuration: a note per caddyprof
    /// extension it uses (the `file` profiler), each naming its JSON path. `caddyprof
    /// validate` says them; running the configuration does not need to.
    pub fn caddy_notes(&self) -> Vec<Diagnostic> {
        let Some(profiling) = &self.profiling else {
            return Vec::new();
        };
        profiling
            .profilers
            .iter()
            .enumerate()
            .filter(|(_, child)| child.is_extension())
            .map(|(i, child)| {
                Diagnostic::advice(format!(
                    "apps.profiling.profilers[{i}]: the '{}' profiler is a caddyprof extension: \
                     Caddy cannot load this configuration",
                    child.name()
                ))
            })
            .collect()
    }
}

/// A successfully loaded configuration with the warnings and notes found on the way.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Warnings and notes (never errors), in the order found.
    pub warnings: Vec<Diagnostic>,
    /// For a config adapted from a Profilingfile, where each part of it was written, so that
    /// what is found later under a JSON path (when it is resolved to run) can point at the
    /// Profilingfile; empty for JSON, whose diagnostics point into the JSON itself.
    pub sources: SourceMap,
}

impl Config {
    /// Decodes JSON text (named `<json>` in messages), dropping warnings.
    ///
    /// ```
    /// let config = caddyprof::Config::from_json(r#"{"apps": {"profefe": {"service": "api"}}}"#)?;
    /// assert_eq!(config.profefe.unwrap().service.as_deref(), Some("api"));
    /// # Ok::<(), caddyprof::Error>(())
    /// ```
    pub fn from_json(text: &str) -> Result<Config, Error> {
        Self::load_json(&SourceFile::new("<json>", text)).map(|loaded| loaded.config)
    }

    /// Decodes the JSON in `file`, strictly. On success, also returns the warnings and notes.
    pub fn load_json(file: &SourceFile) -> Result<Loaded, Error> {
        Self::load_parsed(file, json::parse)
    }

    /// [`load_json`](Self::load_json) for JSON this crate wrote (the adapter's), valid by
    /// construction: its syntax is not checked before it is read.
    pub(crate) fn load_written_json(file: &SourceFile) -> Result<Loaded, Error> {
        Self::load_parsed(file, json::parse_written)
    }

    fn load_parsed(
        file: &SourceFile,
        parse: fn(&str) -> Result<json::Node<'_>, json::SyntaxError>,
    ) -> Result<Loaded, Error> {
        let mut d = Decoder::new(file.clone());
        let root = match parse(file.text()) {
            Ok(root) => root,
            Err(e) => {
                let end = file.text()[e.offset..]
                    .chars()
                    .next()
                    .map_or(e.offset, |c| e.offset + c.len_utf8());
                d.error(&(e.offset..end), e.message, &e.label, e.help);
                return Err(d.errors.into());
            }
        };
        let config = decode_root(&mut d, &root);
        if !d.errors.is_empty() {
            return Err(d.errors.into());
        }
        Ok(Loaded {
            config,
            warnings: d.warnings,
            sources: SourceMap::default(),
        })
    }

    /// The canonical JSON: `{"apps": {…}}` with only the fields that are set, in the
    /// contract's order, durations as written, and child profilers' `"profiler"` first.
    pub fn to_json(&self) -> Value {
        let mut apps = Map::new();
        if let Some(app) = &self.profiling {
            apps.insert("profiling".into(), app.to_json());
        }
        if let Some(app) = &self.pyroscope {
            apps.insert("pyroscope".into(), app.to_json());
        }
        if let Some(app) = &self.profefe {
            apps.insert("profefe".into(), app.to_json());
        }
        let mut root = Map::new();
        root.insert("apps".into(), Value::Object(apps));
        Value::Object(root)
    }

    /// Whether no app is configured.
    pub fn is_empty(&self) -> bool {
        self.profiling.is_none() && self.pyroscope.is_none() && self.profefe.is_none()
    }
}

fn decode_root(d: &mut Decoder, root: &json::Node) -> Config {
    let mut config = Config::default();
    let Kind::Object(members) = &root.kind else {
        d.error(
            &root.span,
            format!(
                "the configuration must be a JSON object, found {}",
                root.kind.type_name()
            ),
            "expected {\"apps\": {…}}",
            "write {\"apps\": {\"profiling\": {…}}}",
        );
        return config;
    };
    // Keys other than `apps` belong to Caddy: note them once each, but still catch duplicates.
    let keys: Vec<&str> = members.iter().map(|m| m.key.as_ref()).collect();
    for member in d.object(root, "", &keys) {
        if member.key != "apps" {
            let d_ = Diagnostic::advice(format!(
                "top-level key '{}' is not used by caddyprof; ignored",
                member.key
            ))
            .label(&d.at(&member.key_span), "ignored");
            d.warnings.push(d_);
        }
    }
    let Some(apps) = members.iter().find(|m| m.key == "apps") else {
        d.error(
            &(root.span.start..root.span.start + 1),
            "the configuration has no \"apps\"".into(),
            "no \"apps\" in this object",
            "write {\"apps\": {\"profiling\": {…}}}",
        );
        return config;
    };
    let Kind::Object(app_members) = &apps.value.kind else {
        d.object(&apps.value, "apps", APPS);
        return config;
    };
    let keys: Vec<&str> = app_members.iter().map(|m| m.key.as_ref()).collect();
    for member in d.object(&apps.value, "apps", &keys) {
        let path = format!("apps.{}", member.key);
        match member.key.as_ref() {
            "profiling" => config.profiling = Some(profiling::decode(d, &member.value, &path)),
            "pyroscope" => config.pyroscope = Some(pyroscope::decode(d, &member.value, &path)),
            "profefe" => config.profefe = Some(profefe::decode(d, &member.value, &path)),
            other => {
                let at = d.at(&member.key_span);
                let note = match suggest(other, APPS.iter().copied()) {
                    Some(best) => Diagnostic::warning(format!(
                        "app '{other}' is not used by caddyprof; ignored"
                    ))
                    .label(&at, "ignored")
                    .help(format!("did you mean '{best}'?")),
                    None => Diagnostic::advice(format!(
                        "app '{other}' is not used by caddyprof; ignored"
                    ))
                    .label(&at, "ignored"),
                };
                d.warnings.push(note);
            }
        }
    }
    if d.errors.is_empty() && config.is_empty() {
        d.warnings.push(
            Diagnostic::warning("no profiling app is configured: nothing will be profiled")
                .label(&d.at(&apps.key_span), "no profiling, pyroscope or profefe here")
                .help("add an app such as \"profiling\": {\"profilers\": [{\"profiler\": \"pyroscope\"}]}"),
        );
    }
    config
}

/// Whether `text` holds a runtime placeholder such as `{env.NAME}`: a `{`, then at least one
/// character that is neither a brace nor whitespace, then `}`.
pub fn has_placeholder(text: &str) -> bool {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        let name_len = rest
            .find(|c: char| c == '{' || c == '}' || c.is_whitespace())
            .unwrap_or(rest.len());
        if name_len > 0 && rest[name_len..].starts_with('}') {
            return true;
        }
    }
    false
}

/// Checks a server address: an `http` or `https` URL with a host. A value holding a
/// placeholder (`{env.PYROSCOPE_URL}`) is accepted as is, and checked when run.
///
/// ```
/// use caddyprof::config::validate_url;
/// assert!(validate_url("http://localhost:4040").is_ok());
/// assert!(validate_url("localhost:4040").is_err());
/// assert!(validate_url("{env.SERVER}").is_ok());
/// ```
pub fn validate_url(text: &str) -> Result<(), String> {
    if is_plain_http_url(text) || has_placeholder(text) {
        return Ok(());
    }
    // Messages show the URL without its userinfo: it may hold a password.
    let shown = || crate::redact::url(text);
    let url = url::Url::parse(text).map_err(|e| format!("invalid URL '{}': {e}", shown()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "invalid URL '{}': the scheme must be http or https, not '{}'",
            shown(),
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("invalid URL '{}': no host", shown()));
    }
    Ok(())
}

/// Whether `text` is an `http` or `https` URL of the plainest form, which the `url` crate
/// always accepts with a non-empty host: `http[s]://HOST[:PORT][/PATH]`, where HOST is
/// non-empty labels of lowercase ASCII letters, digits and inner `-` separated by dots, the last
/// label starting with a letter (so it is no IPv4 address) and none starting with `xn--` (so
/// no punycode to decode); PORT is 1 to 5 digits up to 65535; PATH is ASCII letters, digits
/// and `/._~-`. A quick check for the common case: anything else goes to the `url` crate.
fn is_plain_http_url(text: &str) -> bool {
    let Some(rest) = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
    else {
        return false;
    };
    let bytes = rest.as_bytes();
    let (mut i, mut label_start) = (0, 0);
    loop {
        let b = bytes.get(i).copied();
        if let Some(b'a'..=b'z' | b'0'..=b'9' | b'-') = b {
            i += 1;
            continue;
        }
        let label = &bytes[label_start..i];
        if label.is_empty()
            || label[0] == b'-'
            || label[label.len() - 1] == b'-'
            || label.starts_with(b"xn--")
        {
            return false;
        }
        if b == Some(b'.') {
            i += 1;
            label_start = i;
            continue;
        }
        if !label[0].is_ascii_lowercase() {
            return false;
        }
        break;
    }
    let mut rest = &bytes[i..];
    if let Some(after) = rest.strip_prefix(b":") {
        let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=5).contains(&digits) {
            return false;
        }
        let port = after[..digits]
            .iter()
            .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
        if port > 65535 {
            return false;
        }
        rest = &after[digits..];
    }
    rest.is_empty()
        || rest[0] == b'/'
            && rest
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"/._~-".contains(&b))
}

/// Parses a rate or fraction written as decimal digits: an integer from 0 to `i64::MAX`.
/// The error says why (negative, not a whole number, too large).
///
/// ```
/// use caddyprof::config::parse_rate;
/// assert_eq!(parse_rate("100"), Ok(100));
/// assert!(parse_rate("-5").unwrap_err().contains("negative"));
/// ```
pub fn parse_rate(text: &str) -> Result<u64, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .ok()
            .filter(|&n| i64::try_from(n).is_ok())
            .ok_or_else(|| format!("{text} is too large"));
    }
    if text.starts_with('-') && text.len() > 1 {
        return Err(format!("must not be negative (found {text})"));
    }
    Err(format!(
        "must be a whole number, 0 or more (found '{text}')"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        assert!(has_placeholder("{env.X}"));
        assert!(has_placeholder("http://{env.HOST}:4040"));
        assert!(!has_placeholder("{}"));
        assert!(!has_placeholder("{ env.X }"));
        assert!(!has_placeholder("{env.X"));
        assert!(!has_placeholder("plain"));
    }

    #[test]
    fn urls() {
        assert!(validate_url("https://example.com/path").is_ok());
        assert!(validate_url("http://[::1]:4040").is_ok());
        assert!(
            validate_url("ftp://x")
                .unwrap_err()
                .contains("http or https")
        );
        assert!(validate_url("http://").is_err());
        assert!(validate_url("").is_err());
        assert!(validate_url("localhost").is_err());
    }

    /// The quick check accepts only what the `url` crate accepts with an http(s) scheme and
    /// a host, so it never changes the answer.
    #[test]
    fn plain_urls_agree_with_the_url_crate() {
        let by_url_crate = |text: &str| {
            url::Url::parse(text).is_ok_and(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some_and(|h| !h.is_empty())
            })
        };
        let plain = [
            "http://localhost",
            "http://localhost:4040",
            "https://pyroscope.example.com:4040/",
            "http://pyroscope-12.internal:4040",
            "http://a-b.c0/x/y.z_~-",
            "http://x:0",
            "http://x:65535",
            "http://x:00080",
            "http://1.2.3.a",
        ];
        for text in plain {
            assert!(is_plain_http_url(text), "{text}");
            assert!(by_url_crate(text), "{text}");
        }
        let not_plain = [
            "http://",
            "http://:80",
            "http://x:",
            "http://x:65536",
            "http://x:123456",
            "http://1.2.3.4",
            "http://1.2.3.999",
            "http://a.0x1",
            "http://a.1",
            "http://a..b",
            "http://.a",
            "http://a.",
            "http://xn--a.b",
            "http://-a.b",
            "http://a-.b",
            "http://Example.com",
            "http://a_b.c",
            "http://a/b?c",
            "http://a/%zz",
            "http://user@a",
            "http://a:80a",
            "http://a?x",
            "ftp://a",
            "HTTP://a",
            " http://a",
        ];
        for text in not_plain {
            assert!(!is_plain_http_url(text), "{text}");
        }
    }
}
