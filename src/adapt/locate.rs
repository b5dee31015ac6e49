//! Where the parts of an adapted Profilingfile were written: the JSON paths of its apps,
//! child profilers and fields, each with the token that made it. Warnings and errors found
//! after adapting (when the config is resolved to run) name JSON paths; with this map they
//! point at the Profilingfile's line instead.

use std::collections::VecDeque;

use crate::apps;
use crate::diagnostic::Diagnostic;
use crate::source::Location;
use crate::syntax::{Directive, Document, Token};

use crate::fields::directive::{PARAMETERS, ProfilerSpec};

/// JSON paths of a Profilingfile's config (`apps.profiling.profilers[0].upload_rate`), each
/// with where it was written.
///
/// Kept by app and by child profiler, with field names that are the specs' own strings: a
/// file of a million directives maps in a few tens of bytes each, and a path is found
/// without going through the others.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceMap {
    /// The apps, by name (`profiling`): their blocks' first key and their fields.
    apps: Vec<(&'static str, Object)>,
    /// The child profilers of the `profiling` app, in order.
    children: Vec<Object>,
}

/// Where an app or a child profiler was written, and its fields.
#[derive(Clone, Debug, Default, PartialEq)]
struct Object {
    at: Option<Location>,
    fields: Fields,
}

/// The fields of an object and where each was written, in order.
type Fields = Vec<(Field, Location)>;

/// A field's name, relative to its object: `upload_rate`, or `parameters.profile_types`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Own(&'static str),
    Parameter(&'static str),
}

impl Field {
    /// Whether this is the field at `path`, relative to its object.
    fn is(self, path: &str) -> bool {
        match self {
            Field::Own(name) => path == name,
            Field::Parameter(name) => path.strip_prefix("parameters.") == Some(name),
        }
    }
}

impl SourceMap {
    /// The map of an expanded document (the one [`crate::adapt_source`] adapts).
    ///
    /// ```
    /// use caddyprof::SourceFile;
    /// use caddyprof::adapt::locate::SourceMap;
    /// use caddyprof::syntax::{ParseOptions, parse};
    ///
    /// let text = "profiling {\n\tpyroscope http://h:4040 {\n\t\tupload_rate 10s\n\t}\n}\n";
    /// let file = SourceFile::new("Profilingfile", text);
    /// let options = ParseOptions { expand: true, env: None, base_dir: ".".into() };
    /// let map = SourceMap::of(&parse(&file, &options).unwrap().document);
    /// let at = map.find("apps.profiling.profilers[0].upload_rate").unwrap();
    /// assert_eq!(at.line_col(), (3, 3));
    /// // A field that is not written falls back to its profiler.
    /// let at = map.find("apps.profiling.profilers[0].tenant_id").unwrap();
    /// assert_eq!(at.line_col(), (2, 2));
    /// ```
    pub fn of(document: &Document) -> SourceMap {
        Self::of_read_ahead(document, FieldsAhead::default())
    }

    /// The map of a document whose child profilers' blocks were taken while it was parsed,
    /// their fields kept in `ahead`.
    pub(crate) fn of_read_ahead(document: &Document, mut ahead: FieldsAhead) -> SourceMap {
        let mut map = SourceMap::default();
        for (index, block) in document.blocks.iter().enumerate() {
            let Some(key) = block.key() else { continue };
            let Some(name) = apps::NAMES.iter().find(|name| **name == key.text) else {
                continue;
            };
            map.app(name).at = Some(key.location.clone());
            if *name == "profiling" {
                for (place, directive) in block.body.directives.iter().enumerate() {
                    let own_name = directive.name.text.as_str();
                    if let Some(spec) = apps::profiling::child_spec(own_name) {
                        let mut child = Object {
                            at: Some(directive.name.location.clone()),
                            fields: Vec::new(),
                        };
                        child.profiler(spec, directive.args.first(), directive.children());
                        child
                            .fields
                            .extend(ahead.take((index, place)).into_iter().flatten());
                        child.fields.shrink_to_fit();
                        map.children.push(child);
                    } else if let Some(&parameter) = PARAMETERS.iter().find(|p| **p == own_name) {
                        // The profiling app's own parameters are not nested.
                        let at = directive.name.location.clone();
                        map.app(name).fields.push((Field::Own(parameter), at));
                    }
                }
            } else if let Some(spec) = apps::profiling::child_spec(name) {
                map.app(name)
                    .profiler(spec, block.keys.get(1), &block.body.directives);
            }
        }
        map
    }

    fn app(&mut self, name: &'static str) -> &mut Object {
        let index = match self.apps.iter().position(|(app, _)| *app == name) {
            Some(index) => index,
            None => {
                self.apps.push((name, Object::default()));
                self.apps.len() - 1
            }
        };
        &mut self.apps[index].1
    }

    /// Where the longest path of the map that begins `path` was written: the field itself
    /// if it is written, else the object holding it.
    pub fn find(&self, path: &str) -> Option<&Location> {
        // `path`, then each part of it ending before a '.', '[', ':' or ' '.
        let mut end = path.len();
        loop {
            if let Some(at) = self.get(&path[..end]) {
                return Some(at);
            }
            end = path[..end].rfind(['.', '[', ':', ' '])?;
        }
    }

    /// Where exactly `path` was written, if it is in the map.
    fn get(&self, path: &str) -> Option<&Location> {
        let rest = path.strip_prefix("apps.")?;
        let (name, rest) = match rest.split_once('.') {
            Some((name, rest)) => (name, Some(rest)),
            None => (rest, None),
        };
        let (_, app) = self.apps.iter().find(|(app, _)| *app == name)?;
        let Some(rest) = rest else {
            return app.at.as_ref();
        };
        if name == "profiling"
            && let Some((index, rest)) = rest
                .strip_prefix("profilers[")
                .and_then(|rest| rest.split_once(']'))
        {
            // Only the index as written in paths: no sign, no leading zero.
            if index.is_empty() || index.len() > 1 && index.starts_with('0') {
                return None;
            }
            let child = self.children.get(index.parse::<usize>().ok()?)?;
            return match rest {
                "" => child.at.as_ref(),
                rest => child.field(rest.strip_prefix('.')?),
            };
        }
        app.field(rest)
    }

    /// `diagnostic`, labelled where the JSON path its message starts with was written, when
    /// it has no place of its own.
    pub fn locate(&self, diagnostic: Diagnostic) -> Diagnostic {
        if diagnostic.location().is_some() || !diagnostic.message().starts_with("apps.") {
            return diagnostic;
        }
        let path = diagnostic.message().split(':').next().unwrap_or_default();
        match self.find(path) {
            Some(at) => {
                let at = at.clone();
                diagnostic.label(&at, "configured here")
            }
            None => diagnostic,
        }
    }
}

impl Object {
    /// Where the field at `path` (relative to this object) was written; the last one if it
    /// was written twice.
    fn field(&self, path: &str) -> Option<&Location> {
        self.fields
            .iter()
            .rev()
            .find(|(field, _)| field.is(path))
            .map(|(_, at)| at)
    }

    /// A profiler's address (argument or key) and fields.
    fn profiler(&mut self, spec: &ProfilerSpec, address: Option<&Token>, directives: &[Directive]) {
        if let Some(address) = address {
            self.fields
                .push((Field::Own(spec.address_field), address.location.clone()));
        }
        for directive in directives {
            self.field_directive(spec, directive);
        }
    }

    /// A field directive, and the parameters of a `parameters { … }` block (which go under
    /// `parameters`, as do parameters written directly). A name the spec does not know is
    /// left out: its file does not adapt.
    fn field_directive(&mut self, spec: &ProfilerSpec, directive: &Directive) {
        let name = directive.name.text.as_str();
        let at = || directive.name.location.clone();
        if name == "parameters" {
            self.fields.push((Field::Own("parameters"), at()));
            for parameter in directive.children() {
                if let Some(field) = parameter_field(&parameter.name.text) {
                    self.fields.push((field, parameter.name.location.clone()));
                }
            }
        } else if let Some(field) = parameter_field(name) {
            self.fields.push((field, at()));
        } else if let Some(own) = spec.fields.iter().find(|field| field.name == name) {
            self.fields.push((Field::Own(own.name), at()));
        }
    }
}

/// The field of the parameter named `name`, if it is one.
fn parameter_field(name: &str) -> Option<Field> {
    PARAMETERS
        .iter()
        .find(|p| **p == name)
        .map(|&p| Field::Parameter(p))
}

/// The fields of the child profilers whose blocks are taken while a file is parsed (see
/// [`crate::apps::profiling::ProfilersAhead`]), kept for its [`SourceMap`].
#[derive(Default)]
pub(crate) struct FieldsAhead {
    /// The place of each child (its block's index in the document, its own in the block),
    /// and its fields, in order.
    read: VecDeque<((usize, usize), Fields)>,
}

impl FieldsAhead {
    /// Calls `take` on `directive`, at `place` in a block whose keys are `keys`; if it is a
    /// child profiler of `profiling` whose block `take` takes, keeps the fields of that block.
    pub(crate) fn around(
        &mut self,
        keys: &[Token],
        place: (usize, usize),
        directive: &mut Directive,
        take: impl FnOnce(&mut Directive),
    ) {
        let spec = apps::profiling::child_spec(&directive.name.text)
            .filter(|_| directive.block.is_some())
            .filter(|_| matches!(keys, [key] if key.text == "profiling"));
        let Some(spec) = spec else {
            return take(directive);
        };
        let mut child = Object::default();
        for field in directive.children() {
            child.field_directive(spec, field);
        }
        take(directive);
        if directive.block.is_none() {
            self.read.push_back((place, child.fields));
        }
    }

    /// The fields read for the child at `place`.
    fn take(&mut self, place: (usize, usize)) -> Option<Fields> {
        if self.read.front()?.0 != place {
            return None;
        }
        self.read.pop_front().map(|(_, fields)| fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceFile;
    use crate::syntax::{ParseOptions, parse};

    fn map_of(text: &str) -> SourceMap {
        let file = SourceFile::new("Profilingfile", text);
        let options = ParseOptions {
            expand: true,
            env: None,
            base_dir: ".".into(),
        };
        SourceMap::of(&parse(&file, &options).unwrap().document)
    }

    fn line_of(map: &SourceMap, path: &str) -> Option<usize> {
        map.find(path).map(|at| at.line_col().0)
    }

    #[test]
    fn paths_point_at_their_directives() {
        let map = map_of(
            "(team) {\n\
             \tupload_rate 10s\n\
             }\n\
             profiling {\n\
             \tcpu_profile_rate 50\n\
             \tpyroscope http://a:4040 {\n\
             \t\timport team\n\
             \t\tprofile_types cpu\n\
             \t}\n\
             \tprofefe {\n\
             \t\tparameters {\n\
             \t\t\tblock_profile_rate 1\n\
             \t\t}\n\
             \t}\n\
             }\n\
             profefe http://p:10100 {\n\
             \tservice api\n\
             }\n",
        );
        // The profiling app's own parameters are not nested; a child's are.
        assert_eq!(line_of(&map, "apps.profiling.cpu_profile_rate"), Some(5));
        assert_eq!(line_of(&map, "apps.profiling.profilers[0]"), Some(6));
        assert_eq!(
            line_of(&map, "apps.profiling.profilers[0].server_address"),
            Some(6)
        );
        // Imported from a snippet: where the snippet wrote it.
        assert_eq!(
            line_of(&map, "apps.profiling.profilers[0].upload_rate"),
            Some(2)
        );
        assert_eq!(
            line_of(&map, "apps.profiling.profilers[0].parameters.profile_types"),
            Some(8)
        );
        assert_eq!(
            line_of(
                &map,
                "apps.profiling.profilers[1].parameters.block_profile_rate"
            ),
            Some(12)
        );
        // Not written: the object holding it.
        assert_eq!(
            line_of(&map, "apps.profiling.profilers[1].address"),
            Some(10)
        );
        assert_eq!(line_of(&map, "apps.profefe.address"), Some(16));
        assert_eq!(line_of(&map, "apps.profefe.service"), Some(17));
        // A path is matched by whole names, not by a prefix of one.
        assert_eq!(line_of(&map, "apps.profiling.profilers[1]0"), Some(4));
        assert_eq!(line_of(&map, "apps.profilingx"), None);
        assert_eq!(line_of(&map, "apps.pyroscope"), None);
    }

    /// The map made while the profilers' blocks are taken during parsing (as `validate`
    /// adapts) is the map of the whole tree.
    #[test]
    fn the_map_made_while_parsing_is_that_of_the_tree() {
        let text = "(team) {\n\
                    \tpyroscope http://t:4040 {\n\
                    \t\tupload_rate 10s\n\
                    \t}\n\
                    }\n\
                    profiling {\n\
                    \tcpu_profile_rate 50\n\
                    \tpyroscope http://a:4040 {\n\
                    \t\tprofile_types cpu\n\
                    \t\tauth_token {env.T}\n\
                    \t}\n\
                    \timport team\n\
                    \tprofefe\n\
                    \tfile {\n\
                    \t\tparameters {\n\
                    \t\t\tblock_profile_rate 1\n\
                    \t\t}\n\
                    \t\tinterval 5s\n\
                    \t}\n\
                    \tprofile_types cpu heap\n\
                    }\n\
                    profefe http://p:10100 {\n\
                    \tservice api\n\
                    }\n";
        let file = SourceFile::new("Profilingfile", text);
        let options = crate::AdaptOptions {
            env: Box::new(|_| None),
            base_dir: ".".into(),
        };
        let (_, mapped) = crate::adapt_to_text_mapped(&file, &options).unwrap();
        let parse_options = ParseOptions {
            expand: true,
            env: None,
            base_dir: ".".into(),
        };
        let tree = SourceMap::of(&parse(&file, &parse_options).unwrap().document);
        assert_eq!(mapped, tree);
        assert_eq!(
            line_of(&mapped, "apps.profiling.profilers[0].auth_token"),
            Some(10)
        );
        assert_eq!(
            line_of(&mapped, "apps.profiling.profilers[1].upload_rate"),
            Some(3)
        );
        assert_eq!(
            line_of(
                &mapped,
                "apps.profiling.profilers[3].parameters.block_profile_rate"
            ),
            Some(16)
        );
    }

    #[test]
    fn a_warning_without_a_place_gets_one() {
        let map = map_of("pyroscope {\n\tapplication_name api\n}\n");
        let warning = map.locate(Diagnostic::warning(
            "apps.pyroscope.server_address: not set: sending to http://localhost:4040",
        ));
        assert_eq!(warning.location().unwrap().line_col(), (1, 1));
        // Other messages are left as they are.
        let other = map.locate(Diagnostic::warning("no block samples (in apps.pyroscope)"));
        assert!(other.location().is_none());
    }
}
