//! How failed uploads are retried: exponential backoff with jitter.

use std::time::Duration;

/// How failed attempts are retried: exponential backoff with jitter, bounded in attempts and
/// in time.
///
/// ```
/// use std::time::Duration;
/// use caddyprof::runtime::upload::RetryPolicy;
///
/// let policy = RetryPolicy { jitter: 0.0, ..RetryPolicy::default() };
/// assert_eq!(policy.backoff(1), Duration::from_secs(1));
/// assert_eq!(policy.backoff(3), Duration::from_secs(4));
/// assert_eq!(policy.backoff(30), Duration::from_secs(30)); // capped
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait before the first retry.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// The factor applied to the wait after each retry.
    pub multiplier: u32,
    /// The relative spread of each wait: a wait `w` becomes uniform in `w × [1 − jitter,
    /// 1 + jitter]` (then capped at `max_backoff`). `0.0` disables jitter.
    pub jitter: f64,
    /// No retry starts later than this after the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// 12 attempts, 1 s doubling up to 30 s, ±20 % jitter, within 150 s: enough to carry a
    /// profile over a 60 s outage (attempts at about 0, 1, 3, 7, 15, 31, 61, 91, 121 s).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 12,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            multiplier: 2,
            jitter: 0.2,
            max_elapsed: Duration::from_secs(150),
        }
    }
}

impl RetryPolicy {
    /// A policy with short waits for tests: 8 attempts, 20 ms doubling up to 200 ms, no jitter,
    /// within 10 s.
    pub fn fast() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            multiplier: 2,
            jitter: 0.0,
            max_elapsed: Duration::from_secs(10),
        }
    }

    /// The wait before retry number `retry` (1 = the first retry), without jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = self
            .multiplier
            .max(1)
            .checked_pow(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// The wait before retry number `retry`, with jitter, at least `retry_after` (a server's
    /// `Retry-After`) but never more than `max_backoff`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let base = self.backoff(retry);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let jittered = if jitter > 0.0 {
            base.mul_f64(1.0 - jitter + 2.0 * jitter * fastrand::f64())
        } else {
            base
        };
        jittered
            .max(retry_after.unwrap_or_default())
            .min(self.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        let waits: Vec<u64> = (1..=7).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(p.backoff(100), Duration::from_secs(30));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(500))),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn jitter_stays_in_range() {
        let p = RetryPolicy::default();
        for _ in 0..200 {
            let d = p.delay(2, None);
            assert!(d >= Duration::from_millis(1600) && d <= Duration::from_millis(2400));
        }
    }

    #[test]
    fn default_policy_spans_a_minute_outage() {
        let p = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        let mut at = Duration::ZERO;
        let mut attempts = vec![at];
        for retry in 1..p.max_attempts {
            at += p.backoff(retry);
            if at > p.max_elapsed {
                break;
            }
            attempts.push(at);
        }
        assert!(attempts.iter().any(|&t| t > Duration::from_secs(60)));
    }
}
