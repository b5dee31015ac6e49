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
/// use caddyprof::fields::json_writer::Json;
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
    /// use caddyprof::fields::json_writer::Json;
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
/// assert_eq!(caddyprof::fields::json_writer::text_of(&value, true), "{\n\t\"apps\": {}\n}");
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

/// The compact form of JSON `text`: the same without the spaces, tabs and line breaks
/// between its tokens. For text written pretty by [`Json::to_text`] or [`text_of`], it is
/// what they write compact.
///
/// ```
/// use caddyprof::fields::json_writer::compact;
///
/// assert_eq!(compact("{\n\t\"a b\": [\n\t\t1,\n\t\t\"\\\" \\t\"\n\t]\n}"), r#"{"a b":[1,"\" \t"]}"#);
/// ```
pub fn compact(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let end = match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            // A string, to its closing quote, as it is.
            b'"' => {
                let mut end = i + 1;
                loop {
                    let Some(at) = memchr::memchr2(b'"', b'\\', &bytes[end..]) else {
                        break bytes.len();
                    };
                    end += at + 1;
                    if bytes[end - 1] == b'"' {
                        break end;
                    }
                    // An escaped quote or backslash is skipped with its backslash.
                    if matches!(bytes.get(end), Some(b'"' | b'\\')) {
                        end += 1;
                    }
                }
            }
            // Anything else (punctuation, a number, a literal), to the next space or string.
            _ => {
                i + bytes[i..]
                    .iter()
                    .position(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'"'))
                    .unwrap_or(bytes.len() - i)
            }
        };
        out.push_str(&text[i..end]);
        i = end;
    }
    out
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
            Json::Number(n) => self.number(*n),
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

    /// A whole number in decimal (without `fmt`'s machinery: one per profiler or so).
    fn number(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.out
            .push_str(std::str::from_utf8(&digits[start..]).expect("ASCII digits"));
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
        if !needs_escape(bytes) {
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

/// Whether any byte of `bytes` is escaped in a JSON string: `"`, `\\` or a control
/// character. Most strings need no escape, and most are short (keys, names, addresses):
/// this looks at eight bytes at a time.
fn needs_escape(bytes: &[u8]) -> bool {
    use crate::swar::{below, equal, word_at};
    let escaped = |word: u64| below(word, 0x20) | equal(word, b'"') | equal(word, b'\\') != 0;
    let len = bytes.len();
    if len < 8 {
        // Padded with a byte that needs no escape.
        let padded = bytes
            .iter()
            .rev()
            .fold(u64::from_le_bytes([b'a'; 8]), |word, &b| {
                word << 8 | u64::from(b)
            });
        return escaped(padded);
    }
    // Eight bytes at a time, and the last eight (which may overlap the ones before).
    let mut start = 0;
    while let Some(word) = word_at(bytes, start) {
        if escaped(word) {
            return true;
        }
        start += 8;
    }
    word_at(bytes, len - 8).is_some_and(escaped)
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
        assert_eq!(compact(&json.to_text(true)), json.to_text(false));
    }

    /// Any text is compacted without a panic, a string's inside kept as it is, even in
    /// text that is not JSON.
    #[test]
    fn compact_keeps_strings_and_takes_any_text() {
        assert_eq!(
            compact(" [ \"a \\\\\" , \"\\\" é \" ] "),
            r#"["a \\","\" é "]"#
        );
        // What is left is the text with some of its spaces removed.
        for text in [
            "\"",
            "\"\\",
            "\"\\é",
            "é \u{1F980}\t\" x",
            "\\\"\\ \" ",
            "é\\ \"\\é \"",
        ] {
            let mut left = text.chars();
            for c in compact(text).chars() {
                assert!(left.any(|d| d == c), "{text:?}");
            }
            let removed = text.chars().count() - compact(text).chars().count();
            let spaces = text.chars().filter(|c| c.is_ascii_whitespace()).count();
            assert!(removed <= spaces, "{text:?}");
        }
    }

    /// The eight-bytes-at-a-time check finds every byte that needs an escape, wherever it
    /// is in a string of any length, and no other byte.
    #[test]
    fn needs_escape_finds_every_escaped_byte() {
        let escaped = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        for len in 0..=20 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut bytes = vec![b'x'; len];
                    bytes[at] = byte;
                    assert_eq!(
                        needs_escape(&bytes),
                        escaped(byte),
                        "{byte:#x} at {at} of {len}"
                    );
                    // Bytes that need none around it, on both sides, change nothing.
                    bytes.fill(0xe9);
                    bytes[at] = byte;
                    assert_eq!(
                        needs_escape(&bytes),
                        escaped(byte),
                        "{byte:#x} at {at} of {len}"
                    );
                }
            }
        }
    }
}
