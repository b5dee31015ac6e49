//! `import` against `docs/profilingfile.md` §5: snippet arguments and blocks, files, globs, and
//! the errors and warnings on the way.

mod common;

use std::fs;
use std::path::Path;

use caddyprof::syntax::Parsed;
use common::{first_error, parse_in, render};
use tempfile::TempDir;

fn parse(input: &str, dir: &Path) -> Parsed {
    match parse_in(input, dir, true) {
        Ok(parsed) => parsed,
        Err(err) => panic!("input {input:?}: {}", err.render_plain()),
    }
}

fn warnings(parsed: &Parsed) -> Vec<String> {
    parsed
        .warnings
        .iter()
        .map(|w| w.message().to_owned())
        .collect()
}

/// Parses `input` (with `dir` as the root's folder) and returns the tree and the warnings.
fn tree(input: &str, dir: &Path) -> (String, Vec<String>) {
    let parsed = parse(input, dir);
    (render(&parsed.document), warnings(&parsed))
}

/// Parses `input`, which must fail; returns the first error's message and its position.
fn error(input: &str, dir: &Path) -> (String, Option<(usize, usize)>) {
    match parse_in(input, dir, true) {
        Ok(parsed) => panic!("input {input:?} parsed to {}", render(&parsed.document)),
        Err(err) => first_error(&err),
    }
}

fn tmp() -> TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// Defines snippet `s` with `body` and imports it in block `a` with `import_args`.
fn snippet(body: &str, import_args: &str) -> String {
    format!("(s) {{\n\t{body}\n}}\na {{\n\timport s {import_args}\n}}")
}

#[test]
fn args_by_index_anywhere_in_a_token() {
    let dir = tmp();
    let d = dir.path();
    assert_eq!(
        tree(
            &snippet("x {args[0]} pre{args[1]}post \"{args[0]} q\"", "A B"),
            d
        ),
        ("[a] { x A preBpost \"A q\" }".to_owned(), vec![])
    );
    // The value is inserted once and not scanned again; quoted and empty arguments work.
    assert_eq!(
        tree(&snippet("x {args[0]} {args[1]}", "\"{args[1]}\" \"\""), d),
        ("[a] { x {args[1]}  }".to_owned(), vec![])
    );
    // A placeholder inside braces that are not a placeholder is still found (Caddy's
    // replacer rescans after an unknown `{`).
    assert_eq!(
        tree(&snippet("x {{args[0]}} {y{args[0]}", "A"), d).0,
        "[a] { x {A} {yA }"
    );
}

#[test]
fn variadic_args() {
    let dir = tmp();
    let d = dir.path();
    let cases = [
        ("x {args[:]}", "A B C", "[a] { x A B C }"),
        ("x {args[1:]}", "A B C", "[a] { x B C }"),
        ("x {args[:2]}", "A B C", "[a] { x A B }"),
        ("x {args[1:2]}", "A B C", "[a] { x B }"),
        ("x {args[1:]} y", "A", "[a] { x y }"),
        ("x {args[:]}", "", "[a] { x }"),
    ];
    for (body, args, want) in cases {
        assert_eq!(
            tree(&snippet(body, args), d),
            (want.to_owned(), vec![]),
            "{body} / {args}"
        );
    }
    // Inside a word: left as written, with a warning.
    let (t, w) = tree(&snippet("x a{args[:]}", "A B"), d);
    assert_eq!(t, "[a] { x a{args[:]} }");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("whole token"), "{w:?}");
    // Out of range: left as written, with one warning.
    let (t, w) = tree(&snippet("x {args[2:]}", "A"), d);
    assert_eq!(t, "[a] { x {args[2:]} }");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("out of range"), "{w:?}");
}

#[test]
fn bad_indexes() {
    let dir = tmp();
    let d = dir.path();
    // Out of range: left as written plus a warning.
    let (t, w) = tree(&snippet("x {args[5]}", "A"), d);
    assert_eq!(t, "[a] { x {args[5]} }");
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("out of range"), "{w:?}");
    // Negative or malformed: an error at the placeholder (improvement 1).
    for body in [
        "x {args[-1]}",
        "x {args[a]}",
        "x {args[]}",
        "x {args[-1:]}",
        "x {args[a:b]}",
    ] {
        let (message, at) = error(&snippet(body, "A"), d);
        assert!(message.contains("invalid argument"), "{body}: {message}");
        assert_eq!(at, Some((2, 4)), "{body}");
    }
}

#[test]
fn deprecated_dot_form() {
    let dir = tmp();
    let (t, w) = tree(&snippet("x {args.1}", "A B"), dir.path());
    assert_eq!(t, "[a] { x B }");
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("deprecated"), "{w:?}");
}

#[test]
fn blocks_of_an_import() {
    let dir = tmp();
    let d = dir.path();
    let snip = "(s) {\n\tbefore\n\t{block}\n\tafter\n}\n";
    assert_eq!(
        tree(
            &format!("{snip}a {{\n\timport s {{\n\t\tx 1\n\t\ty {{\n\t\t\tz\n\t\t}}\n\t}}\n}}"),
            d
        )
        .0,
        "[a] { before; x 1; y { z }; after }"
    );
    // Without a block, {block} is nothing.
    assert_eq!(
        tree(&format!("{snip}a {{\n\timport s\n}}"), d).0,
        "[a] { before; after }"
    );
    let snip =
        "(s) {\n\tk {\n\t\t{blocks.k}\n\t}\n\tm {\n\t\t{blocks.m}\n\t}\n\tn {blocks.none}\n}\n";
    assert_eq!(
        tree(
            &format!("{snip}a {{\n\timport s {{\n\t\tk 1 2\n\t\tm {{\n\t\t\tp q\n\t\t\tr\n\t\t}}\n\t}}\n}}"),
            d
        )
        .0,
        "[a] { k { 1 2 }; m { p q; r }; n }"
    );
    // As in Caddy, tokens from the import's block are on another line than the snippet's
    // tokens (they come from another import chain), so they never join a snippet's line.
    assert_eq!(
        tree(
            "(s) {\n\tk {blocks.k}\n}\na {\n\timport s {\n\t\tk 1\n\t}\n}",
            d
        )
        .0,
        "[a] { k; 1 }"
    );
    // An anonymous block inside the import's block is an error.
    let (message, _) = error(
        &format!("{snip}a {{\n\timport s {{\n\t\t{{\n\t\t\tx\n\t\t}}\n\t}}\n}}"),
        d,
    );
    assert!(message.contains("anonymous"), "{message}");
    let (message, _) = error(
        "(s) {\n\t{block}\n}\na {\n\timport s {\n\t\t{\n\t\t\tx\n\t\t}\n\t}\n}",
        d,
    );
    assert!(message.contains("anonymous"), "{message}");
}

#[test]
fn escaped_braces_are_unescaped_in_imported_tokens_only() {
    let dir = tmp();
    let d = dir.path();
    assert_eq!(
        tree(
            "(s) {\n\tx \\{a\\} \"\\{q\\}\"\n}\na {\n\timport s\n\ty \\{b\\}\n}",
            d
        )
        .0,
        "[a] { x {a} \"{q}\"; y \\{b\\} }"
    );
    write(d, "f.conf", "z \\{c\\}\n");
    assert_eq!(tree("a {\n\timport f.conf\n}", d).0, "[a] { z {c} }");
}

#[test]
fn files_are_relative_to_the_importing_file() {
    let dir = tmp();
    let d = dir.path();
    write(d, "sub/one.conf", "one {args[0]}\nimport two.conf\n");
    write(d, "sub/two.conf", "two\nimport ../three.conf\n");
    write(d, "three.conf", "three\n");
    assert_eq!(
        tree("a {\n\timport sub/one.conf X\n}", d),
        ("[a] { one X; two; three }".to_owned(), vec![])
    );
    // A snippet defined in an imported file can be used afterwards, and its placeholders
    // are left for its own import.
    write(d, "snips.conf", "(s) {\n\tx {args[0]}\n}\n");
    assert_eq!(
        tree("import snips.conf FILE\na {\n\timport s SNIP\n}", d),
        ("[a] { x SNIP }".to_owned(), vec![])
    );
    // An absolute path works as is.
    let abs = d.join("three.conf");
    assert_eq!(
        tree(&format!("a {{\n\timport \"{}\"\n}}", abs.display()), d).0,
        "[a] { three }"
    );
    // Env substitution happens in the import line.
    write(d, "x y", "spaced\n");
    assert_eq!(tree("a {\n\timport \"{$TWO}\"\n}", d).0, "[a] { spaced }");
    // Not found.
    let (message, at) = error("a {\n\timport nope.conf\n}", d);
    assert!(message.contains("not found"), "{message}");
    assert_eq!(at, Some((2, 9)));
}

#[test]
fn globs() {
    let dir = tmp();
    let d = dir.path();
    write(d, "conf/b.conf", "b\n");
    write(d, "conf/a.conf", "a\n");
    write(d, "conf/c.txt", "c\n");
    write(d, "conf/.hidden.conf", "hidden\n");
    // Sorted; dotfiles skipped when the last segment starts with `*`.
    assert_eq!(tree("x {\n\timport conf/*\n}", d).0, "[x] { a; b; c }");
    assert_eq!(tree("x {\n\timport conf/*.conf\n}", d).0, "[x] { a; b }");
    // Not skipped when the last segment does not start with `*`.
    assert_eq!(tree("x {\n\timport conf/.h*\n}", d).0, "[x] { hidden }");
    assert_eq!(tree("x {\n\timport conf/?.conf\n}", d).0, "[x] { a; b }");
    // No match: a warning, nothing imported.
    let (t, w) = tree("x {\n\timport conf/*.none\n\ty\n}", d);
    assert_eq!(t, "[x] { y }");
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("no files match"), "{w:?}");
    // Too many wildcards.
    for pattern in ["*/*.conf", "conf/??.conf", "conf/[ab].conf"] {
        let (message, _) = error(&format!("x {{\n\timport {pattern}\n}}"), d);
        assert!(message.contains("only one"), "{pattern}: {message}");
    }
}

#[test]
fn directories_empty_files_and_lexer_errors() {
    let dir = tmp();
    let d = dir.path();
    fs::create_dir(d.join("folder")).unwrap();
    let (message, at) = error("x {\n\timport folder\n}", d);
    assert!(message.contains("folder"), "{message}");
    assert_eq!(at, Some((2, 2)));

    write(d, "empty.conf", "");
    write(d, "blank.conf", " \n\t\n");
    for name in ["empty.conf", "blank.conf"] {
        let (t, w) = tree(&format!("x {{\n\timport {name}\n\ty\n}}"), d);
        assert_eq!(t, "[x] { y }");
        assert_eq!(w.len(), 1, "{name}");
        assert!(w[0].contains("empty"), "{w:?}");
    }
    // Comments only: no tokens, but not empty.
    write(d, "comment.conf", "# nothing\n");
    assert_eq!(
        tree("x {\n\timport comment.conf\n}", d),
        ("[x] { }".to_owned(), vec![])
    );

    write(d, "bad.conf", "ok\nbad \"unterminated\n");
    let err = parse_in("x {\n\timport bad.conf\n}", d, true).unwrap_err();
    let diagnostic = &err.diagnostics()[0];
    assert!(
        diagnostic.message().contains("unterminated"),
        "{}",
        diagnostic.message()
    );
    let location = diagnostic
        .location()
        .expect("points into the imported file");
    let abs = std::path::absolute(d.join("bad.conf")).unwrap();
    assert_eq!(location.file.name(), abs.to_string_lossy());
    assert_eq!(location.line_col(), (2, 5));
    let rendered = err.render_plain();
    assert!(rendered.contains("imported here"), "{rendered}");
}

#[test]
fn errors_in_imported_tokens_name_the_import() {
    let dir = tmp();
    let d = dir.path();
    write(d, "f.conf", "y }\n");
    let err = parse_in("x {\n\timport f.conf\n}", d, true).unwrap_err();
    let location = err.diagnostics()[0].location().unwrap();
    assert!(location.file.name().ends_with("f.conf"));
    assert!(
        err.render_plain().contains("file imported here"),
        "{}",
        err.render_plain()
    );
}

/// An imported file that fails on its first token is most likely no Profilingfile: the error
/// is at the import, and shows nothing of the file. Past its first token, errors point into
/// it as usual.
#[test]
fn an_imported_file_failing_on_its_first_token_is_not_shown() {
    let dir = tmp();
    let d = dir.path();
    write(d, "token.conf", "user:SECRET:1 {\n}\n");
    write(d, "quote.conf", "\"SECRET\n");
    write(d, "later.conf", "profiling \"SECRET\n");
    for (name, is_shown) in [
        ("token.conf", false),
        ("quote.conf", false),
        ("later.conf", true),
    ] {
        let error = caddyprof::adapt_source(
            &caddyprof::SourceFile::new("Profilingfile", format!("import {name}\n")),
            &caddyprof::AdaptOptions {
                env: Box::new(|_| None),
                base_dir: d.to_path_buf(),
            },
        )
        .unwrap_err();
        let rendered = error.render_plain();
        assert_eq!(rendered.contains("SECRET"), is_shown, "{rendered}");
        let first = &error.diagnostics()[0];
        let at = first.location().unwrap();
        if is_shown {
            assert!(at.file.name().ends_with(name), "{rendered}");
        } else {
            assert!(
                first
                    .message()
                    .ends_with(&format!("{name} is not a Profilingfile"))
            );
            assert_eq!((at.file.name(), at.line_col()), ("Profilingfile", (1, 1)));
        }
    }
}

/// An `import` that fails, as the first token of an imported file, is no sign that the file
/// is not a Profilingfile.
#[test]
fn a_failing_import_first_in_an_imported_file_is_shown() {
    let dir = tmp();
    let d = dir.path();
    write(d, "outer.conf", "import folder\n");
    fs::create_dir(d.join("folder")).unwrap();
    let err = parse_in("import outer.conf\n", d, true).unwrap_err();
    let first = &err.diagnostics()[0];
    assert!(
        first.message().ends_with("it is a folder"),
        "{}",
        first.message()
    );
    assert!(
        first
            .location()
            .unwrap()
            .file
            .name()
            .ends_with("outer.conf")
    );
}

#[test]
fn cycles() {
    let dir = tmp();
    let d = dir.path();
    write(d, "a.conf", "a\nimport b.conf\n");
    write(d, "b.conf", "b\nimport a.conf\n");
    let (message, _) = error("x {\n\timport a.conf\n}", d);
    assert!(message.contains("cycle"), "{message}");
    // A file that imports itself.
    write(d, "self.conf", "s\nimport self.conf\n");
    let (message, _) = error("x {\n\timport self.conf\n}", d);
    assert!(message.contains("cycle"), "{message}");
    // A snippet importing itself: allowed once, then an error.
    let (message, _) = error("(s) {\n\tx\n\timport s\n}\na {\n\timport s\n}", d);
    assert!(message.contains("cycle"), "{message}");
    // Importing the same file twice is not a cycle.
    write(d, "leaf.conf", "leaf\n");
    assert_eq!(
        tree("x {\n\timport leaf.conf\n\timport leaf.conf\n}", d).0,
        "[x] { leaf; leaf }"
    );
    // Nor is importing the same snippet twice, or from two snippets.
    assert_eq!(
        tree(
            "(l) {\n\tleaf\n}\n(m) {\n\timport l\n}\nx {\n\timport l\n\timport m\n\timport m\n}",
            d
        )
        .0,
        "[x] { leaf; leaf; leaf }"
    );
}

#[test]
fn pattern_errors() {
    let dir = tmp();
    let d = dir.path();
    let (message, at) = error("x {\n\timport\n}", d);
    assert!(
        message.contains("needs a snippet name or a file path"),
        "{message}"
    );
    assert_eq!(at, Some((2, 2)));
    let (message, at) = error("x {\n\timport \"\"\n}", d);
    assert!(message.contains("non-empty"), "{message}");
    assert_eq!(at, Some((2, 9)));
    // An unset variable leaves no token, so the pattern is missing.
    let (message, _) = error("x {\n\timport {$UNSET}\n}", d);
    assert!(message.contains("needs a snippet name"), "{message}");
}
