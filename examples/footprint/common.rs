//! What the footprint benchmark's two runners share: the command line, the resident-memory
//! monitor, what the uploads are counted into and the JSON line. Included with `#[path]` by
//! `examples/footprint/main.rs` (caddyprof) and `benches/pyroscope-rs/src/bin/footprint.rs`
//! (pyroscope-rs), which cannot be one binary, beside `workload.rs` (as `workload`) and
//! `examples/overhead/common.rs` (as `overhead`: `rusage`). Depends on `std` and `libc`.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Which run this is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Baseline,
    Profiled,
}

/// The command line.
pub struct Options {
    pub mode: Mode,
    /// A name for the build, echoed in the JSON line (`benches/footprint.sh` passes the
    /// debug-info level).
    pub variant: String,
    pub seconds: f64,
    pub widen: f64,
    pub steady: f64,
    pub threads: usize,
    pub hz: u32,
    pub upload_secs: u64,
    /// Where to write the per-second resident memory, if anywhere.
    pub timeline: Option<String>,
    /// Where to copy `/proc/self/smaps` at the end of the workload, if anywhere.
    pub smaps: Option<String>,
}

pub const USAGE: &str = "usage: footprint (--baseline | --profiled) [--variant NAME] \
[--seconds S (240)] [--widen S (60)] [--steady S (60)] [--threads N (2)] [--hz N (100)] \
[--upload-rate S (5)] [--timeline FILE] [--smaps FILE]";

impl Options {
    pub fn parse() -> Result<Options, String> {
        let mut options = Options {
            mode: Mode::Baseline,
            variant: "unnamed".into(),
            seconds: 240.0,
            widen: 60.0,
            steady: 60.0,
            threads: 2,
            hz: 100,
            upload_secs: 5,
            timeline: None,
            smaps: None,
        };
        let mut mode = None;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
            };
            fn number<T: std::str::FromStr>(arg: &str, value: String) -> Result<T, String> {
                value
                    .parse()
                    .map_err(|_| format!("{arg}: not a valid number: {value}\n{USAGE}"))
            }
            match arg.as_str() {
                "--baseline" => mode = Some(Mode::Baseline),
                "--profiled" => mode = Some(Mode::Profiled),
                "--variant" => options.variant = value()?,
                "--seconds" => options.seconds = number(&arg, value()?)?,
                "--widen" => options.widen = number(&arg, value()?)?,
                "--steady" => options.steady = number(&arg, value()?)?,
                "--threads" => options.threads = number(&arg, value()?)?,
                "--hz" => options.hz = number(&arg, value()?)?,
                "--upload-rate" => options.upload_secs = number(&arg, value()?)?,
                "--timeline" => options.timeline = Some(value()?),
                "--smaps" => options.smaps = Some(value()?),
                _ => return Err(format!("unknown argument {arg}\n{USAGE}")),
            }
        }
        options.mode = mode.ok_or_else(|| USAGE.to_owned())?;
        if !(options.widen >= 0.0 && options.seconds > options.widen && options.steady > 0.0) {
            return Err(format!(
                "--seconds must be longer than --widen, and --steady positive\n{USAGE}"
            ));
        }
        Ok(options)
    }
}

/// Resident memory at one moment, in KiB.
#[derive(Clone, Copy, Debug)]
pub struct Resident {
    /// Seconds since the process started.
    pub at: f64,
    pub rss: u64,
    pub anon: u64,
}

impl Resident {
    /// File-backed resident memory (the binary's and libraries' pages, mapped files).
    pub fn file(&self) -> u64 {
        self.rss.saturating_sub(self.anon)
    }
}

/// `Rss` and `Anonymous` of `/proc/self/smaps_rollup`, in KiB.
pub fn resident() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("Rss:"), field("Anonymous:"))
}

/// The process's peak RSS (`VmHWM` of `/proc/self/status`), in KiB.
pub fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A thread reading [`resident`] once a second, on the second after `start`.
pub struct Monitor {
    samples: Arc<Mutex<Vec<Resident>>>,
    done: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Monitor {
    /// Starts reading; `seconds` sizes the list up front, so that it does not grow while
    /// measured.
    pub fn start(start: Instant, seconds: f64) -> Monitor {
        let samples = Arc::new(Mutex::new(Vec::with_capacity(seconds as usize + 16)));
        let done = Arc::new(AtomicBool::new(false));
        let (kept, finished) = (samples.clone(), done.clone());
        let thread = std::thread::Builder::new()
            .name("rss-monitor".into())
            .spawn(move || {
                let mut next = start;
                while !finished.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if now < next {
                        std::thread::park_timeout(next - now);
                        continue;
                    }
                    let (rss, anon) = resident();
                    let at = start.elapsed().as_secs_f64();
                    kept.lock().unwrap().push(Resident { at, rss, anon });
                    next += Duration::from_secs(1);
                }
            })
            .expect("spawning the monitor thread");
        Monitor {
            samples,
            done,
            thread,
        }
    }

    /// Stops reading and returns what was read, with one last reading now.
    pub fn finish(self, start: Instant) -> Vec<Resident> {
        self.done.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        let _ = self.thread.join();
        let mut samples = std::mem::take(&mut *self.samples.lock().unwrap());
        let (rss, anon) = resident();
        samples.push(Resident {
            at: start.elapsed().as_secs_f64(),
            rss,
            anon,
        });
        samples
    }
}

/// What the readings say, in KiB.
pub struct Footprint {
    /// The peak RSS of the whole run, stop included (`VmHWM`).
    pub peak: u64,
    /// The highest readings of anonymous and file-backed memory (each at its own moment).
    pub peak_anon: u64,
    pub peak_file: u64,
    /// Means over the readings of the last `steady` seconds of the workload.
    pub steady: f64,
    pub steady_anon: f64,
    pub steady_file: f64,
    /// The reading at the end of the widening (the first at or after it).
    pub at_widen: Option<Resident>,
    /// The highest reading after it.
    pub max_after_widen: Option<u64>,
    /// The least-squares slope of RSS over the steady readings, KiB a minute.
    pub steady_slope: f64,
}

impl Footprint {
    /// Sums up `readings` of a workload that widened until `widen` seconds and ended at
    /// `end` seconds (since the process started).
    pub fn of(readings: &[Resident], peak: u64, widen: f64, end: f64, steady: f64) -> Footprint {
        let last: Vec<&Resident> = readings
            .iter()
            .filter(|r| r.at >= end - steady && r.at <= end + 0.5)
            .collect();
        let mean = |value: fn(&Resident) -> u64| {
            last.iter().map(|r| value(r) as f64).sum::<f64>() / last.len().max(1) as f64
        };
        let at_widen = readings.iter().find(|r| r.at >= widen).copied();
        let max_after_widen = readings
            .iter()
            .filter(|r| r.at > widen)
            .map(|r| r.rss)
            .max();
        let steady_slope = {
            let n = last.len() as f64;
            let mean_t = last.iter().map(|r| r.at).sum::<f64>() / n;
            let mean_r = mean(|r| r.rss);
            let covariance: f64 = last
                .iter()
                .map(|r| (r.at - mean_t) * (r.rss as f64 - mean_r))
                .sum();
            let variance: f64 = last.iter().map(|r| (r.at - mean_t).powi(2)).sum();
            if variance > 0.0 {
                covariance / variance * 60.0
            } else {
                f64::NAN
            }
        };
        Footprint {
            peak,
            peak_anon: readings.iter().map(|r| r.anon).max().unwrap_or(0),
            peak_file: readings.iter().map(Resident::file).max().unwrap_or(0),
            steady: mean(|r| r.rss),
            steady_anon: mean(|r| r.anon),
            steady_file: mean(Resident::file),
            at_widen,
            max_after_widen,
            steady_slope,
        }
    }
}

/// Writes the readings as tab-separated `seconds rss_kib anon_kib file_kib` lines.
pub fn write_timeline(path: &str, readings: &[Resident]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "seconds\trss_kib\tanon_kib\tfile_kib")?;
    for r in readings {
        writeln!(out, "{:.1}\t{}\t{}\t{}", r.at, r.rss, r.anon, r.file())?;
    }
    out.flush()
}

/// What reached the loopback sink.
#[derive(Default)]
pub struct Delivered {
    pub uploads: usize,
    pub cpu_profiles: usize,
    pub cpu_samples: u64,
    pub heap_profiles: usize,
    pub heap_stacks: usize,
    pub thread_profiles: usize,
    /// The workload's functions (`part_NN::step_NN`) found in CPU samples.
    pub functions: BTreeSet<String>,
}

impl Delivered {
    /// Adds a CPU sample of `count` whose stack has the functions `names`.
    pub fn add_cpu<'a>(&mut self, names: impl IntoIterator<Item = &'a str>, count: u64) {
        self.cpu_samples += count;
        for name in names {
            if let Some(at) = name.find("part_") {
                let function = &name[at..];
                // `part_NN::step_NN`, without what may follow (a hash, generic arguments).
                if let Some(function) = function.get(..16).filter(|f| f.contains("::step_")) {
                    self.functions.insert(function.to_owned());
                }
            }
        }
    }
}

/// A JSON number with `decimals`, or `null` when not finite.
fn num(value: f64, decimals: usize) -> String {
    if value.is_finite() {
        format!("{value:.decimals$}")
    } else {
        "null".into()
    }
}

/// KiB as MiB, with two decimals.
fn mib(kib: f64) -> String {
    num(kib / 1024.0, 2)
}

/// Everything a run reports.
pub struct Outcome<'a> {
    pub profiler: &'static str,
    pub options: &'a Options,
    /// Time to start the profiler.
    pub start: Option<Duration>,
    pub measured: Measured,
    pub delivered: Option<Delivered>,
    /// The profiler's own figures, if it tells any: names and JSON values.
    pub extra: Vec<(&'static str, String)>,
}

impl Outcome<'_> {
    /// The one JSON line.
    pub fn json(&self) -> String {
        let m = &self.measured;
        let f = &m.footprint;
        let o = self.options;
        let secs = |d: Option<Duration>| d.map_or("null".into(), |d| num(d.as_secs_f64(), 4));
        let mut fields: Vec<(&str, String)> = vec![
            ("profiler", format!("\"{}\"", self.profiler)),
            ("variant", format!("\"{}\"", o.variant)),
            (
                "mode",
                format!("\"{}\"", format!("{:?}", o.mode).to_lowercase()),
            ),
            ("seconds", num(o.seconds, 1)),
            ("widen_s", num(o.widen, 1)),
            ("steady_s", num(o.steady, 1)),
            ("threads", o.threads.to_string()),
            ("hz", o.hz.to_string()),
            ("readings", m.readings.to_string()),
            ("peak_mib", mib(f.peak as f64)),
            ("peak_anon_mib", mib(f.peak_anon as f64)),
            ("peak_file_mib", mib(f.peak_file as f64)),
            ("steady_mib", mib(f.steady)),
            ("steady_anon_mib", mib(f.steady_anon)),
            ("steady_file_mib", mib(f.steady_file)),
            (
                "at_widen_mib",
                f.at_widen.map_or("null".into(), |r| mib(r.rss as f64)),
            ),
            (
                "growth_after_widen_mib",
                f.at_widen
                    .map_or("null".into(), |r| mib(f.steady - r.rss as f64)),
            ),
            (
                "max_after_widen_mib",
                f.max_after_widen.map_or("null".into(), |m| mib(m as f64)),
            ),
            ("steady_slope_mib_per_min", mib(f.steady_slope)),
            ("malloc_in_use_mib", mib(m.malloc_in_use as f64 / 1024.0)),
            ("malloc_free_mib", mib(m.malloc_free as f64 / 1024.0)),
            ("start_s", secs(self.start)),
            ("stop_s", secs(m.stop)),
            ("cpu_s", num(m.cpu_seconds, 2)),
        ];
        if let Some(d) = &self.delivered {
            fields.extend([
                ("uploads", d.uploads.to_string()),
                ("cpu_profiles", d.cpu_profiles.to_string()),
                ("cpu_samples", d.cpu_samples.to_string()),
                ("heap_profiles", d.heap_profiles.to_string()),
                ("heap_stacks", d.heap_stacks.to_string()),
                ("thread_profiles", d.thread_profiles.to_string()),
                ("functions_seen", d.functions.len().to_string()),
            ]);
        }
        fields.extend(self.extra.iter().cloned());
        let body: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", body.join(","))
    }
}

/// What every run starts with: the command line (or `Err`, the code to exit with, after the
/// usage was printed), the monitor, started at once, and the spooling loopback sink.
pub fn begin<S>(
    start: Instant,
    sink: impl FnOnce() -> std::io::Result<S>,
) -> Result<(Options, Monitor, S), std::process::ExitCode> {
    let options = Options::parse().map_err(|message| {
        eprintln!("{message}");
        std::process::ExitCode::from(2)
    })?;
    let monitor = Monitor::start(start, options.seconds);
    let sink = sink().map_err(|e| {
        eprintln!("cannot start the loopback sink: {e}");
        std::process::ExitCode::FAILURE
    })?;
    Ok((options, monitor, sink))
}

/// What glibc's allocator holds at one moment (`mallinfo2`), in bytes: in use by the
/// program (small blocks and mmapped ones) and free but kept in its arenas.
pub fn malloc_held() -> (usize, usize) {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd, info.fordblks)
}

/// What a run measured.
pub struct Measured {
    pub footprint: Footprint,
    pub readings: usize,
    /// [`malloc_held`] at the end of the workload.
    pub malloc_in_use: usize,
    pub malloc_free: usize,
    /// How long `stop` took.
    pub stop: Option<Duration>,
    /// User + system CPU seconds of the whole process, after the stop.
    pub cpu_seconds: f64,
}

/// Runs the workload as `options` say, with the readings of `monitor`, then `stop` (which
/// stops the profiler, if any, and says how long that took). The readings end with the
/// workload and are written to `--timeline`, and `/proc/self/smaps` copied to `--smaps`, if
/// asked, before the profiler stops; the peak is read after it.
pub fn measure(
    options: &Options,
    monitor: Monitor,
    process_start: Instant,
    stop: impl FnOnce() -> Option<Duration>,
) -> Measured {
    let plan = crate::workload::Plan::new(
        Duration::from_secs_f64(options.seconds),
        Duration::from_secs_f64(options.widen),
    );
    let widen_at = (plan.start - process_start).as_secs_f64() + options.widen;
    std::hint::black_box(crate::workload::run(&plan, options.threads));
    let end = process_start.elapsed().as_secs_f64();
    let readings = monitor.finish(process_start);
    let (malloc_in_use, malloc_free) = malloc_held();
    if let Some(path) = &options.smaps
        && let Err(e) =
            std::fs::read("/proc/self/smaps").and_then(|smaps| std::fs::write(path, smaps))
    {
        eprintln!("cannot copy /proc/self/smaps to {path}: {e}");
    }
    if let Some(path) = &options.timeline
        && let Err(e) = write_timeline(path, &readings)
    {
        eprintln!("cannot write {path}: {e}");
    }
    let stop = stop();
    Measured {
        footprint: Footprint::of(&readings, peak_kib(), widen_at, end, options.steady),
        readings: readings.len(),
        malloc_in_use,
        malloc_free,
        stop,
        cpu_seconds: crate::overhead::rusage(libc::RUSAGE_SELF).0,
    }
}
