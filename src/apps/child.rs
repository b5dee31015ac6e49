//! The child profilers of `profiling`: what a kind of child is ([`ChildKind`]), what its
//! config must be able to do ([`ChildConfig`]), and one configured child ([`ChildProfiler`]).
//!
//! The kinds are listed once, in [`crate::apps::profiling::CHILDREN`]: a new sink declares its
//! [`ChildKind`] in its own folder and adds one line there.

use std::any::Any;
use std::fmt;

use serde_json::{Map, Value};

use crate::fields::Parameters;
use crate::fields::decode::Decoder;
use crate::fields::directive::ProfilerSpec;
use crate::fields::json_reader::Member;
use crate::fields::table::{FieldRef, FieldSet, FieldSlot, decode_fields, write_fields};

/// A kind of child profiler: its `"profiler"` name and fields ([`ProfilerSpec`], which the
/// Profilingfile reader and the source map use), whether Caddy knows it, and how its JSON is
/// decoded.
pub struct ChildKind {
    /// Its name and fields.
    pub spec: &'static ProfilerSpec,
    /// Whether it is a caddyprof extension, which Caddy cannot load.
    pub extension: bool,
    decode: fn(&mut Decoder, &[&Member], &str) -> ChildProfiler,
}

impl fmt::Debug for ChildKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildKind")
            .field("name", &self.spec.name)
            .field("extension", &self.extension)
            .finish_non_exhaustive()
    }
}

impl ChildKind {
    /// The kind whose config is `T`.
    pub const fn of<T: ChildConfig>(spec: &'static ProfilerSpec, extension: bool) -> ChildKind {
        ChildKind {
            spec,
            extension,
            decode: decode_as::<T>,
        }
    }

    /// Decodes a child of this kind from its (already checked) fields.
    pub(crate) fn decode(&self, d: &mut Decoder, fields: &[&Member], path: &str) -> ChildProfiler {
        (self.decode)(d, fields, path)
    }
}

fn decode_as<T: ChildConfig>(d: &mut Decoder, fields: &[&Member], path: &str) -> ChildProfiler {
    ChildProfiler::new(decode_fields::<T>(d, fields, path))
}

/// The config of a kind of child profiler: a field table with a `parameters` field.
pub trait ChildConfig: FieldSet + Clone + PartialEq + fmt::Debug + Send + Sync + 'static {
    /// Its kind.
    const KIND: &'static ChildKind;
}

/// What [`ChildProfiler`] keeps of a [`ChildConfig`], whatever its type.
trait AnyChild: Any + Send + Sync + fmt::Debug {
    fn kind(&self) -> &'static ChildKind;
    fn parameters(&self) -> Option<&Parameters>;
    fn parameters_mut(&mut self) -> &mut Option<Parameters>;
    fn write_fields(&self, map: &mut Map<String, Value>);
    fn clone_box(&self) -> Box<dyn AnyChild>;
    fn equals(&self, other: &dyn AnyChild) -> bool;
    fn as_any(&self) -> &dyn Any;
}

impl<T: ChildConfig> AnyChild for T {
    fn kind(&self) -> &'static ChildKind {
        T::KIND
    }

    fn parameters(&self) -> Option<&Parameters> {
        match self.get("parameters") {
            Some(FieldRef::Parameters(parameters)) => Some(parameters),
            _ => None,
        }
    }

    fn parameters_mut(&mut self) -> &mut Option<Parameters> {
        match self.slot("parameters") {
            Some(FieldSlot::Parameters(slot)) => slot,
            _ => unreachable!("{}: a child profiler without a parameters field", T::NAME),
        }
    }

    fn write_fields(&self, map: &mut Map<String, Value>) {
        write_fields(self, map);
    }

    fn clone_box(&self) -> Box<dyn AnyChild> {
        Box::new(self.clone())
    }

    fn equals(&self, other: &dyn AnyChild) -> bool {
        other.as_any().downcast_ref::<T>() == Some(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// One entry of `profilers`: a child profiler's config, of the kind its `"profiler"` names.
pub struct ChildProfiler(Box<dyn AnyChild>);

impl ChildProfiler {
    /// A child profiler with the config `config`.
    pub fn new<T: ChildConfig>(config: T) -> ChildProfiler {
        ChildProfiler(Box::new(config))
    }

    /// Its kind.
    pub fn kind(&self) -> &'static ChildKind {
        self.0.kind()
    }

    /// The `"profiler"` name.
    pub fn name(&self) -> &'static str {
        self.kind().spec.name
    }

    /// Whether this is a caddyprof extension, which Caddy cannot load.
    pub fn is_extension(&self) -> bool {
        self.kind().extension
    }

    /// The child's own parameters, if it has any.
    pub fn parameters(&self) -> Option<&Parameters> {
        self.0.parameters()
    }

    /// Where the child's own parameters are kept.
    pub(crate) fn parameters_mut(&mut self) -> &mut Option<Parameters> {
        self.0.parameters_mut()
    }

    /// Its config, if it is a `T`.
    ///
    /// ```
    /// use caddyprof::apps::PyroscopeApp;
    ///
    /// let json = r#"{"apps": {"profiling": {"profilers": [{"profiler": "pyroscope"}]}}}"#;
    /// let config = caddyprof::Config::from_json(json).unwrap();
    /// let child = &config.profiling.unwrap().profilers[0];
    /// assert_eq!(child.get::<PyroscopeApp>(), Some(&PyroscopeApp::default()));
    /// ```
    pub fn get<T: ChildConfig>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref()
    }

    /// The canonical JSON object, `"profiler"` first.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("profiler".into(), self.name().into());
        self.0.write_fields(&mut map);
        Value::Object(map)
    }
}

impl Clone for ChildProfiler {
    fn clone(&self) -> ChildProfiler {
        ChildProfiler(self.0.clone_box())
    }
}

impl PartialEq for ChildProfiler {
    fn eq(&self, other: &ChildProfiler) -> bool {
        self.0.equals(other.0.as_ref())
    }
}

impl fmt::Debug for ChildProfiler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
