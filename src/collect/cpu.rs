//! The process-wide CPU collector.
//!
//! One `pprof` (pprof-rs 0.15) [`ProfilerGuard`] samples the whole process for its whole
//! lifetime: `setitimer(ITIMER_PROF)` delivers SIGPROF at the configured frequency to a
//! running thread, whose stack is unwound in the signal handler and counted. The guard is
//! created on first use ([`start`] or [`subscribe`]) and never dropped: recreating it leaks
//! memory and risks a stray SIGPROF killing the process (protocols.md §5.4).
//!
//! **The frequency is fixed once started.** It is the one given to the first [`start`] or
//! [`subscribe`]; start the collector with the highest rate any sink wants before subscribing
//! (`start(max_rate)`). A later, different request keeps the running rate (a warning is logged
//! to stderr, and [`CpuSubscription::frequency`] tells the rate in use).
//!
//! Every sink [`subscribe`]s and gets, at each [`CpuSubscription::collect`], a profile of the
//! samples taken since its own previous collection: pprof-rs's counts are cumulative, so the
//! collector keeps one counter per stack and each subscription keeps its own baseline. Two
//! sinks both asking for cpu both get every sample.
//!
//! # Unwinder and blocklist (measured; see `examples/cpu_blocklist.rs`)
//!
//! pprof 0.15.0 offers three unwinders:
//! - `frame-pointer`: signal-safe, but starts from the frame pointer and never records the
//!   interrupted PC, so the innermost function of every sample is lost (a hot leaf function
//!   shows 0 %, protocols.md §5.4b), and it needs every frame compiled with frame pointers
//!   (glibc's are not). Rejected.
//! - `framehop-unwinder`: allocates inside the signal handler in 0.15.0 (a hang on the malloc
//!   lock, pyroscope-rs#252; fixed upstream after 0.15.0). Rejected.
//! - the default, libgcc's `_Unwind_Backtrace` through backtrace-rs: keeps the leaf. Its
//!   classic deadlock was the loader lock taken by `dl_iterate_phdr` while finding FDEs; GCC ≥ 12
//!   with glibc ≥ 2.35 find them with the lock-free `_dl_find_object` instead (this machine and
//!   Debian 12: gcc 12.2, glibc 2.36). **Chosen.**
//!
//! pprof's usual blocklist (`libc`, `libgcc`, `pthread`, `vdso`) drops every sample whose PC
//! is inside those libraries. We block only `libgcc` and `vdso`, and keep the samples taken
//! inside libc (malloc, free, memset): see [`DEFAULT_BLOCKLIST`] for the measurements.
//!
//! Unwinding uses the unwind tables (`.eh_frame`), so no frame-pointer build flag is needed.
//!
//! # Symbolization
//!
//! Stacks are kept unresolved (instruction addresses). A stack is symbolized the first time
//! a profile contains it, and each address only once (a cache keyed by instruction address,
//! holding the location's function names, files and lines). The first collection that needs
//! no new address drops backtrace-rs's DWARF caches ([`backtrace::clear_symbol_cache`]):
//! once the set of hot stacks is known, new addresses are rare, and keeping the parsed debug
//! info of the whole binary resident is what costs the peers 150–190 MiB of RSS. (Clearing
//! after every batch instead made each later batch re-read and re-parse the debug info: about
//! 1.5 s of CPU per batch in a debug build, visible in the next window's profile.)
//! The memory freed is handed back to the kernel with `malloc_trim` (glibc).
//!
//! Measured RSS (`examples/cpu_blocklist.rs`, debug build of a 36 MB binary with full debug
//! info, 100 Hz): 2.7 MiB before starting; 148 MiB once pprof-rs has started, which
//! symbolizes one backtrace of its own (its sample table, 4096 × 4 entries of up to 128
//! 32-byte frames, is about 68 MiB of that); 71 MiB after we drop that symbolizer state;
//! 153–157 MiB while the first profile is symbolized (0.4 s); back to 74 MiB once no new
//! address comes. The peers stay at 150–190 MiB. What remains is pprof-rs's own table.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use pprof::{ProfilerGuard, ProfilerGuardBuilder};

use crate::config::ProfileType;
use crate::profile::{Frame, Label, LocationId, ProfileBuilder};
use crate::runtime::Profile;

/// The sampling frequency when none is configured (`cpu_profile_rate` 0 or unset), in Hz.
pub const DEFAULT_FREQUENCY: u32 = 100;

/// Shared libraries whose samples are dropped (a substring of the library path): `libgcc`
/// and `vdso`, not `libc`.
///
/// Measured with `examples/cpu_blocklist.rs` on this project's 2-core machine (Debian 12,
/// glibc 2.36, gcc 12.2, debug build, 3–4 s per run, samples expected = process CPU time ×
/// frequency):
///
/// | blocklist | workload, Hz | samples kept | result |
/// |---|---|---|---|
/// | `libc libgcc pthread vdso` (pprof's usual) | malloc/memset-heavy, 100 | 24–30 % | every sample with a libc leaf lost (0 % instead of 75–80 %); the pure-Rust part shows 28–30 % instead of 5–10 % |
/// | `vdso` or none | malloc/memset-heavy, 100 | 101–105 % | libc leaves 75–80 %, all under their Rust caller; no crash (4 runs at 100 Hz, 3 at 1000 Hz) |
/// | `vdso` or none | panic/catch_unwind loop, 100 and 1000 | — | **SIGSEGV in 8 of 11 runs**: unwinding from a PC inside libgcc's own unwinder crashes |
/// | `libgcc vdso` | malloc/memset-heavy, 100 | 103–104 % | as without blocklist |
/// | `libgcc vdso` | panic loop, 100 and 1000 | 12–14 % at 100 Hz | no crash in 12 runs (`libgcc` alone or with `vdso`); the samples inside libgcc's unwinder are lost |
///
/// So `libgcc` must stay blocked with this unwinder (its cost: time spent unwinding panics is
/// not seen), and blocking `libc` only loses truth. `pthread` matches nothing on glibc ≥ 2.34
/// (libpthread is part of libc). `vdso` is kept blocked as pprof-rs advises (its unwind tables
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
    /// The sampler could not start (another pprof-rs profiler is running in this process, or
    /// the timer could not be set).
    #[error("cannot start the CPU profiler: {0}")]
    Start(pprof::Error),
    /// The samples could not be read.
    #[error("cannot read the CPU samples: {0}")]
    Report(pprof::Error),
}

/// (thread id, function start addresses): how pprof-rs itself tells stacks apart.
type StackKey = (u64, Vec<usize>);

/// One distinct stack seen by the profiler.
struct Stack {
    /// Its cumulative sample count since the profiler started.
    total: i64,
    /// The `thread` label: the thread's name, or its id.
    thread: String,
    /// Instruction addresses, leaf first, as unwound (signal handler frames included).
    ips: Vec<usize>,
    /// The symbolized locations (indexes into `Collector::locations`), once needed.
    resolved: Option<Vec<usize>>,
}

/// A symbolized instruction address.
struct ResolvedLocation {
    address: u64,
    /// Innermost (inlined) first.
    lines: Vec<Frame<'static>>,
    /// Whether this is pprof-rs's signal handler (it and the frame after it are dropped).
    is_handler: bool,
}

struct Collector {
    guard: ProfilerGuard<'static>,
    frequency: u32,
    index: HashMap<StackKey, usize>,
    stacks: Vec<Stack>,
    /// The symbol cache: instruction address → location.
    by_ip: HashMap<usize, usize>,
    locations: Vec<ResolvedLocation>,
    /// Whether backtrace-rs holds parsed debug info we may drop.
    symbol_cache_warm: bool,
}

static COLLECTOR: Mutex<Option<Collector>> = Mutex::new(None);

fn lock() -> std::sync::MutexGuard<'static, Option<Collector>> {
    COLLECTOR.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the process-wide sampler at `frequency` Hz (0: [`DEFAULT_FREQUENCY`]) with the
/// default blocklist, unless it is already running; returns the frequency in use.
pub fn start(frequency: u32) -> Result<u32, CpuError> {
    start_with(CpuOptions {
        frequency,
        ..CpuOptions::default()
    })
}

/// Starts the process-wide sampler with `options`, unless it is already running (then the
/// options are ignored); returns the frequency in use.
pub fn start_with(options: CpuOptions) -> Result<u32, CpuError> {
    let mut collector = lock();
    Ok(started(&mut collector, options)?.frequency)
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
        let hz = i32::try_from(wanted).unwrap_or(i32::MAX);
        let guard = ProfilerGuardBuilder::default()
            .frequency(hz)
            .blocklist(&options.blocklist)
            .build()
            .map_err(CpuError::Start)?;
        // pprof-rs warms backtrace-rs's symbolizer when it starts (it symbolizes one backtrace
        // of its own): drop that until a profile needs it.
        release_symbol_cache();
        *collector = Some(Collector {
            guard,
            frequency: wanted,
            index: HashMap::new(),
            stacks: Vec::new(),
            by_ip: HashMap::new(),
            locations: Vec::new(),
            symbol_cache_warm: false,
        });
    }
    let running = collector.as_mut().expect("just started");
    if running.frequency != wanted {
        eprintln!(
            "caddyprof: the CPU profiler already runs at {} Hz; {} Hz asked for later is not \
             used (the rate is fixed once started)",
            running.frequency, wanted
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
/// first window starts now.
pub fn subscribe(frequency: u32) -> Result<CpuSubscription, CpuError> {
    let mut guard = lock();
    let collector = started(
        &mut guard,
        CpuOptions {
            frequency,
            ..CpuOptions::default()
        },
    )?;
    collector.refresh()?;
    Ok(CpuSubscription {
        baseline: collector.stacks.iter().map(|s| s.total).collect(),
        frequency: collector.frequency,
        start: SystemTime::now(),
        started: Instant::now(),
    })
}

/// One consumer's view of the CPU samples: each [`collect`](Self::collect) returns the
/// samples taken since this subscription's previous collection.
#[derive(Debug)]
pub struct CpuSubscription {
    /// Per stack (index in the collector), the cumulative count at the last collection.
    baseline: Vec<i64>,
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

    /// Ends the current window and returns its profile: a gzip pprof with sample types
    /// `samples/count` and `cpu/nanoseconds`, period type `cpu/nanoseconds`, period
    /// 1e9/frequency, the window's start and length, and a `thread` label on every sample.
    /// The next window starts now.
    pub fn collect(&mut self) -> Result<Profile, CpuError> {
        let period = 1_000_000_000 / i64::from(self.frequency);
        let mut guard = lock();
        let collector = guard
            .as_mut()
            .expect("a subscription implies a started collector");
        collector.refresh()?;
        let end = SystemTime::now();
        let elapsed = self.started.elapsed();
        let duration = end
            .duration_since(self.start)
            .unwrap_or(elapsed)
            .max(Duration::from_nanos(1));

        let mut deltas = Vec::new();
        for (i, stack) in collector.stacks.iter().enumerate() {
            let before = self.baseline.get(i).copied().unwrap_or(0);
            if stack.total > before {
                deltas.push((i, stack.total - before));
            }
        }
        self.baseline = collector.stacks.iter().map(|s| s.total).collect();

        let mut builder = ProfileBuilder::new();
        builder
            .sample_type("samples", "count")
            .sample_type("cpu", "nanoseconds")
            .default_sample_type("cpu")
            .period("cpu", "nanoseconds", period)
            .window(self.start, duration);
        collector.resolve(deltas.iter().map(|&(i, _)| i));
        let mut ids: HashMap<usize, LocationId> = HashMap::new();
        for (i, count) in deltas {
            let stack = &collector.stacks[i];
            let locations: Vec<LocationId> = stack
                .resolved
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|&l| {
                    *ids.entry(l).or_insert_with(|| {
                        let location = &collector.locations[l];
                        builder.location(location.address, &location.lines)
                    })
                })
                .collect();
            builder.add_sample_at(
                &locations,
                &[count, count * period],
                &[Label::str("thread", &stack.thread)],
            );
        }
        drop(guard);
        self.start = end;
        self.started = Instant::now();
        Ok(builder.into_profile(ProfileType::Cpu))
    }
}

impl Collector {
    /// Reads pprof-rs's cumulative counts (unresolved, under its lock only briefly) and
    /// updates the per-stack totals, adding new stacks unresolved.
    fn refresh(&mut self) -> Result<(), CpuError> {
        let report = self
            .guard
            .report()
            .build_unresolved()
            .map_err(CpuError::Report)?;
        for (frames, count) in report.data {
            let key: StackKey = (
                frames.thread_id,
                frames
                    .frames
                    .iter()
                    .map(|f| f.symbol_address() as usize)
                    .collect(),
            );
            let count = count as i64;
            match self.index.get(&key) {
                Some(&i) => self.stacks[i].total = self.stacks[i].total.max(count),
                None => {
                    let name = &frames.thread_name[..frames.thread_name_length];
                    let thread = if name.is_empty() {
                        frames.thread_id.to_string()
                    } else {
                        String::from_utf8_lossy(name).into_owned()
                    };
                    self.index.insert(key, self.stacks.len());
                    self.stacks.push(Stack {
                        total: count,
                        thread,
                        ips: frames.frames.iter().map(|f| f.ip() as usize).collect(),
                        resolved: None,
                    });
                }
            }
        }
        Ok(())
    }

    /// Symbolizes the stacks `which` that are not yet, each new address once.
    fn resolve(&mut self, which: impl Iterator<Item = usize>) {
        let mut new_addresses = false;
        for i in which {
            if self.stacks[i].resolved.is_some() {
                continue;
            }
            let mut locations = Vec::with_capacity(self.stacks[i].ips.len());
            // The unwinder ends some stacks with a zero address: not a frame.
            for &ip in self.stacks[i].ips.iter().filter(|&&ip| ip != 0) {
                let next = self.locations.len();
                let l = *self.by_ip.entry(ip).or_insert(next);
                if l == next {
                    self.locations.push(symbolize(ip));
                    new_addresses = true;
                }
                locations.push(l);
            }
            // Drop the signal handler's frames: everything up to pprof-rs's handler, and the
            // signal trampoline after it.
            if let Some(h) = locations.iter().position(|&l| self.locations[l].is_handler) {
                locations.drain(..(h + 2).min(locations.len()));
            }
            self.stacks[i].resolved = Some(locations);
        }
        // Keep the DWARF caches while new addresses keep coming (each refill re-reads and
        // re-parses the debug info); drop them at the first collection that needed none.
        if new_addresses {
            self.symbol_cache_warm = true;
        } else if self.symbol_cache_warm {
            release_symbol_cache();
            self.symbol_cache_warm = false;
        }
    }
}

/// Drops backtrace-rs's parsed debug info and gives the freed memory back to the system.
fn release_symbol_cache() {
    backtrace::clear_symbol_cache();
    // glibc keeps freed heap memory mapped; the debug info was tens of MiB of small blocks.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only returns free memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Symbolizes one instruction address (a return address, except for the interrupted frame).
fn symbolize(ip: usize) -> ResolvedLocation {
    // Return addresses point after the call: look up the call instruction itself. The
    // interrupted frame's address is exact, though, and may be a function's first
    // instruction: when `ip - 1` finds nothing, `ip` is tried.
    let mut location = symbolize_exact(ip, ip.saturating_sub(1));
    if location.lines.is_empty() {
        location = symbolize_exact(ip, ip);
    }
    if location.lines.is_empty() {
        location.lines.push(Frame::new(format!("{ip:#x}")));
    }
    location
}

fn symbolize_exact(ip: usize, lookup: usize) -> ResolvedLocation {
    let mut lines = Vec::new();
    let mut is_handler = false;
    backtrace::resolve(lookup as *mut std::ffi::c_void, |symbol| {
        let (function, system_name) = match symbol.name() {
            Some(name) => {
                let raw = name.as_str().unwrap_or_default();
                is_handler |= raw.contains("perf_signal_handler");
                (format!("{name:#}"), raw.to_owned())
            }
            None => (format!("{ip:#x}"), String::new()),
        };
        let mut frame = Frame::new(function);
        if system_name != frame.function {
            frame = frame.system_name(system_name);
        }
        if let Some(file) = symbol.filename() {
            frame = frame.file(file.to_string_lossy().into_owned());
        }
        lines.push(frame.line(symbol.lineno().unwrap_or(0)));
    });
    ResolvedLocation {
        address: ip as u64,
        lines,
        is_handler,
    }
}
