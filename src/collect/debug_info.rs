//! One object file's names for addresses, in bounded memory.
//!
//! Keeping an object's parsed debug info resident is what makes profilers heavy: for a
//! release build with full debug info, addr2line's `Loader` kept 40 MiB of parsed units and
//! 70 MiB of the file's DWARF mapped (about 100 MiB for a program of 124 MB), and grew
//! while new code kept appearing in the samples. Here, between calls, only this stays
//! resident:
//!
//! - an index of the compilation units: the address ranges each covers (as addr2line finds
//!   them: a unit's own `DW_AT_ranges` or low and high pc, else its `.debug_aranges`
//!   entries), merged, and where each unit starts;
//! - the tables of the units read most recently, up to [`TABLE_CACHE_BYTES`]: a unit's
//!   function ranges, its line program's sequences, and the rows of the sequences that held
//!   an address (the hot code), so that an address new in a unit read before needs only its
//!   own function's entries.
//!
//! Each call to [`DebugInfo::frames`] maps the file, reads just the units its addresses lie
//! in, one at a time, drops the pages each unit touched as soon as it is read (`madvise`),
//! and unmaps the file before it returns. In a unit, the function containing an address is
//! found in its table, and one walk of that function's entries finds the inlined calls
//! around it; the line table gives the innermost frame's file and line, each inlined call's
//! `DW_AT_call_file`/`DW_AT_call_line` its caller's. Names are the linkage name (else the
//! name) of the entry, following `DW_AT_abstract_origin` and `DW_AT_specification`, into
//! other units too (`DW_FORM_ref_addr`: thin-local LTO inlines across a crate's units). The
//! result is what addr2line gives (`tests/symbols.rs` holds it to binutils' `addr2line -f
//! -i -C`). Addresses no unit names get their symbol-table entry, found by one pass over the
//! table (no map of every symbol is kept).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use addr2line::gimli::{self, EndianSlice, RunTimeEndian, SectionId};
use object::{Object, ObjectSection, ObjectSymbol};

use crate::profile::Frame;

type Reader<'a> = EndianSlice<'a, RunTimeEndian>;

/// The addresses one compilation unit covers: file addresses `start..end`, the unit at
/// `unit` in `.debug_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct UnitRange {
    start: u64,
    end: u64,
    unit: usize,
}

/// An object file's symbolization data: its path and, once read, its unit index.
#[derive(Debug)]
pub struct DebugInfo {
    path: PathBuf,
    /// The units' ranges and starts; `None` until first needed, empty without DWARF.
    index: Option<UnitIndex>,
    /// The tables of the units read most recently.
    tables: TableCache,
}

/// Where the units of `.debug_info` are.
#[derive(Debug, Default)]
struct UnitIndex {
    /// The units' address ranges, sorted by start, adjacent ranges of one unit merged.
    ranges: Vec<UnitRange>,
    /// Every unit's offset in `.debug_info`, sorted: to find the unit a reference from
    /// another unit points into.
    starts: Vec<usize>,
}

impl UnitIndex {
    /// The unit containing the entry at `offset` of `.debug_info`.
    fn unit_containing(&self, offset: usize) -> Option<usize> {
        let after = self.starts.partition_point(|&s| s <= offset);
        after.checked_sub(1).map(|i| self.starts[i])
    }
}

/// A function of a unit: the addresses `begin..end` of one of its ranges, and its entry.
#[derive(Clone, Copy, Debug)]
struct FunctionRange {
    begin: u64,
    end: u64,
    entry: gimli::UnitOffset,
}

/// A row of a unit's line table: from `address` on, `file` (an index in the line program's
/// file table) and `line`.
#[derive(Clone, Copy, Debug)]
struct Row {
    address: u64,
    file: u32,
    line: u32,
}

/// A sequence of a unit's line program (a run of contiguous addresses, usually one
/// function's): its addresses, and its rows once a lookup has needed them.
#[derive(Debug)]
struct Sequence {
    start: u64,
    end: u64,
    rows: Option<Box<[Row]>>,
}

/// What a unit's entries and line program say, in a form looked up directly: its functions
/// sorted by start, and its line program's sequences sorted by start, with the rows of those
/// that held an address looked up (the hot ones; a cold one is read again when needed).
#[derive(Debug)]
struct UnitTables {
    functions: Vec<FunctionRange>,
    sequences: Vec<Sequence>,
}

impl UnitTables {
    fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.functions)
            + std::mem::size_of_val(&*self.sequences)
            + self
                .sequences
                .iter()
                .filter_map(|s| s.rows.as_deref())
                .map(std::mem::size_of_val)
                .sum::<usize>()
    }

    /// The sequence holding `probe`.
    fn sequence_of(&self, probe: u64) -> Option<usize> {
        let after = self.sequences.partition_point(|s| s.start <= probe);
        let i = after.checked_sub(1)?;
        (probe < self.sequences[i].end).then_some(i)
    }

    /// The file and line at `probe`, if its sequence's rows are read: the last row at or
    /// before it (of several at one address, the last).
    fn row_at(&self, probe: u64) -> Option<(u64, u32)> {
        let rows = self.sequences[self.sequence_of(probe)?].rows.as_deref()?;
        let after = rows.partition_point(|r| r.address <= probe);
        let row = rows[..after].last()?;
        Some((u64::from(row.file), row.line))
    }
}

/// The tables of recently read units, at most [`TABLE_CACHE_BYTES`] of them: an address new
/// in a unit read before needs only its function's entries (and, in a sequence not read
/// before, one run of the unit's line program), not a walk of the whole unit.
#[derive(Debug, Default)]
struct TableCache {
    /// Unit offset → its tables, least recently used first.
    units: Vec<(usize, UnitTables)>,
}

/// The most the table cache holds, per object.
pub const TABLE_CACHE_BYTES: usize = 2 << 20;

impl TableCache {
    /// The tables of `unit`, now the most recently used, made by `make` if not kept.
    fn get_or_make(
        &mut self,
        unit: usize,
        make: impl FnOnce() -> gimli::Result<UnitTables>,
    ) -> gimli::Result<&mut UnitTables> {
        let entry = match self.units.iter().position(|(u, _)| *u == unit) {
            Some(at) => self.units.remove(at),
            None => (unit, make()?),
        };
        self.units.push(entry);
        Ok(&mut self.units.last_mut().expect("just pushed").1)
    }

    /// Forgets the least recently used units beyond [`TABLE_CACHE_BYTES`] (the most recent
    /// one stays).
    fn trim(&mut self) {
        let mut bytes: usize = self.units.iter().map(|(_, t)| t.bytes()).sum();
        while bytes > TABLE_CACHE_BYTES && self.units.len() > 1 {
            let (_, evicted) = self.units.remove(0);
            bytes -= evicted.bytes();
        }
    }

    fn bytes(&self) -> usize {
        self.units.iter().map(|(_, t)| t.bytes()).sum()
    }
}

impl DebugInfo {
    /// The debug info of the file at `path` (nothing is read yet).
    pub fn new(path: PathBuf) -> Self {
        DebugInfo {
            path,
            index: None,
            tables: TableCache::default(),
        }
    }

    /// The bytes the unit index holds: what stays resident between calls.
    pub fn resident_bytes(&self) -> usize {
        let index = self.index.as_ref().map_or(0, |index| {
            index.ranges.capacity() * std::mem::size_of::<UnitRange>()
                + index.starts.capacity() * std::mem::size_of::<usize>()
        });
        index + self.tables.bytes()
    }

    /// The functions at each of `probes` (file addresses), innermost (inlined) first, from
    /// DWARF with file and line, else from the symbol table; empty where nothing names the
    /// address. The file is mapped for this call only.
    pub fn frames(&mut self, probes: &[u64]) -> Vec<Vec<Frame<'static>>> {
        let _own = crate::allocator::own_work();
        let mut found = vec![Vec::new(); probes.len()];
        let Some(map) = map_file(&self.path) else {
            return found;
        };
        let Ok(file) = object::File::parse(&*map) else {
            return found;
        };
        let sections = Sections::read(&file);
        let dwarf = sections.dwarf();
        // The pages of the file a unit touched are dropped as soon as it is read: only one
        // unit's are ever resident.
        let release = || release_pages(&map);
        let index = self
            .index
            .get_or_insert_with(|| unit_index(&dwarf, &release));
        let mut plain_names = Vec::new();
        // Units in file order, each read once, with its addresses in address order.
        let mut order: Vec<(usize, u64, usize)> = probes
            .iter()
            .enumerate()
            .filter_map(|(i, &probe)| unit_of(&index.ranges, probe).map(|unit| (unit, probe, i)))
            .collect();
        order.sort_unstable();
        for group in order.chunk_by(|a, b| a.0 == b.0) {
            let unit = group[0].0;
            let in_unit: Vec<(u64, usize)> = group.iter().map(|&(_, p, i)| (p, i)).collect();
            let _ = UnitReader::new(&dwarf, index, unit).and_then(|reader| {
                let tables = self.tables.get_or_make(unit, || reader.tables(&in_unit))?;
                reader.read_rows(tables, &in_unit)?;
                reader.frames(tables, &in_unit, &mut found, &mut plain_names)
            });
            release();
        }
        self.tables.trim();
        // A function with a plain name only takes its symbol's full path (binutils does the
        // same), keeping DWARF's file and line.
        if !plain_names.is_empty() {
            let symbols = symbol_names(
                &file,
                &plain_names.iter().map(|&i| probes[i]).collect::<Vec<_>>(),
            );
            for (i, symbol) in plain_names.into_iter().zip(symbols) {
                if let (Some(symbol), Some(outermost)) = (symbol, found[i].last_mut()) {
                    outermost.function = symbol.function;
                    outermost.system_name = symbol.system_name;
                }
            }
        }
        let unnamed: Vec<usize> = (0..probes.len()).filter(|&i| found[i].is_empty()).collect();
        if !unnamed.is_empty() {
            let names = symbol_names(
                &file,
                &unnamed.iter().map(|&i| probes[i]).collect::<Vec<_>>(),
            );
            for (i, name) in unnamed.into_iter().zip(names) {
                if let Some(name) = name {
                    found[i] = vec![name];
                }
            }
        }
        found
    }
}

/// The DWARF sections of a mapped file (decompressed when the file compresses them).
struct Sections<'a> {
    endian: RunTimeEndian,
    data: Vec<(SectionId, Cow<'a, [u8]>)>,
}

impl<'a> Sections<'a> {
    fn read(file: &object::File<'a>) -> Self {
        let endian = if file.is_little_endian() {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        let data = [
            SectionId::DebugAbbrev,
            SectionId::DebugAddr,
            SectionId::DebugAranges,
            SectionId::DebugInfo,
            SectionId::DebugLine,
            SectionId::DebugLineStr,
            SectionId::DebugRanges,
            SectionId::DebugRngLists,
            SectionId::DebugStr,
            SectionId::DebugStrOffsets,
        ]
        .into_iter()
        .map(|id| {
            let bytes = file
                .section_by_name(id.name())
                .and_then(|s| s.uncompressed_data().ok())
                .unwrap_or(Cow::Borrowed(&[]));
            (id, bytes)
        })
        .collect();
        Sections { endian, data }
    }

    /// The sections as gimli reads them.
    fn dwarf(&self) -> gimli::Dwarf<Reader<'_>> {
        let dwarf: Result<_, ()> = gimli::Dwarf::load(|id| {
            let bytes = self
                .data
                .iter()
                .find(|(i, _)| *i == id)
                .map_or(&[][..], |(_, d)| d);
            Ok(EndianSlice::new(bytes, self.endian))
        });
        dwarf.expect("loading sections from memory cannot fail")
    }
}

type Unit<'a> = gimli::Unit<Reader<'a>>;

/// A function's name as an entry gives it, and whether it is the linkage name (the full
/// path) rather than the plain name (its last component).
struct Name<'a> {
    text: Reader<'a>,
    linkage: bool,
}

/// A file and line (0 when unknown), as a frame shows them.
type Place = (Option<String>, u32);

/// One unit, read to name the addresses it covers.
struct UnitReader<'d, 'a> {
    dwarf: &'d gimli::Dwarf<Reader<'a>>,
    index: &'d UnitIndex,
    unit: Unit<'a>,
    /// The unit's language, for demangling.
    language: Option<gimli::DwLang>,
    /// Other units that names were looked up in, by offset.
    others: RefCell<HashMap<usize, Rc<Unit<'a>>>>,
}

/// A function or inlined call containing an address: its entry and its depth in the unit's
/// tree of entries.
#[derive(Clone, Copy)]
struct Containing {
    entry: gimli::UnitOffset,
    depth: isize,
}

impl<'d, 'a> UnitReader<'d, 'a> {
    fn new(
        dwarf: &'d gimli::Dwarf<Reader<'a>>,
        index: &'d UnitIndex,
        offset: usize,
    ) -> gimli::Result<Self> {
        let header = dwarf
            .debug_info
            .header_from_offset(gimli::DebugInfoOffset(offset))?;
        let unit = dwarf.unit(header)?;
        let mut entries = unit.entries();
        let language = match entries.next_dfs()? {
            Some(root) => match root.attr_value(gimli::DW_AT_language) {
                Some(gimli::AttributeValue::Language(language)) => Some(language),
                _ => None,
            },
            None => None,
        };
        Ok(UnitReader {
            dwarf,
            index,
            unit,
            language,
            others: RefCell::default(),
        })
    }

    /// Fills `found[i]` with the frames at each `(probe, i)` (sorted by probe), innermost
    /// first: the deepest inlined call at the line the line program gives, each caller at
    /// the line it made the call from.
    ///
    /// The `i` of a probe whose function (the outermost frame) has only a plain name is
    /// added to `plain_names`: its symbol gives the full path.
    fn frames(
        &self,
        tables: &UnitTables,
        probes: &[(u64, usize)],
        found: &mut [Vec<Frame<'static>>],
        plain_names: &mut Vec<usize>,
    ) -> gimli::Result<()> {
        let chains = self.containing(&tables.functions, probes);
        let header = self.unit.line_program.as_ref().map(|p| p.header());
        let mut lines: Vec<Option<Place>> = probes
            .iter()
            .map(|&(p, _)| {
                let (file, line) = tables.row_at(p)?;
                Some((header.and_then(|h| self.file(h, file)), line))
            })
            .collect();
        for (k, &(_, i)) in probes.iter().enumerate() {
            let chain = &chains[k];
            let mut frames = Vec::with_capacity(chain.len());
            for (j, link) in chain.iter().enumerate().rev() {
                let place = match chain.get(j + 1) {
                    None => lines[k].take(),
                    Some(inner) => Some(self.call_site(inner.entry)?),
                };
                let Some(name) = self.name(&self.unit, link.entry, 16)? else {
                    continue;
                };
                if j == 0 && !name.linkage {
                    plain_names.push(i);
                }
                let raw = name.text.to_string_lossy().into_owned();
                let demangled =
                    addr2line::demangle_auto(Cow::Borrowed(&raw), self.language).into_owned();
                let mut frame = named(demangled, raw);
                if let Some((file, line)) = place {
                    if let Some(file) = file {
                        frame = frame.file(file);
                    }
                    frame = frame.line(line);
                }
                frames.push(frame);
            }
            found[i] = frames;
        }
        Ok(())
    }

    /// The unit's tables: one walk of its entries (an entry whose ranges cannot be read has
    /// none), one run of its line program keeping the rows of the sequences holding
    /// `probes`.
    fn tables(&self, probes: &[(u64, usize)]) -> gimli::Result<UnitTables> {
        let mut functions = Vec::new();
        let unit = self.unit.unit_ref(self.dwarf);
        let mut entries = unit.entries();
        while let Ok(Some(entry)) = entries.next_dfs() {
            if entry.tag() != gimli::DW_TAG_subprogram {
                continue;
            }
            let Ok(mut ranges) = unit.die_ranges(entry) else {
                continue;
            };
            while let Ok(Some(range)) = ranges.next() {
                if range.end > range.begin {
                    functions.push(FunctionRange {
                        begin: range.begin,
                        end: range.end,
                        entry: entry.offset(),
                    });
                }
            }
        }
        functions.sort_unstable_by_key(|f| (f.begin, f.end));
        functions.shrink_to_fit();
        let mut tables = UnitTables {
            functions,
            sequences: Vec::new(),
        };
        self.run_line_program(&mut tables, probes)?;
        Ok(tables)
    }

    /// Reads the rows of the sequences holding `probes` that are not read yet: one run of
    /// the line program, if any is missing.
    fn read_rows(&self, tables: &mut UnitTables, probes: &[(u64, usize)]) -> gimli::Result<()> {
        let missing = probes.iter().any(|&(p, _)| {
            tables
                .sequence_of(p)
                .is_some_and(|s| tables.sequences[s].rows.is_none())
        });
        if missing {
            self.run_line_program(tables, probes)?;
        }
        Ok(())
    }

    /// Runs the unit's line program: lists its sequences (the first time), and keeps the
    /// rows of those holding one of `probes`.
    fn run_line_program(
        &self,
        tables: &mut UnitTables,
        probes: &[(u64, usize)],
    ) -> gimli::Result<()> {
        let Some(program) = self.unit.line_program.clone() else {
            return Ok(());
        };
        let listing = tables.sequences.is_empty();
        let holds_probe = |start: u64, end: u64| {
            let first = probes.partition_point(|&(p, _)| p < start);
            probes.get(first).is_some_and(|&(p, _)| p < end)
        };
        let mut rows = program.rows();
        let mut current: Vec<Row> = Vec::new();
        while let Some((_, row)) = rows.next_row()? {
            if !row.end_sequence() {
                current.push(Row {
                    address: row.address(),
                    file: u32::try_from(row.file_index()).unwrap_or(u32::MAX),
                    line: row.line().map_or(0, |l| l.get() as u32),
                });
                continue;
            }
            let Some(start) = current.first().map(|r| r.address) else {
                continue;
            };
            let end = row.address();
            let keep = holds_probe(start, end).then(|| std::mem::take(&mut current).into());
            if listing {
                tables.sequences.push(Sequence {
                    start,
                    end,
                    rows: keep,
                });
            } else if let Some(rows) = keep {
                let after = tables.sequences.partition_point(|s| s.start <= start);
                if let Some(sequence) = after.checked_sub(1).map(|i| &mut tables.sequences[i])
                    && sequence.start == start
                    && sequence.rows.is_none()
                {
                    sequence.rows = Some(rows);
                }
            }
            current.clear();
        }
        if listing {
            tables.sequences.sort_unstable_by_key(|s| s.start);
            tables.sequences.shrink_to_fit();
        }
        Ok(())
    }

    /// For each probe, the function and the inlined calls containing it, outermost first:
    /// for each function holding probes, one walk of its own entries.
    fn containing(
        &self,
        functions: &[FunctionRange],
        probes: &[(u64, usize)],
    ) -> Vec<Vec<Containing>> {
        let mut chains = vec![Vec::new(); probes.len()];
        // The innermost function containing each probe (nested functions are rare: of the
        // few ranges starting before it, the narrowest that contains it).
        let mut by_function: Vec<(gimli::UnitOffset, usize)> = probes
            .iter()
            .enumerate()
            .filter_map(|(k, &(p, _))| {
                let after = functions.partition_point(|f| f.begin <= p);
                functions[..after]
                    .iter()
                    .rev()
                    .take(8)
                    .filter(|f| p < f.end)
                    .min_by_key(|f| f.end - f.begin)
                    .map(|f| (f.entry, k))
            })
            .collect();
        by_function.sort_unstable();
        let unit = self.unit.unit_ref(self.dwarf);
        for group in by_function.chunk_by(|a, b| a.0 == b.0) {
            let function = group[0].0;
            for &(_, k) in group {
                chains[k].push(Containing {
                    entry: function,
                    depth: 0,
                });
            }
            let Ok(mut entries) = unit.entries_at_offset(function) else {
                continue;
            };
            // The function itself, then its descendants (depth > 0) until the walk leaves it.
            let _ = entries.next_dfs();
            while let Ok(Some(entry)) = entries.next_dfs() {
                let depth = entry.depth();
                if depth <= 0 {
                    break;
                }
                if entry.tag() != gimli::DW_TAG_inlined_subroutine {
                    continue;
                }
                let Ok(mut ranges) = unit.die_ranges(entry) else {
                    continue;
                };
                while let Ok(Some(range)) = ranges.next() {
                    for &(_, k) in group {
                        let p = probes[k].0;
                        if range.begin <= p && p < range.end {
                            let chain = &mut chains[k];
                            chain.retain(|c: &Containing| c.depth < depth);
                            chain.push(Containing {
                                entry: entry.offset(),
                                depth,
                            });
                        }
                    }
                }
            }
        }
        chains
    }

    /// Where the inlined call at `entry` was made from.
    fn call_site(&self, entry: gimli::UnitOffset) -> gimli::Result<Place> {
        let entry = self.unit.entry(entry)?;
        let line = entry
            .attr_value(gimli::DW_AT_call_line)
            .and_then(|v| v.udata_value())
            .unwrap_or(0) as u32;
        // DWARF 5 numbers files from 0; before, 0 meant none.
        let file = match entry.attr_value(gimli::DW_AT_call_file) {
            Some(gimli::AttributeValue::FileIndex(index))
                if index > 0 || self.unit.header.version() >= 5 =>
            {
                self.unit
                    .line_program
                    .as_ref()
                    .and_then(|program| self.file(program.header(), index))
            }
            _ => None,
        };
        Ok((file, line))
    }

    /// The path of file `index` of the line program, as addr2line writes it: the unit's
    /// directory, the file's directory, its name.
    fn file(&self, header: &gimli::LineProgramHeader<Reader<'a>>, index: u64) -> Option<String> {
        let file = header.file(index)?;
        let text = |value| -> Option<String> {
            let text = self.dwarf.attr_string(&self.unit, value).ok()?;
            Some(text.to_string_lossy().into_owned())
        };
        let mut path = match &self.unit.comp_dir {
            Some(dir) => dir.to_string_lossy().into_owned(),
            None => String::new(),
        };
        // Directory 0 is the unit's own.
        if file.directory_index() != 0
            && let Some(directory) = file.directory(header)
        {
            path_push(&mut path, &text(directory)?);
        }
        path_push(&mut path, &text(file.path_name())?);
        Some(path)
    }

    /// The name of the function at `entry` of `unit`: its linkage name (the full path), else
    /// its name (without its module path: what `line-tables-only` debug info has), else
    /// that of the entry it is an instance or the definition of (in this unit or another),
    /// at most `limit` references deep.
    fn name(
        &self,
        unit: &Unit<'a>,
        entry: gimli::UnitOffset,
        limit: usize,
    ) -> gimli::Result<Option<Name<'a>>> {
        let die = unit.entry(entry)?;
        let mut name = None;
        let mut next = None;
        for attribute in die.attrs() {
            match attribute.name() {
                gimli::DW_AT_linkage_name | gimli::DW_AT_MIPS_linkage_name => {
                    if let Ok(linkage) = self.dwarf.attr_string(unit, attribute.value()) {
                        return Ok(Some(Name {
                            text: linkage,
                            linkage: true,
                        }));
                    }
                }
                gimli::DW_AT_name => {
                    name = self
                        .dwarf
                        .attr_string(unit, attribute.value())
                        .ok()
                        .map(|text| Name {
                            text,
                            linkage: false,
                        });
                }
                gimli::DW_AT_abstract_origin | gimli::DW_AT_specification => {
                    next = Some(attribute.value());
                }
                _ => {}
            }
        }
        if name.is_some() || limit == 0 {
            return Ok(name);
        }
        match next {
            Some(gimli::AttributeValue::UnitRef(offset)) => self.name(unit, offset, limit - 1),
            Some(gimli::AttributeValue::DebugInfoRef(offset)) => {
                let Some(start) = self.index.unit_containing(offset.0) else {
                    return Ok(None);
                };
                let other = self.other_unit(start)?;
                let Some(within) = offset.to_unit_offset(&other.header) else {
                    return Ok(None);
                };
                self.name(&other, within, limit - 1)
            }
            _ => Ok(None),
        }
    }

    /// The unit at `offset` of `.debug_info`, read once per reader.
    fn other_unit(&self, offset: usize) -> gimli::Result<Rc<Unit<'a>>> {
        if let Some(unit) = self.others.borrow().get(&offset) {
            return Ok(Rc::clone(unit));
        }
        let header = self
            .dwarf
            .debug_info
            .header_from_offset(gimli::DebugInfoOffset(offset))?;
        let unit = Rc::new(self.dwarf.unit(header)?);
        self.others.borrow_mut().insert(offset, Rc::clone(&unit));
        Ok(unit)
    }
}

/// Appends `component` to `path` (replacing it when absolute), as addr2line does.
fn path_push(path: &mut String, component: &str) {
    if component.starts_with('/') {
        *path = component.to_owned();
    } else {
        if !path.is_empty() && !path.ends_with('/') {
            path.push('/');
        }
        path.push_str(component);
    }
}

/// The units' ranges, as addr2line finds them: each unit's own ranges (`DW_AT_ranges`, or
/// its low and high pc), else its `.debug_aranges` entries; sorted, and adjacent ranges of
/// one unit merged. `release` drops the file's pages read so far.
fn unit_index(dwarf: &gimli::Dwarf<Reader<'_>>, release: &dyn Fn()) -> UnitIndex {
    let mut aranges: HashMap<usize, Vec<(u64, u64)>> = HashMap::new();
    let mut sets = dwarf.debug_aranges.headers();
    while let Ok(Some(set)) = sets.next() {
        let mut entries = set.entries();
        while let Ok(Some(entry)) = entries.next() {
            if entry.length() > 0 {
                let range = entry.range();
                aranges
                    .entry(set.debug_info_offset().0)
                    .or_default()
                    .push((range.begin, range.end));
            }
        }
    }
    release();
    let mut ranges = Vec::new();
    let mut starts = Vec::new();
    let mut headers = dwarf.units();
    let mut read = 0usize;
    while let Ok(Some(header)) = headers.next() {
        read += 1;
        if read.is_multiple_of(16) {
            release();
        }
        let Some(offset) = header.debug_info_offset() else {
            continue;
        };
        starts.push(offset.0);
        let before = ranges.len();
        if let Ok(unit) = dwarf.unit(header)
            && let Ok(mut unit_ranges) = dwarf.unit_ranges(&unit)
        {
            while let Ok(Some(range)) = unit_ranges.next() {
                if range.end > range.begin {
                    ranges.push(UnitRange {
                        start: range.begin,
                        end: range.end,
                        unit: offset.0,
                    });
                }
            }
        }
        if ranges.len() == before {
            let listed = aranges.get(&offset.0).map_or(&[][..], Vec::as_slice);
            ranges.extend(listed.iter().map(|&(start, end)| UnitRange {
                start,
                end,
                unit: offset.0,
            }));
        }
    }
    release();
    ranges.sort_unstable_by_key(|r| (r.start, r.end));
    let mut merged: Vec<UnitRange> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if last.unit == range.unit && range.start <= last.end => {
                last.end = last.end.max(range.end);
            }
            _ => merged.push(range),
        }
    }
    merged.shrink_to_fit();
    starts.shrink_to_fit();
    UnitIndex {
        ranges: merged,
        starts,
    }
}

/// The unit covering `probe`, if any (the last range starting at or before it).
fn unit_of(units: &[UnitRange], probe: u64) -> Option<usize> {
    let after = units.partition_point(|r| r.start <= probe);
    // Ranges may overlap (a unit's range can contain another's): look back a little.
    units[..after]
        .iter()
        .rev()
        .take(8)
        .find(|r| probe < r.end)
        .map(|r| r.unit)
}

/// The function symbol containing each of `probes`, from the symbol table (or the dynamic
/// one when the file has no other), in one pass over it.
fn symbol_names(file: &object::File<'_>, probes: &[u64]) -> Vec<Option<Frame<'static>>> {
    let mut sorted: Vec<(u64, usize)> = probes.iter().copied().zip(0..).collect();
    sorted.sort_unstable();
    // Per probe: the best symbol so far (the closest start), as (start, symbol index).
    let mut best: Vec<Option<(u64, object::SymbolIndex)>> = vec![None; probes.len()];
    let symbols: Box<dyn Iterator<Item = object::Symbol<'_, '_>>> =
        if file.symbols().next().is_some() {
            Box::new(file.symbols())
        } else {
            Box::new(file.dynamic_symbols())
        };
    for symbol in symbols {
        if symbol.kind() != object::SymbolKind::Text || symbol.is_undefined() {
            continue;
        }
        let start = symbol.address();
        let end = start.saturating_add(symbol.size().max(1));
        let first = sorted.partition_point(|&(p, _)| p < start);
        for &(probe, i) in sorted[first..].iter().take_while(|&&(p, _)| p < end) {
            debug_assert!(probe >= start);
            if best[i].is_none_or(|(s, _)| start > s) {
                best[i] = Some((start, symbol.index()));
            }
        }
    }
    best.into_iter()
        .map(|found| {
            let (_, index) = found?;
            let symbol = file.symbol_by_index(index).ok()?;
            let raw = symbol.name().ok()?;
            let demangled = addr2line::demangle_auto(Cow::Borrowed(raw), None).into_owned();
            Some(named(demangled, raw.to_owned()))
        })
        .collect()
}

/// A frame named `name`, with the binary's own spelling when it differs.
pub fn named(name: String, system_name: String) -> Frame<'static> {
    let frame = Frame::new(name);
    if system_name.is_empty() || system_name == frame.function {
        frame
    } else {
        frame.system_name(system_name)
    }
}

/// Drops the pages of `map` from the process's resident memory (they stay in the page
/// cache, and are read again from it if touched again).
fn release_pages(map: &memmap2::Mmap) {
    // SAFETY: a read-only private file mapping: dropping its pages loses nothing, a later
    // read faults them back in from the file.
    let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
}

/// The file at `path`, mapped read-only.
pub fn map_file(path: &Path) -> Option<memmap2::Mmap> {
    let file = std::fs::File::open(path).ok()?;
    // SAFETY: the mapping is read-only and dropped before the caller returns; a file changed
    // underneath would give wrong names, not unsafety in the parsers (they bounds-check).
    unsafe { memmap2::Mmap::map(&file) }.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_is_found_by_the_range_that_contains_the_address() {
        let units = vec![
            UnitRange {
                start: 0x100,
                end: 0x200,
                unit: 1,
            },
            UnitRange {
                start: 0x200,
                end: 0x280,
                unit: 2,
            },
            UnitRange {
                start: 0x300,
                end: 0x400,
                unit: 3,
            },
        ];
        assert_eq!(unit_of(&units, 0xff), None);
        assert_eq!(unit_of(&units, 0x100), Some(1));
        assert_eq!(unit_of(&units, 0x1ff), Some(1));
        assert_eq!(unit_of(&units, 0x200), Some(2));
        assert_eq!(unit_of(&units, 0x2a0), None);
        assert_eq!(unit_of(&units, 0x3ff), Some(3));
        assert_eq!(unit_of(&units, 0x400), None);
    }

    /// The symbolizer's own frames, through the index and a unit's slice, equal what
    /// addr2line reads from the whole file.
    #[test]
    fn frames_equal_addr2line_on_the_whole_file() {
        let exe = std::env::current_exe().unwrap();
        let bias = crate::unwind::objects::mapped_objects()[0].bias;
        let loader = addr2line::Loader::new(&exe).unwrap();
        let probe =
            (frames_equal_addr2line_on_the_whole_file as *const () as usize as u64) - bias + 4;
        let mut info = DebugInfo::new(exe);
        let ours = info.frames(&[probe]).remove(0);
        assert!(info.resident_bytes() > 0);
        let mut theirs = Vec::new();
        let mut frames = loader.find_frames(probe).unwrap();
        while let Some(frame) = frames.next().unwrap() {
            let function = frame.function.unwrap();
            theirs.push((
                function.demangle().unwrap().into_owned(),
                frame.location.and_then(|l| l.line),
            ));
        }
        let ours: Vec<_> = ours
            .iter()
            .map(|f| (f.function.to_string(), f.line))
            .collect();
        assert!(!ours.is_empty());
        assert_eq!(ours, theirs);
    }
}
