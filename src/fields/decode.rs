//! Turning a spanned JSON tree into typed values, collecting every problem with its exact
//! location. Used by [`crate::config`] and each app's config section.

use std::ops::Range;

use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::fields::duration::{DURATION_HELP, Duration};
use crate::fields::json_reader::{Member, Node, NodeValue};
use crate::fields::profile_type::ProfileType;
use crate::fields::{URL_HELP, validate_url};
use crate::source::{Location, SourceFile};

/// The decoding state: the file, and the diagnostics found so far.
pub(crate) struct Decoder {
    file: SourceFile,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

/// `parent.key`, or `key` at the top.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent.key`, written into `buffer` (one allocation for all the fields of an object).
pub(crate) fn join_into<'b>(buffer: &'b mut String, parent: &str, key: &str) -> &'b str {
    buffer.clear();
    if !parent.is_empty() {
        buffer.push_str(parent);
        buffer.push('.');
    }
    buffer.push_str(key);
    buffer
}

impl Decoder {
    pub fn new(file: SourceFile) -> Self {
        Decoder {
            file,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The location of a span.
    pub fn at(&self, span: &Range<usize>) -> Location {
        Location {
            file: self.file.clone(),
            start: span.start,
            end: span.end,
        }
    }

    /// Records an error at `span`.
    pub fn error(&mut self, span: &Range<usize>, message: String, label: &str, help: &str) {
        let d = Diagnostic::error(message)
            .label(&self.at(span), label)
            .help(help);
        self.errors.push(d);
    }

    /// Records a warning at `span`.
    pub fn warn(&mut self, span: &Range<usize>, message: String, label: &str, help: &str) {
        let d = Diagnostic::warning(message)
            .label(&self.at(span), label)
            .help(help);
        self.warnings.push(d);
    }

    fn wrong_type(&mut self, node: &Node, path: &str, expected: &str, help: &str) {
        self.error(
            &node.span,
            format!(
                "{path}: expected {expected}, found {}",
                node.kind.type_name()
            ),
            &format!("expected {expected}"),
            help,
        );
    }

    /// The members of an object, checking that it is one, that no key is repeated and that
    /// every key is in `fields`. Returns the valid members (first of each key) in source order.
    pub fn object<'n, 't>(
        &mut self,
        node: &'n Node<'t>,
        path: &str,
        fields: &[&str],
    ) -> Vec<&'n Member<'t>> {
        let NodeValue::Object(members) = &node.kind else {
            self.wrong_type(node, path, "an object", "write the fields inside { … }");
            return Vec::new();
        };
        let mut valid: Vec<&Member> = Vec::new();
        for member in members {
            if let Some(first) = valid.iter().find(|m| m.key == member.key) {
                let key_path = join(path, &member.key);
                let d = Diagnostic::error(format!("{key_path} is given twice"))
                    .label(&self.at(&member.key_span), "given again here")
                    .label(&self.at(&first.key_span), "first given here")
                    .help("JSON keeps only one of them: remove or merge the other");
                self.errors.push(d);
            } else if !fields.contains(&member.key.as_ref()) {
                let where_ = if path.is_empty() {
                    "the top level"
                } else {
                    path
                };
                self.error(
                    &member.key_span,
                    format!("{where_}: unknown field '{}'", member.key),
                    "unknown field",
                    &did_you_mean(&member.key, fields),
                );
            } else {
                valid.push(member);
            }
        }
        valid
    }

    /// A non-empty string.
    pub fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.kind {
            NodeValue::String(s) if s.is_empty() => {
                self.error(
                    &node.span,
                    format!("{path}: empty string"),
                    "empty",
                    "give a value, or leave the field out to use the default",
                );
                None
            }
            NodeValue::String(s) => Some(s.to_string()),
            _ => {
                self.wrong_type(node, path, "a string", "put the value in double quotes");
                None
            }
        }
    }

    /// A boolean.
    pub fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.kind {
            NodeValue::Bool(b) => Some(*b),
            _ => {
                self.wrong_type(node, path, "true or false", "write true or false, unquoted");
                None
            }
        }
    }

    /// A rate or fraction: an integer ≥ 0.
    pub fn rate(&mut self, node: &Node, path: &str) -> Option<u64> {
        let help = "write a whole number, 0 or more, without quotes";
        match &node.kind {
            NodeValue::Number(n) => match super::parse_rate(&n.to_string()) {
                Ok(rate) => Some(rate),
                Err(reason) => {
                    let label = if reason.contains("negative") {
                        "negative"
                    } else {
                        "not a whole number"
                    };
                    self.error(&node.span, format!("{path}: {reason}"), label, help);
                    None
                }
            },
            _ => {
                self.wrong_type(node, path, "an integer", help);
                None
            }
        }
    }

    /// A duration: a string in Go/Caddy syntax or an integer of nanoseconds.
    pub fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        match &node.kind {
            NodeValue::String(s) => match Duration::parse(s) {
                Ok(d) => Some(d),
                Err(reason) => {
                    self.error(
                        &node.span,
                        format!("{path}: {reason}"),
                        "invalid duration",
                        DURATION_HELP,
                    );
                    None
                }
            },
            NodeValue::Number(n) => match n.as_i64() {
                Some(nanos) => Some(Duration::Nanos(nanos)),
                None => {
                    self.error(
                        &node.span,
                        format!("{path}: a number duration must be a whole number of nanoseconds"),
                        "not an integer",
                        DURATION_HELP,
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(node, path, "a duration", DURATION_HELP);
                None
            }
        }
    }

    /// An http(s) URL, or a string with a placeholder.
    pub fn url(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = self.string(node, path)?;
        match validate_url(&text) {
            Ok(()) => Some(text),
            Err(reason) => {
                self.error(
                    &node.span,
                    format!("{path}: {reason}"),
                    "invalid URL",
                    URL_HELP,
                );
                None
            }
        }
    }

    /// A list of profile types.
    pub fn profile_types(&mut self, node: &Node, path: &str) -> Option<Vec<ProfileType>> {
        let NodeValue::Array(items) = &node.kind else {
            let help = format!(
                "write a list such as [\"cpu\", \"heap\"]; types: {}",
                ProfileType::NAMES.join(", ")
            );
            self.wrong_type(node, path, "an array of profile types", &help);
            return None;
        };
        let mut types = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let NodeValue::String(name) = &item.kind else {
                self.wrong_type(
                    item,
                    &item_path,
                    "a profile type name",
                    "put the name in double quotes",
                );
                ok = false;
                continue;
            };
            match name.parse::<ProfileType>() {
                Ok(t) if types.contains(&t) => self.warn(
                    &item.span,
                    format!("{item_path}: '{name}' is listed twice"),
                    "listed again",
                    "remove the repeated name",
                ),
                Ok(t) => types.push(t),
                Err(_) => {
                    self.error(
                        &item.span,
                        format!("{item_path}: unknown profile type '{name}'"),
                        "unknown profile type",
                        &ProfileType::help_for(name),
                    );
                    ok = false;
                }
            }
        }
        if ok && items.is_empty() {
            self.warn(
                &node.span,
                format!("{path}: empty list: the profiler's default profile types are used"),
                "empty",
                "list the types you want, or leave the field out",
            );
        }
        ok.then_some(types)
    }
}
