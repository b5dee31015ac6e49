//! The `file` child profiler, a caddyprof extension: writes pprof files to a local directory,
//! so no server is needed. Caddy cannot load a configuration that uses it.
//!
//! Fields: `directory` (default `./profiles`), `interval` (default 15s), `keep` (how many files
//! of each profile type to keep, default 20, at least 1), `flamegraph` (also write an SVG flame
//! graph of each CPU window) and `parameters` (default types: `cpu` and `heap`), declared in
//! its field table below.

#[cfg(feature = "runtime")]
pub mod settings;
#[cfg(feature = "runtime")]
pub mod sink;

use crate::apps::child::{ChildConfig, ChildKind};
use crate::fields::directive::ProfilerSpec;
use crate::fields::table::{FieldRef, FieldSlot};
use crate::fields::{Bound, Duration, FieldKind, FieldSet, FieldSpec, Parameters, ProfileType};

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// The `"profiler"` name of this extension.
pub const NAME: &str = "file";

/// `directory`: where the profiles are written, relative to the working directory.
pub const DIRECTORY: FieldSpec = FieldSpec::text(
    "directory",
    "write the directory to write the profiles into, such as ./profiles (the default)",
)
.with_default("./profiles");
/// `interval`: how often a profile of each type is written.
pub const INTERVAL: FieldSpec = FieldSpec::text(
    "interval",
    "write a positive duration such as 15s (the default)",
)
.of_kind(FieldKind::Duration(Bound::Positive))
.with_default("15s");
/// `keep`: how many files of each profile type are kept.
pub const KEEP: FieldSpec = FieldSpec::text(
    "keep",
    "write how many files of each profile type to keep, such as 20 (the default)",
)
.of_kind(FieldKind::Count)
.with_default("20");
/// `flamegraph`: whether an SVG flame graph of each CPU window is written too.
pub const FLAMEGRAPH: FieldSpec = FieldSpec::text(
    "flamegraph",
    "write true to also write an SVG flame graph of each CPU window",
)
.of_kind(FieldKind::Flag);

/// The file sink's profile types when none are given: memory without writing the same
/// allocation sample twice.
pub const DEFAULT_PROFILE_TYPES: &[ProfileType] = &[ProfileType::Cpu, ProfileType::Heap];

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

impl FieldSet for FileSink {
    const FIELDS: &'static [FieldSpec] =
        &[DIRECTORY, INTERVAL, KEEP, FLAMEGRAPH, FieldSpec::PARAMETERS];
    const NAME: &'static str = "FileSink";

    fn get(&self, name: &str) -> Option<FieldRef<'_>> {
        match name {
            "directory" => self.directory.as_deref().map(FieldRef::Text),
            "interval" => self.interval.as_ref().map(FieldRef::Duration),
            "keep" => self.keep.map(FieldRef::Count),
            "flamegraph" => self.flamegraph.map(FieldRef::Flag),
            "parameters" => self.parameters.as_ref().map(FieldRef::Parameters),
            _ => None,
        }
    }

    fn slot(&mut self, name: &str) -> Option<FieldSlot<'_>> {
        Some(match name {
            "directory" => FieldSlot::Text(&mut self.directory),
            "interval" => FieldSlot::Duration(&mut self.interval),
            "keep" => FieldSlot::Count(&mut self.keep),
            "flamegraph" => FieldSlot::Flag(&mut self.flamegraph),
            "parameters" => FieldSlot::Parameters(&mut self.parameters),
            _ => return None,
        })
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
    fields: FileSink::FIELDS,
};

/// The `file` child profiler of `profiling` (a caddyprof extension, which Caddy cannot load).
pub const CHILD: ChildKind = ChildKind::of::<FileSink>(&SPEC, true);

impl ChildConfig for FileSink {
    const KIND: &'static ChildKind = &CHILD;
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn table_fits_the_config() {
        crate::fields::table::tests::check_table::<super::FileSink>();
    }

    fn sink(fields: &str) -> Result<super::FileSink, String> {
        let text = format!(
            r#"{{"apps": {{"profiling": {{"profilers": [{{"profiler": "file"{fields}}}]}}}}}}"#
        );
        Config::from_json(&text)
            .map(|c| {
                let child = c.profiling.unwrap().profilers.remove(0);
                child.get::<super::FileSink>().expect("a file sink").clone()
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
