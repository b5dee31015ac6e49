//! Source files: the text the user gave, its name, and line/column lookup.

use std::sync::Arc;

use miette::NamedSource;

/// How deeply blocks of a Profilingfile, or objects and arrays of a JSON config, may nest.
///
/// A config needs a handful of levels (an app, a profiler, its parameters); the limit is
/// checked where the nesting is read, with an error at the brace that crosses it, so that no
/// later stage can run out of stack on a deeper input (32 levels fit a 256 KiB thread stack
/// in a debug build).
///
/// ```
/// let deep = "profiling {\n".repeat(caddyprof::MAX_NESTING + 1);
/// let error = caddyprof::adapt(&deep).unwrap_err();
/// assert_eq!(error.to_string(), "Profilingfile:33:11: blocks are nested more than 32 levels deep");
/// ```
pub const MAX_NESTING: usize = 32;

/// One input file (or string), shared cheaply between tokens and diagnostics.
///
/// The text is the file exactly as read, before environment substitution, so that every
/// position shown to the user points into what they wrote.
#[derive(Clone)]
pub struct SourceFile {
    inner: Arc<Inner>,
}

struct Inner {
    named: NamedSource<Arc<str>>,
    /// The byte offset where each line starts, found when a position is first asked for
    /// (adapting a valid file never asks).
    line_starts: std::sync::OnceLock<Vec<usize>>,
    /// For a file read by an `import`: where its first token starts (set once it is lexed).
    import_first_token: std::sync::OnceLock<usize>,
}

impl SourceFile {
    /// Wraps `text` under the display name `name` (a path, or something like `<stdin>`).
    ///
    /// ```
    /// let file = caddyprof::SourceFile::new("Profilingfile", "profefe\n");
    /// assert_eq!(file.line_col(1), (1, 2));
    /// ```
    pub fn new(name: impl AsRef<str>, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        SourceFile {
            inner: Arc::new(Inner {
                named: NamedSource::new(name, text),
                line_starts: std::sync::OnceLock::new(),
                import_first_token: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The display name of the file.
    pub fn name(&self) -> &str {
        self.inner.named.name()
    }

    /// The whole text of the file.
    pub fn text(&self) -> &str {
        self.inner.named.inner()
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text().len());
        let line_starts = self.line_starts();
        let line = line_starts.partition_point(|&start| start <= offset) - 1;
        let start = line_starts[line];
        let column = self.text()[start..self.text().floor_char_boundary(offset)]
            .chars()
            .count();
        (line + 1, column + 1)
    }

    /// The byte offset where each line starts (the first is 0).
    pub(crate) fn line_starts(&self) -> &[usize] {
        self.inner.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(memchr::memchr_iter(b'\n', self.text().as_bytes()).map(|i| i + 1))
                .collect()
        })
    }

    /// Marks this file as read by an `import`, its first token at `offset`.
    pub(crate) fn mark_imported(&self, first_token: usize) {
        // Set once, when the file is lexed.
        let _ = self.inner.import_first_token.set(first_token);
    }

    /// Whether this file was read by an `import` and its first token starts at `offset`: an
    /// error there most likely means it is no Profilingfile at all.
    pub(crate) fn is_first_token_of_import(&self, offset: usize) -> bool {
        self.inner.import_first_token.get() == Some(&offset)
    }

    /// Whether `other` is a clone of this very file (the same allocation).
    pub(crate) fn is_same_allocation(&self, other: &SourceFile) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The miette source code of this file, for diagnostics.
    pub fn source_code(&self) -> &NamedSource<Arc<str>> {
        &self.inner.named
    }
}

impl std::fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceFile")
            .field("name", &self.name())
            .finish()
    }
}

impl PartialEq for SourceFile {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || (Arc::ptr_eq(self.inner.named.inner(), other.inner.named.inner())
                && self.name() == other.name())
    }
}

/// A byte range inside one [`SourceFile`].
#[derive(Clone, Debug, PartialEq)]
pub struct Location {
    /// The file.
    pub file: SourceFile,
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset just past the last byte.
    pub end: usize,
}

impl Location {
    /// The 1-based line and column of the start.
    pub fn line_col(&self) -> (usize, usize) {
        self.file.line_col(self.start)
    }

    /// The span, for miette labels.
    pub fn span(&self) -> miette::SourceSpan {
        (self.start, self.end.saturating_sub(self.start)).into()
    }

    /// `file:line:column`, as shown in messages.
    pub fn display(&self) -> String {
        let (line, column) = self.line_col();
        format!("{}:{line}:{column}", self.file.name())
    }
}
