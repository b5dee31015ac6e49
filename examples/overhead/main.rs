//! The overhead benchmark's caddyprof binary: a fixed CPU workload (two functions taking a
//! known 70/30 share) run without (`--baseline`) or with (`--profiled`) the caddyprof runtime
//! sampling at `--hz` and pushing to a loopback Pyroscope sink every `--upload-rate` seconds.
//! Prints one JSON line (see `benches/overhead.sh`, which runs it, and `docs/benchmarks.md`,
//! "Overhead").
//!
//! ```sh
//! cargo run --release --example overhead -- --calibrate --seconds 10   # prints rounds
//! cargo run --release --example overhead -- --profiled --rounds R
//! ```
//!
//! Each run is its own process, so `ru_maxrss` is the run's own peak RSS. The loopback sink
//! (a tiny HTTP server on 127.0.0.1 answering 200) runs in both modes; its CPU time is
//! reported apart (`sink_cpu_s`) and left out of `cpu_s`.

#[path = "common.rs"]
mod common;

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Instant;

use common::{Mode, Outcome, Shares};

fn main() -> ExitCode {
    let process_start = Instant::now();
    let (options, rounds, sink) = match common::begin() {
        Ok(begun) => begun,
        Err(code) => return code,
    };

    let mut running = None;
    let mut start = None;
    let mut start_cpu_seconds = None;
    if options.mode == Mode::Profiled {
        let json = format!(
            r#"{{"apps":{{"pyroscope":{{"server_address":"{}","application_name":"overhead","upload_rate":"{}s","parameters":{{"cpu_profile_rate":{},"profile_types":["cpu"]}}}}}}}}"#,
            sink.address, options.upload_secs, options.hz
        );
        let config = match caddyprof::Config::from_json(&json) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("{:?}", miette::Report::new(e));
                return ExitCode::FAILURE;
            }
        };
        let cpu_before = common::rusage(libc::RUSAGE_SELF).0;
        let begin = Instant::now();
        match caddyprof::runtime::start(&config) {
            Ok(r) => running = Some(r),
            Err(e) => {
                eprintln!("{:?}", miette::Report::new(e));
                return ExitCode::FAILURE;
            }
        }
        start = Some(begin.elapsed());
        start_cpu_seconds = Some(common::rusage(libc::RUSAGE_SELF).0 - cpu_before);
    }

    let workload = common::run_workload(rounds);

    let mut stop = None;
    let mut details = "null".to_owned();
    if let Some(running) = running {
        let begin = Instant::now();
        let reports = running.stop();
        stop = Some(begin.elapsed());
        let parts: Vec<String> = reports
            .iter()
            .map(|r| {
                let u = r.uploads.unwrap_or_default();
                format!(
                    r#"{{"sink":"{}","profiles":{},"delivered":{},"failed":{},"rejected":{},"dropped":{},"abandoned":{},"errors":{}}}"#,
                    r.path,
                    r.profiles,
                    u.delivered,
                    u.failed,
                    u.rejected,
                    u.dropped,
                    u.abandoned,
                    r.errors.iter().map(|e| e.count).sum::<u64>()
                )
            })
            .collect();
        details = format!("[{}]", parts.join(","));
    }
    let total = process_start.elapsed();
    // Measured before decoding anything.
    let (cpu_seconds, max_rss_kib) = common::rusage(libc::RUSAGE_SELF);
    let sink_cpu_seconds = sink.cpu_seconds();
    let profiled = options.mode == Mode::Profiled;
    let handler_seconds =
        profiled.then(|| caddyprof::collect::sampler::handler_time().as_secs_f64());
    let profiler_threads_cpu_seconds = profiled.then(|| common::threads_cpu_seconds("caddyprof"));

    let requests = sink.take();
    let shares = (options.mode == Mode::Profiled).then(|| {
        let mut shares = Shares::default();
        for request in &requests {
            let Some(profile) = request
                .header("content-type")
                .and_then(|t| common::multipart_part(t, &request.body, "profile"))
            else {
                eprintln!("a request to {} has no profile part", request.path);
                continue;
            };
            match caddyprof::profile::decode(profile) {
                Ok(profile) => {
                    shares.profiles += 1;
                    add_profile(&mut shares, &profile);
                }
                Err(e) => eprintln!("cannot decode a profile: {e}"),
            }
        }
        shares
    });

    let outcome = Outcome {
        profiler: "caddyprof",
        mode: options.mode,
        hz: options.hz,
        workload,
        total,
        start,
        stop,
        start_cpu_seconds,
        details,
        uploads: requests.len(),
        shares,
        cpu_seconds,
        sink_cpu_seconds,
        handler_seconds,
        profiler_threads_cpu_seconds,
        max_rss_kib,
    };
    println!("{}", outcome.json());
    ExitCode::SUCCESS
}

/// Counts the samples (value 0: the sample count) of `profile` by function.
fn add_profile(shares: &mut Shares, profile: &caddyprof::profile::proto::Profile) {
    let string = |i: i64| {
        usize::try_from(i)
            .ok()
            .and_then(|i| profile.string_table.get(i))
            .map_or("?", String::as_str)
    };
    let functions: HashMap<u64, &str> = profile
        .function
        .iter()
        .map(|f| (f.id, string(f.name)))
        .collect();
    let locations: HashMap<u64, Vec<u64>> = profile
        .location
        .iter()
        .map(|l| (l.id, l.line.iter().map(|line| line.function_id).collect()))
        .collect();
    for sample in &profile.sample {
        let count = sample
            .value
            .first()
            .and_then(|&v| u64::try_from(v).ok())
            .unwrap_or(0);
        shares.add(
            common::stack_names(&sample.location_id, &locations, &functions),
            count,
        );
    }
}
