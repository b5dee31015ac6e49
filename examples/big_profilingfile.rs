//! Writes a generated, valid Profilingfile of at least BYTES bytes on stdout: the input of
//! the adapt benchmarks (`benches/adapt-ab/input.rs`), for benchmarks that run the binary
//! (`benches/validate.sh`).
//!
//! ```text
//! cargo run --release --example big_profilingfile -- 10485760 > big.Profilingfile
//! ```

use std::io::Write;

#[path = "../benches/adapt-ab/input.rs"]
mod input;

fn main() {
    let bytes = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1 << 20);
    std::io::stdout()
        .write_all(input::generate(bytes).as_bytes())
        .expect("writing to stdout");
}
