//! The upload queue shared by every sink: one [`Uploader`] per sink owns a bounded queue of
//! ready-to-send HTTP requests and one Tokio task that posts them in order.
//!
//! - **One connection pool**: the uploaders of a runtime share [`Connections`]: one HTTP
//!   client, and at most [`UPLOADS_PER_SERVER`] uploads at a time to each server (taken in
//!   turn, first come first served), so a thousand sinks pushing to one server use a few
//!   sockets, not a thousand. A server that does not answer holds its own turns only: the
//!   uploads to other servers go on.
//! - **Bounded queue**: [`Uploader::push`] never blocks; when the queue is full the *oldest*
//!   request is dropped, counted in [`UploadStats::dropped`], and a warning is logged at most
//!   once per [`UploaderOptions::warn_interval`].
//! - **Retries**: transport errors, timeouts, `429` and `5xx` are retried with exponential
//!   backoff and jitter ([`RetryPolicy`]); `Retry-After` (in seconds) is honoured up to the
//!   maximum backoff. Every attempt builds a fresh request from the shared [`Bytes`] body.
//!   Other statuses (`3xx`, since redirects are never followed, and `4xx`) are final.
//! - **Failures are visible at once, and only once a minute**: the first failed attempt of an
//!   outage is logged at warn right away (the server, the status or kind of error, what
//!   happens next); while the failures go on, at most one line per
//!   [`UploaderOptions::warn_interval`] sums them up; the first delivery after them is logged
//!   at info with how many attempts failed and how many profiles were lost. An attempt that
//!   has had no answer for [`SLOW_ANSWER`] is said at once too. Headers are never logged
//!   (they may carry credentials), and URLs are logged without their userinfo and query.
//! - **Answers are read, never kept**: the status decides; of the body, at most 4 KiB are
//!   read, within 1 s, whatever the server sends (100 MB, a chunked body without end, one
//!   byte a second), and the connection is dropped with the rest. Of an error's body, 200
//!   characters are logged, with the request's credentials (its `Authorization`, its URL's
//!   userinfo, in any of the forms they were sent in) replaced by `[redacted]`.
//! - **Timeout**: [`UploaderOptions::timeout`] bounds each attempt (`None` = no timeout).
//! - **Stop**: [`Uploader::stop`] refuses new requests, makes one best-effort attempt for each
//!   queued request (a request waiting for its next retry is tried at once), and returns
//!   within the deadline whatever the server does: what is still running then is cancelled.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use super::Profile;
use crate::redact::Credentials;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;

/// How failed attempts are retried: exponential backoff with jitter, bounded in attempts and
/// in time.
///
/// ```
/// use std::time::Duration;
/// use caddyprof::runtime::upload::RetryPolicy;
///
/// let policy = RetryPolicy { jitter: 0.0, ..RetryPolicy::default() };
/// assert_eq!(policy.backoff(1), Duration::from_secs(1));
/// assert_eq!(policy.backoff(3), Duration::from_secs(4));
/// assert_eq!(policy.backoff(30), Duration::from_secs(30)); // capped
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait before the first retry.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// The factor applied to the wait after each retry.
    pub multiplier: u32,
    /// The relative spread of each wait: a wait `w` becomes uniform in `w × [1 − jitter,
    /// 1 + jitter]` (then capped at `max_backoff`). `0.0` disables jitter.
    pub jitter: f64,
    /// No retry starts later than this after the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// 12 attempts, 1 s doubling up to 30 s, ±20 % jitter, within 150 s: enough to carry a
    /// profile over a 60 s outage (attempts at about 0, 1, 3, 7, 15, 31, 61, 91, 121 s).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 12,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            multiplier: 2,
            jitter: 0.2,
            max_elapsed: Duration::from_secs(150),
        }
    }
}

impl RetryPolicy {
    /// A policy with short waits for tests: 8 attempts, 20 ms doubling up to 200 ms, no jitter,
    /// within 10 s.
    pub fn fast() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            multiplier: 2,
            jitter: 0.0,
            max_elapsed: Duration::from_secs(10),
        }
    }

    /// The wait before retry number `retry` (1 = the first retry), without jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = self
            .multiplier
            .max(1)
            .checked_pow(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// The wait before retry number `retry`, with jitter, at least `retry_after` (a server's
    /// `Retry-After`) but never more than `max_backoff`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let base = self.backoff(retry);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let jittered = if jitter > 0.0 {
            base.mul_f64(1.0 - jitter + 2.0 * jitter * fastrand::f64())
        } else {
            base
        };
        jittered
            .max(retry_after.unwrap_or_default())
            .min(self.max_backoff)
    }
}

/// How an [`Uploader`] behaves.
#[derive(Clone, Debug)]
pub struct UploaderOptions {
    /// The sink's name in log lines (`pyroscope`, `profefe`).
    pub sink: String,
    /// Requests waiting to be sent, beyond the one in flight (at least 1).
    pub queue_capacity: usize,
    /// The limit of each attempt, from connecting to the end of the response; `None` for none.
    pub timeout: Option<Duration>,
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
    /// At most one warning per this interval (the first failure of an outage is always said).
    pub warn_interval: Duration,
}

/// The default [`UploaderOptions::queue_capacity`]: a 60 s outage of a Pyroscope sink with every
/// type at the default 15 s rate queues about 24 profiles.
pub const DEFAULT_QUEUE_CAPACITY: usize = 64;

/// The default deadline of a stop (`stop()`, SIGINT, SIGTERM).
pub const STOP_DEADLINE: Duration = Duration::from_secs(2);

/// How long an attempt may go without an answer before the sink says so (once per
/// [`UploaderOptions::warn_interval`], and only when its timeout is longer).
pub const SLOW_ANSWER: Duration = Duration::from_secs(5);

impl UploaderOptions {
    /// The defaults for a sink named `sink`: [`DEFAULT_QUEUE_CAPACITY`], a 30 s timeout (the
    /// Go agents' client timeout), [`RetryPolicy::default`], one drop warning per minute.
    pub fn new(sink: impl Into<String>) -> Self {
        UploaderOptions {
            sink: sink.into(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            timeout: Some(Duration::from_secs(30)),
            retry: RetryPolicy::default(),
            warn_interval: Duration::from_secs(60),
        }
    }
}

/// One HTTP `POST`, ready to be sent as many times as needed. Its `Debug` shows the URL
/// without userinfo and the headers' names only.
#[derive(Clone)]
pub struct UploadRequest {
    /// The full URL, query included.
    pub url: reqwest::Url,
    /// The request headers (mark credentials sensitive; they are never logged).
    pub headers: HeaderMap,
    /// The body, shared by every attempt.
    pub body: Bytes,
    /// What is sent, for log lines (such as `cpu profile`).
    pub what: String,
}

impl std::fmt::Debug for UploadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadRequest")
            .field("url", &crate::redact::url(self.url.as_str()))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body", &format_args!("{} bytes", self.body.len()))
            .field("what", &self.what)
            .finish()
    }
}

/// Counters of an [`Uploader`], since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UploadStats {
    /// Requests accepted by [`Uploader::push`].
    pub queued: u64,
    /// Requests the server accepted (`2xx`).
    pub delivered: u64,
    /// Requests the server refused for good (`3xx`, `4xx` other than `429`).
    pub rejected: u64,
    /// Requests given up after their retries (or their last attempt at stop).
    pub failed: u64,
    /// Requests dropped from a full queue (the oldest first).
    pub dropped: u64,
    /// Retries made (attempts beyond the first).
    pub retries: u64,
    /// Requests still queued or in flight when a stop's deadline passed.
    pub abandoned: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    delivered: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    retries: AtomicU64,
    abandoned: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> UploadStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        UploadStats {
            queued: get(&self.queued),
            delivered: get(&self.delivered),
            rejected: get(&self.rejected),
            failed: get(&self.failed),
            dropped: get(&self.dropped),
            retries: get(&self.retries),
            abandoned: get(&self.abandoned),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// Requests lost so far: given up, refused or dropped from a full queue.
    fn lost(&self) -> u64 {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        get(&self.failed) + get(&self.rejected) + get(&self.dropped)
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<UploadRequest>,
    closed: bool,
    /// When the sink last logged a warning (see [`UploaderOptions::warn_interval`]).
    last_warning: Option<Instant>,
    dropped_since_warning: u64,
    /// The failures since the last delivery, while there are some.
    outage: Option<Outage>,
}

impl State {
    /// Whether a warning may be logged now; if so, it counts as logged.
    fn warning_due(&mut self, interval: Duration) -> bool {
        let due = self.last_warning.is_none_or(|at| at.elapsed() >= interval);
        if due {
            self.last_warning = Some(Instant::now());
        }
        due
    }
}

/// A run of failed attempts, from the first one to the next delivery.
struct Outage {
    began: Instant,
    failed_attempts: u64,
    /// [`Counters::lost`] when it began.
    lost_before: u64,
}

/// What follows a failed attempt, for its log line.
enum AfterFailure {
    /// Another attempt after this wait.
    Retry(Duration),
    /// None: the request was given up after this many attempts.
    GaveUp(u32),
    /// None: the server refused the request for good.
    Refused,
}

impl std::fmt::Display for AfterFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AfterFailure::Retry(wait) => write!(f, "retrying in {:.1}s", wait.as_secs_f64()),
            AfterFailure::GaveUp(attempts) => {
                write!(f, "profile given up after {attempts} attempts")
            }
            AfterFailure::Refused => f.write_str("profile not retried"),
        }
    }
}

/// Uploads in flight at once to one server (its scheme, host and port), over all the sinks
/// of a runtime; as many connections are kept open to it, at most.
pub const UPLOADS_PER_SERVER: usize = 4;

/// The HTTP connections the [`Uploader`]s of a runtime share: one client, so one
/// connection pool, and a turn for each upload, at most [`UPLOADS_PER_SERVER`] at a time
/// to each server. Cloning it is cheap and shares them.
#[derive(Clone, Debug)]
pub struct Connections {
    client: reqwest::Client,
    /// Per server (`scheme://host:port`): its turns. One entry per server configured.
    servers: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl Connections {
    /// A client that follows no redirects and names itself `caddyprof/VERSION`. Fails only
    /// if the TLS backend cannot be set up.
    pub fn new() -> Result<Connections, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("caddyprof/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(UPLOADS_PER_SERVER)
            .build()?;
        Ok(Connections {
            client,
            servers: Arc::default(),
        })
    }

    /// The turns of `url`'s server.
    fn turns(&self, url: &reqwest::Url) -> Arc<Semaphore> {
        let server = url.origin().ascii_serialization();
        let mut servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            servers
                .entry(server)
                .or_insert_with(|| Arc::new(Semaphore::new(UPLOADS_PER_SERVER))),
        )
    }
}

struct Shared {
    options: UploaderOptions,
    connections: Connections,
    state: Mutex<State>,
    wake: Notify,
    closing: watch::Sender<bool>,
    in_flight: AtomicBool,
    counters: Counters,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a failed attempt (and the request, if it is lost); logs it at once if it
    /// begins an outage, else at most once per warn interval.
    fn attempt_failed(&self, request: &UploadRequest, reason: &str, next: AfterFailure) {
        let mut state = self.state();
        let lost_before = self.counters.lost();
        match next {
            AfterFailure::Retry(_) => {}
            AfterFailure::GaveUp(_) => bump(&self.counters.failed),
            AfterFailure::Refused => bump(&self.counters.rejected),
        }
        let lost = self.counters.lost();
        let began = state.outage.is_none();
        let outage = state.outage.get_or_insert_with(|| Outage {
            began: Instant::now(),
            failed_attempts: 0,
            lost_before,
        });
        outage.failed_attempts += 1;
        let (failed_attempts, lost, lasting) = (
            outage.failed_attempts,
            lost - outage.lost_before,
            outage.began.elapsed(),
        );
        let interval = self.options.warn_interval;
        if began {
            state.warning_due(Duration::ZERO);
            tracing::warn!(
                sink = %self.options.sink,
                url = %loggable_url(&request.url),
                "upload of a {} failed: {reason}; {next}",
                request.what,
            );
        } else if state.warning_due(interval) {
            tracing::warn!(
                sink = %self.options.sink,
                url = %loggable_url(&request.url),
                failed_attempts,
                lost,
                "uploads still failing after {:.0}s: {failed_attempts} failed attempts, \
                 {lost} profiles lost so far; last: {reason}; {next}",
                lasting.as_secs_f64(),
            );
        }
    }

    /// Ends an outage, if there was one, with a line at info.
    fn delivered(&self, request: &UploadRequest) {
        let mut state = self.state();
        if let Some(outage) = state.outage.take() {
            let dropped = self.counters.lost() - outage.lost_before;
            state.dropped_since_warning = 0;
            tracing::info!(
                sink = %self.options.sink,
                url = %loggable_url(&request.url),
                "delivered again after {} failed attempts, {dropped} profiles dropped",
                outage.failed_attempts,
            );
        }
    }

    /// Says that an attempt has had no answer for [`SLOW_ANSWER`] (unless an outage is
    /// being reported already, or a warning was logged within the interval).
    fn no_answer_yet(&self, request: &UploadRequest) {
        let mut state = self.state();
        if state.outage.is_none() && state.warning_due(self.options.warn_interval) {
            let limit = match self.options.timeout {
                Some(timeout) => format!("timeout {:.1}s", timeout.as_secs_f64()),
                None => "no timeout".to_owned(),
            };
            tracing::warn!(
                sink = %self.options.sink,
                url = %loggable_url(&request.url),
                "no answer from the server after {}s ({limit}); still waiting",
                SLOW_ANSWER.as_secs(),
            );
        }
    }
}

/// A sink's upload queue and the task that empties it. See the [module docs](self).
pub struct Uploader {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Uploader {
    /// Starts the upload task on the current Tokio runtime (it panics outside one, like
    /// `tokio::spawn`), sending over `connections`.
    pub fn start(options: UploaderOptions, connections: &Connections) -> Uploader {
        let (closing, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            options,
            connections: connections.clone(),
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            closing,
            in_flight: AtomicBool::new(false),
            counters: Counters::default(),
        });
        let worker = tokio::spawn(run(Arc::clone(&shared)));
        Uploader {
            shared,
            worker: Mutex::new(Some(worker)),
        }
    }

    /// Queues a request without blocking; when the queue is full the oldest request is
    /// dropped. Returns `false` (and drops `request`) once a stop has begun.
    pub fn push(&self, request: UploadRequest) -> bool {
        let options = &self.shared.options;
        let mut state = self.shared.state();
        if state.closed {
            return false;
        }
        if state.queue.len() >= options.queue_capacity.max(1) {
            state.queue.pop_front();
            bump(&self.shared.counters.dropped);
            state.dropped_since_warning += 1;
            // During an outage the outage's own lines count what is dropped.
            if state.outage.is_none() && state.warning_due(options.warn_interval) {
                tracing::warn!(
                    sink = %options.sink,
                    capacity = options.queue_capacity,
                    dropped = state.dropped_since_warning,
                    dropped_total = self.shared.counters.dropped.load(Ordering::Relaxed),
                    "upload queue full: dropped the oldest profiles",
                );
                state.dropped_since_warning = 0;
            }
        }
        state.queue.push_back(request);
        bump(&self.shared.counters.queued);
        drop(state);
        self.shared.wake.notify_one();
        true
    }

    /// The counters so far.
    pub fn stats(&self) -> UploadStats {
        self.shared.counters.snapshot()
    }

    /// Requests waiting in the queue (not counting the one in flight).
    pub fn queue_len(&self) -> usize {
        self.shared.state().queue.len()
    }

    /// Stops: refuses new requests, tries each queued request once more (a request waiting
    /// for a retry is tried at once), and returns within `deadline`, cancelling whatever is
    /// still running then (counted in [`UploadStats::abandoned`]). Later calls return at once.
    pub async fn stop(&self, deadline: Duration) -> UploadStats {
        let end = tokio::time::Instant::now() + deadline;
        self.shared.state().closed = true;
        self.shared.closing.send_replace(true);
        self.shared.wake.notify_one();
        let worker = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut worker) = worker
            && tokio::time::timeout_at(end, &mut worker).await.is_err()
        {
            worker.abort();
            let _ = worker.await;
            let in_flight = u64::from(self.shared.in_flight.swap(false, Ordering::Relaxed));
            let left = self.shared.state().queue.drain(..).count() as u64;
            if in_flight + left > 0 {
                self.shared
                    .counters
                    .abandoned
                    .fetch_add(in_flight + left, Ordering::Relaxed);
                tracing::warn!(
                    sink = %self.shared.options.sink,
                    abandoned = in_flight + left,
                    "stop deadline reached: profiles not uploaded",
                );
            }
        }
        self.stats()
    }
}

impl Drop for Uploader {
    /// Cancels the upload task without a flush (use [`Uploader::stop`] for one).
    fn drop(&mut self) {
        if let Some(worker) = self
            .worker
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            worker.abort();
        }
    }
}

async fn run(shared: Arc<Shared>) {
    loop {
        let next = {
            let mut state = shared.state();
            match state.queue.pop_front() {
                Some(request) => {
                    shared.in_flight.store(true, Ordering::Relaxed);
                    Some(request)
                }
                None if state.closed => return,
                None => None,
            }
        };
        match next {
            Some(request) => {
                deliver(&shared, &request).await;
                shared.in_flight.store(false, Ordering::Relaxed);
            }
            None => shared.wake.notified().await,
        }
    }
}

/// What one attempt gave.
enum Outcome {
    Delivered,
    Final(String),
    Retry(String, Option<Duration>),
}

async fn deliver(shared: &Shared, request: &UploadRequest) {
    let options = &shared.options;
    let policy = &options.retry;
    let started = Instant::now();
    let mut closing = shared.closing.subscribe();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let last_chance = *closing.borrow_and_update();
        let wait = match attempt_watched(shared, request).await {
            Outcome::Delivered => {
                bump(&shared.counters.delivered);
                shared.delivered(request);
                tracing::debug!(sink = %options.sink, what = %request.what, attempt, "uploaded");
                return;
            }
            Outcome::Final(reason) => {
                shared.attempt_failed(request, &reason, AfterFailure::Refused);
                return;
            }
            Outcome::Retry(reason, retry_after) => {
                let delay = policy.delay(attempt, retry_after);
                let out_of_time = started.elapsed() + delay > policy.max_elapsed;
                if last_chance || attempt >= policy.max_attempts.max(1) || out_of_time {
                    shared.attempt_failed(request, &reason, AfterFailure::GaveUp(attempt));
                    return;
                }
                shared.attempt_failed(request, &reason, AfterFailure::Retry(delay));
                tracing::debug!(
                    sink = %options.sink,
                    what = %request.what,
                    attempt,
                    ?delay,
                    "upload failed, will retry: {reason}",
                );
                delay
            }
        };
        bump(&shared.counters.retries);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = closing.wait_for(|&c| c) => {}
        }
    }
}

/// One attempt, in its server's turn (see [`Connections`]), saying so if it goes
/// [`SLOW_ANSWER`] without an answer and its timeout is longer.
async fn attempt_watched(shared: &Shared, request: &UploadRequest) -> Outcome {
    let turns = shared.connections.turns(&request.url);
    // (Never closed, so never an error.)
    let _turn = turns.acquire().await.ok();
    let attempt = attempt_once(shared, request);
    if shared.options.timeout.is_some_and(|t| t <= SLOW_ANSWER) {
        return attempt.await;
    }
    tokio::pin!(attempt);
    tokio::select! {
        outcome = &mut attempt => outcome,
        () = tokio::time::sleep(SLOW_ANSWER) => {
            shared.no_answer_yet(request);
            attempt.await
        }
    }
}

async fn attempt_once(shared: &Shared, request: &UploadRequest) -> Outcome {
    let mut builder = shared
        .connections
        .client
        .post(request.url.clone())
        .headers(request.headers.clone())
        .body(request.body.clone());
    if let Some(timeout) = shared.options.timeout {
        builder = builder.timeout(timeout);
    }
    let response = match builder.send().await {
        Ok(response) => response,
        Err(error) => return Outcome::Retry(describe_error(error), None),
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    // The status decides; the body is only read for an excerpt (reading to its end lets a
    // small one's connection be reused, and what is left of a big one is never read).
    let body = read_excerpt(response).await;
    if status.is_success() {
        return Outcome::Delivered;
    }
    let credentials = Credentials::of_request(&request.url, &request.headers);
    let excerpt = excerpt(&credentials.scrub(&String::from_utf8_lossy(&body)));
    let reason = format!("status {status}, body {excerpt:?}");
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Outcome::Retry(reason, retry_after)
    } else if status.is_redirection() {
        Outcome::Final(format!("{reason} (redirects are not followed)"))
    } else {
        Outcome::Final(reason)
    }
}

/// The most of a response body read, whatever its length: enough for an error message.
const EXCERPT_BYTES: usize = 4 << 10;

/// The longest time spent reading a response body (one that trickles, or never ends).
const EXCERPT_TIME: Duration = Duration::from_secs(1);

/// At most [`EXCERPT_BYTES`] of the body, read within [`EXCERPT_TIME`]. The rest is never
/// read: dropping the response closes its connection unless the body has ended.
async fn read_excerpt(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    let read = async {
        while body.len() < EXCERPT_BYTES {
            let Ok(Some(chunk)) = response.chunk().await else {
                break;
            };
            body.extend_from_slice(&chunk[..chunk.len().min(EXCERPT_BYTES - body.len())]);
        }
    };
    let _ = tokio::time::timeout(EXCERPT_TIME, read).await;
    body
}

/// At most 200 characters of a response body's text, control characters replaced.
fn excerpt(text: &str) -> String {
    text.chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

fn describe_error(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "transport error"
    };
    let error = error.without_url();
    let mut text = format!("{kind}: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The URL without credentials or query, for logs.
fn loggable_url(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.to_string()
}

/// Why a profile is not sent to a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotSent {
    /// It has no samples, and the server refuses empty profiles (profefe).
    Empty,
    /// The server takes no profiles of its type (`threadcreate` to Pyroscope).
    Unsupported,
    /// It cannot be sent as it is (a malformed profile: a bug worth reporting).
    Invalid(String),
}

/// What [`HttpSink::submit`] did with a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Queued for upload.
    Queued,
    /// Not sent, and why.
    Skipped(NotSent),
    /// Not sent: the sink is stopping.
    Closed,
}

/// What makes an upload request of a profile, for one kind of server.
pub trait RequestTarget: Sized {
    /// The resolved settings the target is made from.
    type Settings;
    /// The sink's name in logs (`pyroscope`).
    const NAME: &'static str;
    /// The target of `settings`; the error names the bad field (never a secret's value).
    fn new(settings: &Self::Settings) -> Result<Self, String>;
    /// The request for `profile`, or why it is not sent.
    fn request(&self, profile: &Profile) -> Result<UploadRequest, NotSent>;
}

/// A running HTTP sink: a [`RequestTarget`] and its [`Uploader`].
pub struct HttpSink<T> {
    target: T,
    uploader: Uploader,
}

impl<T: RequestTarget> HttpSink<T> {
    /// Starts the sink of `settings` on the current Tokio runtime, with `options` for its
    /// queue, sending over `connections`.
    pub fn start(
        settings: &T::Settings,
        options: UploaderOptions,
        connections: &Connections,
    ) -> Result<Self, String> {
        let target = T::new(settings)?;
        let uploader = Uploader::start(options, connections);
        Ok(HttpSink { target, uploader })
    }

    /// The request target.
    pub fn target(&self) -> &T {
        &self.target
    }

    /// Queues `profile` for upload without blocking, unless the target does not send it or
    /// the sink is stopping.
    pub fn submit(&self, profile: &Profile) -> Submitted {
        match self.target.request(profile) {
            Ok(request) => {
                if self.uploader.push(request) {
                    Submitted::Queued
                } else {
                    Submitted::Closed
                }
            }
            Err(reason) => {
                tracing::debug!(
                    "{}: {} profile not uploaded: {reason:?}",
                    T::NAME,
                    profile.profile_type
                );
                Submitted::Skipped(reason)
            }
        }
    }

    /// The upload counters.
    pub fn stats(&self) -> UploadStats {
        self.uploader.stats()
    }

    /// Stops with a best-effort flush, within `deadline` (see [`Uploader::stop`]).
    pub async fn stop(&self, deadline: Duration) -> UploadStats {
        self.uploader.stop(deadline).await
    }
}

/// Waits for SIGINT or SIGTERM (Ctrl-C elsewhere than Unix): the host then stops every sink
/// with [`STOP_DEADLINE`].
pub async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// Whether a pprof `Profile` message (gzip-compressed or not) has at least one sample.
/// Servers such as profefe refuse profiles without samples. The error says why the bytes
/// are not a profile.
///
/// ```
/// use caddyprof::runtime::upload::pprof_has_samples;
/// // field 2 (sample), length 2: an empty-valued sample.
/// assert_eq!(pprof_has_samples(&[0x12, 0x02, 0x10, 0x01]), Ok(true));
/// assert_eq!(pprof_has_samples(&[]), Ok(false));
/// assert!(pprof_has_samples(&[0x12, 0x05]).is_err());
/// ```
pub fn pprof_has_samples(data: &[u8]) -> Result<bool, String> {
    const LIMIT: u64 = 64 << 20;
    let inflated;
    let message = if data.starts_with(&[0x1f, 0x8b]) {
        let mut buffer = Vec::new();
        flate2::read::GzDecoder::new(data)
            .take(LIMIT)
            .read_to_end(&mut buffer)
            .map_err(|e| format!("bad gzip: {e}"))?;
        inflated = buffer;
        &inflated[..]
    } else {
        data
    };
    let mut rest = message;
    let mut found = false;
    while !rest.is_empty() {
        let key = read_varint(&mut rest)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                read_varint(&mut rest)?;
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                rest = rest.get(n..).ok_or("truncated fixed field")?;
            }
            2 => {
                let len = usize::try_from(read_varint(&mut rest)?).map_err(|e| e.to_string())?;
                rest = rest.get(len..).ok_or("truncated length-delimited field")?;
                found |= field == 2;
            }
            _ => return Err(format!("unsupported wire type {wire}")),
        }
        if field == 0 {
            return Err("field number 0".into());
        }
    }
    Ok(found)
}

fn read_varint(rest: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, tail) = rest.split_first().ok_or("truncated varint")?;
        *rest = tail;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

/// Nanoseconds since the Unix epoch (0 before it), as `from`/`until` are sent.
pub fn unix_nanos(time: SystemTime) -> u128 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Consecutive upload windows of a fixed length, aligned to multiples of that length since the
/// Unix epoch, like pyroscope-go's (the first starts at the current time rounded down). Each
/// window's end is computed, not measured, so windows never drift (unlike the Go agent's CPU
/// windows, which slip to twice the rate).
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use caddyprof::runtime::upload::Windows;
///
/// let rate = Duration::from_secs(15);
/// let mut windows = Windows::new(UNIX_EPOCH + Duration::from_secs(1_000_007), rate);
/// let at = |s| UNIX_EPOCH + Duration::from_secs(s);
/// assert_eq!(windows.next_window(), (at(1_000_005), at(1_000_020)));
/// assert_eq!(windows.next_window(), (at(1_000_020), at(1_000_035)));
/// ```
#[derive(Clone, Debug)]
pub struct Windows {
    rate: Duration,
    next_start: SystemTime,
}

impl Windows {
    /// Windows of length `rate` (at least 1 ms) from the one containing `now`.
    pub fn new(now: SystemTime, rate: Duration) -> Self {
        let rate = rate.max(Duration::from_millis(1));
        let since = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let rem = since.as_nanos() % rate.as_nanos();
        let next_start = now - Duration::from_nanos(rem as u64);
        Windows { rate, next_start }
    }

    /// The window length.
    pub fn rate(&self) -> Duration {
        self.rate
    }

    /// The next window, `(start, end)`; the first may have started before now.
    pub fn next_window(&mut self) -> (SystemTime, SystemTime) {
        let start = self.next_start;
        self.next_start = start + self.rate;
        (start, self.next_start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        let waits: Vec<u64> = (1..=7).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(p.backoff(100), Duration::from_secs(30));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(500))),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn jitter_stays_in_range() {
        let p = RetryPolicy::default();
        for _ in 0..200 {
            let d = p.delay(2, None);
            assert!(d >= Duration::from_millis(1600) && d <= Duration::from_millis(2400));
        }
    }

    #[test]
    fn default_policy_spans_a_minute_outage() {
        let p = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        let mut at = Duration::ZERO;
        let mut attempts = vec![at];
        for retry in 1..p.max_attempts {
            at += p.backoff(retry);
            if at > p.max_elapsed {
                break;
            }
            attempts.push(at);
        }
        assert!(attempts.iter().any(|&t| t > Duration::from_secs(60)));
    }

    #[test]
    fn samples_are_found_in_gzip() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        // sample_type {1: 1, 2: 2}, then one sample.
        gz.write_all(&[0x0a, 0x04, 0x08, 0x01, 0x10, 0x02, 0x12, 0x02, 0x10, 0x05])
            .unwrap();
        assert_eq!(pprof_has_samples(&gz.finish().unwrap()), Ok(true));
        assert_eq!(pprof_has_samples(&[0x0a, 0x00, 0x48, 0x01]), Ok(false));
        assert!(pprof_has_samples(&[0x1f, 0x8b, 0x00]).is_err());
    }

    #[test]
    fn windows_are_aligned() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_000_123);
        let mut w = Windows::new(t, Duration::from_secs(10));
        let (start, end) = w.next_window();
        assert_eq!(unix_nanos(start), 1_000_000_000_000_000);
        assert_eq!(unix_nanos(end), 1_000_010_000_000_000);
        assert_eq!(unix_nanos(w.next_window().1), 1_000_020_000_000_000);
    }

    #[test]
    fn excerpts_are_short_and_clean() {
        assert_eq!(excerpt("bad\nrequest"), "bad request");
        assert_eq!(excerpt(&"x".repeat(1000)).len(), 200);
    }
}
