//! Diagnostics: every problem in the user's input, with where it is and how to fix it.

use std::fmt;
use std::sync::OnceLock;

use miette::{LabeledSpan, Severity};

use crate::excerpt::{Excerpt, bounded};
use crate::source::{Location, SourceFile};

/// One problem (or warning) about the user's input.
///
/// Renders through miette with the file name, line, column, a label on the exact token, and a
/// help line. Of the file, only the lines around the labels are shown, each cut to about 120
/// characters around them; a message that quotes a long token quotes its ends.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    severity: Severity,
    message: String,
    file: Option<SourceFile>,
    labels: Vec<(Location, String)>,
    help: Option<String>,
    related: Vec<Diagnostic>,
    /// What is shown of `file`, made when first rendered.
    excerpt: OnceLock<Excerpt>,
    /// Labels and help added from now on are dropped (see [`sealed`](Self::sealed)).
    sealed: bool,
}

impl Diagnostic {
    /// An error with `message`, not yet pointing anywhere.
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: bounded(message.into()),
            file: None,
            labels: Vec::new(),
            help: None,
            related: Vec::new(),
            excerpt: OnceLock::new(),
            sealed: false,
        }
    }

    /// A warning: shown to the user, but the input is still accepted.
    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    /// An informational note.
    pub fn advice(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Advice,
            ..Diagnostic::error(message)
        }
    }

    /// Adds a label at `at`. The first label decides the file shown. A label in another file
    /// than the first one becomes a related note, so nothing is lost.
    pub fn label(mut self, at: &Location, text: impl Into<String>) -> Self {
        if self.sealed {
            return self;
        }
        let text = bounded(text.into());
        self.excerpt = OnceLock::new();
        match &self.file {
            None => {
                self.file = Some(at.file.clone());
                self.labels.push((at.clone(), text));
            }
            Some(file) if *file == at.file => self.labels.push((at.clone(), text)),
            Some(_) => self
                .related
                .push(Diagnostic::advice(text.clone()).label(at, text)),
        }
        self
    }

    /// Sets the help line: how to fix the problem.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        if !self.sealed {
            self.help = Some(bounded(help.into()));
        }
        self
    }

    /// Keeps the labels and help as they are: those added later are dropped. For a
    /// diagnostic made in place of one about text that must not be shown (an imported file
    /// that is no Profilingfile), which the code that asked for it goes on to label.
    pub(crate) fn sealed(mut self) -> Self {
        self.sealed = true;
        self
    }

    /// Adds a related note (for example, where an import came from).
    pub fn related(mut self, note: Diagnostic) -> Self {
        self.related.push(note);
        self
    }

    /// The message, without position.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether this is an error (as opposed to a warning or note).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The severity.
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// Where the primary label points, if anywhere.
    pub fn location(&self) -> Option<&Location> {
        self.labels.first().map(|(at, _)| at)
    }

    /// The help line, if any.
    pub fn help_text(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// What is shown of the file (the labels' lines), if there are labels.
    fn excerpt(&self) -> Option<&Excerpt> {
        let file = self.file.as_ref()?;
        Some(self.excerpt.get_or_init(|| {
            let spans: Vec<_> = self.labels.iter().map(|(at, _)| at.start..at.end).collect();
            Excerpt::new(file, &spans)
        }))
    }

    /// Renders this diagnostic as plain text (no colors), as shown to a user in a terminal
    /// without color. Used by snapshots and logs.
    ///
    /// ```
    /// use caddyprof::{Diagnostic, Location, SourceFile};
    ///
    /// let file = SourceFile::new("Profilingfile", "pyroscope {\n\tupload_rate 0s\n}\n");
    /// let at = Location { file, start: 25, end: 27 };
    /// let text = Diagnostic::error("upload_rate must be more than zero")
    ///     .label(&at, "zero")
    ///     .help("write a positive duration, e.g. 15s")
    ///     .render_plain();
    /// assert!(text.contains("Profilingfile:2:14"));
    /// assert!(text.contains("help: write a positive duration"));
    /// ```
    pub fn render_plain(&self) -> String {
        let mut out = String::new();
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100);
        // Writing into a String cannot fail.
        let _ = handler.render_report(&mut out, self);
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn severity(&self) -> Option<Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.excerpt().map(|e| e as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let excerpt = self.excerpt()?;
        Some(Box::new(
            self.labels
                .iter()
                .zip(excerpt.spans())
                .enumerate()
                .map(|(i, ((_, text), &span))| {
                    let text = (!text.is_empty()).then(|| text.clone());
                    if i == 0 {
                        LabeledSpan::new_primary_with_span(text, span)
                    } else {
                        LabeledSpan::new_with_span(text, span)
                    }
                }),
        ))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(
            self.related.iter().map(|d| d as &dyn miette::Diagnostic),
        ))
    }
}

/// The error of a failed library call: one or more [`Diagnostic`]s, all errors.
///
/// Nothing is produced when there is an error: the output is all-or-nothing.
#[derive(Clone, Debug)]
pub struct Error {
    diagnostics: Vec<Diagnostic>,
}

impl Error {
    /// All the problems found, in the order they were found (at least one).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// Renders every diagnostic as plain text, separated by blank lines.
    pub fn render_plain(&self) -> String {
        self.diagnostics
            .iter()
            .map(Diagnostic::render_plain)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl From<Diagnostic> for Error {
    fn from(diagnostic: Diagnostic) -> Self {
        Error {
            diagnostics: vec![diagnostic],
        }
    }
}

impl From<Vec<Diagnostic>> for Error {
    /// # Panics
    /// Never with a non-empty vector; an empty one becomes a generic error.
    fn from(diagnostics: Vec<Diagnostic>) -> Self {
        if diagnostics.is_empty() {
            return Diagnostic::error("unknown error").into();
        }
        Error { diagnostics }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = &self.diagnostics[0];
        match first.location() {
            Some(at) => write!(f, "{}: {}", at.display(), first.message)?,
            None => f.write_str(&first.message)?,
        }
        if self.diagnostics.len() > 1 {
            write!(f, " (and {} more)", self.diagnostics.len() - 1)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// The name in `candidates` closest to `name`, if it is close enough to be a likely typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|&(distance, c)| distance <= (c.chars().count() / 3).max(1) + 1)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, c)| c)
}

/// `did you mean 'x'?` for a help line, or a list of valid names when nothing is close.
pub fn did_you_mean(name: &str, candidates: &[&str]) -> String {
    match suggest(name, candidates.iter().copied()) {
        Some(best) => format!("did you mean '{best}'?"),
        None => format!("expected one of: {}", candidates.join(", ")),
    }
}

impl miette::Diagnostic for Error {
    fn severity(&self) -> Option<Severity> {
        Some(Severity::Error)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        miette::Diagnostic::help(&self.diagnostics[0])
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        miette::Diagnostic::source_code(&self.diagnostics[0])
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        miette::Diagnostic::labels(&self.diagnostics[0])
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        let first = &self.diagnostics[0];
        Some(Box::new(
            first
                .related
                .iter()
                .chain(&self.diagnostics[1..])
                .map(|d| d as &dyn miette::Diagnostic),
        ))
    }
}
