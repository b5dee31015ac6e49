//! The Caddyfile language: environment substitution, lexing, parsing and imports.

pub mod env;
pub mod lexer;
pub mod token;

pub use lexer::{Lexed, lex};
pub use token::{Comment, ImportSite, Token, TokenKind};
