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

/// The objects mapped now, the program first (`dl_iterate_phdr`).
pub fn mapped_objects() -> Vec<MappedObject> {
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: dl_iterate_phdr passes a valid info for the call, and `data` is our Vec.
        unsafe {
            let objects = &mut *(data as *mut Vec<MappedObject>);
            let info = &*info;
            let name = if info.dlpi_name.is_null() {
                String::new()
            } else {
                CStr::from_ptr(info.dlpi_name)
                    .to_string_lossy()
                    .into_owned()
            };
            let headers = std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum));
            let segments = headers
                .iter()
                .filter(|h| h.p_type == libc::PT_LOAD)
                .map(|h| {
                    let start = info.dlpi_addr.wrapping_add(h.p_vaddr);
                    (start, start.wrapping_add(h.p_memsz))
                })
                .collect();
            objects.push(MappedObject {
                name,
                bias: info.dlpi_addr,
                segments,
            });
        }
        0
    }
    let mut objects: Vec<MappedObject> = Vec::new();
    // SAFETY: the callback only touches the Vec passed as data.
    unsafe {
        libc::dl_iterate_phdr(
            Some(each),
            &mut objects as *mut Vec<MappedObject> as *mut c_void,
        );
    }
    objects
}
