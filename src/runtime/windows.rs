//! Upload windows: consecutive spans of time of a fixed length, aligned like pyroscope-go's.

use std::time::{Duration, SystemTime};

/// Nanoseconds since the Unix epoch (0 before it), as `from`/`until` are sent.
pub fn unix_nanos(time: SystemTime) -> u128 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Consecutive upload windows of a fixed length, aligned to multiples of that length since the
/// Unix epoch, like pyroscope-go's (the first starts at the current time rounded down). Each
/// window's end is computed, not measured, so windows never drift (unlike the Go agent's CPU
/// windows, which slip to twice the rate).
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use caddyprof::runtime::windows::Windows;
///
/// let rate = Duration::from_secs(15);
/// let mut windows = Windows::new(UNIX_EPOCH + Duration::from_secs(1_000_007), rate);
/// let at = |s| UNIX_EPOCH + Duration::from_secs(s);
/// assert_eq!(windows.next_window(), (at(1_000_005), at(1_000_020)));
/// assert_eq!(windows.next_window(), (at(1_000_020), at(1_000_035)));
/// ```
#[derive(Clone, Debug)]
pub struct Windows {
    rate: Duration,
    next_start: SystemTime,
}

impl Windows {
    /// Windows of length `rate` (at least 1 ms) from the one containing `now`.
    pub fn new(now: SystemTime, rate: Duration) -> Self {
        let rate = rate.max(Duration::from_millis(1));
        let since = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let rem = since.as_nanos() % rate.as_nanos();
        let next_start = now - Duration::from_nanos(rem as u64);
        Windows { rate, next_start }
    }

    /// The window length.
    pub fn rate(&self) -> Duration {
        self.rate
    }

    /// The next window, `(start, end)`; the first may have started before now.
    pub fn next_window(&mut self) -> (SystemTime, SystemTime) {
        let start = self.next_start;
        self.next_start = start + self.rate;
        (start, self.next_start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_000_123);
        let mut w = Windows::new(t, Duration::from_secs(10));
        let (start, end) = w.next_window();
        assert_eq!(unix_nanos(start), 1_000_000_000_000_000);
        assert_eq!(unix_nanos(end), 1_000_010_000_000_000);
        assert_eq!(unix_nanos(w.next_window().1), 1_000_020_000_000_000);
    }
}
