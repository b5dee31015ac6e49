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
//!   maximum backoff. Every attempt builds a fresh request from the shared [`Bytes`](bytes::Bytes) body.
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

//!
//! The queue and the task are [`Uploader`]; their retries [`RetryPolicy`]; the shared
//! connections [`Connections`]; and an HTTP sink, which turns profiles into requests for one
//! kind of server, [`HttpSink`].

mod connections;
mod http_sink;
mod queue;
mod retry;

pub use connections::{Connections, UPLOADS_PER_SERVER};
pub use http_sink::{HttpSink, NotSent, RequestTarget, Submitted};
pub use queue::{
    DEFAULT_QUEUE_CAPACITY, SLOW_ANSWER, STOP_DEADLINE, UploadRequest, UploadStats, Uploader,
    UploaderOptions,
};
pub use retry::RetryPolicy;
