//! The overhead benchmark's pyroscope-rs binary: the same workload, command line and JSON line
//! as `examples/overhead` (shared code, `examples/overhead/common.rs`), profiled by
//! pyroscope-rs (pprof-rs backend) at `--hz`, pushing to the same loopback sink every
//! `--upload-rate` seconds (`POST /push.v1.PusherService/Push`, gzip'd `PushRequest`).

#[allow(dead_code)] // the multipart parsing is for caddyprof's uploads
#[path = "../../../examples/overhead/common.rs"]
mod common;
mod push;

use std::process::ExitCode;
use std::time::Instant;

use common::{Mode, Outcome, Shares};

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
        let built = push::start_agent(&sink.address, "overhead", options.hz, options.upload_secs);
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
        push::stop_agent(agent);
        stop = Some(begin.elapsed());
    }
    let total = process_start.elapsed();
    let (cpu_seconds, max_rss_kib) = common::rusage(libc::RUSAGE_SELF);
    let sink_cpu_seconds = sink.cpu_seconds();

    let requests = sink.take();
    let shares = (options.mode == Mode::Profiled).then(|| {
        let mut shares = Shares::default();
        for request in &requests {
            let profiles = match push::profiles(&request.body) {
                Ok(profiles) => profiles,
                Err(e) => {
                    eprintln!("cannot decode a request to {}: {e}", request.path);
                    continue;
                }
            };
            for profile in profiles {
                match profile {
                    Ok(profile) => {
                        shares.profiles += 1;
                        for (names, count) in push::cpu_samples(&profile) {
                            shares.add(names, count);
                        }
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
