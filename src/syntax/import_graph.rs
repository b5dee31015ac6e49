//! The import graph: which file or snippet imports which, so that an import closing a cycle
//! is refused with the names a user knows.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::token::Token;
use super::token_diagnostic::error_labelled_at;
use crate::diagnostic::Diagnostic;

/// Which file or snippet imports which, to refuse cycles (Caddy's `importGraph`).
#[derive(Default)]
pub(super) struct ImportGraph {
    edges: HashMap<String, HashSet<String>>,
    /// The last edge added: a file that imports a snippet many times adds the same edge
    /// each time, and this spares hashing its two names again.
    last: Option<(String, String)>,
}

impl ImportGraph {
    /// Records that `from` imports `to`; fails if `to` already (transitively) imports
    /// `from`. As in Caddy, a node may import itself once before this fires.
    pub(super) fn add_edge(&mut self, from: &str, to: &str) -> bool {
        if from != to
            && self
                .last
                .as_ref()
                .is_some_and(|(last_from, last_to)| last_from == from && last_to == to)
        {
            return true;
        }
        let added = self.add_new_edge(from, to);
        if added && from != to {
            let (last_from, last_to) = self.last.get_or_insert_default();
            last_from.clear();
            last_from.push_str(from);
            last_to.clear();
            last_to.push_str(to);
        }
        added
    }

    /// [`add_edge`](Self::add_edge), looking at the whole graph.
    fn add_new_edge(&mut self, from: &str, to: &str) -> bool {
        // An edge between two nodes that is already there was accepted once, so `to` did not
        // reach `from`; it still does not, since an edge closing that path would have been
        // refused. (A self-import must be looked at again: the second one is refused.)
        if from != to
            && self
                .edges
                .get(from)
                .is_some_and(|targets| targets.contains(to))
        {
            return true;
        }
        if self.reaches(to, from) {
            return false;
        }
        self.edges
            .entry(from.to_owned())
            .or_default()
            .insert(to.to_owned());
        true
    }

    /// Whether a path of one or more edges leads from `from` to `to`.
    fn reaches(&self, from: &str, to: &str) -> bool {
        let mut seen = HashSet::new();
        let mut stack: Vec<&str> = self
            .edges
            .get(from)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        while let Some(node) = stack.pop() {
            if node == to {
                return true;
            }
            if seen.insert(node) {
                stack.extend(
                    self.edges
                        .get(node)
                        .into_iter()
                        .flatten()
                        .map(String::as_str),
                );
            }
        }
        false
    }
}

/// Writes the node of the import graph that `token` belongs to: its file, or file:snippet.
pub(super) fn node_of(token: &Token, out: &mut String) {
    out.clear();
    out.push_str(token.location.file.name());
    if let Some(snippet) = token.snippet() {
        out.push(':');
        out.push_str(snippet);
    }
}

/// The error for an import that would close a cycle of imports.
pub(super) fn cycle_error(import: &Token, from: &str, to: &str) -> Diagnostic {
    error_labelled_at(
        import,
        format!(
            "import cycle: {} and {} import each other",
            describe_node(from),
            describe_node(to)
        ),
        "this import closes the cycle",
    )
    .help("remove one of the imports in the cycle")
}

/// A node of the import graph as a user knows it: `snippet 'x'` or the file's name.
fn describe_node(node: &str) -> String {
    let file_name = |path: &str| {
        Path::new(path)
            .file_name()
            .map_or(path.to_owned(), |n| n.to_string_lossy().into_owned())
    };
    match node.rsplit_once(':') {
        Some((file, snippet)) if !snippet.contains(['/', '\\']) && !snippet.is_empty() => {
            format!("snippet '{snippet}' (in {})", file_name(file))
        }
        _ => file_name(node),
    }
}
