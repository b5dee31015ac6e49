//! The `profefe` app: pushes profiles to a profefe collector. Usable as a top-level app or as
//! a child profiler of `profiling`.

#[cfg(feature = "runtime")]
pub mod sink;

use crate::adapt::reader::{Kind, ProfilerSpec};
use serde_json::{Map, Value};

use crate::config::decode::{Decoder, join_into};
use crate::config::json::{Member, Node};
use crate::config::{Duration, Parameters};

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// The JSON field names of a profefe app, in canonical order.
pub const FIELDS: &[&str] = &["address", "service", "timeout", "parameters"];

/// The configuration of a profefe profiler. Every field is optional. Its `Debug` shows the
/// address without userinfo.
#[derive(Clone, Default, PartialEq)]
pub struct ProfefeApp {
    /// The collector URL; unset means `http://localhost:10100`.
    pub address: Option<String>,
    /// The service name; unset means the executable's file name.
    pub service: Option<String>,
    /// The upload timeout; 0 means no timeout. Never negative.
    pub timeout: Option<Duration>,
    /// This profiler's own parameters.
    pub parameters: Option<Parameters>,
}

impl std::fmt::Debug for ProfefeApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ProfefeApp {
            address,
            service,
            timeout,
            parameters,
        } = self;
        f.debug_struct("ProfefeApp")
            .field("address", &address.as_deref().map(crate::redact::url))
            .field("service", service)
            .field("timeout", timeout)
            .field("parameters", parameters)
            .finish()
    }
}

/// Decodes a profefe app object at `path`.
pub(crate) fn decode(d: &mut Decoder, node: &Node, path: &str) -> ProfefeApp {
    let members = d.object(node, path, FIELDS);
    decode_fields(d, &members, path)
}

/// Decodes members already checked to be in [`FIELDS`].
pub(crate) fn decode_fields(d: &mut Decoder, members: &[&Member], parent: &str) -> ProfefeApp {
    let mut app = ProfefeApp::default();
    let mut path_buffer = String::new();
    for member in members {
        let path = join_into(&mut path_buffer, parent, &member.key);
        let value = &member.value;
        match member.key.as_ref() {
            "address" => app.address = d.url(value, path),
            "service" => app.service = d.string(value, path),
            "timeout" => {
                app.timeout = d.duration(value, path);
                if app
                    .timeout
                    .as_ref()
                    .and_then(Duration::as_nanos)
                    .is_some_and(|n| n < 0)
                {
                    d.error(
                        &value.span,
                        format!("{path}: the timeout must not be negative"),
                        "negative",
                        "write a positive duration such as 10s, or 0 for no timeout",
                    );
                    app.timeout = None;
                }
            }
            "parameters" => app.parameters = Some(Parameters::decode(d, value, path)),
            _ => {}
        }
    }
    app
}

impl ProfefeApp {
    /// Appends the set fields to `map`, in canonical order.
    pub(crate) fn write_fields(&self, map: &mut Map<String, Value>) {
        if let Some(address) = &self.address {
            map.insert("address".into(), address.as_str().into());
        }
        if let Some(service) = &self.service {
            map.insert("service".into(), service.as_str().into());
        }
        if let Some(timeout) = &self.timeout {
            map.insert("timeout".into(), timeout.to_json());
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

/// What a `profefe` block may contain (besides the shared parameters).
pub const SPEC: ProfilerSpec = ProfilerSpec {
    name: "profefe",
    address_field: "address",
    fields: &[
        ("address", Kind::Url),
        ("service", Kind::Text),
        ("timeout", Kind::Duration { positive: false }),
    ],
};

#[cfg(test)]
mod tests {
    use crate::Config;

    fn app(fields: &str) -> Result<super::ProfefeApp, String> {
        Config::from_json(&format!(r#"{{"apps": {{"profefe": {{{fields}}}}}}}"#))
            .map(|c| c.profefe.unwrap())
            .map_err(|e| e.diagnostics()[0].message().to_string())
    }

    #[test]
    fn timeout() {
        assert_eq!(
            app(r#""timeout": 0"#).unwrap().timeout,
            Some(crate::config::Duration::Nanos(0))
        );
        assert!(app(r#""timeout": "0""#).is_ok());
        assert!(app(r#""timeout": "-1s""#).unwrap_err().contains("negative"));
        assert!(
            app(r#""timeout": 1.5"#)
                .unwrap_err()
                .contains("whole number")
        );
    }

    #[test]
    fn address() {
        assert!(app(r#""address": "https://profefe.example:10100""#).is_ok());
        assert!(
            app(r#""address": "tcp://x""#)
                .unwrap_err()
                .contains("http or https")
        );
    }
}
