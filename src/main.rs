//! The `caddyprof` command: adapt, validate and format Profilingfiles, and run them.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::task::Poll;
use std::time::Duration;

use caddyprof::fields::json_writer::compact;
use caddyprof::load::{load_profilingfile, load_source};
use caddyprof::{AdaptOptions, ConfigFormat, Diagnostic, Error, SourceFile};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

/// The sampling allocator, so that `caddyprof run` can take heap and allocs profiles of
/// itself. It costs a countdown per allocation while no heap profile is asked for.
#[global_allocator]
static ALLOC: caddyprof::allocator::Sampled<std::alloc::System> =
    caddyprof::allocator::Sampled::new(std::alloc::System);

/// Declarative continuous profiling for Rust, configured like Caddy.
#[derive(Parser)]
#[command(name = "caddyprof", version, about, long_about = None, after_help = "\
Examples:
  caddyprof adapt --pretty Profilingfile   # print the JSON config
  caddyprof validate caddy.json            # check a JSON or Profilingfile config
  caddyprof fmt --diff Profilingfile       # show how the file would be formatted
  caddyprof run Profilingfile              # profile until Ctrl-C (or SIGTERM)

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
    /// Profile with a Profilingfile or JSON config until SIGINT/SIGTERM, pushing to its sinks.
    #[command(after_help = "\
Examples:
  caddyprof run examples/demo.Profilingfile          # until Ctrl-C
  caddyprof run --once --window 5s Profilingfile     # profile for 5 s, push, exit
  RUST_LOG=debug caddyprof run --log-format json caddy.json

The caddyprof process profiles itself; to profile your service, embed the library
(see examples/demo.rs). SIGINT or SIGTERM stops it within 2 s, after a final flush; a
second one stops it at once. Exit status: 0 ok, 1 invalid config, a failed upload (with
--once) or final reports lost (sinks that did not report within the 2 s, named in the
log, or a second signal that did not wait), 2 usage error.")]
    Run {
        /// The config file: a Profilingfile, or JSON (by extension or content).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// How to read the file, instead of guessing.
        #[arg(long, value_enum)]
        adapter: Option<Adapter>,
        /// Profile for one window's length, push what was collected and exit with the result
        /// (a sink's own window boundary, aligned to the clock, can split it in two).
        #[arg(long)]
        once: bool,
        /// With --once: how long to profile (a duration such as 5s).
        #[arg(
            long,
            value_name = "DURATION",
            default_value = "10s",
            requires = "once"
        )]
        window: String,
        /// The log format on stderr. RUST_LOG sets the level (default info).
        #[arg(long, value_enum, default_value = "human")]
        log_format: LogFormat,
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

impl From<Adapter> for ConfigFormat {
    fn from(adapter: Adapter) -> Self {
        match adapter {
            Adapter::Profilingfile => ConfigFormat::Profilingfile,
            Adapter::Json => ConfigFormat::Json,
        }
    }
}

/// How `run` logs.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Lines for people.
    Human,
    /// One JSON object per line.
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
            let options = options_for(&path);
            if validate {
                // Checked as `validate` loads it: pretty, for the loader's diagnostics.
                let (loaded, json) = load_profilingfile(&source, &options)?;
                print_diagnostics(&loaded.warnings);
                leave_to_exit(loaded);
                if pretty {
                    println!("{}", json.text());
                } else {
                    println!("{}", compact(json.text()));
                }
            } else {
                // Text straight from the adapter: no serde_json::Value to build.
                let adapted = caddyprof::adapt_source_to_text(&source, &options, pretty)?;
                print_diagnostics(&adapted.warnings);
                println!("{}", adapted.json);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { file, adapter } => {
            let source = read(&file)?;
            let format = adapter.map(ConfigFormat::from);
            let loaded = load_source(
                &source,
                guessed(format, &file, &source),
                &options_for(&file),
            )?;
            print_diagnostics(&loaded.warnings);
            // Said here only: it matters to who would give the configuration to Caddy, not
            // to running it.
            let notes: Vec<_> = loaded
                .config
                .caddy_notes()
                .into_iter()
                .map(|note| loaded.sources.locate(note))
                .collect();
            print_diagnostics(&notes);
            // What running it here would warn about too (defaults filled in, settings without
            // effect), and what would stop it (an `{env.NAME}` whose variable is unset): as
            // warnings, since the file may be meant for another environment.
            let options = caddyprof::runtime::plan::PlanOptions::default();
            let checked = caddyprof::runtime::plan::Plan::check(&loaded.config, &options);
            let warnings: Vec<_> = checked
                .warnings
                .into_iter()
                .map(|w| loaded.sources.locate(w))
                .collect();
            print_diagnostics(&warnings);
            if checked.would_fail {
                println!(
                    "Valid configuration, but `caddyprof run` would fail in this environment \
                     (see the warnings)"
                );
            } else {
                println!("Valid configuration");
            }
            leave_to_exit(loaded);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            file,
            adapter,
            once,
            window,
            log_format,
        } => {
            let window = if once {
                let parsed = caddyprof::config::Duration::parse(&window)
                    .ok()
                    .and_then(|d| d.to_std())
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        Diagnostic::error(format!("--window: invalid duration '{window}'"))
                            .help(caddyprof::config::duration::DURATION_HELP)
                    })?;
                Some(parsed)
            } else {
                None
            };
            run_config(&file, adapter, window, log_format)
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

/// The format asked for, or the one guessed from the file's name and content.
fn guessed(format: Option<ConfigFormat>, path: &Path, source: &SourceFile) -> Option<ConfigFormat> {
    format.or_else(|| Some(ConfigFormat::guess(path, source.text())))
}

/// Leaves `value` for the process's exit to free: freeing a large config piece by piece takes
/// a good part of the time of checking it, just before the process exits and frees it all at
/// once.
fn leave_to_exit<T>(value: T) {
    std::mem::forget(value);
}

/// `caddyprof run`.
fn run_config(
    file: &Path,
    adapter: Option<Adapter>,
    once: Option<Duration>,
    log_format: LogFormat,
) -> Result<ExitCode, Error> {
    init_logging(log_format);
    // Listen for SIGINT/SIGTERM before anything starts: a signal that arrives while the
    // config is loaded or started then stops the run cleanly (exit 0, after the final flush)
    // instead of killing the process with the default action.
    let waiter = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Diagnostic::error(format!("cannot wait for signals: {e}")))?;
    let mut shutdown = Box::pin(caddyprof::runtime::shutdown::shutdown_signal());
    // `shutdown_signal` installs its handlers when first polled: poll it once now.
    let early = waiter.block_on(std::future::poll_fn(|cx| {
        Poll::Ready(shutdown.as_mut().poll(cx))
    }));
    let source = read(file)?;
    let loaded = load_source(
        &source,
        guessed(adapter.map(ConfigFormat::from), file, &source),
        &options_for(file),
    )?;
    print_diagnostics(&loaded.warnings);
    // What resolving the config finds names JSON paths: for a Profilingfile, point it at
    // the lines that configured them.
    let sources = &loaded.sources;
    let running = caddyprof::runtime::start(&loaded.config).map_err(|e| {
        Error::from(
            e.diagnostics()
                .iter()
                .map(|d| sources.locate(d.clone()))
                .collect::<Vec<_>>(),
        )
    })?;
    let warnings: Vec<_> = running
        .warnings()
        .iter()
        .map(|w| sources.locate(w.clone()))
        .collect();
    print_diagnostics(&warnings);
    tracing::info!(
        "caddyprof run profiles its own process, which does nothing but profile: expect \
         empty CPU profiles. To profile a program, embed caddyprof in it (README, \"Running \
         profiles\") or try the demo: cargo run --release --example demo"
    );
    let waited = match early {
        // Listening failed, or (on some platforms) a signal was already there.
        Poll::Ready(result) => result,
        Poll::Pending => waiter.block_on(async {
            match once {
                Some(window) => {
                    tokio::select! {
                        () = tokio::time::sleep(window) => Ok(()),
                        signal = &mut shutdown => signal,
                    }
                }
                None => shutdown.await,
            }
        }),
    };
    if let Err(e) = waited {
        tracing::warn!("cannot wait for signals: {e}; stopping");
    }
    let sinks = running.sinks().to_vec();
    let Some(reports) = stop_unless_signalled(running, &waiter) else {
        tracing::error!(
            sinks = sinks.len(),
            "stopped by a second signal before the sinks reported: their final reports are lost"
        );
        return Ok(ExitCode::from(1));
    };
    let mut clean = true;
    for report in &reports {
        clean &= report.is_clean();
        let errors: u64 = report.errors.iter().map(|e| e.count).sum();
        // Every profile is counted once: delivered, failed, dropped or skipped.
        match &report.uploads {
            Some(uploads) => tracing::info!(
                sink = %report.path,
                profiles = report.profiles,
                delivered = uploads.delivered,
                failed = uploads.failed + uploads.rejected + uploads.abandoned,
                dropped = uploads.dropped,
                skipped_empty = report.skipped_empty,
                skipped_unsupported = report.skipped_unsupported,
                windows_lost = report.windows_lost,
                errors,
                "sink stopped"
            ),
            None => tracing::info!(
                sink = %report.path,
                profiles = report.profiles,
                files = report.files_written,
                windows_lost = report.windows_lost,
                errors,
                "sink stopped"
            ),
        }
    }
    let missing = caddyprof::runtime::missing_reports(&sinks, &reports);
    if !missing.is_empty() {
        // The stop's warning named them.
        tracing::error!(
            lost = missing.len(),
            "{} of {} sinks did not report within the stop deadline: their final reports are \
             lost",
            missing.len(),
            sinks.len()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(if once.is_some() && !clean {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Stops `running` on a thread of its own and waits for its reports; `None` when a second
/// SIGINT or SIGTERM comes first (as with Caddy, a second signal does not wait for the
/// graceful stop) or the stop cannot be run.
fn stop_unless_signalled(
    running: caddyprof::runtime::Running,
    waiter: &tokio::runtime::Runtime,
) -> Option<Vec<caddyprof::runtime::SinkReport>> {
    let (stopped, reports) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("caddyprof-stop".into())
        .spawn(move || {
            let _ = stopped.send(running.stop());
        })
        .ok()?;
    waiter.block_on(async {
        tokio::select! {
            reports = reports => reports.ok(),
            signal = caddyprof::runtime::shutdown::shutdown_signal() => match signal {
                Ok(()) => None,
                // Not listening: wait for the stop, which ends within its deadline.
                Err(_) => std::future::pending().await,
            },
        }
    })
}

/// Logs to stderr, at the level of RUST_LOG (default info).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Reads FILE, or stdin for `-`.
fn read(path: &Path) -> Result<SourceFile, Error> {
    if path == Path::new("-") {
        return caddyprof::read_stdin();
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
