//! Every error in a Profilingfile is a diagnostic with file, line, column, a label on the
//! exact token and a help line. These snapshots show them as a user sees them.

use std::path::Path;

use caddyprof::{AdaptOptions, SourceFile};

/// (snapshot name, Profilingfile)
const CASES: &[(&str, &str)] = &[
    (
        "unknown_directive",
        "pyroscope {\n\tserver_adress http://localhost:4040\n}\n",
    ),
    (
        "unknown_app",
        "pyroscop {\n\tserver_address http://localhost:4040\n}\n",
    ),
    (
        "unknown_profile_type",
        "profiling {\n\tprofile_types cpu heapp\n}\n",
    ),
    ("bad_duration", "pyroscope {\n\tupload_rate 10x\n}\n"),
    ("zero_upload_rate", "pyroscope {\n\tupload_rate 0s\n}\n"),
    ("negative_timeout", "profefe {\n\ttimeout -5s\n}\n"),
    ("negative_rate", "profiling {\n\tcpu_profile_rate -5\n}\n"),
    (
        "fractional_rate",
        "profefe {\n\tparameters {\n\t\tmutex_profile_fraction 2.5\n\t}\n}\n",
    ),
    (
        "duplicate_app",
        "profiling {\n\tprofefe\n}\n\nprofiling {\n\tcpu_profile_rate 100\n}\n",
    ),
    (
        "unclosed_block",
        "profiling {\n\tpyroscope http://localhost:4040 {\n\t\tupload_rate 10s\n}\n",
    ),
    (
        "unterminated_quote",
        "pyroscope {\n\tapplication_name \"my app\n}\n",
    ),
    (
        "unterminated_backtick",
        "pyroscope {\n\tapplication_name `my app\n}\n",
    ),
    (
        "heredoc_bad_marker",
        "pyroscope {\n\tauth_token <<E.F\n\t\tsecret\n\t\tE.F\n}\n",
    ),
    (
        "heredoc_too_many_angles",
        "pyroscope {\n\tauth_token <<<EOF\n\t\tsecret\n\t\tEOF\n}\n",
    ),
    (
        "heredoc_never_closed",
        "pyroscope {\n\tauth_token <<TOKEN\n\t\tsecret\n}\n",
    ),
    (
        "heredoc_bad_indentation",
        "pyroscope {\n\tauth_token <<TOKEN\n  secret\n\t\tTOKEN\n}\n",
    ),
    ("import_cycle", "import cycle_a.Profilingfile\n"),
    (
        "missing_snippet",
        "(shared) {\n\tprofefe\n}\n\nprofiling {\n\timport sharde\n}\n",
    ),
    (
        "snippet_defined_twice",
        "(s) {\n\tprofefe\n}\n(s) {\n\tprofefe\n}\n",
    ),
    (
        "bad_args_index",
        "(named) {\n\tapplication_name {args[-1]}\n}\n\npyroscope {\n\timport named my_app\n}\n",
    ),
    (
        "bad_args_range",
        "(named) {\n\tprofile_types {args[1:x]}\n}\n\npyroscope {\n\timport named cpu heap\n}\n",
    ),
    (
        "address_given_twice",
        "profiling {\n\tpyroscope http://localhost:4040 {\n\t\tserver_address http://localhost:4041\n\t}\n}\n",
    ),
    (
        "field_given_twice",
        "pyroscope {\n\tapplication_name a\n\tapplication_name b\n}\n",
    ),
    (
        "parameters_both_ways",
        "profefe {\n\tcpu_profile_rate 100\n\tparameters {\n\t\tprofile_types cpu\n\t}\n}\n",
    ),
    (
        "unknown_parameter",
        "pyroscope {\n\tparameters {\n\t\tcpu_rate 100\n\t}\n}\n",
    ),
    (
        "parameters_block_in_profiling",
        "profiling {\n\tparameters {\n\t\tcpu_profile_rate 100\n\t}\n}\n",
    ),
    (
        "bad_url",
        "pyroscope {\n\tserver_address localhost:4040\n}\n",
    ),
    (
        "bad_url_scheme",
        "profiling {\n\tprofefe ftp://localhost:10100\n}\n",
    ),
    ("stray_close_brace", "profiling {\n\tprofefe\n}\n}\n"),
    (
        "open_brace_on_new_line",
        "profiling {\n\tpyroscope\n\t{\n\t\tupload_rate 10s\n\t}\n}\n",
    ),
    ("one_line_block", "profiling { profefe }\n"),
    ("close_brace_mid_line", "profiling {\n\tprofefe }\n"),
    (
        "empty_braces_at_end_of_line",
        "profiling {\n\tprofefe {}\n}\n",
    ),
    (
        "env_reference_not_closed",
        "pyroscope {\n\tapplication_name {$APP_NAME\n}\n",
    ),
    ("global_options_block", "{\n\tdebug\n}\n"),
    (
        "flag_with_bad_value",
        "pyroscope {\n\tdisable_gc_runs yes\n}\n",
    ),
    ("missing_value", "pyroscope {\n\tapplication_name\n}\n"),
    (
        "too_many_values",
        "pyroscope {\n\tapplication_name my cool app\n}\n",
    ),
    (
        "block_on_value",
        "pyroscope {\n\tapplication_name app {\n\t\tx\n\t}\n}\n",
    ),
    (
        "profile_types_without_types",
        "profiling {\n\tprofile_types\n}\n",
    ),
    (
        "child_with_two_addresses",
        "profiling {\n\tprofefe http://a:1 http://b:2\n}\n",
    ),
    ("braceless_app_runs_on", "profefe\npyroscope {\n}\n"),
    ("key_ends_with_brace", "profiling{\n\tprofefe\n}\n"),
    (
        "import_glob_too_many_wildcards",
        "import */*.Profilingfile\n",
    ),
    ("error_in_imported_file", "import bad_quote.Profilingfile\n"),
    // A file whose first token is no app (a /etc/shadow): nothing of it is shown.
    (
        "import_not_a_profilingfile",
        "profiling {\n\tprofefe\n}\nimport not_a_profilingfile\n",
    ),
    (
        "unset_env_value",
        "pyroscope {\n\tapplication_name {$APP_NAME}\n}\n",
    ),
    ("empty_file", ""),
];

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn render(input: &str) -> String {
    let file = SourceFile::new("Profilingfile", input);
    let options = AdaptOptions {
        env: Box::new(|_| None),
        base_dir: fixtures(),
    };
    match caddyprof::adapt_source(&file, &options) {
        Ok(adapted) => panic!("expected an error, got {}", adapted.json),
        Err(error) => {
            for diagnostic in error.diagnostics() {
                assert!(
                    diagnostic.help_text().is_some(),
                    "no help line: {}",
                    diagnostic.message()
                );
            }
            error.render_plain()
        }
    }
}

#[test]
fn bad_inputs_give_clear_diagnostics() {
    assert!(CASES.len() >= 25);
    // The fixtures' absolute path differs between machines: shown as [fixtures].
    let root: String = fixtures()
        .display()
        .to_string()
        .chars()
        .flat_map(|c| {
            let escape = "\\.+*?()|[]{}^$".contains(c);
            escape.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect();
    let cases = CASES
        .iter()
        .map(|&(name, input)| (name, format!("Profilingfile:\n{input}"), input.to_owned()));
    let generated = generated_cases()
        .into_iter()
        .map(|(name, what, input)| (name, format!("Profilingfile: {what}"), input));
    for (name, description, input) in cases.chain(generated) {
        let rendered = render(&input);
        insta::with_settings!({
            snapshot_path => "../snapshots",
            prepend_module_to_snapshot => false,
            description => description,
            omit_expression => true,
            filters => vec![(root.as_str(), "[fixtures]")],
        }, {
            insta::assert_snapshot!(format!("diagnostic_{name}"), rendered);
        });
    }
}

/// (snapshot name, what the Profilingfile is, the Profilingfile): inputs too large to show
/// in the snapshot's description.
fn generated_cases() -> Vec<(&'static str, &'static str, String)> {
    vec![
        (
            "nested_too_deep",
            "blocks nested 100 levels deep",
            format!("profiling {{\n{}{}", "a {\n".repeat(99), "}\n".repeat(100)),
        ),
        (
            "unterminated_quote_on_a_long_line",
            "a quote never closed on a line of 1 MB",
            format!(
                "pyroscope {{\n\tapplication_name {} \"{}\n}}\n",
                "a".repeat(1000),
                "x".repeat(1_000_000)
            ),
        ),
        (
            "not_a_text_file",
            "binary bytes, with a NUL",
            "\u{7f}ELF\u{2}\u{1}\u{1}\u{0}\u{0}{profiling,\n\u{1b}[2J\n".to_owned(),
        ),
        (
            "import_binary_file",
            "an import of a file of binary bytes",
            "profiling {\n\timport binary.bin\n}\n".to_owned(),
        ),
        (
            "unknown_app_with_a_long_name",
            "an app name of 100,000 characters",
            format!("{} {{\n}}\n", "x".repeat(100_000)),
        ),
    ]
}

/// A diagnostic about a file that is not a Profilingfile (binary, or not valid from its
/// first token on) shows nothing of what it holds.
#[test]
fn files_that_are_no_profilingfile_are_not_shown() {
    for import in ["not_a_profilingfile", "binary.bin"] {
        let rendered = render(&format!("import {import}\n"));
        let path = fixtures().join(import);
        let (message, help) = if import.ends_with(".bin") {
            (
                " is not a text Profilingfile: byte 7 is a NUL byte",
                "UTF-8 text",
            )
        } else {
            (
                " is not a Profilingfile",
                "its first token (line 1, column 1)",
            )
        };
        assert!(
            rendered.contains(&format!("{}{message}", path.display())),
            "{rendered}"
        );
        assert!(rendered.contains(help), "{rendered}");
        assert!(rendered.contains(&format!("import {import}")), "{rendered}");
        let content = std::fs::read(&path).unwrap();
        let first_line = content.split(|&b| b == b'\n').next().unwrap();
        for secret in [&b"SECRET"[..], b"secret", b"ELF", &first_line[..8]] {
            let shown = rendered
                .as_bytes()
                .windows(secret.len())
                .any(|w| w == secret);
            assert!(!shown, "{import}: {rendered}");
        }
    }
}

#[test]
fn every_error_points_at_a_line_and_column() {
    for (name, input) in CASES {
        if input.is_empty() {
            continue;
        }
        let file = SourceFile::new("Profilingfile", *input);
        let options = AdaptOptions {
            env: Box::new(|_| None),
            base_dir: fixtures(),
        };
        let error = caddyprof::adapt_source(&file, &options).unwrap_err();
        let first = &error.diagnostics()[0];
        assert!(first.location().is_some(), "{name}: no location");
    }
}
