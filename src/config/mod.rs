//! The typed, validated configuration, and its JSON loader.
//!
//! The JSON is `{"apps": {"profiling": …, "pyroscope": …, "profefe": …}}` (see the contract,
//! docs/profilingfile.md §11). Decoding is strict: every unknown field, duplicated key or bad value
//! is an error pointing at the exact token, with the JSON path and a fix. Loading collects every
//! problem before failing, and produces nothing when anything is wrong.
//!
//! This is the root of the configuration: [`Config`] names the apps of [`crate::apps`], each of
//! which decodes its own fields with the shared helpers of [`crate::fields`]. Those helpers
//! (the validators [`validate_url`], [`parse_rate`], [`Duration::parse`], `ProfileType`'s
//! `FromStr`) are re-exported here under their former paths.

#![warn(missing_docs)]

use serde_json::{Map, Value};

use crate::adapt::locate::SourceMap;
use crate::apps::{self, ProfefeApp, ProfilingApp, PyroscopeApp};
use crate::apps::{profefe, profiling, pyroscope};
use crate::diagnostic::{Diagnostic, Error, suggest};
use crate::fields::decode::Decoder;
use crate::fields::json_reader::{self, NodeValue};
use crate::source::SourceFile;

pub use crate::fields::{
    Duration, Parameters, ProfileType, URL_HELP, duration, has_placeholder, parameters, parse_rate,
    profile_type, validate_url,
};

/// A whole caddyprof configuration: the three apps, each optional.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// The `profiling` host app and its child profilers.
    pub profiling: Option<ProfilingApp>,
    /// The standalone `pyroscope` app.
    pub pyroscope: Option<PyroscopeApp>,
    /// The standalone `profefe` app.
    pub profefe: Option<ProfefeApp>,
}

impl Config {
    /// What keeps Caddy itself from loading this configuration: a note per caddyprof
    /// extension it uses (the `file` profiler), each naming its JSON path. `caddyprof
    /// validate` says them; running the configuration does not need to.
    pub fn caddy_notes(&self) -> Vec<Diagnostic> {
        let Some(profiling) = &self.profiling else {
            return Vec::new();
        };
        profiling
            .profilers
            .iter()
            .enumerate()
            .filter(|(_, child)| child.is_extension())
            .map(|(i, child)| {
                Diagnostic::advice(format!(
                    "apps.profiling.profilers[{i}]: the '{}' profiler is a caddyprof extension: \
                     Caddy cannot load this configuration",
                    child.name()
                ))
            })
            .collect()
    }
}

/// A successfully loaded configuration with the warnings and notes found on the way.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Warnings and notes (never errors), in the order found.
    pub warnings: Vec<Diagnostic>,
    /// For a config adapted from a Profilingfile, where each part of it was written, so that
    /// what is found later under a JSON path (when it is resolved to run) can point at the
    /// Profilingfile; empty for JSON, whose diagnostics point into the JSON itself.
    pub sources: SourceMap,
}

impl Config {
    /// Decodes JSON text (named `<json>` in messages), dropping warnings.
    ///
    /// ```
    /// let config = caddyprof::Config::from_json(r#"{"apps": {"profefe": {"service": "api"}}}"#)?;
    /// assert_eq!(config.profefe.unwrap().service.as_deref(), Some("api"));
    /// # Ok::<(), caddyprof::Error>(())
    /// ```
    pub fn from_json(text: &str) -> Result<Config, Error> {
        Self::load_json(&SourceFile::new("<json>", text)).map(|loaded| loaded.config)
    }

    /// Decodes the JSON in `file`, strictly. On success, also returns the warnings and notes.
    pub fn load_json(file: &SourceFile) -> Result<Loaded, Error> {
        Self::load_parsed(file, json_reader::parse)
    }

    /// [`load_json`](Self::load_json) for JSON this crate wrote (the adapter's), valid by
    /// construction: its syntax is not checked before it is read.
    pub(crate) fn load_written_json(file: &SourceFile) -> Result<Loaded, Error> {
        Self::load_parsed(file, json_reader::parse_written)
    }

    fn load_parsed(
        file: &SourceFile,
        parse: fn(&str) -> Result<json_reader::Node<'_>, json_reader::SyntaxError>,
    ) -> Result<Loaded, Error> {
        let mut d = Decoder::new(file.clone());
        let root = match parse(file.text()) {
            Ok(root) => root,
            Err(e) => {
                let end = file.text()[e.offset..]
                    .chars()
                    .next()
                    .map_or(e.offset, |c| e.offset + c.len_utf8());
                d.error(&(e.offset..end), e.message, &e.label, e.help);
                return Err(d.errors.into());
            }
        };
        let config = decode_root(&mut d, &root);
        if !d.errors.is_empty() {
            return Err(d.errors.into());
        }
        Ok(Loaded {
            config,
            warnings: d.warnings,
            sources: SourceMap::default(),
        })
    }

    /// The canonical JSON: `{"apps": {…}}` with only the fields that are set, in the
    /// contract's order, durations as written, and child profilers' `"profiler"` first.
    pub fn to_json(&self) -> Value {
        let mut apps = Map::new();
        if let Some(app) = &self.profiling {
            apps.insert("profiling".into(), app.to_json());
        }
        if let Some(app) = &self.pyroscope {
            apps.insert("pyroscope".into(), app.to_json());
        }
        if let Some(app) = &self.profefe {
            apps.insert("profefe".into(), app.to_json());
        }
        let mut root = Map::new();
        root.insert("apps".into(), Value::Object(apps));
        Value::Object(root)
    }

    /// Whether no app is configured.
    pub fn is_empty(&self) -> bool {
        self.profiling.is_none() && self.pyroscope.is_none() && self.profefe.is_none()
    }
}

fn decode_root(d: &mut Decoder, root: &json_reader::Node) -> Config {
    let mut config = Config::default();
    let NodeValue::Object(members) = &root.kind else {
        d.error(
            &root.span,
            format!(
                "the configuration must be a JSON object, found {}",
                root.kind.type_name()
            ),
            "expected {\"apps\": {…}}",
            "write {\"apps\": {\"profiling\": {…}}}",
        );
        return config;
    };
    // Keys other than `apps` belong to Caddy: note them once each, but still catch duplicates.
    let keys: Vec<&str> = members.iter().map(|m| m.key.as_ref()).collect();
    for member in d.object(root, "", &keys) {
        if member.key != "apps" {
            let d_ = Diagnostic::advice(format!(
                "top-level key '{}' is not used by caddyprof; ignored",
                member.key
            ))
            .label(&d.at(&member.key_span), "ignored");
            d.warnings.push(d_);
        }
    }
    let Some(apps) = members.iter().find(|m| m.key == "apps") else {
        d.error(
            &(root.span.start..root.span.start + 1),
            "the configuration has no \"apps\"".into(),
            "no \"apps\" in this object",
            "write {\"apps\": {\"profiling\": {…}}}",
        );
        return config;
    };
    let NodeValue::Object(app_members) = &apps.value.kind else {
        d.object(&apps.value, "apps", apps::NAMES);
        return config;
    };
    let keys: Vec<&str> = app_members.iter().map(|m| m.key.as_ref()).collect();
    for member in d.object(&apps.value, "apps", &keys) {
        let path = format!("apps.{}", member.key);
        match member.key.as_ref() {
            "profiling" => config.profiling = Some(profiling::decode(d, &member.value, &path)),
            "pyroscope" => config.pyroscope = Some(pyroscope::decode(d, &member.value, &path)),
            "profefe" => config.profefe = Some(profefe::decode(d, &member.value, &path)),
            other => {
                let at = d.at(&member.key_span);
                let note = match suggest(other, apps::NAMES.iter().copied()) {
                    Some(best) => Diagnostic::warning(format!(
                        "app '{other}' is not used by caddyprof; ignored"
                    ))
                    .label(&at, "ignored")
                    .help(format!("did you mean '{best}'?")),
                    None => Diagnostic::advice(format!(
                        "app '{other}' is not used by caddyprof; ignored"
                    ))
                    .label(&at, "ignored"),
                };
                d.warnings.push(note);
            }
        }
    }
    if d.errors.is_empty() && config.is_empty() {
        d.warnings.push(
            Diagnostic::warning("no profiling app is configured: nothing will be profiled")
                .label(&d.at(&apps.key_span), "no profiling, pyroscope or profefe here")
                .help("add an app such as \"profiling\": {\"profilers\": [{\"profiler\": \"pyroscope\"}]}"),
        );
    }
    config
}
