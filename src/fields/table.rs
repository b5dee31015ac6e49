//! Field tables: each app declares its fields once, as a list of [`FieldSpec`]s (name, kind
//! with its bounds, secret or not, default, help), and implements [`FieldSet`] to say where
//! each value is kept. The JSON decoder (`decode_fields`, below), the JSON writer
//! ([`write_fields`]), `Debug` ([`debug_fields`]), the Profilingfile reader
//! ([`crate::fields::directive`]) and the runtime's resolution all read the same table, so a
//! rule (an upload rate above zero, a count of at least 1, a secret never printed) has one
//! check and one message.

use std::fmt;

use std::ops::Range;

use serde_json::{Map, Value};
use smallvec::SmallVec;

use crate::fields::decode::{Decoder, join_into};
use crate::fields::json_reader::{Member, Node};
use crate::fields::{Duration, Parameters};

/// The kind of value a field takes, with its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// One string, kept as written.
    Text,
    /// One http(s) URL.
    Url,
    /// One duration, within its bound.
    Duration(Bound),
    /// A flag: `true` or `false` (in a Profilingfile, no argument means true).
    Flag,
    /// A whole number of at least 1 (a count, such as how many files to keep).
    Count,
    /// The profiling parameters shared by every profiler (an object in JSON, directives or a
    /// `parameters { … }` block in a Profilingfile).
    Parameters,
}

/// The allowed range of a duration field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// Zero or more (zero often meaning "none", such as no timeout).
    NonNegative,
    /// More than zero.
    Positive,
}

/// One field of an app: everything the readers, the writer and the runtime need to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    /// The field's name: its JSON key and its Profilingfile directive.
    pub name: &'static str,
    /// The kind of value it takes, with its bounds.
    pub kind: FieldKind,
    /// Whether the value is a secret: never printed (shown as `[redacted]`), never quoted in a
    /// message, and `{…}` in it is not warned about.
    pub secret: bool,
    /// The value used when the field is unset, as it would be written in a config; `None`
    /// when there is none (the field is optional) or it is not a constant (the executable's
    /// name).
    pub default: Option<&'static str>,
    /// How to write the field: the fix offered when its value is wrong.
    pub help: &'static str,
}

impl FieldSpec {
    /// A text field with no default, not secret.
    pub const fn text(name: &'static str, help: &'static str) -> FieldSpec {
        FieldSpec {
            name,
            kind: FieldKind::Text,
            secret: false,
            default: None,
            help,
        }
    }

    /// The same field, secret.
    pub const fn secret(self) -> FieldSpec {
        FieldSpec {
            secret: true,
            ..self
        }
    }

    /// The same field, of `kind`.
    pub const fn of_kind(self, kind: FieldKind) -> FieldSpec {
        FieldSpec { kind, ..self }
    }

    /// The same field, with `default` as it would be written in a config.
    pub const fn with_default(self, default: &'static str) -> FieldSpec {
        FieldSpec {
            default: Some(default),
            ..self
        }
    }

    /// The `parameters` field every profiler has.
    pub const PARAMETERS: FieldSpec = FieldSpec::text(
        "parameters",
        "write the profiler's own parameters (cpu_profile_rate, profile_types, …)",
    )
    .of_kind(FieldKind::Parameters);

    /// What is wrong with `value` for this field's bound, if anything: the one check and the
    /// one message (without the place, which each reader puts first) of every duration bound.
    pub fn out_of_bounds(&self, value: &Duration) -> Option<Refusal> {
        self.nanos_out_of_bounds(value.as_nanos()?, value)
    }

    /// [`out_of_bounds`](Self::out_of_bounds) for a duration of `nanos`, written `written`.
    pub fn nanos_out_of_bounds(&self, nanos: i64, written: &dyn fmt::Display) -> Option<Refusal> {
        let FieldKind::Duration(bound) = self.kind else {
            return None;
        };
        let (what, label) = match bound {
            Bound::Positive if nanos <= 0 => ("must be greater than zero", "not positive"),
            Bound::NonNegative if nanos < 0 => ("must not be negative", "negative"),
            _ => return None,
        };
        Some(Refusal {
            message: format!("{what} (found {written})"),
            label,
        })
    }

    /// What is wrong with `count` for a [`FieldKind::Count`] field, if anything.
    pub fn count_out_of_bounds(&self, count: u64) -> Option<Refusal> {
        (self.kind == FieldKind::Count && count == 0).then(|| Refusal {
            message: "must be at least 1 (found 0)".to_owned(),
            label: "zero",
        })
    }

    /// The default as a duration, for a duration field that has one.
    pub fn default_duration(&self) -> Option<std::time::Duration> {
        Duration::parse(self.default?).ok()?.to_std()
    }

    /// The default as a count, for a count field that has one.
    pub fn default_count(&self) -> Option<u64> {
        self.default?.parse().ok()
    }
}

/// Why a value is refused: the message (to follow the field's place) and a short label for
/// the value. The help is the field's [`FieldSpec::help`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong, such as `must be greater than zero (found 0s)`.
    pub message: String,
    /// A label for the value, such as `not positive`.
    pub label: &'static str,
}

/// The value of a set field, borrowed from where its config keeps it.
#[derive(Clone, Copy, Debug)]
pub enum FieldRef<'a> {
    /// A [`FieldKind::Text`] or [`FieldKind::Url`] value.
    Text(&'a str),
    /// A [`FieldKind::Duration`] value.
    Duration(&'a Duration),
    /// A [`FieldKind::Flag`] value.
    Flag(bool),
    /// A [`FieldKind::Count`] value.
    Count(u64),
    /// The [`FieldKind::Parameters`] value.
    Parameters(&'a Parameters),
}

/// Where a config keeps the value of one field, to be set by a reader.
#[derive(Debug)]
pub enum FieldSlot<'a> {
    /// A [`FieldKind::Text`] or [`FieldKind::Url`] value.
    Text(&'a mut Option<String>),
    /// A [`FieldKind::Duration`] value.
    Duration(&'a mut Option<Duration>),
    /// A [`FieldKind::Flag`] value.
    Flag(&'a mut Option<bool>),
    /// A [`FieldKind::Count`] value.
    Count(&'a mut Option<u64>),
    /// The [`FieldKind::Parameters`] value.
    Parameters(&'a mut Option<Parameters>),
}

/// A config made of the fields of a table: where each field's value is kept.
pub trait FieldSet: Default {
    /// The fields, in canonical order (the order the JSON writer writes them in).
    const FIELDS: &'static [FieldSpec];
    /// The name in `Debug` output.
    const NAME: &'static str;

    /// The value of the field named `name`, when set.
    fn get(&self, name: &str) -> Option<FieldRef<'_>>;

    /// Where the field named `name` is kept (`None` for a name not in [`Self::FIELDS`]).
    fn slot(&mut self, name: &str) -> Option<FieldSlot<'_>>;
}

/// Appends the set fields of `set` to `map`, in canonical order.
pub fn write_fields<S: FieldSet>(set: &S, map: &mut Map<String, Value>) {
    for field in S::FIELDS {
        let Some(value) = set.get(field.name) else {
            continue;
        };
        let json = match value {
            FieldRef::Text(text) => text.into(),
            FieldRef::Duration(duration) => duration.to_json(),
            FieldRef::Flag(flag) => flag.into(),
            FieldRef::Count(count) => count.into(),
            FieldRef::Parameters(parameters) => parameters.to_json(),
        };
        map.insert(field.name.into(), json);
    }
}

/// `Debug` of `set`: every field, secrets as `[redacted]` and URLs without their userinfo.
pub fn debug_fields<S: FieldSet>(set: &S, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let mut out = f.debug_struct(S::NAME);
    for field in S::FIELDS {
        match (set.get(field.name), field.kind) {
            (None, _) => out.field(field.name, &None::<()>),
            (Some(FieldRef::Text(_)), _) if field.secret => out.field(
                field.name,
                &Some(format_args!("{}", crate::redact::REDACTED)),
            ),
            (Some(FieldRef::Text(url)), FieldKind::Url) => {
                out.field(field.name, &Some(crate::redact::url(url)))
            }
            (Some(value), _) => out.field(field.name, &Some(value)),
        };
    }
    out.finish()
}

impl Decoder {
    /// Decodes `node`, the value of `field` at `path`, into `slot`: with its kind's checks
    /// and bounds, the one message of each (see [`FieldSpec`]). A wrong value leaves the
    /// slot unset.
    pub fn field(&mut self, field: &FieldSpec, slot: FieldSlot, node: &Node, path: &str) {
        match slot {
            FieldSlot::Text(slot) if field.kind == FieldKind::Url => *slot = self.url(node, path),
            FieldSlot::Text(slot) => *slot = self.string(node, path),
            FieldSlot::Flag(slot) => *slot = self.boolean(node, path),
            FieldSlot::Parameters(slot) => *slot = Some(Parameters::decode(self, node, path)),
            FieldSlot::Duration(slot) => {
                *slot = self.duration(node, path).and_then(|duration| {
                    match field.out_of_bounds(&duration) {
                        Some(refusal) => {
                            self.refuse(field, &node.span, path, refusal);
                            None
                        }
                        None => Some(duration),
                    }
                });
            }
            FieldSlot::Count(slot) => {
                *slot = self.rate(node, path).and_then(|count| {
                    match field.count_out_of_bounds(count) {
                        Some(refusal) => {
                            self.refuse(field, &node.span, path, refusal);
                            None
                        }
                        None => Some(count),
                    }
                });
            }
        }
    }

    fn refuse(&mut self, field: &FieldSpec, span: &Range<usize>, path: &str, refusal: Refusal) {
        let message = format!("{path}: {}", refusal.message);
        self.error(span, message, refusal.label, field.help);
    }
}

/// Decodes the object `node` at `path` into a config of fields `S`, strictly.
pub(crate) fn decode_object<S: FieldSet>(d: &mut Decoder, node: &Node, path: &str) -> S {
    let names: SmallVec<[&str; 16]> = S::FIELDS.iter().map(|field| field.name).collect();
    let members = d.object(node, path, &names);
    decode_fields(d, &members, path)
}

/// Decodes members already checked to be among the fields of `S`.
pub(crate) fn decode_fields<S: FieldSet>(d: &mut Decoder, members: &[&Member], parent: &str) -> S {
    let mut set = S::default();
    let mut path_buffer = String::new();
    for member in members {
        let Some(field) = S::FIELDS.iter().find(|field| field.name == member.key) else {
            continue;
        };
        let path = join_into(&mut path_buffer, parent, &member.key);
        if let Some(slot) = set.slot(field.name) {
            d.field(field, slot, &member.value, path);
        }
    }
    set
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Checks a table against its config: every field has a slot of its kind, defaults are
    /// valid values of the field, and no name is repeated.
    pub(crate) fn check_table<S: FieldSet>() {
        let mut set = S::default();
        for (i, field) in S::FIELDS.iter().enumerate() {
            assert!(
                !S::FIELDS[..i].iter().any(|f| f.name == field.name),
                "{} is listed twice",
                field.name
            );
            let slot = set.slot(field.name);
            let fits = matches!(
                (field.kind, &slot),
                (FieldKind::Text | FieldKind::Url, Some(FieldSlot::Text(_)))
                    | (FieldKind::Duration(_), Some(FieldSlot::Duration(_)))
                    | (FieldKind::Flag, Some(FieldSlot::Flag(_)))
                    | (FieldKind::Count, Some(FieldSlot::Count(_)))
                    | (FieldKind::Parameters, Some(FieldSlot::Parameters(_)))
            );
            assert!(fits, "{}: its slot is not of its kind", field.name);
            assert!(!field.help.is_empty(), "{} has no help", field.name);
            if let Some(default) = field.default {
                match field.kind {
                    FieldKind::Duration(_) => {
                        let duration = Duration::parse(default).unwrap();
                        assert_eq!(field.out_of_bounds(&duration), None, "{}", field.name);
                    }
                    FieldKind::Count => assert!(field.default_count().unwrap() > 0),
                    FieldKind::Url => crate::fields::validate_url(default).unwrap(),
                    _ => {}
                }
            }
        }
        assert!(set.slot("no such field").is_none());
    }

    #[test]
    fn bounds_have_one_message() {
        let rate = FieldSpec::text("upload_rate", "write a positive duration")
            .of_kind(FieldKind::Duration(Bound::Positive));
        let zero = Duration::parse("0s").unwrap();
        let refusal = rate.out_of_bounds(&zero).unwrap();
        assert_eq!(refusal.message, "must be greater than zero (found 0s)");
        assert_eq!(rate.out_of_bounds(&Duration::parse("1s").unwrap()), None);
        let timeout = rate.of_kind(FieldKind::Duration(Bound::NonNegative));
        assert_eq!(timeout.out_of_bounds(&zero), None);
        let negative = Duration::Nanos(-1);
        assert_eq!(
            timeout.out_of_bounds(&negative).unwrap().message,
            "must not be negative (found -1ns)"
        );
        let keep = rate.of_kind(FieldKind::Count);
        assert_eq!(keep.count_out_of_bounds(0).unwrap().label, "zero");
        assert_eq!(keep.count_out_of_bounds(3), None);
    }
}
