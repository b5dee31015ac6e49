//! What the overhead benchmark's two binaries share: the workload, the command line, the
//! loopback HTTP sink, the resource measurements and the JSON line. Included with `#[path]`
//! by `examples/overhead/main.rs` (caddyprof) and `benches/pyroscope-rs/src/main.rs`
//! (pyroscope-rs), which cannot be one binary, and, for the sink, by the footprint
//! benchmark's runners (`examples/footprint/`). Depends on `std` and `libc` only.

use std::collections::HashMap;
use std::fs::File;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Kernel iterations per round in [`work_70`]; [`work_30`] does 3/7 of it. About 0.5 ms on
/// the 2-core test machine, so a 10 ms sampling period spans many calls of both.
pub const ITERATIONS_70: u64 = 210_000;
/// Kernel iterations per round in [`work_30`].
pub const ITERATIONS_30: u64 = 90_000;

/// The kernel: a dependent xorshift chain (no memory traffic, cost linear in `n`). Inlined
/// into both callers, so a sample's innermost function is `work_70` or `work_30`.
#[inline(always)]
fn kernel(mut x: u64, n: u64) -> u64 {
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// 70 % of the workload's CPU.
#[inline(never)]
pub fn work_70(x: u64) -> u64 {
    kernel(black_box(x), black_box(ITERATIONS_70))
}

/// 30 % of the workload's CPU.
#[inline(never)]
pub fn work_30(x: u64) -> u64 {
    kernel(black_box(x), black_box(ITERATIONS_30))
}

/// What the workload measured itself.
pub struct Workload {
    pub rounds: u64,
    pub wall: Duration,
    pub in_70: Duration,
    pub in_30: Duration,
}

impl Workload {
    /// The true share of `work_70` in the time spent in the two functions, in percent.
    pub fn true_share_70(&self) -> f64 {
        let a = self.in_70.as_secs_f64();
        let b = self.in_30.as_secs_f64();
        100.0 * a / (a + b)
    }
}

/// Runs `rounds` rounds of `work_70` then `work_30`, timing each call.
pub fn run_workload(rounds: u64) -> Workload {
    let start = Instant::now();
    let (mut in_70, mut in_30) = (Duration::ZERO, Duration::ZERO);
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..rounds {
        let t0 = Instant::now();
        x = work_70(x);
        let t1 = Instant::now();
        x = work_30(x);
        let t2 = Instant::now();
        in_70 += t1 - t0;
        in_30 += t2 - t1;
    }
    black_box(x);
    Workload {
        rounds,
        wall: start.elapsed(),
        in_70,
        in_30,
    }
}

/// How many rounds take about `seconds` here (measured over a quarter of a second).
pub fn calibrate(seconds: f64) -> u64 {
    let probe = run_workload(1);
    let per_round = probe.wall.as_secs_f64().max(1e-6);
    let n = ((0.25 / per_round) as u64).max(1);
    let measured = run_workload(n);
    ((seconds * n as f64 / measured.wall.as_secs_f64()).round() as u64).max(1)
}

/// Which run this is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Baseline,
    Profiled,
    /// Print the number of rounds that take `--seconds` and exit.
    Calibrate,
}

/// The command line.
pub struct Options {
    pub mode: Mode,
    /// Workload rounds (`--rounds`); when absent, calibrated from `seconds`.
    pub rounds: Option<u64>,
    pub seconds: f64,
    pub hz: u32,
    pub upload_secs: u64,
}

pub const USAGE: &str = "usage: overhead (--baseline | --profiled | --calibrate) \
[--rounds R | --seconds S (default 10)] [--hz N (default 100)] [--upload-rate SECONDS (default 2)]";

impl Options {
    pub fn parse() -> Result<Options, String> {
        let mut options = Options {
            mode: Mode::Baseline,
            rounds: None,
            seconds: 10.0,
            hz: 100,
            upload_secs: 2,
        };
        let mut mode = None;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
            };
            let bad = |name: &str| format!("{name}: not a valid number\n{USAGE}");
            match arg.as_str() {
                "--baseline" => mode = Some(Mode::Baseline),
                "--profiled" => mode = Some(Mode::Profiled),
                "--calibrate" => mode = Some(Mode::Calibrate),
                "--rounds" => {
                    options.rounds = Some(value(&arg)?.parse().map_err(|_| bad(&arg))?);
                }
                "--seconds" => options.seconds = value(&arg)?.parse().map_err(|_| bad(&arg))?,
                "--hz" => options.hz = value(&arg)?.parse().map_err(|_| bad(&arg))?,
                "--upload-rate" => {
                    options.upload_secs = value(&arg)?.parse().map_err(|_| bad(&arg))?;
                }
                _ => return Err(format!("unknown argument {arg}\n{USAGE}")),
            }
        }
        options.mode = mode.ok_or_else(|| USAGE.to_owned())?;
        Ok(options)
    }

    pub fn rounds(&self) -> u64 {
        self.rounds.unwrap_or_else(|| calibrate(self.seconds))
    }
}

/// What every run starts with: the command line, the rounds to run and the loopback sink.
/// `Err` is the code to exit with at once: `--calibrate` printed its rounds, or a usage or
/// sink error was printed.
pub fn begin() -> Result<(Options, u64, Sink), std::process::ExitCode> {
    let options = Options::parse().map_err(|message| {
        eprintln!("{message}");
        std::process::ExitCode::from(2)
    })?;
    let rounds = options.rounds();
    if options.mode == Mode::Calibrate {
        println!("{rounds}");
        return Err(std::process::ExitCode::SUCCESS);
    }
    let sink = Sink::start().map_err(|e| {
        eprintln!("cannot start the loopback sink: {e}");
        std::process::ExitCode::FAILURE
    })?;
    Ok((options, rounds, sink))
}

/// `getrusage` of `who`: (user + system CPU seconds, peak RSS in KiB).
pub fn rusage(who: libc::c_int) -> (f64, u64) {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    (
        secs(usage.ru_utime) + secs(usage.ru_stime),
        u64::try_from(usage.ru_maxrss).unwrap_or(0),
    )
}

/// One request the sink received.
pub struct Request {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 server on 127.0.0.1 that answers `200` with an empty body to every
/// request (keep-alive, `Content-Length` bodies) and keeps the requests. Its threads'
/// own CPU time is counted apart ([`Sink::cpu_seconds`]) so it can be left out of the
/// profiler's cost. The requests are written as received (head and body, as on the wire) to
/// an unlinked temporary file and read back by [`Sink::take`]: the process holds none of
/// the uploads while its memory is measured.
pub struct Sink {
    pub address: String,
    spool: Arc<Mutex<File>>,
    cpu_micros: Arc<AtomicU64>,
}

impl Sink {
    pub fn start() -> std::io::Result<Sink> {
        let path = std::env::temp_dir().join(format!("loopback-sink-{}", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        std::fs::remove_file(&path)?;
        let spool = Arc::new(Mutex::new(file));
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = format!("http://{}", listener.local_addr()?);
        let cpu_micros = Arc::new(AtomicU64::new(0));
        let (kept, cpu) = (spool.clone(), cpu_micros.clone());
        std::thread::Builder::new()
            .name("loopback-sink".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let (kept, cpu) = (kept.clone(), cpu.clone());
                    let _ = std::thread::Builder::new()
                        .name("loopback-conn".into())
                        .spawn(move || serve(stream, &kept, &cpu));
                }
            })?;
        Ok(Sink {
            address,
            spool,
            cpu_micros,
        })
    }

    /// CPU seconds spent so far by the connection threads (not counting the idle acceptor).
    pub fn cpu_seconds(&self) -> f64 {
        self.cpu_micros.load(Ordering::Relaxed) as f64 * 1e-6
    }

    /// The requests received so far.
    pub fn take(&self) -> Vec<Request> {
        let mut file = self.spool.lock().unwrap();
        let mut requests = Vec::new();
        if file.seek(SeekFrom::Start(0)).is_ok() {
            let mut reader = BufReader::new(&*file);
            while let Some(request) = read_request(&mut reader) {
                requests.push(request);
            }
        }
        let _ = file.set_len(0).and_then(|()| file.seek(SeekFrom::Start(0)));
        requests
    }
}

/// A request's path and headers (its body left empty) and its `Content-Length`, read up to
/// the empty line; `None` at the end of the stream.
fn read_head(reader: &mut impl BufRead) -> Option<(Request, usize)> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let body = Vec::new();
    Some((
        Request {
            path,
            headers,
            body,
        },
        length,
    ))
}

/// A whole request, body included.
fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let (mut request, length) = read_head(reader)?;
    request.body = vec![0; length];
    reader.read_exact(&mut request.body).ok()?;
    Some(request)
}

/// Serves one connection, spooling each request to `spool`; adds the thread's CPU time to
/// `cpu` after each request.
fn serve(stream: TcpStream, spool: &Mutex<File>, cpu: &AtomicU64) {
    let mut counted = 0.0;
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    while let Some((request, length)) = read_head(&mut reader) {
        let mut head = format!("POST {} HTTP/1.1\r\n", request.path);
        for (k, v) in &request.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut file = spool.lock().unwrap();
        let spooled = file.write_all(head.as_bytes()).is_ok()
            && std::io::copy(&mut (&mut reader).take(length as u64), &mut *file)
                .is_ok_and(|n| n == length as u64);
        drop(file);
        if !spooled
            || writer
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .is_err()
        {
            return;
        }
        let now = rusage(libc::RUSAGE_THREAD).0;
        cpu.fetch_add(((now - counted) * 1e6) as u64, Ordering::Relaxed);
        counted = now;
    }
}

/// Samples per function found in the received profiles.
#[derive(Default)]
pub struct Shares {
    pub profiles: usize,
    pub samples: u64,
    pub in_70: u64,
    pub in_30: u64,
}

impl Shares {
    /// Adds a sample of `count` whose stack has the functions `names`.
    pub fn add<'a>(&mut self, names: impl IntoIterator<Item = &'a str>, count: u64) {
        self.samples += count;
        let (mut a, mut b) = (false, false);
        for name in names {
            a |= name.ends_with("work_70");
            b |= name.ends_with("work_30");
        }
        if a {
            self.in_70 += count;
        } else if b {
            self.in_30 += count;
        }
    }

    pub fn share_70(&self) -> Option<f64> {
        let total = self.in_70 + self.in_30;
        (total > 0).then(|| 100.0 * self.in_70 as f64 / total as f64)
    }
}

/// Everything a run reports.
pub struct Outcome {
    pub profiler: &'static str,
    pub mode: Mode,
    pub hz: u32,
    pub workload: Workload,
    /// Process start to the end of `stop` (or of the workload, in baseline).
    pub total: Duration,
    /// Time to start the profiler.
    pub start: Option<Duration>,
    /// Time to stop the profiler.
    pub stop: Option<Duration>,
    /// Process CPU seconds spent starting the profiler.
    pub start_cpu_seconds: Option<f64>,
    /// The profiler's own counters, free form (JSON value).
    pub details: String,
    pub uploads: usize,
    pub shares: Option<Shares>,
    /// Measured right after stop, before decoding anything.
    pub cpu_seconds: f64,
    pub sink_cpu_seconds: f64,
    /// Time inside the profiler's signal handler, when the profiler tells it.
    pub handler_seconds: Option<f64>,
    /// CPU time of the profiler's own threads, when they can be told apart by name.
    pub profiler_threads_cpu_seconds: Option<f64>,
    pub max_rss_kib: u64,
}

/// The CPU time of this process's threads whose name starts with `prefix`, from
/// `/proc/self/task/*/schedstat` (nanoseconds on the CPU), in seconds.
pub fn threads_cpu_seconds(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut nanos = 0u64;
    for task in tasks.flatten() {
        let path = task.path();
        let named = std::fs::read_to_string(path.join("comm"))
            .is_ok_and(|name| name.trim_end().starts_with(prefix));
        if named {
            nanos += std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok())
                .unwrap_or(0);
        }
    }
    nanos as f64 * 1e-9
}

/// A JSON number, or `null` for NaN/None.
fn num(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.4}"),
        _ => "null".into(),
    }
}

impl Outcome {
    /// The one JSON line.
    pub fn json(&self) -> String {
        let mode = match self.mode {
            Mode::Baseline => "baseline",
            Mode::Profiled => "profiled",
            Mode::Calibrate => "calibrate",
        };
        let shares = self.shares.as_ref();
        let share = shares.and_then(Shares::share_70);
        let true_share = self.workload.true_share_70();
        let mut fields: Vec<(&str, String)> = vec![
            ("profiler", format!("\"{}\"", self.profiler)),
            ("mode", format!("\"{mode}\"")),
            ("hz", self.hz.to_string()),
            ("rounds", self.workload.rounds.to_string()),
            ("wall_s", num(Some(self.workload.wall.as_secs_f64()))),
            ("total_s", num(Some(self.total.as_secs_f64()))),
            ("cpu_s", num(Some(self.cpu_seconds - self.sink_cpu_seconds))),
            ("sink_cpu_s", num(Some(self.sink_cpu_seconds))),
            ("handler_s", num(self.handler_seconds)),
            (
                "profiler_threads_cpu_s",
                num(self.profiler_threads_cpu_seconds),
            ),
            ("max_rss_mib", num(Some(self.max_rss_kib as f64 / 1024.0))),
            ("start_s", num(self.start.map(|d| d.as_secs_f64()))),
            ("stop_s", num(self.stop.map(|d| d.as_secs_f64()))),
            ("start_cpu_s", num(self.start_cpu_seconds)),
            ("true_share_70", num(Some(true_share))),
        ];
        if self.mode == Mode::Profiled {
            fields.extend([
                ("uploads", self.uploads.to_string()),
                ("profiles", shares.map_or(0, |s| s.profiles).to_string()),
                ("samples", shares.map_or(0, |s| s.samples).to_string()),
                ("samples_70", shares.map_or(0, |s| s.in_70).to_string()),
                ("samples_30", shares.map_or(0, |s| s.in_30).to_string()),
                ("share_70", num(share)),
                (
                    "split_error_points",
                    num(share.map(|s| (s - true_share).abs())),
                ),
                ("details", self.details.clone()),
            ]);
        }
        let body: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", body.join(","))
    }
}

/// The value of `name=` in a `multipart/form-data` body's part, by the boundary in
/// `content_type`.
pub fn multipart_part<'a>(content_type: &str, body: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let boundary = content_type.split("boundary=").nth(1)?.trim_matches('"');
    let delimiter = format!("--{boundary}");
    let wanted = format!("name=\"{name}\"");
    let mut rest = body;
    while let Some(at) = find(rest, delimiter.as_bytes()) {
        rest = &rest[at + delimiter.len()..];
        let headers_end = find(rest, b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&rest[..headers_end]);
        let content = &rest[headers_end + 4..];
        let end = find(content, format!("\r\n{delimiter}").as_bytes())?;
        if headers.contains(&wanted) {
            return Some(&content[..end]);
        }
        rest = &content[end..];
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Resolves a pprof sample's function names: `functions` by id, `locations` as lists of
/// function ids by location id.
pub fn stack_names<'a>(
    location_ids: &[u64],
    locations: &'a HashMap<u64, Vec<u64>>,
    functions: &'a HashMap<u64, &'a str>,
) -> Vec<&'a str> {
    location_ids
        .iter()
        .filter_map(|id| locations.get(id))
        .flatten()
        .filter_map(|f| functions.get(f).copied())
        .collect()
}
