//! The Caddyfile language: environment substitution, lexing, parsing and imports.
//!
//! Pipeline for each file: text → [`env`] substitution → [`lexer`] (the pest grammar) →
//! [`parser`] (blocks, directives; [`import`] expands snippets and files) → [`tree`].

pub mod env;
pub mod format;
pub mod import;
pub mod lexer;
pub mod parser;
pub mod token;
pub mod tree;

pub use lexer::{Lexed, lex};
pub use parser::{ParseOptions, Parsed, parse};
pub use token::{Comment, ImportSite, Token, TokenKind};
pub use tree::{Block, Body, Directive, Document};
