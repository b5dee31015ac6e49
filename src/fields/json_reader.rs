//! A JSON tree that remembers where every key and value is in the text.
//!
//! serde_json does all the real work: it checks the syntax first (so its error messages and
//! positions are the ones the user sees), and it decodes every string with an escape and
//! every number. What is left here is a small walk over text already known to be valid,
//! recording byte spans. Unlike `serde_json::Value`, objects keep every member, so duplicate
//! keys can be reported. Keys and strings without escapes (nearly all) are borrowed from the
//! text: a large config is decoded without a copy of each.

use std::borrow::Cow;
use std::ops::Range;

/// A JSON value and its byte span in the text (strings include their quotes).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node<'t> {
    pub span: Range<usize>,
    pub kind: NodeValue<'t>,
}

/// What a [`Node`] holds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum NodeValue<'t> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'t, str>),
    Array(Vec<Node<'t>>),
    Object(Vec<Member<'t>>),
}

/// One `"key": value` of an object, in source order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Member<'t> {
    pub key: Cow<'t, str>,
    pub key_span: Range<usize>,
    pub value: Node<'t>,
}

impl NodeValue<'_> {
    /// The JSON type name, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Number(_) => "a number",
            NodeValue::String(_) => "a string",
            NodeValue::Array(_) => "an array",
            NodeValue::Object(_) => "an object",
        }
    }
}

/// Why a text is not a JSON config: serde_json's message, or nesting too deep.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub message: String,
    /// What the label at `offset` says.
    pub label: String,
    pub help: &'static str,
    /// The byte offset it points at.
    pub offset: usize,
}

/// Parses `text`, which must be one JSON value nested at most [`crate::source::MAX_NESTING`] deep.
pub(crate) fn parse(text: &str) -> Result<Node<'_>, SyntaxError> {
    // serde_json refuses more than 128 levels, but a debug build needs more stack for them
    // than a small thread has: it is given only the text before a bracket nested too deep,
    // so that a syntax error before that bracket is still the one reported.
    let too_deep = too_deep_at(text);
    let checked = too_deep.map_or(text, |at| &text[..at]);
    if let Err(e) = serde_json::from_str::<Syntax>(checked)
        && !(too_deep.is_some() && e.is_eof())
    {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
        return Err(SyntaxError {
            label: message.clone(),
            message: format!("invalid JSON: {message}"),
            help: "fix the JSON syntax here",
            offset: offset_of(text, e.line(), e.column()),
        });
    }
    if let Some(at) = too_deep {
        return Err(SyntaxError {
            message: format!(
                "JSON nested more than {} levels deep",
                crate::source::MAX_NESTING
            ),
            label: format!("this opens level {}", crate::source::MAX_NESTING + 1),
            help: "a config needs a few levels (apps, an app, its profilers, their parameters): check the brackets",
            offset: at,
        });
    }
    let mut walk = Walk { text, pos: 0 };
    walk.value().ok_or_else(|| SyntaxError {
        // Unreachable for text serde_json accepted; kept as an error rather than a panic.
        message: "invalid JSON".to_string(),
        label: "here".to_string(),
        help: "fix the JSON syntax here",
        offset: walk.pos.min(text.len()),
    })
}

/// The offset of the first `[` or `{` nested deeper than [`crate::source::MAX_NESTING`], if any
/// (brackets inside strings are skipped; in text that is not JSON the count is only a
/// guess, and serde_json reports what is wrong before it).
fn too_deep_at(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > crate::source::MAX_NESTING {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Parses `text`, JSON that this crate wrote (the adapter's): valid by construction, so
/// that its syntax is checked (for serde_json's message) only if the walk finds it invalid.
/// The walk alone is lenient (it does not look for control characters in strings, nor for
/// text after the value), and checking first takes a good part of loading a large config.
pub(crate) fn parse_written(text: &str) -> Result<Node<'_>, SyntaxError> {
    Walk { text, pos: 0 }
        .value()
        .map_or_else(|| parse(text), Ok)
}

/// Any JSON value, read and forgotten: checks the syntax as reading a `serde_json::Value`
/// does, with the same errors at the same places, without building the value (nor any string
/// of it). (serde's `IgnoredAny` takes another path in serde_json, with other messages.)
struct Syntax;

impl<'de> serde::Deserialize<'de> for Syntax {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Syntax)
    }
}

impl<'de> serde::de::Visitor<'de> for Syntax {
    type Value = Syntax;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_unit<E>(self) -> Result<Syntax, E> {
        Ok(Syntax)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Syntax, E> {
        Ok(Syntax)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Syntax, E> {
        Ok(Syntax)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Syntax, E> {
        Ok(Syntax)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Syntax, E> {
        Ok(Syntax)
    }

    fn visit_str<E>(self, _: &str) -> Result<Syntax, E> {
        Ok(Syntax)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Syntax, A::Error> {
        while seq.next_element::<Syntax>()?.is_some() {}
        Ok(Syntax)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Syntax, A::Error> {
        while map.next_entry::<Syntax, Syntax>()?.is_some() {}
        Ok(Syntax)
    }
}

/// The byte offset of serde_json's 1-based line and (byte) column.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        text.match_indices('\n')
            .nth(line - 2)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    let mut offset = (line_start + column.saturating_sub(1)).min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

struct Walk<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Walk<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    fn value(&mut self) -> Option<Node<'a>> {
        self.skip_ws();
        let start = self.pos;
        let kind = match self.peek()? {
            b'{' => NodeValue::Object(self.object()?),
            b'[' => NodeValue::Array(self.array()?),
            b'"' => NodeValue::String(self.string()?.0),
            b't' => self.literal("true", NodeValue::Bool(true))?,
            b'f' => self.literal("false", NodeValue::Bool(false))?,
            b'n' => self.literal("null", NodeValue::Null)?,
            _ => {
                while matches!(
                    self.peek(),
                    Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                ) {
                    self.pos += 1;
                }
                NodeValue::Number(serde_json::from_str(&self.text[start..self.pos]).ok()?)
            }
        };
        Some(Node {
            span: start..self.pos,
            kind,
        })
    }

    fn literal(&mut self, word: &str, kind: NodeValue<'a>) -> Option<NodeValue<'a>> {
        self.text[self.pos..].starts_with(word).then(|| {
            self.pos += word.len();
            kind
        })
    }

    /// A string at `pos`: its decoded value (the text itself if it has no escape) and span
    /// (with quotes).
    fn string(&mut self) -> Option<(Cow<'a, str>, Range<usize>)> {
        self.skip_ws();
        let start = self.pos;
        let bytes = self.text.as_bytes();
        if bytes.get(start) != Some(&b'"') {
            return None;
        }
        let mut i = start + 1;
        let mut escaped = false;
        loop {
            match bytes.get(i)? {
                b'\\' => {
                    escaped = true;
                    i += 2;
                }
                b'"' => break,
                _ => i += 1,
            }
        }
        self.pos = i + 1;
        let value = if escaped {
            Cow::Owned(serde_json::from_str(self.text.get(start..self.pos)?).ok()?)
        } else {
            Cow::Borrowed(self.text.get(start + 1..i)?)
        };
        Some((value, start..self.pos))
    }

    fn array(&mut self) -> Option<Vec<Node<'a>>> {
        self.eat(b'[')?;
        let mut items = Vec::new();
        if self.eat(b']').is_some() {
            return Some(items);
        }
        loop {
            items.push(self.value()?);
            if self.eat(b']').is_some() {
                return Some(items);
            }
            self.eat(b',')?;
        }
    }

    fn object(&mut self) -> Option<Vec<Member<'a>>> {
        self.eat(b'{')?;
        let mut members = Vec::new();
        if self.eat(b'}').is_some() {
            return Some(members);
        }
        loop {
            let (key, key_span) = self.string()?;
            self.eat(b':')?;
            let value = self.value()?;
            members.push(Member {
                key,
                key_span,
                value,
            });
            if self.eat(b'}').is_some() {
                return Some(members);
            }
            self.eat(b',')?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_of_keys_and_values() {
        let text = r#" {"a": [1, "x\"y"], "a": {"b": null}} "#;
        let node = parse(text).unwrap();
        assert_eq!(node.span, 1..text.len() - 1);
        let NodeValue::Object(members) = &node.kind else {
            panic!("not an object")
        };
        assert_eq!(members.len(), 2, "duplicates are kept");
        assert_eq!(&text[members[0].key_span.clone()], r#""a""#);
        let NodeValue::Array(items) = &members[0].value.kind else {
            panic!("not an array")
        };
        assert_eq!(&text[items[1].span.clone()], r#""x\"y""#);
        assert_eq!(items[1].kind, NodeValue::String("x\"y".into()));
        assert_eq!(&text[members[1].value.span.clone()], r#"{"b": null}"#);
    }

    #[test]
    fn syntax_error_offsets() {
        let text = "{\n  \"a\": 1,\n}";
        let err = parse(text).unwrap_err();
        assert_eq!(err.message, "invalid JSON: trailing comma");
        assert_eq!(&text[err.offset..], "}");
        let err = parse("{\"é\": tru}").unwrap_err();
        assert!(err.offset <= 10);
        let err = parse("").unwrap_err();
        assert_eq!(err.offset, 0);
    }

    /// The syntax check gives serde_json's errors for a `Value`, at the same places.
    #[test]
    fn syntax_errors_are_those_of_a_value() {
        let deep = "[".repeat(200);
        let texts = [
            "",
            " ",
            "{",
            "}",
            "[",
            "]",
            "{\"a\": 1,}",
            "[1,]",
            "[1 2]",
            "{\"a\" 1}",
            "{\"a\":}",
            "{1: 2}",
            "{\"a\": 1 \"b\": 2}",
            "\"abc",
            "\"a\\q\"",
            "\"\\u12\"",
            "\"\\ud800\"",
            "\"a\nb\"",
            "tru",
            "nul",
            "falsy",
            "01",
            "-",
            "1.",
            "1e",
            "1e400",
            "-1e400",
            "18446744073709551616",
            "{\"a\": [1, {\"b\": nul}]}",
            "{} {}",
            "[] x",
            "\u{feff}{}",
            "{\"a\": 1}\n\n  ,",
            &deep,
            "{\"a\":1,\"a\":2}",
            "[1, 2.5, -3, \"x\", true, null]",
        ];
        for text in texts {
            let value = serde_json::from_str::<serde_json::Value>(text).map(drop);
            let checked = serde_json::from_str::<Syntax>(text).map(drop);
            assert_eq!(
                checked.map_err(|e| e.to_string()),
                value.map_err(|e| e.to_string()),
                "{text:?}"
            );
        }
    }

    /// Written JSON is read as `parse` reads it; where the walk finds it invalid, the error
    /// is `parse`'s.
    #[test]
    fn written_json_is_read_as_any() {
        let text = "{\n\t\"a\": [\n\t\t1,\n\t\t\"x\\\"y\"\n\t],\n\t\"b\": {}\n}";
        assert_eq!(parse_written(text).unwrap(), parse(text).unwrap());
        for invalid in ["{\"a\": 1,}", "[1 2]", "", "{\"a\" 1}"] {
            let written = parse_written(invalid).unwrap_err();
            let any = parse(invalid).unwrap_err();
            assert_eq!((written.message, written.offset), (any.message, any.offset));
        }
    }

    #[test]
    fn unicode_and_numbers() {
        let text = "{\"µ\": -1.5e3, \"k\": \"\\u00b5s\"}";
        let NodeValue::Object(members) = parse(text).unwrap().kind else {
            panic!()
        };
        assert_eq!(members[0].key, "µ");
        assert_eq!(&text[members[0].value.span.clone()], "-1.5e3");
        assert_eq!(members[1].value.kind, NodeValue::String("µs".into()));
    }
}
