//! The resolution of whole configurations: inheritance, defaults, placeholders, checks.

use super::*;
use crate::apps::profefe;
use crate::fields::ProfileType::{self, *};
use crate::fields::parameters::DEFAULT_CPU_HZ;
use std::path::PathBuf;
use std::time::Duration;

fn options(vars: &[(&str, &str)]) -> PlanOptions {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    PlanOptions {
        env: Box::new(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())),
        executable_name: "myexe".into(),
    }
}

fn resolve_with(apps: &str, vars: &[(&str, &str)]) -> Result<Planned, Error> {
    let config = Config::from_json(&format!(r#"{{"apps": {{{apps}}}}}"#))
        .unwrap_or_else(|e| panic!("{}", e.render_plain()));
    Plan::resolve(&config, &options(vars))
}

fn resolve(apps: &str) -> Planned {
    resolve_with(apps, &[]).unwrap_or_else(|e| panic!("{}", e.render_plain()))
}

fn errors(apps: &str, vars: &[(&str, &str)]) -> Vec<String> {
    let error = resolve_with(apps, vars).expect_err("should fail");
    error
        .diagnostics()
        .iter()
        .map(|d| d.message().to_owned())
        .collect()
}

fn warnings(planned: &Planned) -> Vec<&str> {
    planned.warnings.iter().map(Diagnostic::message).collect()
}

/// The settings of `sink`, which must be a `T`'s.
fn settings<T: 'static>(sink: &Arc<dyn SinkSettings>) -> &T {
    sink.as_any()
        .downcast_ref()
        .unwrap_or_else(|| panic!("not a {}: {sink:?}", std::any::type_name::<T>()))
}

fn pyroscope(sink: &Arc<dyn SinkSettings>) -> &PyroscopeSettings {
    settings(sink)
}

fn profefe(sink: &Arc<dyn SinkSettings>) -> &ProfefeSettings {
    settings(sink)
}

fn file(sink: &Arc<dyn SinkSettings>) -> &FileSettings {
    settings(sink)
}

#[test]
fn children_inherit_rates_and_replace_types_wholesale() {
    let planned = resolve(
        r#""profiling": {"cpu_profile_rate": 250, "block_profile_rate": 7,
            "mutex_profile_fraction": 5, "profile_types": ["cpu", "goroutine", "block"],
            "profilers": [
                {"profiler": "pyroscope"},
                {"profiler": "pyroscope", "parameters": {"profile_types": ["heap"], "cpu_profile_rate": 50}},
                {"profiler": "profefe", "parameters": {"block_profile_rate": 9}},
                {"profiler": "file", "parameters": {}}
            ]}"#,
    );
    let sinks = &planned.plan.sinks;
    assert_eq!(sinks.len(), 4);
    let inherited = Sampling {
        profile_types: vec![Cpu, Goroutine, Block],
        cpu_hz: 250,
        block_rate: 7,
        mutex_fraction: 5,
    };
    assert_eq!(sinks[0].sampling(), &inherited);
    assert_eq!(
        sinks[1].sampling(),
        &Sampling {
            profile_types: vec![Heap],
            cpu_hz: 50,
            ..inherited.clone()
        }
    );
    assert_eq!(
        sinks[2].sampling(),
        &Sampling {
            block_rate: 9,
            ..inherited.clone()
        }
    );
    assert_eq!(sinks[3].sampling(), &inherited);
    assert_eq!(sinks[2].path(), "apps.profiling.profilers[2]");
}

#[test]
fn more_than_many_profilers_is_a_warning() {
    let children = |n: usize| {
        let child = r#"{"profiler": "file", "directory": "/tmp/p"}"#;
        format!(
            r#""profiling": {{"profilers": [{}]}}"#,
            vec![child; n].join(",")
        )
    };
    let many = |planned: &Planned| -> Vec<String> {
        warnings(planned)
            .into_iter()
            .filter(|w| w.contains("profilers in one process"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(many(&resolve(&children(MANY_PROFILERS))), [] as [String; 0]);
    let planned = resolve(&children(MANY_PROFILERS + 1));
    assert_eq!(planned.plan.sinks.len(), MANY_PROFILERS + 1);
    let said = many(&planned);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].starts_with(&format!(
            "apps.profiling.profilers[{MANY_PROFILERS}]: {} profilers in one process, \
             more than {MANY_PROFILERS}",
            MANY_PROFILERS + 1
        )),
        "{said:?}"
    );
    // The top-level apps count too.
    let planned = resolve(&format!(
        r#"{}, "pyroscope": {{"server_address": "http://p:4040"}}"#,
        children(MANY_PROFILERS)
    ));
    assert!(many(&planned)[0].starts_with("apps.pyroscope: 101 profilers"));
}

#[test]
fn default_profile_types_per_sink() {
    let planned = resolve(
        r#""profiling": {"profilers": [{"profiler": "pyroscope"}, {"profiler": "profefe"},
            {"profiler": "file"}]}"#,
    );
    let types: Vec<&[ProfileType]> = planned
        .plan
        .sinks
        .iter()
        .map(|s| s.sampling().profile_types.as_slice())
        .collect();
    assert_eq!(types, [&[Cpu, Heap, Allocs][..], &[Cpu], &[Cpu, Heap]]);
    // The profiling app's list applies when the child has none of its own.
    let planned = resolve(
        r#""profiling": {"profile_types": ["mutex"], "mutex_profile_fraction": 3,
            "profilers": [{"profiler": "pyroscope"}]}"#,
    );
    assert_eq!(planned.plan.sinks[0].sampling().profile_types, [Mutex]);
}

#[test]
fn types_are_deduplicated_in_canonical_order() {
    let planned =
        resolve(r#""profefe": {"parameters": {"profile_types": ["heap", "cpu", "heap"]}}"#);
    assert_eq!(planned.plan.sinks[0].sampling().profile_types, [Cpu, Heap]);
}

#[test]
fn rate_defaults() {
    let planned = resolve(
        r#""pyroscope": {"parameters": {"cpu_profile_rate": 0}},
           "profefe": {"parameters": {"cpu_profile_rate": 0, "block_profile_rate": 0}}"#,
    );
    for sink in &planned.plan.sinks {
        assert_eq!(sink.sampling().cpu_hz, DEFAULT_CPU_HZ);
        assert_eq!(sink.sampling().block_rate, 0);
        assert_eq!(sink.sampling().mutex_fraction, 0);
    }
    // Block/mutex not enabled: no warning about their rates.
    assert!(warnings(&planned).iter().all(|w| !w.contains("no samples")));
}

#[test]
fn pyroscope_defaults() {
    let planned = resolve(r#""pyroscope": {}"#);
    let sink = pyroscope(&planned.plan.sinks[0]);
    assert_eq!(sink.path, "apps.pyroscope");
    assert_eq!(sink.application_name, "myexe");
    assert_eq!(sink.server_url.as_str(), "http://localhost:4040/");
    assert_eq!(sink.auth, Auth::None);
    assert_eq!(sink.tenant_id, None);
    assert_eq!(sink.upload_rate, Duration::from_secs(15));
    assert_eq!(sink.sampling.cpu_hz, 100);
    assert_eq!(
        warnings(&planned),
        ["apps.pyroscope.server_address: not set: sending to http://localhost:4040"]
    );
}

#[test]
fn pyroscope_fields() {
    let planned = resolve(
        r#""pyroscope": {"application_name": "shop", "server_address": "https://p.example/x",
            "tenant_id": "t1", "upload_rate": "1m", "basic_auth_user": "u",
            "basic_auth_password": "pw"}"#,
    );
    let sink = pyroscope(&planned.plan.sinks[0]);
    assert_eq!(sink.application_name, "shop");
    assert_eq!(sink.server_url.as_str(), "https://p.example/x");
    assert_eq!(sink.tenant_id.as_deref(), Some("t1"));
    assert_eq!(sink.upload_rate, Duration::from_secs(60));
    let Auth::Basic { user, password } = &sink.auth else {
        panic!("expected basic auth: {:?}", sink.auth);
    };
    assert_eq!((user.as_str(), password.expose()), ("u", "pw"));
    assert!(planned.warnings.is_empty(), "{:?}", planned.warnings);
}

#[test]
fn auth_choices() {
    let planned = resolve(r#""pyroscope": {"auth_token": "tok"}"#);
    assert_eq!(
        pyroscope(&planned.plan.sinks[0]).auth,
        Auth::Bearer(Secret::new("tok"))
    );
    // Basic auth wins over a token, as in the Go agent, with a warning.
    let planned = resolve(
        r#""pyroscope": {"server_address": "http://p", "auth_token": "tok",
           "basic_auth_user": "u", "basic_auth_password": "pw"}"#,
    );
    assert!(matches!(
        pyroscope(&planned.plan.sinks[0]).auth,
        Auth::Basic { .. }
    ));
    assert!(warnings(&planned)[0].contains("auth_token: ignored"));
    // Half a pair is an error.
    assert_eq!(
        errors(r#""pyroscope": {"basic_auth_user": "u"}"#, &[]),
        ["apps.pyroscope.basic_auth_user: basic_auth_password is not set"]
    );
    assert_eq!(
        errors(r#""pyroscope": {"basic_auth_password": "hunter2"}"#, &[]),
        ["apps.pyroscope.basic_auth_password: basic_auth_user is not set"]
    );
}

#[test]
fn profefe_defaults_and_timeout() {
    let planned = resolve(r#""profefe": {}"#);
    let sink = profefe(&planned.plan.sinks[0]);
    assert_eq!(sink.address.as_str(), "http://localhost:10100/");
    assert_eq!(sink.service, "myexe");
    assert_eq!(sink.timeout, Some(Duration::from_secs(30)));
    assert_eq!(sink.upload_rate, profefe::UPLOAD_RATE);
    assert_eq!(
        warnings(&planned),
        ["apps.profefe.address: not set: sending to http://localhost:10100"]
    );

    let planned = resolve(r#""profefe": {"address": "http://c:1", "timeout": "0"}"#);
    assert_eq!(profefe(&planned.plan.sinks[0]).timeout, None);
    assert!(planned.warnings.is_empty());
    let planned = resolve(r#""profefe": {"address": "http://c:1", "timeout": "1.5s"}"#);
    assert_eq!(
        profefe(&planned.plan.sinks[0]).timeout,
        Some(Duration::from_millis(1500))
    );
}

#[test]
fn file_defaults_and_fields() {
    let planned = resolve(r#""profiling": {"profilers": [{"profiler": "file"}]}"#);
    let sink = file(&planned.plan.sinks[0]);
    assert_eq!(sink.directory, PathBuf::from("./profiles"));
    assert_eq!(sink.interval, Duration::from_secs(15));
    assert_eq!(sink.keep, 20);
    let planned = resolve(
        r#""profiling": {"profilers": [{"profiler": "file", "directory": "/var/p",
            "interval": "2s", "keep": 3}]}"#,
    );
    let sink = file(&planned.plan.sinks[0]);
    assert_eq!(sink.directory, PathBuf::from("/var/p"));
    assert_eq!(sink.interval, Duration::from_secs(2));
    assert_eq!(sink.keep, 3);
}

#[test]
fn placeholders_are_resolved_everywhere() {
    let vars = [
        ("NAME", "shop"),
        ("HOST", "pyro.internal"),
        ("RATE", "30s"),
        ("TOKEN", "s3cret"),
        ("TENANT", "team-a"),
        ("DIR", "/data"),
        ("TIMEOUT", "0"),
    ];
    let planned = resolve_with(
        r#""profiling": {"profilers": [{"profiler": "file", "directory": "{env.DIR}/prof",
               "interval": "{env.RATE}"}]},
           "pyroscope": {"application_name": "{env.NAME}-{env.NAME}",
             "server_address": "http://{env.HOST}:4040", "auth_token": "{env.TOKEN}",
             "tenant_id": "{env.TENANT}", "upload_rate": "{env.RATE}"},
           "profefe": {"address": "http://{env.HOST}", "service": "{env.NAME}",
             "timeout": "{env.TIMEOUT}"}"#,
        &vars,
    )
    .unwrap();
    let sinks = &planned.plan.sinks;
    let f = file(&sinks[0]);
    assert_eq!(f.directory, PathBuf::from("/data/prof"));
    assert_eq!(f.interval, Duration::from_secs(30));
    let p = pyroscope(&sinks[1]);
    assert_eq!(p.application_name, "shop-shop");
    assert_eq!(p.server_url.as_str(), "http://pyro.internal:4040/");
    assert_eq!(p.auth, Auth::Bearer(Secret::new("s3cret")));
    assert_eq!(p.tenant_id.as_deref(), Some("team-a"));
    assert_eq!(p.upload_rate, Duration::from_secs(30));
    let q = profefe(&sinks[2]);
    assert_eq!(q.address.as_str(), "http://pyro.internal/");
    assert_eq!(q.service, "shop");
    assert_eq!(q.timeout, None);
}

#[test]
fn unset_variables_are_errors_naming_variable_and_path() {
    assert_eq!(
        errors(
            r#""pyroscope": {"auth_token": "{env.PYROSCOPE_AUTH_TOKEN}",
               "server_address": "{env.URL}", "upload_rate": "{env.RATE}"},
               "profefe": {"service": "{env.SVC}"}"#,
            &[]
        ),
        [
            "apps.pyroscope.server_address: environment variable URL is not set",
            "apps.pyroscope.auth_token: environment variable PYROSCOPE_AUTH_TOKEN is not set",
            "apps.pyroscope.upload_rate: environment variable RATE is not set",
            "apps.profefe.service: environment variable SVC is not set",
        ]
    );
    assert_eq!(
        errors(
            r#""profiling": {"profilers": [{"profiler": "file", "directory": "{env.D}"}]}"#,
            &[]
        ),
        ["apps.profiling.profilers[0].directory: environment variable D is not set"]
    );
}

#[test]
fn resolved_values_are_validated() {
    let apps = r#""pyroscope": {"server_address": "{env.URL}", "upload_rate": "{env.RATE}"},
                  "profefe": {"address": "http://x", "timeout": "{env.T}"}"#;
    let errors = errors(
        apps,
        &[("URL", "localhost:4040"), ("RATE", "0s"), ("T", "-1s")],
    );
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].starts_with("apps.pyroscope.server_address: invalid URL"));
    assert!(errors[1].starts_with("apps.pyroscope.upload_rate: must be greater than zero"));
    assert!(errors[2].starts_with("apps.profefe.timeout: must not be negative"));
    let errors = self::errors(
        r#""pyroscope": {"upload_rate": "{env.RATE}", "application_name": "{env.N}"}"#,
        &[("RATE", "10 s"), ("N", "")],
    );
    assert!(errors[0].contains("application_name: empty"), "{errors:?}");
    assert!(
        errors[1].contains("upload_rate: unknown unit"),
        "{errors:?}"
    );
    assert!(
        self::errors(
            r#""pyroscope": {"upload_rate": "{env.R}"}"#,
            &[("R", "{x}")]
        )[0]
        .contains("invalid duration '{x}'")
    );
}

#[test]
fn values_are_not_expanded_twice_and_unknown_placeholders_are_kept() {
    let planned = resolve_with(
        r#""profefe": {"address": "http://x", "service": "{env.A}{system.hostname}"}"#,
        &[("A", "{env.B}")],
    )
    .unwrap();
    assert_eq!(
        profefe(&planned.plan.sinks[0]).service,
        "{env.B}{system.hostname}"
    );
    assert_eq!(
        warnings(&planned),
        [
            "apps.profefe.service: {system.hostname} is not a placeholder caddyprof knows; \
             kept as written"
        ]
    );
    assert!(
        errors(r#""profefe": {"service": "{env.}"}"#, &[])[0]
            .contains("names no environment variable")
    );
}

#[test]
fn secrets_are_redacted() {
    let secret = Secret::new("hunter2");
    assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
    let planned = resolve_with(
        r#""pyroscope": {"server_address": "http://p", "auth_token": "{env.T}"},
           "profiling": {"profilers": [{"profiler": "pyroscope", "server_address": "http://p",
             "basic_auth_user": "u",
             "basic_auth_password": "pw-{x}-hunter2"}]}"#,
        &[("T", "tok-hunter2")],
    )
    .unwrap();
    let debug = format!("{:?}", planned.plan);
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("[redacted]"));
    // A secret's unknown `{…}` is not quoted in a warning.
    assert!(planned.warnings.is_empty(), "{:?}", planned.warnings);
    // Errors about secret fields never show their value.
    let error = resolve_with(
        r#""pyroscope": {"basic_auth_password": "hunter2", "auth_token": "{env.NOPE}"}"#,
        &[],
    )
    .unwrap_err();
    let all = format!("{error} {} {error:?}", error.render_plain());
    assert!(all.contains("NOPE is not set"), "{all}");
    assert!(!all.contains("hunter2"), "{all}");
}

/// `check` says what `resolve` says, errors included (as warnings, with the same
/// messages, in the order found), and whether `resolve` fails.
#[test]
fn check_says_what_resolve_refuses_as_warnings() {
    let apps = r#""pyroscope": {"server_address": "{env.URL}", "auth_token": "{env.T}",
                    "disable_gc_runs": true},
                  "profefe": {"address": "http://x", "timeout": "{env.TIMEOUT}"}"#;
    let config = Config::from_json(&format!(r#"{{"apps": {{{apps}}}}}"#)).unwrap();
    let checked = Plan::check(&config, &options(&[("TIMEOUT", "soon")]));
    assert!(checked.would_fail);
    let messages: Vec<&str> = checked.warnings.iter().map(Diagnostic::message).collect();
    assert_eq!(
        messages,
        [
            "apps.pyroscope.server_address: environment variable URL is not set",
            "apps.pyroscope.auth_token: environment variable T is not set",
            "apps.pyroscope.disable_gc_runs: has no effect: Rust has no garbage collector \
             to run before heap profiles",
            "apps.profefe.timeout: invalid duration 'soon': expected a number",
        ]
    );
    assert!(checked.warnings.iter().all(|w| !w.is_error()));
    let errors = errors(apps, &[("TIMEOUT", "soon")]);
    assert_eq!(errors.len(), 3);
    for error in &errors {
        assert!(messages.contains(&error.as_str()), "{error}");
    }
    assert!(
        checked.warnings[1].help_text().unwrap().starts_with(
            "set T in the environment of the process; until then, `caddyprof run` fails"
        )
    );

    // Resolved, it is what `resolve` warns about.
    let vars = [("URL", "http://p"), ("T", "t"), ("TIMEOUT", "5s")];
    let checked = Plan::check(&config, &options(&vars));
    assert!(!checked.would_fail);
    let planned = resolve_with(apps, &vars).unwrap();
    let messages: Vec<&str> = checked.warnings.iter().map(Diagnostic::message).collect();
    assert_eq!(messages, warnings(&planned));
}

#[test]
fn warnings_said_once() {
    let planned = resolve(
        r#""profiling": {"profile_types": ["block", "mutex", "threadcreate"], "profilers": [
               {"profiler": "pyroscope", "server_address": "http://p", "disable_gc_runs": true},
               {"profiler": "pyroscope", "server_address": "http://p",
                "parameters": {"block_profile_rate": 5}},
               {"profiler": "file"}]}"#,
    );
    assert_eq!(
        warnings(&planned),
        [
            "apps.profiling.profilers[0].disable_gc_runs: has no effect: Rust has no garbage \
             collector to run before heap profiles",
            "block profiles will carry no samples: block_profile_rate is unset or 0 (in \
             apps.profiling.profilers[0], apps.profiling.profilers[2])",
            "mutex profiles will carry no samples: mutex_profile_fraction is unset or 0 (in \
             apps.profiling.profilers[0], apps.profiling.profilers[1], \
             apps.profiling.profilers[2])",
            "threadcreate is not supported by pyroscope (nor by its Go agent): not sent (in \
             apps.profiling.profilers[0], apps.profiling.profilers[1])",
        ]
    );
    let sinks = &planned.plan.sinks;
    assert_eq!(sinks[0].sampling().profile_types, [Block, Mutex]);
    assert_eq!(
        sinks[2].sampling().profile_types,
        [ThreadCreate, Block, Mutex]
    );
}

#[test]
fn collectors_merge_sinks() {
    let planned = resolve(
        r#""profiling": {"cpu_profile_rate": 50, "block_profile_rate": 100,
            "mutex_profile_fraction": 4, "profilers": [
               {"profiler": "pyroscope", "parameters": {"profile_types": ["cpu", "heap", "allocs", "block"]}},
               {"profiler": "profefe", "address": "http://x", "parameters": {"cpu_profile_rate": 400,
                 "block_profile_rate": 10, "profile_types": ["cpu", "block", "mutex", "goroutine"]}},
               {"profiler": "file", "parameters": {"cpu_profile_rate": 999, "block_profile_rate": 0,
                 "profile_types": ["allocs", "block"]}}]}"#,
    );
    assert_eq!(
        planned.plan.collectors,
        Collectors {
            cpu_hz: Some(400),
            memory: true,
            heap: true,
            allocs: true,
            goroutine: true,
            threadcreate: false,
            block: true,
            block_rate: 10,
            mutex: true,
            mutex_fraction: 4,
        }
    );
    let planned = resolve(r#""profefe": {"parameters": {"profile_types": ["allocs"]}}"#);
    let c = &planned.plan.collectors;
    assert_eq!(
        (c.cpu_hz, c.memory, c.heap, c.allocs),
        (None, true, false, true)
    );
    let empty = Plan::resolve(&Config::default(), &options(&[]))
        .unwrap()
        .plan;
    assert!(empty.sinks.is_empty());
    assert_eq!(empty.collectors, Collectors::default());
}

fn example(name: &str) -> Config {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let adapted = crate::adapt_file(&path).unwrap();
    Config::from_json(&adapted.json.to_string()).unwrap()
}

#[test]
fn seed_profiling_example() {
    let planned = Plan::resolve(&example("profiling.Profilingfile"), &options(&[])).unwrap();
    let all = Sampling {
        profile_types: vec![Cpu, Heap, Allocs, Goroutine],
        cpu_hz: 2,
        block_rate: 2,
        mutex_fraction: 2,
    };
    let sinks = &planned.plan.sinks;
    assert_eq!(sinks.len(), 3);
    let first = pyroscope(&sinks[0]);
    assert_eq!(first.server_url.as_str(), "http://localhost:4040/");
    assert_eq!(first.application_name, "myexe");
    assert_eq!(first.sampling, all);
    let second = pyroscope(&sinks[1]);
    assert_eq!(
        second.server_url.as_str(),
        "http://another-instance.local:4040/"
    );
    assert_eq!(
        second.sampling,
        Sampling {
            profile_types: vec![Heap],
            ..all.clone()
        }
    );
    let third = profefe(&sinks[2]);
    assert_eq!(third.address.as_str(), "http://localhost:10100/");
    assert_eq!(third.service, "myexe");
    assert_eq!(third.sampling, all);
    assert_eq!(
        warnings(&planned),
        ["apps.profiling.profilers[2].address: not set: sending to http://localhost:10100"]
    );
    assert_eq!(planned.plan.collectors.cpu_hz, Some(2));
}

#[test]
fn seed_pyroscope_example() {
    let config = example("pyroscope.Profilingfile");
    assert_eq!(
        Plan::resolve(&config, &options(&[]))
            .unwrap_err()
            .to_string(),
        "apps.pyroscope.auth_token: environment variable PYROSCOPE_AUTH_TOKEN is not set"
    );
    let planned = Plan::resolve(&config, &options(&[("PYROSCOPE_AUTH_TOKEN", "tok")])).unwrap();
    let sink = pyroscope(&planned.plan.sinks[0]);
    assert_eq!(sink.application_name, "my_cool_app");
    assert_eq!(sink.server_url.as_str(), "http://localhost:4040/");
    assert_eq!(sink.auth, Auth::Bearer(Secret::new("tok")));
    assert_eq!(sink.upload_rate, profefe::UPLOAD_RATE);
    assert_eq!(sink.sampling.profile_types, [Cpu, Heap, Allocs, Goroutine]);
    assert_eq!(
        (
            sink.sampling.cpu_hz,
            sink.sampling.block_rate,
            sink.sampling.mutex_fraction
        ),
        (2, 2, 2)
    );
    assert!(planned.warnings.is_empty());
}

#[test]
fn seed_profefe_example() {
    let planned = Plan::resolve(&example("profefe.Profilingfile"), &options(&[])).unwrap();
    let sink = profefe(&planned.plan.sinks[0]);
    assert_eq!(sink.address.as_str(), "http://localhost:4040/");
    assert_eq!(sink.service, "my_cool_app");
    assert_eq!(sink.timeout, Some(Duration::from_secs(600)));
    assert_eq!(sink.sampling.profile_types, [Cpu, Heap, Allocs, Goroutine]);
    assert!(planned.warnings.is_empty());
}

#[test]
fn executable_name_is_not_empty() {
    assert!(!executable_name().is_empty());
    assert!(!PlanOptions::default().executable_name.is_empty());
}

#[test]
fn every_kind_of_child_profiler_becomes_a_sink() {
    // A kind in apps::profiling::CHILDREN without its line in SINKS would run nothing.
    for name in crate::apps::profiling::profiler_names() {
        let planned = resolve(&format!(
            r#""profiling": {{"profilers": [{{"profiler": "{name}"}}]}}"#
        ));
        assert_eq!(planned.plan.sinks.len(), 1, "{name}");
        assert_eq!(planned.plan.sinks[0].path(), "apps.profiling.profilers[0]");
    }
}
