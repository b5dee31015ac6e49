//! What caddyprof's own work allocates, as the program's allocator sees it: said at info
//! every [`OWN_USAGE_INTERVAL`] while the runtime runs, and at the stop (with
//! [`SinkReport::own_usage`](super::SinkReport::own_usage)). The counts come from
//! [`allocator::own_allocations`] and exist only where [`allocator::Sampled`] is the global
//! allocator; its module docs say what they count.

use std::fmt;
use std::time::{Duration, Instant};

use crate::allocator::{self, OwnAllocations};

/// How often the runtime says what caddyprof itself uses.
pub const OWN_USAGE_INTERVAL: Duration = Duration::from_secs(300);

/// caddyprof's own allocations over a stretch of time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OwnUsage {
    /// What caddyprof holds at the end of the stretch (bytes its work allocated less bytes
    /// it freed, since the process started; see [`OwnAllocations::in_use_bytes`]).
    pub in_use_bytes: u64,
    /// Allocations its work made in the stretch.
    pub allocations: u64,
    /// Bytes they allocated.
    pub allocated_bytes: u64,
    /// The length of the stretch.
    pub elapsed: Duration,
}

impl OwnUsage {
    /// Allocations per second over the stretch.
    pub fn allocations_per_second(&self) -> f64 {
        self.allocations as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for OwnUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "caddyprof itself: {:.1} MiB in use, {:.0} allocations/s",
            self.in_use_bytes as f64 / (1024.0 * 1024.0),
            self.allocations_per_second()
        )
    }
}

/// Where a stretch of time began: the counts then, and when.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OwnMark {
    counts: OwnAllocations,
    at: Instant,
}

impl OwnMark {
    /// Now, or `None` without the sampling allocator (nothing is counted).
    pub(crate) fn now() -> Option<OwnMark> {
        allocator::is_installed().then(|| OwnMark {
            counts: allocator::own_allocations(),
            at: Instant::now(),
        })
    }

    /// The usage from this mark to now.
    pub(crate) fn usage(&self) -> OwnUsage {
        let counts = allocator::own_allocations();
        OwnUsage {
            in_use_bytes: counts.in_use_bytes(),
            allocations: counts.allocations.saturating_sub(self.counts.allocations),
            allocated_bytes: counts
                .allocated_bytes
                .saturating_sub(self.counts.allocated_bytes),
            elapsed: self.at.elapsed(),
        }
    }
}

/// Says what caddyprof used in each [`OWN_USAGE_INTERVAL`], for ever (a task of the
/// runtime, which ends with it).
pub(crate) async fn log_own_usage() {
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + OWN_USAGE_INTERVAL,
        OWN_USAGE_INTERVAL,
    );
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let Some(mark) = OwnMark::now() else {
            return;
        };
        ticks.tick().await;
        tracing::info!("{}", mark.usage());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_mib_in_use_and_allocations_per_second() {
        let usage = OwnUsage {
            in_use_bytes: 3 * 1024 * 1024 + 512 * 1024,
            allocations: 1500,
            allocated_bytes: 1 << 20,
            elapsed: Duration::from_secs(300),
        };
        assert_eq!(
            usage.to_string(),
            "caddyprof itself: 3.5 MiB in use, 5 allocations/s"
        );
    }
}
