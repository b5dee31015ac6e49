//! What one sink samples: its parameters over those it inherits from `profiling`, with the
//! defaults.

use super::resolver::{Resolver, Summary};
use crate::fields::parameters::DEFAULT_CPU_HZ;
use crate::fields::{Parameters, ProfileType};

/// What one sink samples: its enabled profile types and rates, defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sampling {
    /// The enabled profile types, without duplicates, in [`ProfileType::ALL`] order.
    pub profile_types: Vec<ProfileType>,
    /// CPU samples per second (never 0).
    pub cpu_hz: u64,
    /// Go semantics: one sampled event per this many nanoseconds blocked; 0 = no samples.
    pub block_rate: u64,
    /// Go semantics: 1/N of contention events are sampled; 0 = no samples.
    pub mutex_fraction: u64,
}

impl Sampling {
    /// Whether `profile_type` is enabled.
    pub fn has(&self, profile_type: ProfileType) -> bool {
        self.profile_types.contains(&profile_type)
    }
}

/// Said once for every sink that wants block profiles without a rate.
static NO_BLOCK_SAMPLES: Summary = Summary {
    message: "block profiles will carry no samples: block_profile_rate is unset or 0",
    help: "set block_profile_rate (nanoseconds blocked per sampled event, e.g. 10000), or \
           remove block from profile_types",
};

/// Said once for every sink that wants mutex profiles without a fraction.
static NO_MUTEX_SAMPLES: Summary = Summary {
    message: "mutex profiles will carry no samples: mutex_profile_fraction is unset or 0",
    help: "set mutex_profile_fraction (1/N of contention events are sampled, e.g. 10), or \
           remove mutex from profile_types",
};

impl Resolver<'_> {
    /// The sink's parameters over the inherited ones, with the defaults.
    pub(crate) fn sampling(
        &mut self,
        own: Option<&Parameters>,
        inherited: Option<&Parameters>,
        default_types: &[ProfileType],
        path: &str,
    ) -> Sampling {
        let pick = |get: fn(&Parameters) -> Option<u64>| {
            own.and_then(get).or_else(|| inherited.and_then(get))
        };
        let types = own
            .and_then(|p| p.profile_types.as_deref())
            .or_else(|| inherited.and_then(|p| p.profile_types.as_deref()))
            .unwrap_or(default_types);
        let profile_types: Vec<ProfileType> = ProfileType::ALL
            .into_iter()
            .filter(|t| types.contains(t))
            .collect();
        let sampling = Sampling {
            cpu_hz: pick(|p| p.cpu_profile_rate)
                .filter(|&hz| hz > 0)
                .unwrap_or(DEFAULT_CPU_HZ),
            block_rate: pick(|p| p.block_profile_rate).unwrap_or(0),
            mutex_fraction: pick(|p| p.mutex_profile_fraction).unwrap_or(0),
            profile_types,
        };
        if sampling.has(ProfileType::Block) && sampling.block_rate == 0 {
            self.summarize(&NO_BLOCK_SAMPLES, path);
        }
        if sampling.has(ProfileType::Mutex) && sampling.mutex_fraction == 0 {
            self.summarize(&NO_MUTEX_SAMPLES, path);
        }
        sampling
    }
}
