//! Symbol quality: for a few hundred addresses of this test binary (a debug build, full debug
//! info), the frames caddyprof's symbolizer gives (function, inlined frames, file, line) equal
//! what binutils' `addr2line -f -i -C` prints. Skipped, with a message, without binutils.

use std::process::Command;

use caddyprof::collect::symbolize::symbolizer;
use caddyprof::unwind::objects::mapped_objects;
use object::{Object, ObjectSymbol};

/// One frame as addr2line prints it: function, then `file:line`; `place` is `None` where the
/// line is not known (binutils then prints `??:0`, or `FILE:?` with the unit's name for a
/// file: nothing to compare).
#[derive(Debug, PartialEq, Eq)]
struct Printed {
    function: String,
    place: Option<String>,
}

/// File addresses of `count` functions of `binary`, spread over its text, each a few bytes
/// in (as a return address would be).
fn sample_addresses(binary: &[u8], count: usize) -> Vec<u64> {
    let file = object::File::parse(binary).unwrap();
    let mut functions: Vec<(u64, u64)> = file
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.size() > 16)
        .map(|s| (s.address(), s.size()))
        .collect();
    functions.sort_unstable();
    functions.dedup_by_key(|f| f.0);
    let step = (functions.len() / count).max(1);
    functions
        .iter()
        .step_by(step)
        .take(count)
        .map(|&(address, size)| address + (size / 3).min(9))
        .collect()
}

/// What `addr2line -f -i -C` prints for each address: its frames, innermost first.
fn binutils(binary: &std::path::Path, addresses: &[u64]) -> Option<Vec<Vec<Printed>>> {
    let mut command = Command::new("addr2line");
    command.args(["-f", "-i", "-C", "-a", "-e"]).arg(binary);
    for address in addresses {
        command.arg(format!("{address:#x}"));
    }
    let output = command.output().ok()?;
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    // With -a, each address's frames follow a line holding the address.
    let mut all: Vec<Vec<Printed>> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("0x") {
            all.push(Vec::new());
            continue;
        }
        let place = lines.next().unwrap_or("??:0");
        // A discriminator may follow the line number.
        let place = place.split(" (discriminator").next().unwrap();
        let known = !place.starts_with("??:") && !place.ends_with(":?") && !place.ends_with(":0");
        let place = known.then(|| place.to_owned());
        all.last_mut().unwrap().push(Printed {
            function: line.to_owned(),
            place,
        });
    }
    Some(all)
}

#[test]
fn frames_equal_what_binutils_addr2line_prints() {
    let binary = std::env::current_exe().unwrap();
    let bytes = std::fs::read(&binary).unwrap();
    let addresses = sample_addresses(&bytes, 300);
    drop(bytes);
    let Some(expected) = binutils(&binary, &addresses) else {
        eprintln!(
            "SKIPPED frames_equal_what_binutils_addr2line_prints: binutils' addr2line is not installed"
        );
        return;
    };
    assert_eq!(expected.len(), addresses.len());

    let bias = mapped_objects()[0].bias;
    // Runtime addresses; the symbolizer looks up the instruction before a return address,
    // so ask for the one after.
    let runtime: Vec<usize> = addresses.iter().map(|a| (a + bias + 1) as usize).collect();
    let mut symbolizer = symbolizer();
    symbolizer.prepare(runtime.iter().copied());
    let mut compared = 0;
    let mut different = Vec::new();
    for ((address, runtime), expected) in addresses.iter().zip(&runtime).zip(&expected) {
        let resolved = symbolizer.resolve(&[*runtime]);
        let ours: Vec<Printed> = symbolizer
            .frames_at(resolved[0])
            .iter()
            .map(|frame| Printed {
                function: frame.function.to_string(),
                place: match (&frame.file, frame.line) {
                    (Some(file), Some(line)) if line != 0 => Some(format!("{file}:{line}")),
                    _ => None,
                },
            })
            .collect();
        // Where binutils knows nothing, neither DWARF nor the symbol table named the
        // address: nothing to compare.
        if expected.iter().all(|p| p.function == "??") {
            continue;
        }
        compared += 1;
        if &ours != expected {
            different.push(format!(
                "{address:#x}:\n  ours:     {ours:?}\n  addr2line: {expected:?}"
            ));
        }
    }
    assert!(compared >= 250, "only {compared} addresses compared");
    assert!(
        different.is_empty(),
        "{} of {compared} addresses differ:\n{}",
        different.len(),
        different.join("\n")
    );
}

/// With `line-tables-only` debug info, DWARF names a function by its last component only
/// (`step`); the symbol table's full path is used for it (`two::left::step`), as binutils
/// does, with DWARF's file and line kept. Skipped without `rustc` on the path.
#[test]
fn line_tables_only_functions_keep_their_module_path() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("two.rs");
    std::fs::write(
        &source,
        "mod left { #[inline(never)] pub fn step(x: u64) -> u64 { x.wrapping_mul(3) ^ 7 } }\n\
         mod right { #[inline(never)] pub fn step(x: u64) -> u64 { x.wrapping_mul(5) ^ 11 } }\n\
         fn main() { let x = std::hint::black_box(2); println!(\"{}\", left::step(x) + right::step(x)); }\n",
    )
    .unwrap();
    let binary = dir.path().join("two");
    let Ok(output) = Command::new("rustc")
        .args([
            "-C",
            "debuginfo=line-tables-only",
            "-C",
            "opt-level=1",
            "-o",
        ])
        .arg(&binary)
        .arg(&source)
        .output()
    else {
        eprintln!("SKIPPED line_tables_only_functions_keep_their_module_path: no rustc");
        return;
    };
    assert!(output.status.success(), "{output:?}");
    let bytes = std::fs::read(&binary).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    let steps: Vec<(String, u64)> = file
        .symbols()
        .filter_map(|s| {
            let name = addr2line::demangle_auto(s.name().ok()?.into(), None).into_owned();
            (name == "two::left::step" || name == "two::right::step")
                .then(|| (name, s.address() + 1))
        })
        .collect();
    assert_eq!(steps.len(), 2, "{steps:?}");
    let mut info = caddyprof::collect::debug_info::DebugInfo::new(binary.clone());
    let probes: Vec<u64> = steps.iter().map(|(_, address)| *address).collect();
    for ((name, _), frames) in steps.iter().zip(info.frames(&probes)) {
        let outermost = frames.last().unwrap_or_else(|| panic!("{name}: no frame"));
        assert_eq!(&outermost.function, name);
        assert!(
            outermost
                .file
                .as_deref()
                .is_some_and(|f| f.ends_with("two.rs")),
            "{outermost:?}"
        );
    }
}
