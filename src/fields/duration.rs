//! Durations as Caddy reads them: a Go duration string (`300ms`, `1.5h`, `2h45m`, plus Caddy's
//! `d` for 24h) or an integer of nanoseconds. The original form is kept for output.

use std::fmt;

/// A duration from the configuration, kept in the form it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Duration {
    /// A duration string such as `10s`, kept as written, with its value in nanoseconds.
    Text {
        /// The string as written.
        text: String,
        /// Its value in nanoseconds (may be negative, as in Go).
        nanos: i64,
    },
    /// An integer number of nanoseconds, as JSON also allows.
    Nanos(i64),
    /// A string holding a runtime placeholder such as `{env.UPLOAD_RATE}`: kept verbatim,
    /// parsed and validated when the configuration is run.
    Placeholder(String),
}

/// Nanoseconds per unit, longest unit names first where one is a prefix of another.
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000), // U+00B5 micro sign
    ("μs", 1_000), // U+03BC Greek small letter mu
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

/// The help line for a bad duration.
pub const DURATION_HELP: &str =
    "write a duration such as 300ms, 10s, 1.5h, 2h45m or 1d (units: ns, us, ms, s, m, h, d)";

impl Duration {
    /// Parses a duration string with Caddy's rules (Go's `time.ParseDuration` plus `d`).
    /// A string with a placeholder (`{env.X}`) is kept as [`Duration::Placeholder`].
    ///
    /// ```
    /// use caddyprof::config::duration::Duration;
    /// assert_eq!(Duration::parse("2h45m").unwrap().as_nanos(), Some(9_900_000_000_000));
    /// assert!(Duration::parse("10 s").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, String> {
        if super::has_placeholder(text) {
            return Ok(Duration::Placeholder(text.to_string()));
        }
        parse_go(text).map(|nanos| Duration::Text {
            text: text.to_string(),
            nanos,
        })
    }

    /// What [`parse`](Self::parse) then [`as_nanos`](Self::as_nanos) give, without keeping
    /// the text (for checking a value only).
    pub(crate) fn parse_nanos(text: &str) -> Result<Option<i64>, String> {
        if super::has_placeholder(text) {
            return Ok(None);
        }
        parse_go(text).map(Some)
    }

    /// The value in nanoseconds, or `None` for a placeholder not yet resolved.
    pub fn as_nanos(&self) -> Option<i64> {
        match self {
            Duration::Text { nanos, .. } | Duration::Nanos(nanos) => Some(*nanos),
            Duration::Placeholder(_) => None,
        }
    }

    /// The value as a [`std::time::Duration`], or `None` for a placeholder or a negative value.
    pub fn to_std(&self) -> Option<std::time::Duration> {
        let nanos = u64::try_from(self.as_nanos()?).ok()?;
        Some(std::time::Duration::from_nanos(nanos))
    }

    /// The canonical JSON: the string as written, or the integer of nanoseconds.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Duration::Text { text, .. } | Duration::Placeholder(text) => text.as_str().into(),
            Duration::Nanos(nanos) => (*nanos).into(),
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Duration::Text { text, .. } | Duration::Placeholder(text) => f.write_str(text),
            Duration::Nanos(nanos) => write!(f, "{nanos}ns"),
        }
    }
}

/// Go's `time.ParseDuration`, with Caddy's extra `d` unit.
fn parse_go(text: &str) -> Result<i64, String> {
    if text.is_empty() {
        return Err("empty duration".to_string());
    }
    if text.len() > 1024 {
        return Err("duration is too long".to_string());
    }
    let (negative, mut rest) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(format!("invalid duration '{text}'"));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        // The number: digits, optionally a fraction.
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(after) => {
                let len = after.bytes().take_while(u8::is_ascii_digit).count();
                after.split_at(len)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(format!("invalid duration '{text}': expected a number"));
        }
        // The unit: everything up to the next number.
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!(
                "missing unit in duration '{text}' (a bare number is only allowed as 0)"
            ));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!("unknown unit '{unit}' in duration '{text}'"));
        };
        let overflow = || format!("duration '{text}' is out of range");
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| overflow())?
        };
        let mut value = int.checked_mul(scale).ok_or_else(overflow)?;
        // The fraction, truncated to nanoseconds like Go (digits beyond 30 cannot matter).
        let frac_digits = &frac_part[..frac_part.len().min(30)];
        if !frac_digits.is_empty() {
            let frac: u128 = frac_digits.parse().map_err(|_| overflow())?;
            let den = 10u128.pow(frac_digits.len() as u32);
            value = value
                .checked_add(frac.checked_mul(scale).ok_or_else(overflow)? / den)
                .ok_or_else(overflow)?;
        }
        total = total.checked_add(value).ok_or_else(overflow)?;
        if total > 1 << 63 {
            return Err(overflow());
        }
        rest = after;
    }
    if negative {
        Ok((-(total as i128)) as i64)
    } else {
        i64::try_from(total).map_err(|_| format!("duration '{text}' is out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(text: &str) -> i64 {
        Duration::parse(text).unwrap().as_nanos().unwrap()
    }

    #[test]
    fn go_syntax() {
        assert_eq!(nanos("300ms"), 300_000_000);
        assert_eq!(nanos("1.5h"), 5_400_000_000_000);
        assert_eq!(nanos("2h45m"), 9_900_000_000_000);
        assert_eq!(nanos("1d"), 86_400_000_000_000);
        assert_eq!(nanos("1.5d"), 129_600_000_000_000);
        assert_eq!(nanos("0"), 0);
        assert_eq!(nanos("-1s"), -1_000_000_000);
        assert_eq!(nanos("+.5s"), 500_000_000);
        assert_eq!(nanos("1.s"), 1_000_000_000);
        assert_eq!(nanos("10µs"), 10_000);
        assert_eq!(nanos("10μs"), 10_000);
        assert_eq!(nanos("1us1ns"), 1_001);
        assert_eq!(nanos("0.0000000011s"), 1);
        assert_eq!(nanos("-9223372036854775808ns"), i64::MIN);
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "-",
            "1",
            "10",
            "s",
            ".s",
            "10 s",
            "1x",
            "1hh",
            "1.2.3s",
            " 1s",
            "1s ",
            "9223372036854775808ns",
            "99999999999999999999999h",
            "١s",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Duration::parse("1").unwrap_err().contains("missing unit"));
        assert!(
            Duration::parse("1x")
                .unwrap_err()
                .contains("unknown unit 'x'")
        );
    }

    #[test]
    fn placeholders_and_output() {
        let d = Duration::parse("{env.RATE}").unwrap();
        assert_eq!(d, Duration::Placeholder("{env.RATE}".into()));
        assert_eq!(d.as_nanos(), None);
        assert_eq!(d.to_json(), serde_json::json!("{env.RATE}"));
        assert_eq!(Duration::Nanos(5).to_json(), serde_json::json!(5));
        let d = Duration::parse("1m30s").unwrap();
        assert_eq!(d.to_json(), serde_json::json!("1m30s"));
        assert_eq!(d.to_std(), Some(std::time::Duration::from_secs(90)));
        assert_eq!(Duration::Nanos(-1).to_std(), None);
    }
}
