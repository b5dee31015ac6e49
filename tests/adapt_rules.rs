//! The Profilingfile → JSON rules of `docs/profilingfile.md` §12, one case each.

use serde_json::{Value, json};

fn adapt(input: &str) -> Value {
    let file = caddyprof::SourceFile::new("Profilingfile", input);
    let options = caddyprof::AdaptOptions {
        env: Box::new(|name| (name == "RATE").then(|| "250".to_owned())),
        base_dir: std::env::temp_dir(),
    };
    caddyprof::adapt_source(&file, &options)
        .unwrap_or_else(|e| panic!("{input:?}: {}", e.render_plain()))
        .json
}

fn warnings(input: &str) -> Vec<String> {
    let file = caddyprof::SourceFile::new("Profilingfile", input);
    let adapted = caddyprof::adapt_source(&file, &caddyprof::AdaptOptions::default()).unwrap();
    adapted
        .warnings
        .iter()
        .map(|w| w.message().to_owned())
        .collect()
}

#[test]
fn rates_are_integers_and_names_are_strings() {
    assert_eq!(
        adapt("pyroscope {\n\tapplication_name \"my app\"\n\tcpu_profile_rate {$RATE}\n}\n"),
        json!({"apps": {"pyroscope": {"application_name": "my app", "parameters": {"cpu_profile_rate": 250}}}})
    );
}

#[test]
fn profile_types_take_several_arguments_and_repeating_appends() {
    assert_eq!(
        adapt("profiling {\n\tprofile_types cpu heap\n\tprofile_types goroutine\n}\n"),
        json!({"apps": {"profiling": {"profile_types": ["cpu", "heap", "goroutine"]}}})
    );
}

#[test]
fn flags_without_argument_are_true_and_accept_true_false() {
    assert_eq!(
        adapt("pyroscope {\n\tdisable_gc_runs\n}\n"),
        json!({"apps": {"pyroscope": {"disable_gc_runs": true}}})
    );
    assert_eq!(
        adapt("pyroscope {\n\tdisable_gc_runs false\n}\n"),
        json!({"apps": {"pyroscope": {"disable_gc_runs": false}}})
    );
}

#[test]
fn children_keep_source_order_with_profiler_first() {
    let json = adapt(
        "profiling {\n\tprofefe {\n\t\tservice svc\n\t}\n\tpyroscope http://a:4040\n\tprofefe http://b:10100\n}\n",
    );
    assert_eq!(
        json.to_string(),
        r#"{"apps":{"profiling":{"profilers":[{"profiler":"profefe","service":"svc"},{"profiler":"pyroscope","server_address":"http://a:4040"},{"profiler":"profefe","address":"http://b:10100"}]}}}"#
    );
}

#[test]
fn parameters_written_directly_or_in_a_block_go_under_parameters() {
    let direct = adapt(
        "profefe {\n\tservice s\n\tcpu_profile_rate 50\n\tprofile_types cpu\n\ttimeout 10s\n}\n",
    );
    let block = adapt(
        "profefe {\n\tservice s\n\tparameters {\n\t\tcpu_profile_rate 50\n\t\tprofile_types cpu\n\t}\n\ttimeout 10s\n}\n",
    );
    assert_eq!(direct, block);
    assert_eq!(
        direct.to_string(),
        r#"{"apps":{"profefe":{"service":"s","parameters":{"cpu_profile_rate":50,"profile_types":["cpu"]},"timeout":"10s"}}}"#
    );
}

#[test]
fn an_app_block_may_take_its_address_as_second_key() {
    assert_eq!(
        adapt("pyroscope http://localhost:4040 {\n\tupload_rate 10s\n}\n"),
        json!({"apps": {"pyroscope": {"server_address": "http://localhost:4040", "upload_rate": "10s"}}})
    );
}

#[test]
fn bare_apps_and_bare_children_are_valid() {
    assert_eq!(adapt("profefe\n"), json!({"apps": {"profefe": {}}}));
    assert_eq!(
        adapt("profiling {\n\tprofefe\n}\n"),
        json!({"apps": {"profiling": {"profilers": [{"profiler": "profefe"}]}}})
    );
}

#[test]
fn the_file_extension_takes_a_directory_argument() {
    assert_eq!(
        adapt("profiling {\n\tfile ./profiles {\n\t\tinterval 10s\n\t}\n}\n"),
        json!({"apps": {"profiling": {"profilers": [{"profiler": "file", "directory": "./profiles", "interval": "10s"}]}}})
    );
}

#[test]
fn placeholders_are_kept_verbatim() {
    assert_eq!(
        adapt(
            "pyroscope {\n\tserver_address {env.PYRO_URL}\n\tauth_token {env.PYROSCOPE_AUTH_TOKEN}\n\tupload_rate {env.RATE}\n}\n"
        ),
        json!({"apps": {"pyroscope": {"server_address": "{env.PYRO_URL}", "auth_token": "{env.PYROSCOPE_AUTH_TOKEN}", "upload_rate": "{env.RATE}"}}})
    );
}

#[test]
fn apps_keep_source_order() {
    let json = adapt("profefe {\n}\npyroscope {\n}\n");
    assert_eq!(
        json.to_string(),
        r#"{"apps":{"profefe":{},"pyroscope":{}}}"#
    );
}

#[test]
fn suspicious_values_warn_without_failing() {
    let found = warnings("profiling {\n\tcpu_profile_rate 5000\n\tprofile_types cpu cpu\n}\n");
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("5000"));
    assert!(found[1].contains("twice"));
}
