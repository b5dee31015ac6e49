//! Differential fuzzing of the lexer: `lex` (the common items scanned by hand, the rest by the
//! pest grammar) must give exactly what `lex_with_grammar` (the grammar over the whole file)
//! gives on any input, with and without environment substitution: the same tokens, positions,
//! lines, comments and errors.

#![no_main]

use caddyprof::SourceFile;
use caddyprof::syntax::lexer::{lex, lex_with_grammar};
use libfuzzer_sys::fuzz_target;

fn lookup(name: &str) -> Option<String> {
    match name {
        "A" => Some("a b".to_owned()),
        "Q" => Some("\"x".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fuzz_target!(|text: &str| {
    let file = SourceFile::new("Profilingfile", text);
    for env in [None, Some(&lookup as &caddyprof::syntax::EnvLookup)] {
        let fast = format!("{:?}", lex(&file, env));
        let reference = format!("{:?}", lex_with_grammar(&file, env));
        assert_eq!(fast, reference, "input {text:?}");
    }
});
