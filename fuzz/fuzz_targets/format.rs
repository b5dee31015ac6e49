//! Formatting is idempotent: formatting a formatted file changes nothing, for any input that
//! parses.

#![no_main]

use caddyprof::SourceFile;
use caddyprof::syntax;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let file = SourceFile::new("Profilingfile", text);
    // Whitespace-only input formats to "", which is not a file to format again.
    if let Ok(formatted) = syntax::format::format(&file)
        && !formatted.is_empty()
    {
        // Formatting a formatted file must work and change nothing.
        let again = syntax::format::format(&SourceFile::new("Profilingfile", formatted.as_str()))
            .expect("formatted output parses");
        assert_eq!(again, formatted, "format is not idempotent");
    }
});
