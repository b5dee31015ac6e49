//! The allocation benchmark's workload and measurement, shared by its two binaries
//! (`system.rs`: `System` as the global allocator; `sampled.rs`: `Sampled<System>`).
//!
//! Each of `--threads` threads runs `--rounds` rounds of: 64 small blocks (16–256 B) into a
//! ring of 1 024 live ones (each replacing, so freeing, an older one), 4 medium blocks
//! (1–8 KiB) freed at once, a vector grown by 256–1 279 pushes (reallocations), a formatted
//! string, and every 64th round a large block (256 KiB–1 MiB). Every block is written in
//! full. About 80 allocations and 45 KiB per round; the bytes allocated per CPU second are
//! reported (several GB/s here: far more than a real program, which does other work
//! between allocations). `--compute N` adds N iterations of a loop reading the live blocks
//! to each round, to bring the allocation rate down to something more like a program's.

use std::hint::black_box;
use std::time::Instant;

/// What the command line asks for.
pub struct Options {
    /// Rounds per thread.
    pub rounds: u64,
    /// Worker threads.
    pub threads: usize,
    /// Sampled binary only: take heap profiles (`--active`) or only install the wrapper.
    pub active: bool,
    /// Sampled binary only: the sampling rate in bytes (`--rate`; default 512 KiB).
    pub rate: Option<u64>,
    /// Work between allocations: iterations of a small loop over the live blocks per round
    /// (`--compute`; 0 by default: allocation only).
    pub compute: u64,
}

impl Options {
    /// [`Options::parse`], or the usage error said and the exit code to leave with.
    pub fn parse_or_exit() -> Result<Options, std::process::ExitCode> {
        Self::parse().map_err(|message| {
            eprintln!("{message}");
            std::process::ExitCode::from(2)
        })
    }

    /// Parses `--rounds N --threads N [--active] [--rate BYTES] [--compute N]`; ignores what it does not know (such as
    /// `--bench`, which `cargo bench` passes).
    pub fn parse() -> Result<Options, String> {
        let mut options = Options {
            rounds: 100_000,
            threads: 4,
            active: false,
            rate: None,
            compute: 0,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--rounds" => options.rounds = number(args.next(), "--rounds")?,
                "--threads" => options.threads = number(args.next(), "--threads")? as usize,
                "--active" => options.active = true,
                "--rate" => options.rate = Some(number(args.next(), "--rate")?),
                "--compute" => options.compute = number(args.next(), "--compute")?,
                _ => {}
            }
        }
        if options.threads == 0 {
            return Err("--threads must be at least 1".into());
        }
        Ok(options)
    }
}

fn number(value: Option<String>, flag: &str) -> Result<u64, String> {
    value
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{flag} needs a whole number"))
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }
}

/// A block of `size` bytes, written (a program uses what it allocates).
fn block(size: usize, fill: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(size);
    v.resize(size, fill);
    v
}

/// One thread's share; returns the allocations made and their bytes.
#[inline(never)]
fn work(seed: u64, rounds: u64, compute: u64) -> (u64, u64) {
    let mut rng = Rng(seed | 1);
    let mut ring: Vec<Vec<u8>> = (0..1024).map(|_| Vec::new()).collect();
    let mut next = 0;
    let mut allocations = 0u64;
    let mut bytes = 0u64;
    for round in 0..rounds {
        for _ in 0..64 {
            let size = 16 + rng.below(241);
            ring[next] = block(size, round as u8);
            next = (next + 1) % ring.len();
            bytes += size as u64;
        }
        for _ in 0..4 {
            let size = 1024 + rng.below(7 * 1024);
            black_box(block(size, 1));
            bytes += size as u64;
        }
        let mut grown = Vec::new();
        for i in 0..256 + rng.below(1024) {
            grown.push(i as u32);
        }
        // The growth's buffers: capacities 4, 8, … up to the final one.
        let mut capacity = 4;
        while capacity <= grown.capacity() {
            bytes += 4 * capacity as u64;
            allocations += 1;
            capacity *= 2;
        }
        black_box(grown);
        let text = format!("round {round} of {rounds}");
        bytes += text.capacity() as u64;
        black_box(text);
        allocations += 64 + 4 + 1;
        let mut sum = 0u64;
        for i in 0..compute as usize {
            let block = &ring[(next + i) % ring.len()];
            let byte = block.get(i % block.len().max(1)).copied().unwrap_or(0);
            sum = (sum ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        black_box(sum);
        if round % 64 == 0 {
            let size = 256 * 1024 + rng.below(768 * 1024);
            black_box(block(size, 2));
            allocations += 1;
            bytes += size as u64;
        }
    }
    black_box(ring);
    (allocations, bytes)
}

/// CPU seconds (user + system) of this process so far.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Runs the workload on `options.threads` threads; returns `(wall seconds, CPU seconds,
/// allocations, bytes allocated)`, the CPU time counting only the workload's span.
pub fn run(options: &Options) -> (f64, f64, u64, u64) {
    let cpu_before = cpu_seconds();
    let began = Instant::now();
    let (rounds, compute) = (options.rounds, options.compute);
    let handles: Vec<_> = (0..options.threads)
        .map(|t| std::thread::spawn(move || work(0x9e37_79b9 + t as u64 * 7919, rounds, compute)))
        .collect();
    let (allocations, bytes) = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .fold((0, 0), |(a, b), (x, y)| (a + x, b + y));
    (
        began.elapsed().as_secs_f64(),
        cpu_seconds() - cpu_before,
        allocations,
        bytes,
    )
}
