//! The `profiling` app: the host of child profilers. It holds the shared parameters and
//! propagates them to each child (a child's own `parameters` take precedence).

use crate::diagnostic::Error;
use crate::fields::directive::{
    Fields, PARAMETERS, ProfilerSpec, read_parameter, read_profiler, unknown_directive,
};
use crate::fields::json_writer::Json;
use crate::syntax::parser::error_at;
use crate::syntax::{Directive, Token};
use serde_json::{Map, Value};
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::fmt::Write;
use std::ops::Range;

use crate::apps::child::{ChildKind, ChildProfiler};
use crate::apps::{file, profefe, pyroscope};
use crate::fields::Parameters;
use crate::fields::decode::{Decoder, join};
use crate::fields::json_reader::{Node, NodeValue};

use crate::diagnostic::{Diagnostic, did_you_mean};

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// The JSON field names of the profiling app, in canonical order: the parameters, flattened,
/// then `profilers`.
pub const FIELDS: &[&str] = &[
    "cpu_profile_rate",
    "block_profile_rate",
    "mutex_profile_fraction",
    "profile_types",
    "profilers",
];

/// The `profiling` app.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProfilingApp {
    /// The parameters shared by every child.
    pub parameters: Parameters,
    /// The child profilers, in order.
    pub profilers: Vec<ChildProfiler>,
}

impl ProfilingApp {
    /// The canonical JSON object of this app.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        self.parameters.write_fields(&mut map);
        if !self.profilers.is_empty() {
            let children = self.profilers.iter().map(ChildProfiler::to_json).collect();
            map.insert("profilers".into(), Value::Array(children));
        }
        Value::Object(map)
    }
}

/// Decodes the profiling app object at `path`.
pub(crate) fn decode(d: &mut Decoder, node: &Node, path: &str) -> ProfilingApp {
    let mut app = ProfilingApp::default();

    for member in d.object(node, path, FIELDS) {
        if member.key != "profilers" {
            app.parameters.read_field(d, member, path);
            continue;
        }

        let list_path = join(path, "profilers");
        let NodeValue::Array(items) = &member.value.kind else {
            d.error(
                &member.value.span,
                format!(
                    "{list_path}: expected an array of profilers, found {}",
                    member.value.kind.type_name()
                ),
                "expected an array",
                "write [{\"profiler\": \"pyroscope\", …}, …]",
            );
            continue;
        };
        app.profilers.reserve(items.len());
        // One path for all of them, rewritten for each.
        let mut child_path = String::new();
        for (i, item) in items.iter().enumerate() {
            child_path.clear();
            write!(child_path, "{list_path}[{i}]").expect("writing to a String");
            if let Some(child) = decode_child(d, item, &child_path) {
                app.profilers.push(child);
            }
        }
    }
    if app.profilers.is_empty() && d.errors.is_empty() {
        d.warn(
            &(node.span.start..node.span.start + 1),
            format!("{path}: no child profilers: the profiling app does nothing"),
            "no profilers",
            "add \"profilers\": [{\"profiler\": \"pyroscope\", …}]",
        );
    }
    app
}

/// Decodes one entry of `profilers`.
fn decode_child(d: &mut Decoder, node: &Node, path: &str) -> Option<ChildProfiler> {
    let NodeValue::Object(members) = &node.kind else {
        d.object(node, path, &[]);
        return None;
    };
    // Find the name first: it decides which fields are valid.
    let Some(name_member) = members.iter().find(|m| m.key == "profiler") else {
        d.error(
            &(node.span.start..node.span.start + 1),
            format!("{path}: missing \"profiler\""),
            "this profiler has no \"profiler\" name",
            &format!(
                "add \"profiler\" as the first field, one of: {}",
                profiler_names().collect::<Vec<_>>().join(", ")
            ),
        );
        return None;
    };
    let name_path = join(path, "profiler");
    let name = d.string(&name_member.value, &name_path)?;
    let Some(kind) = child_kind(&name) else {
        d.error(
            &name_member.value.span,
            format!("{name_path}: unknown profiler '{name}'"),
            "unknown profiler",
            &did_you_mean(&name, &profiler_names().collect::<Vec<_>>()),
        );
        return None;
    };
    // `profile_types` directly on a child is the seed's alias for `parameters.profile_types`.
    // (On the stack: this is done for each of a large file's profilers.)
    let mut allowed: SmallVec<[&str; 16]> = SmallVec::new();
    allowed.push("profiler");
    allowed.extend(kind.spec.fields.iter().map(|field| field.name));
    allowed.push("profile_types");
    let valid = d.object(node, path, &allowed);
    let alias = valid.iter().copied().find(|m| m.key == "profile_types");
    let fields: SmallVec<[_; 16]> = valid
        .into_iter()
        .filter(|m| m.key != "profiler" && m.key != "profile_types")
        .collect();
    let mut child = kind.decode(d, &fields, path);
    if let Some(alias) = alias {
        let nested =
            fields
                .iter()
                .find(|m| m.key == "parameters")
                .and_then(|p| match &p.value.kind {
                    NodeValue::Object(ms) => ms.iter().find(|m| m.key == "profile_types"),
                    _ => None,
                });
        if let Some(nested) = nested {
            let err = Diagnostic::error(format!(
                "{path}: profile_types is given both directly and in parameters"
            ))
            .label(&d.at(&alias.key_span), "given here")
            .label(&d.at(&nested.key_span), "and here")
            .help("keep only the one inside \"parameters\"");
            d.errors.push(err);
        } else {
            let types = d.profile_types(&alias.value, &join(path, "profile_types"));
            let parameters = child
                .parameters_mut()
                .get_or_insert_with(Parameters::default);
            parameters.profile_types = types;
            d.warn(
                &alias.key_span,
                format!("{path}.profile_types: read as parameters.profile_types"),
                "belongs in \"parameters\"",
                "move it into \"parameters\": {\"profile_types\": […]}; Caddy's module rejects \
                 it here",
            );
        }
    }
    Some(child)
}

// ---------------------------------------------------------------------------------------------
// Profilingfile reading
// ---------------------------------------------------------------------------------------------

/// The kinds of child profiler a `profiling` app may hold, in the order their names are
/// offered: the Caddy modules', then caddyprof's extensions. The one list of them (a new
/// sink adds its line here, and one to the runtime's list of sinks).
pub const CHILDREN: &[&ChildKind] = &[&pyroscope::CHILD, &profefe::CHILD, &file::CHILD];

/// The `"profiler"` names of the child profilers.
pub fn profiler_names() -> impl Iterator<Item = &'static str> {
    CHILDREN.iter().map(|kind| kind.spec.name)
}

/// The kind of child profiler named `name`, if there is one.
fn child_kind(name: &str) -> Option<&'static ChildKind> {
    CHILDREN.iter().copied().find(|kind| kind.spec.name == name)
}

/// The spec of the child profiler named `name`, if there is one.
pub(crate) fn child_spec(name: &str) -> Option<&'static ProfilerSpec> {
    child_kind(name).map(|kind| kind.spec)
}

/// Reads the directives of a `profiling { … }` block: the parameters directly, and each
/// profiler as a directive whose optional argument is its address.
pub fn adapt<'a>(
    directives: &'a [Directive],
    warnings: &mut Vec<Diagnostic>,
) -> Result<Json<'a>, Error> {
    adapt_with(directives, warnings, None)
}

/// [`adapt`], taking the profilers [`ProfilersAhead`] read for this block from `ahead`.
pub(crate) fn adapt_with<'a>(
    directives: &'a [Directive],
    warnings: &mut Vec<Diagnostic>,
    mut ahead: Option<Ahead<'a, '_>>,
) -> Result<Json<'a>, Error> {
    let mut fields = Fields::default();
    let mut profilers = Vec::new();
    for (i, directive) in directives.iter().enumerate() {
        let name = directive.name.text.as_str();
        if PARAMETERS.contains(&name) {
            read_parameter(directive, &mut fields, warnings)?;
        } else if let Some(spec) = child_spec(name) {
            if let Some(extra) = directive.args.get(1) {
                return Err(error_at(
                    extra,
                    format!("{name} takes at most one argument, its address"),
                    "unexpected argument",
                )
                .help(format!(
                    "set other fields inside a block: `{name} ADDRESS {{` …"
                ))
                .into());
            }
            if fields.set_by("profilers").is_none() {
                fields.set("profilers", Json::Null, &directive.name)?;
            }
            let child = match ahead.as_mut().and_then(|ahead| ahead.take(i)) {
                Some((read, read_warnings)) => {
                    warnings.extend(read_warnings);
                    read?
                }
                None => read_profiler(
                    spec,
                    directive.args.first(),
                    directive.children(),
                    true,
                    super::NAMES,
                    warnings,
                )?,
            };
            profilers.push(child);
        } else {
            let mut valid: Vec<&str> = PARAMETERS.to_vec();
            valid.extend(profiler_names());
            let mut diagnostic =
                unknown_directive(&directive.name, "profiling", &valid, super::NAMES);
            if name == "parameters" {
                diagnostic = diagnostic.help("in the profiling app, write the parameters directly (cpu_profile_rate, profile_types, …), not in a parameters block");
            }
            return Err(diagnostic.into());
        }
    }
    if let Some(slot) = fields.get_mut("profilers") {
        *slot = Json::Array(profilers);
    }
    Ok(fields.into_json())
}

/// How deep a child profiler sits in the JSON: `{"apps": {"profiling": {"profilers": [`.
const CHILD_DEPTH: usize = 4;

/// The profilers of `profiling` blocks, read while the file is parsed (as a
/// [`DirectiveHook`](crate::syntax::parser::DirectiveHook)) and written as JSON text at once.
///
/// The block of each is then dropped, while still in the processor's cache: the syntax tree
/// of a large file stays small, and is never walked again once it has left the cache (see
/// docs/benchmarks.md). [`adapt_with`] then reads the block as usual and takes each
/// profiler read here in its turn, so the JSON, the warnings and the first error are the
/// same.
pub(crate) struct ProfilersAhead {
    pretty: bool,
    /// The JSON text of every profiler read, one after the other.
    text: String,
    /// The profilers read, in order. Once one is invalid, adapting stops there: later ones
    /// are left to the tree.
    read: VecDeque<ReadAhead>,
}

/// One profiler read ahead.
struct ReadAhead {
    /// The block's index in the document, and the profiler's in the block.
    place: (usize, usize),
    /// Its JSON text's range in [`ProfilersAhead::text`], or why it is invalid.
    json: Result<Range<usize>, Error>,
    warnings: Vec<Diagnostic>,
}

/// The profilers read ahead for one block, handed to [`adapt_with`].
pub(crate) struct Ahead<'a, 'r> {
    block: usize,
    text: &'a str,
    read: &'r mut VecDeque<ReadAhead>,
}

impl ProfilersAhead {
    /// Nothing read yet; the JSON text will be compact or `pretty`, about `size` bytes.
    pub(crate) fn new(pretty: bool, size: usize) -> Self {
        ProfilersAhead {
            pretty,
            text: String::with_capacity(size),
            read: VecDeque::new(),
        }
    }

    /// The hook: reads `directive` if it is a profiler with a block, in a block whose only
    /// key is `profiling`, and takes its block.
    pub(crate) fn read(
        &mut self,
        keys: &[Token],
        place: (usize, usize),
        directive: &mut Directive,
    ) {
        if self.read.back().is_some_and(|read| read.json.is_err())
            || directive.block.is_none()
            || !matches!(keys, [key] if key.text == "profiling")
        {
            return;
        }
        let Some(spec) = child_spec(&directive.name.text) else {
            return;
        };
        let mut warnings = Vec::new();
        let json = read_profiler(
            spec,
            directive.args.first(),
            directive.children(),
            true,
            super::NAMES,
            &mut warnings,
        )
        .map(|json| {
            let start = self.text.len();
            json.write_text_at(self.pretty, CHILD_DEPTH, &mut self.text);
            start..self.text.len()
        });
        self.read.push_back(ReadAhead {
            place,
            json,
            warnings,
        });
        directive.block = None;
    }

    /// The profilers read in the block at `block` (the index in the document).
    pub(crate) fn for_block(&mut self, block: usize) -> Ahead<'_, '_> {
        Ahead {
            block,
            text: &self.text,
            read: &mut self.read,
        }
    }
}

impl<'a> Ahead<'a, '_> {
    /// The profiler at `index` in the block, if it was read ahead: its JSON and warnings.
    fn take(&mut self, index: usize) -> Option<(Result<Json<'a>, Error>, Vec<Diagnostic>)> {
        if self.read.front()?.place != (self.block, index) {
            return None;
        }
        let read = self.read.pop_front()?;
        let text = self.text;
        Some((
            read.json.map(|range| Json::Raw(&text[range])),
            read.warnings,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceFile;
    use crate::fields::ProfileType;

    fn load(profilers: &str) -> Result<crate::config::Loaded, crate::Error> {
        let text = format!(r#"{{"apps": {{"profiling": {{"profilers": [{profilers}]}}}}}}"#);
        crate::Config::load_json(&SourceFile::new("t.json", text))
    }

    fn first_error(profilers: &str) -> String {
        load(profilers).unwrap_err().diagnostics()[0]
            .message()
            .to_string()
    }

    #[test]
    fn children() {
        let loaded = load(
            r#"{"profiler": "profefe"}, {"profiler": "pyroscope", "profile_types": ["mutex"]}"#,
        )
        .unwrap();
        let app = loaded.config.profiling.unwrap();
        assert_eq!(
            app.profilers[0],
            ChildProfiler::new(crate::apps::ProfefeApp::default())
        );
        assert_eq!(
            app.profilers[1].parameters().unwrap().profile_types,
            Some(vec![ProfileType::Mutex])
        );
        assert_eq!(loaded.warnings.len(), 1, "the alias is warned about");
    }

    #[test]
    fn child_errors() {
        assert!(first_error(r#"{"profiler": "profefe", "profiler": "profefe"}"#).contains("twice"));
        assert!(first_error(r#"{"profiler": 1}"#).contains("expected a string"));
        assert!(
            first_error(r#"{"profiler": "profefe", "server_address": "http://x"}"#)
                .contains("unknown field 'server_address'")
        );
        assert!(first_error(r#"{}"#).contains("missing \"profiler\""));
        assert!(first_error(r#""pyroscope""#).contains("expected an object"));
        assert!(
            first_error(r#"{"profiler": "file", "interval": "0s"}"#).contains("greater than zero")
        );
    }

    #[test]
    fn empty_profiling_warns() {
        let loaded = crate::Config::load_json(&SourceFile::new(
            "t.json",
            r#"{"apps": {"profiling": {"cpu_profile_rate": 0}}}"#,
        ))
        .unwrap();
        assert!(loaded.warnings[0].message().contains("does nothing"));
    }
}
