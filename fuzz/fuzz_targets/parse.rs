//! Feeds arbitrary UTF-8 to the parser (with imports expanded against an empty temporary
//! folder, and a fixed environment), the adapter, the JSON loader and the formatter. None may
//! panic.

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
    // Adapting (and loading the JSON it makes) must not panic either.
    if let Ok(parsed) = syntax::parse(&file, &options)
        && let Ok(adapted) = caddyprof::adapt::adapt_document(&parsed.document)
    {
        let json = SourceFile::new("adapted.json", adapted.json.to_string());
        let _ = caddyprof::Config::load_json(&json);
    }
    // Formatting must not panic either (its idempotence is the `format` target's job).
    let _ = syntax::format::format(&file);
});
