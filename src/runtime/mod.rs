//! The runtime: runs a [`Config`](crate::Config) inside the process. Collectors sample the
//! process and produce [`Profile`]s; each app's sink pushes them to its server on its own
//! schedule.
//!
//! [`Profile`] itself is defined in [`crate::profile`], below the collectors.

pub mod host;
pub mod own_usage;
pub mod plan;
pub mod shutdown;
pub mod sink;
pub mod sources;
pub mod upload;
pub mod windows;

pub use host::{
    RepeatedError, Running, SinkReport, missing_reports, start, start_file, start_with,
};
pub use own_usage::OwnUsage;

// Collected profiles live with the pprof model, below the collectors; the runtime passes them on.
pub use crate::profile::Profile;
