//! The `file` child profiler, a caddyprof extension: writes pprof files to a local directory,
//! so no server is needed. Caddy cannot load a configuration that uses it.
//!
//! Fields: `directory` (default `./profiles`), `interval` (default 15s), `keep` (how many files
//! of each profile type to keep, default 20, at least 1), `flamegraph` (also write an SVG flame
//! graph of each CPU window) and `parameters` (default types: `cpu` and `heap`). See [`crate::runtime::plan`] for the defaults as applied.

#[cfg(feature = "runtime")]
pub mod sink;

use crate::adapt::reader::{Kind, ProfilerSpec};
use serde_json::{Map, Value};

use crate::config::decode::{Decoder, join_into};
use crate::config::json::Member;
use crate::config::{Duration, Parameters};

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// The `"profiler"` name of this extension.
pub const NAME: &str = "file";

/// The JSON field names of a file sink, in canonical order.
pub const FIELDS: &[&str] = &["directory", "interval", "keep", "flamegraph", "parameters"];

/// The configuration of the local file sink. Every field is optional.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileSink {
    /// The directory the profiles are written into.
    pub directory: Option<String>,
    /// How often a profile is written. Always positive.
    pub interval: Option<Duration>,
    /// How many files of each profile type to keep (the oldest are deleted). At least 1.
    pub keep: Option<u64>,
    /// Whether to write an SVG flame graph of each CPU window beside its profile.
    pub flamegraph: Option<bool>,
    /// This profiler's own parameters.
    pub parameters: Option<Parameters>,
}

/// Decodes members already checked to be in [`FIELDS`].
pub(crate) fn decode_fields(d: &mut Decoder, members: &[&Member], parent: &str) -> FileSink {
    let mut sink = FileSink::default();
    let mut path_buffer = String::new();
    for member in members {
        let path = join_into(&mut path_buffer, parent, &member.key);
        let value = &member.value;
        match member.key.as_ref() {
            "directory" => sink.directory = d.string(value, path),
            "interval" => {
                sink.interval = d.duration(value, path);
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
            "keep" => {
                sink.keep = d.rate(value, path);
                if sink.keep == Some(0) {
                    d.error(
                        &value.span,
                        format!("{path}: must keep at least 1 file"),
                        "zero",
                        "write how many files of each profile type to keep, such as 20 (the \
                         default)",
                    );
                    sink.keep = None;
                }
            }
            "flamegraph" => sink.flamegraph = d.boolean(value, path),
            "parameters" => sink.parameters = Some(Parameters::decode(d, value, path)),
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
        if let Some(keep) = self.keep {
            map.insert("keep".into(), keep.into());
        }
        if let Some(flamegraph) = self.flamegraph {
            map.insert("flamegraph".into(), flamegraph.into());
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
        ("keep", Kind::Count),
        ("flamegraph", Kind::Flag),
    ],
};

#[cfg(test)]
mod tests {
    use crate::Config;
    use crate::apps::ChildProfiler;

    fn sink(fields: &str) -> Result<super::FileSink, String> {
        let text = format!(
            r#"{{"apps": {{"profiling": {{"profilers": [{{"profiler": "file"{fields}}}]}}}}}}"#
        );
        Config::from_json(&text)
            .map(|c| match c.profiling.unwrap().profilers.remove(0) {
                ChildProfiler::File(f) => f,
                other => panic!("not a file sink: {other:?}"),
            })
            .map_err(|e| e.diagnostics()[0].message().to_string())
    }

    #[test]
    fn keep() {
        assert_eq!(sink(r#", "keep": 3"#).unwrap().keep, Some(3));
        assert!(sink(r#", "keep": 0"#).unwrap_err().contains("at least 1"));
        assert!(sink(r#", "keep": -1"#).unwrap_err().contains("negative"));
        assert!(sink(r#", "keep": "3""#).unwrap_err().contains("integer"));
    }

    #[test]
    fn keep_in_a_profilingfile() {
        let json = crate::adapt("profiling {\n\tfile ./p {\n\t\tkeep 5\n\t}\n}\n").unwrap();
        assert_eq!(json["apps"]["profiling"]["profilers"][0]["keep"], 5);
        for bad in ["0", "x", "-2"] {
            let text = format!("profiling {{\n\tfile {{\n\t\tkeep {bad}\n\t}}\n}}\n");
            let error = crate::adapt(&text).unwrap_err().to_string();
            assert!(error.contains("keep"), "{bad}: {error}");
        }
    }
}
