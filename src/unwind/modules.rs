//! The module list: each loaded object's code and unwind sections (`.eh_frame_hdr`,
//! `.eh_frame`), read inside `dl_iterate_phdr`'s callback and copied where the object can be
//! unloaded.

use std::ops::Deref;

use framehop::{
    ExplicitModuleSectionInfo, Module, MustNotAllocateDuringUnwind, Unwinder, UnwinderNative,
};

use super::objects::{each_object, object_name, program_headers};

/// The most bytes of unwind sections copied from shared libraries, all lists together.
pub const COPY_LIMIT: usize = 16 << 20;

/// A loaded object's unwind section: its own mapped memory (the program, the vDSO: never
/// unmapped) or a copy (libraries, which `dlclose` can unmap).
pub(super) enum Section {
    Mapped(&'static [u8]),
    Copied(Box<[u8]>),
}

impl Deref for Section {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Section::Mapped(bytes) => bytes,
            Section::Copied(bytes) => bytes,
        }
    }
}

/// One immutable list of the loaded objects, as the hot paths read it.
pub(super) struct Modules {
    pub(super) unwinder: UnwinderNative<Section, MustNotAllocateDuringUnwind>,
    /// The objects' code, sorted, [start, end): where a walk may go on.
    code: Box<[(u64, u64)]>,
    /// Bytes copied into this list.
    pub(super) copied: usize,
}

impl Modules {
    pub(super) fn knows(&self, address: u64) -> bool {
        let i = self.code.partition_point(|&(start, _)| start <= address);
        i > 0 && address < self.code[i - 1].1
    }
}

/// `dl_iterate_phdr`'s counts of objects loaded and unloaded so far.
pub(super) fn loader_generation() -> Option<(u64, u64)> {
    let mut generation = None;
    each_object(|info| {
        generation = Some((info.dlpi_adds, info.dlpi_subs));
        false
    });
    generation
}

/// One object's unwind data, as found by `dl_iterate_phdr`.
struct Found {
    name: String,
    bias: u64,
    code: (u64, u64),
    /// `.eh_frame_hdr`, runtime address and size.
    hdr: (u64, u64),
    /// The loaded segment holding `.eh_frame`, [start, end) runtime addresses.
    segments: Vec<(u64, u64)>,
    first: bool,
}

/// One object ready for the unwinder: its unwind sections taken (copied where the object
/// can be unloaded) while `dl_iterate_phdr` held the loader's lock, so no `dlclose` can
/// unmap them while they are read.
struct Taken {
    found: Found,
    hdr: Section,
    eh_frame: Section,
    eh_frame_address: u64,
}

/// What [`build`]'s `dl_iterate_phdr` callback fills.
struct Taking {
    objects: Vec<Taken>,
    /// Bytes that may still be copied.
    budget: usize,
    copied: usize,
}

/// Reads one object's unwind sections, inside [`each_object`] (the object stays loaded).
fn take(info: &libc::dl_phdr_info, taking: &mut Taking) {
    let headers = program_headers(info);
    let bias = info.dlpi_addr;
    let mut code: Option<(u64, u64)> = None;
    let mut hdr = None;
    let mut segments = Vec::new();
    for h in headers {
        let start = bias.wrapping_add(h.p_vaddr);
        let end = start.wrapping_add(h.p_memsz);
        if h.p_type == libc::PT_LOAD {
            segments.push((start, start.wrapping_add(h.p_filesz)));
            if h.p_flags & libc::PF_X != 0 {
                code = Some(code.map_or((start, end), |(s, e)| (s.min(start), e.max(end))));
            }
        } else if h.p_type == libc::PT_GNU_EH_FRAME {
            hdr = Some((start, h.p_memsz));
        }
    }
    let name = object_name(info);
    let (Some(code), Some(hdr)) = (code, hdr) else {
        return;
    };
    let found = Found {
        first: taking.objects.is_empty() && name.is_empty(),
        name,
        bias,
        code,
        hdr,
        segments,
    };
    // SAFETY: the object is loaded, and stays so during the callback.
    let Some((hdr, eh_frame, eh_frame_address)) = (unsafe { sections(&found) }) else {
        return;
    };
    // The program is never unmapped, nor is the vDSO; anything else may be (dlclose).
    let copy = !(found.first || found.name.contains("linux-vdso"));
    let (hdr, eh_frame) = if copy {
        let size = hdr.len() + eh_frame.len();
        if size > taking.budget {
            return;
        }
        taking.budget -= size;
        taking.copied += size;
        (
            Section::Copied(hdr.into()),
            Section::Copied(eh_frame.into()),
        )
    } else {
        (Section::Mapped(hdr), Section::Mapped(eh_frame))
    };
    taking.objects.push(Taken {
        found,
        hdr,
        eh_frame,
        eh_frame_address,
    });
}

/// A new list of the objects loaded now, copying at most `copy_budget` bytes.
pub(super) fn build(copy_budget: usize) -> Modules {
    let mut taking = Taking {
        objects: Vec::new(),
        budget: copy_budget,
        copied: 0,
    };
    each_object(|info| {
        take(info, &mut taking);
        true
    });

    let mut unwinder = UnwinderNative::new();
    let mut code = Vec::new();
    for Taken {
        found: object,
        hdr,
        eh_frame,
        eh_frame_address,
    } in taking.objects
    {
        let svma = |avma: u64, len: usize| avma - object.bias..avma - object.bias + len as u64;
        let info = ExplicitModuleSectionInfo {
            base_svma: 0,
            text_svma: Some(object.code.0 - object.bias..object.code.1 - object.bias),
            eh_frame_svma: Some(svma(eh_frame_address, eh_frame.len())),
            eh_frame_hdr_svma: Some(svma(object.hdr.0, hdr.len())),
            eh_frame_hdr: Some(hdr),
            eh_frame: Some(eh_frame),
            text: None,
            stubs_svma: None,
            stub_helper_svma: None,
            got_svma: None,
            unwind_info: None,
            debug_frame: None,
            text_segment_svma: None,
            text_segment: None,
        };
        unwinder.add_module(Module::new(
            object.name,
            object.code.0..object.code.1,
            object.bias,
            info,
        ));
        code.push(object.code);
    }
    code.sort_unstable();
    Modules {
        unwinder,
        code: code.into_boxed_slice(),
        copied: taking.copied,
    }
}

/// An object's `.eh_frame_hdr` and `.eh_frame` in memory, and the latter's address. The
/// `.eh_frame` is found through the header's pointer and measured by walking its entries up
/// to the zero terminator, within its loaded segment.
///
/// # Safety
/// `object` is being reported by `dl_iterate_phdr` (inside its callback), so it stays loaded.
unsafe fn sections(object: &Found) -> Option<(&'static [u8], &'static [u8], u64)> {
    let (hdr_address, hdr_len) = object.hdr;
    let within = |address: u64, len: u64| {
        object
            .segments
            .iter()
            .find(|&&(s, e)| address >= s && address.checked_add(len).is_some_and(|end| end <= e))
            .copied()
    };
    within(hdr_address, hdr_len.max(8))?;
    // SAFETY: inside a loaded segment (checked above).
    let hdr = unsafe { std::slice::from_raw_parts(hdr_address as *const u8, hdr_len as usize) };
    if hdr.len() < 8 || hdr[0] != 1 {
        return None;
    }
    let eh_frame_address = read_encoded(hdr[1], &hdr[4..], hdr_address + 4)?;
    let (_, segment_end) = within(eh_frame_address, 4)?;
    // SAFETY: [eh_frame_address, segment_end) is inside a loaded segment.
    let rest = unsafe {
        std::slice::from_raw_parts(
            eh_frame_address as *const u8,
            (segment_end - eh_frame_address) as usize,
        )
    };
    let mut at = 0usize;
    while at + 4 <= rest.len() {
        let length = u32::from_le_bytes(rest[at..at + 4].try_into().ok()?);
        if length == 0 {
            at += 4;
            break;
        }
        let next = if length == u32::MAX {
            let long = u64::from_le_bytes(rest.get(at + 4..at + 12)?.try_into().ok()?);
            (at + 12).checked_add(usize::try_from(long).ok()?)?
        } else {
            at + 4 + length as usize
        };
        if next > rest.len() {
            return None;
        }
        at = next;
    }
    Some((hdr, &rest[..at.min(rest.len())], eh_frame_address))
}

/// A DWARF exception-header pointer (`DW_EH_PE_*`) at the start of `bytes`, found at runtime
/// address `address`: the forms linkers write for `eh_frame_ptr`.
fn read_encoded(encoding: u8, bytes: &[u8], address: u64) -> Option<u64> {
    let value = match encoding & 0x0f {
        0x00 | 0x04 => u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?),
        0x03 => u64::from(u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?)),
        0x0b => i64::from(i32::from_le_bytes(bytes.get(..4)?.try_into().ok()?)) as u64,
        0x0c => i64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as u64,
        _ => return None,
    };
    match encoding & 0x70 {
        0x00 => Some(value),
        0x10 => Some(address.wrapping_add(value)),
        _ => None,
    }
}
