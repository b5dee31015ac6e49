//! The footprint workload: 512 distinct functions (16 modules `part_00`…`part_15` of 32
//! functions `step_00`…`step_31`), each burning a little CPU, allocating a little and calling
//! a little of `std` (sorting, formatting, a `BTreeMap`), walked by a few threads. The set of
//! functions in use widens over the first `widen` seconds of a [`Plan`] and then stays fixed,
//! so a profiler keeps seeing new code at first and only known code after.
//!
//! Included with `#[path]` by the footprint benchmark's two runners,
//! `examples/footprint/main.rs` (caddyprof) and `benches/pyroscope-rs/src/bin/footprint.rs`
//! (pyroscope-rs), and by `tests/fixtures/embedder` (the embedder test). Depends on `std`
//! only.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// One workload function: takes a seed and a slot for the vector it allocates, returns a
/// value for the next.
pub type Step = fn(u64, &mut Vec<u64>) -> u64;

/// FNV-1a of a function's path, evaluated at compile time: a constant of its own in each
/// function's code, so the optimizer cannot fold two functions into one.
const fn salt(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut i = 0;
    while i < bytes.len() {
        hash = (hash ^ bytes[i] as u64).wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// What every function does, with its own `salt`: about 2 000 rounds of xorshift, a vector of
/// up to 63 words (returned, so the caller decides how long it lives) and, for three
/// functions in four, a little of `std`.
#[inline(always)]
fn step_body(seed: u64, salt: u64) -> (u64, Vec<u64>) {
    let mut x = seed ^ salt;
    for _ in 0..2_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    let mut kept: Vec<u64> = (0..x % 64).map(|i| x.wrapping_add(i)).collect();
    match salt % 4 {
        0 => kept.sort_unstable(),
        1 => {
            let mut text = String::new();
            let _ = write!(text, "{x:x}/{}", kept.len());
            x ^= black_box(text).len() as u64;
        }
        2 => {
            let map: BTreeMap<u64, u64> = kept.iter().map(|&v| (v % 97, v)).collect();
            x ^= black_box(map).len() as u64;
        }
        _ => {}
    }
    (x, kept)
}

/// Defines one `#[inline(never)]` function per name and `ALL`, the list of them.
macro_rules! functions {
    ($($name:ident)*) => {
        $(
            #[inline(never)]
            pub fn $name(seed: u64, kept: &mut Vec<u64>) -> u64 {
                const SALT: u64 = super::salt(concat!(module_path!(), "::", stringify!($name)));
                let (x, fresh) = super::step_body(seed, SALT);
                *kept = fresh;
                x
            }
        )*
        pub const ALL: &[super::Step] = &[$($name),*];
    };
}

/// Defines one module of 32 functions per name and `MODULES`, the list of their `ALL`s.
macro_rules! modules {
    ($($module:ident)*) => {
        $(
            pub mod $module {
                functions!(
                    step_00 step_01 step_02 step_03 step_04 step_05 step_06 step_07
                    step_08 step_09 step_10 step_11 step_12 step_13 step_14 step_15
                    step_16 step_17 step_18 step_19 step_20 step_21 step_22 step_23
                    step_24 step_25 step_26 step_27 step_28 step_29 step_30 step_31
                );
            }
        )*
        /// Every module's functions, in order.
        pub const MODULES: &[&[Step]] = &[$($module::ALL),*];
    };
}

modules!(
    part_00 part_01 part_02 part_03 part_04 part_05 part_06 part_07
    part_08 part_09 part_10 part_11 part_12 part_13 part_14 part_15
);

/// When the workload runs and how its set of functions grows.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// When it started.
    pub start: Instant,
    /// How long the set of functions in use widens, from one module's to all of them.
    pub widen: Duration,
    /// When it ends.
    pub end: Instant,
}

impl Plan {
    /// A plan starting now, lasting `length`, widening over its first `widen`.
    pub fn new(length: Duration, widen: Duration) -> Plan {
        let start = Instant::now();
        Plan {
            start,
            widen,
            end: start + length,
        }
    }

    /// How many of `total` functions are in use at `now`: one module's worth at first, then
    /// in proportion to the time gone, all of them from `widen` on.
    pub fn in_use(&self, now: Instant, total: usize) -> usize {
        let first = MODULES[0].len().min(total);
        let gone = now.saturating_duration_since(self.start);
        if gone >= self.widen {
            return total;
        }
        let share = gone.as_secs_f64() / self.widen.as_secs_f64();
        ((total as f64 * share).ceil() as usize).clamp(first, total)
    }
}

/// Every function, module after module.
pub fn steps() -> Vec<Step> {
    MODULES.iter().flat_map(|m| m.iter().copied()).collect()
}

/// How many results of the functions a thread keeps alive: its last 1 024 vectors (up to
/// 0.5 MiB), so heap profiles have memory in use as well as allocations.
const KEPT: usize = 1_024;

/// One thread's work until the plan ends: passes over the functions in use, each pass
/// starting one further on, `offset` apart from the other threads.
#[inline(never)]
pub fn work(plan: &Plan, offset: usize) -> u64 {
    let steps = steps();
    let mut kept: Vec<Vec<u64>> = vec![Vec::new(); KEPT];
    let mut x = 0x2545_F491_4F6C_DD1D_u64 ^ offset as u64;
    let mut pass = 0usize;
    let mut calls = 0usize;
    loop {
        let now = Instant::now();
        if now >= plan.end {
            break;
        }
        let in_use = plan.in_use(now, steps.len());
        for i in 0..in_use {
            x = steps[(i + pass + offset) % in_use](x, &mut kept[calls % KEPT]);
            calls += 1;
        }
        pass += 1;
    }
    black_box(kept);
    x
}

/// Runs the plan on `threads` threads (this one and `threads - 1` more, named `work-N`).
pub fn run(plan: &Plan, threads: usize) -> u64 {
    let threads = threads.max(1);
    let total = MODULES.len() * MODULES[0].len();
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads)
            .map(|n| {
                std::thread::Builder::new()
                    .name(format!("work-{n}"))
                    .spawn_scoped(scope, move || work(plan, n * total / threads))
                    .expect("spawning a worker thread")
            })
            .collect();
        let mut x = work(plan, 0);
        for helper in helpers {
            x ^= helper.join().expect("a worker thread");
        }
        x
    })
}
