//! The formatter: writes a Profilingfile in canonical form (`docs/profilingfile.md` §8).
//!
//! It is built on the syntax tree of the file as written (no environment substitution, no
//! import expansion), re-emitting every token's source text unchanged: one tab per nesting
//! level, ` {` at the end of the line that opens a block, `}` on its own line, at most one
//! blank line in a row, one blank line between top-level blocks, comments where they were.

use super::parser::{ParseOptions, parse};
use super::token::{Comment, Token, TokenKind};
use super::tree::{Body, Directive, Document};
use crate::diagnostic::Error;
use crate::source::SourceFile;

/// Caddy indents at most this many levels.
const MAX_INDENT: usize = 10;

/// Formats `file`, or reports why it cannot be parsed.
///
/// ```
/// let file = caddyprof::SourceFile::new("Profilingfile", "profiling   {\n  profefe\n     }");
/// let formatted = caddyprof::syntax::format::format(&file).unwrap();
/// assert_eq!(formatted, "profiling {\n\tprofefe\n}\n");
/// ```
pub fn format(file: &SourceFile) -> Result<String, Error> {
    let options = ParseOptions {
        expand: false,
        env: None,
        base_dir: Default::default(),
    };
    let parsed = parse(file, &options)?;
    Ok(format_document(file, &parsed.document))
}

/// Formats an already parsed (not expanded) document of `file`.
pub fn format_document(file: &SourceFile, document: &Document) -> String {
    let mut writer = Writer {
        file,
        out: String::new(),
        comments: &document.comments,
        next_comment: 0,
        last_line: None,
        at_line_start: true,
    };
    for (i, block) in document.blocks.iter().enumerate() {
        let first = block.keys.first().or(block.body.open.as_ref()).or(block
            .body
            .directives
            .first()
            .map(|d| &d.name));
        if let Some(first) = first {
            writer.comments_before(first.location.start, 0, i > 0);
        }
        if i > 0 {
            writer.blank_line();
        }
        if !block.keys.is_empty() {
            writer.line(0, &block.keys, block.body.open.is_none(), true);
        }
        match &block.body.open {
            Some(open) => {
                if block.keys.is_empty() {
                    writer.begin_line(0);
                    writer.out.push('{');
                    writer.last_line = Some(end_line(file, open));
                } else {
                    writer.open_brace(open);
                }
                writer.body(&block.body, 1);
            }
            None => writer.directives(&block.body.directives, 0),
        }
    }
    writer.comments_before(usize::MAX, 0, !document.blocks.is_empty());
    let trimmed = writer.out.trim();
    if trimmed.is_empty() {
        String::new()
    } else if trimmed.starts_with('\u{FEFF}') {
        // A U+FEFF that starts the file is a byte order mark and is dropped (§2.1); this
        // one is (part of) a token, so write a mark in front of it (found by cargo fuzz).
        format!("\u{FEFF}{trimmed}\n")
    } else {
        format!("{trimmed}\n")
    }
}

struct Writer<'a> {
    file: &'a SourceFile,
    out: String,
    comments: &'a [Comment],
    next_comment: usize,
    /// The source line of the last thing written.
    last_line: Option<usize>,
    at_line_start: bool,
}

impl Writer<'_> {
    fn begin_line(&mut self, depth: usize) {
        if !self.at_line_start {
            self.out.push('\n');
        }
        self.out
            .extend(std::iter::repeat_n('\t', depth.min(MAX_INDENT)));
        self.at_line_start = false;
    }

    fn blank_line(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            if !self.at_line_start {
                self.out.push('\n');
            }
            self.out.push('\n');
            self.at_line_start = true;
        }
    }

    /// Writes the comments that come before `offset`; a comment on the line of the last
    /// token stays at its end. `separate` keeps a blank line before the first own-line
    /// comment (between top-level blocks).
    fn comments_before(&mut self, offset: usize, depth: usize, separate: bool) {
        let mut first = true;
        while let Some(comment) = self.comments.get(self.next_comment) {
            if comment.location.start >= offset {
                break;
            }
            self.next_comment += 1;
            let line = self.file.line_col(comment.location.start).0;
            if self.last_line == Some(line) && !self.at_line_start {
                self.out.push(' ');
            } else {
                if first && separate {
                    self.blank_line();
                } else {
                    self.keep_blank_line(line);
                }
                self.begin_line(depth);
            }
            first = false;
            self.out.push_str(&comment.text);
            self.last_line = Some(line);
        }
    }

    /// Keeps one blank line if the source had one or more before `line`.
    fn keep_blank_line(&mut self, line: usize) {
        if self.last_line.is_some_and(|last| line > last + 1) {
            self.blank_line();
        }
    }

    /// Writes tokens as one logical line, keeping line continuations. `ends_line`: nothing
    /// (no ` {`) follows the last token on its line.
    fn line(&mut self, depth: usize, tokens: &[Token], ends_line: bool, keys: bool) {
        let Some(first) = tokens.first() else { return };
        self.comments_before(first.location.start, depth, false);
        self.keep_blank_line(self.file.line_col(first.location.start).0);
        self.begin_line(depth);
        let mut prev_end: Option<usize> = None;
        for (i, token) in tokens.iter().enumerate() {
            let start = self.file.line_col(token.location.start).0;
            match prev_end {
                // Keys continue on the next line after a trailing comma (§4.2): keep that
                // break as it is; a continuation there would change the line accounting of a
                // multi-line key after it (§2.8, found by cargo fuzz).
                Some(end)
                    if start > end && keys && !continued(self.file, &tokens[i - 1], token) =>
                {
                    // The comma was a token of its own (`a ,`), which the keys leave out.
                    let prev = &tokens[i - 1];
                    if prev.kind != TokenKind::Word
                        || !prev.source_text().trim_end_matches('\r').ends_with(',')
                    {
                        self.out.push_str(" ,");
                    }
                    self.out.push('\n');
                    self.out
                        .extend(std::iter::repeat_n('\t', (depth + 1).min(MAX_INDENT)));
                }
                Some(end) if start > end => {
                    self.out.push_str(" \\\n");
                    self.out
                        .extend(std::iter::repeat_n('\t', (depth + 1).min(MAX_INDENT)));
                }
                Some(_) => self.out.push(' '),
                None => {}
            }
            if token.kind == TokenKind::Word {
                // `\r` is skipped in bare words: drop it so that CRLF input becomes LF.
                let mut text = token.source_text().replace('\r', "");
                // A trailing backslash that escapes the whitespace or end of file after it is
                // lost (§2.3); before the newline we write it would become a continuation.
                // Drop it when the word reads the same without it (found by cargo fuzz).
                if text.ends_with('\\') && lost_trailing_backslash(&text, &token.text) {
                    text.pop();
                }
                // What we write right after this word: a plain newline at the end of the
                // line, or after a key's trailing comma.
                let newline_follows = match tokens.get(i + 1) {
                    None => ends_line,
                    Some(next) => {
                        keys && text.ends_with(',')
                            && self.file.line_col(next.location.start).0
                                > end_line(self.file, token)
                            && !continued(self.file, token, next)
                    }
                };
                if newline_follows && text.starts_with("<<") {
                    // A bare `<<X` is a word only because a space or the end of the file
                    // follows it (or a `\r` was in it); before the newline we write, it
                    // would open a heredoc. `\<<X` is the same word (found by cargo fuzz).
                    self.out.push('\\');
                }
                self.out.push_str(&text);
            } else {
                self.out.push_str(token.source_text());
            }
            prev_end = Some(end_line(self.file, token));
        }
        self.last_line = prev_end;
    }

    fn open_brace(&mut self, open: &Token) {
        self.out.push_str(" {");
        self.last_line = Some(end_line(self.file, open));
    }

    fn body(&mut self, body: &Body, depth: usize) {
        self.directives(&body.directives, depth);
        if let Some(close) = &body.close {
            self.comments_before(close.location.start, depth, false);
            self.begin_line(depth - 1);
            self.out.push('}');
            self.last_line = Some(end_line(self.file, close));
        }
    }

    fn directives(&mut self, directives: &[Directive], depth: usize) {
        for directive in directives {
            let mut tokens = Vec::with_capacity(directive.args.len() + 1);
            tokens.push(directive.name.clone());
            tokens.extend(directive.args.iter().cloned());
            self.line(depth, &tokens, directive.block.is_none(), false);
            if let Some(block) = &directive.block {
                if let Some(open) = &block.open {
                    self.open_brace(open);
                }
                self.body(block, depth + 1);
            }
        }
    }
}

/// Whether `source` (a word ending with `\\`) lexes to `text` without its last character.
fn lost_trailing_backslash(source: &str, text: &str) -> bool {
    // The space keeps a leading U+FEFF from being read as a byte order mark.
    let shorter = SourceFile::new("", format!(" {}", &source[..source.len() - 1]));
    super::lex(&shorter, None).is_ok_and(|lexed| {
        lexed.tokens.len() == 1
            && lexed.tokens[0].kind == TokenKind::Word
            && lexed.tokens[0].text == text
    })
}

/// Whether the source between `prev` and `next` holds a line continuation (keys may also
/// go on to the next line after a comma, §4.2).
fn continued(file: &SourceFile, prev: &Token, next: &Token) -> bool {
    let gap = &file.text()[prev.location.end..next.location.start];
    let mut lines: Vec<&str> = gap.split('\n').collect();
    lines.pop();
    // A comment always ends its line (improvement 2), even after a backslash.
    lines
        .iter()
        .any(|l| !l.contains('#') && l.trim_end().ends_with('\\'))
}

/// The source line a token ends on.
fn end_line(file: &SourceFile, token: &Token) -> usize {
    file.line_col(
        token
            .location
            .end
            .saturating_sub(1)
            .max(token.location.start),
    )
    .0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(input: &str) -> String {
        format(&SourceFile::new("Profilingfile", input)).unwrap()
    }

    #[test]
    fn canonical_form() {
        assert_eq!(
            fmt(
                "profiling   {\n  cpu_profile_rate 100\n\n\n\n  pyroscope   http://x {\n      upload_rate 10s\n  }\n  profefe\n}\npyroscope {\n}"
            ),
            "profiling {\n\tcpu_profile_rate 100\n\n\tpyroscope http://x {\n\t\tupload_rate 10s\n\t}\n\tprofefe\n}\n\npyroscope {\n}\n"
        );
    }

    #[test]
    fn keeps_comments_quotes_and_heredocs() {
        let input = "# top\nprofiling { # opens\n   # inside\n   application_name \"a b\"   `c`  # trailing\n  x <<EOF\n    body\n    EOF  200\n}\n# end\n";
        assert_eq!(
            fmt(input),
            "# top\nprofiling { # opens\n\t# inside\n\tapplication_name \"a b\" `c` # trailing\n\tx <<EOF\n    body\n    EOF 200\n}\n\n# end\n"
        );
    }

    #[test]
    fn keeps_continuations_and_env_references() {
        assert_eq!(
            fmt("a {\n b c \\\n      d {$X:y}\n}"),
            "a {\n\tb c \\\n\t\td {$X:y}\n}\n"
        );
    }

    #[test]
    fn is_idempotent_on_examples() {
        for input in [
            "a {\n\tb\n}\n",
            "(snip) {\n\tx {args[0]}\n}\n\na {\n\timport snip 1\n}\n",
            "# only a comment\n",
            "a\nb c\n",
            "",
        ] {
            assert_eq!(fmt(input), input);
            assert_eq!(fmt(&fmt(input)), fmt(input));
        }
    }
}
