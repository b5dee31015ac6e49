//! The heap collector with the sampling allocator installed as this test binary's global
//! allocator: accuracy against a workload of known sizes, the profile's shape, deltas and
//! cumulative totals, realloc and alloc_zeroed, and `go tool pprof`. The sampler is one per
//! process and the tests change its rate, so they take turns (`SERIAL`).

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

use caddyprof::allocator::{self, Sampled};
use caddyprof::collect::heap::{self, Accumulation};
use caddyprof::config::ProfileType;
use caddyprof::profile::{Symbols, decode, proto};
use support::{check_mappings, go_is_installed, go_tool_pprof, serial};

#[global_allocator]
static ALLOC: Sampled<System> = Sampled::new(System);

/// A small deterministic generator (xorshift64*), so the workload is the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn size(&mut self, min: usize, max: usize) -> usize {
        min + (self.next() % (max - min + 1) as u64) as usize
    }
}

/// Allocates blocks of `sizes` into `keep` (reserved beforehand, so `keep` does not grow
/// here); returns the bytes allocated.
#[inline(never)]
fn allocate_eighty(sizes: &[usize], keep: &mut Vec<Vec<u8>>) -> u64 {
    for &size in sizes {
        keep.push(black_box(Vec::with_capacity(size)));
    }
    sizes.iter().map(|&s| s as u64).sum()
}

/// The same, from another function.
#[inline(never)]
fn allocate_twenty(sizes: &[usize], keep: &mut Vec<Vec<u8>>) -> u64 {
    for &size in sizes {
        keep.push(black_box(Vec::with_capacity(size)));
    }
    sizes.iter().map(|&s| s as u64).sum()
}

/// Sizes adding up to about `total` bytes, each in `min..=max`.
fn sizes(rng: &mut Rng, total: u64, min: usize, max: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut sum = 0;
    while sum < total {
        let size = rng.size(min, max);
        sum += size as u64;
        out.push(size);
    }
    out
}

fn s(profile: &proto::Profile, index: i64) -> &str {
    &profile.string_table[index as usize]
}

/// The sums of value `index` over the samples whose stack has a function ending in `name`.
fn sum_for(profile: &proto::Profile, name: &str, index: usize) -> i64 {
    let symbols = Symbols::new(profile);
    profile
        .sample
        .iter()
        .filter(|sample| symbols.stack(sample).iter().any(|f| f.ends_with(name)))
        .map(|sample| sample.value[index])
        .sum()
}

const ALLOC_OBJECTS: usize = 0;
const ALLOC_SPACE: usize = 1;
const INUSE_OBJECTS: usize = 2;
const INUSE_SPACE: usize = 3;

fn check_heap_shape(profile: &proto::Profile, rate: i64) {
    let types = support::sample_types(profile);
    assert_eq!(
        types,
        [
            "alloc_objects/count",
            "alloc_space/bytes",
            "inuse_objects/count",
            "inuse_space/bytes"
        ]
    );
    let period_type = profile.period_type.unwrap();
    assert_eq!(s(profile, period_type.r#type), "space");
    assert_eq!(s(profile, period_type.unit), "bytes");
    assert_eq!(profile.period, rate);
    for sample in &profile.sample {
        assert!(sample.value.iter().all(|&v| v >= 0), "{sample:?}");
        assert!(sample.value.iter().any(|&v| v > 0), "{sample:?}");
        // Bytes come with objects.
        assert_eq!(
            sample.value[ALLOC_SPACE] > 0,
            sample.value[ALLOC_OBJECTS] > 0
        );
        assert!(
            sample.value[INUSE_SPACE] <= sample.value[ALLOC_SPACE]
                || sample.value[ALLOC_SPACE] == 0
        );
    }
}

fn print_top(profile: &proto::Profile, index: usize) {
    let mut folded = caddyprof::profile::fold(profile, index);
    folded.sort_by_key(|(_, v)| std::cmp::Reverse(*v));
    for (stack, value) in folded.iter().take(5) {
        let frames: Vec<&str> = stack.rsplit(';').take(6).collect();
        eprintln!("{value:>12} {frames:?}");
    }
}

#[test]
fn an_eighty_twenty_workload_is_measured_within_ten_percent() {
    let _serial = serial();
    let rate = 64 * 1024;
    allocator::set_rate(rate);
    let mut subscription = heap::subscribe().unwrap();

    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let eighty_sizes = sizes(&mut rng, 192 << 20, 1024, 64 * 1024);
    let twenty_sizes = sizes(&mut rng, 48 << 20, 256, 16 * 1024);
    let mut keep = Vec::with_capacity(eighty_sizes.len() + twenty_sizes.len());
    subscription.collect(ProfileType::Heap, Accumulation::Delta);
    // Interleaved, so both see the same conditions.
    let mut eighty = 0;
    let mut twenty = 0;
    let rounds = 100;
    for (a, b) in eighty_sizes
        .chunks(eighty_sizes.len().div_ceil(rounds))
        .zip(twenty_sizes.chunks(twenty_sizes.len().div_ceil(rounds)))
    {
        eighty += allocate_eighty(a, &mut keep);
        twenty += allocate_twenty(b, &mut keep);
    }
    assert_eq!(keep.len(), eighty_sizes.len() + twenty_sizes.len());
    let truth = (eighty + twenty) as f64;
    let profile = subscription.collect(ProfileType::Heap, Accumulation::Delta);
    assert_eq!(profile.profile_type, ProfileType::Heap);
    let live = decode(&profile.pprof_gz).unwrap();
    check_heap_shape(&live, rate as i64);
    print_top(&live, ALLOC_SPACE);
    let a = sum_for(&live, "allocate_eighty", ALLOC_SPACE) as f64;
    let b = sum_for(&live, "allocate_twenty", ALLOC_SPACE) as f64;
    let share = a / (a + b);
    let true_share = eighty as f64 / truth;
    eprintln!(
        "alloc_space: eighty {a} (true {eighty}), twenty {b} (true {twenty}); share {share:.4} \
         (true {true_share:.4}); {:?}",
        allocator::stats()
    );
    assert!(
        ((a + b) / truth - 1.0).abs() <= 0.10,
        "total {} vs {truth}",
        a + b
    );
    assert!(
        (share - true_share).abs() <= 0.05,
        "{share} vs {true_share}"
    );
    // Objects: the count is estimated too.
    let objects = (sum_for(&live, "allocate_eighty", ALLOC_OBJECTS)
        + sum_for(&live, "allocate_twenty", ALLOC_OBJECTS)) as f64;
    let true_objects = (eighty_sizes.len() + twenty_sizes.len()) as f64;
    assert!(
        (objects / true_objects - 1.0).abs() <= 0.15,
        "{objects} objects vs {true_objects}"
    );
    // Everything is still live.
    let inuse = (sum_for(&live, "allocate_eighty", INUSE_SPACE)
        + sum_for(&live, "allocate_twenty", INUSE_SPACE)) as f64;
    assert!(
        (inuse / truth - 1.0).abs() <= 0.10,
        "inuse {inuse} vs {truth}"
    );

    // Freed: in use drops to nothing, and this window allocated nothing there.
    drop(keep);
    let freed = decode(
        &subscription
            .collect(ProfileType::Heap, Accumulation::Delta)
            .pprof_gz,
    )
    .unwrap();
    check_heap_shape(&freed, rate as i64);
    for name in ["allocate_eighty", "allocate_twenty"] {
        assert_eq!(sum_for(&freed, name, INUSE_SPACE), 0, "{name}");
        assert_eq!(sum_for(&freed, name, INUSE_OBJECTS), 0, "{name}");
        assert_eq!(sum_for(&freed, name, ALLOC_SPACE), 0, "{name}");
    }

    // Cumulative: the allocations are still counted.
    let cumulative = decode(
        &subscription
            .collect(ProfileType::Allocs, Accumulation::Cumulative)
            .pprof_gz,
    )
    .unwrap();
    assert_eq!(
        s(&cumulative, cumulative.default_sample_type),
        "alloc_space"
    );
    let total = (sum_for(&cumulative, "allocate_eighty", ALLOC_SPACE)
        + sum_for(&cumulative, "allocate_twenty", ALLOC_SPACE)) as f64;
    assert!(total >= a + b, "{total} < {}", a + b);
    assert_eq!(sum_for(&cumulative, "allocate_eighty", INUSE_SPACE), 0);
    assert_eq!(allocator::stats().reentered, 0);
    allocator::set_rate(allocator::DEFAULT_RATE);
}

/// Grows a vector by pushing (realloc) and zero-allocates a buffer.
#[inline(never)]
fn grow_and_zero(n: usize) -> (Vec<u64>, Vec<u8>) {
    let mut grown = Vec::new();
    for i in 0..n {
        grown.push(i as u64);
    }
    (grown, black_box(vec![0u8; 8 * n]))
}

#[test]
fn realloc_and_alloc_zeroed_are_tracked() {
    let _serial = serial();
    // Every allocation sampled: the accounting must then be exact.
    allocator::set_rate(1);
    let mut subscription = heap::subscribe().unwrap();
    subscription.collect(ProfileType::Heap, Accumulation::Delta);
    let (grown, zeroed) = grow_and_zero(100_000);
    assert!(zeroed.iter().all(|&b| b == 0));
    let profile = decode(
        &subscription
            .collect(ProfileType::Heap, Accumulation::Delta)
            .pprof_gz,
    )
    .unwrap();
    check_heap_shape(&profile, 1);
    let program = std::env::current_exe().unwrap().display().to_string();
    assert!(check_mappings(&profile).contains(&program));
    // In use: exactly the final vector's capacity and the zeroed buffer.
    let inuse = sum_for(&profile, "grow_and_zero", INUSE_SPACE);
    let expected = (grown.capacity() * 8 + zeroed.len()) as i64;
    assert_eq!(inuse, expected);
    assert_eq!(sum_for(&profile, "grow_and_zero", INUSE_OBJECTS), 2);
    // Allocated: every intermediate buffer of the growth too (capacities 4, 8, … doubling).
    let mut allocated = zeroed.len() as i64;
    let mut capacity = 4;
    while capacity <= grown.capacity() {
        allocated += capacity as i64 * 8;
        capacity *= 2;
    }
    assert_eq!(sum_for(&profile, "grow_and_zero", ALLOC_SPACE), allocated);
    drop((grown, zeroed));
    let profile = decode(
        &subscription
            .collect(ProfileType::Heap, Accumulation::Delta)
            .pprof_gz,
    )
    .unwrap();
    assert_eq!(sum_for(&profile, "grow_and_zero", INUSE_SPACE), 0);
    assert_eq!(allocator::stats().reentered, 0);
    allocator::set_rate(allocator::DEFAULT_RATE);
}

#[test]
fn allocations_pass_through_unsampled_without_a_subscriber() {
    let _serial = serial();
    allocator::set_rate(1);
    // Subscriptions of other tests may be alive in parallel only under SERIAL: none here.
    assert!(!allocator::is_active());
    let before = allocator::stats().samples;
    let v: Vec<Vec<u8>> = (0..1000).map(|i| Vec::with_capacity(i + 1)).collect();
    drop(black_box(v));
    assert_eq!(allocator::stats().samples, before);
    // Through the wrapper directly, too.
    let layout = Layout::from_size_align(64, 8).unwrap();
    // SAFETY: a valid layout, freed with the same layout.
    unsafe {
        let p = ALLOC.alloc(layout);
        assert!(!p.is_null());
        ALLOC.dealloc(p, layout);
    }
    assert_eq!(allocator::stats().samples, before);
    allocator::set_rate(allocator::DEFAULT_RATE);
}

/// `go tool pprof`, an independent reader, takes our heap profile and finds the allocating
/// function on top of `alloc_space`.
#[test]
fn go_tool_pprof_reads_our_heap_profile() {
    let _serial = serial();
    if !go_is_installed("go_tool_pprof_reads_our_heap_profile") {
        return;
    }
    allocator::set_rate(allocator::DEFAULT_RATE);
    let mut subscription = heap::subscribe().unwrap();
    let mut rng = Rng(7);
    let sizes = sizes(&mut rng, 64 << 20, 4096, 256 * 1024);
    let mut keep = Vec::with_capacity(sizes.len());
    allocate_eighty(&sizes, &mut keep);
    let profile = subscription.collect(ProfileType::Heap, Accumulation::Cumulative);
    drop(keep);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heap.pprof.gz");
    std::fs::write(&path, &profile.pprof_gz).unwrap();
    let stdout = go_tool_pprof(&["-sample_index=alloc_space", "-top"], &path, dir.path());
    eprintln!("{stdout}");
    assert!(stdout.contains("Type: alloc_space"), "{stdout}");
    assert!(stdout.contains("allocate_eighty"), "{stdout}");
}
