//! The profefe app's resolved settings: its fields resolved for the runtime, and how to
//! start its sink.

use std::fmt;
use std::time::Duration;

use url::Url;

use super::ProfefeApp;
use crate::diagnostic::Diagnostic;
use crate::fields::Parameters;
use crate::runtime::plan::resolver::Resolver;
use crate::runtime::plan::sampling::Sampling;
use crate::runtime::sink::ResolveSink;

/// A resolved profefe sink. Its `Debug` shows the address without userinfo.
#[derive(Clone, PartialEq)]
pub struct ProfefeSettings {
    /// The JSON path of its configuration.
    pub path: String,
    /// The collector.
    pub address: Url,
    /// The service name.
    pub service: String,
    /// The per-request timeout: the default of [`TIMEOUT`](super::TIMEOUT) when unset, `None` (no timeout)
    /// when configured as 0.
    pub timeout: Option<Duration>,
    /// How often profiles are uploaded: [`UPLOAD_RATE`](super::UPLOAD_RATE) (profefe has no setting).
    pub upload_rate: Duration,
    /// What to sample.
    pub sampling: Sampling,
}

impl fmt::Debug for ProfefeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ProfefeSettings {
            path,
            address,
            service,
            timeout,
            upload_rate,
            sampling,
        } = self;
        f.debug_struct("ProfefeSettings")
            .field("path", path)
            .field("address", &crate::redact::url(address.as_str()))
            .field("service", service)
            .field("timeout", timeout)
            .field("upload_rate", upload_rate)
            .field("sampling", sampling)
            .finish()
    }
}

impl ResolveSink for ProfefeApp {
    type Settings = ProfefeSettings;

    /// Resolves a profefe app (standalone, or a child of `profiling` inheriting its
    /// parameters) at `path` into its settings; `None` when anything is refused.
    fn resolve(
        &self,
        r: &mut Resolver,
        inherited: Option<&Parameters>,
        path: String,
    ) -> Option<ProfefeSettings> {
        let app = self;
        let refused_before = r.refused();
        if app.address.is_none() {
            r.warn(
                Diagnostic::warning(format!(
                    "{path}.address: not set: sending to {}",
                    super::ADDRESS.default.unwrap_or_default()
                ))
                .help("set the profefe collector's address, such as http://profefe:10100"),
            );
        }
        let address = r.url(&app.address, &path, &super::ADDRESS);
        let service = r
            .string(&app.service, &path, &super::SERVICE)
            .unwrap_or_else(|| r.executable_name().to_owned());
        // Unset: a default, so that a hung collector cannot hold the queue forever; 0: none.
        let timeout = r
            .duration(&app.timeout, &path, &super::TIMEOUT)
            .filter(|timeout| !timeout.is_zero());
        let sampling = r.sampling(
            app.parameters.as_ref(),
            inherited,
            super::DEFAULT_PROFILE_TYPES,
            &path,
        );
        let address = address.filter(|_| r.refused() == refused_before)?;
        Some(ProfefeSettings {
            path,
            address,
            service,
            timeout,
            upload_rate: super::UPLOAD_RATE,
            sampling,
        })
    }
}
