//! The pprof profile model and encoder shared by every profile type (cpu, heap, goroutine,
//! block, mutex).
//!
//! A [`ProfileBuilder`] takes sample types, a period, the window, and samples (a stack of
//! [`Frame`]s, one value per sample type, labels); it deduplicates strings, functions and
//! locations and produces the gzip-compressed protobuf a pprof consumer (Pyroscope, profefe,
//! `go tool pprof`) reads, or a [`Profile`].
//!
//! Like the Go runtime's, every profile names the binaries its code addresses lie in: its
//! mappings start with the running program's (path and GNU build ID), and each location of a
//! symbolized address points at the [`Mapping`] of the program or library holding it.
//!
//! ```
//! use caddyprof::profile::{Frame, Label, ProfileBuilder};
//! use std::time::{Duration, SystemTime};
//!
//! let mut builder = ProfileBuilder::new();
//! builder
//!     .sample_type("samples", "count")
//!     .sample_type("cpu", "nanoseconds")
//!     .period("cpu", "nanoseconds", 10_000_000)
//!     .window(SystemTime::now(), Duration::from_secs(10));
//! let stack = [Frame::new("app::hot").file("src/hot.rs").line(12), Frame::new("main")];
//! builder.add_sample(&stack, &[3, 30_000_000], &[Label::str("thread", "main")]);
//! let decoded = builder.build();
//! assert_eq!(decoded.sample.len(), 1);
//! assert_eq!(decoded.function.len(), 2);
//! ```

mod collected;
mod mapping;
pub mod proto;

pub use collected::Profile;
pub(crate) use mapping::mappings;
pub use mapping::{Mapping, program_mappings};

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use prost::Message;

use crate::fields::ProfileType;

/// One frame of a stack: a function, and its file and line when known.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame<'a> {
    /// The human-readable (demangled) function name.
    pub function: Cow<'a, str>,
    /// The name as in the binary, when it differs (mangled); empty otherwise.
    pub system_name: Cow<'a, str>,
    /// The source file, when known.
    pub file: Option<Cow<'a, str>>,
    /// The line number, when known.
    pub line: Option<u32>,
}

impl<'a> Frame<'a> {
    /// A frame of `function`, with no file or line.
    pub fn new(function: impl Into<Cow<'a, str>>) -> Self {
        Frame {
            function: function.into(),
            system_name: Cow::Borrowed(""),
            file: None,
            line: None,
        }
    }

    /// Sets the source file.
    pub fn file(mut self, file: impl Into<Cow<'a, str>>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// Sets the line number (0 means unknown).
    pub fn line(mut self, line: u32) -> Self {
        self.line = (line != 0).then_some(line);
        self
    }

    /// Sets the name as in the binary (mangled).
    pub fn system_name(mut self, name: impl Into<Cow<'a, str>>) -> Self {
        self.system_name = name.into();
        self
    }
}

/// A label of a sample: a key and a string or a numeric value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label<'a> {
    /// The key.
    pub key: &'a str,
    /// The value.
    pub value: LabelValue<'a>,
}

/// The value of a [`Label`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelValue<'a> {
    /// A string.
    Str(&'a str),
    /// A number, with its unit (`bytes`) or `""`.
    Num(i64, &'a str),
}

impl<'a> Label<'a> {
    /// A string label (`thread=main`).
    pub fn str(key: &'a str, value: &'a str) -> Self {
        Label {
            key,
            value: LabelValue::Str(value),
        }
    }

    /// A numeric label with a unit (`bytes=512 bytes`), or `""` for none.
    pub fn num(key: &'a str, value: i64, unit: &'a str) -> Self {
        Label {
            key,
            value: LabelValue::Num(value, unit),
        }
    }
}

/// The id of a location in the profile being built (see [`ProfileBuilder::location`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocationId(u64);

/// What makes a location: its mapping id (0: none), address (0: none) and lines (function
/// id, line).
type LocationKey = (u64, u64, Vec<(u64, i64)>);

/// Builds one pprof profile. Strings, functions and locations are deduplicated.
///
/// Stacks are given leaf first, as pprof stores them.
#[derive(Debug)]
pub struct ProfileBuilder {
    profile: proto::Profile,
    strings: HashMap<String, i64>,
    /// (name, system name, file, start line) → function id.
    functions: HashMap<(i64, i64, i64), u64>,
    /// Each location's id.
    locations: HashMap<LocationKey, u64>,
    /// mapping → its id.
    mappings: HashMap<Mapping, u64>,
    /// Whether a location lies in the mapping of id `index + 1` yet.
    mapping_used: Vec<bool>,
    start: SystemTime,
    duration: Duration,
}

impl Default for ProfileBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ProfileBuilder {
    /// An empty profile of this process: no sample types, period 0, window starting now with
    /// no length, and the running program's mappings first (pprof tools take the first
    /// mapping for the main binary, even when no location lies in it).
    pub fn new() -> Self {
        let mut builder = ProfileBuilder {
            profile: proto::Profile::default(),
            strings: HashMap::new(),
            functions: HashMap::new(),
            locations: HashMap::new(),
            mappings: HashMap::new(),
            mapping_used: Vec::new(),
            start: SystemTime::now(),
            duration: Duration::ZERO,
        };
        builder.string("");
        builder.set_window();
        for mapping in program_mappings() {
            builder.mapping(mapping);
        }
        builder
    }

    /// The index of `s` in the string table, adding it if new.
    pub fn string(&mut self, s: &str) -> i64 {
        if let Some(&index) = self.strings.get(s) {
            return index;
        }
        let index = self.profile.string_table.len() as i64;
        self.profile.string_table.push(s.to_owned());
        self.strings.insert(s.to_owned(), index);
        index
    }

    fn value_type(&mut self, ty: &str, unit: &str) -> proto::ValueType {
        proto::ValueType {
            r#type: self.string(ty),
            unit: self.string(unit),
        }
    }

    /// Appends a sample type (`samples`/`count`, `cpu`/`nanoseconds`): every sample gives one
    /// value per sample type, in this order.
    pub fn sample_type(&mut self, ty: &str, unit: &str) -> &mut Self {
        let value_type = self.value_type(ty, unit);
        self.profile.sample_type.push(value_type);
        self
    }

    /// Sets the sample type shown by default (by its type name, e.g. `cpu`).
    pub fn default_sample_type(&mut self, ty: &str) -> &mut Self {
        self.profile.default_sample_type = self.string(ty);
        self
    }

    /// Sets the period type and the period (events between samples).
    pub fn period(&mut self, ty: &str, unit: &str, period: i64) -> &mut Self {
        self.profile.period_type = Some(self.value_type(ty, unit));
        self.profile.period = period;
        self
    }

    /// Sets the window the profile covers: its start (pprof `time_nanos`) and length
    /// (`duration_nanos`).
    pub fn window(&mut self, start: SystemTime, duration: Duration) -> &mut Self {
        self.start = start;
        self.duration = duration;
        self.set_window();
        self
    }

    fn set_window(&mut self) {
        self.profile.time_nanos = self
            .start
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        self.profile.duration_nanos = self.duration.as_nanos() as i64;
    }

    /// Adds a comment.
    pub fn comment(&mut self, text: &str) -> &mut Self {
        let index = self.string(text);
        self.profile.comment.push(index);
        self
    }

    fn function(&mut self, frame: &Frame<'_>) -> u64 {
        let name = self.string(&frame.function);
        let system_name = if frame.system_name.is_empty() {
            name
        } else {
            self.string(&frame.system_name)
        };
        let filename = frame.file.as_deref().map_or(0, |f| self.string(f));
        let next = self.profile.function.len() as u64 + 1;
        let id = *self
            .functions
            .entry((name, system_name, filename))
            .or_insert(next);
        if id == next {
            self.profile.function.push(proto::Function {
                id,
                name,
                system_name,
                filename,
                start_line: 0,
            });
        }
        id
    }

    /// The id of `mapping`, adding it if new; a new mapping has none of the `has_*` flags
    /// until a location lies in it.
    fn mapping(&mut self, mapping: &Mapping) -> u64 {
        if let Some(&id) = self.mappings.get(mapping) {
            return id;
        }
        let id = self.profile.mapping.len() as u64 + 1;
        let filename = self.string(&mapping.filename);
        let build_id = self.string(&mapping.build_id);
        self.profile.mapping.push(proto::Mapping {
            id,
            memory_start: mapping.memory_start,
            memory_limit: mapping.memory_limit,
            file_offset: mapping.file_offset,
            filename,
            build_id,
            ..Default::default()
        });
        self.mappings.insert(mapping.clone(), id);
        self.mapping_used.push(false);
        id
    }

    /// The location of an instruction `address` (0 if unknown) that stands for `lines`,
    /// innermost first (an address inside inlined code stands for several functions), in no
    /// mapping: for frames that are no code of a binary (`thread main`), or addresses outside
    /// every mapped file. Locations with the same address and lines are shared.
    pub fn location(&mut self, address: u64, lines: &[Frame<'_>]) -> LocationId {
        self.add_location(0, address, lines).0
    }

    /// The location of an instruction `address` in `mapping` (added to the profile if new)
    /// that stands for `lines`, as [`location`](Self::location). `named` says whether the
    /// binary's symbols named its functions (false for a stand-in such as
    /// `libfoo.so+0x1234`).
    ///
    /// The mapping's flags say what its locations hold, so that pprof tools symbolize
    /// nothing again: `has_functions`, `has_filenames` and `has_line_numbers` when every
    /// location in it has named functions, files, lines; `has_inline_frames` when one has
    /// inlined frames.
    pub fn mapped_location(
        &mut self,
        mapping: &Mapping,
        address: u64,
        lines: &[Frame<'_>],
        named: bool,
    ) -> LocationId {
        let mapping_id = self.mapping(mapping);
        let (id, new) = self.add_location(mapping_id, address, lines);
        if new {
            let index = mapping_id as usize - 1;
            let first = !std::mem::replace(&mut self.mapping_used[index], true);
            let flags = &mut self.profile.mapping[index];
            flags.has_functions = named && (first || flags.has_functions);
            flags.has_filenames =
                lines.iter().all(|f| f.file.is_some()) && (first || flags.has_filenames);
            flags.has_line_numbers =
                lines.iter().all(|f| f.line.is_some()) && (first || flags.has_line_numbers);
            flags.has_inline_frames |= lines.len() > 1;
        }
        id
    }

    /// The location of `address` in mapping `mapping_id` (0: none) standing for `lines`,
    /// and whether it is new.
    fn add_location(
        &mut self,
        mapping_id: u64,
        address: u64,
        lines: &[Frame<'_>],
    ) -> (LocationId, bool) {
        let lines: Vec<(u64, i64)> = lines
            .iter()
            .map(|frame| (self.function(frame), i64::from(frame.line.unwrap_or(0))))
            .collect();
        let next = self.profile.location.len() as u64 + 1;
        let key = (mapping_id, address, lines);
        if let Some(&id) = self.locations.get(&key) {
            return (LocationId(id), false);
        }
        self.profile.location.push(proto::Location {
            id: next,
            mapping_id,
            address,
            line: key
                .2
                .iter()
                .map(|&(function_id, line)| proto::Line { function_id, line })
                .collect(),
            is_folded: false,
        });
        self.locations.insert(key, next);
        (LocationId(next), true)
    }

    /// Adds a sample whose stack is `frames`, leaf first, each frame its own location.
    ///
    /// # Panics
    ///
    /// If `values` does not have one value per sample type.
    pub fn add_sample(&mut self, frames: &[Frame<'_>], values: &[i64], labels: &[Label<'_>]) {
        let locations: Vec<LocationId> = frames
            .iter()
            .map(|frame| self.location(0, std::slice::from_ref(frame)))
            .collect();
        self.add_sample_at(&locations, values, labels);
    }

    /// Adds a sample whose stack is `locations` (from [`location`](Self::location)), leaf
    /// first.
    ///
    /// # Panics
    ///
    /// If `values` does not have one value per sample type.
    pub fn add_sample_at(
        &mut self,
        locations: &[LocationId],
        values: &[i64],
        labels: &[Label<'_>],
    ) {
        assert_eq!(
            values.len(),
            self.profile.sample_type.len(),
            "a sample needs one value per sample type"
        );
        let label = labels
            .iter()
            .map(|label| {
                let key = self.string(label.key);
                match label.value {
                    LabelValue::Str(s) => proto::Label {
                        key,
                        str: self.string(s),
                        num: 0,
                        num_unit: 0,
                    },
                    LabelValue::Num(num, unit) => proto::Label {
                        key,
                        str: 0,
                        num,
                        num_unit: if unit.is_empty() {
                            0
                        } else {
                            self.string(unit)
                        },
                    },
                }
            })
            .collect();
        self.profile.sample.push(proto::Sample {
            location_id: locations.iter().map(|l| l.0).collect(),
            value: values.to_vec(),
            label,
        });
    }

    /// The number of samples added so far.
    pub fn sample_count(&self) -> usize {
        self.profile.sample.len()
    }

    /// The finished profile message.
    pub fn build(self) -> proto::Profile {
        self.profile
    }

    /// The finished profile as gzip-compressed protobuf, the form every pprof consumer reads.
    pub fn encode_gzip(self) -> Vec<u8> {
        encode_gzip(&self.profile)
    }

    /// The finished profile as a [`Profile`] of `profile_type`, with this builder's window.
    pub fn into_profile(self, profile_type: ProfileType) -> Profile {
        let (start, duration) = (self.start, self.duration);
        Profile {
            profile_type,
            start,
            duration,
            pprof_gz: Arc::from(self.encode_gzip()),
        }
    }
}

/// Encodes `profile` as gzip-compressed protobuf.
pub fn encode_gzip(profile: &proto::Profile) -> Vec<u8> {
    let raw = profile.encode_to_vec();
    let mut encoder = GzEncoder::new(Vec::with_capacity(raw.len() / 4 + 64), Compression::new(6));
    encoder
        .write_all(&raw)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// An error decoding a pprof body.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The gzip layer is broken.
    #[error("invalid gzip: {0}")]
    Gzip(#[from] std::io::Error),
    /// The protobuf layer is broken.
    #[error("invalid pprof protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
}

/// Decodes a pprof body, gzip-compressed (as sent) or raw protobuf.
pub fn decode(bytes: &[u8]) -> Result<proto::Profile, DecodeError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut raw = Vec::new();
        GzDecoder::new(bytes).read_to_end(&mut raw)?;
        Ok(proto::Profile::decode(raw.as_slice())?)
    } else {
        Ok(proto::Profile::decode(bytes)?)
    }
}

/// The profile's stacks in the "folded" text form flame graph tools read: for each distinct
/// stack, its function names from the root to the leaf joined by `;`, with the sum of sample
/// value `value_index` (for a CPU profile, 0: the sample count). Sorted by stack.
///
/// ```
/// use caddyprof::profile::{Frame, ProfileBuilder, fold};
///
/// let mut builder = ProfileBuilder::new();
/// builder.sample_type("samples", "count");
/// let main = Frame::new("main");
/// let work = Frame::new("work");
/// builder.add_sample(&[work.clone(), main.clone()], &[3], &[]);
/// builder.add_sample(&[main.clone()], &[1], &[]);
/// builder.add_sample(&[work, main], &[2], &[]);
/// assert_eq!(fold(&builder.build(), 0), [("main".to_owned(), 1), ("main;work".to_owned(), 5)]);
/// ```
pub fn fold(profile: &proto::Profile, value_index: usize) -> Vec<(String, u64)> {
    let symbols = Symbols::new(profile);
    let mut folded: std::collections::BTreeMap<String, u64> = Default::default();
    for sample in &profile.sample {
        let value = sample
            .value
            .get(value_index)
            .and_then(|&v| u64::try_from(v).ok())
            .unwrap_or(0);
        if value == 0 {
            continue;
        }
        let mut frames = symbols.stack(sample);
        frames.reverse();
        *folded.entry(frames.join(";")).or_default() += value;
    }
    folded.into_iter().collect()
}

/// The function names of a decoded profile's stacks.
///
/// ```
/// use caddyprof::profile::{Frame, ProfileBuilder, Symbols};
///
/// let mut builder = ProfileBuilder::new();
/// builder.sample_type("samples", "count");
/// builder.add_sample(&[Frame::new("work"), Frame::new("main")], &[1], &[]);
/// let profile = builder.build();
/// assert_eq!(Symbols::new(&profile).stack(&profile.sample[0]), ["work", "main"]);
/// ```
pub struct Symbols<'a> {
    functions: HashMap<u64, &'a str>,
    locations: HashMap<u64, &'a proto::Location>,
}

impl<'a> Symbols<'a> {
    /// Indexes `profile`'s functions and locations.
    pub fn new(profile: &'a proto::Profile) -> Self {
        let string = |i: i64| {
            usize::try_from(i)
                .ok()
                .and_then(|i| profile.string_table.get(i))
                .map_or("?", String::as_str)
        };
        Symbols {
            functions: profile
                .function
                .iter()
                .map(|f| (f.id, string(f.name)))
                .collect(),
            locations: profile.location.iter().map(|l| (l.id, l)).collect(),
        }
    }

    /// The function names of `sample`'s stack, leaf first (a location's inlined frames
    /// innermost first); `?` for an unknown function.
    pub fn stack(&self, sample: &proto::Sample) -> Vec<&'a str> {
        sample
            .location_id
            .iter()
            .filter_map(|id| self.locations.get(id))
            .flat_map(|location| location.line.iter())
            .map(|line| {
                self.functions
                    .get(&line.function_id)
                    .copied()
                    .unwrap_or("?")
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
