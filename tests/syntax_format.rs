//! The formatter against `docs/profilingfile.md` §8, with property tests for idempotence and
//! for keeping the tokens, and a no-panic property for the parser and formatter.

mod common;

use caddyprof::SourceFile;
use caddyprof::syntax::format::format;
use caddyprof::syntax::{Body, Directive, Document};
use common::parse_in;
use proptest::prelude::*;

fn fmt(input: &str) -> String {
    match format(&SourceFile::new("Profilingfile", input)) {
        Ok(out) => out,
        Err(err) => panic!("input {input:?}: {}", err.render_plain()),
    }
}

#[test]
fn rules() {
    let cases = [
        // Tabs, one per level; ` {` on the opening line; `}` on its own line.
        (
            "a  {\n    b   c\n  d {\n e\n      }\n}",
            "a {\n\tb c\n\td {\n\t\te\n\t}\n}\n",
        ),
        // `{` on the line after the keys moves up.
        ("a\n{\n\tb\n}", "a {\n\tb\n}\n"),
        // At most one blank line; none at the start of a block.
        ("a {\n\tb\n\n\n\n\tc\n}", "a {\n\tb\n\n\tc\n}\n"),
        // One blank line between top-level blocks.
        (
            "a {\n}\nb {\n}\n\n\n\nc {\n}",
            "a {\n}\n\nb {\n}\n\nc {\n}\n",
        ),
        // The input is trimmed and ends with exactly one newline.
        ("\n\n\na {\n}\n\n\n", "a {\n}\n"),
        ("a {\n}", "a {\n}\n"),
        // Comments on their own line and at the end of a line are kept.
        (
            "# top\na { # open\n  # own\n  b # trailing\n} # close",
            "# top\na { # open\n\t# own\n\tb # trailing\n} # close\n",
        ),
        // Quoted, backtick and heredoc text unchanged (heredoc body included).
        (
            "a {\n b \"x  y\"   `p  q`  \"\\\"{\"\n}",
            "a {\n\tb \"x  y\" `p  q` \"\\\"{\"\n}\n",
        ),
        (
            "a {\n  b <<EOF\n    x  y\n      z\n    EOF\n}",
            "a {\n\tb <<EOF\n    x  y\n      z\n    EOF\n}\n",
        ),
        (
            "a {\n  b \"line1\n   line2\"\n}",
            "a {\n\tb \"line1\n   line2\"\n}\n",
        ),
        // Escapes and env references are written as they were.
        (
            "a {\n b \\{x\\} {$X:y} a\\\\ c\\ d\n}",
            "a {\n\tb \\{x\\} {$X:y} a\\\\ c d\n}\n",
        ),
        // A lost backslash before the end of the file is dropped, not turned into a
        // continuation (found by cargo fuzz).
        ("J~\\", "J~\n"),
        ("<<\"\\", "\\<<\"\n"),
        // A U+FEFF word that ends up first is kept behind a byte order mark.
        ("\n\u{FEFF}", "\u{FEFF}\u{FEFF}\n"),
        ("\u{FEFF}a {\n}", "a {\n}\n"),
        // Keys continued after a trailing comma keep their line break, without a
        // continuation (which would move `c` to a new logical line, §2.8).
        ("a,\n`b\n` c", "a,\n\t`b\n` c\n"),
        ("a,\n b {\n}", "a,\n\tb {\n}\n"),
        ("a ,\n`b\n` c", "a ,\n\t`b\n` c\n"),
        ("\"a\" ,\n b {\n}", "\"a\" ,\n\tb {\n}\n"),
        ("a,\r\n b {\r\n}", "a,\n\tb {\n}\n"),
        ("a \\\n b {\n}", "a \\\n\tb {\n}\n"),
        ("\u{b}\\\u{b}\\\\\u{b}", "\\\u{b}\\\n"),
        ("\n\u{FEFF}\\", "\u{FEFF}\u{FEFF}\n"),
        // Here the last backslash is the escaped character, not a lost escape.
        ("\\\t\\\t", "\\\t\\\n"),
        // Continuations are kept.
        ("a {\n b c \\\n     d\n}", "a {\n\tb c \\\n\t\td\n}\n"),
        // Braceless blocks and the global block.
        ("a\n   b c\nd", "a\nb c\nd\n"),
        ("{\n debug\n}\na {\n}", "{\n\tdebug\n}\n\na {\n}\n"),
        // Snippets and imports are kept as written.
        (
            "(s) {\n x {args[0]}\n}\na {\nimport s 1\n}",
            "(s) {\n\tx {args[0]}\n}\n\na {\n\timport s 1\n}\n",
        ),
        // CRLF input becomes LF.
        ("a {\r\n  b\r\n}\r\n", "a {\n\tb\n}\n"),
        // A `<<X` word at the very end of the file stays a word (found by cargo fuzz: the
        // newline the formatter adds made it a heredoc opener).
        ("<<", "\\<<\n"),
        ("a {\n}\nb <<EOF", "a {\n}\n\nb \\<<EOF\n"),
        ("a <<EOF b", "a <<EOF b\n"),
        // Removing a `\r` makes `<<`, and a key's trailing comma puts a newline after it
        // (found by cargo fuzz).
        ("<\r<\\,\nb {\n}", "\\<<\\,\n\tb {\n}\n"),
        // Only comments.
        ("  # c\n\n\n# d\n", "# c\n\n# d\n"),
    ];
    let mut failures = Vec::new();
    for (input, want) in cases {
        let got = fmt(input);
        if got != want {
            failures.push(format!("input {input:?}\n  want {want:?}\n  got  {got:?}"));
        } else if fmt(&got) != got {
            failures.push(format!("not idempotent on {got:?}: {:?}", fmt(&got)));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn indentation_stops_at_ten_levels() {
    let mut input = String::new();
    for i in 0..12 {
        input.push_str(&format!("{}{i} {{\n", "  ".repeat(i)));
    }
    input.push_str("x\n");
    for _ in 0..12 {
        input.push_str("}\n");
    }
    let out = fmt(&input);
    assert!(out.contains(&format!("\n{}x\n", "\t".repeat(10))), "{out}");
    assert_eq!(fmt(&out), out);
}

#[test]
fn errors_are_reported_not_formatted() {
    // The last one was found by cargo fuzz (a `\r` inside a heredoc marker).
    for input in [
        "a {\n",
        "a { b }",
        "}\n",
        "a {\n\tb \"x\n}",
        "<<]\u{6}\r/,\nA`` <</<",
    ] {
        assert!(format(&SourceFile::new("f", input)).is_err(), "{input:?}");
    }
}

/// The structure of a document as texts: block keys, directives with args and blocks.
fn structure(doc: &Document) -> String {
    fn body(b: &Body, out: &mut String) {
        out.push_str(if b.open.is_some() { "{" } else { "(" });
        for d in &b.directives {
            directive(d, out);
        }
        out.push_str(if b.open.is_some() { "}" } else { ")" });
    }
    fn directive(d: &Directive, out: &mut String) {
        out.push_str(&format!("<{:?}", d.name.text));
        for a in &d.args {
            out.push_str(&format!(" {:?}/{:?}", a.kind, a.text));
        }
        if let Some(b) = &d.block {
            body(b, out);
        }
        out.push('>');
    }
    let mut out = String::new();
    for b in &doc.blocks {
        out.push_str(&format!(
            "{:?}",
            b.keys.iter().map(|k| &k.text).collect::<Vec<_>>()
        ));
        body(&b.body, &mut out);
        out.push('\n');
    }
    out
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_.:/-]{0,6}",
        Just("{args[0]}".to_owned()),
        Just("\\{x\\}".to_owned()),
        Just("{}x".to_owned()),
        Just("a#b".to_owned()),
    ]
}

fn arg() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => word(),
        1 => "\"[a-z {}#`\\\\]{0,6}\"".prop_map(|s| s),
        1 => "`[a-z {}#\"]{0,6}`",
        1 => Just("\"multi\nline\"".to_owned()),
    ]
}

fn indent() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("  ".to_owned()),
        Just("\t\t".to_owned()),
        Just("   ".to_owned())
    ]
}

/// A random directive (with optional nested block) at `depth`, as lines of text.
fn directive(depth: u32) -> BoxedStrategy<String> {
    let leaf = (
        indent(),
        word(),
        prop::collection::vec(arg(), 0..4),
        prop::option::of("# [a-z {}\"]{0,6}"),
        0..3usize,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(ind, name, args, comment, blanks, continuation, heredoc)| {
                let mut line = format!("{ind}{name}");
                for (i, a) in args.iter().enumerate() {
                    if continuation && i == 1 {
                        line.push_str(" \\\n   ");
                    }
                    line.push(' ');
                    line.push_str(a);
                }
                if heredoc {
                    line.push_str(" <<EOF\n  body {\n    more\n  EOF");
                }
                if let Some(c) = comment {
                    line.push(' ');
                    line.push_str(&c);
                }
                format!("{}{line}\n", "\n".repeat(blanks))
            },
        );
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        3 => leaf,
        1 => (indent(), word(), prop::collection::vec(directive(depth - 1), 0..4), indent())
            .prop_map(|(ind, name, children, close_ind)| {
                format!("{ind}{name} {{\n{}{close_ind}}}\n", children.concat())
            }),
    ]
    .boxed()
}

fn document() -> impl Strategy<Value = String> {
    let block = (
        prop::collection::vec(word(), 0..3),
        prop::collection::vec(directive(3), 0..5),
        prop::option::of("# [a-z ]{0,8}"),
        0..3usize,
    )
        .prop_map(|(keys, directives, comment, blanks)| {
            let mut out = "\n".repeat(blanks);
            if let Some(c) = comment {
                out.push_str(&c);
                out.push('\n');
            }
            out.push_str(&keys.join(" "));
            out.push_str(" {\n");
            out.push_str(&directives.concat());
            out.push_str("}\n");
            out
        });
    (prop::collection::vec(block, 1..4), any::<bool>()).prop_map(|(blocks, crlf)| {
        let text = blocks.concat();
        if crlf {
            text.replace('\n', "\r\n")
        } else {
            text
        }
    })
}

fn structure_of(text: &str) -> String {
    let parsed = parse_in(text, &std::env::temp_dir(), false)
        .unwrap_or_else(|e| panic!("{text:?}: {}", e.render_plain()));
    structure(&parsed.document)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// format(format(x)) == format(x), and formatting keeps every token and the structure.
    #[test]
    fn format_is_idempotent_and_keeps_tokens(input in document()) {
        let file = SourceFile::new("Profilingfile", input.as_str());
        // Some random documents are invalid (for example `{}` at the end of a line); then
        // the formatter must refuse them, like the parser.
        let Ok(once) = format(&file) else {
            prop_assert!(parse_in(&input, &std::env::temp_dir(), false).is_err());
            return Ok(());
        };
        let twice = fmt(&once);
        prop_assert_eq!(&twice, &once);
        prop_assert_eq!(structure_of(&once), structure_of(&input));
        prop_assert!(once.ends_with('\n') && !once.ends_with("\n\n"));
    }

    /// Nothing panics, whatever the input.
    #[test]
    fn nothing_panics(input in prop::collection::vec(prop_oneof![
        Just("{"), Just("}"), Just("\""), Just("`"), Just("\\"), Just("#"), Just("<<"),
        Just("<"), Just("\n"), Just("\r"), Just(" "), Just("\t"), Just("a"), Just("EOF"),
        Just("import"), Just("(s)"), Just("{args[0]}"), Just("{args[1:]}"), Just("{block}"),
        Just("{$TWO}"), Just("{$"), Just(","), Just("*"), Just("\u{FEFF}"), Just("\u{A0}"),
    ], 0..60)) {
        let text: String = input.concat();
        let dir = tempfile::tempdir().unwrap();
        let _ = parse_in(&text, dir.path(), true);
        let _ = format(&SourceFile::new("Profilingfile", text.as_str()));
    }

    #[test]
    fn nothing_panics_on_any_string(text in any::<String>()) {
        let _ = parse_in(&text, &std::env::temp_dir().join("caddyprof-none"), true);
        let _ = format(&SourceFile::new("Profilingfile", text.as_str()));
    }
}
