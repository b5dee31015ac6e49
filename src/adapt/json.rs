//! The JSON an adapter builds: a small tree that borrows its keys and strings from the
//! syntax tree, turned into JSON text or into a `serde_json::Value` at the end.
//!
//! Building a `serde_json::Value` costs an allocation per key and per string and a SipHash
//! per key; most of adapting a large Profilingfile went there. This tree costs one
//! allocation per object or array, and the same adapter code serves both outputs, so
//! `caddyprof adapt` can write text without making a `Value` first.

use serde::Serialize;
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
    /// A value already written as JSON text, at the place in the tree it goes (pretty text
    /// indented for that place): [`to_text`](Self::to_text) copies it as it is, and
    /// [`to_value`](Self::to_value) reads it (text that is not JSON becomes a string).
    /// Adapting a large file to text writes each profiler this way as soon as it is read.
    Raw(&'a str),
}

impl Json<'_> {
    /// The JSON text: compact, or indented with tabs like `caddy adapt --pretty`. Objects
    /// keep their keys in order, as a `serde_json::Value` built by [`to_value`](Self::to_value)
    /// prints them.
    pub fn to_text(&self, pretty: bool) -> String {
        let mut out = String::new();
        self.write_text(pretty, &mut out);
        out
    }

    /// Appends the JSON text to `out`, as [`to_text`](Self::to_text) writes it: with `out`
    /// made large enough beforehand, the text is never copied to grow it.
    ///
    /// ```
    /// use caddyprof::adapt::json::Json;
    ///
    /// let mut out = String::with_capacity(64);
    /// Json::Array(vec![Json::Null, Json::Bool(true)]).write_text(true, &mut out);
    /// assert_eq!(out, "[\n\tnull,\n\ttrue\n]");
    /// ```
    pub fn write_text(&self, pretty: bool, out: &mut String) {
        self.write_text_at(pretty, 0, out);
    }

    /// [`write_text`](Self::write_text) for a value inside `depth` arrays and objects: pretty
    /// text is indented for that place, as a [`Raw`](Json::Raw) value must be.
    pub(crate) fn write_text_at(&self, pretty: bool, depth: usize, out: &mut String) {
        TextWriter { out, pretty, depth }.value(self);
    }

    /// The same JSON as a `serde_json::Value` (keys in order: serde_json's
    /// `preserve_order`).
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::from(*n),
            Json::String(s) => Value::from(*s),
            Json::Raw(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::from(*text)),
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

/// Writes JSON text exactly as serde_json writes a `Value` (compact, or its
/// `PrettyFormatter` with a tab), without going through serde's data model: this is most
/// of what `caddyprof adapt` does after parsing.
struct TextWriter<'o> {
    out: &'o mut String,
    pretty: bool,
    depth: usize,
}

impl TextWriter<'_> {
    fn value(&mut self, json: &Json) {
        match json {
            Json::Null => self.out.push_str("null"),
            Json::Bool(true) => self.out.push_str("true"),
            Json::Bool(false) => self.out.push_str("false"),
            Json::Number(n) => {
                use std::fmt::Write;
                write!(self.out, "{n}").expect("writing to a String");
            }
            Json::String(s) => self.string(s),
            Json::Raw(text) => self.out.push_str(text),
            Json::Array(items) => {
                self.open('[', items.is_empty());
                for (i, item) in items.iter().enumerate() {
                    self.separator(i);
                    self.value(item);
                }
                self.close(']', items.is_empty());
            }
            Json::Object(entries) => {
                self.open('{', entries.is_empty());
                for (i, (key, value)) in entries.iter().enumerate() {
                    self.separator(i);
                    self.string(key);
                    self.out.push_str(if self.pretty { ": " } else { ":" });
                    self.value(value);
                }
                self.close('}', entries.is_empty());
            }
        }
    }

    /// An opening bracket; serde_json writes an empty array or object as `[]`/`{}` on one
    /// line even when pretty.
    fn open(&mut self, bracket: char, empty: bool) {
        self.out.push(bracket);
        if !empty {
            self.depth += 1;
        }
    }

    fn close(&mut self, bracket: char, empty: bool) {
        if !empty {
            self.depth -= 1;
            self.new_line();
        }
        self.out.push(bracket);
    }

    /// What goes before the `i`th element of an array or object.
    fn separator(&mut self, i: usize) {
        if i > 0 {
            self.out.push(',');
        }
        self.new_line();
    }

    fn new_line(&mut self) {
        if self.pretty {
            self.out.push('\n');
            self.out.extend(std::iter::repeat_n('\t', self.depth));
        }
    }

    /// A JSON string: `"` and `\\` escaped, control characters as serde_json writes them.
    fn string(&mut self, s: &str) {
        let bytes = s.as_bytes();
        self.out.reserve(bytes.len() + 2);
        self.out.push('"');
        // Most strings need no escape; this check has no early exit, so it vectorizes.
        let plain = bytes.iter().fold(true, |plain, &b| {
            plain & (b >= 0x20) & (b != b'"') & (b != b'\\')
        });
        if plain {
            self.out.push_str(s);
            self.out.push('"');
            return;
        }
        // Every byte escaped is ASCII, so the text between them is whole characters.
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0..=0x1f => "",
                _ => continue,
            };
            self.out.push_str(&s[start..i]);
            if escape.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.out.push_str("\\u00");
                self.out.push(char::from(HEX[usize::from(b >> 4)]));
                self.out.push(char::from(HEX[usize::from(b & 0xf)]));
            } else {
                self.out.push_str(escape);
            }
            start = i + 1;
        }
        self.out.push_str(&s[start..]);
        self.out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text is serde_json's, for every character a string may hold and for nesting,
    /// empty containers and numbers.
    #[test]
    fn text_is_what_serde_json_writes() {
        let all_ascii: String = (0u8..128).map(char::from).collect();
        let strings = [
            all_ascii.as_str(),
            "",
            "plain",
            "quote \" and backslash \\ and unicode é 日本 🦀 \u{2028}",
        ];
        let json = Json::Object(vec![
            (
                "strings",
                Json::Array(strings.iter().map(|s| Json::String(s)).collect()),
            ),
            (all_ascii.as_str(), Json::Number(u64::MAX)),
            ("empty array", Json::Array(Vec::new())),
            ("empty object", Json::Object(Vec::new())),
            (
                "nested",
                Json::Object(vec![
                    ("null", Json::Null),
                    (
                        "flags",
                        Json::Array(vec![Json::Bool(true), Json::Bool(false)]),
                    ),
                    ("zero", Json::Number(0)),
                ]),
            ),
        ]);
        let value = json.to_value();
        for pretty in [false, true] {
            assert_eq!(json.to_text(pretty), text_of(&value, pretty));
        }
    }
}
