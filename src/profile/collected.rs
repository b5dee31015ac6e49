//! A collected profile: what a collector hands to the sinks.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::fields::ProfileType;

/// One finished profile, ready to upload: a gzip-compressed pprof message and the window it
/// covers.
#[derive(Clone, Debug)]
pub struct Profile {
    /// What the profile measures.
    pub profile_type: ProfileType,
    /// The start of the window (pprof `time_nanos`).
    pub start: SystemTime,
    /// The length of the window (pprof `duration_nanos`).
    pub duration: Duration,
    /// The gzip-compressed pprof `Profile` message, shared by every sink that sends it.
    pub pprof_gz: Arc<[u8]>,
}

impl Profile {
    /// The end of the window.
    pub fn end(&self) -> SystemTime {
        self.start + self.duration
    }
}
