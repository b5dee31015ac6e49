//! The process-wide CPU collector.
//!
//! One sampler ([`super::sampler`]: a SIGPROF handler, its timer and a fixed ring) samples the
//! whole process. It starts on first use ([`start`] or [`subscribe`]); its handler and timer
//! are set while at least one [`CpuSubscription`] is alive, and only if the program does not
//! use SIGPROF or `ITIMER_PROF` itself ([`CpuError::Host`]; a program that takes them over
//! later is noticed at the next [`CpuSubscription::cut`], and left alone). A collector thread
//! (`caddyprof-cpu`) drains the ring every [`DRAIN_INTERVAL`] into per-subscription windows.
//!
//! **The frequency is fixed once started.** It is the one given to the first [`start`] or
//! [`subscribe`]; start the collector with the highest rate any sink wants before subscribing
//! (`start(max_rate)`). A later, different request keeps the running rate (a warning is
//! logged, and [`CpuSubscription::frequency`] tells the rate in use).
//!
//! Every sink [`subscribe`]s and gets, at each [`CpuSubscription::collect`], a profile of the
//! samples taken since its own previous collection: each drained sample is counted in every
//! live subscription's window. Two sinks both asking for cpu both get every sample.
//!
//! # Memory
//!
//! The ring is about 0.5 MiB. Distinct stacks are kept (as addresses) while a window still
//! counts them; when there are more than [`MAX_STACKS`], the ones no open window holds are
//! forgotten. Addresses are symbolized when a window's profile is built
//! ([`CpuWindow::build`]), each address once ([`super::symbolize`]); cutting a window
//! ([`CpuSubscription::cut`]) only takes its counts, so windows end on time whatever
//! symbolizing costs.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use super::sampler::{self, HostSignal, SamplerError};
use super::symbolize::{ProfileLocations, symbolizer};
use crate::fields::ProfileType;
use crate::profile::{Label, Profile, ProfileBuilder};

/// The sampling frequency when none is configured (`cpu_profile_rate` 0 or unset), in Hz.
pub const DEFAULT_FREQUENCY: u32 = 100;

/// Shared libraries whose samples are dropped (a substring of the library path): `libgcc`
/// and `vdso`, not `libc`.
///
/// Measured with `examples/cpu_blocklist.rs` on this project's 2-core machine (Debian 12,
/// glibc 2.36, gcc 12.2, debug build, 3–4 s per run, samples expected = process CPU time ×
/// frequency), first under pprof-rs 0.15's signal handler, which unwound with the same libgcc
/// unwinder as ours; rechecked with ours (2026-11-26): `libgcc vdso` keeps 100 % of the
/// malloc/memset workload's samples (77 % with a libc leaf) and survives the panic loop at
/// 100 and 1000 Hz.
///
/// | blocklist | workload, Hz | samples kept | result |
/// |---|---|---|---|
/// | `libc libgcc pthread vdso` (pprof's usual) | malloc/memset-heavy, 100 | 24–30 % | every sample with a libc leaf lost (0 % instead of 75–80 %); the pure-Rust part shows 28–30 % instead of 5–10 % |
/// | `vdso` or none | malloc/memset-heavy, 100 | 101–105 % | libc leaves 75–80 %, all under their Rust caller; no crash (4 runs at 100 Hz, 3 at 1000 Hz) |
/// | `vdso` or none | panic/catch_unwind loop, 100 and 1000 | — | **SIGSEGV in 8 of 11 runs**: unwinding from a PC inside libgcc's own unwinder crashes |
/// | `libgcc vdso` | malloc/memset-heavy, 100 | 103–104 % | as without blocklist |
/// | `libgcc vdso` | panic loop, 100 and 1000 | 12–14 % at 100 Hz | no crash in 12 runs (`libgcc` alone or with `vdso`); the samples inside libgcc's unwinder are lost |
///
/// So `libgcc` must stay blocked with this unwinder, and blocking `libc` only loses truth.
///
/// Since the handler walks with [`crate::unwind`] (framehop, bounded reads) and uses libgcc's
/// unwinder only as a fallback, the blocklist applies on that fallback only: a sample inside
/// libgcc is walked by framehop and kept (rechecked 2026-11-26, release build: the panic loop
/// at 100 Hz with `libgcc vdso` kept 100 % of the expected samples, against 12–14 % before;
/// no fallback walk happened). `pthread` matches nothing on glibc ≥ 2.34
/// (libpthread is part of libc). `vdso` is kept blocked as pprof-rs's authors advise (its unwind tables
/// are wrong on some distributions); little time is spent there.
pub const DEFAULT_BLOCKLIST: &[&str] = &["libgcc", "vdso"];

/// How to start the collector.
#[derive(Clone, Debug)]
pub struct CpuOptions {
    /// Samples per second (0: [`DEFAULT_FREQUENCY`]).
    pub frequency: u32,
    /// Shared libraries whose samples are dropped (substrings of their paths).
    pub blocklist: Vec<String>,
}

impl Default for CpuOptions {
    fn default() -> Self {
        CpuOptions {
            frequency: DEFAULT_FREQUENCY,
            blocklist: DEFAULT_BLOCKLIST.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Why the CPU collector cannot work.
#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    /// The sampler could not start (an unsupported platform, or a failed system call).
    #[error("cannot start the CPU profiler: {0}")]
    Start(SamplerError),
    /// The program uses SIGPROF or `ITIMER_PROF` itself, since before CPU profiling started
    /// or since: caddyprof leaves them alone and takes no CPU samples.
    #[error("{0}")]
    Host(HostSignal),
}

impl From<SamplerError> for CpuError {
    fn from(error: SamplerError) -> Self {
        match error {
            SamplerError::Host(host) => CpuError::Host(host),
            error => CpuError::Start(error),
        }
    }
}

/// How often the collector thread moves samples from the ring into the windows.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(200);

/// Distinct stacks kept before those no open window counts are forgotten.
pub const MAX_STACKS: usize = 4096;

/// A distinct stack: the `thread` label (the thread's name, or its id) and the addresses.
type StackKey = (Box<str>, Box<[usize]>);

struct Collector {
    frequency: u32,
    /// The live subscriptions' windows: stack index → samples.
    windows: HashMap<u64, HashMap<usize, i64>>,
    next_subscription: u64,
    index: HashMap<Arc<StackKey>, usize>,
    stacks: Vec<Arc<StackKey>>,
    /// Samples dropped by the sampler, as last reported.
    dropped: sampler::Dropped,
    drainer: Option<std::thread::Thread>,
    /// The handler and timer caddyprof set, while subscriptions are alive and the program has
    /// not taken SIGPROF over.
    armed: Option<sampler::Armed>,
    /// The program took SIGPROF or the timer over while subscriptions were alive: every
    /// subscription's next cut says so. Forgotten with the last subscription.
    taken_over: Option<HostSignal>,
}

static COLLECTOR: Mutex<Option<Collector>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<Collector>> {
    COLLECTOR.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the process-wide sampler at `frequency` Hz (0: [`DEFAULT_FREQUENCY`]) with the
/// default blocklist, unless it is already started; returns the frequency in use. Samples
/// are taken while a subscription is alive.
pub fn start(frequency: u32) -> Result<u32, CpuError> {
    start_with(CpuOptions {
        frequency,
        ..CpuOptions::default()
    })
}

/// Starts the process-wide sampler with `options`, unless it is already started (then the
/// options are ignored); returns the frequency in use. Fails with [`CpuError::Host`] when
/// the program uses SIGPROF or `ITIMER_PROF` itself (see [`super::sampler`]).
pub fn start_with(options: CpuOptions) -> Result<u32, CpuError> {
    let _own = crate::allocator::own_work();
    let mut guard = lock();
    let collector = started(&mut guard, options)?;
    if let Some(host) = &collector.taken_over {
        return Err(CpuError::Host(host.clone()));
    }
    if collector.armed.is_none()
        && let Some(host) = sampler::host_signal()?
    {
        return Err(CpuError::Host(host));
    }
    Ok(collector.frequency)
}

fn started(
    collector: &mut Option<Collector>,
    options: CpuOptions,
) -> Result<&mut Collector, CpuError> {
    let wanted = if options.frequency == 0 {
        DEFAULT_FREQUENCY
    } else {
        options.frequency
    };
    if collector.is_none() {
        sampler::prepare(&options.blocklist)?;
        *collector = Some(Collector {
            frequency: wanted,
            windows: HashMap::new(),
            next_subscription: 0,
            index: HashMap::new(),
            stacks: Vec::new(),
            dropped: sampler::dropped(),
            drainer: None,
            armed: None,
            taken_over: None,
        });
    }
    let running = collector.as_mut().expect("just started");
    if running.frequency != wanted {
        tracing::warn!(
            "the CPU profiler already runs at {} Hz; {} Hz asked for later is not used (the \
             rate is fixed once started)",
            running.frequency,
            wanted
        );
    }
    Ok(running)
}

/// The frequency the sampler runs at, or `None` before it is started.
pub fn frequency() -> Option<u32> {
    lock().as_ref().map(|c| c.frequency)
}

/// Subscribes a consumer: starts the sampler if needed (at `frequency` Hz, 0 for the default;
/// see the module docs: the rate is fixed once started) and returns a subscription whose
/// first window starts now. Fails with [`CpuError::Host`] when the program uses SIGPROF or
/// `ITIMER_PROF` itself.
pub fn subscribe(frequency: u32) -> Result<CpuSubscription, CpuError> {
    let _own = crate::allocator::own_work();
    let mut guard = lock();
    let collector = started(
        &mut guard,
        CpuOptions {
            frequency,
            ..CpuOptions::default()
        },
    )?;
    if let Some(host) = &collector.taken_over {
        return Err(CpuError::Host(host.clone()));
    }
    if collector.windows.is_empty() {
        collector.armed = Some(sampler::arm(collector.frequency)?);
    } else {
        // Samples taken so far belong to the windows already open.
        collector.drain();
    }
    if collector.drainer.is_none() {
        let thread = std::thread::Builder::new()
            .name("caddyprof-cpu".into())
            .spawn(drain_loop)
            .map_err(|error| SamplerError::System {
                call: "spawning the collector thread",
                error,
            })?;
        collector.drainer = Some(thread.thread().clone());
    }
    let id = collector.next_subscription;
    collector.next_subscription += 1;
    collector.windows.insert(id, HashMap::new());
    if let Some(drainer) = &collector.drainer {
        drainer.unpark();
    }
    Ok(CpuSubscription {
        id,
        frequency: collector.frequency,
        start: SystemTime::now(),
        started: Instant::now(),
    })
}

/// The collector thread: drains the ring while someone subscribes, sleeps otherwise.
fn drain_loop() {
    crate::allocator::own_thread();
    loop {
        let active = {
            let mut guard = lock();
            match guard.as_mut() {
                Some(collector) if !collector.windows.is_empty() => {
                    collector.drain();
                    true
                }
                _ => false,
            }
        };
        if active {
            // Libraries loaded or unloaded since: a new module list for the handler's
            // unwinder (cheap when nothing changed: one `dl_iterate_phdr` step).
            crate::unwind::refresh();
            std::thread::park_timeout(DRAIN_INTERVAL);
        } else {
            std::thread::park();
        }
    }
}

/// One consumer's view of the CPU samples: each [`collect`](Self::collect) returns the
/// samples taken since this subscription's previous collection. Dropping the last
/// subscription disarms the sampling timer and puts back the SIGPROF disposition found
/// before (see [`sampler::disarm`]).
#[derive(Debug)]
pub struct CpuSubscription {
    id: u64,
    frequency: u32,
    start: SystemTime,
    started: Instant,
}

impl CpuSubscription {
    /// The sampling frequency in use, in Hz.
    pub fn frequency(&self) -> u32 {
        self.frequency
    }

    /// When the current window started (the subscription or the last collection).
    pub fn window_start(&self) -> SystemTime {
        self.start
    }

    /// Ends the current window and returns its profile: [`cut`](Self::cut) then
    /// [`CpuWindow::build`].
    pub fn collect(&mut self) -> Result<Profile, CpuError> {
        Ok(self.cut()?.build())
    }

    /// Ends the current window and returns its samples, not yet symbolized (quick: no
    /// symbolization, no encoding). The next window starts now.
    ///
    /// Fails with [`CpuError::Host`] once the program has installed its own SIGPROF handler
    /// or set `ITIMER_PROF` since sampling began ([`sampler::check`]): no more samples come,
    /// and every later cut fails the same way.
    pub fn cut(&mut self) -> Result<CpuWindow, CpuError> {
        let _own = crate::allocator::own_work();
        let mut guard = lock();
        let collector = guard
            .as_mut()
            .expect("a subscription implies a started collector");
        if let Some(armed) = &collector.armed {
            match sampler::check(armed) {
                Ok(()) => {}
                Err(SamplerError::Host(host)) => {
                    collector.armed = None;
                    collector.taken_over = Some(host);
                }
                Err(error) => return Err(error.into()),
            }
        }
        if let Some(host) = &collector.taken_over {
            return Err(CpuError::Host(host.clone()));
        }
        collector.drain();
        let end = SystemTime::now();
        let elapsed = self.started.elapsed();
        let duration = end
            .duration_since(self.start)
            .unwrap_or(elapsed)
            .max(Duration::from_nanos(1));
        let window = collector
            .windows
            .insert(self.id, HashMap::new())
            .unwrap_or_default();
        let mut counts: Vec<(usize, i64)> = window.into_iter().collect();
        counts.sort_unstable();
        let stacks = counts
            .into_iter()
            .map(|(i, count)| (Arc::clone(&collector.stacks[i]), count))
            .collect();
        collector.forget_old_stacks();
        drop(guard);
        let start = std::mem::replace(&mut self.start, end);
        self.started = Instant::now();
        Ok(CpuWindow {
            frequency: self.frequency,
            start,
            duration,
            stacks,
        })
    }
}

/// A CPU window's samples, cut and not yet symbolized.
#[derive(Debug)]
pub struct CpuWindow {
    frequency: u32,
    start: SystemTime,
    duration: Duration,
    /// Each distinct stack and its samples.
    stacks: Vec<(Arc<StackKey>, i64)>,
}

impl CpuWindow {
    /// The samples in the window.
    pub fn samples(&self) -> i64 {
        self.stacks.iter().map(|(_, n)| n).sum()
    }

    /// The window's profile: a gzip pprof with sample types `samples/count` and
    /// `cpu/nanoseconds`, period type `cpu/nanoseconds`, period 1e9/frequency, the window's
    /// start and length, and a `thread` label on every sample.
    pub fn build(self) -> Profile {
        let _own = crate::allocator::own_work();
        let period = 1_000_000_000 / i64::from(self.frequency);
        let mut builder = ProfileBuilder::new();
        builder
            .sample_type("samples", "count")
            .sample_type("cpu", "nanoseconds")
            .default_sample_type("cpu")
            .period("cpu", "nanoseconds", period)
            .window(self.start, self.duration);
        let mut symbolizer = symbolizer();
        symbolizer.prepare(
            self.stacks
                .iter()
                .flat_map(|(key, _)| key.1.iter().copied()),
        );
        let mut ids = ProfileLocations::default();
        // Consumed (so freed) inside the own-work scope, which ends before parameters drop.
        for (key, count) in self.stacks {
            let resolved = symbolizer.resolve(&key.1);
            let locations = ids.of(&resolved, &symbolizer, &mut builder);
            builder.add_sample_at(
                &locations,
                &[count, count * period],
                &[Label::str("thread", &key.0)],
            );
        }
        symbolizer.end_batch();
        drop(symbolizer);
        builder.into_profile(ProfileType::Cpu)
    }
}

impl Drop for CpuSubscription {
    fn drop(&mut self) {
        let mut guard = lock();
        if let Some(collector) = guard.as_mut() {
            collector.windows.remove(&self.id);
            if collector.windows.is_empty() {
                // (A `Host` error: the program took SIGPROF over since the last cut, and its
                // handler and timer were left alone.)
                if let Some(armed) = collector.armed.take()
                    && let Err(e @ (SamplerError::System { .. } | SamplerError::Unsupported)) =
                        sampler::disarm(armed)
                {
                    tracing::warn!("cannot stop the CPU profiler's timer: {e}");
                }
                collector.taken_over = None;
                collector.drain();
            }
        }
    }
}

impl Collector {
    /// Moves the ring's samples into every open window.
    fn drain(&mut self) {
        let mut key_buf: Vec<usize> = Vec::with_capacity(sampler::MAX_DEPTH);
        let mut tid_buf = String::new();
        let Collector {
            windows,
            index,
            stacks,
            ..
        } = self;
        sampler::drain(|sample| {
            let thread = if sample.name.is_empty() {
                tid_buf.clear();
                write!(tid_buf, "{}", sample.tid).expect("writing to a String");
                tid_buf.as_str()
            } else {
                std::str::from_utf8(sample.name).unwrap_or("?")
            };
            key_buf.clear();
            key_buf.extend_from_slice(sample.stack);
            let key: StackKey = (thread.into(), key_buf.as_slice().into());
            let i = match index.get(&key) {
                Some(&i) => i,
                None => {
                    let key = Arc::new(key);
                    index.insert(Arc::clone(&key), stacks.len());
                    stacks.push(key);
                    stacks.len() - 1
                }
            };
            for window in windows.values_mut() {
                *window.entry(i).or_insert(0) += 1;
            }
        });
        let dropped = sampler::dropped();
        if dropped.ring_full > self.dropped.ring_full {
            tracing::warn!(
                lost = dropped.ring_full - self.dropped.ring_full,
                "CPU samples lost: the collector fell behind the sampler"
            );
        }
        self.dropped = dropped;
    }

    /// Above [`MAX_STACKS`], forgets the stacks no open window counts.
    fn forget_old_stacks(&mut self) {
        if self.stacks.len() <= MAX_STACKS {
            return;
        }
        let mut renumbered = HashMap::new();
        let mut kept = Vec::new();
        for window in self.windows.values() {
            for &i in window.keys() {
                renumbered.entry(i).or_insert_with(|| {
                    kept.push(i);
                    kept.len() - 1
                });
            }
        }
        let mut old: Vec<Option<Arc<StackKey>>> = std::mem::take(&mut self.stacks)
            .into_iter()
            .map(Some)
            .collect();
        self.stacks = kept
            .iter()
            .map(|&i| old[i].take().expect("each stack kept once"))
            .collect();
        self.index = self
            .stacks
            .iter()
            .enumerate()
            .map(|(i, s)| (Arc::clone(s), i))
            .collect();
        for window in self.windows.values_mut() {
            *window = window.drain().map(|(i, n)| (renumbered[&i], n)).collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> StackKey {
        (format!("thread-{}", i % 3).into(), vec![i, i + 1].into())
    }

    #[test]
    fn beyond_max_stacks_only_the_stacks_of_open_windows_are_kept() {
        let mut collector = Collector {
            frequency: 100,
            windows: HashMap::new(),
            next_subscription: 2,
            index: HashMap::new(),
            stacks: Vec::new(),
            dropped: sampler::Dropped::default(),
            drainer: None,
            armed: None,
            taken_over: None,
        };
        for i in 0..MAX_STACKS + 10 {
            let key = Arc::new(key(i));
            collector.index.insert(Arc::clone(&key), i);
            collector.stacks.push(key);
        }
        collector
            .windows
            .insert(0, HashMap::from([(5, 2), (MAX_STACKS + 3, 7)]));
        collector
            .windows
            .insert(1, HashMap::from([(5, 1), (42, 9)]));

        collector.forget_old_stacks();

        assert_eq!(collector.stacks.len(), 3);
        assert_eq!(collector.index.len(), 3);
        let counts = |window: u64| -> Vec<(StackKey, i64)> {
            let mut counts: Vec<_> = collector.windows[&window]
                .iter()
                .map(|(&i, &n)| ((*collector.stacks[i]).clone(), n))
                .collect();
            counts.sort();
            counts
        };
        let sorted = |mut v: Vec<(StackKey, i64)>| {
            v.sort();
            v
        };
        assert_eq!(
            counts(0),
            sorted(vec![(key(5), 2), (key(MAX_STACKS + 3), 7)])
        );
        assert_eq!(counts(1), sorted(vec![(key(5), 1), (key(42), 9)]));
        for (i, stack) in collector.stacks.iter().enumerate() {
            assert_eq!(collector.index[stack], i);
        }
    }
}
