//! The layers of `src/` as `src/lib.rs` states them: no file uses a file of a layer above its
//! own, the compiler (layers 3–4) and the profiling machinery (layer 5) use nothing of each
//! other, and no files use each other in a circle.
//!
//! "Uses" is read from the text: every `crate::…` and `super::…` path outside comments and
//! `#[cfg(test)] mod tests`, resolved to the file of the longest module prefix that exists.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layer of a file (a path relative to `src/`), from `src/lib.rs`'s list. Layer 5 is
/// ordered inside: the unwinder, then the allocator, then the pprof model, then the
/// collectors and the locks.
fn layer(file: &str) -> f32 {
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| file.starts_with(p));
    if [
        "source.rs",
        "excerpt.rs",
        "diagnostic.rs",
        "redact.rs",
        "swar.rs",
    ]
    .contains(&file)
    {
        1.0
    } else if starts(&["syntax/", "fields/"]) {
        2.0
    } else if starts(&["apps/"]) && (file.ends_with("/sink.rs") || file.ends_with("/settings.rs")) {
        6.0
    } else if starts(&["apps/"]) {
        3.0
    } else if ["lib.rs", "load.rs"].contains(&file) || starts(&["config/", "adapt/"]) {
        4.0
    } else if starts(&["unwind/"]) {
        5.0
    } else if starts(&["allocator/"]) {
        5.1
    } else if starts(&["profile/"]) {
        5.2
    } else if starts(&["collect/"]) || file == "sync.rs" {
        5.3
    } else if starts(&["runtime/"]) {
        6.0
    } else {
        panic!("{file}: a file of no layer: add it to src/lib.rs's list and to this test");
    }
}

/// Every `.rs` file under `dir`, relative to `root`.
fn sources(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

/// The module path of a file: `runtime/plan/mod.rs` → `[runtime, plan]`.
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The text of a file without its comments and its test module.
fn code_of(text: &str) -> String {
    let text = text
        .find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| &text[..at]);
    text.lines()
        .map(|line| line.find("//").map_or(line, |at| &line[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a file names: each `crate::a::b` or `super::a`, with `{…}` groups expanded one
/// level, as module-relative segments from the crate root.
fn named_paths(module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let bytes = code.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let (base, skip): (Vec<String>, usize) =
            if rest.starts_with(b"crate::") && (i == 0 || !word(bytes[i - 1])) {
                (Vec::new(), "crate::".len())
            } else if rest.starts_with(b"super::") && (i == 0 || !word(bytes[i - 1])) {
                let mut up = 0;
                let mut skip = 0;
                while bytes[i + skip..].starts_with(b"super::") {
                    up += 1;
                    skip += "super::".len();
                }
                (module[..module.len().saturating_sub(up)].to_vec(), skip)
            } else {
                i += 1;
                continue;
            };
        let start = i + skip;
        let mut end = start;
        while end < bytes.len() && (word(bytes[end]) || bytes[end..].starts_with(b"::")) {
            end += if bytes[end] == b':' { 2 } else { 1 };
        }
        let mut path = base.clone();
        path.extend(
            code[start..end]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
        if bytes[end..].starts_with(b"{") {
            let close = code[end..].find('}').map_or(code.len(), |at| end + at);
            for item in code[end + 1..close].split(',') {
                let item: String = item
                    .trim()
                    .chars()
                    .take_while(|&c| c.is_alphanumeric() || c == '_' || c == ':')
                    .collect();
                let mut grouped = path.clone();
                grouped.extend(
                    item.split("::")
                        .filter(|s| !s.is_empty() && *s != "self")
                        .map(String::from),
                );
                paths.push(grouped);
            }
            i = close;
        } else {
            paths.push(path);
            i = end;
        }
    }
    paths
}

/// Which file uses which.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    // The CLI is a crate of its own on top (its `crate::` is itself), using the library's
    // public API only.
    files.retain(|f| f != "main.rs");
    let by_module: BTreeMap<Vec<String>, String> =
        files.iter().map(|f| (module_of(f), f.clone())).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        // A test module of its own file (`mod tests;`) is not part of the layers.
        if file.ends_with("/tests.rs") {
            continue;
        }
        let code = code_of(&fs::read_to_string(root.join(file)).unwrap());
        let module = module_of(file);
        let mut uses = BTreeSet::new();
        for path in named_paths(&module, &code) {
            let target = (0..=path.len())
                .rev()
                .find_map(|n| by_module.get(&path[..n]))
                .unwrap();
            if target != file {
                uses.insert(target.clone());
            }
        }
        graph.insert(file.clone(), uses);
    }
    graph
}

#[test]
fn no_file_uses_a_layer_above_its_own() {
    let graph = import_graph();
    assert!(graph.len() > 50, "read only {} files", graph.len());
    let mut wrong = Vec::new();
    for (file, uses) in &graph {
        for used in uses {
            let (from, to) = (layer(file), layer(used));
            let compiler_and_machinery = (from == 3.0 || from == 4.0) && to.floor() == 5.0
                || from.floor() == 5.0 && (to == 3.0 || to == 4.0);
            if to > from || compiler_and_machinery {
                wrong.push(format!("{file} (layer {from}) uses {used} (layer {to})"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_files_use_each_other_in_a_circle() {
    let graph = import_graph();
    // Depth-first search; a file met again while it is on the path closes a circle.
    fn visit<'a>(
        file: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        circles: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|f| *f == file) {
            circles.push(format!("{} -> {file}", path[at..].join(" -> ")));
            return;
        }
        if !done.insert(file) {
            return;
        }
        path.push(file);
        for used in graph.get(file).into_iter().flatten() {
            visit(used, graph, path, done, circles);
        }
        path.pop();
    }
    let mut circles = Vec::new();
    let mut done = BTreeSet::new();
    for file in graph.keys() {
        visit(file, &graph, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(circles.is_empty(), "{}", circles.join("\n"));
}

#[test]
fn the_reader_sees_uses_through_groups_and_super() {
    // The test above can only fail if the reader finds the edges; check it on known text.
    let module = vec!["runtime".to_owned(), "plan".to_owned()];
    let code = code_of(
        "use crate::fields::{Duration, table::FieldSpec};\n\
         use super::sink::Sink; // crate::apps in a comment\n\
         fn f() { crate::apps::NAMES; }\n",
    );
    let paths = named_paths(&module, &code);
    let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        joined,
        [
            "fields::Duration",
            "fields::table::FieldSpec",
            "runtime::sink::Sink",
            "apps::NAMES"
        ]
    );
}
