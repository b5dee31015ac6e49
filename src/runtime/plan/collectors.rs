//! What the collectors must sample: the merge of what every sink asks for.

use std::sync::Arc;

use crate::fields::ProfileType;
use crate::runtime::sink::SinkSettings;

/// What the collectors must sample, across every sink.
///
/// `heap` and `allocs` come from one allocation sampler ([`Collectors::memory`]), so asking
/// for both never samples twice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Collectors {
    /// The highest CPU rate any sink with `cpu` asks for; `None` when no sink wants `cpu`.
    pub cpu_hz: Option<u64>,
    /// Whether any sink wants `heap` or `allocs`.
    pub memory: bool,
    /// Whether any sink wants `heap`.
    pub heap: bool,
    /// Whether any sink wants `allocs`.
    pub allocs: bool,
    /// Whether any sink wants `goroutine`.
    pub goroutine: bool,
    /// Whether any sink wants `threadcreate`.
    pub threadcreate: bool,
    /// Whether any sink wants `block`.
    pub block: bool,
    /// The finest (smallest non-zero) block rate among sinks with `block`; 0 = no samples.
    pub block_rate: u64,
    /// Whether any sink wants `mutex`.
    pub mutex: bool,
    /// The finest (smallest non-zero) mutex fraction among sinks with `mutex`; 0 = no samples.
    pub mutex_fraction: u64,
}

impl Collectors {
    /// Merges what the sinks ask for.
    pub(super) fn merge(sinks: &[Arc<dyn SinkSettings>]) -> Collectors {
        let mut c = Collectors::default();
        let finest = |current: u64, rate: u64| match (current, rate) {
            (0, rate) => rate,
            (current, 0) => current,
            (current, rate) => current.min(rate),
        };
        for sink in sinks {
            let s = sink.sampling();
            for &t in &s.profile_types {
                match t {
                    ProfileType::Cpu => c.cpu_hz = Some(c.cpu_hz.unwrap_or(0).max(s.cpu_hz)),
                    ProfileType::Heap => c.heap = true,
                    ProfileType::Allocs => c.allocs = true,
                    ProfileType::Goroutine => c.goroutine = true,
                    ProfileType::ThreadCreate => c.threadcreate = true,
                    ProfileType::Block => {
                        c.block = true;
                        c.block_rate = finest(c.block_rate, s.block_rate);
                    }
                    ProfileType::Mutex => {
                        c.mutex = true;
                        c.mutex_fraction = finest(c.mutex_fraction, s.mutex_fraction);
                    }
                }
            }
        }
        c.memory = c.heap || c.allocs;
        c
    }
}
