//! The apps caddyprof runs: `profiling` (host of child profilers), `pyroscope`, `profefe`, and
//! the caddyprof extension profilers.
//!
//! Each app file holds, in sections: the app's configuration (typed fields, JSON decoding and
//! canonical output), and later its Profilingfile reading and its runtime.

#![warn(missing_docs)]

/// The apps caddyprof reads, in canonical order: the top-level keys of `"apps"` in JSON and
/// the names of the top-level blocks of a Profilingfile. The one list of them.
pub const NAMES: &[&str] = &["profiling", "pyroscope", "profefe"];

pub mod file;
pub mod profefe;
pub mod profiling;
pub mod pyroscope;

pub use file::FileSink;
pub use profefe::ProfefeApp;
pub use profiling::{ChildProfiler, ProfilingApp};
pub use pyroscope::PyroscopeApp;
