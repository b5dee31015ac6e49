//! The `caddyprof` command: adapt, validate and format Profilingfiles.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use caddyprof::{AdaptOptions, Adapted, Config, Diagnostic, Error, SourceFile};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

/// Declarative continuous profiling for Rust, configured like Caddy.
#[derive(Parser)]
#[command(name = "caddyprof", version, about, long_about = None, after_help = "\
Examples:
  caddyprof adapt --pretty Profilingfile   # print the JSON config
  caddyprof validate caddy.json            # check a JSON or Profilingfile config
  caddyprof fmt --diff Profilingfile       # show how the file would be formatted

Exit status: 0 ok, 1 invalid config, 2 usage error. Run `caddyprof help COMMAND` for more.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Adapt a Profilingfile to the canonical JSON config and print it on stdout.
    #[command(after_help = "\
Examples:
  caddyprof adapt examples/pyroscope.Profilingfile
  caddyprof adapt --config Profilingfile --pretty --validate
  cat Profilingfile | caddyprof adapt -

Exit status: 0 ok, 1 invalid config, 2 usage error. Warnings go to stderr.")]
    Adapt {
        /// The Profilingfile (`-` for stdin).
        #[arg(
            value_name = "FILE",
            required_unless_present = "config",
            conflicts_with = "config"
        )]
        file: Option<PathBuf>,
        /// The Profilingfile, as `caddy adapt --config` takes it.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Indent the JSON with tabs, like `caddy adapt --pretty`.
        #[arg(long)]
        pretty: bool,
        /// Also load the JSON as a typed config and check it.
        #[arg(long)]
        validate: bool,
    },
    /// Check a Profilingfile or JSON config and say whether it is valid.
    #[command(after_help = "\
Examples:
  caddyprof validate Profilingfile
  caddyprof validate caddy.json
  caddyprof validate --adapter json config.txt

The input kind is taken from --adapter, else from the extension (.json), else from the
content (a JSON config starts with '{'). Exit status: 0 valid, 1 invalid, 2 usage error.")]
    Validate {
        /// The config file (`-` for stdin).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// How to read the file, instead of guessing.
        #[arg(long, value_enum)]
        adapter: Option<Adapter>,
    },
    /// Format a Profilingfile in canonical form (tabs, one directive per line).
    #[command(after_help = "\
Examples:
  caddyprof fmt Profilingfile              # print the formatted file
  caddyprof fmt --overwrite Profilingfile  # rewrite it in place
  caddyprof fmt --diff Profilingfile       # show what would change

Exit status: 0 ok, 1 the file cannot be parsed (or, with --diff, differs), 2 usage error.")]
    Fmt {
        /// The Profilingfile (`-` for stdin).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Write the result back to the file.
        #[arg(long, conflicts_with = "diff")]
        overwrite: bool,
        /// Print a unified diff of the changes instead of the result.
        #[arg(long)]
        diff: bool,
    },
}

/// How to read a config file.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Adapter {
    /// A Profilingfile (the Caddyfile language).
    #[value(alias = "caddyfile")]
    Profilingfile,
    /// The JSON config.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Fmt {
        file,
        overwrite: true,
        ..
    } = &cli.command
        && file == Path::new("-")
    {
        // There is no file to write back to: say so as a usage error (exit 2), rather than
        // creating a file named `-`.
        let mut command = Cli::command();
        command.build(); // gives the subcommand its full name for the usage line
        let fmt = command.find_subcommand_mut("fmt").expect("fmt exists");
        fmt.error(
            clap::error::ErrorKind::ArgumentConflict,
            "--overwrite cannot be used with stdin (-); redirect stdout instead",
        )
        .exit();
    }
    match run(cli.command) {
        Ok(code) => code,
        Err(error) => {
            print_diagnostics(error.diagnostics());
            ExitCode::from(1)
        }
    }
}

fn run(command: Command) -> Result<ExitCode, Error> {
    match command {
        Command::Adapt {
            file,
            config,
            pretty,
            validate,
        } => {
            let path = file.or(config).expect("clap requires one");
            let source = read(&path)?;
            let adapted = caddyprof::adapt_source(&source, &options_for(&path))?;
            let mut warnings = adapted.warnings.clone();
            if validate {
                warnings.extend(check_adapted(&source, &adapted)?);
            }
            print_diagnostics(&warnings);
            let json = if pretty {
                pretty_json(&adapted.json)
            } else {
                adapted.json.to_string()
            };
            println!("{json}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { file, adapter } => {
            let source = read(&file)?;
            let adapter = adapter.unwrap_or_else(|| guess_adapter(&file, source.text()));
            match adapter {
                Adapter::Json => {
                    let loaded = Config::load_json(&source)?;
                    print_diagnostics(&loaded.warnings);
                }
                Adapter::Profilingfile => {
                    let adapted = caddyprof::adapt_source(&source, &options_for(&file))?;
                    let notes = check_adapted(&source, &adapted)?;
                    print_diagnostics(&adapted.warnings);
                    print_diagnostics(&notes);
                }
            }
            println!("Valid configuration");
            Ok(ExitCode::SUCCESS)
        }
        Command::Fmt {
            file,
            overwrite,
            diff,
        } => {
            let source = read(&file)?;
            let formatted = caddyprof::syntax::format::format(&source)?;
            if overwrite {
                if formatted != source.text() {
                    std::fs::write(&file, &formatted).map_err(|e| {
                        Diagnostic::error(format!("cannot write {}: {e}", file.display()))
                    })?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            if diff {
                if formatted == source.text() {
                    return Ok(ExitCode::SUCCESS);
                }
                let name = source.name();
                let text_diff = similar::TextDiff::from_lines(source.text(), &formatted);
                print!(
                    "{}",
                    text_diff
                        .unified_diff()
                        .header(name, &format!("{name} (formatted)"))
                );
                return Ok(ExitCode::from(1));
            }
            print!("{formatted}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads the JSON adapted from `source` as a typed config, and returns the warnings and notes
/// the adapter did not already give (such as "Caddy cannot load this extension").
///
/// The JSON is checked in its pretty form, so a diagnostic shows one short line of it.
fn check_adapted(source: &SourceFile, adapted: &Adapted) -> Result<Vec<Diagnostic>, Error> {
    let generated = SourceFile::new(
        format!("{} (adapted)", source.name()),
        pretty_json(&adapted.json),
    );
    let loaded = Config::load_json(&generated)?;
    Ok(loaded
        .warnings
        .into_iter()
        .filter(|w| !already_reported(w, &adapted.warnings))
        .collect())
}

/// Whether the adapter already warned about the field a config warning is about: config
/// warnings start with the JSON path (`apps.profiling.cpu_profile_rate: …`), adapter warnings
/// with the directive name (`cpu_profile_rate 5000 is …`).
fn already_reported(warning: &Diagnostic, adapter_warnings: &[Diagnostic]) -> bool {
    let Some((path, _)) = warning.message().split_once(": ") else {
        return false;
    };
    let field = path.rsplit('.').next().unwrap_or(path);
    adapter_warnings
        .iter()
        .any(|w| w.message().split_whitespace().next() == Some(field))
}

/// Reads FILE, or stdin for `-`.
fn read(path: &Path) -> Result<SourceFile, Error> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Diagnostic::error(format!("cannot read stdin: {e}")))?;
        return Ok(SourceFile::new("<stdin>", text));
    }
    caddyprof::read_source(path)
}

fn options_for(path: &Path) -> AdaptOptions {
    AdaptOptions {
        base_dir: match path.parent() {
            Some(dir) if path != Path::new("-") => dir.to_path_buf(),
            _ => PathBuf::new(),
        },
        ..AdaptOptions::default()
    }
}

/// JSON by extension, else by content: a Profilingfile cannot start with `{`.
fn guess_adapter(path: &Path, text: &str) -> Adapter {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text
            .trim_start_matches('\u{FEFF}')
            .trim_start()
            .starts_with('{')
    {
        Adapter::Json
    } else {
        Adapter::Profilingfile
    }
}

/// Tab-indented JSON, like `caddy adapt --pretty`.
fn pretty_json(value: &serde_json::Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(value, &mut serializer).expect("a Value always serializes");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

fn print_diagnostics(diagnostics: &[Diagnostic]) {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme);
    for diagnostic in diagnostics {
        let mut out = String::new();
        // Rendering into a String cannot fail.
        let _ = handler.render_report(&mut out, diagnostic);
        eprint!("{out}");
    }
}
