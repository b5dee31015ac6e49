//! The overhead benchmark's pyroscope-rs binary: the same workload, command line and JSON line
//! as `examples/overhead` (shared code, `examples/overhead/common.rs`), profiled by
//! pyroscope-rs (pprof-rs backend) at `--hz`, pushing to the same loopback sink every
//! `--upload-rate` seconds (`POST /push.v1.PusherService/Push`, gzip'd `PushRequest`).

#[allow(dead_code)] // the multipart parsing is for caddyprof's uploads
#[path = "../../../examples/overhead/common.rs"]
mod common;

use std::collections::HashMap;
use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::{Mode, Outcome, Shares};
use prost::Message;
use pyroscope::PyroscopeAgent;
use pyroscope::backend::{BackendConfig, PprofConfig, pprof_backend};
use pyroscope::pyroscope::PyroscopeAgentBuilder;

// The Push API's messages (pyroscope-rs `src/encode/gen/push.rs`, `types.rs`).
#[derive(Clone, PartialEq, prost::Message)]
struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    series: Vec<RawProfileSeries>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct RawProfileSeries {
    #[prost(message, repeated, tag = "2")]
    samples: Vec<RawSample>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct RawSample {
    #[prost(bytes = "vec", tag = "1")]
    raw_profile: Vec<u8>,
}

// The pprof fields needed (google/pprof profile.proto).
#[derive(Clone, PartialEq, prost::Message)]
struct Pprof {
    #[prost(message, repeated, tag = "2")]
    sample: Vec<PSample>,
    #[prost(message, repeated, tag = "4")]
    location: Vec<PLocation>,
    #[prost(message, repeated, tag = "5")]
    function: Vec<PFunction>,
    #[prost(string, repeated, tag = "6")]
    string_table: Vec<String>,
    #[prost(int64, tag = "12")]
    period: i64,
}
#[derive(Clone, PartialEq, prost::Message)]
struct PSample {
    #[prost(uint64, repeated, tag = "1")]
    location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    value: Vec<i64>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct PLocation {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(message, repeated, tag = "4")]
    line: Vec<PLine>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct PLine {
    #[prost(uint64, tag = "1")]
    function_id: u64,
}
#[derive(Clone, PartialEq, prost::Message)]
struct PFunction {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(int64, tag = "2")]
    name: i64,
}

fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

fn main() -> ExitCode {
    let process_start = Instant::now();
    let (options, rounds, sink) = match common::begin() {
        Ok(begun) => begun,
        Err(code) => return code,
    };

    let mut agent = None;
    let mut start = None;
    let mut start_cpu_seconds = None;
    if options.mode == Mode::Profiled {
        let cpu_before = common::rusage(libc::RUSAGE_SELF).0;
        let begin = Instant::now();
        let built = PyroscopeAgentBuilder::new(
            &sink.address,
            "overhead",
            options.hz,
            "pyroscope-rs",
            "bench",
            pprof_backend(
                PprofConfig {
                    sample_rate: options.hz,
                },
                BackendConfig::default(),
            ),
        )
        .upload_interval(Duration::from_secs(options.upload_secs))
        .build()
        .and_then(PyroscopeAgent::start);
        match built {
            Ok(a) => agent = Some(a),
            Err(e) => {
                eprintln!("cannot start pyroscope-rs: {e}");
                return ExitCode::FAILURE;
            }
        }
        start = Some(begin.elapsed());
        start_cpu_seconds = Some(common::rusage(libc::RUSAGE_SELF).0 - cpu_before);
    }

    let workload = common::run_workload(rounds);

    let mut stop = None;
    if let Some(agent) = agent {
        let begin = Instant::now();
        match agent.stop() {
            Ok(ready) => ready.shutdown(),
            Err(e) => eprintln!("stop failed: {e}"),
        }
        stop = Some(begin.elapsed());
    }
    let total = process_start.elapsed();
    let (cpu_seconds, max_rss_kib) = common::rusage(libc::RUSAGE_SELF);
    let sink_cpu_seconds = sink.cpu_seconds();

    let requests = sink.take();
    let shares = (options.mode == Mode::Profiled).then(|| {
        let mut shares = Shares::default();
        for request in &requests {
            let push = gunzip(&request.body)
                .map_err(|e| e.to_string())
                .and_then(|b| PushRequest::decode(b.as_slice()).map_err(|e| e.to_string()));
            let push = match push {
                Ok(push) => push,
                Err(e) => {
                    eprintln!("cannot decode a request to {}: {e}", request.path);
                    continue;
                }
            };
            for sample in push.series.iter().flat_map(|s| &s.samples) {
                let profile = gunzip(&sample.raw_profile)
                    .map_err(|e| e.to_string())
                    .and_then(|b| Pprof::decode(b.as_slice()).map_err(|e| e.to_string()));
                match profile {
                    Ok(profile) => {
                        shares.profiles += 1;
                        add_profile(&mut shares, &profile);
                    }
                    Err(e) => eprintln!("cannot decode a profile: {e}"),
                }
            }
        }
        shares
    });

    let outcome = Outcome {
        profiler: "pyroscope-rs",
        mode: options.mode,
        hz: options.hz,
        workload,
        total,
        start,
        stop,
        start_cpu_seconds,
        details: "null".into(),
        uploads: requests.len(),
        shares,
        cpu_seconds,
        sink_cpu_seconds,
        handler_seconds: None,
        profiler_threads_cpu_seconds: None,
        max_rss_kib,
    };
    println!("{}", outcome.json());
    ExitCode::SUCCESS
}

/// Counts the samples of `profile` by function (its one value is CPU nanoseconds: divided by
/// the period to give samples).
fn add_profile(shares: &mut Shares, profile: &Pprof) {
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
    let period = profile.period.max(1);
    for sample in &profile.sample {
        let value = sample.value.first().copied().unwrap_or(0);
        let count = u64::try_from((value + period / 2) / period).unwrap_or(0);
        shares.add(
            common::stack_names(&sample.location_id, &locations, &functions),
            count,
        );
    }
}
