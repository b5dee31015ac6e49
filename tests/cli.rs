//! Black-box tests of the `caddyprof` binary: exit codes, stdout, stderr and files, as a user
//! or a script sees them.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

/// Every run is killed after this long, so a hanging binary fails the test instead of the suite.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What a run of the binary produced.
#[derive(Debug)]
struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A run of the binary in `dir`, with optional stdin and environment changes.
struct Run<'a> {
    dir: &'a Path,
    args: Vec<String>,
    stdin: Option<String>,
    env: Vec<(String, Option<String>)>,
}

fn caddyprof<'a>(dir: &'a Path, args: &[&str]) -> Run<'a> {
    Run {
        dir,
        args: args.iter().map(|a| a.to_string()).collect(),
        stdin: None,
        env: Vec::new(),
    }
}

impl Run<'_> {
    fn stdin(mut self, text: &str) -> Self {
        self.stdin = Some(text.to_string());
        self
    }

    fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), Some(value.into())));
        self
    }

    fn env_remove(mut self, name: &str) -> Self {
        self.env.push((name.into(), None));
        self
    }

    fn run(self) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_caddyprof"));
        command
            .args(&self.args)
            .current_dir(self.dir)
            .env("NO_COLOR", "1")
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in &self.env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        let mut child = command.spawn().expect("the binary starts");
        if let Some(text) = self.stdin {
            let mut stdin = child.stdin.take().unwrap();
            // A binary that refuses its arguments exits without reading: a broken pipe then
            // is not a failure of the test.
            if let Err(error) = stdin.write_all(text.as_bytes()) {
                assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
            }
            // Dropping stdin closes it: the binary sees end of file.
        }
        let stdout = reader(child.stdout.take().unwrap());
        let stderr = reader(child.stderr.take().unwrap());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > TIMEOUT {
                let _ = child.kill();
                panic!("caddyprof {:?} did not finish in {TIMEOUT:?}", self.args);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Output {
            code: status.code().expect("not killed by a signal"),
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        }
    }
}

fn reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        pipe.read_to_string(&mut text).unwrap();
        text
    })
}

impl Output {
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }

    #[track_caller]
    fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "exit code; stderr:\n{}", self.stderr);
        self
    }

    #[track_caller]
    fn assert_stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr should contain {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    /// A failed run prints nothing on stdout: no partial JSON, no "Valid configuration".
    #[track_caller]
    fn assert_failed(&self) -> &Self {
        self.assert_code(1);
        assert_eq!(self.stdout, "", "stdout must be empty on error");
        self
    }
}

fn temp() -> TempDir {
    tempfile::tempdir().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

const PYROSCOPE_JSON: &str = r#"{"apps":{"pyroscope":{"server_address":"http://localhost:4040","application_name":"my_cool_app","auth_token":"{env.PYROSCOPE_AUTH_TOKEN}","parameters":{"cpu_profile_rate":2,"block_profile_rate":2,"mutex_profile_fraction":2,"profile_types":["cpu","heap","allocs","goroutine"]}}}}"#;

// ---------------------------------------------------------------------------------------------
// adapt
// ---------------------------------------------------------------------------------------------

#[test]
fn adapt_prints_compact_json_on_stdout() {
    let out = caddyprof(&examples(), &["adapt", "pyroscope.Profilingfile"]).run();
    out.assert_code(0);
    assert_eq!(out.stdout, format!("{PYROSCOPE_JSON}\n"));
    assert_eq!(out.stderr, "");
}

#[test]
fn adapt_pretty_indents_with_tabs() {
    let compact = caddyprof(&examples(), &["adapt", "pyroscope.Profilingfile"]).run();
    let pretty = caddyprof(
        &examples(),
        &["adapt", "pyroscope.Profilingfile", "--pretty"],
    )
    .run();
    pretty.assert_code(0);
    assert_eq!(pretty.json(), compact.json(), "same JSON, only laid out");
    let lines: Vec<&str> = pretty.stdout.lines().collect();
    assert_eq!(lines[0], "{");
    assert_eq!(lines[1], "\t\"apps\": {");
    assert_eq!(lines[2], "\t\t\"pyroscope\": {");
    assert_eq!(
        lines[3],
        "\t\t\t\"server_address\": \"http://localhost:4040\","
    );
    assert_eq!(*lines.last().unwrap(), "}");
    assert!(!pretty.stdout.contains("  "), "no space indentation");
}

#[test]
fn adapt_config_flag_equals_positional_file() {
    let positional = caddyprof(&examples(), &["adapt", "profiling.Profilingfile"]).run();
    let flag = caddyprof(
        &examples(),
        &["adapt", "--config", "profiling.Profilingfile"],
    )
    .run();
    positional.assert_code(0);
    flag.assert_code(0);
    assert_eq!(flag.stdout, positional.stdout);
    assert_eq!(
        flag.json()["apps"]["profiling"]["profilers"][2],
        json!({"profiler": "profefe"})
    );
}

#[test]
fn adapt_validate_checks_and_prints_the_same_json() {
    let plain = caddyprof(&examples(), &["adapt", "profefe.Profilingfile"]).run();
    let validated = caddyprof(
        &examples(),
        &["adapt", "--config", "profefe.Profilingfile", "--validate"],
    )
    .run();
    validated.assert_code(0);
    assert_eq!(validated.stdout, plain.stdout);
    assert_eq!(validated.json()["apps"]["profefe"]["timeout"], "10m");
}

#[test]
fn adapt_reads_stdin_for_dash() {
    let out = caddyprof(&examples(), &["adapt", "-"])
        .stdin("pyroscope http://localhost:4040 {\n\tupload_rate 10s\n}\n")
        .run();
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "{\"apps\":{\"pyroscope\":{\"server_address\":\"http://localhost:4040\",\"upload_rate\":\"10s\"}}}\n"
    );
}

#[test]
fn adapt_warnings_go_to_stderr_and_keep_exit_zero() {
    let dir = temp();
    write(
        dir.path(),
        "fast.Profilingfile",
        "profiling {\n\tcpu_profile_rate 5000\n\tprofefe\n}\n",
    );
    let out = caddyprof(dir.path(), &["adapt", "fast.Profilingfile"]).run();
    out.assert_code(0)
        .assert_stderr_has("cpu_profile_rate: 5000 Hz is an unusually high CPU sampling rate")
        .assert_stderr_has("fast.Profilingfile:2:19");
    assert_eq!(out.json()["apps"]["profiling"]["cpu_profile_rate"], 5000);
    assert!(
        !out.stdout.contains("unusually"),
        "warnings stay off stdout"
    );
}

#[test]
fn adapt_validate_does_not_repeat_a_warning() {
    let dir = temp();
    write(
        dir.path(),
        "fast.Profilingfile",
        "profiling {\n\tcpu_profile_rate 5000\n\tprofefe\n}\n",
    );
    let out = caddyprof(dir.path(), &["adapt", "--validate", "fast.Profilingfile"]).run();
    out.assert_code(0);
    assert_eq!(out.stderr.matches('⚠').count(), 1, "{}", out.stderr);
}

#[test]
fn adapt_error_names_file_line_column_and_prints_nothing() {
    let dir = temp();
    // The first app is fine; the error in the second must still suppress all output.
    write(
        dir.path(),
        "typo.Profilingfile",
        "pyroscope {\n\tserver_address http://localhost:4040\n}\n\nprofiling {\n\tcpu_profil_rate 5\n}\n",
    );
    let out = caddyprof(dir.path(), &["adapt", "typo.Profilingfile"]).run();
    out.assert_failed()
        .assert_stderr_has("unknown directive 'cpu_profil_rate'")
        .assert_stderr_has("typo.Profilingfile:6:2")
        .assert_stderr_has("did you mean 'cpu_profile_rate'?");
}

#[test]
fn adapt_missing_file_is_a_clear_error() {
    let dir = temp();
    let out = caddyprof(dir.path(), &["adapt", "nowhere.Profilingfile"]).run();
    out.assert_failed()
        .assert_stderr_has("cannot read nowhere.Profilingfile")
        .assert_stderr_has("No such file");
}

#[test]
fn adapt_substitutes_environment_variables() {
    let dir = temp();
    write(
        dir.path(),
        "env.Profilingfile",
        "pyroscope {\n\tserver_address {$PYRO_ADDR}\n\tapplication_name {$PYRO_APP:default-app}\n}\n",
    );
    let set = caddyprof(dir.path(), &["adapt", "env.Profilingfile"])
        .env("PYRO_ADDR", "http://pyro.internal:4040")
        .env("PYRO_APP", "checkout")
        .run();
    set.assert_code(0);
    assert_eq!(
        set.json(),
        json!({"apps": {"pyroscope": {
            "server_address": "http://pyro.internal:4040",
            "application_name": "checkout"
        }}})
    );
    let defaulted = caddyprof(dir.path(), &["adapt", "env.Profilingfile"])
        .env("PYRO_ADDR", "http://pyro.internal:4040")
        .env_remove("PYRO_APP")
        .run();
    defaulted.assert_code(0);
    assert_eq!(
        defaulted.json()["apps"]["pyroscope"]["application_name"],
        "default-app"
    );
    // Unset with no default: the directive is left without a value, which is an error.
    let unset = caddyprof(dir.path(), &["adapt", "env.Profilingfile"])
        .env_remove("PYRO_ADDR")
        .run();
    unset
        .assert_failed()
        .assert_stderr_has("env.Profilingfile:2:2");
}

#[test]
fn adapt_resolves_imports_relative_to_the_file_not_the_cwd() {
    let dir = temp();
    write(
        dir.path(),
        "conf/main.Profilingfile",
        "import snippets/app.Profilingfile\n\npyroscope {\n\timport app\n}\n",
    );
    write(
        dir.path(),
        "conf/snippets/app.Profilingfile",
        "(app) {\n\tapplication_name from-conf\n}\n",
    );
    // A decoy where a cwd-relative lookup would find it.
    write(
        dir.path(),
        "snippets/app.Profilingfile",
        "(app) {\n\tapplication_name from-cwd\n}\n",
    );
    let out = caddyprof(dir.path(), &["adapt", "conf/main.Profilingfile"]).run();
    out.assert_code(0);
    assert_eq!(
        out.json(),
        json!({"apps": {"pyroscope": {"application_name": "from-conf"}}})
    );
}

#[test]
fn adapt_team_example_from_another_directory() {
    let dir = temp();
    let team = examples().join("team.Profilingfile");
    let out = caddyprof(dir.path(), &["adapt", team.to_str().unwrap()])
        .env("CPU_RATE", "250")
        .run();
    out.assert_code(0);
    let profiling = &out.json()["apps"]["profiling"];
    assert_eq!(profiling["cpu_profile_rate"], 250);
    assert_eq!(
        profiling["profilers"][0]["server_address"],
        "https://pyroscope.example.com"
    );
    assert_eq!(profiling["profilers"][1]["service"], "checkout-service");
}

// ---------------------------------------------------------------------------------------------
// validate
// ---------------------------------------------------------------------------------------------

const SEED_ALIAS: &str = r#"{
	"apps": {
		"profiling": {
			"profile_types": ["cpu", "heap"],
			"profilers": [
				{
					"profiler": "pyroscope",
					"server_address": "http://another-instance.local:4040",
					"profile_types": ["heap"]
				}
			]
		}
	}
}
"#;

#[test]
fn validate_accepts_a_profilingfile() {
    for example in [
        "profiling.Profilingfile",
        "pyroscope.Profilingfile",
        "profefe.Profilingfile",
        "team.Profilingfile",
    ] {
        // Their secrets are runtime placeholders, resolved from the environment.
        let out = caddyprof(&examples(), &["validate", example])
            .env("PYROSCOPE_AUTH_TOKEN", "token")
            .env("PYROSCOPE_USER", "user")
            .env("PYROSCOPE_PASSWORD", "password")
            .run();
        out.assert_code(0);
        assert_eq!(out.stdout, "Valid configuration\n", "{example}");
    }
}

/// What running the config would warn about (a default filled in) is said by `validate`
/// too, at the Profilingfile line; it does not make the config invalid.
#[test]
fn validate_warns_where_a_default_is_filled_in() {
    let dir = temp();
    write(
        dir.path(),
        "Profilingfile",
        "profiling {\n\tprofile_types cpu\n\tprofefe\n}\n",
    );
    let out = caddyprof(dir.path(), &["validate", "Profilingfile"]).run();
    out.assert_code(0);
    assert_eq!(out.stdout, "Valid configuration\n");
    assert!(
        out.stderr.contains(
            "apps.profiling.profilers[0].address: not set: sending to http://localhost:10100"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("[Profilingfile:3:2]"), "{}", out.stderr);
}

/// A runtime placeholder whose variable is unset makes `run` fail: `validate` warns about
/// each one at its line, with the message `run` fails with, and says `run` would fail; it
/// still exits 0 (the file may be meant for another environment).
#[test]
fn validate_warns_about_each_placeholder_run_cannot_resolve() {
    let dir = temp();
    write(
        dir.path(),
        "Profilingfile",
        "pyroscope http://localhost:4040 {\n\
         \tauth_token {env.CADDYPROF_TEST_TOKEN}\n\
         \ttenant_id {env.CADDYPROF_TEST_TENANT}\n\
         }\n",
    );
    fn unset(run: Run) -> Run {
        run.env_remove("CADDYPROF_TEST_TOKEN")
            .env_remove("CADDYPROF_TEST_TENANT")
    }
    let token_error =
        "apps.pyroscope.auth_token: environment variable CADDYPROF_TEST_TOKEN is not set";
    let tenant_error =
        "apps.pyroscope.tenant_id: environment variable CADDYPROF_TEST_TENANT is not set";

    let run = unset(caddyprof(
        dir.path(),
        &["run", "--once", "--window", "1s", "Profilingfile"],
    ))
    .run();
    run.assert_code(1);
    assert!(run.stderr.contains(token_error), "{}", run.stderr);

    let out = unset(caddyprof(dir.path(), &["validate", "Profilingfile"])).run();
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "Valid configuration, but `caddyprof run` would fail in this environment (see the \
         warnings)\n"
    );
    for (message, line) in [(token_error, 2), (tenant_error, 3)] {
        let at = out
            .stderr
            .find(message)
            .unwrap_or_else(|| panic!("no '{message}' in {}", out.stderr));
        let warning = &out.stderr[at..];
        let warning = &warning[..warning[1..].find("⚠").map_or(warning.len(), |i| i + 1)];
        assert!(
            out.stderr[..at].ends_with("⚠ "),
            "not a warning: {}",
            out.stderr
        );
        assert!(
            warning.contains(&format!("[Profilingfile:{line}:2]")),
            "{warning}"
        );
        assert!(
            warning.contains("`caddyprof run` fails with this error"),
            "{warning}"
        );
    }

    // Set, they are resolved: nothing to say.
    let out = caddyprof(dir.path(), &["validate", "Profilingfile"])
        .env("CADDYPROF_TEST_TOKEN", "token")
        .env("CADDYPROF_TEST_TENANT", "tenant")
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout, "Valid configuration\n");
    assert_eq!(out.stderr, "");
}

/// A config file larger than the documented limit (64 MiB) is refused at once with a clear
/// error, by every command that reads one; the file here is sparse, so it costs nothing to make.
#[test]
fn a_file_over_64_mib_is_refused() {
    let dir = temp();
    let path = dir.path().join("Profilingfile");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(caddyprof::MAX_SOURCE_BYTES + 1).unwrap();
    for args in [
        &["validate", "Profilingfile"][..],
        &["adapt", "Profilingfile"],
        &["adapt", "--validate", "Profilingfile"],
        &["fmt", "Profilingfile"],
        &["run", "--once", "--window", "1s", "Profilingfile"],
    ] {
        caddyprof(dir.path(), args)
            .run()
            .assert_failed()
            .assert_stderr_has(
                "Profilingfile is too large: caddyprof reads config files of up to 64 MiB",
            );
    }
    // From stdin too, where there is no size to ask for before reading.
    let big = " ".repeat(usize::try_from(caddyprof::MAX_SOURCE_BYTES).unwrap() + 1);
    caddyprof(dir.path(), &["validate", "-"])
        .stdin(&big)
        .run()
        .assert_failed()
        .assert_stderr_has("<stdin> is too large");
}

#[test]
fn validate_reads_json_by_extension() {
    let dir = temp();
    write(dir.path(), "caddy.json", PYROSCOPE_JSON);
    // Its token is a runtime placeholder, resolved from the environment.
    let out = caddyprof(dir.path(), &["validate", "caddy.json"])
        .env("PYROSCOPE_AUTH_TOKEN", "token")
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout, "Valid configuration\n");
    assert_eq!(out.stderr, "");
}

#[test]
fn validate_reads_json_by_content() {
    let dir = temp();
    write(dir.path(), "config.txt", &format!("\n  {PYROSCOPE_JSON}"));
    let out = caddyprof(dir.path(), &["validate", "config.txt"])
        .env("PYROSCOPE_AUTH_TOKEN", "token")
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout, "Valid configuration\n");
    // The same from stdin, where there is no extension to go by.
    let stdin = caddyprof(dir.path(), &["validate", "-"])
        .stdin(PYROSCOPE_JSON)
        .env("PYROSCOPE_AUTH_TOKEN", "token")
        .run();
    stdin.assert_code(0);
    assert_eq!(stdin.stdout, "Valid configuration\n");
}

#[test]
fn validate_adapter_flag_overrides_the_guess() {
    let dir = temp();
    write(
        dir.path(),
        "profiling.json",
        "pyroscope {\n\tserver_address http://localhost:4040\n}\n",
    );
    // By extension it is JSON, and not valid JSON.
    caddyprof(dir.path(), &["validate", "profiling.json"])
        .run()
        .assert_failed()
        .assert_stderr_has("invalid JSON");
    let forced = caddyprof(
        dir.path(),
        &["validate", "--adapter", "profilingfile", "profiling.json"],
    )
    .run();
    forced.assert_code(0);
    assert_eq!(forced.stdout, "Valid configuration\n");

    write(dir.path(), "config.conf", PYROSCOPE_JSON);
    let json = caddyprof(
        dir.path(),
        &["validate", "--adapter", "json", "config.conf"],
    )
    .env("PYROSCOPE_AUTH_TOKEN", "token")
    .run();
    json.assert_code(0);
    assert_eq!(json.stdout, "Valid configuration\n");
    // Forcing the wrong adapter is honoured, so it fails.
    caddyprof(
        dir.path(),
        &["validate", "--adapter", "profilingfile", "config.conf"],
    )
    .run()
    .assert_failed();
}

#[test]
fn validate_rejects_an_unknown_json_field_with_a_suggestion() {
    let dir = temp();
    write(
        dir.path(),
        "bad.json",
        "{\n\t\"apps\": {\n\t\t\"pyroscope\": {\n\t\t\t\"server_adress\": \"http://localhost:4040\"\n\t\t}\n\t}\n}\n",
    );
    caddyprof(dir.path(), &["validate", "bad.json"])
        .run()
        .assert_failed()
        .assert_stderr_has("apps.pyroscope: unknown field 'server_adress'")
        .assert_stderr_has("bad.json:4:4")
        .assert_stderr_has("did you mean 'server_address'?");
}

#[test]
fn validate_rejects_an_invalid_profilingfile() {
    let dir = temp();
    write(
        dir.path(),
        "bad.Profilingfile",
        "profiling {\n\tprofile_types cpu hepa\n\tprofefe\n}\n",
    );
    caddyprof(dir.path(), &["validate", "bad.Profilingfile"])
        .run()
        .assert_failed()
        .assert_stderr_has("bad.Profilingfile:2:20")
        .assert_stderr_has("heap");
}

#[test]
fn validate_accepts_the_seed_alias_with_a_warning() {
    let dir = temp();
    write(dir.path(), "seed.json", SEED_ALIAS);
    let out = caddyprof(dir.path(), &["validate", "seed.json"]).run();
    out.assert_code(0)
        .assert_stderr_has(
            "apps.profiling.profilers[0].profile_types: read as parameters.profile_types",
        )
        .assert_stderr_has("seed.json:9:6");
    assert_eq!(out.stdout, "Valid configuration\n");
}

#[test]
fn validate_accepts_a_whole_caddy_config_with_notes() {
    let dir = temp();
    write(
        dir.path(),
        "caddy.json",
        r#"{"admin": {"listen": "localhost:2019"}, "apps": {"http": {"servers": {}}, "profefe": {"address": "http://localhost:10100"}}}"#,
    );
    let out = caddyprof(dir.path(), &["validate", "caddy.json"]).run();
    out.assert_code(0)
        .assert_stderr_has("top-level key 'admin' is not used by caddyprof")
        .assert_stderr_has("app 'http' is not used by caddyprof");
    assert_eq!(out.stdout, "Valid configuration\n");
}

#[test]
fn validate_profilingfile_shows_the_notes_of_the_typed_config() {
    let dir = temp();
    // The `file` profiler is a caddyprof extension: Caddy cannot load it, and validate says so.
    write(
        dir.path(),
        "ext.Profilingfile",
        "profiling {\n\tfile {\n\t\tdirectory /var/profiles\n\t}\n}\n",
    );
    let out = caddyprof(dir.path(), &["validate", "ext.Profilingfile"]).run();
    out.assert_code(0)
        .assert_stderr_has("caddyprof extension: Caddy cannot load this configuration")
        .assert_stderr_has("ext.Profilingfile:2:2]");
    assert_eq!(out.stderr.matches("caddyprof extension").count(), 1);
    assert_eq!(out.stdout, "Valid configuration\n");
    // Only validate says it: adapting or running the configuration does not need Caddy.
    let out = caddyprof(dir.path(), &["adapt", "ext.Profilingfile"]).run();
    out.assert_code(0);
    assert!(!out.stderr.contains("extension"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------------
// fmt
// ---------------------------------------------------------------------------------------------

const UNFORMATTED: &str =
    "pyroscope   http://localhost:4040 {\n  upload_rate 10s\n    application_name  app\n}\n";
const FORMATTED: &str =
    "pyroscope http://localhost:4040 {\n\tupload_rate 10s\n\tapplication_name app\n}\n";

#[test]
fn fmt_prints_the_canonical_form() {
    let dir = temp();
    let path = write(dir.path(), "Profilingfile", UNFORMATTED);
    let out = caddyprof(dir.path(), &["fmt", "Profilingfile"]).run();
    out.assert_code(0);
    assert_eq!(out.stdout, FORMATTED);
    assert_eq!(
        std::fs::read_to_string(path).unwrap(),
        UNFORMATTED,
        "untouched"
    );
}

#[test]
fn fmt_formats_stdin() {
    let dir = temp();
    let out = caddyprof(dir.path(), &["fmt", "-"])
        .stdin(UNFORMATTED)
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout, FORMATTED);
}

#[test]
fn fmt_overwrite_rewrites_the_file() {
    let dir = temp();
    let path = write(dir.path(), "Profilingfile", UNFORMATTED);
    let out = caddyprof(dir.path(), &["fmt", "--overwrite", "Profilingfile"]).run();
    out.assert_code(0);
    assert_eq!(out.stdout, "");
    assert_eq!(std::fs::read_to_string(path).unwrap(), FORMATTED);
}

#[test]
fn fmt_overwrite_leaves_a_formatted_file_untouched() {
    let dir = temp();
    let path = write(dir.path(), "Profilingfile", FORMATTED);
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    caddyprof(dir.path(), &["fmt", "--overwrite", "Profilingfile"])
        .run()
        .assert_code(0);
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    assert_eq!(modified, old, "the file was not written");
    assert_eq!(std::fs::read_to_string(path).unwrap(), FORMATTED);
}

#[test]
fn fmt_overwrite_refuses_stdin() {
    let dir = temp();
    let out = caddyprof(dir.path(), &["fmt", "--overwrite", "-"])
        .stdin(UNFORMATTED)
        .run();
    out.assert_code(2)
        .assert_stderr_has("--overwrite cannot be used with stdin")
        .assert_stderr_has("Usage: caddyprof fmt");
    assert!(
        !dir.path().join("-").exists(),
        "no file named '-' is created"
    );
}

#[test]
fn fmt_diff_prints_a_unified_diff_and_exits_one() {
    let dir = temp();
    let path = write(dir.path(), "Profilingfile", UNFORMATTED);
    let out = caddyprof(dir.path(), &["fmt", "--diff", "Profilingfile"]).run();
    out.assert_code(1);
    assert!(
        out.stdout
            .starts_with("--- Profilingfile\n+++ Profilingfile (formatted)\n@@ -1,4 +1,4 @@\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("\n-pyroscope   http://localhost:4040 {\n")
    );
    assert!(
        out.stdout
            .contains("\n+pyroscope http://localhost:4040 {\n")
    );
    assert!(out.stdout.contains("\n+\tapplication_name app\n"));
    assert!(out.stdout.contains("\n }\n"), "unchanged line as context");
    assert_eq!(
        std::fs::read_to_string(path).unwrap(),
        UNFORMATTED,
        "untouched"
    );
}

#[test]
fn fmt_diff_is_silent_for_a_formatted_file() {
    let dir = temp();
    write(dir.path(), "Profilingfile", FORMATTED);
    let out = caddyprof(dir.path(), &["fmt", "--diff", "Profilingfile"]).run();
    out.assert_code(0);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "");
}

#[test]
fn fmt_reports_a_file_that_cannot_be_parsed() {
    let dir = temp();
    let path = write(
        dir.path(),
        "Profilingfile",
        "profiling {\n\tprofefe \"unterminated\n}\n",
    );
    for args in [
        &["fmt", "Profilingfile"][..],
        &["fmt", "--overwrite", "Profilingfile"],
        &["fmt", "--diff", "Profilingfile"],
    ] {
        caddyprof(dir.path(), args)
            .run()
            .assert_failed()
            .assert_stderr_has("unterminated quoted text")
            .assert_stderr_has("Profilingfile:2:10");
    }
    assert_eq!(
        std::fs::read_to_string(path).unwrap(),
        "profiling {\n\tprofefe \"unterminated\n}\n"
    );
}

#[test]
fn fmt_of_an_empty_file_prints_nothing() {
    let dir = temp();
    let path = write(dir.path(), "Profilingfile", "");
    for args in [
        &["fmt", "Profilingfile"][..],
        &["fmt", "--overwrite", "Profilingfile"],
        &["fmt", "--diff", "Profilingfile"],
    ] {
        let out = caddyprof(dir.path(), args).run();
        out.assert_code(0);
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str()),
            ("", ""),
            "{args:?}"
        );
    }
    assert_eq!(std::fs::read_to_string(path).unwrap(), "");
    let out = caddyprof(dir.path(), &["fmt", "-"]).stdin("").run();
    out.assert_code(0);
    assert_eq!(out.stdout, "");
}

// ---------------------------------------------------------------------------------------------
// Limits: input no config needs is refused with a diagnostic, never a crash
// ---------------------------------------------------------------------------------------------

/// 5,040 nested blocks (each on its own line, so the one that crosses the limit of 32 is on
/// line 33) used to overflow the stack of every command.
#[test]
fn deeply_nested_blocks_are_a_diagnostic() {
    let dir = temp();
    let levels = 5040;
    let text = format!(
        "profiling {{\n{}{}",
        "a {\n".repeat(levels - 1),
        "}\n".repeat(levels)
    );
    write(dir.path(), "Profilingfile", &text);
    for command in ["fmt", "adapt", "validate"] {
        caddyprof(dir.path(), &[command, "Profilingfile"])
            .run()
            .assert_failed()
            .assert_stderr_has("blocks are nested more than 32 levels deep")
            .assert_stderr_has("Profilingfile:33:3");
    }
}

/// An unterminated quote on a 10 MB line used to print the whole line.
#[test]
fn a_diagnostic_shows_a_window_of_a_long_line() {
    let dir = temp();
    let text = format!(
        "pyroscope {{\n\tapplication_name \"{}\n}}\n",
        "x".repeat(10_000_000)
    );
    write(dir.path(), "Profilingfile", &text);
    for command in ["fmt", "adapt", "validate"] {
        let out = caddyprof(dir.path(), &[command, "Profilingfile"]).run();
        out.assert_failed()
            .assert_stderr_has("unterminated quoted text")
            .assert_stderr_has("Profilingfile:2:19")
            .assert_stderr_has("\"xxxxxxxxxx");
        assert!(out.stderr.len() < 2000, "{} bytes", out.stderr.len());
    }
}

/// A binary file used to be read as words ("a block key cannot contain a comma"), and its
/// bytes written to the terminal.
#[test]
fn a_binary_file_is_not_a_text_profilingfile() {
    let dir = temp();
    let mut bytes = b"profiling {\n\t\x1b[2J".to_vec();
    bytes.extend((0..=255u8).cycle().take(4096));
    std::fs::write(dir.path().join("Profilingfile"), &bytes).unwrap();
    for command in ["fmt", "adapt", "validate"] {
        let out = caddyprof(dir.path(), &[command, "Profilingfile"]).run();
        out.assert_failed()
            .assert_stderr_has("Profilingfile is not a text Profilingfile: byte 17 is a NUL byte");
        assert!(
            !out.stderr.contains(['\u{1b}', '\u{0}']),
            "{:?}",
            out.stderr
        );
    }
}

/// Bytes that are not UTF-8 on standard input are refused as a file's are, with their offset.
#[test]
fn binary_standard_input_is_not_a_text_profilingfile() {
    for command in ["fmt", "adapt", "validate"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_caddyprof"))
            .args([command, "-"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // The binary may exit before reading all of it: a broken pipe is not a failure.
        let _ = stdin.write_all(b"profiling {\n\tpro\xff\xfe\n}\n");
        drop(stdin);
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{command}: {stderr}");
        assert!(
            stderr.contains("<stdin> is not a text Profilingfile: byte 16 is not UTF-8"),
            "{command}: {stderr}"
        );
    }
}

/// `import /etc/shadow` printed the file's first lines inside the diagnostic.
#[test]
fn an_imported_file_that_is_no_profilingfile_is_not_shown() {
    let dir = temp();
    let secret = write(
        dir.path(),
        "shadow",
        "root:$6$SECRETHASH:19745:0:99999:7:::\ndaemon:*:19745:0:99999:7:::\n",
    );
    let text = format!("import {}\n", secret.display());
    write(dir.path(), "Profilingfile", &text);
    for command in ["adapt", "validate"] {
        let out = caddyprof(dir.path(), &[command, "Profilingfile"]).run();
        out.assert_failed()
            .assert_stderr_has(&format!("{} is not a Profilingfile", secret.display()))
            .assert_stderr_has("Profilingfile:1:1");
        assert!(!out.stderr.contains("SECRET"), "{}", out.stderr);
        assert!(!out.stderr.contains("daemon"), "{}", out.stderr);
    }
}

#[test]
fn deeply_nested_json_is_a_diagnostic() {
    let dir = temp();
    let levels = 5040;
    let text = format!(
        "{{\"apps\": {{\"profiling\": {}{}}}}}",
        "[".repeat(levels - 2),
        "]".repeat(levels - 2)
    );
    write(dir.path(), "config.json", &text);
    caddyprof(dir.path(), &["validate", "config.json"])
        .run()
        .assert_failed()
        .assert_stderr_has("JSON nested more than 32 levels deep")
        .assert_stderr_has("config.json:1:54");
}

// ---------------------------------------------------------------------------------------------
// Usage, help and version
// ---------------------------------------------------------------------------------------------

#[test]
fn usage_errors_exit_two() {
    let dir = temp();
    write(dir.path(), "Profilingfile", FORMATTED);
    for args in [
        &[][..],
        &["bogus"],
        &["adapt"],
        &["adapt", "--bogus", "Profilingfile"],
        &["adapt", "Profilingfile", "--config", "Profilingfile"],
        &["validate"],
        &["validate", "--adapter", "yaml", "Profilingfile"],
        &["fmt"],
        &["fmt", "--overwrite", "--diff", "Profilingfile"],
    ] {
        let out = caddyprof(dir.path(), args).run();
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{args:?}");
        // Either an error naming the problem, or (with no command at all) the help.
        assert!(
            out.stderr.contains("error:") || out.stderr.contains("Usage: caddyprof <COMMAND>"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn usage_error_names_the_problem() {
    let dir = temp();
    caddyprof(
        dir.path(),
        &["fmt", "--overwrite", "--diff", "Profilingfile"],
    )
    .run()
    .assert_code(2)
    .assert_stderr_has("'--overwrite' cannot be used with '--diff'");
    caddyprof(dir.path(), &["adapt"])
        .run()
        .assert_code(2)
        .assert_stderr_has("<FILE>");
}

#[test]
fn help_shows_examples_for_every_command() {
    let dir = temp();
    for (args, example) in [
        (&["--help"][..], "caddyprof adapt"),
        (
            &["adapt", "--help"],
            "cat Profilingfile | caddyprof adapt -",
        ),
        (&["validate", "--help"], "caddyprof validate --adapter json"),
        (&["fmt", "--help"], "caddyprof fmt --diff Profilingfile"),
        (&["help", "fmt"], "caddyprof fmt --overwrite Profilingfile"),
    ] {
        let out = caddyprof(dir.path(), args).run();
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert!(out.stdout.contains("Usage: caddyprof"), "{args:?}");
        assert!(
            out.stdout.contains("Examples:"),
            "{args:?}:\n{}",
            out.stdout
        );
        assert!(out.stdout.contains(example), "{args:?}:\n{}", out.stdout);
    }
}

#[test]
fn version_prints_the_crate_version() {
    let dir = temp();
    for flag in ["--version", "-V"] {
        let out = caddyprof(dir.path(), &[flag]).run();
        out.assert_code(0);
        assert_eq!(
            out.stdout,
            format!("caddyprof {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}
