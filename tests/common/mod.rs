//! Shared helpers for the syntax tests: parse a string and render the tree compactly.
//!
//! Rendering: blocks are joined by ` | `; a block is `[keys]` followed by ` { d1; d2 }` when
//! it has braces or ` d1; d2` when it has none; a directive is its name and arguments, then
//! ` { … }` for a nested block. Bare words are written as is, quoted/backtick/heredoc tokens
//! in Rust debug form (`"a b"`).

#![allow(dead_code)]

use std::path::Path;

use caddyprof::SourceFile;
use caddyprof::syntax::{self, Body, Directive, Document, ParseOptions, Parsed, Token, TokenKind};

pub fn env(name: &str) -> Option<String> {
    match name {
        "TWO" => Some("x y".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

pub fn parse_in(input: &str, base_dir: &Path, expand: bool) -> Result<Parsed, caddyprof::Error> {
    let file = SourceFile::new("Profilingfile", input);
    syntax::parse(
        &file,
        &ParseOptions {
            expand,
            env: Some(&env),
            base_dir: base_dir.to_path_buf(),
        },
    )
}

pub fn token(t: &Token) -> String {
    match t.kind {
        TokenKind::Word => t.text.to_string(),
        _ => format!("{:?}", t.text),
    }
}

fn directive(d: &Directive) -> String {
    let mut out = token(&d.name);
    for arg in &d.args {
        out.push(' ');
        out.push_str(&token(arg));
    }
    if let Some(block) = &d.block {
        out.push(' ');
        out.push_str(&body(block));
    }
    out
}

fn directives(ds: &[Directive]) -> String {
    ds.iter().map(directive).collect::<Vec<_>>().join("; ")
}

fn body(b: &Body) -> String {
    if b.directives.is_empty() {
        "{ }".to_owned()
    } else {
        format!("{{ {} }}", directives(&b.directives))
    }
}

pub fn render(doc: &Document) -> String {
    doc.blocks
        .iter()
        .map(|b| {
            let keys = b.keys.iter().map(token).collect::<Vec<_>>().join(" ");
            let mut out = format!("[{keys}]");
            if b.body.open.is_some() {
                out.push(' ');
                out.push_str(&body(&b.body));
            } else if !b.body.directives.is_empty() {
                out.push(' ');
                out.push_str(&directives(&b.body.directives));
            }
            out
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The first error's message and its `line:column`, if it points somewhere.
pub fn first_error(err: &caddyprof::Error) -> (String, Option<(usize, usize)>) {
    let d = &err.diagnostics()[0];
    (d.message().to_owned(), d.location().map(|l| l.line_col()))
}

/// Every diagnostic message of an error, related notes included, as plain text.
pub fn rendered(err: &caddyprof::Error) -> String {
    err.render_plain()
}
