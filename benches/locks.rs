//! The uncontended cost of caddyprof's instrumented locks against the standard library's:
//! one lock + unlock (or read + release) on one thread, the lock always free.
//!
//! Run with `cargo bench --bench locks`. caddyprof's fast path is the standard `try_lock`
//! plus one atomic load of the waiter count at release.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

fn locks(c: &mut Criterion) {
    let mut group = c.benchmark_group("uncontended");
    let std_mutex = std::sync::Mutex::new(0u64);
    group.bench_function("std::sync::Mutex", |b| {
        b.iter(|| *black_box(&std_mutex).lock().unwrap() += 1)
    });
    let ours = caddyprof::sync::Mutex::new(0u64);
    group.bench_function("caddyprof::sync::Mutex", |b| {
        b.iter(|| *black_box(&ours).lock() += 1)
    });
    let std_rw = std::sync::RwLock::new(0u64);
    group.bench_function("std::sync::RwLock read", |b| {
        b.iter(|| black_box(*black_box(&std_rw).read().unwrap()))
    });
    let ours_rw = caddyprof::sync::RwLock::new(0u64);
    group.bench_function("caddyprof::sync::RwLock read", |b| {
        b.iter(|| black_box(*black_box(&ours_rw).read()))
    });
    group.finish();
}

criterion_group!(benches, locks);
criterion_main!(benches);
