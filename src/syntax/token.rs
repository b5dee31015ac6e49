//! Tokens: what the lexer produces and the parser reads.

use std::fmt;
use std::ops::{Deref, Range};
use std::rc::Rc;

use crate::source::{Location, SourceFile};

/// How a token was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A bare word.
    Word,
    /// A `"double-quoted"` string.
    Quoted,
    /// A `` `backtick` `` string.
    Backtick,
    /// A `<<MARKER` heredoc.
    Heredoc,
}

/// One token of a Profilingfile, with where it came from.
#[derive(Clone, Debug)]
pub struct Token {
    /// The token's value: quotes removed, escapes applied, heredoc indentation stripped.
    pub text: Text,
    /// How it was written.
    pub kind: TokenKind,
    /// Where it is in the source (for a token made by an import, where it was written).
    pub location: Location,
    /// The logical line number, counted as Caddy does (a continued line keeps the number of
    /// the line it continues). (`u32`, as `breaks`, to keep tokens small: see
    /// [`line_number`].)
    pub(crate) line: u32,
    /// How many line breaks the token spans.
    pub(crate) breaks: u32,
    /// The chain of imports that brought this token in (innermost last); empty if none.
    pub imports: Rc<[ImportSite]>,
}

/// One `import` that brought tokens in.
#[derive(Clone, Debug)]
pub struct ImportSite {
    /// The `import` token.
    pub at: Location,
    /// The snippet imported, or `None` for a file.
    pub snippet: Option<Rc<str>>,
}

impl Token {
    /// The snippet this token was copied from, if any: the one the innermost import brought
    /// in.
    ///
    /// ```
    /// use caddyprof::SourceFile;
    /// use caddyprof::syntax::{ParseOptions, parse};
    ///
    /// let file = SourceFile::new("Profilingfile", "(s) {\n\tprofefe\n}\nprofiling {\n\timport s\n}\n");
    /// let options = ParseOptions { expand: true, env: None, base_dir: ".".into() };
    /// let block = &parse(&file, &options).unwrap().document.blocks[0];
    /// assert_eq!(block.keys[0].snippet(), None);
    /// assert_eq!(block.body.directives[0].name.snippet(), Some("s"));
    /// ```
    pub fn snippet(&self) -> Option<&str> {
        self.imports.last().and_then(|site| site.snippet.as_deref())
    }

    /// Whether the token was quoted in any way (quotes, backticks or heredoc).
    pub fn was_quoted(&self) -> bool {
        self.kind != TokenKind::Word
    }

    /// Whether this is a structural `{`.
    pub fn is_open_brace(&self) -> bool {
        self.kind == TokenKind::Word && self.text == "{"
    }

    /// Whether this is a structural `}`.
    pub fn is_close_brace(&self) -> bool {
        self.kind == TokenKind::Word && self.text == "}"
    }

    /// The logical line the token ends on.
    fn end_line(&self) -> u32 {
        self.line.saturating_add(self.breaks)
    }

    /// Whether `next` starts a new logical line after this token (`docs/profilingfile.md` §2.8).
    pub fn is_followed_on_new_line_by(&self, next: &Token) -> bool {
        new_line_between(&self.location.file, &self.imports, self.end_line(), next)
    }

    /// What the parser keeps of the last token read to place the next one.
    pub(crate) fn line_mark(&self) -> LineMark {
        LineMark {
            file: self.location.file.clone(),
            imports: self.imports.clone(),
            end_line: self.end_line(),
        }
    }

    /// The token as written in the source, quotes and escapes included.
    pub fn source_text(&self) -> &str {
        &self.location.file.text()[self.location.start..self.location.end]
    }
}

/// A line number or count as tokens keep it: beyond `u32::MAX` (a file of more than 4 GiB)
/// it stays at `u32::MAX`.
pub(crate) fn line_number(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The file, import chain and last logical line of a token: enough to tell whether another
/// token starts a new line after it, without copying the token.
#[derive(Clone, Debug)]
pub(crate) struct LineMark {
    file: SourceFile,
    imports: Rc<[ImportSite]>,
    end_line: u32,
}

impl LineMark {
    /// Whether `token` has the same file and import chain (the same allocations) as the
    /// marked token.
    pub(crate) fn is_same_place(&self, token: &Token) -> bool {
        self.file.is_same_allocation(&token.location.file)
            && Rc::ptr_eq(&self.imports, &token.imports)
    }

    /// Marks `token` instead, which [`is_same_place`](Self::is_same_place) as the marked one.
    pub(crate) fn set_end_line(&mut self, token: &Token) {
        self.end_line = token.end_line();
    }

    /// Whether `next` starts a new logical line after the marked token.
    pub(crate) fn is_followed_on_new_line_by(&self, next: &Token) -> bool {
        new_line_between(&self.file, &self.imports, self.end_line, next)
    }
}

/// §2.8: a new line if the files or import chains differ, or if `next` starts on a later
/// logical line than the one the previous token ends on.
fn new_line_between(
    file: &SourceFile,
    imports: &Rc<[ImportSite]>,
    end_line: u32,
    next: &Token,
) -> bool {
    *file != next.location.file
        || !Rc::ptr_eq(imports, &next.imports) && !same_chain(imports, &next.imports)
        || end_line < next.line
}

fn same_chain(a: &[ImportSite], b: &[ImportSite]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.at.start == y.at.start && x.at.file == y.at.file && x.snippet == y.snippet
        })
}

/// A comment, kept for the formatter.
#[derive(Clone, Debug)]
pub struct Comment {
    /// The comment text, `#` included.
    pub text: String,
    /// Where it is.
    pub location: Location,
}

/// The value of a token: a string that is cheap to clone.
///
/// Most tokens are a slice of the text the lexer read (shared by all of that file's tokens),
/// so lexing and copying tokens for imports do not copy or allocate their texts. It reads as
/// a `&str` (through `Deref`), compares with strings, and prints like a `String`.
///
/// ```
/// use caddyprof::syntax::Text;
///
/// let text = Text::from("profefe");
/// assert_eq!(text, "profefe");
/// assert_eq!(text.as_str().len(), 7);
/// assert!(text.starts_with("pro"));
/// assert_eq!(format!("{text:?} {text}"), "\"profefe\" profefe");
/// ```
#[derive(Clone)]
pub struct Text {
    /// The shared text this one is a slice of.
    buf: Rc<str>,
    /// Where the slice starts and how long it is, or [`WHOLE`] for all of `buf`. (`u32`s keep
    /// tokens small; a slice that does not fit is copied into a buffer of its own.)
    start: u32,
    len: u32,
}

/// The `len` of a [`Text`] that is its whole buffer, whatever its length.
const WHOLE: u32 = u32::MAX;

impl Text {
    /// `range` of `buf`, sharing it (copied if it lies beyond 4 GiB).
    #[inline]
    pub(crate) fn slice_of(buf: &Rc<str>, range: Range<usize>) -> Text {
        debug_assert!(buf.get(range.clone()).is_some());
        match (u32::try_from(range.start), u32::try_from(range.len())) {
            (Ok(start), Ok(len)) if len != WHOLE => Text {
                buf: buf.clone(),
                start,
                len,
            },
            _ => Text::from(&buf[range]),
        }
    }

    /// The text as a `&str`.
    #[inline]
    pub fn as_str(&self) -> &str {
        if self.len == WHOLE {
            return &self.buf;
        }
        let start = self.start as usize;
        &self.buf[start..start + self.len as usize]
    }
}

impl Default for Text {
    fn default() -> Self {
        Text::from("")
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Text::from(Rc::<str>::from(text))
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Text::from(Rc::<str>::from(text))
    }
}

impl From<Rc<str>> for Text {
    fn from(buf: Rc<str>) -> Self {
        Text {
            buf,
            start: 0,
            len: WHOLE,
        }
    }
}

impl From<Text> for String {
    fn from(text: Text) -> Self {
        text.as_str().to_owned()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

/// The import chain of tokens brought in by `site` from a token with chain `parent`.
pub(crate) fn chain_with(parent: &Rc<[ImportSite]>, site: ImportSite) -> Rc<[ImportSite]> {
    parent
        .iter()
        .cloned()
        .chain(std::iter::once(site))
        .collect()
}
