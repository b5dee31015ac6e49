//! Diagnostics at a token: labelled where it was written, with a note for each import that
//! brought it in.

use super::token::{ImportSite, Token};
use crate::diagnostic::Diagnostic;
use crate::source::Location;

/// An error labelled at `token`, with a note for each import that brought it in; or, if
/// `token` is the first of an imported file, [`not_a_profilingfile`].
pub(crate) fn error_at(token: &Token, message: impl Into<String>, label: &str) -> Diagnostic {
    let at = &token.location;
    if at.file.is_first_token_of_import(at.start) {
        return not_a_profilingfile(at, &token.imports);
    }
    error_labelled_at(token, message, label)
}

/// [`error_at`] whatever the token: for an error about what an `import` line brings in,
/// which is no fault of the line (even as the first of an imported file).
pub(crate) fn error_labelled_at(
    token: &Token,
    message: impl Into<String>,
    label: &str,
) -> Diagnostic {
    with_import_notes(
        Diagnostic::error(message).label(&token.location, label),
        token,
    )
}

/// The error for an imported file that fails on its first token (at `at`): most likely it
/// is no Profilingfile at all (`import /etc/shadow`), so nothing of it is shown, not even in
/// the message. `chain` are the imports that brought it in, its own last.
pub(crate) fn not_a_profilingfile(at: &Location, chain: &[ImportSite]) -> Diagnostic {
    let (line, column) = at.line_col();
    let mut diagnostic =
        Diagnostic::error(format!("{} is not a Profilingfile", at.file.name())).help(format!(
            "its first token (line {line}, column {column}) is not valid here: check that the import names the file you meant (the file's content is not shown)"
        ));
    let outer = match chain.split_last() {
        Some((import, outer)) => {
            diagnostic = diagnostic.label(&import.at, "imported here");
            outer
        }
        None => chain,
    };
    // The caller goes on to label and explain the error it meant to make.
    add_import_notes(diagnostic, outer).sealed()
}

/// Adds a note for each import that brought `token` in, innermost first.
pub(crate) fn with_import_notes(diagnostic: Diagnostic, token: &Token) -> Diagnostic {
    add_import_notes(diagnostic, &token.imports)
}

/// Adds a note for each import of `chain`, innermost first.
fn add_import_notes(mut diagnostic: Diagnostic, chain: &[ImportSite]) -> Diagnostic {
    for site in chain.iter().rev() {
        let what = match &site.snippet {
            Some(name) => format!("snippet '{name}' imported here"),
            None => "file imported here".to_owned(),
        };
        diagnostic = diagnostic.related(Diagnostic::advice(what.clone()).label(&site.at, what));
    }
    diagnostic
}
