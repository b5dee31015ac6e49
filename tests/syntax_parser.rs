//! The parser against `docs/profilingfile.md` §4 (blocks, keys, braces, segments) and §4.4
//! (snippets). Each case is an input and either the rendered tree (see `common::render`) or a
//! fragment of the first error's message with the `line:column` it must point at.

mod common;

use common::{first_error, parse_in, render};

enum Want {
    Tree(&'static str),
    /// Message fragment, and the line and column the error points at.
    Error(&'static str, (usize, usize)),
}
use Want::{Error, Tree};

fn check(cases: &[(&str, Want)], expand: bool) {
    let dir = std::env::temp_dir();
    let mut failures = Vec::new();
    for (input, want) in cases {
        let got = parse_in(input, &dir, expand);
        let ok = match (&got, want) {
            (Ok(parsed), Tree(tree)) => render(&parsed.document) == *tree,
            (Err(err), Error(fragment, at)) => {
                let (message, location) = first_error(err);
                message.contains(fragment) && location == Some(*at)
            }
            _ => false,
        };
        if !ok {
            let got = match &got {
                Ok(parsed) => format!("tree {}", render(&parsed.document)),
                Err(err) => format!("error {:?}", first_error(err)),
            };
            let want = match want {
                Tree(t) => format!("tree {t}"),
                Error(m, at) => format!("error containing {m:?} at {at:?}"),
            };
            failures.push(format!("input {input:?}\n  want {want}\n  got  {got}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// §4.1: a file is a sequence of blocks `keys… [{ directives… }]`.
#[test]
fn blocks() {
    check(
        &[
            ("a {\n\tb c\n}", Tree("[a] { b c }")),
            ("a {\n}\nb {\n\tc\n}", Tree("[a] { } | [b] { c }")),
            ("a {\n}\n\n\nb {\n}\n", Tree("[a] { } | [b] { }")),
            (
                "a {\n\tb {\n\t\tc {\n\t\t\td e\n\t\t}\n\t}\n}",
                Tree("[a] { b { c { d e } } }"),
            ),
            ("a {\n\tb x {\n\t}\n\tc\n}", Tree("[a] { b x { }; c }")),
            // A directive name may be quoted; quoted braces are ordinary arguments.
            (
                "a {\n\t\"b c\" \"{\" \"}\" `{}`\n}",
                Tree("[a] { \"b c\" \"{\" \"}\" \"{}\" }"),
            ),
            ("a {\n\tb \"{\"\n}", Tree("[a] { b \"{\" }")),
            // Only whitespace or comments: no blocks.
            ("  \n# c\n\n", Tree("")),
            // CRLF lexes like LF.
            ("a {\r\n\tb\r\n}\r\n", Tree("[a] { b }")),
            // A continuation joins lines inside a directive.
            ("a {\n\tb c \\\n\t\td\n\te\n}", Tree("[a] { b c d; e }")),
            // `import` that is not first on its line is an ordinary word.
            ("a {\n\tb import x\n}", Tree("[a] { b import x }")),
        ],
        true,
    );
}

/// §4.1: the `{ … }` block has no keys; with nothing in it, it is not kept.
#[test]
fn global_block() {
    check(
        &[
            ("{\n\tdebug\n}\na {\n}", Tree("[] { debug } | [a] { }")),
            ("{\n\tx {\n\t\ty\n\t}\n}", Tree("[] { x { y } }")),
            ("{\n}\na {\n}", Tree("[a] { }")),
            ("{\n}", Tree("")),
            ("{ x\n}", Error("after '{'", (1, 3))),
        ],
        true,
    );
    // Without expansion (for the formatter) the empty global block is kept.
    check(&[("{\n}", Tree("[] { }"))], false);
}

/// §4.2: keys, commas, and the errors on keys.
#[test]
fn keys() {
    check(
        &[
            ("a b c {\n}", Tree("[a b c] { }")),
            ("a, b {\n}", Tree("[a b] { }")),
            ("a,\nb,\n  c {\n}", Tree("[a b c] { }")),
            ("a , b {\n}", Tree("[a b] { }")),
            ("\"a b\" {\n}", Tree("[\"a b\"] { }")),
            // Keys end at the end of the line: no braces, directives until EOF.
            ("a b\nc d\ne", Tree("[a b] c d; e")),
            ("a", Tree("[a]")),
            // A quoted key may hold what a bare one may not.
            ("\"@m,{\" {\n}", Tree("[\"@m,{\"] { }")),
            ("@m {\n}", Error("may not start with '@'", (1, 1))),
            ("a b{ \n}", Error("cannot end with a brace", (1, 3))),
            ("a{\n}", Error("cannot end with a brace", (1, 1))),
            ("a,b {\n}", Error("cannot contain a comma", (1, 1))),
            ("a, {\n}", Error("found '{'", (1, 1))),
            ("a,", Error("after ','", (1, 1))),
            ("a ,", Error("after ','", (1, 3))),
        ],
        true,
    );
}

/// §4.2: keys followed by `{` open a braced block, also when the `{` is on the next line
/// (Caddy's `blockContents` only checks that the next token is `{`).
#[test]
fn open_brace_after_keys_on_next_line() {
    check(
        &[
            ("a\n{\n\tb\n}", Tree("[a] { b }")),
            ("a, b\n{\n}", Tree("[a b] { }")),
        ],
        true,
    );
}

/// §4.3: the brace rules inside blocks.
#[test]
fn brace_rules() {
    check(
        &[
            // `{` must be the last token on its line.
            (
                "a {\n\tb { c\n\t}\n}",
                Error("after '{' on the same line", (2, 6)),
            ),
            (
                "a {\n\tb { }\n}",
                Error("after '{' on the same line", (2, 6)),
            ),
            ("a { b\n}", Error("after '{' on the same line", (1, 5))),
            ("a { }", Error("after '{' on the same line", (1, 5))),
            // A `{` after a continuation is on the same line.
            ("a {\n\tb \\\n\t{\n\t\tc\n\t}\n}", Tree("[a] { b { c } }")),
            // `{` must not start a line inside a block.
            (
                "a {\n\tb\n\t{\n\t\tc\n\t}\n}",
                Error("'{' on a new line", (3, 2)),
            ),
            // `{}` may not end a line; in the middle it is a word.
            ("a {\n\tb {}\n}", Error("'{}' at end of line", (2, 4))),
            ("a {\n\tb {} c\n}", Tree("[a] { b {} c }")),
            ("a {\n\tb \"{}\"\n}", Tree("[a] { b \"{}\" }")),
            // A `}` must stand on its own line (one-line blocks are rejected).
            ("a {\n\tb c }\n}", Error("own line", (2, 6))),
            ("a {\n\tb {\n\t\tc\n\t} d\n}", Error("after '}'", (4, 4))),
            ("a {\n} b", Error("after '}'", (2, 3))),
            (
                ":8080 { respond hi }",
                Error("after '{' on the same line", (1, 9)),
            ),
            ("a {\n\tb\n\t}\n", Tree("[a] { b }")),
            // A block left open at EOF is an error at its `{` (improvement 6).
            ("a {\n\tb\n", Error("never closed", (1, 3))),
            ("a {\n\tb {\n\t\tc\n}", Error("never closed", (1, 3))),
            ("x\na {\n\tb {\n\t\tc\n", Error("never closed", (3, 4))),
            // A stray `}` at top level is an error (improvement 6).
            ("}", Error("unexpected '}'", (1, 1))),
            ("a {\n}\n}", Error("unexpected '}'", (3, 1))),
            ("a\nb\n}\n", Error("unexpected '}'", (3, 1))),
            ("a b }", Error("'}'", (1, 5))),
        ],
        true,
    );
}

/// §4.2: without braces, a block's directives run to EOF (or to a stray `}`).
#[test]
fn braceless_blocks() {
    check(
        &[
            ("a\nb c\nd {\n\te\n}", Tree("[a] b c; d { e }")),
            ("a\n\n\nb\n", Tree("[a] b")),
        ],
        true,
    );
}

/// §4.1: an empty file is an error; whitespace only is not. Not expanding (for `fmt`), an
/// empty file is an empty document.
#[test]
fn empty_input() {
    let err = parse_in("", &std::env::temp_dir(), true).unwrap_err();
    assert!(first_error(&err).0.contains("empty"));
    let parsed = parse_in("", &std::env::temp_dir(), false).unwrap();
    assert!(parsed.document.blocks.is_empty());
    assert_eq!(
        render(
            &parse_in(" \n", &std::env::temp_dir(), true)
                .unwrap()
                .document
        ),
        ""
    );
}

/// §4.4: snippets.
#[test]
fn snippets() {
    check(
        &[
            // A snippet is not a block; its import splices its tokens in.
            ("(s) {\n\tx y\n}\na {\n\timport s\n}", Tree("[a] { x y }")),
            (
                "(s) {\n\tx {\n\t\ty\n\t}\n}\na {\n\timport s\n\tz\n}",
                Tree("[a] { x { y }; z }"),
            ),
            // Imported at the top level, a snippet can be a whole block.
            ("(s) {\n\tb {\n\t\tc\n\t}\n}\nimport s", Tree("[b] { c }")),
            // The `{` may be on the next line.
            ("(s)\n{\n\tx\n}\na {\n\timport s\n}", Tree("[a] { x }")),
            // The body is collected by counting braces, not lines: any unquoted `}` can end
            // it; a quoted one cannot.
            ("(s) {\n\tx }\nb {\n\timport s\n}", Tree("[b] { x }")),
            (
                "(s) {\n\tx \"}\"\n}\nb {\n\timport s\n}",
                Tree("[b] { x \"}\" }"),
            ),
            ("(s) {\n\tx { y } z\n}\nb {\n}", Tree("[b] { }")),
            // Defined twice.
            ("(s) {\n}\n(s) {\n}", Error("defined twice", (3, 1))),
            // Must be defined before it is imported: otherwise the name is a file path.
            (
                "a {\n\timport s\n}\n(s) {\n\tx\n}",
                Error("not found", (2, 9)),
            ),
            // A snippet needs braces, and they must be closed.
            ("(s)\nx", Error("needs a block", (1, 1))),
            ("(s) {\n\tx\n", Error("never closed", (1, 5))),
            // Two keys: not a snippet.
            ("(s) t {\n}", Tree("[(s) t] { }")),
        ],
        true,
    );
    // Without expansion (for the formatter), snippet definitions and imports stay as written.
    check(
        &[(
            "(s) {\n\tx\n}\na {\n\timport s\n}",
            Tree("[(s)] { x } | [a] { import s }"),
        )],
        false,
    );
}

/// The parser reads tokens as the lexer makes them, but a lexing error anywhere in the file
/// is still what gets reported, before a parse error that comes earlier in the file, and
/// whether the parse would have failed or not.
#[test]
fn lexing_errors_come_before_parse_errors() {
    let tail = "\"unclosed\n";
    // Enough tokens before the error that the lexer has not reached it when parsing fails.
    let padding = "\tx y\n".repeat(500);
    let cases = [
        // A stray `}` on line 1, long before the unterminated quote.
        format!("}}\na {{\n{padding}}}\n{tail}"),
        // A block never closed: the parse fails at the end of input.
        format!("a {{\n{padding}\tb {tail}"),
        // A valid file up to the quote.
        format!("a {{\n{padding}}}\nb {tail}"),
    ];
    for input in &cases {
        let err = parse_in(input, &std::env::temp_dir(), true).unwrap_err();
        let (message, location) = first_error(&err);
        let line = input.lines().count();
        assert!(message.contains("unterminated quoted"), "{message}");
        assert_eq!(location.map(|(l, _)| l), Some(line), "{message}");
    }
}
