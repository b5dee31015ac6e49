//! The lexer's own scanner against the pest grammar: `lex` (common items scanned by hand, the
//! rest by the grammar) must give exactly what `lex_with_grammar` (the grammar over the whole
//! file) gives: the same tokens with the same texts, kinds, positions and lines, the same
//! comments, and the same errors. The `lex` fuzz target checks the same on arbitrary input.

use caddyprof::SourceFile;
use caddyprof::syntax::lexer::{lex, lex_with_grammar};
use proptest::prelude::*;

fn env(name: &str) -> Option<String> {
    match name {
        "A" => Some("a b".to_owned()),
        "Q" => Some("\"x".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

/// Both lexers' results, rendered with every field (`Debug` shows positions, lines and line
/// breaks of each token, and every part of a diagnostic).
fn both(text: &str, with_env: bool) -> (String, String) {
    let file = SourceFile::new("Profilingfile", text);
    let env: Option<&caddyprof::syntax::EnvLookup> = if with_env { Some(&env) } else { None };
    (
        format!("{:?}", lex(&file, env)),
        format!("{:?}", lex_with_grammar(&file, env)),
    )
}

fn check(text: &str) {
    for with_env in [false, true] {
        let (fast, reference) = both(text, with_env);
        assert_eq!(fast, reference, "input {text:?}, env {with_env}");
    }
}

/// Pieces that exercise every branch of the scanner and of the grammar.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9{}:/._-]{1,6}",
        3 => prop::sample::select(vec![
            " ", "\t", "\n", "\r", "\r\n", "\u{0B}", "\u{0C}", "\u{A0}", "\u{2003}", "\u{85}",
            "\u{FEFF}", "\u{200B}", "é", "\u{7F}", "\u{06}", "\\", "\"", "`", "#", "<", "<<",
            "<<EOF", "EOF", "\tEOF", "{", "}", "{$A}", "{$Q}", "{$EMPTY}", "{$", "$", "'", ",",
            "<<A\n", "A", " A", "\tA\n", "A\r", "Aé", "\\\n", "\\ \n", "\\\"", "\\`", "\\<", "# c", "\"q r\"", "`b t`", "\"a\\\"b\"",
        ])
        .prop_map(str::to_owned),
        1 => any::<char>().prop_map(String::from),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn scanner_matches_the_grammar(pieces in prop::collection::vec(piece(), 0..24)) {
        check(&pieces.concat());
    }
}

#[test]
fn scanner_matches_the_grammar_on_the_examples() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "Profilingfile") {
            check(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn scanner_matches_the_grammar_on_edge_cases() {
    for text in [
        "",
        "\u{FEFF}",
        "\u{FEFF}a b",
        "a",
        "a\r",
        "a\r\nb",
        "ab\\",
        "a\u{A0}b",
        " \u{2003}\n x",
        "<",
        "a <",
        "<a",
        "<<",
        "<< x",
        "a <<EOF\n\tx\n\tEOF b\n",
        "<<EOF\nEOF",
        "<<EOF\n",
        "<<EOF\n\n  x\r\n\ty\n  EOF\r\n",
        "<<EOF\n x\n  EOF",
        "<<EOF\nEOFx\n EOF\u{A0}",
        "<<EOF\n\u{A0}EOF\n",
        "<<E-F_1\nx\nE-F_1",
        "<<EOF\r\nx\nEOF",
        "\"abc",
        "\"a\nb\" c\n",
        "\"\"",
        "\"a\\",
        "`abc",
        "`a\nb` c",
        "#",
        "# c\r\n",
        "a#b #c",
        "\\",
        "\\\n",
        "a \\\nb",
        "\u{06}a",
        "a\u{7F}b",
        "{$A} {$Q}",
    ] {
        check(text);
    }
}
