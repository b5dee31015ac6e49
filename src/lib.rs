//! caddyprof: a declarative continuous-profiling agent for Rust, configured like Caddy.
//!
//! The pipeline: [`syntax`] (lex, parse, import) → [`adapt`](mod@adapt) (directives → JSON) →
//! [`config`] (typed, validated) → [`runtime`], with each app in [`apps`].
//!
//! # Layers
//!
//! The modules form layers; a module uses only modules of its own layer or of layers below
//! it, and no files use each other in a circle (`use crate::…`, file by file; `tests/layers.rs`
//! checks it):
//!
//! 1. **Foundations**: [`source`], `excerpt`, [`diagnostic`], `redact`, `swar`.
//! 2. **Shared helpers**: the Profilingfile reader [`syntax`], and [`fields`]: durations,
//!    profile types, the profiling parameters, the field tables each app declares its fields
//!    with, JSON reading (with spans) and decoding, JSON writing, the directive reader.
//! 3. **Apps**: [`apps`]`::*`, each with its config type and field table, its Profilingfile
//!    reading and its JSON decoding and writing (`apps/<app>/mod.rs`), and the one list of
//!    apps ([`apps::NAMES`]).
//! 4. **Root**: [`Config`] and [`config::Loaded`], the [`adapt`](mod@adapt) driver and its
//!    source map ([`adapt::locate`]), [`load`], and this file's entry points.
//! 5. **Profiling machinery**, beside layers 3 and 4 and using neither, in this order:
//!    [`unwind`], [`allocator`], [`profile`], then [`collect`] and [`sync`].
//! 6. **Runtime**: [`runtime`] (the plan, the host, the upload queue, the
//!    [`Sink`](runtime::sink::Sink) trait) and each app's runtime half
//!    (`apps/<app>/settings.rs`, `apps/<app>/sink.rs`).
//! 7. **The CLI** (`src/main.rs`), on the public API only.
//!
//! ```
//! let json = caddyprof::adapt("pyroscope http://localhost:4040 {\n\tupload_rate 10s\n}\n").unwrap();
//! assert_eq!(
//!     json.to_string(),
//!     r#"{"apps":{"pyroscope":{"server_address":"http://localhost:4040","upload_rate":"10s"}}}"#
//! );
//! ```

#![warn(missing_docs)]
// The compiler's docs link to the runtime's modules, which a build without the `runtime`
// feature does not have.
#![cfg_attr(not(feature = "runtime"), allow(rustdoc::broken_intra_doc_links))]

// pest is built without `std` (its per-rule stack probe costs a quarter of lexing time and
// our grammar does not recurse); its derive then refers to `alloc`.
extern crate alloc;

pub mod adapt;
#[cfg(feature = "runtime")]
pub mod allocator;
pub mod apps;
#[cfg(feature = "runtime")]
pub mod collect;
pub mod config;
pub mod diagnostic;
mod excerpt;
pub mod fields;
pub mod load;
#[cfg(feature = "runtime")]
pub mod profile;
mod redact;
#[cfg(feature = "runtime")]
pub mod runtime;
pub mod source;
mod swar;
#[cfg(feature = "runtime")]
pub mod sync;
pub mod syntax;
#[cfg(feature = "runtime")]
pub mod unwind;

use std::path::{Path, PathBuf};

use crate::adapt::locate::{FieldsAhead, SourceMap};
use crate::apps::profiling::ProfilersAhead;

pub use adapt::Adapted;
pub use config::Config;
pub use diagnostic::{Diagnostic, Error};
pub use load::{ConfigFormat, load_config};
pub use source::{Location, MAX_NESTING, SourceFile};

/// Adapts a Profilingfile given as text to the canonical JSON `{"apps": …}`.
///
/// `{$VAR}` references are taken from the process environment; relative imports are
/// resolved against the current directory. Warnings are dropped: use [`adapt_source`] to
/// get them.
///
/// ```
/// let json = caddyprof::adapt("profiling {\n\tprofile_types cpu heap\n\tprofefe\n}\n").unwrap();
/// assert_eq!(json["apps"]["profiling"]["profilers"][0]["profiler"], "profefe");
///
/// let error = caddyprof::adapt("profiling {\n\tprofile_types cpux\n}\n").unwrap_err();
/// assert_eq!(error.to_string(), "Profilingfile:2:16: unknown profile type 'cpux'");
/// ```
pub fn adapt(text: &str) -> Result<serde_json::Value, Error> {
    let file = SourceFile::new("Profilingfile", text);
    adapt_source(&file, &AdaptOptions::default()).map(|adapted| adapted.json)
}

/// Reads and adapts the Profilingfile at `path`; its imports are resolved relative to it.
///
/// ```
/// let adapted = caddyprof::adapt_file(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/team.Profilingfile")).unwrap();
/// assert!(adapted.json["apps"]["profiling"]["profilers"].is_array());
/// for warning in &adapted.warnings {
///     eprintln!("{warning}");
/// }
/// ```
pub fn adapt_file(path: impl AsRef<Path>) -> Result<Adapted, Error> {
    let path = path.as_ref();
    let file = read_source(path)?;
    let options = AdaptOptions {
        base_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        ..AdaptOptions::default()
    };
    adapt_source(&file, &options)
}

/// A source of `{$VAR}` values: a name to its value, `None` when unset.
pub type EnvFn = dyn Fn(&str) -> Option<String>;

/// How to adapt.
///
/// ```
/// use caddyprof::{AdaptOptions, SourceFile};
///
/// let options = AdaptOptions {
///     env: Box::new(|name| (name == "RATE").then(|| "250".to_owned())),
///     ..AdaptOptions::default()
/// };
/// let file = SourceFile::new("Profilingfile", "profiling {\n\tcpu_profile_rate {$RATE}\n}\n");
/// let adapted = caddyprof::adapt_source(&file, &options).unwrap();
/// assert_eq!(adapted.json["apps"]["profiling"]["cpu_profile_rate"], 250);
/// ```
pub struct AdaptOptions {
    /// Where `{$VAR}` values come from (the process environment by default).
    pub env: Box<EnvFn>,
    /// The folder relative imports of the root file are resolved against (the current
    /// directory by default).
    pub base_dir: PathBuf,
}

impl Default for AdaptOptions {
    fn default() -> Self {
        AdaptOptions {
            env: Box::new(syntax::env::process_env),
            base_dir: PathBuf::new(),
        }
    }
}

/// Adapts `file`: parse with imports and environment substitution, then map to JSON.
///
/// ```
/// use caddyprof::{AdaptOptions, SourceFile};
///
/// let file = SourceFile::new("Profilingfile", "profiling {\n\tcpu_profile_rate 5000\n}\n");
/// let adapted = caddyprof::adapt_source(&file, &AdaptOptions::default()).unwrap();
/// assert_eq!(adapted.warnings[0].message(), "cpu_profile_rate: 5000 Hz is an unusually high CPU sampling rate");
/// ```
pub fn adapt_source(file: &SourceFile, options: &AdaptOptions) -> Result<Adapted, Error> {
    adapt_keeping_document(file, options).map(|(adapted, _)| adapted)
}

/// Adapts `file` to JSON text, compact or tab-indented (`pretty`): what `caddyprof adapt`
/// prints. The text is the same as [`adapt_source`]'s value printed, made without that
/// value, which is most of the work for a large file.
///
/// ```
/// use caddyprof::{AdaptOptions, SourceFile};
///
/// let file = SourceFile::new("Profilingfile", "profiling {\n\tcpu_profile_rate 5000\n}\n");
/// let adapted = caddyprof::adapt_source_to_text(&file, &AdaptOptions::default(), false).unwrap();
/// assert_eq!(adapted.json, r#"{"apps":{"profiling":{"cpu_profile_rate":5000}}}"#);
/// assert_eq!(adapted.warnings[0].message(), "cpu_profile_rate: 5000 Hz is an unusually high CPU sampling rate");
/// ```
pub fn adapt_source_to_text(
    file: &SourceFile,
    options: &AdaptOptions,
    pretty: bool,
) -> Result<Adapted<String>, Error> {
    adapt_to_text(file, options, pretty, None).map(|(adapted, _)| adapted)
}

/// [`adapt_source_to_text`], pretty, also returning where each part of the config was
/// written.
pub(crate) fn adapt_to_text_mapped(
    file: &SourceFile,
    options: &AdaptOptions,
) -> Result<(Adapted<String>, SourceMap), Error> {
    let mut fields = FieldsAhead::default();
    let (adapted, document) = adapt_to_text(file, options, true, Some(&mut fields))?;
    Ok((adapted, SourceMap::of_read_ahead(&document, fields)))
}

/// [`adapt_source_to_text`], also returning the document adapted (what is left of it) and
/// keeping the fields of the profilers taken from it in `fields`, for its map.
fn adapt_to_text(
    file: &SourceFile,
    options: &AdaptOptions,
    pretty: bool,
    mut fields: Option<&mut FieldsAhead>,
) -> Result<(Adapted<String>, syntax::Document), Error> {
    // The JSON is rarely more than 1.5 times as long as the Profilingfile, or twice when
    // pretty; room for it up front saves copying it as it grows (and room never written to
    // takes no memory).
    let size = file.text().len();
    let json_size = size.saturating_mul(if pretty { 4 } else { 3 }) / 2;
    // Each profiler is read and written as soon as it is parsed (see `ProfilersAhead`).
    let mut ahead = ProfilersAhead::new(pretty, json_size);
    let parsed = parse_to_adapt(
        file,
        options,
        Some(&mut |keys, place, directive| match fields.as_deref_mut() {
            Some(fields) => fields.around(keys, place, directive, |directive| {
                ahead.read(keys, place, directive);
            }),
            None => ahead.read(keys, place, directive),
        }),
    )?;
    let out = String::with_capacity(json_size);
    let adapted = adapt::adapt_document_into(&parsed.document, Some(&mut ahead), pretty, out)?;
    Ok((
        with_parse_warnings(parsed.warnings, adapted),
        parsed.document,
    ))
}

/// [`adapt_source`], also returning the document adapted (for its
/// [`adapt::locate::SourceMap`]).
pub(crate) fn adapt_keeping_document(
    file: &SourceFile,
    options: &AdaptOptions,
) -> Result<(Adapted, syntax::Document), Error> {
    let parsed = parse_to_adapt(file, options, None)?;
    let adapted = adapt::adapt_document(&parsed.document)?;
    Ok((
        with_parse_warnings(parsed.warnings, adapted),
        parsed.document,
    ))
}

/// Parses `file` with its imports expanded and `{$VAR}` substituted, as adapting does.
fn parse_to_adapt(
    file: &SourceFile,
    options: &AdaptOptions,
    hook: Option<syntax::parser::DirectiveHook>,
) -> Result<syntax::Parsed, Error> {
    let base_dir = if options.base_dir.as_os_str().is_empty() {
        std::env::current_dir().unwrap_or_default()
    } else {
        options.base_dir.clone()
    };
    let parse_options = syntax::ParseOptions {
        expand: true,
        env: Some(&*options.env),
        base_dir,
    };
    syntax::parser::parse_with_hook(file, &parse_options, hook)
}

/// `adapted` with the parser's warnings first.
fn with_parse_warnings<J>(mut warnings: Vec<Diagnostic>, mut adapted: Adapted<J>) -> Adapted<J> {
    warnings.append(&mut adapted.warnings);
    adapted.warnings = warnings;
    adapted
}

/// The largest config file caddyprof reads: 64 MiB. A Profilingfile or JSON config is rarely
/// more than a few hundred kilobytes; a larger file is refused with a clear error rather than
/// taking seconds and gigabytes to turn out to be something else.
pub const MAX_SOURCE_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a file as a [`SourceFile`] (invalid UTF-8 becomes U+FFFD), or a diagnostic saying
/// why it cannot be read. A file larger than [`MAX_SOURCE_BYTES`] is refused.
///
/// ```
/// let error = caddyprof::read_source(std::path::Path::new("no/such/Profilingfile")).unwrap_err();
/// assert!(error.to_string().starts_with("cannot read no/such/Profilingfile"));
/// ```
pub fn read_source(path: &Path) -> Result<SourceFile, Error> {
    let name = path.display().to_string();
    let cannot_read = |e: std::io::Error| {
        Diagnostic::error(format!("cannot read {name}: {e}"))
            .help("check the path and its permissions")
    };
    let file = std::fs::File::open(path).map_err(cannot_read)?;
    // The size the file system gives, when it gives one, refuses a large file before reading
    // it; `read_capped` stops at the limit anyway (a pipe, a file still growing).
    let size = file.metadata().map_or(0, |metadata| metadata.len());
    if size > MAX_SOURCE_BYTES {
        return Err(too_large(&name).into());
    }
    let bytes = read_capped(&name, file, size, cannot_read)?;
    Ok(SourceFile::new(name, text_of(bytes)))
}

/// Reads standard input as a [`SourceFile`] named `<stdin>`, as [`read_source`] reads a file
/// (invalid UTF-8 becomes U+FFFD, which the lexer refuses with its byte offset); at most
/// [`MAX_SOURCE_BYTES`] long.
pub fn read_stdin() -> Result<SourceFile, Error> {
    let name = "<stdin>";
    let cannot_read = |e: std::io::Error| Diagnostic::error(format!("cannot read stdin: {e}"));
    let bytes = read_capped(name, std::io::stdin().lock(), 0, cannot_read)?;
    Ok(SourceFile::new(name, text_of(bytes)))
}

/// `bytes` as text: taken as it is when valid UTF-8 (the usual case, without a copy), else
/// with each invalid sequence replaced by U+FFFD.
fn text_of(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned())
}

/// All of `reader` (about `size` bytes, or more), named `name`: an error if it is longer
/// than [`MAX_SOURCE_BYTES`], or `cannot_read`'s if reading fails.
fn read_capped(
    name: &str,
    reader: impl std::io::Read,
    size: u64,
    cannot_read: impl Fn(std::io::Error) -> Diagnostic,
) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    reader
        .take(MAX_SOURCE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot_read)?;
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Err(too_large(name).into());
    }
    Ok(bytes)
}

/// The error for a config file larger than [`MAX_SOURCE_BYTES`].
fn too_large(name: &str) -> Diagnostic {
    Diagnostic::error(format!(
        "{name} is too large: caddyprof reads config files of up to 64 MiB"
    ))
    .help("check that this is the config file you meant")
}

/// The README's Rust examples, compiled and run as doctests so that they stay true.
#[cfg(all(doctest, feature = "runtime"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;
