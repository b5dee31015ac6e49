//! The footprint benchmark's pyroscope-rs binary: the same workload, command line,
//! measurements and JSON line as `examples/footprint` (shared code, `examples/footprint/`),
//! profiled by pyroscope-rs (pprof-rs backend; CPU only, what it can do) at `--hz`, pushing
//! to the same loopback sink every `--upload-rate` seconds. Run by `benches/footprint.sh`,
//! which builds it with full debug info.

#[allow(dead_code)] // the overhead workload and its JSON line are not used here
#[path = "../../../../examples/overhead/common.rs"]
mod overhead;

#[path = "../../../../examples/footprint/common.rs"]
mod common;
#[path = "../push.rs"]
mod push;
#[path = "../../../../examples/footprint/workload.rs"]
mod workload;

use std::process::ExitCode;
use std::time::Instant;

use common::{Delivered, Mode, Outcome};

fn main() -> ExitCode {
    let process_start = Instant::now();
    let (options, monitor, sink) = match common::begin(process_start, overhead::Sink::start) {
        Ok(begun) => begun,
        Err(code) => return code,
    };

    let mut agent = None;
    let mut start = None;
    if options.mode == Mode::Profiled {
        let begin = Instant::now();
        let built = push::start_agent(&sink.address, "footprint", options.hz, options.upload_secs);
        match built {
            Ok(a) => agent = Some(a),
            Err(e) => {
                eprintln!("cannot start pyroscope-rs: {e}");
                return ExitCode::FAILURE;
            }
        }
        start = Some(begin.elapsed());
    }

    let measured = common::measure(&options, monitor, process_start, || {
        agent.map(|agent| {
            let begin = Instant::now();
            push::stop_agent(agent);
            begin.elapsed()
        })
    });

    let delivered = (options.mode == Mode::Profiled).then(|| {
        let mut delivered = Delivered::default();
        for request in sink.take() {
            delivered.uploads += 1;
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
                        delivered.cpu_profiles += 1;
                        for (names, count) in push::cpu_samples(&profile) {
                            delivered.add_cpu(names, count);
                        }
                    }
                    Err(e) => eprintln!("cannot decode a profile: {e}"),
                }
            }
        }
        delivered
    });
    let outcome = Outcome {
        profiler: "pyroscope-rs",
        options: &options,
        start,
        measured,
        delivered,
        extra: Vec::new(),
    };
    println!("{}", outcome.json());
    ExitCode::SUCCESS
}
