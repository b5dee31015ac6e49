//! The apps caddyprof runs: `profiling` (host of child profilers), `pyroscope`, `profefe`, and
//! the caddyprof extension profilers.
//!
//! Each app's folder holds its configuration in `mod.rs`: the typed config, its field table
//! ([`crate::fields::FieldSpec`]s, which drive its JSON decoding and writing and its
//! Profilingfile block), and for a sink its runtime half: `settings.rs` (its fields resolved
//! for the runtime) and `sink.rs` (how it sends or writes a profile, behind the
//! [`Sink`](crate::runtime::sink::Sink) trait).

#![warn(missing_docs)]

/// The apps caddyprof reads, in canonical order: the top-level keys of `"apps"` in JSON and
/// the names of the top-level blocks of a Profilingfile. The one list of them.
pub const NAMES: &[&str] = &["profiling", "pyroscope", "profefe"];

pub mod child;
pub mod file;
pub mod profefe;
pub mod profiling;
pub mod pyroscope;

pub use child::ChildProfiler;
pub use file::FileSink;
pub use profefe::ProfefeApp;
pub use profiling::ProfilingApp;
pub use pyroscope::PyroscopeApp;
