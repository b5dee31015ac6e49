//! Adapt a Profilingfile with the library, then read it back as a typed config.
//!
//! ```text
//! cargo run --example adapt -- examples/team.Profilingfile
//! ```
//!
//! Without an argument it adapts `examples/profiling.Profilingfile`.

use std::process::ExitCode;

use caddyprof::apps::{FileSink, ProfefeApp, PyroscopeApp};
use caddyprof::config::{Parameters, ProfileType};
use caddyprof::{Config, SourceFile};

fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/profiling.Profilingfile".into());
    match run(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Each diagnostic is a miette diagnostic: file, line, column, a label, a fix.
            for diagnostic in error.diagnostics() {
                eprintln!("{:?}", miette::Report::new(diagnostic.clone()));
            }
            ExitCode::FAILURE
        }
    }
}

fn run(path: &str) -> Result<(), caddyprof::Error> {
    // 1. Profilingfile → JSON. Imports are resolved relative to the file.
    let adapted = caddyprof::adapt_file(path)?;
    for warning in adapted.warnings {
        eprintln!("{:?}", miette::Report::new(warning));
    }
    let json = adapted.json.to_string();
    println!("{json}\n");

    // 2. JSON → typed config, decoded strictly like Caddy's modules (plus our own checks).
    let loaded = Config::load_json(&SourceFile::new(format!("{path} (adapted)"), json))?;
    let config = loaded.config;

    // 3. One line per app and profiler.
    if let Some(app) = &config.pyroscope {
        println!("{}", pyroscope_line(app, None));
    }
    if let Some(app) = &config.profefe {
        println!("{}", profefe_line(app, None));
    }
    if let Some(profiling) = &config.profiling {
        println!(
            "profiling → {} profiler(s) sharing {}",
            profiling.profilers.len(),
            types(profiling.parameters.profile_types.as_deref())
        );
        for child in &profiling.profilers {
            let inherited = Some(&profiling.parameters);
            let line = if let Some(p) = child.get::<PyroscopeApp>() {
                pyroscope_line(p, inherited)
            } else if let Some(p) = child.get::<ProfefeApp>() {
                profefe_line(p, inherited)
            } else if let Some(f) = child.get::<FileSink>() {
                format!(
                    "file → {} ({}; caddyprof extension)",
                    f.directory.as_deref().unwrap_or("(default directory)"),
                    types(effective_types(f.parameters.as_ref(), inherited)),
                )
            } else {
                format!(
                    "{} (a profiler this example does not describe)",
                    child.name()
                )
            };
            println!("  {line}");
        }
    }
    Ok(())
}

fn pyroscope_line(app: &PyroscopeApp, inherited: Option<&Parameters>) -> String {
    format!(
        "pyroscope → {} ({})",
        app.server_address
            .as_deref()
            .unwrap_or("(no server address)"),
        types(effective_types(app.parameters.as_ref(), inherited)),
    )
}

fn profefe_line(app: &ProfefeApp, inherited: Option<&Parameters>) -> String {
    format!(
        "profefe → {} ({})",
        app.address
            .as_deref()
            .unwrap_or("http://localhost:10100 by default"),
        types(effective_types(app.parameters.as_ref(), inherited)),
    )
}

/// A child's own `profile_types` replace the inherited ones wholesale.
fn effective_types<'a>(
    own: Option<&'a Parameters>,
    inherited: Option<&'a Parameters>,
) -> Option<&'a [ProfileType]> {
    own.and_then(|p| p.profile_types.as_deref())
        .or_else(|| inherited.and_then(|p| p.profile_types.as_deref()))
}

fn types(types: Option<&[ProfileType]>) -> String {
    match types {
        Some(types) => {
            let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
            format!("profile types: {}", names.join(", "))
        }
        None => "default profile types".into(),
    }
}
