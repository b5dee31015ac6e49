//! The generic field resolver: what every sink's resolution shares. It resolves a field of
//! an app's table (its `{env.NAME}` placeholders, its default, its kind's check and bound,
//! with the table's one message), and keeps what resolution finds: the refusals (errors, or
//! warnings for [`Plan::check`](super::Plan::check)), the warnings, and the warnings said
//! once for every sink they concern.

use std::time::Duration;

use url::Url;

use crate::EnvFn;
use crate::diagnostic::Diagnostic;
use crate::fields::duration::DURATION_HELP;
use crate::fields::{self, FieldSpec, URL_HELP};

/// Where resolution takes what is not in the configuration.
pub struct PlanOptions {
    /// Where `{env.NAME}` values come from: a name to its value, `None` when unset (the
    /// process environment by default).
    pub env: Box<EnvFn>,
    /// The default application name and profefe service: the executable's file name without
    /// extension by default (`caddyprof` if it cannot be found).
    pub executable_name: String,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            env: Box::new(crate::syntax::env::process_env),
            executable_name: executable_name(),
        }
    }
}

/// The running executable's file name without extension, or `caddyprof`.
pub fn executable_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|path| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "caddyprof".to_owned())
}

/// How the resolver reports what stops the config from running.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusals {
    /// As errors ([`Plan::resolve`](super::Plan::resolve)).
    Errors,
    /// As warnings that say so ([`Plan::check`](super::Plan::check)).
    Warnings,
}

/// A warning said once for all the sinks it concerns, listing their paths.
pub(crate) struct Summary {
    /// What is wrong (the paths follow in parentheses).
    pub message: &'static str,
    /// How to fix it.
    pub help: &'static str,
}

/// The state of one resolution: see the [module docs](self).
pub(crate) struct Resolver<'a> {
    options: &'a PlanOptions,
    refusals: Refusals,
    /// How many problems found stop the config from running.
    refused: usize,
    pub(super) errors: Vec<Diagnostic>,
    pub(super) warnings: Vec<Diagnostic>,
    /// The summaries, in the order first met, and the paths of the sinks each concerns.
    summaries: Vec<(&'static Summary, Vec<String>)>,
}

impl<'a> Resolver<'a> {
    pub(super) fn new(options: &'a PlanOptions, refusals: Refusals) -> Self {
        Resolver {
            options,
            refusals,
            refused: 0,
            errors: Vec::new(),
            warnings: Vec::new(),
            summaries: Vec::new(),
        }
    }

    /// The default application or service name: the executable's.
    pub(crate) fn executable_name(&self) -> &str {
        &self.options.executable_name
    }

    /// How many problems found so far stop the config from running: a sink resolution
    /// compares it before and after to give no settings when it refused any.
    pub(crate) fn refused(&self) -> usize {
        self.refused
    }

    /// Records a warning.
    pub(crate) fn warn(&mut self, warning: Diagnostic) {
        self.warnings.push(warning);
    }

    /// Records `summary` for the sink at `path`: said once, at the end, for all of them.
    pub(crate) fn summarize(&mut self, summary: &'static Summary, path: &str) {
        match self
            .summaries
            .iter_mut()
            .find(|(said, _)| std::ptr::eq(*said, summary))
        {
            Some((_, paths)) => paths.push(path.to_owned()),
            None => self.summaries.push((summary, vec![path.to_owned()])),
        }
    }

    /// Says the summaries, each once with every path it concerns.
    pub(super) fn summary_warnings(&mut self) {
        for (summary, paths) in std::mem::take(&mut self.summaries) {
            self.warnings.push(
                Diagnostic::warning(format!("{} (in {})", summary.message, paths.join(", ")))
                    .help(summary.help),
            );
        }
    }

    /// Records a problem that stops the config from running.
    pub(crate) fn refuse(&mut self, message: String, help: &str) {
        self.refused += 1;
        match self.refusals {
            Refusals::Errors => self.errors.push(Diagnostic::error(message).help(help)),
            Refusals::Warnings => self
                .warnings
                .push(Diagnostic::warning(message).help(format!(
                    "{help}; until then, `caddyprof run` fails with this error"
                ))),
        }
    }

    /// A string field with its placeholders resolved; `None` when unset or on error.
    pub(crate) fn string(
        &mut self,
        value: &Option<String>,
        path: &str,
        field: &FieldSpec,
    ) -> Option<String> {
        let resolved = self.placeholders(value.as_deref()?, path, field)?;
        if resolved.is_empty() {
            self.refuse(
                format!(
                    "{path}.{}: empty after replacing its placeholders",
                    field.name
                ),
                "set the environment variable to a value, or leave the field out to use the \
                 default",
            );
            return None;
        }
        Some(resolved)
    }

    /// A URL field, resolved and checked; the field's default when unset; `None` on error.
    pub(crate) fn url(
        &mut self,
        value: &Option<String>,
        path: &str,
        field: &FieldSpec,
    ) -> Option<Url> {
        let text = match value {
            Some(_) => self.string(value, path, field)?,
            None => field.default?.to_owned(),
        };
        let checked = if fields::has_placeholder(&text) {
            // What is left is not an `{env.…}` placeholder: it cannot be a host.
            Err(format!(
                "invalid URL '{}': unresolved placeholder",
                crate::redact::url(&text)
            ))
        } else {
            fields::validate_url(&text)
        };
        match checked.and_then(|()| Url::parse(&text).map_err(|e| e.to_string())) {
            Ok(url) => Some(url),
            Err(reason) => {
                self.refuse(format!("{path}.{}: {reason}", field.name), URL_HELP);
                None
            }
        }
    }

    /// A duration field, resolved and checked against its bound (with the table's one
    /// message): the field's default when unset (zero when it has none), `None` on error.
    pub(crate) fn duration(
        &mut self,
        value: &Option<fields::Duration>,
        path: &str,
        field: &FieldSpec,
    ) -> Option<Duration> {
        let field_path = || format!("{path}.{}", field.name);
        let resolved = match value {
            None => return Some(field.default_duration().unwrap_or_default()),
            Some(fields::Duration::Placeholder(text)) => {
                let text = self.placeholders(text, path, field)?;
                match fields::Duration::parse(&text) {
                    Ok(fields::Duration::Placeholder(_)) => {
                        self.refuse(
                            format!("{}: invalid duration '{text}'", field_path()),
                            DURATION_HELP,
                        );
                        return None;
                    }
                    Ok(duration) => duration,
                    Err(reason) => {
                        self.refuse(format!("{}: {reason}", field_path()), DURATION_HELP);
                        return None;
                    }
                }
            }
            Some(duration) => duration.clone(),
        };
        if let Some(refusal) = field.out_of_bounds(&resolved) {
            self.refuse(format!("{}: {}", field_path(), refusal.message), field.help);
            return None;
        }
        Some(resolved.to_std().unwrap_or_default())
    }

    /// Replaces each `{env.NAME}` in `text`, the value of `field` in the object at `path`.
    /// Errors name the variable and the path, never the value. Other `{…}` is kept as
    /// written, with a warning unless the field is secret.
    fn placeholders(&mut self, text: &str, path: &str, field: &FieldSpec) -> Option<String> {
        if !text.contains('{') {
            return Some(text.to_owned());
        }
        let field_path = format!("{path}.{}", field.name);
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut ok = true;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let name_len = after
                .find(|c: char| c == '{' || c == '}' || c.is_whitespace())
                .unwrap_or(after.len());
            if name_len == 0 || !after[name_len..].starts_with('}') {
                out.push('{');
                rest = after;
                continue;
            }
            let inner = &after[..name_len];
            rest = &after[name_len + 1..];
            match inner.strip_prefix("env.") {
                Some("") => {
                    ok = false;
                    self.refuse(
                        format!("{field_path}: {{env.}} names no environment variable"),
                        "write {env.NAME}",
                    );
                }
                Some(name) => match (self.options.env)(name) {
                    Some(value) => out.push_str(&value),
                    None => {
                        ok = false;
                        self.refuse(
                            format!("{field_path}: environment variable {name} is not set"),
                            &format!("set {name} in the environment of the process"),
                        );
                    }
                },
                None => {
                    if !field.secret {
                        self.warnings.push(
                            Diagnostic::warning(format!(
                                "{field_path}: {{{inner}}} is not a placeholder caddyprof knows; \
                                 kept as written"
                            ))
                            .help("only {env.NAME} placeholders are replaced"),
                        );
                    }
                    out.push('{');
                    out.push_str(inner);
                    out.push('}');
                }
            }
        }
        out.push_str(rest);
        ok.then_some(out)
    }
}
