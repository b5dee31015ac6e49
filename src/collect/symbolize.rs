//! Symbolization shared by the collectors: instruction addresses → functions, files, lines.
//!
//! Collectors keep their stacks unresolved (instruction addresses, leaf first) and symbolize a
//! stack only when a profile contains it, each address once: the process-wide [`Symbolizer`]
//! caches every address it has resolved.
//!
//! Each loaded object (the program and its shared libraries, found with `dl_iterate_phdr`)
//! is read when addresses in it need names ([`super::debug_info`]): names and inlined
//! frames with file and line come from its own DWARF, read a unit at a time from the file
//! mapped for that batch only, and addresses without DWARF get the name of their
//! symbol-table entry (or `library+0xoffset`).
//! Separate debug files (`.gnu_debuglink`, `/usr/lib/debug`) are deliberately not read:
//! backtrace-rs reads them, and with Debian's `libc6-dbg` installed decompressing libc's
//! debug info alone added 35 MiB to the peak RSS of a profiled program and most of the
//! profiler's start-up CPU, to name a handful of libc frames that the symbol table names too
//! (only their file and line are lost).
//!
//! Each location also knows the [`Mapping`] (executable segment of the program or a
//! library) its address lies in, with the file's path and build ID, which the profile's
//! locations point at so pprof tools know the binary.
//!
//! Collectors hand a window's addresses over at once ([`Symbolizer::prepare`]), so each unit
//! of debug info is read once per window; between windows only the resolved locations and
//! each object's compact unit index stay resident. Keeping the parsed debug info of the
//! whole binary resident instead is what costs the peers 150–190 MiB of RSS.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use object::{Object, ObjectSymbol};

use super::debug_info::{DebugInfo, map_file, named};
use crate::profile::{Frame, LocationId, Mapping, ProfileBuilder, mappings};
use crate::unwind::objects::{MappedObject, mapped_objects, object_path};

/// A symbolized instruction address. Its functions, files and lines are kept compactly
/// (each distinct name and path once in the symbolizer); [`Symbolizer::frames_at`] gives
/// them as frames.
#[derive(Debug)]
pub struct Location {
    /// The instruction address.
    pub address: u64,
    /// The functions at this address, innermost (inlined) first; at least one. Shared by
    /// every address with the same functions, files and lines.
    lines: Arc<[Line]>,
    /// The executable segment of the program or library the address lies in, if any.
    pub mapping: Option<Arc<Mapping>>,
    /// Whether the binary's symbols named the functions; false for a stand-in name
    /// (`libfoo.so+0x1234`, `0x1234`).
    pub named: bool,
}

impl Location {
    /// The number of functions at this address (inlined ones included).
    pub fn depth(&self) -> usize {
        self.lines.len()
    }
}

/// What the [`Symbolizer`] keeps between windows (estimated bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SymbolizerStats {
    /// The addresses resolved.
    pub locations: usize,
    /// Their frames (inlined ones included).
    pub frames: usize,
    /// The distinct function names and file paths.
    pub names: usize,
    /// The locations, their frames and the names, with the address map.
    pub location_bytes: usize,
    /// The objects' unit indexes and unit tables.
    pub debug_info_bytes: usize,
}

/// A location as an object names it, before its names are kept in [`Names`].
struct Found {
    address: u64,
    frames: Vec<Frame<'static>>,
    mapping: Option<Arc<Mapping>>,
    named: bool,
}

/// One function of a [`Location`]: its names and file as [`Names`] ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Line {
    function: u32,
    system_name: Option<u32>,
    file: Option<u32>,
    line: Option<u32>,
}

/// Every distinct function name and file path of the resolved locations, once: the same few
/// thousand strings recur in tens of thousands of frames (a function's every address, a
/// file's every line), and keeping them per frame was most of the symbolizer's memory.
#[derive(Debug, Default)]
struct Names {
    ids: HashMap<Arc<str>, u32>,
    all: Vec<Arc<str>>,
    /// Each distinct list of lines once: the instructions of one line of code (a CPU
    /// sample's leaf is any of them) have the same.
    chains: std::collections::HashSet<Arc<[Line]>>,
}

impl Names {
    fn id(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let text: Arc<str> = text.into();
        let id = u32::try_from(self.all.len()).expect("fewer than 4 billion names");
        self.all.push(Arc::clone(&text));
        self.ids.insert(text, id);
        id
    }

    fn get(&self, id: u32) -> &str {
        &self.all[id as usize]
    }

    /// `frames` as lines of ids, shared with every other location that has the same.
    fn lines(&mut self, frames: &[Frame<'_>]) -> Arc<[Line]> {
        let lines: Vec<Line> = frames
            .iter()
            .map(|frame| Line {
                function: self.id(&frame.function),
                system_name: (!frame.system_name.is_empty()).then(|| self.id(&frame.system_name)),
                file: frame.file.as_deref().map(|file| self.id(file)),
                line: frame.line,
            })
            .collect();
        if let Some(chain) = self.chains.get(lines.as_slice()) {
            return Arc::clone(chain);
        }
        let chain: Arc<[Line]> = lines.into();
        self.chains.insert(Arc::clone(&chain));
        chain
    }

    /// `line` as a frame borrowing its strings.
    fn frame(&self, line: &Line) -> Frame<'_> {
        let mut frame = Frame::new(self.get(line.function));
        if let Some(system_name) = line.system_name {
            frame = frame.system_name(self.get(system_name));
        }
        if let Some(file) = line.file {
            frame = frame.file(self.get(file));
        }
        if let Some(number) = line.line {
            frame = frame.line(number);
        }
        frame
    }
}

/// Adds a profile's symbolized locations to its builder, each once.
#[derive(Debug, Default)]
pub struct ProfileLocations(HashMap<(usize, usize), LocationId>);

impl ProfileLocations {
    /// The profile's location ids of a resolved stack (indexes from
    /// [`Symbolizer::resolve`]), adding the locations not added yet.
    pub fn of(
        &mut self,
        resolved: &[usize],
        symbolizer: &Symbolizer,
        builder: &mut ProfileBuilder,
    ) -> Vec<LocationId> {
        let _own = crate::allocator::own_work();
        resolved
            .iter()
            .map(|&l| self.location(l, 0, symbolizer, builder))
            .collect()
    }

    /// The profile's location ids of `frames` (from [`Symbolizer::frames`]) without their
    /// first `cut`: a location cut among its inlined functions keeps the rest of them.
    pub fn of_frames(
        &mut self,
        frames: &[(usize, usize)],
        cut: usize,
        symbolizer: &Symbolizer,
        builder: &mut ProfileBuilder,
    ) -> Vec<LocationId> {
        let _own = crate::allocator::own_work();
        let mut ids = Vec::with_capacity(frames.len().saturating_sub(cut));
        let mut k = cut;
        while let Some(&(l, first)) = frames.get(k) {
            ids.push(self.location(l, first, symbolizer, builder));
            k += symbolizer.location(l).depth() - first;
        }
        ids
    }

    /// Location `l` from its line `first` on (innermost first).
    fn location(
        &mut self,
        l: usize,
        first: usize,
        symbolizer: &Symbolizer,
        builder: &mut ProfileBuilder,
    ) -> LocationId {
        *self.0.entry((l, first)).or_insert_with(|| {
            let location = symbolizer.location(l);
            let frames = symbolizer.frames_at(l);
            let lines = &frames[first..];
            match &location.mapping {
                Some(mapping) => {
                    builder.mapped_location(mapping, location.address, lines, location.named)
                }
                None => builder.location(location.address, lines),
            }
        })
    }
}

/// The address → location cache. Get the process-wide one with [`symbolizer`].
#[derive(Default)]
pub struct Symbolizer {
    by_address: HashMap<usize, usize>,
    locations: Vec<Location>,
    names: Names,
    objects: Vec<LoadedObject>,
    /// Whether the current batch resolved a new address.
    new_in_batch: bool,
}

impl std::fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolizer")
            .field("locations", &self.locations.len())
            .field("objects", &self.objects.len())
            .finish()
    }
}

/// A program or shared library mapped into the process.
struct LoadedObject {
    /// Its file, if it has one (the vDSO has none).
    path: Option<PathBuf>,
    /// Its file name, for addresses nothing names.
    short_name: String,
    object: MappedObject,
    /// Its executable segments, as the profiles' mappings.
    mappings: Vec<Arc<Mapping>>,
    /// The file's symbols and DWARF (`None` without a file).
    debug_info: Option<DebugInfo>,
    /// The symbol table of its separate debug file, read when the file itself names nothing
    /// at an address: stripped system libraries keep only their exported names.
    debug_symbols: Option<Vec<DebugSymbol>>,
}

/// A function of a separate debug file's symbol table: start, size (file addresses), name.
type DebugSymbol = (u64, u64, Box<str>);

static SYMBOLIZER: LazyLock<Mutex<Symbolizer>> = LazyLock::new(Mutex::default);

/// The process-wide symbolizer, locked.
pub fn symbolizer() -> MutexGuard<'static, Symbolizer> {
    SYMBOLIZER.lock().unwrap_or_else(|e| e.into_inner())
}

impl Symbolizer {
    /// Symbolizes every address of `addresses` not seen before, all at once: each object
    /// and each unit of its debug info is read once for the lot. Call it with all the
    /// addresses of a window before [`resolve`](Self::resolve)ing its stacks.
    pub fn prepare(&mut self, addresses: impl IntoIterator<Item = usize>) {
        let _own = crate::allocator::own_work();
        let mut new: Vec<usize> = addresses
            .into_iter()
            .filter(|a| *a != 0 && !self.by_address.contains_key(a))
            .collect();
        if new.is_empty() {
            return;
        }
        new.sort_unstable();
        new.dedup();
        self.new_in_batch = true;
        // Objects in the order of the addresses: each object's addresses are contiguous.
        let mut next = 0;
        while next < new.len() {
            let address = new[next] as u64;
            let Some(object) = self.object_of(address) else {
                self.add(Found {
                    address,
                    frames: vec![Frame::new(format!("{address:#x}"))],
                    mapping: None,
                    named: false,
                });
                next += 1;
                continue;
            };
            let count = new[next..]
                .iter()
                .take_while(|&&a| object.object.contains(a as u64))
                .count();
            let addresses: Vec<u64> = new[next..next + count].iter().map(|&a| a as u64).collect();
            let locations = object.locations(&addresses);
            for location in locations {
                self.add(location);
            }
            next += count;
        }
    }

    fn add(&mut self, found: Found) {
        self.by_address
            .insert(found.address as usize, self.locations.len());
        self.locations.push(Location {
            address: found.address,
            lines: self.names.lines(&found.frames),
            mapping: found.mapping,
            named: found.named,
        });
    }

    /// The locations of a stack of instruction addresses (leaf first), as indexes for
    /// [`location`](Self::location). Zero addresses (some unwinders end stacks with one) are
    /// skipped.
    pub fn resolve(&mut self, addresses: &[usize]) -> Vec<usize> {
        self.prepare(addresses.iter().copied());
        addresses
            .iter()
            .filter(|&&a| a != 0)
            .map(|a| self.by_address[a])
            .collect()
    }

    /// A location resolved before.
    pub fn location(&self, index: usize) -> &Location {
        &self.locations[index]
    }

    /// The functions of location `index`, innermost first, as frames.
    pub fn frames_at(&self, index: usize) -> Vec<Frame<'_>> {
        self.locations[index]
            .lines
            .iter()
            .map(|line| self.names.frame(line))
            .collect()
    }

    /// The frames of a resolved stack, one per function, inlined ones included, leaf first:
    /// (location, line) indexes, for [`function`](Self::function) and
    /// [`ProfileLocations::of_frames`].
    pub fn frames(&self, resolved: &[usize]) -> Vec<(usize, usize)> {
        let _own = crate::allocator::own_work();
        resolved
            .iter()
            .flat_map(|&l| (0..self.locations[l].depth()).map(move |i| (l, i)))
            .collect()
    }

    /// The function of a frame from [`frames`](Self::frames).
    pub fn function(&self, (l, i): (usize, usize)) -> &str {
        self.names.get(self.locations[l].lines[i].function)
    }

    /// Ends a batch of [`resolve`](Self::resolve) calls (a collection): gives the memory
    /// its reading freed back to the system.
    pub fn end_batch(&mut self) {
        let _own = crate::allocator::own_work();
        if std::mem::take(&mut self.new_in_batch) {
            release_freed_memory();
        }
    }

    /// What the symbolizer keeps between windows.
    pub fn stats(&self) -> SymbolizerStats {
        let lines: usize = self.locations.iter().map(Location::depth).sum();
        let names: usize = self.names.all.iter().map(|n| n.len()).sum();
        let chain_lines: usize = self.names.chains.iter().map(|c| c.len()).sum();
        let location_bytes = self.locations.capacity() * std::mem::size_of::<Location>()
            + chain_lines * std::mem::size_of::<Line>()
            + self.names.chains.len() * (16 + 2 * 16)
            + self.by_address.capacity() * 2 * std::mem::size_of::<usize>();
        // Each name: its bytes, its `Arc` header, and its places in the list and the map.
        let name_bytes = names + self.names.all.len() * (16 + 16 + 2 * 16 + 4);
        SymbolizerStats {
            locations: self.locations.len(),
            frames: lines,
            names: self.names.all.len(),
            location_bytes: location_bytes + name_bytes,
            debug_info_bytes: self.index_bytes(),
        }
    }

    /// The bytes the objects' unit indexes hold (what stays resident of their debug info).
    pub fn index_bytes(&self) -> usize {
        self.objects
            .iter()
            .filter_map(|o| o.debug_info.as_ref())
            .map(DebugInfo::resident_bytes)
            .sum()
    }

    /// The object `address` lies in, reading the list of loaded objects again if none does
    /// (a library loaded since).
    fn object_of(&mut self, address: u64) -> Option<&mut LoadedObject> {
        let contains = |o: &LoadedObject| o.object.contains(address);
        if !self.objects.iter().any(contains) {
            self.objects = loaded_objects();
        }
        self.objects.iter_mut().find(|o| contains(o))
    }
}

impl LoadedObject {
    /// The locations of `addresses` (all in this object).
    fn locations(&mut self, addresses: &[u64]) -> Vec<Found> {
        let offsets: Vec<u64> = addresses
            .iter()
            .map(|a| a.wrapping_sub(self.object.bias))
            .collect();
        let names = self.names(&offsets);
        addresses
            .iter()
            .zip(offsets)
            .zip(names)
            .map(|((&address, offset), lines)| {
                let mapping = self
                    .mappings
                    .iter()
                    .find(|m| (m.memory_start..m.memory_limit).contains(&address))
                    .cloned();
                let (frames, named) = match lines {
                    Some(lines) => (lines, true),
                    None => {
                        let stand_in = format!("{}+{offset:#x}", self.short_name);
                        (vec![Frame::new(stand_in)], false)
                    }
                };
                Found {
                    address,
                    frames,
                    mapping,
                    named,
                }
            })
            .collect()
    }

    /// The functions at each of `offsets` (file addresses), innermost first, or `None` where
    /// nothing names it.
    fn names(&mut self, offsets: &[u64]) -> Vec<Option<Vec<Frame<'static>>>> {
        let Some(debug_info) = &mut self.debug_info else {
            return vec![None; offsets.len()];
        };
        // Return addresses point after the call: look up the call instruction itself. The
        // interrupted frame's address is exact, though, and may be a function's first
        // instruction: where `offset - 1` finds nothing, `offset` is tried.
        let before: Vec<u64> = offsets.iter().map(|o| o.saturating_sub(1)).collect();
        let mut found = debug_info.frames(&before);
        let missing: Vec<usize> = (0..offsets.len())
            .filter(|&i| found[i].is_empty())
            .collect();
        if !missing.is_empty() {
            let exact: Vec<u64> = missing.iter().map(|&i| offsets[i]).collect();
            for (i, lines) in missing.into_iter().zip(debug_info.frames(&exact)) {
                found[i] = lines;
            }
        }
        let path = self.path.as_deref();
        found
            .into_iter()
            .zip(offsets)
            .map(|(lines, &offset)| {
                if !lines.is_empty() {
                    return Some(lines);
                }
                let debug_symbols = self
                    .debug_symbols
                    .get_or_insert_with(|| path.map(debug_file_symbols).unwrap_or_default());
                let before = debug_symbols.partition_point(|s| s.0 <= offset);
                match before.checked_sub(1).map(|i| &debug_symbols[i]) {
                    Some((start, size, name)) if offset - start < *size => {
                        let demangled = addr2line::demangle_auto(Cow::Borrowed(&**name), None);
                        Some(vec![named(demangled.into_owned(), name.to_string())])
                    }
                    _ => None,
                }
            })
            .collect()
    }
}

/// The function symbols of the separate debug file of the object at `path`, found by its
/// build id under `/usr/lib/debug/.build-id` (Debian's `-dbg` packages), sorted by address.
/// Only the symbol table is read: the debug info itself is compressed, and decompressing it
/// is what costs backtrace-rs tens of MiB.
fn debug_file_symbols(path: &Path) -> Vec<DebugSymbol> {
    fn read(path: &Path) -> Option<Vec<DebugSymbol>> {
        let map = map_file(path)?;
        let build_id = object::File::parse(&*map).ok()?.build_id().ok()??;
        let (first, rest) = build_id.split_first()?;
        let hex: String = rest.iter().map(|b| format!("{b:02x}")).collect();
        let debug_path = format!("/usr/lib/debug/.build-id/{first:02x}/{hex}.debug");
        let debug_map = map_file(Path::new(&debug_path))?;
        let debug = object::File::parse(&*debug_map).ok()?;
        let mut symbols: Vec<DebugSymbol> = debug
            .symbols()
            .filter(|s| s.kind() == object::SymbolKind::Text && s.size() > 0)
            .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.into())))
            .collect();
        symbols.sort_unstable_by_key(|s| s.0);
        Some(symbols)
    }
    read(path).unwrap_or_default()
}

/// The objects mapped into the process now, each with its file.
fn loaded_objects() -> Vec<LoadedObject> {
    mapped_objects()
        .into_iter()
        .enumerate()
        .map(|(i, object)| {
            let path = object_path(i, &object);
            let short_name = path
                .as_deref()
                .and_then(Path::file_name)
                .map_or_else(|| object.name.clone(), |n| n.to_string_lossy().into_owned());
            let mappings = mappings(&object, path.as_deref()).map(Arc::new).collect();
            let debug_info = path.clone().map(DebugInfo::new);
            LoadedObject {
                path,
                short_name,
                object,
                mappings,
                debug_info,
                debug_symbols: None,
            }
        })
        .collect()
}

/// Gives freed heap memory back to the kernel: glibc keeps it mapped, and the parsed debug
/// info was tens of MiB of small blocks.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only returns free memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
