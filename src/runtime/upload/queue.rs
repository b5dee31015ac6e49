//! The upload queue: one [`Uploader`] per sink, its bounded queue of requests, and the task
//! that sends them in order (see the [`upload`](super) docs).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{Connections, RetryPolicy};
use crate::redact::Credentials;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

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

/// A sink's upload queue and the task that empties it. See the [module docs](super).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_clean() {
        assert_eq!(excerpt("bad\nrequest"), "bad request");
        assert_eq!(excerpt(&"x".repeat(1000)).len(), 200);
    }
}
