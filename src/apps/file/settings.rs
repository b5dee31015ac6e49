//! The file sink's resolved settings: its fields resolved for the runtime, and how to start
//! it.

use std::path::PathBuf;
use std::time::Duration;

use super::FileSink;
use crate::fields::Parameters;
use crate::runtime::plan::resolver::Resolver;
use crate::runtime::plan::sampling::Sampling;
use crate::runtime::sink::ResolveSink;

/// A resolved file sink (a caddyprof extension).
#[derive(Clone, Debug, PartialEq)]
pub struct FileSettings {
    /// The JSON path of its configuration.
    pub path: String,
    /// The directory the profiles are written into (created when needed).
    pub directory: PathBuf,
    /// How often a profile of each type is written (positive).
    pub interval: Duration,
    /// How many files of each profile type are kept (at least 1).
    pub keep: usize,
    /// Whether an SVG flame graph of each CPU window is written too.
    pub flamegraph: bool,
    /// What to sample.
    pub sampling: Sampling,
}

impl ResolveSink for FileSink {
    type Settings = FileSettings;

    /// Resolves a file sink (a child of `profiling` inheriting its parameters) at `path`
    /// into its settings; `None` when anything is refused.
    fn resolve(
        &self,
        r: &mut Resolver,
        inherited: Option<&Parameters>,
        path: String,
    ) -> Option<FileSettings> {
        let sink = self;
        let refused_before = r.refused();
        let directory = r
            .string(&sink.directory, &path, &super::DIRECTORY)
            .or_else(|| super::DIRECTORY.default.map(str::to_owned))
            .unwrap_or_default();
        let interval = r
            .duration(&sink.interval, &path, &super::INTERVAL)
            .unwrap_or_default();
        let keep = sink
            .keep
            .or_else(|| super::KEEP.default_count())
            .unwrap_or(1);
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        let sampling = r.sampling(
            sink.parameters.as_ref(),
            inherited,
            super::DEFAULT_PROFILE_TYPES,
            &path,
        );
        (r.refused() == refused_before).then(|| FileSettings {
            path,
            directory: PathBuf::from(directory),
            interval,
            keep,
            flamegraph: sink.flamegraph.unwrap_or(false),
            sampling,
        })
    }
}
