//! The footprint benchmark's caddyprof runner: the footprint workload (`workload.rs`: 512
//! distinct functions on two threads, the set in use widening over the first `--widen`
//! seconds) run without (`--baseline`) or with (`--profiled`) the caddyprof runtime
//! collecting cpu, heap and goroutine profiles at `--hz` and pushing them to a loopback
//! Pyroscope sink every `--upload-rate` seconds, with the sampling allocator installed in
//! both. A thread reads `/proc/self/smaps_rollup` every second; the run prints one JSON line
//! with its peak and steady-state resident memory, anonymous and file-backed (see
//! `benches/footprint.sh`, which builds it at three debug-info levels, and `docs/benchmarks.md`,
//! "Memory with debug info").
//!
//! ```sh
//! CARGO_PROFILE_RELEASE_DEBUG=true cargo run --release --example footprint -- --profiled
//! ```
//!
//! The sink spools the uploads to an unlinked temporary file, so they cost the process no
//! memory; they are decoded only after the measurements.

#[allow(dead_code)] // the overhead workload and its JSON line are not used here
#[path = "../overhead/common.rs"]
mod overhead;

#[path = "common.rs"]
mod common;
#[path = "workload.rs"]
mod workload;

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Delivered, Mode, Outcome};

#[global_allocator]
static ALLOC: caddyprof::allocator::Sampled<std::alloc::System> =
    caddyprof::allocator::Sampled::new(std::alloc::System);

fn main() -> ExitCode {
    let process_start = Instant::now();
    let wall_start = SystemTime::now();
    let (options, monitor, sink) = match common::begin(process_start, overhead::Sink::start) {
        Ok(begun) => begun,
        Err(code) => return code,
    };

    let mut running = None;
    let mut start = None;
    if options.mode == Mode::Profiled {
        let json = format!(
            r#"{{"apps":{{"pyroscope":{{"server_address":"{}","application_name":"footprint","upload_rate":"{}s","parameters":{{"cpu_profile_rate":{},"profile_types":["cpu","heap","goroutine"]}}}}}}}}"#,
            sink.address, options.upload_secs, options.hz
        );
        let config = match caddyprof::Config::from_json(&json) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("{:?}", miette::Report::new(e));
                return ExitCode::FAILURE;
            }
        };
        let begin = Instant::now();
        match caddyprof::runtime::start(&config) {
            Ok(r) => running = Some(r),
            Err(e) => {
                eprintln!("{:?}", miette::Report::new(e));
                return ExitCode::FAILURE;
            }
        }
        start = Some(begin.elapsed());
    }

    let measured = common::measure(&options, monitor, process_start, || {
        running.map(|running| {
            let begin = Instant::now();
            let reports = running.stop();
            let took = begin.elapsed();
            for report in reports.iter().filter(|r| !r.errors.is_empty()) {
                eprintln!("{}: {} errors", report.path, report.errors.len());
            }
            took
        })
    });

    let mut extra = symbolizer_figures();
    let delivered = (options.mode == Mode::Profiled).then(|| {
        // Where new code stops appearing in the workload, and the steady state's start.
        let at = |seconds: f64| {
            (wall_start + Duration::from_secs_f64(seconds))
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64)
        };
        let (delivered, addresses) = delivered(
            &sink,
            at(options.widen),
            at(options.seconds - options.steady),
        );
        extra.extend(addresses);
        delivered
    });
    let outcome = Outcome {
        profiler: "caddyprof",
        options: &options,
        start,
        measured,
        delivered,
        extra,
    };
    println!("{}", outcome.json());
    ExitCode::SUCCESS
}

/// What the symbolizer keeps between windows: its resolved locations (how many, their
/// frames, the distinct names, their bytes) and its objects' unit indexes and tables.
fn symbolizer_figures() -> Vec<(&'static str, String)> {
    let stats = caddyprof::collect::symbolize::symbolizer().stats();
    vec![
        ("symbolizer_locations", stats.locations.to_string()),
        ("symbolizer_frames", stats.frames.to_string()),
        ("symbolizer_names", stats.names.to_string()),
        (
            "symbolizer_locations_kib",
            (stats.location_bytes / 1024).to_string(),
        ),
        (
            "symbolizer_index_kib",
            (stats.debug_info_bytes / 1024).to_string(),
        ),
    ]
}

/// Decodes what the sink received. Also counts the distinct addresses of the profiles'
/// locations (what the symbolizer has to resolve): in all, new in the windows that started
/// after `widened` (Unix nanoseconds), and new in those that started after `steady`.
fn delivered(
    sink: &overhead::Sink,
    widened: i64,
    steady: i64,
) -> (Delivered, Vec<(&'static str, String)>) {
    let mut delivered = Delivered::default();
    let mut seen = HashSet::new();
    let (mut after_widening, mut in_steady) = (0, 0);
    for request in sink.take() {
        delivered.uploads += 1;
        let Some(bytes) = request
            .header("content-type")
            .and_then(|t| overhead::multipart_part(t, &request.body, "profile"))
        else {
            eprintln!("a request to {} has no profile part", request.path);
            continue;
        };
        let profile = match caddyprof::profile::decode(bytes) {
            Ok(profile) => profile,
            Err(e) => {
                eprintln!("cannot decode a profile: {e}");
                continue;
            }
        };
        for location in &profile.location {
            if seen.insert(location.address) && profile.time_nanos >= widened {
                after_widening += 1;
                if profile.time_nanos >= steady {
                    in_steady += 1;
                }
            }
        }
        let kind = profile
            .sample_type
            .first()
            .and_then(|t| usize::try_from(t.r#type).ok())
            .and_then(|i| profile.string_table.get(i))
            .map_or("", String::as_str);
        match kind {
            "samples" => {
                delivered.cpu_profiles += 1;
                let symbols = caddyprof::profile::Symbols::new(&profile);
                for sample in &profile.sample {
                    let count = sample.value.first().copied().unwrap_or(0);
                    delivered.add_cpu(symbols.stack(sample), u64::try_from(count).unwrap_or(0));
                }
            }
            "alloc_objects" => {
                delivered.heap_profiles += 1;
                delivered.heap_stacks += profile.sample.len();
            }
            "goroutine" => delivered.thread_profiles += 1,
            other => eprintln!("a profile of an unexpected type: {other:?}"),
        }
    }
    let addresses = vec![
        ("addresses", seen.len().to_string()),
        ("new_addresses_after_widening", after_widening.to_string()),
        ("new_addresses_in_steady", in_steady.to_string()),
    ];
    (delivered, addresses)
}
