//! A host program's own use of signals and timers, and what caddyprof logs about it: for the
//! tests of how caddyprof lives beside a program that handles SIGPROF or SIGURG itself.

use std::ffi::c_int;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

static TICKS: AtomicU64 = AtomicU64::new(0);

/// The program's handler: counts its signals.
extern "C" fn count_tick(_signal: c_int) {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// The signals [`count_tick`] has counted so far.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

fn set_disposition(signal: c_int, handler: usize) {
    // SAFETY: sigaction with a zeroed struct and a valid disposition.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(signal, &action, std::ptr::null_mut()), 0);
    }
}

/// Installs the program's own handler for `signal`, which counts ([`ticks`]).
pub fn install_counting_handler(signal: c_int) {
    set_disposition(signal, count_tick as extern "C" fn(c_int) as usize);
}

/// Makes `signal` ignored.
pub fn ignore(signal: c_int) {
    set_disposition(signal, libc::SIG_IGN);
}

/// The disposition of `signal`: a handler's address, `SIG_DFL` or `SIG_IGN`.
pub fn disposition(signal: c_int) -> usize {
    // SAFETY: sigaction only reads into a zeroed struct.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(signal, std::ptr::null(), &mut action), 0);
        action.sa_sigaction
    }
}

/// Whether the program's counting handler is the one installed for `signal`.
pub fn counting_handler_installed(signal: c_int) -> bool {
    disposition(signal) == count_tick as extern "C" fn(c_int) as usize
}

/// Arms `ITIMER_PROF` every `interval` (zero: disarms it).
pub fn set_prof_timer(interval: Duration) {
    let interval = libc::timeval {
        tv_sec: interval.as_secs() as libc::time_t,
        tv_usec: interval.subsec_micros() as libc::suseconds_t,
    };
    let timer = libc::itimerval {
        it_interval: interval,
        it_value: interval,
    };
    // SAFETY: setitimer with a valid itimerval.
    assert_eq!(
        unsafe { libc::setitimer(libc::ITIMER_PROF, &timer, std::ptr::null_mut()) },
        0
    );
}

/// The interval of `ITIMER_PROF` (zero: not repeating).
pub fn prof_timer_interval() -> Duration {
    // SAFETY: getitimer writes into a zeroed itimerval.
    let mut timer: libc::itimerval = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getitimer(libc::ITIMER_PROF, &mut timer) }, 0);
    Duration::from_secs(timer.it_interval.tv_sec as u64)
        + Duration::from_micros(timer.it_interval.tv_usec as u64)
}

/// Everything this test binary logs through `tracing` (a process-wide subscriber).
#[derive(Clone, Default)]
pub struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLog {
    /// Starts capturing (once per test binary).
    pub fn get() -> &'static CapturedLog {
        static LOG: OnceLock<CapturedLog> = OnceLock::new();
        LOG.get_or_init(|| {
            let log = CapturedLog::default();
            let writer = log.clone();
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .with_writer(move || writer.clone())
                .init();
            log
        })
    }

    /// The warnings logged so far that contain `text`.
    pub fn warnings_with(&self, text: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|line| line.contains(" WARN ") && line.contains(text))
            .map(str::to_owned)
            .collect()
    }
}

/// The files in `dir` whose names start with `prefix`, sorted.
pub fn files_starting(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
