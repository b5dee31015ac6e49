//! The `pyroscope` app: pushes profiles to a Pyroscope server. Usable as a top-level app or as
//! a child profiler of `profiling`.

#[cfg(feature = "runtime")]
pub mod sink;

use crate::adapt::reader::{Kind, ProfilerSpec};
use std::fmt;

use serde_json::{Map, Value};

use crate::config::decode::{Decoder, join_into};
use crate::config::json::{Member, Node};
use crate::config::{Duration, Parameters};

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// The JSON field names of a pyroscope app, in canonical order.
pub const FIELDS: &[&str] = &[
    "application_name",
    "server_address",
    "auth_token",
    "basic_auth_user",
    "basic_auth_password",
    "tenant_id",
    "disable_gc_runs",
    "upload_rate",
    "parameters",
];

/// The configuration of a pyroscope profiler. Every field is optional. Its `Debug` shows
/// neither the secrets nor the userinfo of the server's URL.
#[derive(Clone, Default, PartialEq)]
pub struct PyroscopeApp {
    /// The application name shown in Pyroscope; unset means the executable's file name.
    pub application_name: Option<String>,
    /// The Pyroscope server URL.
    pub server_address: Option<String>,
    /// A bearer token (secret: never logged).
    pub auth_token: Option<String>,
    /// HTTP basic auth user.
    pub basic_auth_user: Option<String>,
    /// HTTP basic auth password (secret: never logged).
    pub basic_auth_password: Option<String>,
    /// The tenant (`X-Scope-OrgID`) for multi-tenant servers.
    pub tenant_id: Option<String>,
    /// The Go agent's switch to skip GC runs before heap profiles; kept for compatibility.
    pub disable_gc_runs: Option<bool>,
    /// How often profiles are uploaded; unset means 15s. Always positive.
    pub upload_rate: Option<Duration>,
    /// This profiler's own parameters.
    pub parameters: Option<Parameters>,
}

impl fmt::Debug for PyroscopeApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("PyroscopeApp")
            .field("application_name", &self.application_name)
            .field(
                "server_address",
                &self.server_address.as_deref().map(crate::redact::url),
            )
            .field("auth_token", &redact(&self.auth_token))
            .field("basic_auth_user", &self.basic_auth_user)
            .field("basic_auth_password", &redact(&self.basic_auth_password))
            .field("tenant_id", &self.tenant_id)
            .field("disable_gc_runs", &self.disable_gc_runs)
            .field("upload_rate", &self.upload_rate)
            .field("parameters", &self.parameters)
            .finish()
    }
}

/// Decodes a pyroscope app object at `path`.
pub(crate) fn decode(d: &mut Decoder, node: &Node, path: &str) -> PyroscopeApp {
    let members = d.object(node, path, FIELDS);
    decode_fields(d, &members, path)
}

/// Decodes members already checked to be in [`FIELDS`].
pub(crate) fn decode_fields(d: &mut Decoder, members: &[&Member], parent: &str) -> PyroscopeApp {
    let mut app = PyroscopeApp::default();
    let mut path_buffer = String::new();
    for member in members {
        let path = join_into(&mut path_buffer, parent, &member.key);
        let value = &member.value;
        match member.key.as_ref() {
            "application_name" => app.application_name = d.string(value, path),
            "server_address" => app.server_address = d.url(value, path),
            "auth_token" => app.auth_token = d.string(value, path),
            "basic_auth_user" => app.basic_auth_user = d.string(value, path),
            "basic_auth_password" => app.basic_auth_password = d.string(value, path),
            "tenant_id" => app.tenant_id = d.string(value, path),
            "disable_gc_runs" => app.disable_gc_runs = d.boolean(value, path),
            "upload_rate" => {
                app.upload_rate = d.duration(value, path);
                if app
                    .upload_rate
                    .as_ref()
                    .and_then(Duration::as_nanos)
                    .is_some_and(|n| n <= 0)
                {
                    d.error(
                        &value.span,
                        format!("{path}: the upload rate must be greater than zero"),
                        "not positive",
                        "write a positive duration such as 15s (the default)",
                    );
                    app.upload_rate = None;
                }
            }
            "parameters" => app.parameters = Some(Parameters::decode(d, value, path)),
            _ => {}
        }
    }
    app
}

impl PyroscopeApp {
    /// Appends the set fields to `map`, in canonical order.
    pub(crate) fn write_fields(&self, map: &mut Map<String, Value>) {
        let strings = [
            ("application_name", &self.application_name),
            ("server_address", &self.server_address),
            ("auth_token", &self.auth_token),
            ("basic_auth_user", &self.basic_auth_user),
            ("basic_auth_password", &self.basic_auth_password),
            ("tenant_id", &self.tenant_id),
        ];
        for (key, value) in strings {
            if let Some(value) = value {
                map.insert(key.into(), value.as_str().into());
            }
        }
        if let Some(flag) = self.disable_gc_runs {
            map.insert("disable_gc_runs".into(), flag.into());
        }
        if let Some(rate) = &self.upload_rate {
            map.insert("upload_rate".into(), rate.to_json());
        }
        if let Some(parameters) = &self.parameters {
            map.insert("parameters".into(), parameters.to_json());
        }
    }

    /// The canonical JSON object of this app.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        self.write_fields(&mut map);
        Value::Object(map)
    }
}

// ---------------------------------------------------------------------------------------------
// Profilingfile reading
// ---------------------------------------------------------------------------------------------

/// What a `pyroscope` block may contain (the four parameters and `parameters { … }` are
/// shared by every profiler).
pub const SPEC: ProfilerSpec = ProfilerSpec {
    name: "pyroscope",
    address_field: "server_address",
    fields: &[
        ("application_name", Kind::Text),
        ("server_address", Kind::Url),
        ("auth_token", Kind::Text),
        ("basic_auth_user", Kind::Text),
        ("basic_auth_password", Kind::Text),
        ("tenant_id", Kind::Text),
        ("disable_gc_runs", Kind::Flag),
        ("upload_rate", Kind::Duration { positive: true }),
    ],
};

#[cfg(test)]
mod tests {
    use crate::Config;

    fn app(fields: &str) -> Result<super::PyroscopeApp, String> {
        Config::from_json(&format!(r#"{{"apps": {{"pyroscope": {{{fields}}}}}}}"#))
            .map(|c| c.pyroscope.unwrap())
            .map_err(|e| e.diagnostics()[0].message().to_string())
    }

    #[test]
    fn fields() {
        let a =
            app(r#""server_address": "{env.URL}", "disable_gc_runs": true, "upload_rate": 1000"#)
                .unwrap();
        assert_eq!(a.server_address.as_deref(), Some("{env.URL}"));
        assert_eq!(a.disable_gc_runs, Some(true));
        assert_eq!(a.upload_rate, Some(crate::config::Duration::Nanos(1000)));
        assert!(app(r#""upload_rate": "{env.RATE}""#).is_ok());
    }

    #[test]
    fn rejects() {
        assert!(
            app(r#""upload_rate": -1"#)
                .unwrap_err()
                .contains("greater than zero")
        );
        assert!(
            app(r#""upload_rate": "0""#)
                .unwrap_err()
                .contains("greater than zero")
        );
        assert!(
            app(r#""server_address": "http://""#)
                .unwrap_err()
                .contains("invalid URL")
        );
        assert!(app(r#""auth_token": """#).unwrap_err().contains("empty"));
        assert!(
            app(r#""parameters": []"#)
                .unwrap_err()
                .contains("expected an object")
        );
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let a = app(r#""auth_token": "s3cret", "basic_auth_password": "hunter2""#).unwrap();
        let debug = format!("{a:?}");
        assert!(!debug.contains("s3cret") && !debug.contains("hunter2"));
    }
}
