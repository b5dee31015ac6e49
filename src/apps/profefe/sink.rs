//! The runtime side of the profefe app: `POST {address}/api/0/profiles?labels=&service=…&type=…`
//! with the raw gzip pprof as the body (no `Content-Type`), as profefe's Go agent sends it.
//!
//! - Types: cpu → `cpu`, heap and allocs → `heap`, block, mutex, goroutine, threadcreate as
//!   named (the server refuses any other type).
//! - `profile_types` is honoured: unlike the Go agent, CPU is not forced on.
//! - A profile without samples is never sent (the server answers `400 … profile is empty: no
//!   samples`); [`ProfefeSink::submit`] returns `false` for it.
//! - `timeout` bounds each attempt, `0` meaning none; unset means
//!   the default of [`TIMEOUT`](super::TIMEOUT), 30 s (the Go module
//!   has no default, so a hung collector could hold its agent forever).
//! - Cadence: the Go agent sends one type at a time in a ~90 s round. Here every enabled type
//!   is sent once per [`UPLOAD_RATE`](super::UPLOAD_RATE) window (15 s), aligned like the Pyroscope windows; CPU
//!   covers the whole window (the sampler runs continuously) instead of a 10 s sample.

use crate::runtime::plan::sampling::Sampling;
use crate::runtime::sink::{Sink, SinkSettings};
use crate::runtime::upload::Connections;
use reqwest::Url;
use reqwest::header::HeaderMap;
use std::any::Any;
use std::time::Duration;

use super::settings::ProfefeSettings;
use crate::fields::ProfileType;
use crate::runtime::Profile;
use crate::runtime::upload::{HttpSink, NotSent, RequestTarget, UploadRequest, UploaderOptions};

/// profefe's name for a profile type.
pub fn profefe_type(profile_type: ProfileType) -> &'static str {
    match profile_type {
        ProfileType::Cpu => "cpu",
        ProfileType::Heap | ProfileType::Allocs => "heap",
        ProfileType::Goroutine => "goroutine",
        ProfileType::ThreadCreate => "threadcreate",
        ProfileType::Block => "block",
        ProfileType::Mutex => "mutex",
    }
}

/// The uploader options of a resolved profefe sink: the defaults with its timeout.
pub fn uploader_options(settings: &ProfefeSettings) -> UploaderOptions {
    UploaderOptions {
        timeout: settings.timeout,
        ..UploaderOptions::new("profefe")
    }
}

/// Where one profefe app uploads. Its `Debug` shows the URL without userinfo.
#[derive(Clone)]
pub struct ProfilesTarget {
    profiles_url: Url,
    service: String,
}

impl std::fmt::Debug for ProfilesTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfilesTarget")
            .field(
                "profiles_url",
                &crate::redact::url(self.profiles_url.as_str()),
            )
            .field("service", &self.service)
            .finish()
    }
}

impl RequestTarget for ProfilesTarget {
    type Settings = ProfefeSettings;
    const NAME: &'static str = "profefe";

    fn new(settings: &ProfefeSettings) -> Result<Self, String> {
        let mut profiles_url = settings.address.clone();
        let path = format!(
            "{}/api/0/profiles",
            profiles_url.path().trim_end_matches('/')
        );
        profiles_url.set_path(&path);
        profiles_url.set_query(None);
        profiles_url.set_fragment(None);
        Ok(ProfilesTarget {
            profiles_url,
            service: settings.service.clone(),
        })
    }

    /// The request, or why it is not sent (no samples, or not a pprof).
    fn request(&self, profile: &Profile) -> Result<UploadRequest, NotSent> {
        self.upload_request(profile)
    }
}

impl ProfilesTarget {
    /// The service name sent.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The full URL for a profile of `profile_type`.
    pub fn url(&self, profile_type: ProfileType) -> Url {
        use crate::apps::pyroscope::sink::go_query_escape;
        let mut url = self.profiles_url.clone();
        url.set_query(Some(&format!(
            "labels=&service={}&type={}",
            go_query_escape(&self.service),
            profefe_type(profile_type)
        )));
        url
    }

    /// The request for `profile`, or why it is not sent (no samples, or not a pprof).
    pub fn upload_request(&self, profile: &Profile) -> Result<UploadRequest, NotSent> {
        match crate::profile::decode(&profile.pprof_gz) {
            Ok(decoded) if decoded.sample.is_empty() => return Err(NotSent::Empty),
            Ok(_) => {}
            Err(e) => return Err(NotSent::Invalid(format!("not a pprof profile: {e}"))),
        }
        Ok(UploadRequest {
            url: self.url(profile.profile_type),
            headers: HeaderMap::new(),
            body: bytes::Bytes::from_owner(std::sync::Arc::clone(&profile.pprof_gz)),
            what: format!("{} profile", profile.profile_type),
        })
    }
}

/// A running profefe sink.
pub type ProfefeSink = HttpSink<ProfilesTarget>;

impl SinkSettings for ProfefeSettings {
    fn path(&self) -> &str {
        &self.path
    }

    fn sampling(&self) -> &Sampling {
        &self.sampling
    }

    fn window(&self) -> Duration {
        self.upload_rate
    }

    /// profefe gets cumulative block, mutex and heap profiles, as the Go module sends them.
    fn cumulative(&self) -> bool {
        true
    }

    fn start(&self, connections: &Connections) -> Result<Box<dyn Sink>, String> {
        let options = UploaderOptions {
            sink: self.path.clone(),
            ..uploader_options(self)
        };
        Ok(Box::new(ProfefeSink::start(self, options, connections)?))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url() {
        let settings = ProfefeSettings {
            path: "apps.profefe".into(),
            address: Url::parse("http://h:10100/base/").unwrap(),
            service: "my svc".into(),
            timeout: None,
            upload_rate: std::time::Duration::from_secs(15),
            sampling: crate::runtime::plan::Sampling {
                profile_types: vec![ProfileType::Cpu],
                cpu_hz: 100,
                block_rate: 0,
                mutex_fraction: 0,
            },
        };
        let t = ProfilesTarget::new(&settings).unwrap();
        assert_eq!(
            t.url(ProfileType::Allocs).as_str(),
            "http://h:10100/base/api/0/profiles?labels=&service=my+svc&type=heap"
        );
    }
}
