//! No input can overflow the stack: blocks nested deeper than `MAX_NESTING`, in a
//! Profilingfile, through its imports, or in a JSON config, are an error at the brace that
//! crosses the limit, from every entry point. Each case runs on a thread with a 256 KiB
//! stack (`cargo test` builds without optimizations: the frames are at their largest), at
//! the limit and at 100 times it.

use caddyprof::syntax::{ParseOptions, parse};
use caddyprof::{AdaptOptions, ConfigFormat, Error, MAX_NESTING, SourceFile};

const STACK: usize = 256 * 1024;

/// Runs `f` on a thread with a [`STACK`]-byte stack: an overflow aborts the whole test
/// binary, which fails the test run.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(f)
        .expect("a thread starts")
        .join()
        .expect("no panic")
}

/// A `profiling` block with blocks nested in it, `levels` in all, one per line, so that
/// level N opens on line N.
fn nested_blocks(levels: usize) -> String {
    let mut text = String::from("profiling {\n");
    text.push_str(&"a {\n".repeat(levels - 1));
    text.push_str(&"}\n".repeat(levels));
    text
}

/// Whether `error` is the nesting error at the `{` of line `line` (column 3: `a {`).
fn is_too_deep_at(error: &Error, name: &str, line: usize) -> bool {
    let first = &error.diagnostics()[0];
    first.message() == format!("blocks are nested more than {MAX_NESTING} levels deep")
        && first.location().map(|at| at.display()) == Some(format!("{name}:{line}:3"))
}

/// Every way into the Profilingfile pipeline, each with its result's error if any.
fn every_entry_point(text: String) -> Vec<(&'static str, Option<Error>)> {
    on_small_stack(move || {
        let file = SourceFile::new("Profilingfile", text);
        let no_env = || AdaptOptions {
            env: Box::new(|_| None),
            ..AdaptOptions::default()
        };
        let mut results = Vec::new();
        for expand in [false, true] {
            let options = ParseOptions {
                expand,
                env: None,
                base_dir: ".".into(),
            };
            results.push(("parse", parse(&file, &options).err()));
        }
        results.push(("format", caddyprof::syntax::format::format(&file).err()));
        results.push(("adapt", caddyprof::adapt_source(&file, &no_env()).err()));
        results.push((
            "adapt to text",
            caddyprof::adapt_source_to_text(&file, &no_env(), true).err(),
        ));
        results.push((
            "load",
            caddyprof::load::load_source(&file, None, &no_env()).err(),
        ));
        results
    })
}

#[test]
fn blocks_at_the_limit_are_read() {
    for (entry, error) in every_entry_point(nested_blocks(MAX_NESTING)) {
        match (entry, error) {
            ("parse" | "format", Some(error)) => panic!("{entry}: {error}"),
            // `a` is no directive of `profiling`: the adapter refuses it, after parsing.
            (_, Some(error)) => assert!(
                error.to_string().contains("unknown directive 'a'"),
                "{entry}: {error}"
            ),
            (_, None) if entry.starts_with("parse") || entry == "format" => {}
            (_, None) => panic!("{entry}: accepted"),
        }
    }
    let formatted = on_small_stack(|| {
        caddyprof::syntax::format::format(&SourceFile::new("P", nested_blocks(MAX_NESTING)))
    })
    .unwrap();
    assert_eq!(formatted.matches('{').count(), MAX_NESTING);
}

#[test]
fn blocks_past_the_limit_are_an_error_at_the_brace_that_crosses_it() {
    for levels in [MAX_NESTING + 1, 100 * MAX_NESTING] {
        for (entry, error) in every_entry_point(nested_blocks(levels)) {
            let error = error.unwrap_or_else(|| panic!("{entry} accepted {levels} levels"));
            assert!(
                is_too_deep_at(&error, "Profilingfile", MAX_NESTING + 1),
                "{entry}, {levels} levels: {error}"
            );
        }
    }
}

/// Imports nest blocks without braces in the importing file: each file of a chain opens a
/// block and imports the next one inside it.
#[test]
fn blocks_nested_by_imports_are_counted_too() {
    let dir = tempfile::tempdir().unwrap();
    let files = 100 * MAX_NESTING;
    for i in 1..=files {
        let text = format!("a {{\n\timport f{}\n}}\n", i + 1);
        std::fs::write(dir.path().join(format!("f{i}")), text).unwrap();
    }
    std::fs::write(dir.path().join(format!("f{}", files + 1)), "b\n").unwrap();
    let base_dir = dir.path().to_path_buf();
    let error = on_small_stack(move || {
        let file = SourceFile::new("Profilingfile", "profiling {\n\timport f1\n}\n");
        let options = AdaptOptions {
            env: Box::new(|_| None),
            base_dir,
        };
        caddyprof::adapt_source(&file, &options).unwrap_err()
    });
    // `profiling` is level 1, and the block of f1 level 2.
    let file = dir.path().join(format!("f{MAX_NESTING}"));
    assert!(
        is_too_deep_at(&error, &file.display().to_string(), 1),
        "{error}"
    );
    let notes = error.render_plain().matches("file imported here").count();
    assert!(notes >= MAX_NESTING - 1, "{notes} import notes");
}

/// A JSON config whose `apps.profiling` holds containers nested `levels` deep in all
/// (`open`, starting with its bracket, and `close` make one level), and where the first
/// container nested too deep opens.
fn nested_json(levels: usize, open: &str, close: &str) -> (String, usize) {
    let head = r#"{"apps": {"profiling": "#;
    let inner = levels - 2;
    let text = format!("{head}{}1{}}}}}", open.repeat(inner), close.repeat(inner));
    let crossing = head.len() + open.len() * (MAX_NESTING - 2);
    (text, crossing)
}

fn load_json(text: String) -> Result<(), Error> {
    on_small_stack(move || {
        let file = SourceFile::new("config.json", text);
        let options = AdaptOptions::default();
        caddyprof::load::load_source(&file, Some(ConfigFormat::Json), &options)?;
        caddyprof::Config::load_json(&file).map(drop)
    })
}

#[test]
fn json_at_the_limit_is_read() {
    for (open, close) in [("[", "]"), (r#"{"a": "#, "}")] {
        let (text, _) = nested_json(MAX_NESTING, open, close);
        let error = load_json(text).unwrap_err();
        // Read and decoded: what is wrong is the value of `profiling`.
        assert!(error.to_string().contains(": apps.profiling: "), "{error}");
    }
}

#[test]
fn json_past_the_limit_is_an_error_at_the_bracket_that_crosses_it() {
    for levels in [MAX_NESTING + 1, 100 * MAX_NESTING] {
        for (open, close) in [("[", "]"), (r#"{"a": "#, "}")] {
            let (text, crossing) = nested_json(levels, open, close);
            let error = load_json(text.clone()).unwrap_err();
            let first = &error.diagnostics()[0];
            assert_eq!(
                first.message(),
                format!("JSON nested more than {MAX_NESTING} levels deep"),
                "{levels} levels of {open}"
            );
            let at = first.location().unwrap();
            assert_eq!(&text[at.start..at.end], &open[..1]);
            assert_eq!(at.start, crossing, "{levels} levels of {open}");
        }
    }
}

/// A syntax error before the bracket that crosses the limit is the one reported, as
/// serde_json would report it.
#[test]
fn a_json_syntax_error_before_the_deep_part_comes_first() {
    let (deep, _) = nested_json(100 * MAX_NESTING, "[", "]");
    let text = deep.replacen(r#""profiling": "#, r#""profiling" "#, 1);
    let error = load_json(text).unwrap_err();
    assert_eq!(
        error.diagnostics()[0].message(),
        "invalid JSON: expected `:`"
    );
}

#[test]
fn brackets_inside_json_strings_do_not_count() {
    let text = format!(r#"{{"apps": {{}}, "x{}": 1}}"#, "[{".repeat(MAX_NESTING));
    if let Err(error) = load_json(text) {
        panic!("{}", error.render_plain());
    }
}
