//! The hub on NATS JetStream: one replicated stream is the log shared by
//! every node.
//!
//! # Data layout
//!
//! | what | JetStream object | what it holds |
//! | --- | --- | --- |
//! | the log | stream `{stream}`, subjects `{stream}.log.*` | one message per update; its stream sequence is the update's position; its subject is `{stream}.log.{base64url(id)}`; the payload is `entry.rs`'s |
//! | presence | KV bucket `{stream}-presence` | `nodes.{node}`: a node's heartbeat; `subs.{node}.{key}`: one subscription (JSON) |
//!
//! # Why it is shaped so
//!
//! - **One order.** Every update goes to the one stream, so its sequence is
//!   the hub's single order on every node. With `num_replicas: 3` JetStream
//!   acknowledges a publish once a quorum of the stream's Raft group holds
//!   it: the publisher's 200 comes after that, so the loss of any one server
//!   loses nothing acknowledged.
//! - **Duplicate ids, for as long as history holds them.** Each id has a
//!   subject of its own, and every publish carries
//!   `Nats-Expected-Last-Subject-Sequence: 0`: the stream refuses it while it
//!   holds an update with that id, atomically, and accepts it again once
//!   retention dropped the old one, exactly as the Redis log's id index.
//!   `Nats-Msg-Id` de-duplication would hold only for the stream's
//!   `duplicate_window` (2 minutes by default); widening that window to the
//!   history's age would keep every id in the servers' memory for that long,
//!   with no bound when history is bounded by count. The per-subject index
//!   costs the servers about one subject entry per update held instead.
//! - **A refusal names the update that holds the id**, so a publish whose
//!   answer was lost and that is retried can tell its own update (same
//!   nonce) from another publisher's (a real duplicate).
//! - **Retention is the stream's limits** (`max_msgs`, `max_bytes`,
//!   `max_age`, discarding the oldest): JetStream trims, not the nodes.
//! - **The tail** is an ordered pull consumer from a concrete cursor
//!   (`tail.rs`): never "new messages only", so a reconnect continues
//!   exactly where this node was.

mod entry;
mod log;
mod presence;
mod tail;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::OnceCell;

pub use self::log::NatsLog;
pub use self::presence::NatsPresence;
use crate::log::{LogError, Retention};

/// How to reach NATS and how to behave on it. Every field documents its
/// default.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsOptions {
    /// Seed servers: `nats://host:port`, or `tls://host:port` for TLS
    /// (`nats://user:password@host:port` and `nats://token@host:port` carry
    /// credentials). The client learns the rest of the cluster from them.
    /// Default: `nats://127.0.0.1:4222`.
    pub servers: Vec<String>,
    /// The stream that holds the log; nodes with the same servers and stream
    /// form one hub. Letters, digits, `-` and `_`. Default: `tidings`.
    pub stream: String,
    /// Replicas of the stream (and of the presence bucket): 3 survives the
    /// loss of any one server; 1 is for development. Default: 3.
    pub replicas: usize,
    /// A NATS credentials file (`.creds`: a user JWT and its nkey seed), its
    /// text. Default: none.
    pub credentials: Option<String>,
    /// A token for servers that authenticate by token. Default: none.
    pub token: Option<String>,
    /// PEM file of the CA that signed the servers' certificates, trusted
    /// instead of the system's roots. Default: none.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain and private key presented to the servers
    /// (mutual TLS). Default: none.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// The longest one request may take before the node counts NATS as
    /// unreachable. Default: 5 s.
    pub timeout: Duration,
    /// How long the tail waits for new updates before it checks the stream
    /// is still the one it reads. Default: 2 s.
    pub block: Duration,
    /// A node whose heartbeat is older than this is dead: another node
    /// announces its subscriptions inactive. Default: 10 s.
    pub node_timeout: Duration,
    /// History retention, as the stream's limits. Default:
    /// [`Retention::default`].
    pub retention: Retention,
}

impl Default for NatsOptions {
    fn default() -> Self {
        NatsOptions {
            servers: vec!["nats://127.0.0.1:4222".into()],
            stream: "tidings".into(),
            replicas: 3,
            credentials: None,
            token: None,
            ca_file: None,
            client_cert: None,
            timeout: Duration::from_secs(5),
            block: Duration::from_secs(2),
            node_timeout: Duration::from_secs(10),
            retention: Retention::default(),
        }
    }
}

impl std::fmt::Debug for NatsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsOptions")
            .field(
                "servers",
                &self.servers.iter().map(|s| redacted(s)).collect::<Vec<_>>(),
            )
            .field("stream", &self.stream)
            .field("replicas", &self.replicas)
            .field("credentials", &self.credentials.as_ref().map(|_| "set"))
            .field("token", &self.token.as_ref().map(|_| "set"))
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("timeout", &self.timeout)
            .field("block", &self.block)
            .field("node_timeout", &self.node_timeout)
            .field("retention", &self.retention)
            .finish()
    }
}

impl NatsOptions {
    /// `url` with its password or token replaced by `***`, for logs and
    /// banners.
    pub fn redacted(url: &str) -> String {
        redacted(url)
    }

    /// Several servers, each [redacted](NatsOptions::redacted), as
    /// `--nats` takes them (comma-separated).
    pub fn redacted_list(servers: &[String]) -> String {
        servers
            .iter()
            .map(|s| redacted(s))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Checks every setting that can be checked without a server: the URLs,
    /// the stream name, the replicas, the TLS files.
    fn check(&self) -> Result<(), LogError> {
        if self.servers.is_empty() {
            return Err(LogError::Config("no NATS server given".into()));
        }
        for server in &self.servers {
            let shown = redacted(server);
            let url = url::Url::parse(server).map_err(|e| {
                LogError::Config(format!(
                    "invalid NATS URL {shown}: {e} (give nats://host:port or tls://host:port)"
                ))
            })?;
            if !matches!(url.scheme(), "nats" | "tls") || url.host_str().is_none() {
                return Err(LogError::Config(format!(
                    "invalid NATS URL {shown}: give nats://host:port or tls://host:port"
                )));
            }
        }
        let name_ok = !self.stream.is_empty()
            && self.stream.len() <= 64
            && self
                .stream
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(LogError::Config(format!(
                "NATS stream name {:?} is unusable: give up to 64 letters, digits, - or _, like \"tidings\"",
                self.stream
            )));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(LogError::Config(format!(
                "NATS replicas must be from 1 to 5 (JetStream's range), not {}: 3 survives the loss of any one server, 1 is for development",
                self.replicas
            )));
        }
        if self.tls_wanted() && !self.servers.iter().all(|s| s.starts_with("tls://")) {
            return Err(LogError::Config(
                "NATS ca-file, cert-file and key-file are for TLS: give tls:// URLs".into(),
            ));
        }
        let read = |path: &PathBuf, what: &str| {
            std::fs::read(path).map_err(|e| {
                LogError::Config(format!(
                    "cannot read the NATS {what} {}: {e}",
                    path.display()
                ))
            })
        };
        let ca = self
            .ca_file
            .as_ref()
            .map(|p| read(p, "CA file"))
            .transpose()?;
        let client = match &self.client_cert {
            Some((cert, key)) => Some((read(cert, "certificate file")?, read(key, "key file")?)),
            None => None,
        };
        super::tls::check_pem(
            ca.as_deref(),
            client.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
        )
        .map_err(|e| LogError::Config(format!("unusable NATS TLS settings: {e}")))?;
        if let Some(credentials) = &self.credentials {
            async_nats::ConnectOptions::with_credentials(credentials).map_err(|e| {
                LogError::Config(format!("the NATS credentials file cannot be used: {e}"))
            })?;
        }
        Ok(())
    }

    fn tls_wanted(&self) -> bool {
        self.ca_file.is_some() || self.client_cert.is_some()
    }

    fn connect_options(&self, node: &str) -> Result<async_nats::ConnectOptions, LogError> {
        let mut options = match &self.credentials {
            Some(credentials) => async_nats::ConnectOptions::with_credentials(credentials)
                .map_err(|e| {
                    LogError::Config(format!("the NATS credentials file cannot be used: {e}"))
                })?,
            None => async_nats::ConnectOptions::new(),
        };
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if let Some(ca) = &self.ca_file {
            options = options.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.client_cert {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if self.servers.iter().any(|s| s.starts_with("tls://")) {
            options = options.require_tls(true);
        }
        Ok(options
            .name(format!("tidings-{node}"))
            // Connect in the background and reconnect for ever: a node
            // started while NATS is down comes up when NATS does, and
            // readiness says meanwhile why it cannot serve.
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(self.timeout.min(Duration::from_secs(2)))
            .request_timeout(Some(self.timeout))
            .ping_interval(Duration::from_secs(5))
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((50 * attempts as u64).min(1000))
            }))
    }
}

/// What the log, tail and presence of one node share: the connection (made
/// on first use), the names, the options.
#[derive(Debug)]
struct Nats {
    options: NatsOptions,
    connection: OnceCell<Connection>,
    /// This node, for presence and for naming its connection.
    node: Arc<str>,
    /// The servers without their credentials, for messages.
    target: String,
}

/// A live client and its JetStream context.
#[derive(Debug, Clone)]
struct Connection {
    client: async_nats::Client,
    js: jetstream::Context,
}

impl Nats {
    /// Checks the options, without connecting.
    fn new(options: NatsOptions) -> Result<Nats, LogError> {
        options.check()?;
        let target = NatsOptions::redacted_list(&options.servers);
        let node = uuid::Uuid::now_v7().simple().to_string();
        Ok(Nats {
            options,
            connection: OnceCell::new(),
            node: node.into(),
            target,
        })
    }

    /// The connection, started on first use; it connects in the background
    /// and reconnects by itself.
    async fn connection(&self) -> Result<&Connection, LogError> {
        self.connection
            .get_or_try_init(|| async {
                let options = self.options.connect_options(&self.node)?;
                let client = options
                    .connect(self.options.servers.clone())
                    .await
                    .map_err(|e| self.unavailable("connecting", e))?;
                let js = jetstream::ContextBuilder::new()
                    .timeout(self.options.timeout)
                    // Acks outstanding at once across the node: a writer
                    // batch (512) many times over.
                    .max_ack_inflight(16_384)
                    .backpressure_on_inflight(true)
                    .build(client.clone());
                Ok(Connection { client, js })
            })
            .await
    }

    fn unavailable(
        &self,
        doing: &str,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> LogError {
        LogError::Unavailable {
            what: format!("cannot reach NATS at {} ({doing})", self.target),
            source: Arc::new(error),
        }
    }

    /// The log stream's configuration from the options.
    fn stream_config(&self) -> jetstream::stream::Config {
        let retention = &self.options.retention;
        let limit = |b: Option<u64>| b.map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX));
        jetstream::stream::Config {
            name: self.options.stream.clone(),
            description: Some("Tidings hub log: one message per update, in order".into()),
            subjects: vec![format!("{}.log.*", self.options.stream)],
            retention: jetstream::stream::RetentionPolicy::Limits,
            discard: jetstream::stream::DiscardPolicy::Old,
            max_messages: limit(retention.max_count),
            max_bytes: limit(retention.max_bytes),
            max_age: retention.max_age.unwrap_or_default(),
            storage: jetstream::stream::StorageType::File,
            num_replicas: self.options.replicas,
            ..Default::default()
        }
    }

    fn presence_bucket(&self) -> String {
        format!("{}-presence", self.options.stream)
    }
}

/// `url` with its password (or token) replaced by `***`.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            } else if !parsed.username().is_empty() {
                // nats://TOKEN@host: the user part is the secret.
                let _ = parsed.set_username("***");
            }
            parsed.to_string()
        }
        Err(_) => "(an unparsable URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(change: impl FnOnce(&mut NatsOptions)) -> NatsOptions {
        let mut options = NatsOptions::default();
        change(&mut options);
        options
    }

    #[test]
    fn bad_settings_are_refused_before_any_connection() {
        for (options, says) in [
            (options(|o| o.servers.clear()), "no NATS server"),
            (
                options(|o| o.servers = vec!["http://h:4222".into()]),
                "invalid NATS URL",
            ),
            (
                options(|o| o.servers = vec!["not a url".into()]),
                "invalid NATS URL",
            ),
            (options(|o| o.stream = "a.b".into()), "stream name"),
            (options(|o| o.replicas = 0), "replicas"),
            (options(|o| o.replicas = 7), "replicas"),
            (
                options(|o| o.ca_file = Some("/nonexistent/ca.pem".into())),
                "tls://",
            ),
            (
                options(|o| {
                    o.servers = vec!["tls://h:4222".into()];
                    o.ca_file = Some("/nonexistent/ca.pem".into());
                }),
                "cannot read the NATS CA file",
            ),
            (
                options(|o| o.credentials = Some("not a creds file".into())),
                "credentials",
            ),
        ] {
            let error = Nats::new(options).unwrap_err();
            assert!(matches!(error, LogError::Config(_)), "{error:?}");
            assert!(error.to_string().contains(says), "{error}");
        }
        assert!(Nats::new(NatsOptions::default()).is_ok());
    }

    #[test]
    fn secrets_never_reach_messages() {
        assert_eq!(
            redacted("nats://user:s3cret@127.0.0.1:4222"),
            "nats://user:***@127.0.0.1:4222"
        );
        assert_eq!(
            redacted("nats://s3cret@127.0.0.1:4222"),
            "nats://***@127.0.0.1:4222"
        );
        let shown = format!(
            "{:?}",
            options(|o| {
                o.servers = vec!["nats://u:s3cret@h:1".into()];
                o.token = Some("s3cret".into());
            })
        );
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn retention_maps_to_the_stream_s_limits() {
        let nats = Nats::new(options(|o| {
            o.retention = Retention {
                max_count: Some(10),
                max_age: Some(Duration::from_secs(60)),
                max_bytes: None,
            };
            o.replicas = 1;
        }))
        .unwrap();
        let config = nats.stream_config();
        assert_eq!(config.subjects, ["tidings.log.*"]);
        assert_eq!(config.max_messages, 10);
        assert_eq!(config.max_bytes, -1);
        assert_eq!(config.max_age, Duration::from_secs(60));
        assert_eq!(config.num_replicas, 1);
    }
}
