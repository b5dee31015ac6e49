//! `adapt_source_to_text` (what `caddyprof adapt` prints) reads each child profiler of a
//! `profiling` block as soon as it is parsed, and `adapt_source` (the library's value) reads
//! them from the whole syntax tree. Both must give the same JSON, the same warnings in the
//! same order, and the same first error, whichever comes first in the file.

use caddyprof::{AdaptOptions, SourceFile};

/// What adapting gave, rendered for comparison: the JSON text or the error, and the warnings.
fn outcome(result: Result<(String, Vec<caddyprof::Diagnostic>), caddyprof::Error>) -> String {
    match result {
        Ok((json, warnings)) => {
            let warnings: Vec<String> = warnings.iter().map(|w| w.render_plain()).collect();
            format!("ok {json}\nwarnings:\n{}", warnings.join("\n"))
        }
        Err(error) => format!("error {}", error.render_plain()),
    }
}

fn check(input: &str, want: &str) {
    let file = SourceFile::new("Profilingfile", input);
    let options = || AdaptOptions {
        env: Box::new(|_| None),
        base_dir: std::env::temp_dir(),
    };
    for pretty in [false, true] {
        let from_tree = outcome(caddyprof::adapt_source(&file, &options()).map(|adapted| {
            let text = caddyprof::fields::json_writer::text_of(&adapted.json, pretty);
            (text, adapted.warnings)
        }));
        let as_read = outcome(
            caddyprof::adapt_source_to_text(&file, &options(), pretty)
                .map(|adapted| (adapted.json, adapted.warnings)),
        );
        assert_eq!(as_read, from_tree, "input:\n{input}");
        assert!(
            as_read.contains(want),
            "input:\n{input}\nwant {want:?} in\n{as_read}"
        );
    }
}

#[test]
fn profilers_read_ahead_give_the_same_json_and_warnings() {
    // Parameters before, between and after profilers; profilers with and without blocks;
    // the file profiler (an extension, with its own warning) between two others; warnings
    // from inside profilers and from the profiling block itself.
    check(
        "profiling {\n\tprofile_types cpu\n\tpyroscope http://a:1 {\n\t\tapplication_name \"a b\"\n\t\tcpu_profile_rate 5000\n\t}\n\tprofefe\n\tfile {\n\t\tdirectory /tmp/p\n\t\tprofile_types heap heap\n\t}\n\tcpu_profile_rate 9000\n\tpyroscope http://b:2\n\tprofile_types heap\n}\n",
        "ok",
    );
    // Profilers brought in by a snippet, inside a profiling block without braces.
    check(
        "(p) {\n\tpyroscope {args[0]} {\n\t\ttenant_id {args[1]}\n\t\t{block}\n\t}\n}\nprofiling\nimport p http://a:1 t1 {\n\tupload_rate 5s\n}\nimport p http://b:2 t2\n",
        "\"t2\"",
    );
    // A top-level pyroscope app next to the profiling block: its directives are its own.
    check(
        "pyroscope http://a:1 {\n\tapplication_name x\n}\nprofiling {\n\tprofefe http://b:2 {\n\t\tservice y\n\t}\n}\n",
        "\"y\"",
    );
}

#[test]
fn the_first_error_is_the_same() {
    // An invalid profiler, then an invalid parameter: the profiler's error.
    check(
        "profiling {\n\tpyroscope {\n\t\tapplication_name a\n\t}\n\tprofefe {\n\t\tbogus 1\n\t}\n\tcpu_profile_rate x\n}\n",
        "unknown directive 'bogus' in profefe",
    );
    // An invalid parameter, then an invalid profiler: the parameter's error.
    check(
        "profiling {\n\tcpu_profile_rate x\n\tprofefe {\n\t\tbogus 1\n\t}\n}\n",
        "cpu_profile_rate: must be a whole number",
    );
    // A profiler with a block and a second address: that error, not the block's.
    check(
        "profiling {\n\tprofefe http://a:1 http://b:2 {\n\t\tbogus 1\n\t}\n}\n",
        "takes at most one argument",
    );
    // An invalid profiler before a parse error, and before a lexing error: those come
    // first, as the whole file is parsed before it is adapted.
    check(
        "profiling {\n\tprofefe {\n\t\tbogus 1\n\t}\n}\n}\n",
        "unexpected '}' at top level",
    );
    check(
        "profiling {\n\tprofefe {\n\t\tbogus 1\n\t}\n}\npyroscope {\n\tapplication_name \"open\n}\n",
        "unterminated quoted text",
    );
    // An error in an earlier block comes first.
    check(
        "pyroscop {\n}\nprofiling {\n\tprofefe {\n\t\tbogus 1\n\t}\n}\n",
        "unknown app 'pyroscop'",
    );
    // A second profiling block is an error, whatever its profilers hold.
    check(
        "profiling {\n\tprofefe {\n\t\tservice a\n\t}\n}\nprofiling {\n\tprofefe {\n\t\tbogus 1\n\t}\n}\n",
        "the profiling app is defined twice",
    );
    check(
        "profiling x {\n\tprofefe {\n\t\tbogus 1\n\t}\n}\n",
        "the profiling app takes no address",
    );
    // Two invalid profilers: the first one's error.
    check(
        "profiling {\n\tprofefe {\n\t\ttimeout x\n\t}\n\tpyroscope {\n\t\tbogus 1\n\t}\n}\n",
        "× timeout: ",
    );
}
