//! The profiling parameters shared by every profiler: rates and enabled profile types.

use serde_json::{Map, Value};

use crate::fields::decode::{Decoder, join};
use crate::fields::json_reader::{Member, Node};
use crate::fields::profile_type::ProfileType;

/// The JSON field names of a parameters object, in canonical order.
pub const FIELDS: &[&str] = &[
    "cpu_profile_rate",
    "block_profile_rate",
    "mutex_profile_fraction",
    "profile_types",
];

/// The CPU sampling rate when `cpu_profile_rate` is unset or 0.
pub const DEFAULT_CPU_HZ: u64 = 100;

/// A `cpu_profile_rate` above this many Hz gets a warning: the sampling cost grows and the
/// kernel timer cannot deliver much more anyway.
pub const CPU_RATE_WARNING: u64 = 1000;

/// What is said of a `cpu_profile_rate` above [`CPU_RATE_WARNING`]: the message (to follow
/// the field's place), a label for the value and the help. The one warning of the JSON
/// decoder and the directive reader.
pub(crate) struct HighCpuRate {
    pub message: String,
    pub label: &'static str,
    pub help: &'static str,
}

/// The warning for `rate` as a `cpu_profile_rate`, if it is above [`CPU_RATE_WARNING`].
pub(crate) fn high_cpu_rate(rate: u64) -> Option<HighCpuRate> {
    (rate > CPU_RATE_WARNING).then(|| HighCpuRate {
        message: format!("{rate} Hz is an unusually high CPU sampling rate"),
        label: "samples per second",
        help: "100 Hz (the default) is usual and costs about 1% CPU; above 1000 Hz the overhead \
               grows and samples are mostly lost",
    })
}

/// Profiling parameters; every field is optional (unset means inherited or the default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parameters {
    /// CPU samples per second (Hz); unset or 0 means 100.
    pub cpu_profile_rate: Option<u64>,
    /// Go semantics: one sampled event per this many nanoseconds spent blocked; 0 disables.
    pub block_profile_rate: Option<u64>,
    /// Go semantics: on average 1/N of mutex contention events are reported; 0 disables.
    pub mutex_profile_fraction: Option<u64>,
    /// The enabled profile types; unset means the profiler's defaults.
    pub profile_types: Option<Vec<ProfileType>>,
}

impl Parameters {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Parameters::default()
    }

    /// Reads one member whose key is in [`FIELDS`] into `self`.
    pub(crate) fn read_field(&mut self, d: &mut Decoder, member: &Member, parent: &str) {
        let path = join(parent, &member.key);
        let value = &member.value;
        match member.key.as_ref() {
            "cpu_profile_rate" => {
                self.cpu_profile_rate = d.rate(value, &path);
                if let Some(warning) = self.cpu_profile_rate.and_then(high_cpu_rate) {
                    let message = format!("{path}: {}", warning.message);
                    d.warn(&value.span, message, warning.label, warning.help);
                }
            }
            "block_profile_rate" => self.block_profile_rate = d.rate(value, &path),
            "mutex_profile_fraction" => self.mutex_profile_fraction = d.rate(value, &path),
            "profile_types" => self.profile_types = d.profile_types(value, &path),
            _ => {}
        }
    }

    /// Decodes a whole `parameters` object.
    pub(crate) fn decode(d: &mut Decoder, node: &Node, path: &str) -> Self {
        let mut parameters = Parameters::default();
        for member in d.object(node, path, FIELDS) {
            parameters.read_field(d, member, path);
        }
        parameters
    }

    /// Appends the set fields to `map`, in canonical order.
    pub(crate) fn write_fields(&self, map: &mut Map<String, Value>) {
        let rates = [
            ("cpu_profile_rate", self.cpu_profile_rate),
            ("block_profile_rate", self.block_profile_rate),
            ("mutex_profile_fraction", self.mutex_profile_fraction),
        ];
        for (key, rate) in rates {
            if let Some(rate) = rate {
                map.insert(key.into(), rate.into());
            }
        }
        if let Some(types) = &self.profile_types {
            let names = types.iter().map(|t| Value::from(t.as_str())).collect();
            map.insert("profile_types".into(), Value::Array(names));
        }
    }

    /// The canonical JSON object.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        self.write_fields(&mut map);
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::parse_rate;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("0"), Ok(0));
        assert_eq!(parse_rate("100"), Ok(100));
        assert!(parse_rate("-1").unwrap_err().contains("negative"));
        assert!(parse_rate("1.5").unwrap_err().contains("whole number"));
        assert!(parse_rate("").is_err());
        assert!(parse_rate("+1").is_err());
        assert!(
            parse_rate("99999999999999999999")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn json_in_canonical_order() {
        let p = Parameters {
            profile_types: Some(vec![ProfileType::Cpu, ProfileType::Heap]),
            cpu_profile_rate: Some(100),
            ..Parameters::default()
        };
        assert_eq!(
            p.to_json().to_string(),
            r#"{"cpu_profile_rate":100,"profile_types":["cpu","heap"]}"#
        );
        assert!(Parameters::default().is_empty());
    }
}
