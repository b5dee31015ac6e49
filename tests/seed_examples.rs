//! The seed's three examples, written as Profilingfiles in `examples/`, adapt to the seed's
//! JSON (with the one documented difference: a child's `profile_types` goes under
//! `parameters`, the form the real module accepts).

use serde_json::{Value, json};

fn adapt_example(name: &str) -> Value {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    caddyprof::adapt_file(&path)
        .unwrap_or_else(|e| panic!("{name}: {}", e.render_plain()))
        .json
}

#[test]
fn profiling_example_matches_the_seed() {
    let seed = json!({"apps": {"profiling": {
        "cpu_profile_rate": 2,
        "block_profile_rate": 2,
        "mutex_profile_fraction": 2,
        "profile_types": ["cpu", "heap", "allocs", "goroutine"],
        "profilers": [
            {"profiler": "pyroscope", "server_address": "http://localhost:4040"},
            {"profiler": "pyroscope", "server_address": "http://another-instance.local:4040",
             "parameters": {"profile_types": ["heap"]}},
            {"profiler": "profefe"}
        ]
    }}});
    let adapted = adapt_example("profiling.Profilingfile");
    assert_eq!(adapted, seed);
    // Key order follows the source, which follows the seed.
    assert_eq!(adapted.to_string(), seed.to_string());
}

#[test]
fn pyroscope_example_matches_the_seed() {
    let seed = json!({"apps": {"pyroscope": {
        "server_address": "http://localhost:4040",
        "application_name": "my_cool_app",
        "auth_token": "{env.PYROSCOPE_AUTH_TOKEN}",
        "parameters": {
            "cpu_profile_rate": 2,
            "block_profile_rate": 2,
            "mutex_profile_fraction": 2,
            "profile_types": ["cpu", "heap", "allocs", "goroutine"]
        }
    }}});
    let adapted = adapt_example("pyroscope.Profilingfile");
    assert_eq!(adapted.to_string(), seed.to_string());
}

#[test]
fn profefe_example_matches_the_seed() {
    let seed = json!({"apps": {"profefe": {
        "address": "http://localhost:4040",
        "service": "my_cool_app",
        "timeout": "10m",
        "parameters": {
            "cpu_profile_rate": 2,
            "block_profile_rate": 2,
            "mutex_profile_fraction": 2,
            "profile_types": ["cpu", "heap", "allocs", "goroutine"]
        }
    }}});
    let adapted = adapt_example("profefe.Profilingfile");
    assert_eq!(adapted.to_string(), seed.to_string());
}
