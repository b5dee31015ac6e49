//! The Caddyfile language: environment substitution, lexing, parsing and imports.
//!
//! Pipeline for each file: text → [`env`](mod@env) substitution → [`lexer`] (the pest grammar) →
//! [`parser`] (blocks, directives; [`import`] expands snippets and files) → [`tree`].

// A `Diagnostic` is large, but errors are the cold path and end the parse: boxing every
// `Result` would cost more in noise than it saves.
#![allow(clippy::result_large_err)]

pub mod env;
pub mod format;
pub mod import;
mod import_graph;
pub mod lexer;
pub mod parser;
pub mod token;
mod token_diagnostic;
pub mod tree;

/// Looks up an environment variable for `{$NAME}` substitution (`None`: unset).
pub type EnvLookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

pub use lexer::{Lexed, lex};
pub use parser::{ParseOptions, Parsed, parse};
pub use token::{Comment, ImportSite, Text, Token, TokenKind};
pub use tree::{Args, Block, Body, Directive, Document};
