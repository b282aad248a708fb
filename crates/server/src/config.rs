//! [`Config`]: every setting of `tidings serve`, with its default.
//!
//! Sources, each overriding the one before: these defaults, a TOML file
//! (`--config`), environment variables (`TIDINGS_*`), command-line flags.
//! The file uses kebab-case keys; an unknown key is an error, so a typo never
//! silently leaves a default in place. `tidings.example.toml` lists every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The hub server's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// Address to listen on. Default: `127.0.0.1:3000`.
    pub listen: SocketAddr,
    /// Where history is stored (a redb file inside). Default: `./tidings-data`.
    pub data_dir: PathBuf,
    /// `redb` (on disk, survives restarts) or `memory`. Default: `redb`.
    pub storage: Storage,
    /// Key for both publishers' and subscribers' JWTs: an HS256 secret, PEM
    /// text, or `@path` to a PEM file. Default: none (development mode: a key
    /// is generated and kept in the data dir, and tokens are printed at start).
    pub jwt_key: Option<String>,
    /// Key for publishers' JWTs only; overrides `jwt-key` for them.
    pub publisher_jwt_key: Option<String>,
    /// Key for subscribers' JWTs only; overrides `jwt-key` for them.
    pub subscriber_jwt_key: Option<String>,
    /// `HS256`, `RS256` or `ES256`. Default: `HS256`.
    pub jwt_algorithm: String,
    /// Issuers (`iss`) whose Mercure draft-08 tokens (RFC 9068 `at+jwt`) are accepted. Default: none
    /// (draft-08 tokens are refused; draft-07 ones, with a `mercure` claim, work without it).
    pub jwt_issuer: Vec<String>,
    /// The audience (`aud`) draft-08 tokens must name. Default: the public URL.
    pub jwt_audience: Option<String>,
    /// Let subscribers without a token receive public updates. Default: true
    /// in development mode (no key set), false otherwise.
    pub anonymous: Option<bool>,
    /// Origins allowed by CORS, with credentials; `*` lets any other origin
    /// read without credentials. Default: none.
    pub cors_origins: Vec<String>,
    /// Origins allowed to publish with a cookie (CSRF guard). Default: none.
    pub publish_origins: Vec<String>,
    /// Name of the cookie carrying the JWT. Default: `mercureAuthorization`.
    pub cookie_name: String,
    /// Most updates kept in history. Default: 100 000.
    pub history_max_count: Option<u64>,
    /// Oldest update kept, e.g. `7d`. Default: no age limit.
    #[serde(with = "humantime_serde")]
    pub history_max_age: Option<Duration>,
    /// Most bytes of history kept. Default: 256 MiB.
    pub history_max_bytes: Option<u64>,
    /// Keep-alive comment interval on idle streams. Default: `15s`.
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// Largest publish request body in bytes. Default: 1 MiB.
    pub max_body: usize,
    /// Most topics in one publish or subscribe request. Default: 64.
    pub max_topics: usize,
    /// Most subscribers; more are answered 503. A few connections more (2 %,
    /// 8 to 256) stay open to publishes, health checks and the API, so that
    /// a hub full of subscribers still takes updates. Default: what the
    /// process's open-file limit allows, connections and reserve together
    /// ([`default_max_connections`](crate::default_max_connections); 19 680
    /// for a limit of 20 000).
    pub max_connections: usize,
    /// Most open connections from one client IP; more are answered 429.
    /// Default: 1 000.
    pub max_connections_per_ip: usize,
    /// The longest a publish waits for the log to accept it before it is
    /// answered 503 (and never stored afterwards). Default: `5s`.
    #[serde(with = "humantime_serde")]
    pub publish_timeout: Duration,
    /// The cluster: with `url` set, the log, the tail and presence are on
    /// Redis, and every node with the same URL and prefix is one hub.
    pub redis: RedisConfig,
    /// The cluster on NATS JetStream: with `servers` set, the log is a
    /// replicated JetStream stream, and every node with the same servers and
    /// stream is one hub. Not together with `[redis] url`.
    pub nats: NatsConfig,
    /// Time a client has to send its request headers. Default: `10s`.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// PEM file of the TLS certificate chain: with `tls-key`, the hub serves
    /// HTTPS, HTTP/2 and HTTP/1.1 by ALPN. Default: none (plain HTTP).
    pub tls_cert: Option<PathBuf>,
    /// PEM file of the certificate's private key.
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate for localhost made at start (for
    /// development; browsers warn about it). Default: false.
    pub tls_self_signed: bool,
    /// Serve `/metrics` on this address only (the Prometheus convention: a
    /// port of its own, kept off the public one). Default: none (`/metrics`
    /// on the main listener).
    pub metrics_listen: Option<SocketAddr>,
    /// Announce and list subscriptions (Mercure's subscription API).
    /// Default: false.
    pub subscriptions: bool,
    /// The hub's public URL, its Mercure endpoint as clients reach it (e.g.
    /// `https://hub.example.com/.well-known/mercure` behind a proxy): draft-08
    /// relative URL patterns and topics resolve against it. Default:
    /// `http://LISTEN/.well-known/mercure` (`https` with TLS).
    pub public_url: Option<String>,
    /// Publish a random value on `demo/random` every second. Default: false.
    pub demo: bool,
    /// `text` or `json` logs. Default: `text`.
    pub log_format: LogFormat,
}

/// The `[redis]` table: where the cluster's shared log is.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port/db`, or `rediss://` for TLS. Default:
    /// none (a single node with its own history).
    pub url: Option<String>,
    /// The name every key starts with; nodes with the same URL and prefix
    /// form one hub. Default: `tidings`.
    pub prefix: String,
    /// A node silent for this long is dead, and another node announces its
    /// subscriptions inactive. Default: `10s`.
    #[serde(with = "humantime_serde")]
    pub node_timeout: Duration,
    /// PEM file of the CA that signed Redis's certificate, trusted instead
    /// of the system's roots (`rediss://` only). Default: none.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain the node presents to Redis, with `key-file`:
    /// mutual TLS, which Redis asks for by default (`tls-auth-clients yes`).
    /// Default: none.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert-file`.
    pub key_file: Option<PathBuf>,
    /// Replicas that must hold each publish before it is answered (`WAIT N`
    /// after the write, bounded by `publish-timeout`); fewer in time answer
    /// 503 Unconfirmed. Default: 0 (answer once the primary has it).
    pub min_replicas: u32,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: None,
            prefix: "tidings".into(),
            node_timeout: Duration::from_secs(10),
            ca_file: None,
            cert_file: None,
            key_file: None,
            min_replicas: 0,
        }
    }
}

/// The `[nats]` table: the cluster's shared log on NATS JetStream.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct NatsConfig {
    /// Seed servers, `nats://host:port` or `tls://host:port`; the client
    /// learns the rest of the cluster from them. Default: none (no NATS).
    pub servers: Vec<String>,
    /// The JetStream stream that holds the log. Default: `tidings`.
    pub stream: String,
    /// Replicas of the stream: 3 survives the loss of any one server, 1 is
    /// for development. Default: 3.
    pub replicas: usize,
    /// A NATS credentials file (`.creds`). Default: none.
    pub creds: Option<PathBuf>,
    /// A file holding the token for servers that authenticate by token.
    /// Default: none.
    pub token_file: Option<PathBuf>,
    /// PEM file of the CA that signed the servers' certificates (`tls://`
    /// only). Default: none (the system's roots).
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain presented to the servers, with `key-file`
    /// (mutual TLS). Default: none.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert-file`.
    pub key_file: Option<PathBuf>,
    /// A node silent for this long is dead, and another node announces its
    /// subscriptions inactive. Default: `10s`.
    #[serde(with = "humantime_serde")]
    pub node_timeout: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            servers: Vec::new(),
            stream: "tidings".into(),
            replicas: 3,
            creds: None,
            token_file: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            node_timeout: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// Whether this node is one of a cluster (Redis or NATS).
    pub fn is_cluster(&self) -> bool {
        self.redis.url.is_some() || !self.nats.servers.is_empty()
    }
}

/// Where history lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Storage {
    /// A redb file in the data dir.
    Redb,
    /// Memory only: lost on exit.
    Memory,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            data_dir: PathBuf::from("./tidings-data"),
            storage: Storage::Redb,
            jwt_key: None,
            publisher_jwt_key: None,
            subscriber_jwt_key: None,
            jwt_algorithm: "HS256".into(),
            jwt_issuer: Vec::new(),
            jwt_audience: None,
            anonymous: None,
            cors_origins: Vec::new(),
            publish_origins: Vec::new(),
            cookie_name: "mercureAuthorization".into(),
            history_max_count: Some(100_000),
            history_max_age: None,
            history_max_bytes: Some(256 << 20),
            keep_alive: Duration::from_secs(15),
            max_body: 1 << 20,
            max_topics: 64,
            max_connections: crate::limits::default_max_connections(),
            max_connections_per_ip: 1_000,
            header_read_timeout: Duration::from_secs(10),
            publish_timeout: Duration::from_secs(5),
            redis: RedisConfig::default(),
            nats: NatsConfig::default(),
            tls_cert: None,
            tls_key: None,
            tls_self_signed: false,
            metrics_listen: None,
            subscriptions: false,
            public_url: None,
            demo: false,
            log_format: LogFormat::Text,
        }
    }
}

impl std::str::FromStr for Storage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "redb" => Ok(Storage::Redb),
            "memory" => Ok(Storage::Memory),
            other => Err(format!("unknown storage {other:?}: use redb or memory")),
        }
    }
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?}: use text or json")),
        }
    }
}

impl Config {
    /// Reads a TOML file; keys it leaves out keep their defaults.
    ///
    /// # Errors
    /// A message naming the file and, for bad content, the key and line.
    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        Config::from_toml(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }

    /// Parses TOML text.
    ///
    /// # Errors
    /// The parser's message, which names the key and line.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Whether the hub serves HTTPS.
    pub fn uses_tls(&self) -> bool {
        self.tls_self_signed || self.tls_cert.is_some()
    }

    /// Whether no key was configured: the hub then generates one and runs in
    /// development mode.
    pub fn is_development(&self) -> bool {
        self.jwt_key.is_none()
            && self.publisher_jwt_key.is_none()
            && self.subscriber_jwt_key.is_none()
    }

    /// The hub's public URL: `public-url`, else the listen address's.
    ///
    /// # Errors
    /// When `public-url` is not an absolute http(s) URL.
    pub fn public_url(&self) -> Result<url::Url, String> {
        let text = match &self.public_url {
            Some(text) => text.clone(),
            None => {
                let scheme = if self.uses_tls() { "https" } else { "http" };
                format!("{scheme}://{}/.well-known/mercure", self.listen)
            }
        };
        let url = url::Url::parse(&text)
            .map_err(|e| format!("public-url {text:?} is not a URL ({e}): give the hub's endpoint as clients reach it, like https://hub.example.com/.well-known/mercure"))?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(format!(
                "public-url {text:?} must be an http or https URL, like https://hub.example.com/.well-known/mercure"
            ));
        }
        Ok(url)
    }

    /// Whether anonymous subscribers are allowed, after the default rule.
    pub fn allows_anonymous(&self) -> bool {
        self.anonymous.unwrap_or_else(|| self.is_development())
    }

    /// Checks what each setting alone cannot: a cluster needs one key shared
    /// by every node (a generated development key differs on each node, so
    /// a token from one would be refused by the others), and a prefix that
    /// keeps its keys under one hash tag.
    ///
    /// # Errors
    /// A message naming the setting and what to do.
    pub fn check(&self) -> Result<(), String> {
        self.public_url()?;
        let redis_wanted = self.redis.url.is_some();
        if redis_wanted && !self.nats.servers.is_empty() {
            return Err("redis and nats are two cluster engines: give one of them (--redis or --nats), not both".into());
        }
        if self.is_cluster() && self.is_development() {
            return Err("a cluster (redis or nats) needs one JWT key shared by every node: set jwt-key (or publisher-jwt-key and subscriber-jwt-key), the same on each node".into());
        }
        if !self.nats.servers.is_empty() {
            // The URLs, the stream name, the replicas and which files need
            // tls:// are the hub's to check (NatsLog::new, before anything
            // connects); here only what the options cannot say.
            let nats = &self.nats;
            if nats.node_timeout < Duration::from_secs(1) {
                return Err("nats node-timeout must be at least 1s".into());
            }
            if nats.cert_file.is_some() != nats.key_file.is_some() {
                return Err("nats cert-file and key-file go together (the client certificate and its private key, PEM): set both or neither".into());
            }
        }
        if redis_wanted {
            let prefix = &self.redis.prefix;
            if prefix.is_empty()
                || prefix.contains(['{', '}'])
                || prefix.chars().any(char::is_whitespace)
            {
                return Err(format!(
                    "redis prefix {prefix:?} is unusable: give a name without braces or spaces, like \"tidings\""
                ));
            }
        }
        let durations = [
            (
                "keep-alive",
                self.keep_alive,
                "how often idle streams get a comment",
            ),
            (
                "publish-timeout",
                self.publish_timeout,
                "how long a publish may wait for the log",
            ),
            (
                "header-read-timeout",
                self.header_read_timeout,
                "how long a client may take to send its request head",
            ),
        ];
        for (key, value, what) in durations {
            if value.is_zero() {
                return Err(format!("{key} must be longer than 0s ({what})"));
            }
        }
        if self.history_max_age.is_some_and(|age| age.is_zero()) {
            return Err(
                "history-max-age must be longer than 0s, or left out for no age limit".into(),
            );
        }
        let sizes = [
            (
                "max-body",
                self.max_body as u64,
                "the largest publish body, in bytes",
            ),
            (
                "max-topics",
                self.max_topics as u64,
                "the most topics per request",
            ),
            (
                "max-connections",
                self.max_connections as u64,
                "the most open connections",
            ),
            (
                "max-connections-per-ip",
                self.max_connections_per_ip as u64,
                "the most open connections per client IP",
            ),
            (
                "history-max-count",
                self.history_max_count.unwrap_or(1),
                "the most updates kept, or left out for no count limit",
            ),
            (
                "history-max-bytes",
                self.history_max_bytes.unwrap_or(1),
                "the most bytes of history kept, or left out for no size limit",
            ),
        ];
        for (key, value, what) in sizes {
            if value == 0 {
                return Err(format!("{key} must be at least 1 ({what})"));
            }
        }
        match (&self.tls_cert, &self.tls_key, self.tls_self_signed) {
            (Some(_), None, _) => {
                return Err("tls-cert needs tls-key (the certificate's private key, PEM)".into());
            }
            (None, Some(_), _) => {
                return Err("tls-key needs tls-cert (the certificate chain, PEM)".into());
            }
            (Some(_), Some(_), true) => {
                return Err("tls-self-signed makes its own certificate: leave out tls-cert and tls-key, or tls-self-signed".into());
            }
            _ => {}
        }
        if self.redis.node_timeout < Duration::from_secs(1) {
            return Err("redis node-timeout must be at least 1s".into());
        }
        let redis = &self.redis;
        let tls_files =
            redis.ca_file.is_some() || redis.cert_file.is_some() || redis.key_file.is_some();
        if tls_files
            && !redis
                .url
                .as_deref()
                .is_some_and(|url| url.starts_with("rediss://"))
        {
            return Err(
                "redis ca-file, cert-file and key-file are for TLS to Redis: give a rediss:// url"
                    .into(),
            );
        }
        if redis.cert_file.is_some() != redis.key_file.is_some() {
            return Err("redis cert-file and key-file go together (the client certificate and its private key, PEM): set both or neither".into());
        }
        Ok(())
    }

    /// The history retention these settings ask for.
    pub fn retention(&self) -> tidings_hub::Retention {
        tidings_hub::Retention {
            max_count: self.history_max_count,
            max_age: self.history_max_age,
            max_bytes: self.history_max_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses_and_lists_every_key() {
        let text = include_str!("../../../tidings.example.toml");
        let parsed = Config::from_toml(text).expect("tidings.example.toml must parse");
        // Every key of the struct appears in the example, commented or not.
        let defaults = toml::to_string(&DefaultsView::from(&Config::default())).unwrap();
        for line in defaults.lines().filter(|l| !l.trim().is_empty()) {
            if line.starts_with('[') {
                assert!(text.contains(line), "tidings.example.toml lacks {line}");
                continue;
            }
            let key = line.split(" =").next().unwrap();
            assert!(
                text.contains(&format!("{key} =")),
                "tidings.example.toml lacks {key}"
            );
        }
        assert_eq!(parsed.listen, Config::default().listen);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_naming_them() {
        let error = Config::from_toml("listn = \"0.0.0.0:1\"").unwrap_err();
        assert!(error.contains("listn"), "{error}");
        let error = Config::from_toml("keep-alive = \"soon\"").unwrap_err();
        assert!(error.contains("keep-alive"), "{error}");
        let error = Config::from_toml("storage = \"tape\"").unwrap_err();
        assert!(error.contains("storage"), "{error}");
    }

    #[test]
    fn the_redis_table_and_what_a_cluster_needs() {
        let config = Config::from_toml(
            "jwt-key = \"k\"\n[redis]\nurl = \"redis://10.0.0.5:6379/1\"\nprefix = \"shop\"\nnode-timeout = \"4s\"\n",
        )
        .unwrap();
        assert_eq!(config.redis.url.as_deref(), Some("redis://10.0.0.5:6379/1"));
        assert_eq!(config.redis.prefix, "shop");
        assert_eq!(config.redis.node_timeout, Duration::from_secs(4));
        assert!(config.check().is_ok());
        let error = Config::from_toml("[redis]\nurl = \"redis://h/0\"\n")
            .unwrap()
            .check()
            .unwrap_err();
        assert!(error.contains("jwt-key"), "{error}");
        let error = Config::from_toml(
            "jwt-key = \"k\"\n[redis]\nurl = \"redis://h/0\"\nprefix = \"a{b}\"\n",
        )
        .unwrap()
        .check()
        .unwrap_err();
        assert!(error.contains("prefix"), "{error}");
        let error = Config::from_toml("[redis]\nulr = \"redis://h/0\"\n").unwrap_err();
        assert!(error.contains("ulr"), "{error}");
    }

    #[test]
    fn redis_tls_files_need_rediss_and_a_cert_goes_with_its_key() {
        let check = |redis: &str| {
            Config::from_toml(&format!("jwt-key = \"k\"\n[redis]\n{redis}"))
                .unwrap()
                .check()
        };
        let ok = check(
            "url = \"rediss://h/0\"\nca-file = \"ca.pem\"\ncert-file = \"c.pem\"\nkey-file = \"k.pem\"\n",
        );
        assert!(ok.is_ok(), "{ok:?}");
        for (redis, says) in [
            ("url = \"redis://h/0\"\nca-file = \"ca.pem\"\n", "rediss://"),
            ("ca-file = \"ca.pem\"\n", "rediss://"),
            (
                "url = \"rediss://h/0\"\ncert-file = \"c.pem\"\n",
                "go together",
            ),
            (
                "url = \"rediss://h/0\"\nkey-file = \"k.pem\"\n",
                "go together",
            ),
        ] {
            let error = check(redis).unwrap_err();
            assert!(error.contains(says), "{redis}: {error}");
        }
    }

    #[test]
    fn regression_zero_durations_and_sizes_are_refused_naming_the_key() {
        for (toml, key) in [
            ("keep-alive = \"0s\"", "keep-alive"),
            ("publish-timeout = \"0s\"", "publish-timeout"),
            ("header-read-timeout = \"0s\"", "header-read-timeout"),
            ("history-max-age = \"0s\"", "history-max-age"),
            ("max-body = 0", "max-body"),
            ("max-topics = 0", "max-topics"),
            ("max-connections = 0", "max-connections"),
            ("max-connections-per-ip = 0", "max-connections-per-ip"),
            ("history-max-count = 0", "history-max-count"),
            ("history-max-bytes = 0", "history-max-bytes"),
        ] {
            let error = Config::from_toml(toml).unwrap().check().unwrap_err();
            assert!(error.starts_with(key), "{toml}: {error}");
        }
        assert!(Config::default().check().is_ok());
    }

    #[test]
    fn durations_and_lists() {
        let config = Config::from_toml(
            "keep-alive = \"2s\"\nhistory-max-age = \"7d\"\ncors-origins = [\"https://a.example\"]\nanonymous = false\n",
        )
        .unwrap();
        assert_eq!(config.keep_alive, Duration::from_secs(2));
        assert_eq!(
            config.history_max_age,
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(config.cors_origins, ["https://a.example"]);
        assert!(!config.allows_anonymous());
    }

    /// Serializes the key names of [`Config`], so the example-file test
    /// notices a new setting that the example forgot.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "kebab-case")]
    struct DefaultsView {
        listen: String,
        data_dir: String,
        storage: String,
        jwt_key: String,
        publisher_jwt_key: String,
        subscriber_jwt_key: String,
        jwt_algorithm: String,
        jwt_issuer: Vec<String>,
        jwt_audience: String,
        anonymous: bool,
        cors_origins: Vec<String>,
        publish_origins: Vec<String>,
        cookie_name: String,
        history_max_count: u64,
        history_max_age: String,
        history_max_bytes: u64,
        keep_alive: String,
        max_body: usize,
        max_topics: usize,
        max_connections: usize,
        max_connections_per_ip: usize,
        header_read_timeout: String,
        publish_timeout: String,
        redis: RedisView,
        nats: NatsView,
        tls_cert: String,
        tls_key: String,
        tls_self_signed: bool,
        metrics_listen: String,
        subscriptions: bool,
        public_url: String,
        demo: bool,
        log_format: String,
    }

    /// The `[redis]` table's keys.
    #[derive(serde::Serialize, Default)]
    #[serde(rename_all = "kebab-case")]
    struct RedisView {
        url: String,
        prefix: String,
        node_timeout: String,
        min_replicas: u32,
    }

    /// The `[nats]` table's keys.
    #[derive(serde::Serialize, Default)]
    #[serde(rename_all = "kebab-case")]
    struct NatsView {
        servers: Vec<String>,
        stream: String,
        replicas: usize,
        creds: String,
        token_file: String,
        ca_file: String,
        cert_file: String,
        key_file: String,
        node_timeout: String,
    }

    impl From<&Config> for DefaultsView {
        fn from(c: &Config) -> Self {
            // Exhaustive destructuring: adding a field to Config breaks this
            // until the view (and so the example check) knows it.
            let Config {
                listen: _,
                data_dir: _,
                storage: _,
                jwt_key: _,
                publisher_jwt_key: _,
                subscriber_jwt_key: _,
                jwt_algorithm: _,
                jwt_issuer: _,
                jwt_audience: _,
                anonymous: _,
                cors_origins: _,
                publish_origins: _,
                cookie_name: _,
                history_max_count: _,
                history_max_age: _,
                history_max_bytes: _,
                keep_alive: _,
                max_body: _,
                max_topics: _,
                max_connections: _,
                max_connections_per_ip: _,
                header_read_timeout: _,
                publish_timeout: _,
                redis: _,
                nats: _,
                tls_cert: _,
                tls_key: _,
                tls_self_signed: _,
                metrics_listen: _,
                subscriptions: _,
                public_url: _,
                demo: _,
                log_format: _,
            } = c;
            DefaultsView {
                listen: String::new(),
                data_dir: String::new(),
                storage: String::new(),
                jwt_key: String::new(),
                publisher_jwt_key: String::new(),
                subscriber_jwt_key: String::new(),
                jwt_algorithm: String::new(),
                jwt_issuer: Vec::new(),
                jwt_audience: String::new(),
                anonymous: false,
                cors_origins: Vec::new(),
                publish_origins: Vec::new(),
                cookie_name: String::new(),
                history_max_count: 0,
                history_max_age: String::new(),
                history_max_bytes: 0,
                keep_alive: String::new(),
                max_body: 0,
                max_topics: 0,
                max_connections: 0,
                max_connections_per_ip: 0,
                header_read_timeout: String::new(),
                publish_timeout: String::new(),
                redis: RedisView::default(),
                nats: NatsView::default(),
                tls_cert: String::new(),
                tls_key: String::new(),
                tls_self_signed: false,
                metrics_listen: String::new(),
                subscriptions: false,
                public_url: String::new(),
                demo: false,
                log_format: String::new(),
            }
        }
    }
}
