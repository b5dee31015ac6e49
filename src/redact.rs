//! Keeping credentials out of what is shown: URLs without their userinfo, and what a server
//! answers without the credentials its request carried (some echo the request's headers in
//! their error pages).

use std::borrow::Cow;

#[cfg(feature = "runtime")]
use base64::{Engine as _, prelude::BASE64_STANDARD};
#[cfg(feature = "runtime")]
use reqwest::{Url, header::HeaderMap};

/// What is shown in place of a credential.
pub(crate) const REDACTED: &str = "[redacted]";

/// `text`, a URL valid or not, with its userinfo (`user:password@`) shown as `[redacted]@`.
/// The userinfo is what comes after the scheme and its slashes and before the last `@` of the
/// authority (which ends at the first `/`, `\`, `?` or `#`), as the `url` crate reads it.
pub(crate) fn url(text: &str) -> Cow<'_, str> {
    let scheme_end = text
        .find(':')
        .filter(|&colon| {
            let scheme = &text[..colon];
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        })
        .map_or(0, |colon| colon + 1);
    let start = scheme_end
        + text[scheme_end..]
            .find(|c| c != '/' && c != '\\')
            .unwrap_or(text.len() - scheme_end);
    let authority = &text[start..];
    let authority = &authority[..authority
        .find(['/', '\\', '?', '#'])
        .unwrap_or(authority.len())];
    match authority.rfind('@') {
        Some(at) => Cow::Owned(format!(
            "{}{REDACTED}{}",
            &text[..start],
            &text[start + at..]
        )),
        None => Cow::Borrowed(text),
    }
}

/// The credentials one request carries, in every form a server may send them back in: the
/// values of its sensitive headers (whole, without their scheme, and for `Basic` decoded and
/// its password alone) and the userinfo of its URL (as written, decoded, and as the `Basic`
/// header the HTTP client makes of it).
#[cfg(feature = "runtime")]
pub(crate) struct Credentials(Vec<String>);

#[cfg(feature = "runtime")]
impl Credentials {
    /// The credentials of a request to `url` with `headers`.
    pub(crate) fn of_request(url: &Url, headers: &HeaderMap) -> Credentials {
        let mut found = Vec::new();
        for value in headers.values().filter(|v| v.is_sensitive()) {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            if let Some((scheme, credential)) = value.split_once(' ') {
                let credential = credential.trim();
                if scheme.eq_ignore_ascii_case("basic")
                    && let Ok(decoded) = BASE64_STANDARD.decode(credential)
                {
                    let decoded = String::from_utf8_lossy(&decoded).into_owned();
                    if let Some((_, password)) = decoded.split_once(':') {
                        found.push(password.to_owned());
                    }
                    found.push(decoded);
                }
                found.push(credential.to_owned());
            }
            found.push(value);
        }
        let (user, password) = (url.username(), url.password());
        if !user.is_empty() || password.is_some() {
            let (user_decoded, password_decoded) =
                (percent_decoded(user), password.map(percent_decoded));
            let pair = format!(
                "{user_decoded}:{}",
                password_decoded.as_deref().unwrap_or("")
            );
            let encoded = BASE64_STANDARD.encode(&pair);
            found.push(format!("Basic {encoded}"));
            found.push(encoded);
            found.extend([pair, user.to_owned(), user_decoded]);
            found.extend(password.map(str::to_owned));
            found.extend(password_decoded);
        }
        found.retain(|s| !s.is_empty());
        // The longest first, so that no shorter one leaves part of a longer one shown.
        found.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        found.dedup();
        Credentials(found)
    }

    /// `text` with every credential replaced by `[redacted]`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for credential in &self.0 {
            if text.contains(credential.as_str()) {
                text = text.replace(credential.as_str(), REDACTED);
            }
        }
        text
    }
}

/// `text` with its `%XX` escapes decoded (bytes that are not UTF-8 replaced).
#[cfg(feature = "runtime")]
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|_| bytes[i] == b'%')
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A secret value (a token or password): its `Debug` and `Display` print `[redacted]`. Use
/// [`Secret::expose`] only where the value is sent.
#[cfg(feature = "runtime")]
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

#[cfg(feature = "runtime")]
impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, to put in a request header. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(feature = "runtime")]
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(feature = "runtime")]
impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_hidden_in_valid_and_invalid_urls() {
        let cases = [
            (
                "http://user:SECRET@127.0.0.1:99999",
                "http://[redacted]@127.0.0.1:99999",
            ),
            (
                "https://t@h/p@q?a=b@c#d@e",
                "https://[redacted]@h/p@q?a=b@c#d@e",
            ),
            ("http:/u:p@a@h", "http:/[redacted]@h"),
            ("http:\\\\u:p@h\\x", "http:\\\\[redacted]@h\\x"),
            ("u:p@h", "u:[redacted]@h"),
            ("@h", "[redacted]@h"),
            ("http://h:1/x", "http://h:1/x"),
            ("{env.URL}", "{env.URL}"),
            ("", ""),
        ];
        for (text, shown) in cases {
            assert_eq!(url(text), shown, "{text}");
        }
    }

    #[test]
    #[cfg(feature = "runtime")]
    fn every_form_of_a_credential_is_scrubbed() {
        use reqwest::header::{AUTHORIZATION, HeaderValue};

        let url = Url::parse("http://us%65r:p%40ss@h/").unwrap();
        let mut headers = HeaderMap::new();
        let mut bearer = HeaderValue::from_static("Bearer tok3n");
        bearer.set_sensitive(true);
        headers.insert(AUTHORIZATION, bearer);
        headers.insert("x-scope-orgid", HeaderValue::from_static("tenant"));
        let credentials = Credentials::of_request(&url, &headers);
        let basic = BASE64_STANDARD.encode("user:p@ss");
        let echo = format!(
            "authorization: Bearer tok3n\nauth: Basic {basic}\nx-scope-orgid: tenant\n\
             raw p%40ss decoded p@ss token tok3n user"
        );
        assert_eq!(
            credentials.scrub(&echo),
            "authorization: [redacted]\nauth: [redacted]\nx-scope-orgid: tenant\n\
             raw [redacted] decoded [redacted] token [redacted] [redacted]"
        );

        let mut headers = HeaderMap::new();
        let mut basic =
            HeaderValue::from_str(&format!("Basic {}", BASE64_STANDARD.encode("name:hunter2")))
                .unwrap();
        basic.set_sensitive(true);
        headers.insert(AUTHORIZATION, basic);
        let credentials = Credentials::of_request(&Url::parse("http://h/").unwrap(), &headers);
        assert_eq!(
            credentials.scrub("name:hunter2 hunter2 name"),
            "[redacted] [redacted] name"
        );
    }
}
