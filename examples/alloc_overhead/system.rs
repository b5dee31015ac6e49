//! The allocation benchmark with `System` as the global allocator (the baseline). Prints one
//! JSON line. Run by `benches/alloc_overhead.sh`; see `workload.rs` for the workload.

#[path = "workload.rs"]
mod workload;

use std::process::ExitCode;

fn main() -> ExitCode {
    let options = match workload::Options::parse_or_exit() {
        Ok(options) => options,
        Err(code) => return code,
    };
    let (wall, cpu, allocations, bytes_allocated) = workload::run(&options);
    println!(
        r#"{{"allocator":"system","threads":{},"rounds":{},"allocations":{allocations},"bytes":{bytes_allocated},"wall_s":{wall:.4},"cpu_s":{cpu:.4}}}"#,
        options.threads, options.rounds
    );
    ExitCode::SUCCESS
}
