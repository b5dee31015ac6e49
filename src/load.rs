//! Loading a config file of either kind: a Profilingfile is adapted, then its JSON loaded and
//! checked like a JSON config. Used by `validate`, `run` and [`crate::runtime::start_file`].

use std::path::Path;

use crate::AdaptOptions;
use crate::config::{Config, Loaded};
use crate::diagnostic::{Diagnostic, Error};
use crate::source::SourceFile;

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
            load_profilingfile(source, options).map(|(loaded, _)| loaded)
        }
    }
}

/// Adapts the Profilingfile `source` and loads its JSON as a typed config: the warnings are
/// the adapter's, then those of the loader that the adapter did not already give, and the
/// sources say where each part of the config was written. Also returns the JSON (pretty, named
/// `NAME (adapted)`), which the loader's diagnostics point into.
///
/// A large file is adapted as `caddyprof adapt` does (each profiler written as soon as it is
/// parsed, see [`crate::adapt_source_to_text`]), so that no whole syntax tree or
/// `serde_json::Value` is kept beside the typed config.
///
/// ```
/// use caddyprof::load::load_profilingfile;
/// use caddyprof::{AdaptOptions, SourceFile};
///
/// let source = SourceFile::new("Profilingfile", "profiling {\n\tcpu_profile_rate 5\n}\n");
/// let (loaded, json) = load_profilingfile(&source, &AdaptOptions::default()).unwrap();
/// assert_eq!(loaded.config.profiling.unwrap().parameters.cpu_profile_rate, Some(5));
/// assert_eq!(json.name(), "Profilingfile (adapted)");
/// // The loader's warning points into the JSON.
/// let warning = &loaded.warnings[0];
/// assert!(warning.message().ends_with("the profiling app does nothing"));
/// assert_eq!(warning.location().unwrap().line_col(), (3, 16));
/// ```
pub fn load_profilingfile(
    source: &SourceFile,
    options: &AdaptOptions,
) -> Result<(Loaded, SourceFile), Error> {
    let (adapted, sources) = crate::adapt_to_text_mapped(source, options)?;
    let generated = SourceFile::new(format!("{} (adapted)", source.name()), adapted.json);
    let mut loaded = Config::load_written_json(&generated)?;
    loaded
        .warnings
        .retain(|w| !already_reported(w, &adapted.warnings));
    let mut warnings = adapted.warnings;
    warnings.append(&mut loaded.warnings);
    loaded.warnings = warnings;
    loaded.sources = sources;
    Ok((loaded, generated))
}

/// Whether the adapter already said what a config warning says: config warnings start with
/// the JSON path (`apps.profiling.cpu_profile_rate: …`), the adapter's with the directive
/// name (`cpu_profile_rate: …`, the same words after it when one rule says both), or say the
/// same after the path.
fn already_reported(warning: &Diagnostic, adapter_warnings: &[Diagnostic]) -> bool {
    let Some((path, said)) = warning.message().split_once(": ") else {
        return false;
    };
    let field = path.rsplit('.').next().unwrap_or(path);
    adapter_warnings.iter().any(|w| {
        let message = w.message();
        message == said
            || message.split_once(": ") == Some((field, said))
            || message.split_whitespace().next() == Some(field)
    })
}
