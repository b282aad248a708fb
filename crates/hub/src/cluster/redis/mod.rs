//! The hub on Redis Streams: one ordered log shared by every node.
//!
//! # Data layout
//!
//! Every key shares one hash tag, `{prefix}`, so that every script runs in
//! one slot (and so on Redis Cluster too):
//!
//! | key | type | what it holds |
//! | --- | --- | --- |
//! | `{prefix}:log` | stream | one entry per update; entry id `N-0` is its dense position `N`; fields `id`, `t` (published, ms), `n` (size), `p` (private), `topics` (JSON), `frame` (the encoded event) |
//! | `{prefix}:ids` | hash | event id → position, for `Last-Event-ID` and the duplicate check |
//! | `{prefix}:meta` | hash | `epoch` (changes when the log is recreated), `last` (newest position), `base` (where the epoch started), `bytes` |
//! | `{prefix}:nodes` | sorted set | node id → heartbeat expiry (Redis clock, ms), for presence |
//! | `{prefix}:presence:{node}` | hash | a node's subscriptions (JSON), for presence |
//!
//! # Why it is shaped so
//!
//! - Publishing is one Lua script per update (`lua/publish.lua`), sent with
//!   `EVALSHA` and pipelined per writer batch: epoch check, duplicate check,
//!   next position, `XADD` and a bounded trim happen atomically, so positions
//!   are dense and one order holds for every node.
//! - No PUB/SUB: it drops what is published while a node is disconnected.
//!   Each node tails the stream with `XREAD BLOCK` from a concrete cursor on a
//!   connection of its own (`tail.rs`), so a blocking read never stalls the
//!   multiplexed connection that publishes.

mod entry;
mod log;
mod presence;
mod tail;

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{RedisError, Script};

pub use self::log::RedisLog;
pub use self::presence::RedisPresence;
use crate::log::{LogError, Retention};

/// How to reach Redis and how to behave on it. Every field documents its
/// default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port/db`, or `rediss://` for TLS
    /// (`#insecure` at the end accepts any certificate, for development).
    /// Default: `redis://127.0.0.1:6379/0`.
    pub url: String,
    /// The name every key starts with: nodes with the same URL and prefix
    /// form one hub. Default: `tidings`.
    pub prefix: String,
    /// The longest one command may take before the node counts Redis as
    /// unreachable. Default: 5 s.
    pub timeout: Duration,
    /// How long the tail's `XREAD` blocks before it looks again. Default: 2 s.
    pub block: Duration,
    /// A node whose heartbeat is older than this is dead: another node
    /// announces its subscriptions inactive. Default: 10 s.
    pub node_timeout: Duration,
    /// History retention; every node should use the same. Default:
    /// [`Retention::default`].
    pub retention: Retention,
    /// Certificates for `rediss://` beyond the system's roots. Default:
    /// none.
    pub tls: RedisTls,
    /// Replicas that must hold a batch before its publishers are answered:
    /// `WAIT min_replicas timeout` after the write. Fewer within the
    /// timeout answer [`Appended::Unconfirmed`](crate::Appended::Unconfirmed).
    /// Default: 0 (answered once the primary holds it).
    pub min_replicas: u32,
}

/// TLS material for `rediss://`, PEM-encoded. Its `Debug` shows what is set,
/// never the key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// The roots to trust instead of the system's: a private CA.
    pub ca: Option<Vec<u8>>,
    /// A certificate chain and its private key, presented to Redis: mutual
    /// TLS, which Redis asks for by default (`tls-auth-clients yes`).
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl RedisTls {
    /// Whether anything is set.
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.client.is_none()
    }

    /// Checks the certificates as the TLS connection will use them: each
    /// PEM holds a certificate at least, the CA's can be roots, and the
    /// client's certificate parses and matches its key.
    fn check(&self) -> Result<(), String> {
        let client = self
            .client
            .as_ref()
            .map(|(cert, key)| (cert.as_slice(), key.as_slice()));
        super::tls::check_pem(self.ca.as_deref(), client)
    }
}

impl std::fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTls")
            .field("ca", &self.ca.as_ref().map(|_| "PEM"))
            .field(
                "client",
                &self.client.as_ref().map(|_| "PEM certificate and key"),
            )
            .finish()
    }
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            url: "redis://127.0.0.1:6379/0".into(),
            prefix: "tidings".into(),
            timeout: Duration::from_secs(5),
            block: Duration::from_secs(2),
            node_timeout: Duration::from_secs(10),
            retention: Retention::default(),
            tls: RedisTls::default(),
            min_replicas: 0,
        }
    }
}

impl RedisOptions {
    /// `url` with its password replaced by `***`, for logs and banners.
    pub fn redacted(url: &str) -> String {
        redacted(url)
    }
}

/// The keys of one hub, all under one hash tag.
#[derive(Debug)]
struct Keys {
    log: String,
    ids: String,
    meta: String,
    nodes: String,
    tag: String,
}

impl Keys {
    fn new(prefix: &str) -> Keys {
        let tag = format!("{{{prefix}}}");
        Keys {
            log: format!("{tag}:log"),
            ids: format!("{tag}:ids"),
            meta: format!("{tag}:meta"),
            nodes: format!("{tag}:nodes"),
            tag,
        }
    }

    fn presence(&self, node: &str) -> String {
        format!("{}:presence:{node}", self.tag)
    }
}

/// The publish script's text, sent with every publish pipeline (see
/// `RedisLog::append_all`).
const PUBLISH: &str = concat!(
    include_str!("lua/trim.lua"),
    include_str!("lua/publish.lua")
);

/// The scripts, hashed once; loaded on the first `NOSCRIPT`.
#[derive(Debug)]
struct Scripts {
    publish: Script,
    trim: Script,
    init: Script,
    heartbeat: Script,
    nodes: Script,
    claim: Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            publish: Script::new(PUBLISH),
            trim: Script::new(concat!(
                include_str!("lua/trim.lua"),
                include_str!("lua/trim_log.lua")
            )),
            init: Script::new(include_str!("lua/init.lua")),
            heartbeat: Script::new(include_str!("lua/heartbeat.lua")),
            nodes: Script::new(include_str!("lua/nodes.lua")),
            claim: Script::new(include_str!("lua/claim.lua")),
        }
    }
}

/// What the log and presence of one node share: the client, the multiplexed
/// connection for everything but the tail, the keys and the scripts.
#[derive(Debug)]
struct Redis {
    client: ::redis::Client,
    conn: ConnectionManager,
    keys: Keys,
    scripts: Scripts,
    options: RedisOptions,
    /// This node, for presence and for naming its connections.
    node: Arc<str>,
    /// The URL without its password, for messages.
    target: String,
}

impl Redis {
    /// Parses the URL and prepares the connection, without connecting: the
    /// connection manager connects on first use and reconnects with backoff,
    /// so a node started while Redis is down comes up when Redis does.
    fn new(options: RedisOptions) -> Result<Redis, LogError> {
        let target = redacted(&options.url);
        let client = if options.tls.is_empty() {
            ::redis::Client::open(options.url.as_str())
                .map_err(|e| LogError::Config(format!("invalid Redis URL {target}: {e}")))?
        } else {
            options.tls.check().map_err(|e| {
                LogError::Config(format!("unusable Redis TLS settings for {target}: {e}"))
            })?;
            let certificates = ::redis::TlsCertificates {
                client_tls: options.tls.client.clone().map(|(client_cert, client_key)| {
                    ::redis::ClientTlsConfig {
                        client_cert,
                        client_key,
                    }
                }),
                root_cert: options.tls.ca.clone(),
            };
            ::redis::Client::build_with_tls(options.url.as_str(), certificates).map_err(|e| {
                LogError::Config(format!("unusable Redis TLS settings for {target}: {e}"))
            })?
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout.min(Duration::from_secs(2))))
            .set_response_timeout(Some(options.timeout))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| LogError::Config(format!("cannot use Redis at {target}: {e}")))?;
        let node = uuid::Uuid::now_v7().simple().to_string();
        Ok(Redis {
            client,
            conn,
            keys: Keys::new(&options.prefix),
            scripts: Scripts::new(),
            options,
            node: node.into(),
            target,
        })
    }

    /// A Redis failure as the log reports it: unreachable (retry later) for
    /// I/O, timeouts and a Redis that is loading; refused otherwise.
    fn error(&self, doing: &str, error: RedisError) -> LogError {
        let transient = error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.kind() == ::redis::ErrorKind::Server(::redis::ServerErrorKind::BusyLoading);
        if error.kind() == ::redis::ErrorKind::AuthenticationFailed {
            return LogError::Config(format!(
                "Redis at {} refused the credentials of the URL ({doing}): {error}",
                self.target
            ));
        }
        if transient {
            LogError::Unavailable {
                what: format!("cannot reach Redis at {} ({doing})", self.target),
                source: Arc::new(error),
            }
        } else {
            LogError::Io(format!("Redis at {} refused {doing}: {error}", self.target))
        }
    }

    /// Loads every script (after a `NOSCRIPT`: Redis restarted, or its script
    /// cache was flushed).
    async fn load_scripts(&self) -> Result<(), LogError> {
        let mut conn = self.conn.clone();
        let s = &self.scripts;
        for script in [
            &s.publish,
            &s.trim,
            &s.init,
            &s.heartbeat,
            &s.nodes,
            &s.claim,
        ] {
            script
                .prepare_invoke()
                .load_async(&mut conn)
                .await
                .map_err(|e| self.error("loading a script", e))?;
        }
        Ok(())
    }
}

/// `url` with its password replaced by `***`, for logs and messages.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(an unparsable URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let keys = Keys::new("shop");
        assert_eq!(keys.log, "{shop}:log");
        assert_eq!(keys.ids, "{shop}:ids");
        assert_eq!(keys.meta, "{shop}:meta");
        assert_eq!(keys.nodes, "{shop}:nodes");
        assert_eq!(keys.presence("n1"), "{shop}:presence:n1");
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redacted("redis://:s3cret@127.0.0.1:6380/2"),
            "redis://:***@127.0.0.1:6380/2"
        );
        assert_eq!(
            redacted("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert!(!redacted("not a url s3cret").contains("s3cret"));
    }

    #[tokio::test]
    async fn tls_settings_need_rediss_and_usable_pem() {
        let ca = RedisTls {
            ca: Some(b"not a certificate".to_vec()),
            client: None,
        };
        for (url, says) in [
            ("redis://127.0.0.1:6379/0", "no PEM certificate"),
            ("rediss://127.0.0.1:6379/0", "no PEM certificate"),
        ] {
            let options = RedisOptions {
                url: url.into(),
                tls: ca.clone(),
                ..RedisOptions::default()
            };
            let error = Redis::new(options).unwrap_err().to_string();
            assert!(
                error.contains("TLS settings") && error.contains(says),
                "{error}"
            );
        }
        assert!(!format!("{ca:?}").contains("not a certificate"));
    }

    #[tokio::test]
    async fn a_bad_url_is_a_clear_error_naming_it() {
        let options = RedisOptions {
            url: "http://127.0.0.1:6379".into(),
            ..RedisOptions::default()
        };
        let error = Redis::new(options).unwrap_err();
        assert!(matches!(error, LogError::Config(_)), "{error:?}");
        assert!(
            error.to_string().contains("http://127.0.0.1:6379"),
            "{error}"
        );
    }
}
