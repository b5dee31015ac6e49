//! The HTTP connections every uploader of a runtime shares, and the turns they take to each
//! server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

/// Uploads in flight at once to one server (its scheme, host and port), over all the sinks
/// of a runtime; as many connections are kept open to it, at most.
pub const UPLOADS_PER_SERVER: usize = 4;

/// The HTTP connections the [`Uploader`](super::Uploader)s of a runtime share: one client, so one
/// connection pool, and a turn for each upload, at most [`UPLOADS_PER_SERVER`] at a time
/// to each server. Cloning it is cheap and shares them.
#[derive(Clone, Debug)]
pub struct Connections {
    pub(super) client: reqwest::Client,
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
    pub(super) fn turns(&self, url: &reqwest::Url) -> Arc<Semaphore> {
        let server = url.origin().ascii_serialization();
        let mut servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            servers
                .entry(server)
                .or_insert_with(|| Arc::new(Semaphore::new(UPLOADS_PER_SERVER))),
        )
    }
}
