//! The JSON loader against the seed's examples, its diagnostics (snapshots in `snapshots/`),
//! and a no-panic property.

use caddyprof::apps::PyroscopeApp;
use caddyprof::config::{Duration, ProfileType};
use caddyprof::{Config, SourceFile};
use proptest::prelude::*;
use serde_json::Value;

/// The seed's first example, with its trailing comma removed and the child's `profile_types`
/// moved under `parameters` (the canonical form).
const PROFILING: &str = r#"{
"apps": {
"profiling": {
"cpu_profile_rate": 2,
"block_profile_rate": 2,
"mutex_profile_fraction": 2,
"profile_types": ["cpu","heap","allocs","goroutine"],
"profilers": [
{
"profiler": "pyroscope",
"server_address": "http://localhost:4040"
},
{
"profiler": "pyroscope",
"server_address": "http://another-instance.local:4040",
"parameters": {"profile_types": ["heap"]}
},
{
"profiler": "profefe"
}
]
}
}
}"#;

const PYROSCOPE: &str = r#"{
"apps": {
"pyroscope": {
"server_address": "http://localhost:4040",
"application_name": "my_cool_app",
"auth_token": "{env.PYROSCOPE_AUTH_TOKEN}",
"parameters": {
"cpu_profile_rate": 2,
"block_profile_rate": 2,
"mutex_profile_fraction": 2,
"profile_types": ["cpu","heap","allocs","goroutine"]
}
}
}
}"#;

const PROFEFE: &str = r#"{
"apps": {
"profefe": {
"address": "http://localhost:4040",
"service": "my_cool_app",
"timeout": "10m",
"parameters": {
"cpu_profile_rate": 2,
"block_profile_rate": 2,
"mutex_profile_fraction": 2,
"profile_types": ["cpu","heap","allocs","goroutine"]
}
}
}
}"#;

fn load(text: &str) -> caddyprof::config::Loaded {
    match Config::load_json(&SourceFile::new("config.json", text)) {
        Ok(loaded) => loaded,
        Err(e) => panic!("{}", e.render_plain()),
    }
}

fn assert_round_trip(text: &str) {
    let config = Config::from_json(text).unwrap();
    let input: Value = serde_json::from_str(text).unwrap();
    assert_eq!(config.to_json(), input);
    // The canonical output loads back to the same configuration.
    assert_eq!(
        Config::from_json(&config.to_json().to_string()).unwrap(),
        config
    );
}

const FOUR: [ProfileType; 4] = [
    ProfileType::Cpu,
    ProfileType::Heap,
    ProfileType::Allocs,
    ProfileType::Goroutine,
];

#[test]
fn seed_profiling() {
    let loaded = load(PROFILING);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let app = loaded.config.profiling.unwrap();
    assert_eq!(app.parameters.cpu_profile_rate, Some(2));
    assert_eq!(app.parameters.block_profile_rate, Some(2));
    assert_eq!(app.parameters.mutex_profile_fraction, Some(2));
    assert_eq!(app.parameters.profile_types.as_deref(), Some(&FOUR[..]));
    assert_eq!(app.profilers.len(), 3);
    let Some(second) = app.profilers[1].get::<PyroscopeApp>() else {
        panic!("not pyroscope")
    };
    assert_eq!(
        second.server_address.as_deref(),
        Some("http://another-instance.local:4040")
    );
    assert_eq!(
        second.parameters.as_ref().unwrap().profile_types,
        Some(vec![ProfileType::Heap])
    );
    assert_eq!(app.profilers[2].name(), "profefe");
    assert_round_trip(PROFILING);
}

#[test]
fn seed_alias_loads_with_a_warning() {
    let alias = PROFILING.replace(
        r#""parameters": {"profile_types": ["heap"]}"#,
        r#""profile_types": ["heap"]"#,
    );
    let loaded = load(&alias);
    assert_eq!(loaded.warnings.len(), 1);
    let warning = &loaded.warnings[0];
    assert!(!warning.is_error());
    assert_eq!(
        warning.message(),
        "apps.profiling.profilers[1].profile_types: read as parameters.profile_types"
    );
    let at = warning.location().unwrap();
    assert_eq!(&alias[at.start..at.end], r#""profile_types""#);
    // The alias means exactly the canonical form, and is never written back.
    assert_eq!(loaded.config, Config::from_json(PROFILING).unwrap());
    let canonical: Value = serde_json::from_str(PROFILING).unwrap();
    assert_eq!(loaded.config.to_json(), canonical);
}

#[test]
fn seed_pyroscope() {
    let app = load(PYROSCOPE).config.pyroscope.unwrap();
    assert_eq!(app.application_name.as_deref(), Some("my_cool_app"));
    assert_eq!(
        app.auth_token.as_deref(),
        Some("{env.PYROSCOPE_AUTH_TOKEN}")
    );
    assert!(!format!("{app:?}").contains("PYROSCOPE_AUTH_TOKEN"));
    assert_eq!(
        app.parameters.unwrap().profile_types.as_deref(),
        Some(&FOUR[..])
    );
    assert_round_trip(PYROSCOPE);
}

#[test]
fn seed_profefe() {
    let app = load(PROFEFE).config.profefe.unwrap();
    assert_eq!(app.service.as_deref(), Some("my_cool_app"));
    assert_eq!(
        app.timeout.as_ref().and_then(Duration::to_std),
        Some(std::time::Duration::from_secs(600))
    );
    assert_round_trip(PROFEFE);
}

#[test]
fn canonical_order_and_forms() {
    let text = r#"{"admin": {"disabled": true}, "apps": {"http": {}, "pyroscope": {
        "parameters": {"profile_types": ["cpu"]}, "upload_rate": 5000000000,
        "server_address": "http://p:4040", "application_name": "a"},
        "profiling": {"profilers": [{"server_address": "http://x:1", "profiler": "pyroscope",
        "upload_rate": "1.5m"}], "cpu_profile_rate": 100}}}"#;
    let loaded = load(text);
    assert_eq!(loaded.warnings.len(), 2, "admin and http are noted");
    assert_eq!(
        loaded.config.to_json().to_string(),
        concat!(
            r#"{"apps":{"profiling":{"cpu_profile_rate":100,"profilers":[{"profiler":"pyroscope","#,
            r#""server_address":"http://x:1","upload_rate":"1.5m"}]},"pyroscope":{"#,
            r#""application_name":"a","server_address":"http://p:4040","upload_rate":5000000000,"#,
            r#""parameters":{"profile_types":["cpu"]}}}}"#
        )
    );
}

/// Loading says nothing of the extension (running it needs no Caddy); `Config::caddy_notes`,
/// which `validate` prints, does.
#[test]
fn extension_profiler_gets_a_note_for_caddy() {
    let loaded = load(
        r#"{"apps": {"profiling": {"profilers": [{"profiler": "file", "directory": "/tmp/p", "interval": "30s"}]}}}"#,
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let notes = loaded.config.caddy_notes();
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0]
            .message()
            .starts_with("apps.profiling.profilers[0]: the 'file' profiler")
    );
    assert!(notes[0].message().contains("Caddy cannot load"));
    assert!(loaded.config.profiling.unwrap().profilers[0].is_extension());
}

/// Bad inputs and the diagnostics they must give.
const BAD: &[(&str, &str)] = &[
    (
        "trailing_comma",
        "{\n\"apps\": {\n\"profefe\": {\n\"service\": \"x\",\n}\n}\n}",
    ),
    ("not_json", "apps: profiling"),
    (
        "unknown_field",
        r#"{"apps": {"pyroscope": {"sever_address": "http://localhost:4040"}}}"#,
    ),
    (
        "unknown_child_field",
        r#"{"apps": {"profiling": {"profilers": [{"profiler": "profefe"}, {"profiler": "pyroscope", "upload_rat": "10s"}]}}}"#,
    ),
    (
        "duplicate_app",
        "{\"apps\": {\n  \"pyroscope\": {\"application_name\": \"a\"},\n  \"pyroscope\": {\"application_name\": \"b\"}\n}}",
    ),
    (
        "negative_rate",
        r#"{"apps": {"profiling": {"cpu_profile_rate": -5, "profilers": [{"profiler": "profefe"}]}}}"#,
    ),
    (
        "fractional_rate",
        r#"{"apps": {"pyroscope": {"parameters": {"mutex_profile_fraction": 2.5}}}}"#,
    ),
    (
        "string_rate",
        r#"{"apps": {"pyroscope": {"parameters": {"block_profile_rate": "10"}}}}"#,
    ),
    (
        "unknown_profile_type",
        r#"{"apps": {"profefe": {"parameters": {"profile_types": ["cpu", "hep"]}}}}"#,
    ),
    (
        "bad_duration",
        r#"{"apps": {"profefe": {"timeout": "10 s"}}}"#,
    ),
    (
        "empty_duration",
        r#"{"apps": {"profefe": {"timeout": ""}}}"#,
    ),
    (
        "zero_upload_rate",
        r#"{"apps": {"profiling": {"profilers": [{"profiler": "pyroscope", "upload_rate": "0s"}]}}}"#,
    ),
    (
        "bad_url",
        r#"{"apps": {"pyroscope": {"server_address": "localhost:4040"}}}"#,
    ),
    (
        "alias_and_parameters",
        r#"{"apps": {"profiling": {"profilers": [{"profiler": "pyroscope", "profile_types": ["heap"], "parameters": {"profile_types": ["cpu"]}}]}}}"#,
    ),
    ("missing_apps", r#"{"admin": {"listen": "localhost:2019"}}"#),
    ("apps_not_object", r#"{"apps": ["profiling"]}"#),
    (
        "unknown_profiler",
        r#"{"apps": {"profiling": {"profilers": [{"profiler": "pyroscop"}]}}}"#,
    ),
    (
        "missing_profiler",
        "{\"apps\": {\"profiling\": {\"profilers\": [\n  {\"server_address\": \"http://localhost:4040\"}\n]}}}",
    ),
    ("not_an_object", "[1, 2]"),
    (
        "nested_too_deep",
        r#"{"apps": {"profiling": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}"#,
    ),
    (
        "wrong_type_bool",
        r#"{"apps": {"pyroscope": {"disable_gc_runs": "yes"}}}"#,
    ),
    (
        "several_errors",
        r#"{"apps": {"profefe": {"service": 7, "parameters": {"cpu_profile_rate": -1, "profile_types": "cpu"}}}}"#,
    ),
];

#[test]
fn bad_json_diagnostics() {
    for (name, text) in BAD {
        let file = SourceFile::new("config.json", *text);
        let err = match Config::load_json(&file) {
            Ok(loaded) => panic!("{name}: accepted: {:?}", loaded.config),
            Err(err) => err,
        };
        for d in err.diagnostics() {
            assert!(d.is_error(), "{name}");
            assert!(d.location().is_some(), "{name}: no location");
            assert!(d.help_text().is_some(), "{name}: no help");
        }
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!(format!("json_{name}"), err.render_plain());
        });
    }
}

/// Warnings and notes, also snapshotted.
const NOTED: &[(&str, &str)] = &[
    (
        "whole_caddy_config",
        r#"{"admin": {"listen": ":2019"}, "logging": {}, "apps": {"http": {}, "pyroscop": {}, "profefe": {"timeout": 0}}}"#,
    ),
    (
        "high_cpu_rate",
        r#"{"apps": {"pyroscope": {"parameters": {"cpu_profile_rate": 5000}}}}"#,
    ),
];

#[test]
fn warning_diagnostics() {
    for (name, text) in NOTED {
        let loaded = load(text);
        let rendered: Vec<String> = loaded.warnings.iter().map(|w| w.render_plain()).collect();
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!(format!("json_warn_{name}"), rendered.join("\n"));
        });
    }
}

fn json_ish() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("apps".to_string()),
        Just("profiling".to_string()),
        Just("pyroscope".to_string()),
        Just("profefe".to_string()),
        Just("profilers".to_string()),
        Just("profiler".to_string()),
        Just("parameters".to_string()),
        Just("profile_types".to_string()),
        Just("cpu_profile_rate".to_string()),
        Just("upload_rate".to_string()),
        Just("timeout".to_string()),
        Just("server_address".to_string()),
        "[a-z_µ]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[0-9a-z.:/{}µ -]{0,12}".prop_map(Value::from),
        Just(Value::from("10s")),
        Just(Value::from("http://localhost:4040")),
        Just(Value::from("cpu")),
    ];
    leaf.prop_recursive(5, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..5)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        let _ = Config::from_json(&text);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_ish()) {
        let _ = Config::from_json(&value.to_string());
        let wrapped = serde_json::json!({"apps": value});
        if let Ok(config) = Config::from_json(&wrapped.to_string()) {
            // Whatever loads, its canonical form loads back to the same thing.
            prop_assert_eq!(Config::from_json(&config.to_json().to_string()).unwrap(), config);
        }
    }
}
