//! The sampler's fixed tables when they fill up: more distinct stacks than stack slots,
//! more live samples than live slots, stacks deeper than kept. Nothing grows, nothing
//! breaks, the overflow is counted and shown, and `inuse_*` is never overstated. Every
//! allocation is sampled here (rate 1), so the counts are exact. One test: the tables are
//! process-wide and it fills them for good.

use std::alloc::System;
use std::hint::black_box;

use caddyprof::allocator::{self, LIVE_SLOTS, MAX_DEPTH, STACK_SLOTS, Sampled};
use caddyprof::collect::heap::{self, Accumulation, OVERFLOW_FRAME};
use caddyprof::config::ProfileType;
use caddyprof::profile::{Symbols, decode, proto};

#[global_allocator]
static ALLOC: Sampled<System> = Sampled::new(System);

/// Recurses `depth` times, through `left` or `right` by the bits of `path` (a distinct
/// stack for each path), and allocates one small block at the bottom.
#[inline(never)]
fn branch(depth: u32, path: u64, out: &mut Vec<Box<[u8]>>) {
    if depth == 0 {
        out.push(vec![0u8; 8].into_boxed_slice());
    } else if path & 1 == 0 {
        left(depth - 1, path >> 1, out);
    } else {
        right(depth - 1, path >> 1, out);
    }
    black_box(());
}

#[inline(never)]
fn left(depth: u32, path: u64, out: &mut Vec<Box<[u8]>>) {
    branch(depth, path, out);
    black_box(());
}

#[inline(never)]
fn right(depth: u32, path: u64, out: &mut Vec<Box<[u8]>>) {
    branch(depth, path, out);
    black_box(());
}

/// Many small live blocks (boxed one by one on purpose: each is an allocation).
#[allow(clippy::vec_box)]
#[inline(never)]
fn keep_many(n: usize) -> Vec<Box<u64>> {
    (0..n as u64).map(Box::new).collect()
}

#[inline(never)]
fn deep(depth: u32) -> Box<[u8]> {
    if depth == 0 {
        return vec![1u8; 24].into_boxed_slice();
    }
    let b = deep(depth - 1);
    black_box(b)
}

fn values_for(profile: &proto::Profile, name: &str) -> [i64; 4] {
    let symbols = Symbols::new(profile);
    let mut out = [0; 4];
    for sample in &profile.sample {
        if symbols.stack(sample).iter().any(|f| f.ends_with(name)) {
            for (o, v) in out.iter_mut().zip(&sample.value) {
                *o += v;
            }
        }
    }
    out
}

#[test]
fn full_tables_count_and_show_their_overflow() {
    allocator::set_rate(1);
    let mut subscription = heap::subscribe().unwrap();

    // Stacks deeper than kept: the innermost MAX_DEPTH frames are.
    let deep_block = deep(150);
    let profile = decode(
        &subscription
            .collect(ProfileType::Heap, Accumulation::Delta)
            .pprof_gz,
    )
    .unwrap();
    let symbols = Symbols::new(&profile);
    let deepest = profile
        .sample
        .iter()
        .map(|s| symbols.stack(s))
        .filter(|stack| stack.iter().any(|f| f.ends_with("::deep")))
        .map(|stack| stack.len())
        .max()
        .expect("the deep allocation was sampled");
    assert!(deepest <= MAX_DEPTH, "{deepest} frames");
    assert!(deepest >= MAX_DEPTH / 2, "{deepest} frames");
    drop(deep_block);

    // More live samples than live slots: those without a slot count as freed at once. (At
    // rate 1 the symbolizer's own allocations fill the table too.)
    let n = LIVE_SLOTS + LIVE_SLOTS / 2;
    let kept = keep_many(n);
    let profile = decode(
        &subscription
            .collect(ProfileType::Heap, Accumulation::Delta)
            .pprof_gz,
    )
    .unwrap();
    let [alloc_objects, alloc_space, inuse_objects, inuse_space] =
        values_for(&profile, "keep_many");
    let stats = allocator::stats();
    eprintln!("keep_many: {alloc_objects} {alloc_space} {inuse_objects} {inuse_space}; {stats:?}");
    // The Box<u64>s, and the Vec holding them (one allocation, its exact size).
    assert_eq!(alloc_objects, n as i64 + 1);
    assert_eq!(alloc_space, 8 * n as i64 + 8 * n as i64);
    assert!(stats.live_lost > 0, "{stats:?}");
    assert!(inuse_objects <= n as i64 + 1 && inuse_objects > 0);
    assert!(inuse_space <= alloc_space);
    drop(kept);
    let profile = decode(
        &subscription
            .collect(ProfileType::Heap, Accumulation::Delta)
            .pprof_gz,
    )
    .unwrap();
    assert_eq!(values_for(&profile, "keep_many")[3], 0);

    // More distinct stacks than stack slots: the rest go to the overflow stack.
    let paths = 2 * STACK_SLOTS as u64;
    let mut out = Vec::with_capacity(paths as usize);
    for path in 0..paths {
        branch(13, path, &mut out);
    }
    let profile = decode(
        &subscription
            .collect(ProfileType::Heap, Accumulation::Delta)
            .pprof_gz,
    )
    .unwrap();
    let stats = allocator::stats();
    eprintln!("{stats:?}");
    assert!(stats.stacks_lost > 0, "{stats:?}");
    assert!(stats.stacks <= STACK_SLOTS);
    let in_branch = values_for(&profile, "heap_limits::branch")[0];
    let overflow = values_for(&profile, OVERFLOW_FRAME)[0];
    eprintln!("{in_branch} allocations with their stack, {overflow} in the overflow stack");
    assert!(overflow > 0);
    assert!(in_branch < paths as i64);
    assert!(in_branch + overflow >= paths as i64);
    drop(out);
    assert_eq!(allocator::stats().reentered, 0);
}
