//! The `pyroscope` app: pushes profiles to a Pyroscope server. Usable as a top-level app or as
//! a child profiler of `profiling`.

#[cfg(feature = "runtime")]
pub mod settings;
#[cfg(feature = "runtime")]
pub mod sink;

use crate::apps::child::{ChildConfig, ChildKind};
use std::fmt;

use crate::fields::decode::Decoder;
use crate::fields::directive::ProfilerSpec;
use crate::fields::json_reader::Node;
use crate::fields::table::decode_object;
use crate::fields::table::{FieldRef, FieldSlot, debug_fields, write_fields};
use crate::fields::{Bound, Duration, FieldKind, FieldSet, FieldSpec, Parameters, ProfileType};
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// `application_name`: unset means the executable's file name.
pub const APPLICATION_NAME: FieldSpec = FieldSpec::text(
    "application_name",
    "write the application name shown in Pyroscope, such as api or api{region=eu}",
);
/// `server_address`.
pub const SERVER_ADDRESS: FieldSpec = FieldSpec::text(
    "server_address",
    "write the Pyroscope server's URL, such as http://pyroscope:4040",
)
.of_kind(FieldKind::Url)
.with_default("http://localhost:4040");
/// `auth_token`: a bearer token.
pub const AUTH_TOKEN: FieldSpec =
    FieldSpec::text("auth_token", "write the bearer token the server expects").secret();
/// `basic_auth_user`.
pub const BASIC_AUTH_USER: FieldSpec =
    FieldSpec::text("basic_auth_user", "write the user name of HTTP basic auth");
/// `basic_auth_password`.
pub const BASIC_AUTH_PASSWORD: FieldSpec = FieldSpec::text(
    "basic_auth_password",
    "write the password of HTTP basic auth",
)
.secret();
/// `tenant_id`: sent as `X-Scope-OrgID`.
pub const TENANT_ID: FieldSpec = FieldSpec::text(
    "tenant_id",
    "write the tenant of a multi-tenant server (sent as X-Scope-OrgID)",
);
/// `disable_gc_runs`: the Go agent's switch, kept for compatibility.
pub const DISABLE_GC_RUNS: FieldSpec = FieldSpec::text(
    "disable_gc_runs",
    "write true or false (it has no effect: Rust has no garbage collector)",
)
.of_kind(FieldKind::Flag);
/// `upload_rate`: how often profiles are uploaded.
pub const UPLOAD_RATE: FieldSpec = FieldSpec::text(
    "upload_rate",
    "write a positive duration such as 15s (the default)",
)
.of_kind(FieldKind::Duration(Bound::Positive))
.with_default("15s");

/// Pyroscope's profile types when none are given (the Go agent's cpu, inuse_* and alloc_*).
pub const DEFAULT_PROFILE_TYPES: &[ProfileType] =
    &[ProfileType::Cpu, ProfileType::Heap, ProfileType::Allocs];

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

impl FieldSet for PyroscopeApp {
    const FIELDS: &'static [FieldSpec] = &[
        APPLICATION_NAME,
        SERVER_ADDRESS,
        AUTH_TOKEN,
        BASIC_AUTH_USER,
        BASIC_AUTH_PASSWORD,
        TENANT_ID,
        DISABLE_GC_RUNS,
        UPLOAD_RATE,
        FieldSpec::PARAMETERS,
    ];
    const NAME: &'static str = "PyroscopeApp";

    fn get(&self, name: &str) -> Option<FieldRef<'_>> {
        fn text(value: &Option<String>) -> Option<FieldRef<'_>> {
            value.as_deref().map(FieldRef::Text)
        }
        match name {
            "application_name" => text(&self.application_name),
            "server_address" => text(&self.server_address),
            "auth_token" => text(&self.auth_token),
            "basic_auth_user" => text(&self.basic_auth_user),
            "basic_auth_password" => text(&self.basic_auth_password),
            "tenant_id" => text(&self.tenant_id),
            "disable_gc_runs" => self.disable_gc_runs.map(FieldRef::Flag),
            "upload_rate" => self.upload_rate.as_ref().map(FieldRef::Duration),
            "parameters" => self.parameters.as_ref().map(FieldRef::Parameters),
            _ => None,
        }
    }

    fn slot(&mut self, name: &str) -> Option<FieldSlot<'_>> {
        Some(match name {
            "application_name" => FieldSlot::Text(&mut self.application_name),
            "server_address" => FieldSlot::Text(&mut self.server_address),
            "auth_token" => FieldSlot::Text(&mut self.auth_token),
            "basic_auth_user" => FieldSlot::Text(&mut self.basic_auth_user),
            "basic_auth_password" => FieldSlot::Text(&mut self.basic_auth_password),
            "tenant_id" => FieldSlot::Text(&mut self.tenant_id),
            "disable_gc_runs" => FieldSlot::Flag(&mut self.disable_gc_runs),
            "upload_rate" => FieldSlot::Duration(&mut self.upload_rate),
            "parameters" => FieldSlot::Parameters(&mut self.parameters),
            _ => return None,
        })
    }
}

impl fmt::Debug for PyroscopeApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_fields(self, f)
    }
}

/// Decodes a pyroscope app object at `path`.
pub(crate) fn decode(d: &mut Decoder, node: &Node, path: &str) -> PyroscopeApp {
    decode_object(d, node, path)
}

impl PyroscopeApp {
    /// Appends the set fields to `map`, in canonical order.
    pub(crate) fn write_fields(&self, map: &mut Map<String, Value>) {
        write_fields(self, map);
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
    fields: PyroscopeApp::FIELDS,
};

/// The `pyroscope` child profiler of `profiling` (one of the Caddy module's).
pub const CHILD: ChildKind = ChildKind::of::<PyroscopeApp>(&SPEC, false);

impl ChildConfig for PyroscopeApp {
    const KIND: &'static ChildKind = &CHILD;
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn table_fits_the_config() {
        crate::fields::table::tests::check_table::<super::PyroscopeApp>();
    }

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
        assert_eq!(a.upload_rate, Some(crate::fields::Duration::Nanos(1000)));
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
