//! The many-profilers benchmark: N Pyroscope profilers (children of one `profiling` app)
//! in one process, all pushing to one loopback HTTP server, for a fixed time. Prints one
//! JSON line: peak RSS, the most sockets and threads the process had open at once, CPU
//! time, and how many of the profiles due were delivered. `benches/many_profilers.sh` runs
//! it for 1, 100 and 1,000 profilers (`docs/benchmarks.md`, "Many profilers", gives the numbers).
//!
//! ```sh
//! cargo run --release --example many_profilers -- --profilers 100 --seconds 30
//! ```
//!
//! The server runs in a child process (this program with `--serve`), so the sockets,
//! threads and memory counted are the profilers' only. Profiles due: every window that
//! ended while the profilers ran, plus the last, partial one cut at the stop, times the
//! types sent per window (`heap` and `allocs` are one profile).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use caddyprof::config::ProfileType;

#[global_allocator]
static ALLOC: caddyprof::allocator::Sampled<std::alloc::System> =
    caddyprof::allocator::Sampled::new(std::alloc::System);

const USAGE: &str = "usage: many_profilers [--profilers N (100)] [--seconds S (30)] \
[--upload-rate SECONDS (5)] [--types cpu,heap,goroutine] [--unshared]";

struct Options {
    profilers: usize,
    seconds: u64,
    upload_rate: u64,
    types: Vec<ProfileType>,
    /// Each profiler with a block_profile_rate of its own (unused by these types): no two
    /// share their collection, as profilers that differ.
    unshared: bool,
}

fn parse() -> Result<Options, String> {
    let mut options = Options {
        profilers: 100,
        seconds: 30,
        upload_rate: 5,
        types: vec![ProfileType::Cpu, ProfileType::Heap, ProfileType::Goroutine],
        unshared: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--unshared" {
            options.unshared = true;
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))?;
        let bad = || format!("{arg}: invalid value {value:?}\n{USAGE}");
        match arg.as_str() {
            "--profilers" => options.profilers = value.parse().map_err(|_| bad())?,
            "--seconds" => options.seconds = value.parse().map_err(|_| bad())?,
            "--upload-rate" => options.upload_rate = value.parse().map_err(|_| bad())?,
            "--types" => {
                options.types = value
                    .split(',')
                    .map(|t| t.parse::<ProfileType>().map_err(|_| bad()))
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err(format!("unknown argument {arg}\n{USAGE}")),
        }
    }
    if options.upload_rate == 0 || options.profilers == 0 {
        return Err(USAGE.to_owned());
    }
    Ok(options)
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--serve") {
        return serve();
    }
    let options = match parse() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mut server = Command::new(std::env::current_exe().expect("own path"))
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot start the loopback server");
    let mut answers = BufReader::new(server.stdout.take().expect("piped"));
    let mut address = String::new();
    answers.read_line(&mut address).expect("the server's port");

    let types: Vec<String> = options.types.iter().map(|t| format!("\"{t}\"")).collect();
    let profilers: Vec<String> = (0..options.profilers)
        .map(|i| {
            let own = if options.unshared {
                format!(r#","parameters":{{"block_profile_rate":{}}}"#, i + 1)
            } else {
                String::new()
            };
            format!(
                r#"{{"profiler":"pyroscope","server_address":"{}","application_name":"many-{i}","upload_rate":"{}s"{own}}}"#,
                address.trim(),
                options.upload_rate
            )
        })
        .collect();
    let json = format!(
        r#"{{"apps":{{"profiling":{{"profile_types":[{}],"profilers":[{}]}}}}}}"#,
        types.join(","),
        profilers.join(",")
    );
    let config = caddyprof::Config::from_json(&json).expect("a valid config");

    let before = Usage::now();
    let began = Instant::now();
    let started_at = SystemTime::now();
    let running = match caddyprof::runtime::start(&config) {
        Ok(running) => running,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            let _ = server.kill();
            let _ = server.wait();
            return ExitCode::FAILURE;
        }
    };
    let start_ms = began.elapsed().as_millis();
    let peaks = Peaks::watch();
    std::thread::sleep(Duration::from_secs(options.seconds));
    let stopped_at = SystemTime::now();
    let stopping = Instant::now();
    let reports = running.stop();
    let stop_ms = stopping.elapsed().as_millis();
    let (sockets, threads) = peaks.end();
    let after = Usage::now();

    drop(server.stdin.take());
    let mut counts = String::new();
    answers.read_line(&mut counts).expect("the server's counts");
    let _ = server.wait();
    let (requests, connections) = counts
        .trim()
        .split_once(' ')
        .and_then(|(r, c)| Some((r.parse::<u64>().ok()?, c.parse::<u64>().ok()?)))
        .unwrap_or_default();

    let per_window = sent_per_window(&options.types);
    let rate = options.upload_rate;
    let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    // Aligned windows ending after the start and at or before the stop, and the last one.
    let windows = secs(stopped_at) / rate - secs(started_at) / rate + 1;
    let due = options.profilers as u64 * windows * per_window;
    let sum =
        |f: &dyn Fn(&caddyprof::runtime::SinkReport) -> u64| -> u64 { reports.iter().map(f).sum() };
    let uploads = |f: fn(&caddyprof::runtime::upload::UploadStats) -> u64| {
        sum(&|r| r.uploads.as_ref().map_or(0, f))
    };
    let delivered = uploads(|u| u.delivered);
    let own_mib = reports
        .first()
        .and_then(|r| r.own_usage)
        .map_or(0.0, |u| u.in_use_bytes as f64 / f64::from(1 << 20));
    println!(
        "{{\"profilers\":{},\"unshared\":{},\"seconds\":{},\"upload_rate_s\":{rate},\"types\":\"{}\",\
         \"start_ms\":{start_ms},\"stop_ms\":{stop_ms},\"reports\":{},\
         \"rss_before_mib\":{:.1},\"peak_rss_mib\":{:.1},\"peak_rss_per_profiler_kib\":{:.1},\
         \"own_in_use_mib\":{own_mib:.1},\"max_sockets\":{sockets},\"max_threads\":{threads},\
         \"cpu_s\":{:.2},\"due\":{due},\"handed_over\":{},\"delivered\":{delivered},\
         \"delivered_share\":{:.3},\"windows_lost\":{},\"dropped\":{},\"failed\":{},\
         \"abandoned\":{},\"server_requests\":{requests},\"server_connections\":{connections}}}",
        options.profilers,
        options.unshared,
        options.seconds,
        options
            .types
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        reports.len(),
        mib(before.rss_kib),
        mib(after.peak_rss_kib),
        after.peak_rss_kib.saturating_sub(before.rss_kib) as f64 / options.profilers as f64,
        after.cpu_s - before.cpu_s,
        sum(&|r| r.profiles),
        delivered as f64 / due as f64,
        sum(&|r| r.windows_lost),
        uploads(|u| u.dropped),
        uploads(|u| u.failed + u.rejected),
        uploads(|u| u.abandoned),
    );
    ExitCode::SUCCESS
}

/// Profiles sent to Pyroscope per window for `types`.
fn sent_per_window(types: &[ProfileType]) -> u64 {
    let memory = types
        .iter()
        .any(|t| matches!(t, ProfileType::Heap | ProfileType::Allocs));
    let others = types
        .iter()
        .filter(|t| {
            !matches!(
                t,
                ProfileType::Heap | ProfileType::Allocs | ProfileType::ThreadCreate
            )
        })
        .count();
    u64::from(memory) + others as u64
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The process's memory and CPU time.
struct Usage {
    rss_kib: u64,
    peak_rss_kib: u64,
    cpu_s: f64,
}

impl Usage {
    fn now() -> Usage {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        // SAFETY: getrusage only writes the struct it is given.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut usage);
            usage
        };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
        Usage {
            rss_kib: field("VmRSS:"),
            peak_rss_kib: field("VmHWM:"),
            cpu_s: secs(usage.ru_utime) + secs(usage.ru_stime),
        }
    }
}

/// The most sockets and threads seen open at once, sampled every 50 ms.
struct Peaks {
    done: Arc<AtomicBool>,
    watcher: std::thread::JoinHandle<(usize, usize)>,
}

impl Peaks {
    fn watch() -> Peaks {
        let done = Arc::new(AtomicBool::new(false));
        let until = Arc::clone(&done);
        let watcher = std::thread::spawn(move || {
            let (mut sockets, mut threads) = (0, 0);
            while !until.load(Ordering::Relaxed) {
                sockets = sockets.max(open_sockets());
                threads = threads.max(count("/proc/self/task"));
                std::thread::sleep(Duration::from_millis(50));
            }
            (sockets, threads)
        });
        Peaks { done, watcher }
    }

    fn end(self) -> (usize, usize) {
        self.done.store(true, Ordering::Relaxed);
        self.watcher.join().expect("the watcher")
    }
}

/// The entries of /proc/self/fd that are sockets.
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map(Iterator::count).unwrap_or(0)
}

/// The loopback server: prints `http://127.0.0.1:PORT`, answers every request `200` (HTTP/1.1,
/// keep-alive, `Content-Length` bodies), and when its standard input closes prints the
/// requests and the connections it accepted, and exits.
fn serve() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        println!("http://{}", listener.local_addr().expect("an address"));
        std::io::stdout().flush().expect("stdout");
        let requests = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&requests);
        let accepted = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(answer(stream, Arc::clone(&counted)));
            }
        });
        let _ = tokio::task::spawn_blocking(move || {
            let _ = std::io::stdin().lines().count();
        })
        .await;
        println!(
            "{} {}",
            requests.load(Ordering::Relaxed),
            connections.load(Ordering::Relaxed)
        );
    });
    ExitCode::SUCCESS
}

/// Answers the requests of one connection until it closes.
async fn answer(stream: tokio::net::TcpStream, requests: Arc<AtomicU64>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let (reader, mut writer) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(reader);
    let mut line = String::new();
    loop {
        let mut length = 0usize;
        line.clear();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        requests.fetch_add(1, Ordering::Relaxed);
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    }
}
