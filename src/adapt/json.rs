//! The JSON an adapter builds: a small tree that borrows its keys and strings from the
//! syntax tree, turned into JSON text or into a `serde_json::Value` at the end.
//!
//! Building a `serde_json::Value` costs an allocation per key and per string and a SipHash
//! per key; most of adapting a large Profilingfile went there. This tree costs one
//! allocation per object or array, and the same adapter code serves both outputs, so
//! `caddyprof adapt` can write text without making a `Value` first.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

/// A JSON value whose strings are borrowed.
///
/// ```
/// use caddyprof::adapt::json::Json;
///
/// let json = Json::Object(vec![("profiler", Json::String("profefe")), ("keep", Json::Number(3))]);
/// assert_eq!(json.to_text(false), r#"{"profiler":"profefe","keep":3}"#);
/// assert_eq!(json.to_value(), serde_json::json!({"profiler": "profefe", "keep": 3}));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Json<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Number(u64),
    /// A string.
    String(&'a str),
    /// An array.
    Array(Vec<Json<'a>>),
    /// An object: its keys in order, each once.
    Object(Vec<(&'a str, Json<'a>)>),
}

impl Json<'_> {
    /// The JSON text: compact, or indented with tabs like `caddy adapt --pretty`. Objects
    /// keep their keys in order, as a `serde_json::Value` built by [`to_value`](Self::to_value)
    /// prints them.
    pub fn to_text(&self, pretty: bool) -> String {
        text_of(self, pretty)
    }

    /// The same JSON as a `serde_json::Value` (keys in order: serde_json's
    /// `preserve_order`).
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::from(*n),
            Json::String(s) => Value::from(*s),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(entries) => Value::Object(object_of(entries)),
        }
    }
}

/// `value` as JSON text, compact or indented with tabs like `caddy adapt --pretty`.
///
/// ```
/// let value = serde_json::json!({"apps": {}});
/// assert_eq!(caddyprof::adapt::json::text_of(&value, true), "{\n\t\"apps\": {}\n}");
/// ```
pub fn text_of<T: Serialize + ?Sized>(value: &T, pretty: bool) -> String {
    let mut out = Vec::new();
    let written = if pretty {
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        value.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out, formatter,
        ))
    } else {
        value.serialize(&mut serde_json::Serializer::new(&mut out))
    };
    written.expect("a JSON value serializes to memory");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// The `serde_json` object of `entries`.
fn object_of(entries: &[(&str, Json)]) -> Map<String, Value> {
    // A serde_json object hashes each key it is given (SipHash), which costs more than the
    // rest of building it. Objects of the same keys in the same order are frequent (one per
    // profiler), so a few empty objects of the shapes seen last are kept: a clone copies
    // their hash table instead of hashing again.
    let mut map = SHAPES.with_borrow_mut(|shapes| {
        let same_keys = |shape: &Map<String, Value>| {
            shape.len() == entries.len() && shape.keys().zip(entries).all(|(a, (b, _))| a == b)
        };
        if let Some(shape) = shapes.iter().find(|shape| same_keys(shape)) {
            return shape.clone();
        }
        let mut shape = Map::with_capacity(entries.len());
        for (key, _) in entries {
            shape.insert((*key).to_owned(), Value::Null);
        }
        if shapes.len() == SHAPES_KEPT {
            shapes.remove(0);
        }
        shapes.push(shape.clone());
        shape
    });
    for (slot, (_, value)) in map.values_mut().zip(entries) {
        *slot = value.to_value();
    }
    map
}

/// How many object shapes [`object_of`] keeps.
const SHAPES_KEPT: usize = 16;

thread_local! {
    /// Empty JSON objects (every value null) of the shapes last built, oldest first.
    static SHAPES: std::cell::RefCell<Vec<Map<String, Value>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(b) => serializer.serialize_bool(*b),
            Json::Number(n) => serializer.serialize_u64(*n),
            Json::String(s) => serializer.serialize_str(s),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}
