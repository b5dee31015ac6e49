//! Snapshots of `caddyprof adapt` (compact and `--pretty`) for every Profilingfile in
//! `examples/`, run through the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

fn profilingfiles(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            profilingfiles(&path, out);
        } else if path.extension().is_some_and(|e| e == "Profilingfile") {
            out.push(path);
        }
    }
}

fn adapt(path: &Path, pretty: bool) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_caddyprof"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("adapt")
        .arg(path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap())
        .env_remove("CPU_RATE")
        .env_remove("PYROSCOPE_USER")
        .env_remove("PYROSCOPE_PASSWORD");
    if pretty {
        command.arg("--pretty");
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn every_example_adapts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    profilingfiles(&root.join("examples"), &mut files);
    files.sort();
    assert!(files.len() >= 4, "examples are missing: {files:?}");
    for file in files {
        let name = file
            .strip_prefix(root.join("examples"))
            .unwrap()
            .to_string_lossy()
            .replace(['/', '.'], "_");
        insta::with_settings!({
            snapshot_path => "../snapshots",
            prepend_module_to_snapshot => false,
            description => format!("caddyprof adapt {}", file.strip_prefix(root).unwrap().display()),
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("example_{name}"), adapt(&file, false));
            insta::assert_snapshot!(format!("example_{name}_pretty"), adapt(&file, true));
        });
    }
}
