//! The sampler's fixed tables: distinct stacks with their counters, and the live sampled
//! allocations. All statics (zeroed memory, touched only as used), all atomics: no
//! allocation and no lock, on the allocation path or elsewhere.
//!
//! - **Stacks** ([`STACK_SLOTS`] slots, open addressing by a hash of the addresses; the
//!   addresses live in one shared arena of [`ARENA_WORDS`] words). A slot, once claimed,
//!   belongs to its stack for the process's lifetime, so its index is a stable id. Each slot
//!   counts, un-sampled, the objects and bytes allocated and freed at that stack. A stack
//!   that finds no slot (or no arena room) is counted in the [`OVERFLOW`] slot, which has no
//!   addresses.
//! - **Live allocations** ([`LIVE_SLOTS`] slots keyed by address, linear probing with
//!   tombstones): each sampled allocation until it is freed, with its stack slot and its
//!   weights, so that a free subtracts exactly what the allocation added. When no slot is
//!   free within [`LIVE_PROBES`], the allocation is counted as allocated and, at once, as
//!   freed: `inuse_*` is never overstated by an allocation the table could not hold.
//! - **Filter**: a counting filter ([`FILTER_SLOTS`] one-byte counters) over the live
//!   addresses. A free looks at one byte, and only when it is not zero at the table.
//!
//! Values are fixed point: objects in 1/[`OBJECT_SCALE`] units (one sampled allocation of
//! size `s` stands for `1/(1-exp(-s/rate))` allocations), bytes as whole bytes.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// The deepest stack kept, in frames (Go keeps 32 for heap profiles, 64 for CPU); a deeper
/// stack keeps its innermost frames.
pub const MAX_DEPTH: usize = 64;
/// Slots for distinct stacks (a power of two).
pub const STACK_SLOTS: usize = 4096;
/// Words of stack addresses shared by all stacks.
pub const ARENA_WORDS: usize = 128 * 1024;
/// Slots for live sampled allocations (a power of two).
pub const LIVE_SLOTS: usize = 16 * 1024;
/// How far an insertion into the live table looks for a free slot.
pub const LIVE_PROBES: usize = 64;
/// How far a stack looks for its slot.
const STACK_PROBES: usize = 256;
/// Counters in the free filter (a power of two).
pub const FILTER_SLOTS: usize = 64 * 1024;
/// The stack slot of stacks that found no room.
pub const OVERFLOW: usize = STACK_SLOTS;
/// Object counts are kept in units of 1/`OBJECT_SCALE`.
pub const OBJECT_SCALE: u64 = 4096;

/// A stack slot's `len` while its addresses are being written (and before it is claimed).
const WRITING: u32 = u32::MAX;
/// A stack slot's `len` when its addresses found no room in the arena: never matched.
const DEAD: u32 = u32::MAX - 1;
/// How long a reader waits for a slot being written before it looks elsewhere.
const SPINS: usize = 4096;

const EMPTY: usize = 0;
const TOMBSTONE: usize = 1;

struct StackSlot {
    /// The stack's hash, never 0 once claimed.
    hash: AtomicU64,
    /// Where its addresses start in the arena.
    start: AtomicU32,
    /// How many addresses ([`WRITING`] until published, [`DEAD`] if they found no room).
    len: AtomicU32,
    counters: Counters,
}

struct Counters {
    alloc_objects: AtomicU64,
    alloc_bytes: AtomicU64,
    free_objects: AtomicU64,
    free_bytes: AtomicU64,
}

impl StackSlot {
    const fn new() -> Self {
        StackSlot {
            hash: AtomicU64::new(0),
            start: AtomicU32::new(0),
            len: AtomicU32::new(WRITING),
            counters: Counters {
                alloc_objects: AtomicU64::new(0),
                alloc_bytes: AtomicU64::new(0),
                free_objects: AtomicU64::new(0),
                free_bytes: AtomicU64::new(0),
            },
        }
    }
}

struct LiveSlot {
    /// The allocation's address, [`EMPTY`] or [`TOMBSTONE`].
    key: AtomicUsize,
    /// Its stack slot.
    stack: AtomicU32,
    /// Its weights, as added to the stack's counters.
    objects: AtomicU64,
    bytes: AtomicU64,
}

static STACKS: [StackSlot; STACK_SLOTS + 1] = [const { StackSlot::new() }; STACK_SLOTS + 1];
static ARENA: [AtomicUsize; ARENA_WORDS] = [const { AtomicUsize::new(0) }; ARENA_WORDS];
static ARENA_NEXT: AtomicUsize = AtomicUsize::new(0);
static LIVE: [LiveSlot; LIVE_SLOTS] = [const {
    LiveSlot {
        key: AtomicUsize::new(EMPTY),
        stack: AtomicU32::new(0),
        objects: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
    }
}; LIVE_SLOTS];
static FILTER: [AtomicU8; FILTER_SLOTS] = [const { AtomicU8::new(0) }; FILTER_SLOTS];

/// Stacks counted in [`OVERFLOW`] for want of a slot or of arena room.
pub(super) static STACKS_LOST: AtomicU64 = AtomicU64::new(0);
/// Sampled allocations the live table had no room for.
pub(super) static LIVE_LOST: AtomicU64 = AtomicU64::new(0);

/// What one sampled allocation adds: un-sampled objects (fixed point) and bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weight {
    /// Objects, in 1/[`OBJECT_SCALE`] units.
    pub objects: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Weight {
    /// The weight of one sampled allocation of `size` bytes at a mean of `rate` bytes between
    /// samples: it was sampled with probability `1 - exp(-size/rate)`, so it stands for
    /// `1/(1 - exp(-size/rate))` such allocations (Go's and jemalloc's un-sampling).
    pub fn of(size: usize, rate: u64) -> Weight {
        if rate <= 1 {
            return Weight {
                objects: OBJECT_SCALE,
                bytes: size as u64,
            };
        }
        let x = size as f64 / rate as f64;
        // 1 - exp(-x) without losing precision for small x.
        let probability = -(-x).exp_m1();
        let scale = if probability > 0.0 {
            1.0 / probability
        } else {
            rate as f64
        };
        Weight {
            objects: (scale * OBJECT_SCALE as f64).round() as u64,
            bytes: (scale * size as f64).round() as u64,
        }
    }
}

/// A stack slot's totals since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Objects allocated, in 1/[`OBJECT_SCALE`] units.
    pub alloc_objects: u64,
    /// Bytes allocated.
    pub alloc_bytes: u64,
    /// Objects freed, in 1/[`OBJECT_SCALE`] units.
    pub free_objects: u64,
    /// Bytes freed.
    pub free_bytes: u64,
}

fn mix(mut x: u64) -> u64 {
    // The finalizer of SplitMix64.
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn stack_hash(stack: &[usize]) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15_u64 ^ stack.len() as u64;
    for &address in stack {
        h = mix(h ^ address as u64);
    }
    h | 1
}

/// The stack slot of `stack` (addresses, leaf first, at most [`MAX_DEPTH`]), claiming one if
/// the stack is new; [`OVERFLOW`] when there is no room.
pub fn intern(stack: &[usize]) -> usize {
    let h = stack_hash(stack);
    let mut i = h as usize & (STACK_SLOTS - 1);
    for _ in 0..STACK_PROBES {
        let slot = &STACKS[i];
        let mut current = slot.hash.load(Ordering::Acquire);
        if current == 0 {
            match slot
                .hash
                .compare_exchange(0, h, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return publish(i, stack),
                Err(actual) => current = actual,
            }
        }
        if current == h && same_stack(slot, stack) {
            return i;
        }
        i = (i + 1) & (STACK_SLOTS - 1);
    }
    STACKS_LOST.fetch_add(1, Ordering::Relaxed);
    OVERFLOW
}

/// Writes the addresses of a slot just claimed; the slot of `stack` is then `i`, or
/// [`OVERFLOW`] if the arena is full.
fn publish(i: usize, stack: &[usize]) -> usize {
    let slot = &STACKS[i];
    let start = ARENA_NEXT.fetch_add(stack.len(), Ordering::Relaxed);
    let Some(words) = start
        .checked_add(stack.len())
        .and_then(|end| ARENA.get(start..end))
    else {
        slot.len.store(DEAD, Ordering::Release);
        STACKS_LOST.fetch_add(1, Ordering::Relaxed);
        return OVERFLOW;
    };
    for (word, &address) in words.iter().zip(stack) {
        word.store(address, Ordering::Relaxed);
    }
    slot.start.store(start as u32, Ordering::Relaxed);
    slot.len.store(stack.len() as u32, Ordering::Release);
    i
}

/// Whether `slot` (whose hash matches) holds `stack`; waits a little for a slot being written.
fn same_stack(slot: &StackSlot, stack: &[usize]) -> bool {
    let mut len = slot.len.load(Ordering::Acquire);
    let mut spins = 0;
    while len == WRITING {
        if spins == SPINS {
            // Its writer was preempted: another slot will do (a duplicate stack is harmless).
            return false;
        }
        spins += 1;
        std::hint::spin_loop();
        len = slot.len.load(Ordering::Acquire);
    }
    if len == DEAD || len as usize != stack.len() {
        return false;
    }
    let start = slot.start.load(Ordering::Relaxed) as usize;
    match ARENA.get(start..start + stack.len()) {
        Some(words) => words
            .iter()
            .zip(stack)
            .all(|(w, &a)| w.load(Ordering::Relaxed) == a),
        None => false,
    }
}

/// Counts an allocation of `weight` at stack slot `stack`.
pub fn add_alloc(stack: usize, weight: Weight) {
    if let Some(slot) = STACKS.get(stack) {
        slot.counters
            .alloc_objects
            .fetch_add(weight.objects, Ordering::Relaxed);
        slot.counters
            .alloc_bytes
            .fetch_add(weight.bytes, Ordering::Relaxed);
    }
}

/// Counts the free of an allocation of `weight` made at stack slot `stack`.
pub fn add_free(stack: usize, weight: Weight) {
    if let Some(slot) = STACKS.get(stack) {
        slot.counters
            .free_objects
            .fetch_add(weight.objects, Ordering::Relaxed);
        slot.counters
            .free_bytes
            .fetch_add(weight.bytes, Ordering::Relaxed);
    }
}

/// A multiplicative hash of an address (its low 4 bits are alignment), for the live table:
/// its high bits are the well-mixed ones, and the table takes 14 of them.
#[inline(always)]
fn pointer_hash(address: usize) -> u64 {
    ((address as u64) >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The filter counter of an address: its 16-byte granule, modulo the filter's size. Not a
/// hash, on purpose: every free reads its counter, and a program frees mostly addresses
/// near the ones it just allocated, so their counters share the few cache lines already in
/// the L1 cache (a hash would scatter them over all 64 KiB: a cache miss per free).
#[inline(always)]
fn filter_slot(address: usize) -> &'static AtomicU8 {
    &FILTER[(address >> 4) & (FILTER_SLOTS - 1)]
}

/// The live table slot an address's probe starts at.
fn live_start(hash: u64) -> usize {
    (hash >> 34) as usize & (LIVE_SLOTS - 1)
}

/// Remembers a live sampled allocation; `false` if the table has no room for it.
pub fn insert_live(address: usize, stack: usize, weight: Weight) -> bool {
    if address <= TOMBSTONE {
        return false;
    }
    let hash = pointer_hash(address);
    // Counted in the filter before the allocation is handed out, so its free looks.
    let counter = filter_slot(address);
    let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_add(1));
    let mut i = live_start(hash);
    for _ in 0..LIVE_PROBES {
        let slot = &LIVE[i];
        let key = slot.key.load(Ordering::Acquire);
        if (key == EMPTY || key == TOMBSTONE)
            && slot
                .key
                .compare_exchange(key, address, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // Nobody looks this entry up before the allocation is returned (and handed on
            // with whatever synchronization the program uses).
            slot.stack.store(stack as u32, Ordering::Relaxed);
            slot.objects.store(weight.objects, Ordering::Relaxed);
            slot.bytes.store(weight.bytes, Ordering::Release);
            return true;
        }
        i = (i + 1) & (LIVE_SLOTS - 1);
    }
    filter_release(counter);
    LIVE_LOST.fetch_add(1, Ordering::Relaxed);
    false
}

fn filter_release(counter: &AtomicU8) {
    // A counter that reached 255 stays there (its slot only costs table lookups).
    let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| match c {
        0 | u8::MAX => None,
        c => Some(c - 1),
    });
}

/// Forgets the live sampled allocation at `address`, if there is one, and returns its stack
/// slot and weight. Unsampled addresses mostly stop at the filter: one byte read.
#[inline(always)]
pub fn remove_live(address: usize) -> Option<(usize, Weight)> {
    let counter = filter_slot(address);
    if counter.load(Ordering::Acquire) == 0 {
        return None;
    }
    remove_slow(address, pointer_hash(address), counter)
}

#[cold]
fn remove_slow(address: usize, hash: u64, counter: &AtomicU8) -> Option<(usize, Weight)> {
    let mut i = live_start(hash);
    for _ in 0..LIVE_PROBES {
        let slot = &LIVE[i];
        match slot.key.load(Ordering::Acquire) {
            EMPTY => return None,
            key if key == address => {
                let bytes = slot.bytes.load(Ordering::Acquire);
                let found = (
                    slot.stack.load(Ordering::Relaxed) as usize,
                    Weight {
                        objects: slot.objects.load(Ordering::Relaxed),
                        bytes,
                    },
                );
                slot.key.store(TOMBSTONE, Ordering::Release);
                filter_release(counter);
                return Some(found);
            }
            _ => {}
        }
        i = (i + 1) & (LIVE_SLOTS - 1);
    }
    None
}

/// The number of stack slots claimed so far (the overflow slot not counted).
pub fn stacks_used() -> usize {
    STACKS
        .iter()
        .take(STACK_SLOTS)
        .filter(|s| s.hash.load(Ordering::Relaxed) != 0)
        .count()
}

/// Calls `each(slot, addresses, totals)` for every stack slot with a count, and for the
/// [`OVERFLOW`] slot (with no addresses) when it has one. `addresses` is reused.
pub fn for_each_stack(mut each: impl FnMut(usize, &[usize], Totals)) {
    let mut addresses = Vec::with_capacity(MAX_DEPTH);
    for (i, slot) in STACKS.iter().enumerate() {
        let totals = Totals {
            alloc_objects: slot.counters.alloc_objects.load(Ordering::Relaxed),
            alloc_bytes: slot.counters.alloc_bytes.load(Ordering::Relaxed),
            free_objects: slot.counters.free_objects.load(Ordering::Relaxed),
            free_bytes: slot.counters.free_bytes.load(Ordering::Relaxed),
        };
        if totals.alloc_objects == 0 && totals.alloc_bytes == 0 {
            continue;
        }
        addresses.clear();
        if i != OVERFLOW {
            let len = slot.len.load(Ordering::Acquire);
            if len == WRITING || len == DEAD {
                continue;
            }
            let start = slot.start.load(Ordering::Relaxed) as usize;
            if let Some(words) = ARENA.get(start..start + len as usize) {
                addresses.extend(words.iter().map(|w| w.load(Ordering::Relaxed)));
            }
        }
        each(i, &addresses, totals);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_unsample_like_go() {
        let rate = 512 * 1024;
        // A huge allocation is always sampled: it stands for itself.
        let big = Weight::of(64 << 20, rate);
        assert_eq!(big.objects, OBJECT_SCALE);
        assert_eq!(big.bytes, 64 << 20);
        // An allocation of `rate` bytes is sampled with probability 1 - 1/e.
        let one = Weight::of(rate as usize, rate);
        let expected = 1.0 / (1.0 - (-1.0f64).exp());
        assert!((one.objects as f64 / OBJECT_SCALE as f64 - expected).abs() < 1e-3);
        // A tiny one stands for about rate/size allocations of its size: `rate` bytes.
        let tiny = Weight::of(16, rate);
        assert!((tiny.bytes as f64 - rate as f64).abs() < 16.0, "{tiny:?}");
        // Rate 1 (or 0): every allocation counts once.
        assert_eq!(
            Weight::of(100, 1),
            Weight {
                objects: OBJECT_SCALE,
                bytes: 100
            }
        );
    }

    #[test]
    fn interning_is_stable_and_distinguishes_stacks() {
        let a = [0x1000_usize, 0x2000, 0x3000, 7];
        let b = [0x1000_usize, 0x2000, 0x3001, 7];
        let ia = intern(&a);
        let ib = intern(&b);
        assert_ne!(ia, OVERFLOW);
        assert_ne!(ia, ib);
        assert_eq!(intern(&a), ia);
        assert_eq!(intern(&b), ib);
        let mut seen = None;
        for_each_stack(|i, addresses, _| {
            if i == ia {
                seen = Some(addresses.to_vec());
            }
        });
        // Not counted yet: not listed.
        assert_eq!(seen, None);
        add_alloc(
            ia,
            Weight {
                objects: 3,
                bytes: 5,
            },
        );
        for_each_stack(|i, addresses, totals| {
            if i == ia {
                seen = Some(addresses.to_vec());
                assert_eq!(totals.alloc_objects, 3);
                assert_eq!(totals.alloc_bytes, 5);
            }
        });
        assert_eq!(seen.as_deref(), Some(&a[..]));
    }

    #[test]
    fn live_entries_come_back_once_and_the_filter_lets_others_pass() {
        let w = Weight {
            objects: 11,
            bytes: 22,
        };
        // Addresses unlikely to be used by a real allocation in this test process.
        let base = 0x7ff0_0000_0000_usize;
        for k in 0..1000 {
            assert!(insert_live(base + 64 * k, k % 7, w));
        }
        for k in 0..1000 {
            assert_eq!(remove_live(base + 64 * k), Some((k % 7, w)), "{k}");
            assert_eq!(remove_live(base + 64 * k), None);
        }
        assert_eq!(remove_live(base + 64 * 5000), None);
    }
}
