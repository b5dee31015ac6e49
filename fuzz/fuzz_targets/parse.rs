//! Feeds arbitrary UTF-8 to the parser (with imports expanded against an empty temporary
//! folder, and a fixed environment), the adapter, the JSON loader and the formatter. None may
//! panic, the adapter's JSON text must be what its `serde_json::Value` prints, and
//! `adapt_source_to_text` must give what adapting the whole tree gives.

#![no_main]

use std::sync::OnceLock;

use caddyprof::SourceFile;
use caddyprof::syntax::{self, ParseOptions};
use libfuzzer_sys::fuzz_target;

fn base_dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

fn lookup(name: &str) -> Option<String> {
    match name {
        "A" => Some("a b".to_owned()),
        "BRACE" => Some("{".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fuzz_target!(|text: &str| {
    let file = SourceFile::new("Profilingfile", text);
    let options = ParseOptions {
        expand: true,
        env: Some(&lookup),
        base_dir: base_dir().to_path_buf(),
    };
    // Adapting (and loading the JSON it makes) must not panic either, and the JSON text made
    // directly must be the value's text.
    if let Ok(parsed) = syntax::parse(&file, &options)
        && let Ok(adapted) = caddyprof::adapt::adapt_document(&parsed.document)
    {
        let text = adapted.json.to_string();
        let direct = caddyprof::adapt::adapt_document_to_text(&parsed.document, false)
            .expect("adapting succeeded once");
        assert_eq!(direct.json, text);
        let json = SourceFile::new("adapted.json", text);
        let _ = caddyprof::Config::load_json(&json);
    }
    // What `caddyprof adapt` does (each profiler adapted and written as soon as it is parsed)
    // must give the same JSON, warnings and first error as adapting the whole tree.
    let adapt_options = || caddyprof::AdaptOptions {
        env: Box::new(lookup),
        base_dir: base_dir().to_path_buf(),
    };
    let render = |warnings: &[caddyprof::Diagnostic]| {
        warnings
            .iter()
            .map(|w| w.render_plain())
            .collect::<Vec<_>>()
    };
    match (
        caddyprof::adapt_source(&file, &adapt_options()),
        caddyprof::adapt_source_to_text(&file, &adapt_options(), false),
    ) {
        (Ok(tree), Ok(read)) => {
            assert_eq!(read.json, tree.json.to_string());
            assert_eq!(render(&read.warnings), render(&tree.warnings));
        }
        (Err(tree), Err(read)) => assert_eq!(read.render_plain(), tree.render_plain()),
        (tree, read) => panic!(
            "the tree gave {:?}, reading ahead {:?}",
            tree.map(|a| a.json),
            read.map(|a| a.json)
        ),
    }
    // Formatting must not panic either (its idempotence is the `format` target's job).
    let _ = syntax::format::format(&file);
});
