//! The HTTP face of Tidings: the Mercure protocol (subscribe, publish,
//! subscription API), JWT auth, CORS, limits, health, metrics and the demo
//! page, in front of a [`tidings_hub::Hub`].
//!
//! # Example
//!
//! ```no_run
//! use tidings_server::{Config, Server};
//!
//! # async fn run() -> Result<(), tidings_server::ServeError> {
//! let config = Config { jwt_key: Some("a-long-random-secret-of-32-bytes!".into()), ..Config::default() };
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! let server = Server::new(config)?;
//! server.serve(listener, async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(()) }
//! ```
//!
//! # Endpoints
//!
//! | endpoint | what it does |
//! | --- | --- |
//! | `GET /.well-known/mercure?topic=…` (and `HEAD`; alias `/events`) | subscribe: `text/event-stream`, resumable with `Last-Event-ID` or `lastEventID` |
//! | `POST /.well-known/mercure` | publish, form-encoded (Mercure) or JSON; answers the id |
//! | `GET /.well-known/mercure/subscriptions[/{topic}[/{subscriber}]]` | Mercure's subscription API (with `subscriptions = true`) |
//! | `GET /healthz`, `GET /readyz`, `GET /metrics` | liveness; readiness (the log reached and writable, the tail connected and caught up); Prometheus metrics |
//! | `GET /` | the demo page |
//!
//! Subscriptions on fresh connections are served by a lean path (see the
//! `conn` module) that keeps only the socket and a cursor per subscriber.

#![warn(missing_docs)]

mod auth;
mod body;
mod config;
mod conn;
mod cors;
mod error;
mod limits;
mod publish;
mod router;
mod state;
mod subscribe;
mod text;
mod tls;

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use auth::{
    Algorithm, AuthConfig, AuthConfigError, AuthError, Authorizer, Claims, DEFAULT_COOKIE_NAME,
    DRAFT_08_COOKIE, DRAFT_08_DEFAULT_TTL, Draft08Claims, Grants, KeyMaterial, KeyUse, LEEWAY_SECS,
    MAX_DETAILS, MERCURE_DETAIL_TYPE, MintClaims, Role, Token, TokenSource, mint,
    token_from_request,
};
pub use config::{Config, LogFormat, RedisConfig, Storage};
pub use error::ApiError;
pub use limits::{default_max_connections, open_file_limit, raise_open_file_limit};
pub use subscribe::HISTORY_GAP_HEADER;
use tidings_hub::{
    Hub, HubConfig, Log, MemoryLog, NatsLog, NatsOptions, Presence, RedbLog, RedisLog,
    RedisOptions, RedisTls,
};
pub use tls::TlsError;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::limits::ConnectionLimits;
use crate::state::AppState;

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The history log could not be opened.
    #[error(transparent)]
    Log(#[from] tidings_hub::LogError),
    /// The hub could not start.
    #[error(transparent)]
    Hub(#[from] tidings_hub::Error),
    /// The settings contradict each other; the message says how.
    #[error("{0}")]
    Config(String),
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A JWT key or algorithm setting is unusable.
    #[error("JWT settings: {0}")]
    Auth(String),
    /// Listening or accepting failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A configured hub server, ready to [`serve`](Server::serve).
#[derive(Debug)]
pub struct Server {
    state: Arc<AppState>,
    /// HTTPS, when configured.
    tls: Option<tls::Tls>,
    /// The SHA-256 fingerprint of a self-signed certificate.
    fingerprint: Option<String>,
    /// This node's id in a cluster.
    node: Option<String>,
    /// The metrics listener, when bound by the caller.
    metrics_listener: Option<TcpListener>,
}

impl Server {
    /// Opens the history and prepares authorization. Needs a Tokio runtime.
    ///
    /// # Errors
    /// [`ServeError::Log`] for an unusable data dir, [`ServeError::Auth`]
    /// for unusable keys.
    pub fn new(config: Config) -> Result<Server, ServeError> {
        config.check().map_err(ServeError::Config)?;
        let public_url = config.public_url().map_err(ServeError::Config)?;
        let hub_config = HubConfig {
            keep_alive: config.keep_alive,
            presence: config.subscriptions,
            publish_timeout: config.publish_timeout,
            base_url: Some(public_url.clone()),
            ..HubConfig::default()
        };
        let mut node = None;
        let hub = if !config.nats.servers.is_empty() {
            let log = NatsLog::new(nats_options(&config)?)?;
            node = Some(log.node().to_owned());
            let presence = config.subscriptions.then(|| log.presence());
            cluster_hub(log, presence, hub_config)?
        } else if config.redis.url.is_some() {
            let log = RedisLog::new(redis_options(&config)?)?;
            node = Some(log.node().to_owned());
            let presence = config.subscriptions.then(|| log.presence());
            cluster_hub(log, presence, hub_config)?
        } else {
            match config.storage {
                Storage::Redb => Hub::new(
                    RedbLog::open(&config.data_dir, config.retention())?,
                    hub_config,
                )?,
                Storage::Memory => Hub::new(MemoryLog::new(config.retention()), hub_config)?,
            }
        };
        let algorithm: Algorithm = config
            .jwt_algorithm
            .parse()
            .map_err(|e: auth::AuthConfigError| ServeError::Auth(e.to_string()))?;
        let dev_key = if config.is_development() {
            Some(development_key(&config)?)
        } else {
            None
        };
        let key_setting = |specific: &Option<String>| -> Result<Option<KeyMaterial>, ServeError> {
            specific
                .as_ref()
                .or(config.jwt_key.as_ref())
                .or(dev_key.as_ref())
                .map(|value| {
                    KeyMaterial::from_setting(value).map_err(|e| ServeError::Auth(e.to_string()))
                })
                .transpose()
        };
        let auth_config = AuthConfig {
            publisher_key: key_setting(&config.publisher_jwt_key)?,
            subscriber_key: key_setting(&config.subscriber_jwt_key)?,
            algorithm,
            cookie_name: config.cookie_name.clone(),
            issuers: config.jwt_issuer.clone(),
            audience: Some(
                config
                    .jwt_audience
                    .clone()
                    .unwrap_or_else(|| public_url.to_string()),
            ),
        };
        let auth = Authorizer::new(&auth_config).map_err(|e| ServeError::Auth(e.to_string()))?;
        for warning in auth.warnings() {
            tracing::warn!(%warning, "weak JWT key");
        }
        let (tls, fingerprint) = if config.tls_self_signed {
            let (tls, fingerprint) = tls::Tls::self_signed()?;
            (Some(tls), Some(fingerprint))
        } else if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
            (Some(tls::Tls::from_files(cert, key)?), None)
        } else {
            (None, None)
        };
        let limits = ConnectionLimits::new(config.max_connections, config.max_connections_per_ip);
        Ok(Server {
            state: Arc::new(AppState {
                hub,
                config,
                auth,
                limits,
                metrics: metrics_handle(),
                dev_key,
                public_url,
            }),
            tls,
            fingerprint,
            node,
            metrics_listener: None,
        })
    }

    /// Whether this server speaks HTTPS (with HTTP/2 by ALPN).
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// With `--tls-self-signed`, the SHA-256 fingerprint of the certificate
    /// made at start, to compare with what a browser shows.
    pub fn tls_fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// A handle that reloads the certificate files (on SIGHUP, say) without
    /// touching open connections. `None` without TLS.
    pub fn tls_reloader(&self) -> Option<TlsReloader> {
        self.tls.clone().map(TlsReloader)
    }

    /// Serves `/metrics` on `listener` (bound by the caller, who then knows
    /// its address) rather than binding `metrics-listen` in
    /// [`serve`](Server::serve).
    #[must_use]
    pub fn with_metrics_listener(mut self, listener: TcpListener) -> Server {
        self.metrics_listener = Some(listener);
        self
    }

    /// What is usable but unwise in the settings (weak keys, say), one
    /// sentence each, for the operator to read at start.
    pub fn warnings(&self) -> &[String] {
        self.state.auth.warnings()
    }

    /// This node's id in the cluster (`--redis`); `None` for a single node.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// The hub's HTTP endpoints as an axum router, to merge into an
    /// application's own: the Mercure endpoint (subscribe, publish, the
    /// subscription API, metadata) at `/.well-known/mercure` and `/events`,
    /// the browser client at `/tidings.js`, `/healthz`, `/readyz` and
    /// `/metrics`, with the configured auth, CORS and limits. It leaves out
    /// the dashboard at `/` and has no fallback, so the application keeps
    /// its own.
    ///
    /// Served this way, by the application's `axum::serve`, every request
    /// goes through hyper as the application set it up: the subscriber
    /// limit, auth and CORS apply, but not what [`serve`](Server::serve) does
    /// per connection (the per-IP limit, the header-read timeout, TLS, and
    /// the lean subscription path). In front of the internet, put a proxy
    /// that bounds those. Streams end when [`Hub::shutdown`] is called, so
    /// call it before (or in) the graceful shutdown that waits for them.
    ///
    /// ```no_run
    /// use axum::{Router, routing::get};
    /// use tidings_hub::Update;
    /// use tidings_server::{Config, Server, Storage};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = Server::new(Config { storage: Storage::Memory, ..Config::default() })?;
    /// let hub = server.hub().clone();
    /// let app = Router::new()
    ///     .route("/", get(|| async { "my app" }))
    ///     .merge(server.router());
    /// hub.publish(Update::new("news", "hello")).await?;
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// axum::serve(listener, app)
    ///     .with_graceful_shutdown(async move {
    ///         tokio::signal::ctrl_c().await.ok();
    ///         hub.shutdown().await;
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn router(&self) -> axum::Router {
        router::mountable(self.state.clone())
    }

    /// The hub behind the server: publish to it from the same program.
    pub fn hub(&self) -> &Hub {
        &self.state.hub
    }

    /// In development mode, the generated HS256 key (kept in the data dir so
    /// tokens survive restarts).
    pub fn development_key(&self) -> Option<&str> {
        self.state.dev_key.as_deref()
    }

    /// In development mode, a token signed with the generated key: subscribe
    /// to every topic, publish to every topic too when `publish`, valid for
    /// `ttl`. `None` when a key is configured.
    pub fn development_token(&self, publish: bool, ttl: Duration) -> Option<String> {
        development_token(&self.state, publish, ttl)
    }

    /// Serves connections from `listener` until `shutdown` completes, then
    /// stops accepting, ends every stream (clients reconnect and resume),
    /// lets the log store what it accepted, and returns.
    ///
    /// # Errors
    /// Only if the listener fails irrecoverably.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let state = self.state;
        let tls = self.tls.map(|tls| tls.acceptor);
        let router = router::router(state.clone());
        let tracker = TaskTracker::new();
        let stopping = CancellationToken::new();
        let metrics_listener = match (self.metrics_listener, state.config.metrics_listen) {
            (Some(listener), _) => Some(listener),
            (None, Some(address)) => Some(TcpListener::bind(address).await?),
            (None, None) => None,
        };
        if let Some(listener) = metrics_listener {
            let metrics = router::metrics_router(state.clone());
            let stop = stopping.clone();
            tracker.spawn(async move {
                let served = axum::serve(listener, metrics)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
                if let Err(error) = served {
                    tracing::warn!(%error, "the metrics listener failed");
                }
            });
        }
        let demo = state
            .config
            .demo
            .then(|| tokio::spawn(run_demo(state.hub.clone(), stopping.clone())));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let context = conn::Context {
                            peer,
                            state: state.clone(),
                            router: router.clone(),
                            stopping: stopping.clone(),
                            tls: tls.clone(),
                        };
                        tracker.spawn(conn::handle(stream, context));
                    }
                    Err(error) => {
                        // Out of file descriptors, usually: back off briefly
                        // instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        tracing::info!("shutting down: ending streams so clients reconnect elsewhere");
        stopping.cancel();
        if let Some(demo) = demo {
            let _ = demo.await;
        }
        state.hub.shutdown().await;
        tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after 10 s; exiting anyway");
        }
        Ok(())
    }
}

/// Reloads a server's TLS certificate files; see [`Server::tls_reloader`].
#[derive(Debug, Clone)]
pub struct TlsReloader(tls::Tls);

impl TlsReloader {
    /// Reads the certificate and key files again; new connections use them,
    /// open ones keep theirs. Returns false for a self-signed certificate,
    /// which has no files.
    ///
    /// # Errors
    /// When the files cannot be read or do not match: the certificate in use
    /// stays.
    pub fn reload(&self) -> Result<bool, TlsError> {
        self.0.reload()
    }
}

/// Serves `config` on `listener` until `shutdown` completes.
///
/// # Errors
/// As [`Server::new`] and [`Server::serve`].
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    Server::new(config)?.serve(listener, shutdown).await
}

/// The Redis log's options from the settings. The command timeout is the
/// publish timeout: a publish never waits on Redis longer than that anyway.
fn redis_options(config: &Config) -> Result<RedisOptions, ServeError> {
    let read = |key: &str, path: &Option<std::path::PathBuf>| {
        path.as_ref()
            .map(|path| {
                std::fs::read(path).map_err(|e| {
                    ServeError::Config(format!("cannot read redis {key} {}: {e}", path.display()))
                })
            })
            .transpose()
    };
    let redis = &config.redis;
    let client = match (
        read("cert-file", &redis.cert_file)?,
        read("key-file", &redis.key_file)?,
    ) {
        (Some(cert), Some(key)) => Some((cert, key)),
        _ => None,
    };
    Ok(RedisOptions {
        url: redis.url.clone().unwrap_or_default(),
        prefix: redis.prefix.clone(),
        timeout: config.publish_timeout,
        node_timeout: redis.node_timeout,
        retention: config.retention(),
        min_replicas: redis.min_replicas,
        tls: RedisTls {
            ca: read("ca-file", &redis.ca_file)?,
            client,
        },
        ..RedisOptions::default()
    })
}

/// A hub on a cluster engine's log, with its presence when the subscription
/// API is on (otherwise a node keeps its subscriptions to itself).
fn cluster_hub<L: Log, P: Presence>(
    log: L,
    presence: Option<P>,
    config: HubConfig,
) -> Result<Hub, ServeError> {
    Ok(match presence {
        Some(presence) => Hub::with_presence(log, presence, config)?,
        None => Hub::new(log, config)?,
    })
}

/// The NATS log's options from the settings. The request timeout is the
/// publish timeout, as for Redis.
fn nats_options(config: &Config) -> Result<NatsOptions, ServeError> {
    let nats = &config.nats;
    let read = |key: &str, path: &std::path::PathBuf| {
        std::fs::read_to_string(path).map_err(|e| {
            ServeError::Config(format!("cannot read nats {key} {}: {e}", path.display()))
        })
    };
    let token = nats
        .token_file
        .as_ref()
        .map(|path| read("token-file", path).map(|t| t.trim().to_owned()))
        .transpose()?;
    if token.as_deref() == Some("") {
        return Err(ServeError::Config("nats token-file is empty".into()));
    }
    Ok(NatsOptions {
        servers: nats.servers.clone(),
        stream: nats.stream.clone(),
        replicas: nats.replicas,
        credentials: nats
            .creds
            .as_ref()
            .map(|path| read("creds", path))
            .transpose()?,
        token,
        ca_file: nats.ca_file.clone(),
        client_cert: nats.cert_file.clone().zip(nats.key_file.clone()),
        timeout: config.publish_timeout,
        node_timeout: nats.node_timeout,
        retention: config.retention(),
        ..NatsOptions::default()
    })
}

/// A development-mode token (see [`Server::development_token`]).
pub(crate) fn development_token(state: &AppState, publish: bool, ttl: Duration) -> Option<String> {
    let key = KeyMaterial::Secret(state.dev_key.clone()?);
    let claims = MintClaims {
        publish: publish.then(|| vec!["*".to_owned()]),
        subscribe: Some(vec!["*".to_owned()]),
        payload: None,
        ttl: Some(ttl),
        draft08: None,
    };
    // An HS256 secret of 64 hex digits always signs; failing here is a bug.
    Some(mint(&key, Algorithm::HS256, &claims).expect("the development key signs HS256"))
}

/// The generated development key: kept in the data dir (for redb storage)
/// so that printed tokens stay valid across restarts.
fn development_key(config: &Config) -> Result<String, ServeError> {
    let generate = || {
        let bytes: [u8; 32] = rand::random();
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    if config.storage == Storage::Memory {
        return Ok(generate());
    }
    let path = config.data_dir.join("development-jwt-key");
    match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => Ok(key.trim().to_owned()),
        _ => {
            let key = generate();
            write_private(&path, &key).map_err(|e| {
                ServeError::Auth(format!(
                    "cannot save the development key to {}: {e}",
                    path.display()
                ))
            })?;
            Ok(key)
        }
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

/// The process's Prometheus recorder; the first server installs it.
fn metrics_handle() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .ok()
        })
        .clone()
}

/// `serve --demo`: a random value on `demo/random` every second.
async fn run_demo(hub: Hub, stopping: CancellationToken) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    let mut value: f64 = 50.0;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stopping.cancelled() => return,
        }
        value = (value + rand::random_range(-10.0..10.0)).clamp(0.0, 100.0);
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let data =
            serde_json::json!({ "timestamp": timestamp, "value": (value * 100.0).round() / 100.0 });
        if let Err(error) = hub
            .publish(tidings_hub::Update::new("demo/random", data.to_string()))
            .await
        {
            tracing::warn!(%error, "demo publish failed");
        }
    }
}
