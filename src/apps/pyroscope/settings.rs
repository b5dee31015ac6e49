//! The pyroscope app's resolved settings: its fields resolved for the runtime (placeholders,
//! defaults, checks, the choice of authentication), and how to start its sink.

use std::fmt;
use std::time::Duration;

use url::Url;

use super::PyroscopeApp;
use crate::diagnostic::Diagnostic;
use crate::fields::{Parameters, ProfileType};
use crate::redact::Secret;
use crate::runtime::plan::resolver::{Resolver, Summary};
use crate::runtime::plan::sampling::Sampling;
use crate::runtime::sink::ResolveSink;

/// How a pyroscope sink authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// No authentication.
    None,
    /// HTTP basic auth.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: Secret,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
}

/// A resolved pyroscope sink. Its `Debug` shows the server without userinfo.
#[derive(Clone, PartialEq)]
pub struct PyroscopeSettings {
    /// The JSON path of its configuration (`apps.pyroscope`, `apps.profiling.profilers[0]`),
    /// to name it in logs.
    pub path: String,
    /// The application name.
    pub application_name: String,
    /// The server.
    pub server_url: Url,
    /// The authentication.
    pub auth: Auth,
    /// The tenant (`X-Scope-OrgID`), if any.
    pub tenant_id: Option<String>,
    /// How often profiles are uploaded (positive).
    pub upload_rate: Duration,
    /// What to sample (never `threadcreate`).
    pub sampling: Sampling,
}

impl fmt::Debug for PyroscopeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let PyroscopeSettings {
            path,
            application_name,
            server_url,
            auth,
            tenant_id,
            upload_rate,
            sampling,
        } = self;
        f.debug_struct("PyroscopeSettings")
            .field("path", path)
            .field("application_name", application_name)
            .field("server_url", &crate::redact::url(server_url.as_str()))
            .field("auth", auth)
            .field("tenant_id", tenant_id)
            .field("upload_rate", upload_rate)
            .field("sampling", sampling)
            .finish()
    }
}

/// Said once for every pyroscope sink whose profile types include `threadcreate`.
static THREADCREATE_DROPPED: Summary = Summary {
    message: "threadcreate is not supported by pyroscope (nor by its Go agent): not sent",
    help: "remove threadcreate from the pyroscope profile_types",
};

impl ResolveSink for PyroscopeApp {
    type Settings = PyroscopeSettings;

    /// Resolves a pyroscope app (standalone, or a child of `profiling` inheriting its
    /// parameters) at `path` into its settings; `None` when anything is refused.
    fn resolve(
        &self,
        r: &mut Resolver,
        inherited: Option<&Parameters>,
        path: String,
    ) -> Option<PyroscopeSettings> {
        let app = self;
        let refused_before = r.refused();
        if app.server_address.is_none() {
            r.warn(
                Diagnostic::warning(format!(
                    "{path}.server_address: not set: sending to {}",
                    super::SERVER_ADDRESS.default.unwrap_or_default()
                ))
                .help("set the Pyroscope server's address, such as http://pyroscope:4040"),
            );
        }
        let application_name = r
            .string(&app.application_name, &path, &super::APPLICATION_NAME)
            .unwrap_or_else(|| r.executable_name().to_owned());
        let server_url = r.url(&app.server_address, &path, &super::SERVER_ADDRESS);
        let token = r.string(&app.auth_token, &path, &super::AUTH_TOKEN);
        let user = r.string(&app.basic_auth_user, &path, &super::BASIC_AUTH_USER);
        let password = r.string(&app.basic_auth_password, &path, &super::BASIC_AUTH_PASSWORD);
        let tenant_id = r.string(&app.tenant_id, &path, &super::TENANT_ID);
        let upload_rate = r
            .duration(&app.upload_rate, &path, &super::UPLOAD_RATE)
            .unwrap_or_default();
        let auth = match (user, password, token) {
            (Some(user), Some(password), token) => {
                if token.is_some() {
                    r.warn(
                        Diagnostic::warning(format!(
                            "{path}.auth_token: ignored: basic auth is used when \
                             basic_auth_user and basic_auth_password are set"
                        ))
                        .help("keep either the token or the basic auth pair"),
                    );
                }
                Auth::Basic {
                    user,
                    password: Secret::new(password),
                }
            }
            (Some(_), None, _) => {
                r.refuse(
                    format!("{path}.basic_auth_user: basic_auth_password is not set"),
                    "set both basic_auth_user and basic_auth_password, or neither",
                );
                Auth::None
            }
            (None, Some(_), _) => {
                r.refuse(
                    format!("{path}.basic_auth_password: basic_auth_user is not set"),
                    "set both basic_auth_user and basic_auth_password, or neither",
                );
                Auth::None
            }
            (None, None, Some(token)) => Auth::Bearer(Secret::new(token)),
            (None, None, None) => Auth::None,
        };
        if app.disable_gc_runs.is_some() {
            r.warn(
                Diagnostic::warning(format!(
                    "{path}.disable_gc_runs: has no effect: Rust has no garbage collector to run \
                     before heap profiles"
                ))
                .help("remove it; it is accepted for compatibility with the Go module"),
            );
        }
        let mut sampling = r.sampling(
            app.parameters.as_ref(),
            inherited,
            super::DEFAULT_PROFILE_TYPES,
            &path,
        );
        if sampling.has(ProfileType::ThreadCreate) {
            sampling
                .profile_types
                .retain(|&t| t != ProfileType::ThreadCreate);
            r.summarize(&THREADCREATE_DROPPED, &path);
        }
        let server_url = server_url.filter(|_| r.refused() == refused_before)?;
        Some(PyroscopeSettings {
            path,
            application_name,
            server_url,
            auth,
            tenant_id,
            upload_rate,
            sampling,
        })
    }
}
