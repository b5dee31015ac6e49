//! Environment substitution: `{$NAME}` and `{$NAME:default}`, done on the text of each file
//! before it is lexed (`docs/profilingfile.md` §1).

use crate::diagnostic::Diagnostic;
use crate::source::{Location, SourceFile};

/// A text after substitution, with the map back to the positions of the original text.
#[derive(Debug)]
pub struct Substituted {
    /// The text to lex.
    pub text: String,
    /// Replaced spans, in order: (start in `text`, length in `text`, start in the original,
    /// length in the original).
    replacements: Vec<(usize, usize, usize, usize)>,
}

impl Substituted {
    /// The offset in the original text of `offset` in the substituted text. An offset inside
    /// an inserted value maps to the start of the `{$…}` it came from (or its end, when
    /// `at_end` is set).
    pub fn original_offset(&self, offset: usize, at_end: bool) -> usize {
        let index = self
            .replacements
            .partition_point(|&(start, _, _, _)| start <= offset);
        if index == 0 {
            return offset;
        }
        let (start, len, orig_start, orig_len) = self.replacements[index - 1];
        if offset < start + len || (at_end && offset == start + len && len > 0) {
            if at_end && offset > start {
                orig_start + orig_len
            } else {
                orig_start
            }
        } else {
            offset - (start + len) + orig_start + orig_len
        }
    }
}

/// Replaces every `{$NAME}` / `{$NAME:default}` in `file` using `lookup`.
///
/// As in Caddy: a variable that is set (even empty) wins over the default; an unset one
/// without default becomes empty; the inserted text is never scanned again; `{$}` stays as
/// written. Improvement 7: a `{$` whose `}` is not on the same line is an error, where Caddy
/// would pair it with the next `}` anywhere.
pub fn substitute(file: &SourceFile, lookup: &super::EnvLookup) -> Result<Substituted, Diagnostic> {
    let input = file.text();
    let mut text = String::with_capacity(input.len());
    let mut replacements = Vec::new();
    let mut rest = 0;
    let finder = memchr::memmem::Finder::new("{$");
    while let Some(found) = finder.find(&input.as_bytes()[rest..]) {
        let open = rest + found;
        let line_end = input[open..].find('\n').map_or(input.len(), |i| open + i);
        let Some(close) = input[open..line_end].find('}').map(|i| open + i) else {
            let at = Location {
                file: file.clone(),
                start: open,
                end: line_end,
            };
            return Err(Diagnostic::error("environment variable reference is not closed")
                .label(&at, "this `{$` has no `}` on its line")
                .help("write `{$NAME}` or `{$NAME:default}` on one line; to keep `{$` as text, quote it differently, e.g. `{\\$`"));
        };
        let inner = &input[open + 2..close];
        text.push_str(&input[rest..open]);
        if inner.is_empty() {
            text.push_str("{$}");
        } else {
            let (name, default) = match inner.split_once(':') {
                Some((name, default)) => (name, default),
                None => (inner, ""),
            };
            let value = lookup(name).unwrap_or_else(|| default.to_owned());
            replacements.push((text.len(), value.len(), open, close + 1 - open));
            text.push_str(&value);
        }
        rest = close + 1;
    }
    text.push_str(&input[rest..]);
    Ok(Substituted { text, replacements })
}

/// Looks names up in the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> Result<String, String> {
        let file = SourceFile::new("t", input);
        let lookup = |name: &str| match name {
            "SET" => Some("value".to_owned()),
            "EMPTY" => Some(String::new()),
            "SPACED" => Some("a b".to_owned()),
            "NESTED" => Some("{$SET}".to_owned()),
            _ => None,
        };
        substitute(&file, &lookup)
            .map(|s| s.text)
            .map_err(|d| d.message().to_owned())
    }

    #[test]
    fn rules_of_section_1() {
        let table = [
            ("a {$SET} b", "a value b"),
            ("{$UNSET}", ""),
            ("{$UNSET:dflt}", "dflt"),
            ("{$EMPTY:dflt}", ""),
            ("{$UNSET:a:b:c}", "a:b:c"),
            ("{$}", "{$}"),
            ("{$} {$SET}", "{$} value"),
            ("{$NESTED}", "{$SET}"),
            ("{$UNSET:{$SET}}", "{$SET}"),
            ("\"{$SET}\" `{$SET}` # {$SET}", "\"value\" `value` # value"),
            ("\\{$SET}", "\\value"),
            ("$SET {env.SET}", "$SET {env.SET}"),
            ("{$SPACED}", "a b"),
            ("{$na me}", ""),
            ("{$set}", ""),
        ];
        for (input, want) in table {
            assert_eq!(run(input).as_deref(), Ok(want), "input {input:?}");
        }
    }

    #[test]
    fn unclosed_reference_is_an_error() {
        assert!(run("a {$X\n}").is_err());
        assert!(run("a {$X").is_err());
    }

    #[test]
    fn maps_offsets_back() {
        let file = SourceFile::new("t", "ab {$SET} cd");
        let s = substitute(&file, &|_| Some("xyzxyzxyz".into())).unwrap();
        assert_eq!(s.text, "ab xyzxyzxyz cd");
        assert_eq!(s.original_offset(0, false), 0);
        assert_eq!(s.original_offset(4, false), 3);
        assert_eq!(s.original_offset(12, false), 9);
        assert_eq!(s.original_offset(13, false), 10);
        assert_eq!(s.original_offset(12, true), 9);
    }
}
