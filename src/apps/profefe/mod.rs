//! The `profefe` app: pushes profiles to a profefe collector. Usable as a top-level app or as
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

/// `address`: the collector.
pub const ADDRESS: FieldSpec = FieldSpec::text(
    "address",
    "write the profefe collector's URL, such as http://profefe:10100",
)
.of_kind(FieldKind::Url)
.with_default("http://localhost:10100");
/// `service`: unset means the executable's file name.
pub const SERVICE: FieldSpec = FieldSpec::text(
    "service",
    "write the service name profefe files the profiles under",
);
/// `timeout`: of each upload; 0 means none.
pub const TIMEOUT: FieldSpec = FieldSpec::text(
    "timeout",
    "write a positive duration such as 10s, or 0 for no timeout",
)
.of_kind(FieldKind::Duration(Bound::NonNegative))
.with_default("30s");

/// profefe's profile types when none are given.
pub const DEFAULT_PROFILE_TYPES: &[ProfileType] = &[ProfileType::Cpu];

/// How often profiles are uploaded to profefe: it has no setting for it (the Go module's
/// fixed 15 s).
pub const UPLOAD_RATE: std::time::Duration = std::time::Duration::from_secs(15);

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

impl FieldSet for ProfefeApp {
    const FIELDS: &'static [FieldSpec] = &[ADDRESS, SERVICE, TIMEOUT, FieldSpec::PARAMETERS];
    const NAME: &'static str = "ProfefeApp";

    fn get(&self, name: &str) -> Option<FieldRef<'_>> {
        match name {
            "address" => self.address.as_deref().map(FieldRef::Text),
            "service" => self.service.as_deref().map(FieldRef::Text),
            "timeout" => self.timeout.as_ref().map(FieldRef::Duration),
            "parameters" => self.parameters.as_ref().map(FieldRef::Parameters),
            _ => None,
        }
    }

    fn slot(&mut self, name: &str) -> Option<FieldSlot<'_>> {
        Some(match name {
            "address" => FieldSlot::Text(&mut self.address),
            "service" => FieldSlot::Text(&mut self.service),
            "timeout" => FieldSlot::Duration(&mut self.timeout),
            "parameters" => FieldSlot::Parameters(&mut self.parameters),
            _ => return None,
        })
    }
}

impl fmt::Debug for ProfefeApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_fields(self, f)
    }
}

/// Decodes a profefe app object at `path`.
pub(crate) fn decode(d: &mut Decoder, node: &Node, path: &str) -> ProfefeApp {
    decode_object(d, node, path)
}

impl ProfefeApp {
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

/// What a `profefe` block may contain (besides the shared parameters).
pub const SPEC: ProfilerSpec = ProfilerSpec {
    name: "profefe",
    address_field: "address",
    fields: ProfefeApp::FIELDS,
};

/// The `profefe` child profiler of `profiling` (one of the Caddy module's).
pub const CHILD: ChildKind = ChildKind::of::<ProfefeApp>(&SPEC, false);

impl ChildConfig for ProfefeApp {
    const KIND: &'static ChildKind = &CHILD;
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn table_fits_the_config() {
        crate::fields::table::tests::check_table::<super::ProfefeApp>();
    }

    fn app(fields: &str) -> Result<super::ProfefeApp, String> {
        Config::from_json(&format!(r#"{{"apps": {{"profefe": {{{fields}}}}}}}"#))
            .map(|c| c.profefe.unwrap())
            .map_err(|e| e.diagnostics()[0].message().to_string())
    }

    #[test]
    fn timeout() {
        assert_eq!(
            app(r#""timeout": 0"#).unwrap().timeout,
            Some(crate::fields::Duration::Nanos(0))
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
