//! Where the parts of an adapted Profilingfile were written: the JSON paths of its apps,
//! child profilers and fields, each with the token that made it. Warnings and errors found
//! after adapting (when the config is resolved to run) name JSON paths; with this map they
//! point at the Profilingfile's line instead.

use crate::apps;
use crate::diagnostic::Diagnostic;
use crate::source::Location;
use crate::syntax::{Directive, Document, Token};

use super::reader::{PARAMETERS, ProfilerSpec};

/// JSON paths of a Profilingfile's config (`apps.profiling.profilers[0].upload_rate`), each
/// with where it was written.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    entries: Vec<(String, Location)>,
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
        let mut map = SourceMap::default();
        for block in &document.blocks {
            let Some(key) = block.key() else { continue };
            let path = format!("apps.{}", key.text);
            map.add(&path, key);
            match key.text.as_str() {
                "profiling" => {
                    let mut children = 0;
                    for directive in &block.body.directives {
                        let name = directive.name.text.as_str();
                        if let Some(spec) = apps::profiling::child_spec(name) {
                            let child = format!("{path}.profilers[{children}]");
                            children += 1;
                            map.add(&child, &directive.name);
                            map.profiler(
                                &child,
                                spec,
                                directive.args.first(),
                                directive.children(),
                            );
                        } else {
                            // The profiling app's own parameters are not nested.
                            map.add(&format!("{path}.{name}"), &directive.name);
                        }
                    }
                }
                name => {
                    if let Some(spec) = apps::profiling::child_spec(name) {
                        map.profiler(&path, spec, block.keys.get(1), &block.body.directives);
                    }
                }
            }
        }
        map
    }

    /// Where the longest path of the map that begins `path` was written: the field itself
    /// if it is written, else the object holding it.
    pub fn find(&self, path: &str) -> Option<&Location> {
        self.entries
            .iter()
            .filter(|(p, _)| {
                path.strip_prefix(p.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[', ':', ' ']))
            })
            .max_by_key(|(p, _)| p.len())
            .map(|(_, at)| at)
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

    fn add(&mut self, path: &str, token: &Token) {
        self.entries.push((path.to_owned(), token.location.clone()));
    }

    /// A profiler's address (argument or key) and fields.
    fn profiler(
        &mut self,
        path: &str,
        spec: &ProfilerSpec,
        address: Option<&Token>,
        directives: &[Directive],
    ) {
        if let Some(address) = address {
            self.add(&format!("{path}.{}", spec.address_field), address);
        }
        for directive in directives {
            self.field(path, directive);
        }
    }

    /// A field directive, and the parameters of a `parameters { … }` block (which go under
    /// `parameters`, as do parameters written directly).
    fn field(&mut self, path: &str, directive: &Directive) {
        let name = directive.name.text.as_str();
        if name == "parameters" {
            self.add(&format!("{path}.parameters"), &directive.name);
            for parameter in directive.children() {
                self.add(
                    &format!("{path}.parameters.{}", parameter.name.text),
                    &parameter.name,
                );
            }
        } else if PARAMETERS.contains(&name) {
            self.add(&format!("{path}.parameters.{name}"), &directive.name);
        } else {
            self.add(&format!("{path}.{name}"), &directive.name);
        }
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
