//! Properties of generated, valid Profilingfiles written in any layout: formatting is
//! idempotent and does not change what the file means (`adapt(fmt(x)) == adapt(x)`), and
//! the JSON text adapted directly is the adapted `serde_json::Value` printed.

use caddyprof::SourceFile;
use proptest::prelude::*;

/// Blank space between tokens: spaces and tabs, sometimes a lot.
fn gap() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(" ".to_owned()),
        1 => "[ \t]{1,4}",
    ]
}

/// What may end a line: nothing, trailing spaces, or a comment.
fn line_end() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        1 => "[ \t]{1,3}",
        1 => " # [a-z {}\"`]{0,12}",
    ]
}

/// Between lines: a newline, possibly blank lines and own-line comments.
fn between_lines() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("\n".to_owned()),
        1 => Just("\n\n\n".to_owned()),
        1 => Just("\r\n".to_owned()),
        1 => "\n[ \t]{0,3}# [a-z ]{0,10}\n",
    ]
}

/// A string value written as a word, a quoted string, a backtick string or a heredoc.
fn text_value() -> impl Strategy<Value = (String, String)> {
    let value = "[a-z][a-z0-9_.-]{0,10}";
    prop_oneof![
        value.prop_map(|v| (v.clone(), v)),
        (value, value).prop_map(|(a, b)| (format!("\"{a} {b}\""), format!("{a} {b}"))),
        (value, value).prop_map(|(a, b)| (format!("`{a}\"{b}`"), format!("{a}\"{b}"))),
        (value, "[ \t]{0,4}").prop_map(|(a, pad)| (format!("<<END\n{pad}{a}\n{pad}END"), a)),
    ]
}

/// One directive line of a pyroscope or profefe block (without indentation).
fn profiler_directive(pyroscope: bool) -> BoxedStrategy<String> {
    let rate = (
        prop::sample::select(vec![
            "cpu_profile_rate",
            "block_profile_rate",
            "mutex_profile_fraction",
        ]),
        0u32..5000,
    )
        .prop_map(|(name, n)| format!("{name} {n}"));
    let types = prop::collection::vec(
        prop::sample::select(vec!["cpu", "heap", "allocs", "goroutine", "block", "mutex"]),
        1..4,
    )
    .prop_map(|t| format!("profile_types {}", t.join(" ")));
    let duration = prop::sample::select(vec!["10s", "1m30s", "250ms", "2h", "1d"]);
    if pyroscope {
        prop_oneof![
            rate.boxed(),
            types.boxed(),
            text_value()
                .prop_map(|(t, _)| format!("application_name {t}"))
                .boxed(),
            text_value()
                .prop_map(|(t, _)| format!("tenant_id {t}"))
                .boxed(),
            duration.prop_map(|d| format!("upload_rate {d}")).boxed(),
            Just("disable_gc_runs".to_owned()).boxed(),
        ]
        .boxed()
    } else {
        prop_oneof![
            rate.boxed(),
            types.boxed(),
            text_value()
                .prop_map(|(t, _)| format!("service {t}"))
                .boxed(),
            duration.prop_map(|d| format!("timeout {d}")).boxed(),
        ]
        .boxed()
    }
}

/// A block's contents: directives, with the key, each on its own line.
fn block(
    head: String,
    lines: Vec<String>,
    depth: usize,
    gaps: Vec<(String, String, String)>,
) -> String {
    let mut out = format!("{head} {{");
    for (line, (indent, end, between)) in lines.iter().zip(gaps) {
        out.push_str(&between);
        out.push_str(&"\t".repeat(depth + 1).replace('\t', &indent));
        out.push_str(line);
        out.push_str(&end);
    }
    out.push('\n');
    out.push_str(&"\t".repeat(depth));
    out.push('}');
    out
}

fn layout() -> impl Strategy<Value = Vec<(String, String, String)>> {
    prop::collection::vec(
        (
            prop_oneof![
                Just("\t".to_owned()),
                Just("  ".to_owned()),
                Just(String::new())
            ],
            line_end(),
            between_lines(),
        ),
        12,
    )
}

/// A pyroscope or profefe child of `profiling`, with or without a block.
fn child() -> impl Strategy<Value = String> {
    (any::<bool>(), any::<bool>(), layout(), gap()).prop_flat_map(
        |(pyroscope, with_address, layout, gap)| {
            let name = if pyroscope { "pyroscope" } else { "profefe" };
            let head = if with_address {
                format!("{name}{gap}http://host-{}.example:4040", name.len())
            } else {
                name.to_owned()
            };
            prop::collection::vec(profiler_directive(pyroscope), 0..4).prop_map(move |lines| {
                if lines.is_empty() {
                    head.clone()
                } else {
                    // Each field once: keep the first directive of each name.
                    let mut seen = Vec::new();
                    let lines: Vec<String> = lines
                        .into_iter()
                        .filter(|l| {
                            let name = l.split(' ').next().unwrap().to_owned();
                            let keep = name == "profile_types" || !seen.contains(&name);
                            seen.push(name);
                            keep
                        })
                        .collect();
                    block(head.clone(), lines, 1, layout.clone())
                }
            })
        },
    )
}

/// A whole Profilingfile: a profiling app with children, and maybe a standalone app.
fn profilingfile() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(child(), 0..4),
        prop::option::of(0u32..500),
        layout(),
        between_lines(),
        any::<bool>(),
    )
        .prop_map(|(children, rate, layout, between, standalone)| {
            let mut lines = Vec::new();
            if let Some(rate) = rate {
                lines.push(format!("cpu_profile_rate {rate}"));
            }
            lines.extend(children);
            let mut out = block("profiling".to_owned(), lines, 0, layout);
            if standalone {
                out.push_str(&between);
                out.push_str("profefe {\n\tservice standalone\n}");
            }
            out.push_str(&between);
            out
        })
}

fn adapt(text: &str) -> serde_json::Value {
    let file = SourceFile::new("Profilingfile", text);
    caddyprof::adapt_source(&file, &caddyprof::AdaptOptions::default())
        .unwrap_or_else(|e| panic!("{text}\n{}", e.render_plain()))
        .json
}

fn fmt(text: &str) -> String {
    caddyprof::syntax::format::format(&SourceFile::new("Profilingfile", text))
        .unwrap_or_else(|e| panic!("{text}\n{}", e.render_plain()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn formatting_is_idempotent_and_keeps_the_meaning(text in profilingfile()) {
        let formatted = fmt(&text);
        prop_assert_eq!(&fmt(&formatted), &formatted, "not idempotent");
        prop_assert_eq!(adapt(&formatted), adapt(&text), "meaning changed:\n{}\n---\n{}", text, formatted);
    }

    #[test]
    fn text_output_is_the_value_printed(text in profilingfile()) {
        let file = SourceFile::new("Profilingfile", text.as_str());
        let options = caddyprof::AdaptOptions::default();
        let value = adapt(&text);
        for pretty in [false, true] {
            let adapted = caddyprof::adapt_source_to_text(&file, &options, pretty).unwrap();
            prop_assert_eq!(adapted.json, caddyprof::fields::json_writer::text_of(&value, pretty));
        }
    }
}

#[test]
fn the_generator_makes_varied_valid_files() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let samples: Vec<String> = (0..50)
        .map(|_| profilingfile().new_tree(&mut runner).unwrap().current())
        .collect();
    let all = samples.join("\n");
    for feature in [
        "<<END",
        "\"",
        "`",
        "# ",
        "pyroscope",
        "profefe",
        "profile_types",
        "\r\n",
    ] {
        assert!(all.contains(feature), "no sample has {feature:?}");
    }
    for sample in &samples {
        adapt(sample);
    }
}
