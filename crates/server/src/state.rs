//! What every request handler shares.

use std::sync::Arc;

use tidings_hub::Hub;

use crate::auth::Authorizer;
use crate::config::Config;
use crate::error::ApiError;
use crate::limits::ConnectionLimits;

/// The server's shared state.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) hub: Hub,
    pub(crate) config: Config,
    pub(crate) auth: Authorizer,
    pub(crate) limits: ConnectionLimits,
    pub(crate) metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The development key, when the hub runs in development mode: the demo
    /// page gets short-lived tokens signed with it.
    pub(crate) dev_key: Option<String>,
    /// The hub's public URL (`public-url`, else from the listen address):
    /// relative topics resolve against it.
    pub(crate) public_url: url::Url,
}

impl AppState {
    /// Where the hub's RFC 9728 protected-resource metadata is:
    /// `/.well-known/oauth-protected-resource` then the hub's path, on its origin.
    pub(crate) fn metadata_url(&self) -> String {
        format!(
            "{}{}{}",
            self.public_url.origin().ascii_serialization(),
            crate::router::METADATA_PREFIX,
            self.public_url.path()
        )
    }

    /// A request's token problem, answered with its RFC 6750 challenge: a
    /// token sent wrongly is 400 `invalid_request`, one that fails its checks
    /// 401 `invalid_token`.
    pub(crate) fn token_error(&self, error: &crate::auth::AuthError) -> ApiError {
        use crate::auth::AuthError;
        let metadata = self.metadata_url();
        match error {
            AuthError::Presentation(_) => ApiError::bad_request(error.to_string())
                .bearer_challenge(Some("invalid_request"), &metadata),
            AuthError::Missing { .. } => {
                ApiError::unauthorized(error.to_string()).bearer_challenge(None, &metadata)
            }
            _ => ApiError::unauthorized(error.to_string())
                .bearer_challenge(Some("invalid_token"), &metadata),
        }
    }

    /// 403 with an `insufficient_scope` challenge: the token is good but
    /// grants not this.
    pub(crate) fn insufficient_scope(&self, message: String) -> ApiError {
        ApiError::forbidden(message)
            .bearer_challenge(Some("insufficient_scope"), &self.metadata_url())
    }
}

pub(crate) type SharedState = Arc<AppState>;
