//! caddyprof: a declarative continuous-profiling agent for Rust, configured like Caddy.
//!
//! The pipeline: [`syntax`] (lex, parse, import) → [`adapt`] (directives → JSON) →
//! [`config`] (typed, validated) → runtime.

pub mod apps;
pub mod config;
pub mod diagnostic;
pub mod source;

pub use config::Config;
pub use diagnostic::{Diagnostic, Error};
pub use source::{Location, SourceFile};
pub mod syntax;
