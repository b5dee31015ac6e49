//! The objects mapped into the process: the program and its shared libraries.

use std::ffi::{CStr, c_int, c_void};
use std::path::PathBuf;

/// A program or shared library mapped into the process.
#[derive(Clone, Debug)]
pub struct MappedObject {
    /// The loader's name for it: a path for libraries, empty for the program itself (the
    /// first object), `linux-vdso.so.1` for the vDSO.
    pub name: String,
    /// The load bias: runtime address − address in the file.
    pub bias: u64,
    /// Loaded segments, [start, end) runtime addresses.
    pub segments: Vec<(u64, u64)>,
    /// The executable segments, as the kernel maps them (whole pages).
    pub code: Vec<CodeSegment>,
    /// The GNU build ID (`NT_GNU_BUILD_ID` note) as loaded, empty if it has none.
    pub build_id: Vec<u8>,
}

/// An executable segment of a [`MappedObject`], widened to whole pages as in
/// `/proc/self/maps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeSegment {
    /// First runtime address.
    pub start: u64,
    /// Runtime address past the end.
    pub end: u64,
    /// Offset in the file of `start`.
    pub file_offset: u64,
}

impl MappedObject {
    /// Whether `address` lies in one of its segments.
    pub fn contains(&self, address: u64) -> bool {
        self.segments.iter().any(|s| (s.0..s.1).contains(&address))
    }
}

/// Calls `visit` with each object the loader reports (`dl_iterate_phdr`), the program
/// first, while the loader's lock keeps it loaded; `visit` returns `false` to stop.
pub(crate) fn each_object(mut visit: impl FnMut(&libc::dl_phdr_info) -> bool) {
    type Visit<'a> = &'a mut dyn FnMut(&libc::dl_phdr_info) -> bool;
    unsafe extern "C" fn callback(
        info: *mut libc::dl_phdr_info,
        size: libc::size_t,
        data: *mut c_void,
    ) -> c_int {
        if size < std::mem::size_of::<libc::dl_phdr_info>() {
            return 1;
        }
        // SAFETY: dl_iterate_phdr passes a valid info of `size` bytes for the call, and
        // `data` is the `Visit` passed below.
        unsafe { c_int::from(!(*(data as *mut Visit))(&*info)) }
    }
    let mut visit: Visit = &mut visit;
    // SAFETY: the callback only runs `visit`, during this call.
    unsafe { libc::dl_iterate_phdr(Some(callback), &mut visit as *mut Visit as *mut c_void) };
}

/// The loader's name of an object being reported by [`each_object`] (empty for the
/// program).
pub(crate) fn object_name(info: &libc::dl_phdr_info) -> String {
    if info.dlpi_name.is_null() {
        return String::new();
    }
    // SAFETY: a NUL-terminated name, valid while the object is reported.
    unsafe { CStr::from_ptr(info.dlpi_name) }
        .to_string_lossy()
        .into_owned()
}

/// The program headers of an object being reported by [`each_object`].
pub(crate) fn program_headers(info: &libc::dl_phdr_info) -> &[libc::Elf64_Phdr] {
    if info.dlpi_phdr.is_null() {
        return &[];
    }
    // SAFETY: the loader's headers of the object, valid while it is reported.
    unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
}

/// The objects mapped now, the program first (`dl_iterate_phdr`). It allocates: caddyprof's
/// callers mark it as their own work (the allocator sits above this module).
pub fn mapped_objects() -> Vec<MappedObject> {
    // SAFETY: sysconf has no preconditions.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let mut objects = Vec::new();
    each_object(|info| {
        let headers = program_headers(info);
        let loads = || headers.iter().filter(|h| h.p_type == libc::PT_LOAD);
        let segments = loads()
            .map(|h| {
                let start = info.dlpi_addr.wrapping_add(h.p_vaddr);
                (start, start.wrapping_add(h.p_memsz))
            })
            .collect();
        let code = loads()
            .filter(|h| h.p_flags & libc::PF_X != 0)
            .map(|h| {
                let start = info.dlpi_addr.wrapping_add(h.p_vaddr);
                // A segment's address and file offset are equal modulo the page size.
                let into_page = start % page;
                CodeSegment {
                    start: start - into_page,
                    end: start.wrapping_add(h.p_memsz).next_multiple_of(page),
                    file_offset: h.p_offset.saturating_sub(into_page),
                }
            })
            .collect();
        objects.push(MappedObject {
            name: object_name(info),
            bias: info.dlpi_addr,
            segments,
            code,
            build_id: loaded_build_id(info).to_vec(),
        });
        true
    });
    objects
}

/// The file of the `index`th object the loader reports, if it has one.
pub(crate) fn object_path(index: usize, object: &MappedObject) -> Option<PathBuf> {
    // The program itself comes first, with an empty name.
    if index == 0 && object.name.is_empty() {
        std::env::current_exe().ok()
    } else if object.name.starts_with('/') {
        Some(PathBuf::from(&object.name))
    } else {
        None
    }
}

/// The build ID in the notes of an object being reported by [`each_object`], read where
/// the loader mapped them: the running code's, even if its file was replaced since.
fn loaded_build_id(info: &libc::dl_phdr_info) -> &[u8] {
    let headers = program_headers(info);
    let readable = |start: u64, len: u64| {
        headers.iter().any(|h| {
            h.p_type == libc::PT_LOAD
                && h.p_flags & libc::PF_R != 0
                && start >= h.p_vaddr
                && start
                    .checked_add(len)
                    .is_some_and(|end| end <= h.p_vaddr.saturating_add(h.p_filesz))
        })
    };
    headers
        .iter()
        .filter(|h| h.p_type == libc::PT_NOTE && readable(h.p_vaddr, h.p_filesz))
        .find_map(|h| {
            let address = info.dlpi_addr.wrapping_add(h.p_vaddr) as *const u8;
            // SAFETY: the notes lie inside a readable loaded segment of the object (checked
            // above), which stays mapped while it is reported.
            let notes = unsafe { std::slice::from_raw_parts(address, h.p_filesz as usize) };
            gnu_build_id(notes, h.p_align)
        })
        .unwrap_or_default()
}

/// The description of the `NT_GNU_BUILD_ID` note among `notes` (an ELF note segment whose
/// entries are aligned to `align` bytes: 4 or 8).
fn gnu_build_id(notes: &[u8], align: u64) -> Option<&[u8]> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let align = if align == 8 { 8 } else { 4 };
    let word = |at: usize| {
        let bytes = notes.get(at..at + 4)?;
        Some(u32::from_ne_bytes(bytes.try_into().ok()?) as usize)
    };
    let mut at = 0;
    while at + 12 <= notes.len() {
        let (name_size, desc_size, kind) = (word(at)?, word(at + 4)?, word(at + 8)?);
        let name_at = at + 12;
        let desc_at = (name_at + name_size).next_multiple_of(align);
        let desc = notes.get(desc_at..desc_at.checked_add(desc_size)?)?;
        if kind == NT_GNU_BUILD_ID as usize
            && notes.get(name_at..name_at + name_size) == Some(b"GNU\0")
        {
            return Some(desc);
        }
        at = (desc_at + desc_size).next_multiple_of(align);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One ELF note: sizes, type, name and description, each padded to `align`.
    fn note(kind: u32, name: &[u8], desc: &[u8], align: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for word in [name.len() as u32, desc.len() as u32, kind] {
            bytes.extend(word.to_ne_bytes());
        }
        bytes.extend(name);
        bytes.resize(bytes.len().next_multiple_of(align), 0);
        bytes.extend(desc);
        bytes.resize(bytes.len().next_multiple_of(align), 0);
        bytes
    }

    #[test]
    fn the_build_id_is_found_among_other_notes() {
        for align in [4, 8] {
            let abi_tag = note(1, b"GNU\0", &[0, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0], align);
            let other_vendor = note(3, b"Go\0\0", b"not this one", align);
            let id: Vec<u8> = (1..=20).collect();
            let notes = [abi_tag, other_vendor, note(3, b"GNU\0", &id, align)].concat();
            assert_eq!(gnu_build_id(&notes, align as u64), Some(id.as_slice()));
            // Cut anywhere inside its description, it is not found (and nothing is read past
            // the end).
            let desc_end = notes.len() - (id.len().next_multiple_of(align) - id.len());
            for len in desc_end - id.len()..desc_end {
                assert_eq!(gnu_build_id(&notes[..len], align as u64), None, "{len}");
            }
        }
    }

    #[test]
    fn the_program_comes_first_with_its_code_and_build_id() {
        let objects = mapped_objects();
        let program = &objects[0];
        let here = the_program_comes_first_with_its_code_and_build_id as *const () as u64;
        assert!(program.contains(here));
        assert!(
            program
                .code
                .iter()
                .any(|c| (c.start..c.end).contains(&here))
        );
        assert!(!program.build_id.is_empty(), "cargo links with a build ID");
    }
}
