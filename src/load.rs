//! Loading a config file of either kind: a Profilingfile is adapted, then its JSON loaded and
//! checked like a JSON config. Used by `validate`, `run` and [`crate::runtime::start_file`].

use std::path::Path;

use crate::adapt::locate::SourceMap;
use crate::config::{Config, Loaded};
use crate::diagnostic::{Diagnostic, Error};
use crate::source::SourceFile;
use crate::{AdaptOptions, Adapted};

/// The two kinds of config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigFormat {
    /// A Profilingfile (the Caddyfile language).
    Profilingfile,
    /// The JSON config (`{"apps": …}`).
    Json,
}

impl ConfigFormat {
    /// JSON for a `.json` file or a text that starts with `{` (a Profilingfile cannot), else
    /// a Profilingfile.
    ///
    /// ```
    /// use caddyprof::ConfigFormat;
    /// use std::path::Path;
    ///
    /// assert_eq!(ConfigFormat::guess(Path::new("caddy.json"), ""), ConfigFormat::Json);
    /// assert_eq!(ConfigFormat::guess(Path::new("config"), " {\"apps\": {}}"), ConfigFormat::Json);
    /// assert_eq!(ConfigFormat::guess(Path::new("Profilingfile"), "profefe\n"), ConfigFormat::Profilingfile);
    /// ```
    pub fn guess(path: &Path, text: &str) -> ConfigFormat {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
            || text
                .trim_start_matches('\u{FEFF}')
                .trim_start()
                .starts_with('{')
        {
            ConfigFormat::Json
        } else {
            ConfigFormat::Profilingfile
        }
    }
}

/// Reads and loads the config file at `path`, of `format` or of the kind guessed from its
/// name and content. Imports of a Profilingfile resolve relative to it.
pub fn load_config(path: &Path, format: Option<ConfigFormat>) -> Result<Loaded, Error> {
    let source = crate::read_source(path)?;
    let options = AdaptOptions {
        base_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        ..AdaptOptions::default()
    };
    load_source(&source, format, &options)
}

/// Loads `source`, a config of `format` (or of the guessed kind).
pub fn load_source(
    source: &SourceFile,
    format: Option<ConfigFormat>,
    options: &AdaptOptions,
) -> Result<Loaded, Error> {
    let format =
        format.unwrap_or_else(|| ConfigFormat::guess(Path::new(source.name()), source.text()));
    match format {
        ConfigFormat::Json => Config::load_json(source),
        ConfigFormat::Profilingfile => {
            let (adapted, document) = crate::adapt_keeping_document(source, options)?;
            let mut loaded = check_adapted(source, &adapted)?;
            let mut warnings = adapted.warnings;
            warnings.append(&mut loaded.warnings);
            loaded.warnings = warnings;
            loaded.sources = SourceMap::of(&document);
            Ok(loaded)
        }
    }
}

/// Loads the JSON adapted from `source` as a typed config; its warnings are those the adapter
/// did not already give.
pub fn check_adapted(source: &SourceFile, adapted: &Adapted) -> Result<Loaded, Error> {
    let generated = SourceFile::new(
        format!("{} (adapted)", source.name()),
        pretty_json(&adapted.json),
    );
    let mut loaded = Config::load_json(&generated)?;
    loaded
        .warnings
        .retain(|w| !already_reported(w, &adapted.warnings));
    Ok(loaded)
}

/// Whether the adapter already said what a config warning says: config warnings start with
/// the JSON path (`apps.profiling.cpu_profile_rate: …`); the adapter's start with the
/// directive name (`cpu_profile_rate 5000 is …`), or say the same after the path.
fn already_reported(warning: &Diagnostic, adapter_warnings: &[Diagnostic]) -> bool {
    let Some((path, said)) = warning.message().split_once(": ") else {
        return false;
    };
    let field = path.rsplit('.').next().unwrap_or(path);
    adapter_warnings
        .iter()
        .any(|w| w.message() == said || w.message().split_whitespace().next() == Some(field))
}

/// Tab-indented JSON, like `caddy adapt --pretty`.
pub fn pretty_json(value: &serde_json::Value) -> String {
    crate::adapt::json::text_of(value, true)
}
