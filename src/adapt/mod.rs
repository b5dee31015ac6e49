//! Adapt: turns the syntax tree of a Profilingfile into the canonical JSON `apps` structure
//! (`docs/profilingfile.md` §12).
//!
//! This module holds the driver (top-level app blocks) and [`locate`], the map from JSON
//! paths back to the Profilingfile. The shared way of reading a directive's arguments is
//! [`crate::fields::directive`], and the JSON tree they build, which becomes text or a
//! `serde_json::Value` at the end, is [`crate::fields::json_writer`]. What each app's block
//! may contain is declared by the app itself, in [`crate::apps`].

pub mod locate;

use serde_json::Value;

use crate::fields::directive as reader;
use crate::fields::json_writer::Json;

use crate::apps;
use crate::apps::profiling::ProfilersAhead;
use crate::diagnostic::{Diagnostic, Error, did_you_mean};
use crate::syntax::parser::error_at;
use crate::syntax::{Block, Document, Token};

/// The JSON made from a Profilingfile, and the warnings found on the way.
///
/// The JSON is a `serde_json::Value` by default, or text (`Adapted<String>`, from
/// [`adapt_document_to_text`] and [`crate::adapt_source_to_text`]).
#[derive(Debug)]
pub struct Adapted<J = Value> {
    /// `{"apps": {…}}`.
    pub json: J,
    /// Warnings: legal but suspicious input. They do not make adapting fail.
    pub warnings: Vec<Diagnostic>,
}

/// Adapts a parsed and expanded document.
pub fn adapt_document(document: &Document) -> Result<Adapted, Error> {
    let mut warnings = Vec::new();
    let json = build(document, None, &mut warnings)?.to_value();
    Ok(Adapted { json, warnings })
}

/// Adapts a parsed and expanded document to JSON text, compact or tab-indented (`pretty`):
/// the text [`adapt_document`]'s value prints as, made without building that value.
pub fn adapt_document_to_text(document: &Document, pretty: bool) -> Result<Adapted<String>, Error> {
    adapt_document_into(document, None, pretty, String::new())
}

/// [`adapt_document_to_text`] for a document whose profilers were read `ahead` while it was
/// parsed, writing into `out` (which the caller may have sized).
pub(crate) fn adapt_document_into(
    document: &Document,
    ahead: Option<&mut ProfilersAhead>,
    pretty: bool,
    mut out: String,
) -> Result<Adapted<String>, Error> {
    let mut warnings = Vec::new();
    build(document, ahead, &mut warnings)?.write_text(pretty, &mut out);
    Ok(Adapted {
        json: out,
        warnings,
    })
}

/// The JSON of a document: `{"apps": {…}}`.
fn build<'a>(
    document: &'a Document,
    mut ahead: Option<&'a mut ProfilersAhead>,
    warnings: &mut Vec<Diagnostic>,
) -> Result<Json<'a>, Error> {
    let mut apps = Vec::with_capacity(document.blocks.len());
    let mut seen: Vec<&Token> = Vec::new();
    for (index, block) in document.blocks.iter().enumerate() {
        let key = app_key(block)?;
        if let Some(first) = seen.iter().find(|t| t.text == key.text) {
            return Err(error_at(
                key,
                format!("the {} app is defined twice", key.text),
                "second definition",
            )
            .label(&first.location, "first defined here")
            .help("merge the two blocks into one: each app may appear once")
            .into());
        }
        seen.push(key);
        let address = block.keys.get(1);
        let value = match key.text.as_str() {
            "profiling" => {
                if let Some(extra) = address {
                    return Err(extra_key(extra, "the profiling app takes no address").into());
                }
                // Only the first profiling block gets here (a second is an error above).
                let ahead = ahead.take().map(|ahead| ahead.for_block(index));
                apps::profiling::adapt_with(&block.body.directives, warnings, ahead)?
            }
            "pyroscope" => reader::read_profiler(
                &apps::pyroscope::SPEC,
                address,
                &block.body.directives,
                false,
                apps::NAMES,
                warnings,
            )?,
            "profefe" => reader::read_profiler(
                &apps::profefe::SPEC,
                address,
                &block.body.directives,
                false,
                apps::NAMES,
                warnings,
            )?,
            _ => unreachable!("app_key checked the name"),
        };
        apps.push((key.text.as_str(), value));
    }
    Ok(Json::Object(vec![("apps", Json::Object(apps))]))
}

/// The token naming a block's app, checked.
fn app_key(block: &Block) -> Result<&Token, Error> {
    let Some(key) = block.key() else {
        let at = block
            .body
            .open
            .as_ref()
            .or(block.body.directives.first().map(|d| &d.name))
            .expect("a block has keys or contents");
        return Err(error_at(at, "a block without a name is reserved", "this block has no app name")
            .help("name the app: `profiling {`, `pyroscope {` or `profefe {` (Caddy's global options block has no meaning here)")
            .into());
    };
    if !apps::NAMES.contains(&key.text.as_str()) {
        let mut help = did_you_mean(&key.text, apps::NAMES);
        if key.text.starts_with('(') {
            help = "a snippet definition `(name)` must be the only key of its block".to_owned();
        }
        return Err(
            error_at(key, format!("unknown app '{}'", key.text), "not an app")
                .help(help)
                .into(),
        );
    }
    if let Some(extra) = block.keys.get(2) {
        return Err(extra_key(extra, "an app block takes its name and at most one address").into());
    }
    Ok(key)
}

fn extra_key(token: &Token, message: &str) -> Diagnostic {
    error_at(token, message, "unexpected")
        .help("write one app per block, e.g. `pyroscope http://localhost:4040 {`")
}
