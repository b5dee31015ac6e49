//! Secrets never show: not in the `Debug` of a configuration or of its resolved plan, and not
//! in the messages about an invalid URL, whether the secret was written in the file or came
//! from `{env.*}`. Every planted secret contains `SECRET`; the non-secret fields do not.

use caddyprof::Config;
use caddyprof::runtime::plan::{Plan, PlanOptions};

/// A pyroscope app with every secret-bearing field set, and userinfo in its URL.
fn pyroscope(url: &str, token: &str, password: &str) -> String {
    format!(
        r#"{{"server_address": "{url}", "auth_token": "{token}",
            "basic_auth_user": "name", "basic_auth_password": "{password}"}}"#
    )
}

/// Every app, standalone and as a child of `profiling`, with the secrets given.
fn config_json(url: &str, token: &str, password: &str) -> String {
    let pyroscope = pyroscope(url, token, password);
    format!(
        r#"{{"apps": {{
            "profiling": {{"profilers": [
                {{"profiler": "pyroscope", "server_address": "{url}", "auth_token": "{token}"}},
                {{"profiler": "profefe", "address": "{url}"}}
            ]}},
            "pyroscope": {pyroscope},
            "profefe": {{"address": "{url}"}}
        }}}}"#
    )
}

fn options(env: &[(&str, &str)]) -> PlanOptions {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|&(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    PlanOptions {
        env: Box::new(move |name| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())),
        executable_name: "test".into(),
    }
}

fn assert_no_secret(what: &str, text: &str) {
    assert!(!text.contains("SECRET"), "{what} shows a secret: {text}");
}

#[test]
fn debug_shows_no_secret() {
    let written = config_json(
        "http://user-SECRET:pw-SECRET@pyroscope:4040",
        "tok-SECRET",
        "basic-SECRET",
    );
    let config = Config::from_json(&written).unwrap();
    assert_no_secret("Debug of a Config", &format!("{config:?}"));
    let planned = Plan::resolve(&config, &options(&[])).unwrap();
    assert_eq!(planned.plan.sinks.len(), 4);
    assert_no_secret("Debug of a plan", &format!("{planned:?}"));
    assert_no_secret("Debug of a plan", &format!("{planned:#?}"));

    // The same secrets from the environment.
    let placeholders = config_json("{env.URL}", "{env.TOKEN}", "{env.PASSWORD}");
    let config = Config::from_json(&placeholders).unwrap();
    let env = [
        ("URL", "https://user-SECRET:pw-SECRET@pyroscope:4040/p"),
        ("TOKEN", "tok-SECRET"),
        ("PASSWORD", "basic-SECRET"),
    ];
    let planned = Plan::resolve(&config, &options(&env)).unwrap();
    assert!(format!("{planned:?}").contains("https://[redacted]@pyroscope:4040/p"));
    assert_no_secret("Debug of a plan", &format!("{planned:?}"));
}

#[test]
fn an_invalid_url_is_named_without_its_userinfo() {
    // From the environment: the message is all that shows.
    let config = Config::from_json(&config_json("{env.URL}", "t", "p")).unwrap();
    for url in [
        "http://user:SECRET@127.0.0.1:99999",
        "ftp://user:SECRET@host",
        "http://user:SECRET@{system.hostname}",
    ] {
        let error = Plan::resolve(&config, &options(&[("URL", url)])).unwrap_err();
        let shown = error.render_plain();
        assert!(shown.contains("invalid URL '"), "{shown}");
        assert!(shown.contains("[redacted]@"), "{shown}");
        assert_no_secret("an invalid URL from the environment", &shown);
    }
    // Written in the file: the message does not repeat it (the source line it points at is
    // the user's own text).
    let error = Config::from_json(&config_json("http://user:SECRET@127.0.0.1:99999", "t", "p"))
        .unwrap_err();
    for diagnostic in error.diagnostics() {
        assert_no_secret("an invalid URL's message", diagnostic.message());
    }
    assert!(
        error.diagnostics()[0]
            .message()
            .contains("'http://[redacted]@127.0.0.1:99999'"),
        "{}",
        error.render_plain()
    );
}
