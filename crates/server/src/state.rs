//! What every request handler shares.

use std::sync::Arc;

use tidings_hub::Hub;

use crate::auth::Authorizer;
use crate::config::Config;
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

pub(crate) type SharedState = Arc<AppState>;
