//! The `file` child profiler, a caddyprof extension: writes pprof files to a local directory,
//! so no server is needed. Caddy cannot load a configuration that uses it.
//!
//! Its fields are provisional (`directory`, `interval`, `parameters`) until the runtime that
//! writes the files settles them.

use crate::adapt::reader::{Kind, ProfilerSpec};
use serde_json::{Map, Value};

use crate::config::decode::{Decoder, join};
use crate::config::json::Member;
use crate::config::{Duration, Parameters};

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// The `"profiler"` name of this extension.
pub const NAME: &str = "file";

/// The JSON field names of a file sink, in canonical order.
pub const FIELDS: &[&str] = &["directory", "interval", "parameters"];

/// The configuration of the local file sink. Every field is optional.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileSink {
    /// The directory the profiles are written into.
    pub directory: Option<String>,
    /// How often a profile is written. Always positive.
    pub interval: Option<Duration>,
    /// This profiler's own parameters.
    pub parameters: Option<Parameters>,
}

/// Decodes members already checked to be in [`FIELDS`].
pub(crate) fn decode_fields(d: &mut Decoder, members: &[&Member], parent: &str) -> FileSink {
    let mut sink = FileSink::default();
    for member in members {
        let path = join(parent, &member.key);
        let value = &member.value;
        match member.key.as_str() {
            "directory" => sink.directory = d.string(value, &path),
            "interval" => {
                sink.interval = d.duration(value, &path);
                if sink
                    .interval
                    .as_ref()
                    .and_then(Duration::as_nanos)
                    .is_some_and(|n| n <= 0)
                {
                    d.error(
                        &value.span,
                        format!("{path}: the interval must be greater than zero"),
                        "not positive",
                        "write a positive duration such as 15s",
                    );
                    sink.interval = None;
                }
            }
            "parameters" => sink.parameters = Some(Parameters::decode(d, value, &path)),
            _ => {}
        }
    }
    sink
}

impl FileSink {
    /// Appends the set fields to `map`, in canonical order.
    pub(crate) fn write_fields(&self, map: &mut Map<String, Value>) {
        if let Some(directory) = &self.directory {
            map.insert("directory".into(), directory.as_str().into());
        }
        if let Some(interval) = &self.interval {
            map.insert("interval".into(), interval.to_json());
        }
        if let Some(parameters) = &self.parameters {
            map.insert("parameters".into(), parameters.to_json());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Profilingfile reading
// ---------------------------------------------------------------------------------------------

/// What a `file` block may contain (besides the shared parameters); its argument is the
/// directory.
pub const SPEC: ProfilerSpec = ProfilerSpec {
    name: NAME,
    address_field: "directory",
    fields: &[
        ("directory", Kind::Text),
        ("interval", Kind::Duration { positive: true }),
    ],
};
