//! The lexer: turns one file into [`Token`]s and [`Comment`]s, with Caddy's line accounting
//! (§2.8).
//!
//! The pest grammar (`grammar/caddyfile.pest`) is the definition of the language. Running it
//! over a whole file costs a few hundred instructions per byte (pest calls a combinator per
//! character and keeps per-rule bookkeeping for every token), so [`lex`] scans the commonest
//! items itself: blanks of ASCII whitespace, words of printable ASCII without backslashes,
//! comments, quoted or backtick text without escapes, and heredocs with a plain marker and
//! closing line. Everything else (escapes, non-ASCII spaces and words, unterminated text,
//! errors, …) is handed to the grammar's `next_item` rule, one item at a
//! time. [`lex_with_grammar`] runs the grammar alone over the whole file; a property test and
//! the `lex` fuzz target check that both give exactly the same tokens, comments and errors.

use std::collections::VecDeque;
use std::rc::Rc;

use pest::Parser as _;
use pest::iterators::Pair;

use super::env::Substituted;
use super::token::{Comment, Text, Token, TokenKind, line_number};
use crate::diagnostic::Diagnostic;
use crate::source::{Location, SourceFile};

/// The parser pest generates from the grammar; its `Rule` enum stays private.
mod generated {
    #[derive(pest_derive::Parser)]
    #[grammar = "grammar/caddyfile.pest"]
    pub(super) struct Grammar;
}

use generated::{Grammar, Rule};

/// The tokens and comments of one file.
#[derive(Debug, Default)]
pub struct Lexed {
    /// The tokens, in order.
    pub tokens: Vec<Token>,
    /// The comments, in order.
    pub comments: Vec<Comment>,
}

/// Lexes `file`. With `env`, `{$VAR}` references are substituted first (as for `adapt`);
/// without it the text is lexed as written (as for `fmt`).
///
/// ```
/// use caddyprof::SourceFile;
/// use caddyprof::syntax::{TokenKind, lex};
///
/// let file = SourceFile::new("Profilingfile", "a \"b c\" `d` # note\n");
/// let lexed = lex(&file, None).unwrap();
/// let texts: Vec<_> = lexed.tokens.iter().map(|t| (t.text.as_str(), t.kind)).collect();
/// assert_eq!(texts, [("a", TokenKind::Word), ("b c", TokenKind::Quoted), ("d", TokenKind::Backtick)]);
/// assert_eq!(lexed.comments[0].text, "# note");
/// ```
pub fn lex(file: &SourceFile, env: Option<&super::EnvLookup>) -> Result<Lexed, Diagnostic> {
    run(file, env, false).map_err(|(error, _)| error)
}

/// [`lex`], for an imported file: an error comes with where the file's first token starts,
/// if one was read before it.
pub(super) fn lex_imported(
    file: &SourceFile,
    env: Option<&super::EnvLookup>,
) -> Result<Lexed, (Diagnostic, Option<usize>)> {
    run(file, env, false)
}

/// Lexes `file` with the pest grammar alone, over the whole file: the reference that [`lex`]
/// must match exactly (same tokens, positions, comments and errors). It is several times
/// slower than [`lex`].
///
/// ```
/// use caddyprof::SourceFile;
/// use caddyprof::syntax::lexer::{lex, lex_with_grammar};
///
/// let file = SourceFile::new("Profilingfile", "a \\\n<<EOF\n\tb\n\tEOF \"c\\\"\" # d\n");
/// let fast = lex(&file, None).unwrap();
/// let reference = lex_with_grammar(&file, None).unwrap();
/// let texts = |l: &caddyprof::syntax::Lexed| l.tokens.iter().map(|t| t.text.clone()).collect::<Vec<_>>();
/// assert_eq!(texts(&fast), ["a", "b", "c\""]);
/// assert_eq!(texts(&fast), texts(&reference));
/// ```
pub fn lex_with_grammar(
    file: &SourceFile,
    env: Option<&super::EnvLookup>,
) -> Result<Lexed, Diagnostic> {
    run(file, env, true).map_err(|(error, _)| error)
}

/// Lexes `file`; an error comes with where the first token starts, if one was read.
fn run(
    file: &SourceFile,
    env: Option<&super::EnvLookup>,
    grammar_only: bool,
) -> Result<Lexed, (Diagnostic, Option<usize>)> {
    let mut lexer = Lexer::new(file, env).map_err(|error| (error, None))?;
    lexer
        .lex_all(grammar_only)
        .map_err(|error| (error, lexer.tokens.front().map(|t| t.location.start)))?;
    Ok(Lexed {
        tokens: lexer.tokens.into(),
        comments: lexer.comments,
    })
}

impl Lexer<'_> {
    /// Lexes the whole file, with the grammar alone or not.
    fn lex_all(&mut self, grammar_only: bool) -> Result<(), Diagnostic> {
        if !grammar_only {
            return self.scan(usize::MAX);
        }
        let buf = self.buf.clone();
        // The grammar matches any input, so this only fails on pest's own limits.
        let pairs = Grammar::parse(Rule::file, &buf).map_err(|e| unreadable(self, e))?;
        // The one top-level pair is `file`.
        for pair in pairs {
            for item in pair.into_inner() {
                self.item(item)?;
            }
        }
        Ok(())
    }
}

fn unreadable(lexer: &Lexer, error: pest::error::Error<Rule>) -> Diagnostic {
    Diagnostic::error(format!("the file could not be read: {error}"))
        .label(&lexer.location(0, 0), "here")
}

/// Lexes one file, all at once ([`lex`]) or a few tokens at a time as the parser asks for
/// them ([`fill`](Lexer::fill)): a large file's tokens then never all wait in a list, and
/// each is placed in the tree soon after it is made.
pub(super) struct Lexer<'a> {
    file: &'a SourceFile,
    /// The text being lexed (after substitution), shared by the tokens' texts.
    buf: Rc<str>,
    substituted: Option<Substituted>,
    /// Caddy's line counter and the continuation lines not yet added to it.
    line: usize,
    skipped: usize,
    /// Where in the text the input given to pest starts (the pairs' offsets are relative).
    base: usize,
    /// Where scanning resumes.
    pos: usize,
    /// The tokens made and not yet taken. The parser reads them from the front, and puts
    /// the tokens an import expands to there too.
    pub(super) tokens: VecDeque<Token>,
    comments: Vec<Comment>,
    no_imports: Rc<[super::token::ImportSite]>,
    /// The error that stopped [`fill`](Lexer::fill), if any.
    error: Option<Diagnostic>,
}

/// How many tokens [`Lexer::fill`] makes at a time: enough to make the call's cost small,
/// few enough to stay in the processor's cache until the parser takes them.
const FILL_BATCH: usize = 64;

/// Whether `b` starts a blank and is ASCII (`' '` and `\t` to `\r`, as in the grammar's
/// `blank`).
fn is_ascii_blank(b: u8) -> bool {
    b == b' ' || (b'\t'..=b'\r').contains(&b)
}

/// Whether `b` is a character of the grammar's `word_char` taken by its first, range
/// alternatives: printable ASCII but the backslash.
fn is_plain_word_byte(b: u8) -> bool {
    (b'!'..=b'~').contains(&b) && b != b'\\'
}

/// Where the run of [plain word bytes](is_plain_word_byte) from `start` ends: eight bytes at
/// a time (words are mostly names and addresses of a few to a few dozen bytes).
fn plain_word_end(bytes: &[u8], start: usize) -> usize {
    use crate::swar::{HIGH, below, equal, word_at};
    let mut at = start;
    while let Some(word) = word_at(bytes, at) {
        // Below `!`, non-ASCII (the high bit), DEL, or a backslash.
        let other = below(word, b'!') | word & HIGH | equal(word, 0x7f) | equal(word, b'\\');
        if other != 0 {
            return at + (other.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    bytes[at..]
        .iter()
        .position(|&b| !is_plain_word_byte(b))
        .map_or(bytes.len(), |n| at + n)
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `file`, after `{$VAR}` substitution with `env`.
    pub(super) fn new(
        file: &'a SourceFile,
        env: Option<&super::EnvLookup>,
    ) -> Result<Lexer<'a>, Diagnostic> {
        check_text(file)?;
        let substituted = match env {
            // Without a `{$`, substitution would copy the text unchanged.
            Some(lookup) if memchr::memmem::find(file.text().as_bytes(), b"{$").is_some() => {
                Some(super::env::substitute(file, lookup)?)
            }
            _ => None,
        };
        let text = substituted
            .as_ref()
            .map_or(file.text(), |s| s.text.as_str());
        // The tokens' texts are slices of this one copy.
        let buf: Rc<str> = Rc::from(text);
        // `file = SOI ~ bom? ~ item*`
        let pos = if text.starts_with('\u{FEFF}') { 3 } else { 0 };
        Ok(Lexer {
            file,
            buf,
            substituted,
            line: 1,
            skipped: 0,
            base: 0,
            pos,
            tokens: VecDeque::with_capacity(FILL_BATCH),
            comments: Vec::new(),
            no_imports: Rc::from(Vec::new()),
            error: None,
        })
    }

    /// Makes the next few tokens if none is waiting. A lexing error ends the tokens; it is
    /// returned by [`finish`](Self::finish).
    pub(super) fn fill(&mut self) {
        if self.tokens.is_empty()
            && self.error.is_none()
            && let Err(error) = self.scan(FILL_BATCH)
        {
            self.error = Some(error);
        }
    }

    /// Lexes what is left of the file (dropping its tokens) and returns the comments, or the
    /// first lexing error: as if the whole file had been lexed before parsing, a lexing error
    /// is reported rather than a parse error found before it.
    pub(super) fn finish(mut self) -> Result<Vec<Comment>, Diagnostic> {
        while self.error.is_none() && self.pos < self.buf.len() {
            self.tokens.clear();
            self.fill();
        }
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.comments),
        }
    }

    /// Lexes from where the last call stopped until `want` tokens wait or the text ends: the
    /// common items here, every other one with the grammar's `next_item` rule. Each branch
    /// matches exactly the input the grammar's `item` would match at that position, or
    /// leaves it to the grammar.
    fn scan(&mut self, want: usize) -> Result<(), Diagnostic> {
        let buf = self.buf.clone();
        let text: &str = &buf;
        let bytes = text.as_bytes();
        let mut pos = self.pos;
        // On an error, scanning stops for good.
        self.pos = bytes.len();
        while pos < bytes.len() && self.tokens.len() < want {
            let b = bytes[pos];
            if is_ascii_blank(b) {
                // `blank`; a run of ASCII blanks followed by a Unicode space is one blank for
                // the grammar, two here: the lexer only counts their newlines.
                // Blanks are short (a newline and an indentation): a plain loop beats memchr.
                while let Some(&b) = bytes.get(pos).filter(|&&b| is_ascii_blank(b)) {
                    if b == b'\n' {
                        self.newline();
                    }
                    pos += 1;
                }
                continue;
            }
            // `word`: its first character is not `"`, `` ` ``, `#`, `\\` or the `<<` of a
            // heredoc. Only words of printable ASCII without backslash are done here: a
            // backslash, `\r` or any other character sends the whole word to the grammar.
            let word_first = is_plain_word_byte(b)
                && !matches!(b, b'"' | b'`' | b'#')
                && (b != b'<' || bytes.get(pos + 1) != Some(&b'<'));
            if word_first {
                let end = plain_word_end(bytes, pos + 1);
                if end == bytes.len() || is_ascii_blank(bytes[end]) && bytes[end] != b'\r' {
                    let text = Text::slice_of(&self.buf, pos..end);
                    self.push_token(TokenKind::Word, text, pos, end, 0);
                    pos = end;
                    continue;
                }
            } else if b == b'#' {
                // `comment`: up to the newline.
                let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |n| pos + n);
                let location = self.location(pos, end);
                self.comments.push(Comment {
                    text: text[pos..end].trim_end_matches('\r').to_owned(),
                    location,
                });
                pos = end;
                continue;
            } else if b == b'"' {
                // `quoted` without a backslash inside.
                if let Some(n) = memchr::memchr2(b'"', b'\\', &bytes[pos + 1..])
                    && bytes[pos + 1 + n] == b'"'
                {
                    let end = pos + n + 2;
                    let breaks = memchr::memchr_iter(b'\n', &bytes[pos + 1..end - 1]).count();
                    let body = Text::slice_of(&self.buf, pos + 1..end - 1);
                    self.push_token(TokenKind::Quoted, body, pos, end, breaks);
                    pos = end;
                    continue;
                }
            } else if b == b'<' {
                // `heredoc` (`word` took a `<` not followed by another).
                if let Some(end) = self.plain_heredoc(text, pos)? {
                    pos = end;
                    continue;
                }
            } else if b == b'`' {
                // `backtick`.
                if let Some(n) = memchr::memchr(b'`', &bytes[pos + 1..]) {
                    let end = pos + n + 2;
                    let breaks = memchr::memchr_iter(b'\n', &bytes[pos + 1..end - 1]).count();
                    let body = Text::slice_of(&self.buf, pos + 1..end - 1);
                    self.push_token(TokenKind::Backtick, body, pos, end, breaks);
                    pos = end;
                    continue;
                }
            }
            pos = self.grammar_item(text, pos)?;
        }
        self.pos = pos;
        Ok(())
    }

    /// Lexes the one item at `pos` with the grammar; returns where it ends.
    fn grammar_item(&mut self, text: &str, pos: usize) -> Result<usize, Diagnostic> {
        let pairs =
            Grammar::parse(Rule::next_item, &text[pos..]).map_err(|e| unreadable(self, e))?;
        self.base = pos;
        let mut end = pos;
        for pair in pairs {
            end = pos + pair.as_span().end();
            for item in pair.into_inner() {
                self.item(item)?;
            }
        }
        self.base = 0;
        if end == pos {
            // Never: every item matches at least one character.
            return Err(Diagnostic::error("the file could not be read")
                .label(&self.location(pos, pos), "here"));
        }
        Ok(end)
    }

    fn location(&self, start: usize, end: usize) -> Location {
        let (start, end) = match &self.substituted {
            Some(s) => (
                s.original_offset(start, false),
                s.original_offset(end, true),
            ),
            None => (start, end),
        };
        Location {
            file: self.file.clone(),
            start,
            end: end.max(start),
        }
    }

    /// Where `pair` starts in the whole text.
    fn start_of(&self, pair: &Pair<Rule>) -> usize {
        self.base + pair.as_span().start()
    }

    fn pair_location(&self, pair: &Pair<Rule>) -> Location {
        let span = pair.as_span();
        self.location(self.base + span.start(), self.base + span.end())
    }

    fn newline(&mut self) {
        self.line += 1 + self.skipped;
        self.skipped = 0;
    }

    fn item(&mut self, pair: Pair<Rule>) -> Result<(), Diagnostic> {
        match pair.as_rule() {
            Rule::blank => {
                for _ in pair.as_str().bytes().filter(|&b| b == b'\n') {
                    self.newline();
                }
            }
            Rule::continuation => self.skipped += 1,
            Rule::dangling_escape | Rule::EOI => {}
            Rule::comment => {
                let location = self.pair_location(&pair);
                self.comments.push(Comment {
                    text: pair.as_str().trim_end_matches('\r').to_owned(),
                    location,
                });
            }
            Rule::unterminated_quoted | Rule::unterminated_backtick => {
                let (quote, what, help) = if pair.as_rule() == Rule::unterminated_quoted {
                    (
                        '"',
                        "quoted",
                        "add the closing \", or write \\\" for a quote inside the text",
                    )
                } else {
                    (
                        '`',
                        "backtick",
                        "add the closing ` (backtick text has no escapes)",
                    )
                };
                let open = pair.as_str().find(quote).unwrap_or(0) + self.start_of(&pair);
                return Err(Diagnostic::error(format!("unterminated {what} text"))
                    .label(&self.location(open, open + 1), "this quote is never closed")
                    .help(help));
            }
            Rule::heredoc_missing_marker => {
                return Err(Diagnostic::error("heredoc has no marker")
                    .label(&self.pair_location(&pair), "expected a marker after `<<`")
                    .help(
                        "name the heredoc, e.g. `<<END`, and close it with `END` on its own line",
                    ));
            }
            Rule::heredoc_cr_in_marker => {
                let at = self.pair_location(&pair);
                let marker = pair.as_str()[2..].replace('\r', "");
                check_marker(&marker, &at)?;
                return Err(Diagnostic::error(format!(
                    "heredoc marker {marker:?} contains a carriage return"
                ))
                .label(&at, "here")
                .help("remove the carriage return from the marker"));
            }
            Rule::unterminated_heredoc => {
                let marker = pair
                    .clone()
                    .into_inner()
                    .next()
                    .map_or("", |m| m.as_str())
                    .to_owned();
                let start = self.start_of(&pair);
                let at = self.location(start, start + 2 + marker.len());
                check_marker(&marker, &at)?;
                return Err(
                    Diagnostic::error(format!("heredoc <<{marker} is never closed"))
                        .label(&at, "this heredoc has no closing marker")
                        .help(format!(
                            "end it with a line holding only `{marker}` (after the indentation)"
                        )),
                );
            }
            _ => self.token(pair)?,
        }
        Ok(())
    }

    fn token(&mut self, pair: Pair<Rule>) -> Result<(), Diagnostic> {
        let rule = pair.as_rule();
        let raw = pair.as_str();
        let span = pair.as_span();
        let (kind, text) = match rule {
            Rule::word | Rule::angle_word => (TokenKind::Word, word_value(raw)),
            Rule::escaped_word => {
                // `\`, spaces, then the escaped first character.
                let rest = raw[1..].trim_start_matches(|c: char| c != '\n' && c.is_whitespace());
                let first = rest.chars().next().unwrap_or_default();
                let mut text = if first == '<' {
                    String::new()
                } else {
                    String::from("\\")
                };
                text.push(first);
                text.push_str(&word_value(&rest[first.len_utf8()..]));
                (TokenKind::Word, text)
            }
            Rule::quoted => (TokenKind::Quoted, quoted_value(&raw[1..raw.len() - 1])),
            Rule::escaped_quoted => {
                // The pending backslash escapes the first character inside the quotes.
                let body = &raw[raw.find('"').expect("has a quote") + 1..raw.len() - 1];
                (TokenKind::Quoted, quoted_value(&format!("\\{body}")))
            }
            Rule::backtick | Rule::escaped_backtick => {
                let body = &raw[raw.find('`').expect("has a backtick") + 1..raw.len() - 1];
                (TokenKind::Backtick, body.to_owned())
            }
            Rule::heredoc => (TokenKind::Heredoc, self.heredoc_text(pair)?),
            _ => return Ok(()),
        };
        let breaks = match kind {
            TokenKind::Word => 0,
            _ => raw.bytes().filter(|&b| b == b'\n').count(),
        };
        let (start, end) = (self.base + span.start(), self.base + span.end());
        self.push_token(kind, Text::from(text), start, end, breaks);
        Ok(())
    }

    /// Adds a token made from `start..end` of the text, which holds `breaks` newlines.
    fn push_token(&mut self, kind: TokenKind, text: Text, start: usize, end: usize, breaks: usize) {
        let line = self.line;
        for _ in 0..breaks {
            self.newline();
        }
        // A word made only of `\r` is no token at all.
        if kind == TokenKind::Word && text.is_empty() {
            return;
        }
        let location = self.location(start, end);
        self.tokens.push_back(Token {
            text,
            kind,
            location,
            line: line_number(line),
            breaks: line_number(breaks),
            imports: self.no_imports.clone(),
        });
    }

    fn heredoc_text(&self, pair: Pair<Rule>) -> Result<String, Diagnostic> {
        let span = pair.as_span();
        let (start, end) = (self.base + span.start(), self.base + span.end());
        let mut marker = "";
        let mut body = "";
        let mut body_start = 0;
        let mut padding = "";
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::heredoc_marker => marker = part.as_str(),
                Rule::heredoc_body => {
                    body = part.as_str();
                    body_start = self.start_of(&part);
                }
                Rule::heredoc_close => {
                    padding = part.into_inner().next().map_or("", |p| p.as_str());
                }
                _ => {}
            }
        }
        self.heredoc_value(start..end, marker, body, body_start, padding)
    }

    /// The value of the heredoc at `span`: its body's lines without the closing marker's
    /// indentation `padding` (`\r` dropped), or an error if a line lacks it.
    fn heredoc_value(
        &self,
        span: std::ops::Range<usize>,
        marker: &str,
        body: &str,
        body_start: usize,
        padding: &str,
    ) -> Result<String, Diagnostic> {
        let start = span.start;
        check_marker(marker, &self.location(start, start + 2 + marker.len()))?;
        let mut value = String::with_capacity(body.len());
        let mut offset = body_start;
        for (i, line) in body.split_terminator('\n').enumerate() {
            if i > 0 {
                value.push('\n');
            }
            let content = line.trim_end_matches('\r');
            if content.is_empty() {
            } else if let Some(rest) = content.strip_prefix(padding) {
                if rest.contains('\r') {
                    value.push_str(&rest.replace('\r', ""));
                } else {
                    value.push_str(rest);
                }
            } else {
                let indent_len = content.len() - content.trim_start().len();
                return Err(Diagnostic::error(format!(
                    "heredoc line is not indented like its closing marker {marker}"
                ))
                .label(
                    &self.location(offset, offset + indent_len.max(1)),
                    "this indentation",
                )
                .label(&self.location(span.start, span.end), "in this heredoc")
                .help(format!(
                    "start every line of the heredoc with the closing marker's indentation {}",
                    describe_whitespace(padding)
                )));
            }
            offset += line.len() + 1;
        }
        Ok(value)
    }

    /// The grammar's `heredoc` at `pos` (which starts with `<<`) in its plain form: a marker of
    /// ASCII letters, digits, `_` and `-` directly followed by `\n`, and a closing line
    /// indented with spaces and tabs, its marker followed by ASCII whitespace or the end.
    /// Adds the token and returns where it ends; `None` leaves the item to the grammar.
    fn plain_heredoc(&mut self, text: &str, pos: usize) -> Result<Option<usize>, Diagnostic> {
        let bytes = text.as_bytes();
        let marker_start = pos + 2;
        let marker_len = bytes[marker_start..]
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
            .unwrap_or(bytes.len() - marker_start);
        if marker_len == 0 || bytes.get(marker_start + marker_len) != Some(&b'\n') {
            return Ok(None);
        }
        let marker = &text[marker_start..marker_start + marker_len];
        let body_start = marker_start + marker_len + 1;
        let mut line = body_start;
        // The grammar's `heredoc_end`, tried at the start of each line of the body.
        let (padding_end, end) = loop {
            let indent = bytes[line..]
                .iter()
                .position(|&b| b != b' ' && b != b'\t')
                .unwrap_or(bytes.len() - line);
            let after_indent = line + indent;
            match bytes.get(after_indent) {
                // Another space (Unicode, `\r`, …) would be part of the grammar's indentation.
                Some(&b) if b >= 0x80 || (is_ascii_blank(b) && b != b'\n') => return Ok(None),
                _ => {}
            }
            if text[after_indent..].starts_with(marker) {
                let close_end = after_indent + marker_len;
                match bytes.get(close_end) {
                    None => break (after_indent, close_end),
                    Some(&b) if is_ascii_blank(b) => break (after_indent, close_end),
                    Some(&b) if b >= 0x80 => return Ok(None),
                    Some(_) => {}
                }
            }
            match memchr::memchr(b'\n', &bytes[line..]) {
                Some(n) => line += n + 1,
                None => return Ok(None),
            }
        };
        let value = self.heredoc_value(
            pos..end,
            marker,
            &text[body_start..line],
            body_start,
            &text[line..padding_end],
        )?;
        let breaks = memchr::memchr_iter(b'\n', &bytes[pos..end]).count();
        self.push_token(TokenKind::Heredoc, Text::from(value), pos, end, breaks);
        Ok(Some(end))
    }
}

/// Refuses a file that is not text (a binary file given by mistake): one with a NUL byte
/// or with bytes that are not UTF-8 (read as U+FFFD). Nothing of it is shown.
fn check_text(file: &SourceFile) -> Result<(), Diagnostic> {
    let bytes = file.text().as_bytes();
    let first = [
        (memchr::memchr(0, bytes), "is a NUL byte"),
        (
            memchr::memmem::find(bytes, "\u{FFFD}".as_bytes()),
            "is not UTF-8",
        ),
    ]
    .into_iter()
    .filter_map(|(at, what)| Some((at?, what)))
    .min();
    match first {
        None => Ok(()),
        Some((at, what)) => Err(Diagnostic::error(format!(
            "{} is not a text Profilingfile: byte {at} {what}",
            file.name()
        ))
        .help("check that this is the file you meant: a Profilingfile is UTF-8 text, without NUL bytes or U+FFFD")),
    }
}

fn check_marker(marker: &str, at: &Location) -> Result<(), Diagnostic> {
    if marker.starts_with('<') {
        return Err(Diagnostic::error("too many '<' for a heredoc")
            .label(at, "here")
            .help("use only two, for example <<END"));
    }
    if !marker
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Diagnostic::error(format!(
            "heredoc marker {marker:?} must contain only alphanumeric characters, dashes and underscores"
        ))
        .label(at, "invalid marker")
        .help("use a marker such as <<END; to write `<<` as text, quote it or write \\<<"));
    }
    Ok(())
}

fn describe_whitespace(padding: &str) -> String {
    if padding.is_empty() {
        return "(none)".to_owned();
    }
    let tabs = padding.matches('\t').count();
    let spaces = padding.matches(' ').count();
    match (tabs, spaces) {
        (0, n) => format!("({n} spaces)"),
        (n, 0) => format!("({n} tabs)"),
        _ => format!("{padding:?}"),
    }
}

/// The value of a bare word from its text: `\r` dropped, `\<` is `<`, a backslash before
/// a space or the end is lost, and any other backslash is kept with its character (§2.3).
fn word_value(raw: &str) -> String {
    if !raw.contains(['\\', '\r']) {
        return raw.to_owned();
    }
    let mut text = String::with_capacity(raw.len());
    let mut chars = raw.chars().filter(|&c| c != '\r');
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        match chars.next() {
            // Before whitespace or at the end of the input: lost.
            None => {}
            Some('<') => text.push('<'),
            Some(escaped) => {
                text.push('\\');
                text.push(escaped);
            }
        }
    }
    text
}

/// The value of a double-quoted token from the text between its quotes: `\"` is `"`, any
/// other backslash is kept with the character after it (§2.5).
fn quoted_value(body: &str) -> String {
    if !body.contains('\\') {
        return body.to_owned();
    }
    let mut text = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => text.push('"'),
            Some(next) => {
                text.push('\\');
                text.push(next);
            }
            None => text.push('\\'),
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The eight-bytes-at-a-time scan ends a word at the same byte as a byte-by-byte one,
    /// for every byte value at every place, from any start.
    #[test]
    fn plain_word_end_stops_at_the_first_other_byte() {
        let scalar = |bytes: &[u8], start: usize| {
            bytes[start..]
                .iter()
                .position(|&b| !is_plain_word_byte(b))
                .map_or(bytes.len(), |n| start + n)
        };
        for len in 0..=20 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut bytes = vec![b'w'; len];
                    bytes[at] = byte;
                    // A second byte after it, which must not be found instead.
                    if at + 3 < len {
                        bytes[at + 3] = b' ';
                    }
                    for start in 0..=len {
                        assert_eq!(
                            plain_word_end(&bytes, start),
                            scalar(&bytes, start),
                            "{byte:#x} at {at} of {len}, from {start}"
                        );
                    }
                }
            }
        }
    }

    /// Lexes `input` and groups the token texts by logical line.
    fn lines(input: &str) -> Result<Vec<Vec<String>>, String> {
        let file = SourceFile::new("Profilingfile", input);
        let env = |name: &str| (name == "X").then(|| "a b".to_owned());
        let lexed = lex(&file, Some(&env)).map_err(|d| d.message().to_owned())?;
        let mut out: Vec<Vec<String>> = Vec::new();
        let mut prev: Option<&Token> = None;
        for token in &lexed.tokens {
            match prev {
                Some(p) if !p.is_followed_on_new_line_by(token) => {
                    out.last_mut().unwrap().push(token.text.to_string())
                }
                _ => out.push(vec![token.text.to_string()]),
            }
            prev = Some(token);
        }
        Ok(out)
    }

    fn ok(input: &str, want: &[&[&str]]) {
        let want: Vec<Vec<String>> = want
            .iter()
            .map(|l| l.iter().map(|s| s.to_string()).collect())
            .collect();
        assert_eq!(lines(input), Ok(want), "input {input:?}");
    }

    fn err(input: &str, message_part: &str) {
        match lines(input) {
            Err(m) => assert!(m.contains(message_part), "input {input:?}: {m}"),
            Ok(l) => panic!("input {input:?} lexed to {l:?}, expected error"),
        }
    }

    // §2.1 input
    #[test]
    fn bom_and_invalid_utf8_and_empty() {
        ok("\u{FEFF}a b", &[&["a", "b"]]);
        ok("a\u{FEFF}b", &[&["a\u{FEFF}b"]]);
        ok("", &[]);
        ok("  # only a comment\n\n", &[]);
    }

    // A binary file given by mistake.
    #[test]
    fn files_that_are_not_text_are_refused() {
        err(
            "a b\u{0}c \u{0}",
            "is not a text Profilingfile: byte 3 is a NUL byte",
        );
        err("a é\u{FFFD}\u{0}", "byte 4 is not UTF-8");
        // Other control characters stay word characters.
        ok("a\u{1}b\u{7f}", &[&["a\u{1}b\u{7f}"]]);
    }

    // §2.2 whitespace
    #[test]
    fn unicode_whitespace_separates() {
        ok(
            "a\u{00A0}b\u{2003}c\u{3000}d\u{0085}e\u{000B}f",
            &[&["a", "b", "c", "d", "e", "f"]],
        );
        ok("a\u{200B}b", &[&["a\u{200B}b"]]);
        ok("ab\rcd", &[&["abcd"]]);
        ok("a\r\nb\r\n", &[&["a"], &["b"]]);
        ok("a\tb\n\n\nc", &[&["a", "b"], &["c"]]);
    }

    // §2.3 bare words and backslashes
    #[test]
    fn bare_words_and_backslashes() {
        ok("a{b}c x{ }y", &[&["a{b}c", "x{", "}y"]]);
        ok("a\"b c\"d", &[&["a\"b", "c\"d"]]);
        ok("a#b 'q r'", &[&["a#b", "'q", "r'"]]);
        ok("ab\\\ncd\nef", &[&["ab", "cd"], &["ef"]]);
        ok("ab\\\r\ncd", &[&["ab", "cd"]]);
        ok("a\\ b", &[&["a", "b"]]);
        ok("\\<<EOF\nx", &[&["<<EOF"], &["x"]]);
        ok("a\\<b", &[&["a<b"]]);
        ok("\\\"abc\"", &[&["\\abc"]]);
        ok("\\`abc`", &[&["abc"]]);
        ok(
            "a\\b a\\\\b a\\\"b a\\{b\\} \\$y",
            &[&["a\\b", "a\\\\b", "a\\\"b", "a\\{b\\}", "\\$y"]],
        );
        ok("ab\\", &[&["ab"]]);
        ok("a \\", &[&["a"]]);
        ok("a \\ b", &[&["a", "\\b"]]);
        ok("a \\ \nb", &[&["a", "b"]]);
    }

    // §2.4 comments
    #[test]
    fn comments() {
        ok("a #b\nc", &[&["a"], &["c"]]);
        ok("a#b", &[&["a#b"]]);
        ok("\"a\"#b\nc", &[&["a"], &["c"]]);
        ok("{#c", &[&["{#c"]]);
        ok("x # \"{ `\n y", &[&["x"], &["y"]]);
        // Improvement 2: a backslash in a comment does not continue the line.
        ok("path a # C:\\dir\nb", &[&["path", "a"], &["b"]]);
        ok("a \\#c\nb", &[&["a"], &["b"]]);
    }

    // §2.5 double quotes
    #[test]
    fn double_quotes() {
        ok("\"a\"b", &[&["a", "b"]]);
        ok("\"a\"\"b\"", &[&["a", "b"]]);
        ok(r#""a\"b" "\\" "\n""#, &[&["a\"b", "\\\\", "\\n"]]);
        ok(r#""a\\\"b""#, &[&["a\\\\\"b"]]);
        ok("\"a\nb\" c", &[&["a\nb", "c"]]);
        ok("\"a\r\nb\"", &[&["a\r\nb"]]);
        ok("\"a\\\nb\"", &[&["a\\\nb"]]);
        ok("x \"\" y", &[&["x", "", "y"]]);
        ok("\"{\" \"}\" \"{}\"", &[&["{", "}", "{}"]]);
        err("a \"b\nc", "unterminated");
    }

    // §2.6 backticks
    #[test]
    fn backticks() {
        ok("`a\\` b", &[&["a\\", "b"]]);
        ok("`a \"b\" # {c}\nd`e", &[&["a \"b\" # {c}\nd", "e"]]);
        err("`abc", "unterminated");
    }

    // §2.7 heredocs
    #[test]
    fn heredocs() {
        ok(
            "a <<EOF\n\tx\n\t  y\n\tEOF b\nc",
            &[&["a", "x\n  y", "b"], &["c"]],
        );
        ok("a <<EOF same line", &[&["a", "<<EOF", "same", "line"]]);
        ok("<< >>", &[&["<<", ">>"]]);
        ok("a <<EOF", &[&["a", "<<EOF"]]);
        ok("a a<<EOF", &[&["a", "a<<EOF"]]);
        ok("a \"<<EOF\"", &[&["a", "<<EOF"]]);
        ok("a <<EOF\r\n  x\r\n  EOF\r\n", &[&["a", "x"]]);
        ok("a <<EOF\n  x\n\n  y\n  EOF", &[&["a", "x\n\ny"]]);
        ok("a <<EOF\n\nEOF", &[&["a", ""]]);
        ok("<<<EOF x", &[&["<<<EOF", "x"]]);
        // Improvement 4: the marker inside a text line is text.
        ok(
            "a <<END\n the END is near\nEND",
            &[&["a", " the END is near"]],
        );
        ok("a <<END\nENDtail\nEND", &[&["a", "ENDtail"]]);
        err("a <<\nx", "no marker");
        err("a <<<EOF\nx\nEOF", "too many '<'");
        err("a <<E.F\nx\nE.F", "alphanumeric");
        err("a <<EOF\tx\nEOF", "alphanumeric");
        // `\r` inside the marker line is ignored, so the rest is marker too (found by cargo
        // fuzz: the formatter dropped the `\r` of a word and made it a heredoc).
        err("<<]\x06\r/,\nA", "alphanumeric");
        err("a <<E\rOF\nx\nEOF", "carriage return");
        err("a <<EOF\n\tx\n  EOF", "not indented");
        err("a <<EOF\n x\n", "never closed");
        err("a <<EOF\n", "never closed");
    }

    // §2.8 lines
    #[test]
    fn logical_lines() {
        ok("a \\\nb \\\nc\nd", &[&["a", "b", "c"], &["d"]]);
        // A continuation followed by a multi-line quoted token moves what follows to a new line.
        ok("a \\\n\"x\ny\" b\nc", &[&["a", "x\ny"], &["b"], &["c"]]);
        ok("a \"x\ny\" b", &[&["a", "x\ny", "b"]]);
        // Improvement 3: an empty heredoc does not glue the next line on.
        ok(
            "path <<EOF\nEOF\nrespond x",
            &[&["path", ""], &["respond", "x"]],
        );
        ok(
            "path <<EOF\n\nEOF\nrespond x",
            &[&["path", ""], &["respond", "x"]],
        );
    }

    // §1 happens before lexing
    #[test]
    fn env_values_are_lexed() {
        ok("d {$X} c", &[&["d", "a", "b", "c"]]);
        ok("d \"{$X}\"", &[&["d", "a b"]]);
        ok("d {$Y}\ne", &[&["d"], &["e"]]);
        err("d {$X\n}", "not closed");
    }

    #[test]
    fn positions_point_at_the_original_text() {
        let file = SourceFile::new("f", "ab {$X} cd\n  ef");
        let env = |_: &str| Some("long value".to_owned());
        let lexed = lex(&file, Some(&env)).unwrap();
        let cd = lexed.tokens.iter().find(|t| t.text == "cd").unwrap();
        assert_eq!(cd.location.line_col(), (1, 9));
        let ef = lexed.tokens.iter().find(|t| t.text == "ef").unwrap();
        assert_eq!(ef.location.line_col(), (2, 3));
        assert_eq!(ef.source_text(), "ef");
    }
}
