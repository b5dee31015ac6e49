//! The shared helpers every app's configuration is made of (layer 2 of the crate, see its
//! docs): durations, profile types, the profiling parameters, the tables that declare an
//! app's fields, and the readers and writers of those fields: JSON with spans in
//! (`json_reader`, `decode`), JSON out ([`json_writer`]) and Profilingfile directives in
//! ([`directive`]).
//!
//! Nothing here knows which apps exist: each app (in [`crate::apps`]) declares its fields
//! with these types, and the validators below are the one rule of each kind of value, used
//! by the JSON decoder, the directive reader and the runtime alike.

#![warn(missing_docs)]

pub(crate) mod decode;
pub mod directive;
pub mod duration;
pub(crate) mod json_reader;
pub mod json_writer;
pub mod parameters;
pub mod profile_type;
pub mod table;

pub use duration::Duration;
pub use parameters::Parameters;
pub use profile_type::ProfileType;
pub use table::{Bound, FieldKind, FieldSet, FieldSpec};

/// The help line for a bad URL.
pub const URL_HELP: &str = "write a full URL with scheme and host, such as http://localhost:4040";

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
/// use caddyprof::fields::validate_url;
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
/// use caddyprof::fields::parse_rate;
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
