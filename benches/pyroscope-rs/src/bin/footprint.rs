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
use std::time::{Duration, Instant};

use common::{Delivered, Mode, Outcome};
use pyroscope::PyroscopeAgent;
use pyroscope::backend::{BackendConfig, PprofConfig, pprof_backend};
use pyroscope::pyroscope::PyroscopeAgentBuilder;

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
        let built = PyroscopeAgentBuilder::new(
            &sink.address,
            "footprint",
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
    }

    let measured = common::measure(&options, monitor, process_start, || {
        agent.map(|agent| {
            let begin = Instant::now();
            match agent.stop() {
                Ok(ready) => ready.shutdown(),
                Err(e) => eprintln!("stop failed: {e}"),
            }
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
