//! The mappings a profile lists: the program's and libraries' executable code, as pprof
//! names it.

use std::path::Path;
use std::sync::LazyLock;

use crate::unwind::objects::{MappedObject, mapped_objects, object_path};

/// Executable code of a file mapped into the profiled process (the program or a shared
/// library), as a line of `/proc/self/maps`: what tells pprof tools and Pyroscope which
/// binary, and which build of it, an address belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mapping {
    /// First runtime address.
    pub memory_start: u64,
    /// Runtime address past the end.
    pub memory_limit: u64,
    /// Offset in the file of `memory_start`.
    pub file_offset: u64,
    /// The file's path (for the vDSO, the loader's name of it).
    pub filename: String,
    /// The GNU build ID in lowercase hex, empty if the file has none.
    pub build_id: String,
}

/// The mappings of `object`'s executable segments, named by its file at `path` with links
/// resolved, as `/proc/self/maps` names it (else by the loader's name: the vDSO's
/// `linux-vdso.so.1`).
pub(crate) fn mappings(
    object: &MappedObject,
    path: Option<&Path>,
) -> impl Iterator<Item = Mapping> {
    let filename = path.map_or_else(
        || object.name.clone(),
        |p| {
            std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.to_owned())
                .display()
                .to_string()
        },
    );
    let build_id: String = object.build_id.iter().map(|b| format!("{b:02x}")).collect();
    object.code.iter().map(move |code| Mapping {
        memory_start: code.start,
        memory_limit: code.end,
        file_offset: code.file_offset,
        filename: filename.clone(),
        build_id: build_id.clone(),
    })
}

/// The mappings of the running program's executable segments, which every profile lists
/// first (read once: the program stays where it was loaded).
pub fn program_mappings() -> &'static [Mapping] {
    let _own = crate::allocator::own_work();
    static PROGRAM: LazyLock<Vec<Mapping>> = LazyLock::new(|| {
        mapped_objects().first().map_or_else(Vec::new, |program| {
            mappings(program, object_path(0, program).as_deref()).collect()
        })
    });
    &PROGRAM
}
