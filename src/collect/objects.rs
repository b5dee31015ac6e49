//! The objects mapped into the process: the program and its shared libraries.

use std::ffi::{CStr, c_int, c_void};

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

/// The objects mapped now, the program first (`dl_iterate_phdr`).
pub fn mapped_objects() -> Vec<MappedObject> {
    let mut objects = Vec::new();
    each_object(|info| {
        let segments = program_headers(info)
            .iter()
            .filter(|h| h.p_type == libc::PT_LOAD)
            .map(|h| {
                let start = info.dlpi_addr.wrapping_add(h.p_vaddr);
                (start, start.wrapping_add(h.p_memsz))
            })
            .collect();
        objects.push(MappedObject {
            name: object_name(info),
            bias: info.dlpi_addr,
            segments,
        });
        true
    });
    objects
}
