//! `tidings serve`: run the hub.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tidings_server::{Config, LogFormat, Server, Storage};

/// Run the hub. With no options: http://127.0.0.1:3000, history in
/// ./tidings-data, anonymous subscribers allowed, and (development mode) a
/// generated key with ready-to-use tokens printed at start.
///
/// Every option can also come from a TOML file (--config) and from an
/// environment variable (shown below); a flag wins over the variable, which
/// wins over the file.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// TOML configuration file (see tidings.example.toml).
    #[arg(long, env = "TIDINGS_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:3000].
    #[arg(long, env = "TIDINGS_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory for history [default: ./tidings-data].
    #[arg(long, env = "TIDINGS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// redb (on disk) or memory [default: redb].
    #[arg(long, env = "TIDINGS_STORAGE")]
    storage: Option<Storage>,
    /// JWT key for publishers and subscribers: secret, PEM, or @file.
    #[arg(long, env = "TIDINGS_JWT_KEY", hide_env_values = true)]
    jwt_key: Option<String>,
    /// JWT key for publishers only.
    #[arg(long, env = "TIDINGS_PUBLISHER_JWT_KEY", hide_env_values = true)]
    publisher_jwt_key: Option<String>,
    /// JWT key for subscribers only.
    #[arg(long, env = "TIDINGS_SUBSCRIBER_JWT_KEY", hide_env_values = true)]
    subscriber_jwt_key: Option<String>,
    /// HS256, RS256 or ES256 [default: HS256].
    #[arg(long, env = "TIDINGS_JWT_ALGORITHM")]
    jwt_algorithm: Option<String>,
    /// Allow subscribers without a token [default: on in development mode].
    #[arg(long, env = "TIDINGS_ANONYMOUS", num_args = 0..=1, default_missing_value = "true")]
    anonymous: Option<bool>,
    /// An issuer (iss) whose Mercure draft-08 tokens (at+jwt) are accepted;
    /// repeat for several [default: none: draft-08 tokens are refused].
    #[arg(
        long,
        env = "TIDINGS_JWT_ISSUER",
        value_name = "ISS",
        value_delimiter = ','
    )]
    jwt_issuer: Vec<String>,
    /// The audience (aud) draft-08 tokens must name [default: the public URL].
    #[arg(long, env = "TIDINGS_JWT_AUDIENCE", value_name = "AUD")]
    jwt_audience: Option<String>,
    /// Origins allowed by CORS, comma-separated (* for any).
    #[arg(long, env = "TIDINGS_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Origins allowed to publish with a cookie, comma-separated.
    #[arg(long, env = "TIDINGS_PUBLISH_ORIGINS", value_delimiter = ',')]
    publish_origins: Vec<String>,
    /// Cookie carrying the JWT [default: mercureAuthorization].
    #[arg(long, env = "TIDINGS_COOKIE_NAME")]
    cookie_name: Option<String>,
    /// Most updates kept in history [default: 100000].
    #[arg(long, env = "TIDINGS_HISTORY_MAX_COUNT")]
    history_max_count: Option<u64>,
    /// Oldest update kept, e.g. 7d [default: no limit].
    #[arg(long, env = "TIDINGS_HISTORY_MAX_AGE", value_parser = humantime::parse_duration)]
    history_max_age: Option<Duration>,
    /// Most bytes of history kept [default: 268435456].
    #[arg(long, env = "TIDINGS_HISTORY_MAX_BYTES")]
    history_max_bytes: Option<u64>,
    /// Keep-alive interval on idle streams, e.g. 15s [default: 15s].
    #[arg(long, env = "TIDINGS_KEEP_ALIVE", value_parser = humantime::parse_duration)]
    keep_alive: Option<Duration>,
    /// Largest publish body in bytes [default: 1048576].
    #[arg(long, env = "TIDINGS_MAX_BODY")]
    max_body: Option<usize>,
    /// Most topics per request [default: 64].
    #[arg(long, env = "TIDINGS_MAX_TOPICS")]
    max_topics: Option<usize>,
    /// Most subscribers; a reserve of 2 % more connections stays open to
    /// publishes [default: what the open-file limit allows, e.g. 19680 for
    /// 20000].
    #[arg(long, env = "TIDINGS_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Most open connections per client IP [default: 1000].
    #[arg(long, env = "TIDINGS_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<usize>,
    /// Time allowed to send request headers, e.g. 10s [default: 10s].
    #[arg(long, env = "TIDINGS_HEADER_READ_TIMEOUT", value_parser = humantime::parse_duration)]
    header_read_timeout: Option<Duration>,
    /// Longest a publish waits for the log, e.g. 5s; then 503 [default: 5s].
    #[arg(long, env = "TIDINGS_PUBLISH_TIMEOUT", value_parser = humantime::parse_duration)]
    publish_timeout: Option<Duration>,
    /// Run as one node of a cluster whose log is on this Redis:
    /// redis://host:port/db (redis://:PASSWORD@host:port/db with a password),
    /// or rediss:// for TLS [default: none].
    #[arg(
        long,
        env = "TIDINGS_REDIS",
        hide_env_values = true,
        value_name = "URL"
    )]
    redis: Option<String>,
    /// Name every Redis key starts with; nodes with the same --redis and
    /// prefix form one hub [default: tidings].
    #[arg(long, env = "TIDINGS_REDIS_PREFIX", value_name = "NAME")]
    redis_prefix: Option<String>,
    /// A node silent this long is dead; another announces its subscriptions
    /// inactive [default: 10s].
    #[arg(long, env = "TIDINGS_REDIS_NODE_TIMEOUT", value_parser = humantime::parse_duration)]
    redis_node_timeout: Option<Duration>,
    /// PEM file of the CA that signed Redis's certificate, trusted instead
    /// of the system's roots (rediss:// only) [default: the system's].
    #[arg(long, env = "TIDINGS_REDIS_CA_FILE", value_name = "FILE")]
    redis_ca_file: Option<PathBuf>,
    /// PEM certificate chain to present to Redis, with --redis-key-file:
    /// mutual TLS, which Redis asks for by default (tls-auth-clients yes).
    #[arg(long, env = "TIDINGS_REDIS_CERT_FILE", value_name = "FILE")]
    redis_cert_file: Option<PathBuf>,
    /// PEM private key of --redis-cert-file.
    #[arg(long, env = "TIDINGS_REDIS_KEY_FILE", value_name = "FILE")]
    redis_key_file: Option<PathBuf>,
    /// Replicas that must hold a publish before it is answered (WAIT N,
    /// bounded by --publish-timeout; fewer answer 503 Unconfirmed)
    /// [default: 0].
    #[arg(long, env = "TIDINGS_REDIS_MIN_REPLICAS", value_name = "N")]
    redis_min_replicas: Option<u32>,
    /// Run as one node of a cluster whose log is a JetStream stream on these
    /// NATS servers (nats://host:port or tls://host:port, comma-separated;
    /// nats://user:password@… or nats://token@… with credentials)
    /// [default: none].
    #[arg(
        long,
        env = "TIDINGS_NATS",
        hide_env_values = true,
        value_delimiter = ',',
        value_name = "URL"
    )]
    nats: Vec<String>,
    /// The JetStream stream holding the log; nodes with the same --nats and
    /// stream form one hub [default: tidings].
    #[arg(long, env = "TIDINGS_NATS_STREAM", value_name = "NAME")]
    nats_stream: Option<String>,
    /// Replicas of the stream: 3 survives the loss of any one server, 1 is
    /// for development [default: 3].
    #[arg(long, env = "TIDINGS_NATS_REPLICAS", value_name = "N")]
    nats_replicas: Option<usize>,
    /// NATS credentials file (.creds: a user JWT and its nkey seed)
    /// [default: none].
    #[arg(long, env = "TIDINGS_NATS_CREDS", value_name = "FILE")]
    nats_creds: Option<PathBuf>,
    /// File holding a NATS token [default: none].
    #[arg(long, env = "TIDINGS_NATS_TOKEN_FILE", value_name = "FILE")]
    nats_token_file: Option<PathBuf>,
    /// PEM file of the CA that signed the NATS servers' certificates
    /// (tls:// only) [default: the system's].
    #[arg(long, env = "TIDINGS_NATS_CA_FILE", value_name = "FILE")]
    nats_ca_file: Option<PathBuf>,
    /// PEM certificate chain to present to NATS, with --nats-key-file.
    #[arg(long, env = "TIDINGS_NATS_CERT_FILE", value_name = "FILE")]
    nats_cert_file: Option<PathBuf>,
    /// PEM private key of --nats-cert-file.
    #[arg(long, env = "TIDINGS_NATS_KEY_FILE", value_name = "FILE")]
    nats_key_file: Option<PathBuf>,
    /// A node silent this long is dead; another announces its subscriptions
    /// inactive [default: 10s].
    #[arg(long, env = "TIDINGS_NATS_NODE_TIMEOUT", value_parser = humantime::parse_duration)]
    nats_node_timeout: Option<Duration>,
    /// PEM certificate chain: serve HTTPS with HTTP/2 and HTTP/1.1 (by
    /// ALPN); reloaded on SIGHUP [default: plain HTTP].
    #[arg(long, env = "TIDINGS_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "TIDINGS_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate for localhost made at start, for
    /// development only [default: off].
    #[arg(long, env = "TIDINGS_TLS_SELF_SIGNED", num_args = 0..=1, default_missing_value = "true")]
    tls_self_signed: Option<bool>,
    /// Serve /metrics on this address only, off the public listener
    /// [default: /metrics on the main listener].
    #[arg(long, env = "TIDINGS_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// The hub's endpoint as clients reach it, e.g.
    /// https://hub.example.com/.well-known/mercure behind a proxy: draft-08
    /// relative URL patterns and topics resolve against it [default: the
    /// listening address's http(s)://ADDR/.well-known/mercure].
    #[arg(long, env = "TIDINGS_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Mercure's subscription API (presence) [default: off].
    #[arg(long, env = "TIDINGS_SUBSCRIPTIONS", num_args = 0..=1, default_missing_value = "true")]
    subscriptions: Option<bool>,
    /// Publish a random value on demo/random every second [default: off].
    #[arg(long, env = "TIDINGS_DEMO", num_args = 0..=1, default_missing_value = "true")]
    demo: Option<bool>,
    /// text or json [default: text].
    #[arg(long, env = "TIDINGS_LOG_FORMAT")]
    log_format: Option<LogFormat>,
}

impl Args {
    /// Defaults, then the file, then what the environment and flags set.
    fn into_config(self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(path) => Config::from_file(path).map_err(anyhow::Error::msg)?,
            None => Config::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { c.$field = v; } )* };
        }
        macro_rules! set_some {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { c.$field = Some(v); } )* };
        }
        set!(
            listen,
            data_dir,
            storage,
            jwt_algorithm,
            cookie_name,
            keep_alive,
            max_body,
            max_topics
        );
        set!(
            max_connections,
            max_connections_per_ip,
            header_read_timeout,
            publish_timeout,
            subscriptions,
            demo,
            log_format
        );
        set_some!(jwt_key, publisher_jwt_key, subscriber_jwt_key, anonymous);
        set_some!(history_max_count, history_max_age, history_max_bytes);
        set_some!(metrics_listen, tls_cert, tls_key, public_url);
        set!(tls_self_signed);
        if let Some(prefix) = self.redis_prefix {
            c.redis.prefix = prefix;
        }
        if let Some(timeout) = self.redis_node_timeout {
            c.redis.node_timeout = timeout;
        }
        // The [redis] table's optional keys, from flags named redis-….
        macro_rules! set_some_redis {
            ($($flag:ident => $field:ident),*) => { $( if let Some(v) = self.$flag { c.redis.$field = Some(v); } )* };
        }
        set_some_redis!(
            redis => url,
            redis_ca_file => ca_file,
            redis_cert_file => cert_file,
            redis_key_file => key_file
        );
        if let Some(n) = self.redis_min_replicas {
            c.redis.min_replicas = n;
        }
        if !self.nats.is_empty() {
            c.nats.servers = self.nats;
        }
        if let Some(stream) = self.nats_stream {
            c.nats.stream = stream;
        }
        if let Some(n) = self.nats_replicas {
            c.nats.replicas = n;
        }
        if let Some(timeout) = self.nats_node_timeout {
            c.nats.node_timeout = timeout;
        }
        // The [nats] table's optional keys, from flags named nats-….
        macro_rules! set_some_nats {
            ($($flag:ident => $field:ident),*) => { $( if let Some(v) = self.$flag { c.nats.$field = Some(v); } )* };
        }
        set_some_nats!(
            nats_creds => creds,
            nats_token_file => token_file,
            nats_ca_file => ca_file,
            nats_cert_file => cert_file,
            nats_key_file => key_file
        );
        if !self.jwt_issuer.is_empty() {
            c.jwt_issuer = self.jwt_issuer;
        }
        if let Some(audience) = self.jwt_audience {
            c.jwt_audience = Some(audience);
        }
        if !self.cors_origins.is_empty() {
            c.cors_origins = self.cors_origins;
        }
        if !self.publish_origins.is_empty() {
            c.publish_origins = self.publish_origins;
        }
        Ok(c)
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Before the configuration: the default subscriber limit follows it.
    tidings_server::raise_open_file_limit();
    let config = args.into_config()?;
    // Before binding: a bad setting is named even when the address is taken,
    // and a refused start never holds the port.
    config.check().map_err(anyhow::Error::msg)?;
    // Held to the end, so that what is logged before exit is written.
    let _log_writer = init_tracing(config.log_format);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(mut config: Config) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    // The default public URL names the port bound, not port 0.
    config.listen = address;
    let data_dir = config.data_dir.clone();
    let history = if config.nats.servers.is_empty() {
        match &config.redis.url {
            Some(url) => History::Redis {
                url: tidings_hub::RedisOptions::redacted(url),
                prefix: config.redis.prefix.clone(),
            },
            None => History::Local(config.storage),
        }
    } else {
        History::Nats {
            servers: tidings_hub::NatsOptions::redacted_list(&config.nats.servers),
            stream: config.nats.stream.clone(),
            replicas: config.nats.replicas,
        }
    };
    let anonymous = config.allows_anonymous();
    let max_subscribers = config.max_connections;
    let context = match &history {
        History::Redis { url, .. } => format!("cannot start the hub (Redis {url})"),
        History::Nats { servers, .. } => format!("cannot start the hub (NATS {servers})"),
        History::Local(_) => format!("cannot start the hub (data dir {})", data_dir.display()),
    };
    let metrics = match config.metrics_listen {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} (metrics-listen)"))?,
        ),
        None => None,
    };
    let metrics_address = metrics.as_ref().map(|l| l.local_addr()).transpose()?;
    let mut server = Server::new(config).context(context)?;
    if let Some(listener) = metrics {
        server = server.with_metrics_listener(listener);
    }
    if let Some(fingerprint) = server.tls_fingerprint() {
        tracing::warn!(%fingerprint, "serving HTTPS with a self-signed certificate made at start: for development only");
    }
    if let Some(reloader) = server.tls_reloader() {
        tokio::spawn(reload_on_sighup(reloader));
    }
    print_banner(
        &server,
        address,
        &data_dir,
        &history,
        anonymous,
        max_subscribers,
    )?;
    if let Some(address) = metrics_address {
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "  metrics:   http://{address}/metrics");
    }
    // On stderr too, whatever the log level and format: an operator must see
    // these at start (they are also logged).
    {
        use std::io::Write;
        let mut err = std::io::stderr().lock();
        for warning in server.warnings() {
            let _ = writeln!(err, "WARNING: {warning}");
        }
    }
    server.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Where this node's history is, for the banner.
enum History {
    Local(Storage),
    Redis {
        url: String,
        prefix: String,
    },
    Nats {
        servers: String,
        stream: String,
        replicas: usize,
    },
}

fn print_banner(
    server: &Server,
    address: SocketAddr,
    data_dir: &std::path::Path,
    history: &History,
    anonymous: bool,
    max_subscribers: usize,
) -> anyhow::Result<()> {
    // The banner is a courtesy: if stdout is closed (`| head -1`), the hub
    // must keep running, so write errors are ignored rather than panicking as
    // println! would.
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    macro_rules! say {
        ($out:expr, $($arg:tt)*) => {{ let _ = writeln!($out, $($arg)*); }};
    }
    let url = if server.uses_tls() {
        format!("https://{address}")
    } else {
        format!("http://{address}")
    };
    say!(out, "Tidings hub listening on {url}");
    if let Some(fingerprint) = server.tls_fingerprint() {
        say!(out, "");
        say!(
            out,
            "SELF-SIGNED CERTIFICATE for localhost, made at start: for development only."
        );
        say!(
            out,
            "Browsers warn about it; accept it only if it shows this SHA-256 fingerprint:"
        );
        say!(out, "  {fingerprint}");
        say!(out, "");
    }
    say!(out, "  page:      {url}/");
    // curl -k: a self-signed certificate is trusted by no one.
    let insecure = if server.tls_fingerprint().is_some() {
        "k"
    } else {
        ""
    };
    say!(
        out,
        "  subscribe: curl -{insecure}N '{url}/.well-known/mercure?topic=demo'"
    );
    let storage = match history {
        History::Local(Storage::Redb) => {
            say!(
                out,
                "  history:   {} (redb)",
                data_dir.join("history.redb").display()
            );
            Storage::Redb
        }
        History::Local(Storage::Memory) => {
            say!(out, "  history:   in memory (lost on exit)");
            Storage::Memory
        }
        History::Redis { url, prefix } => {
            say!(
                out,
                "  cluster:   log on Redis {url}, keys {{{prefix}}}:*, this node {}",
                server.node().unwrap_or("?")
            );
            say!(
                out,
                "  ready:     {address}/readyz answers 200 once this node has reached Redis"
            );
            Storage::Memory
        }
        History::Nats {
            servers,
            stream,
            replicas,
        } => {
            say!(
                out,
                "  cluster:   log on NATS JetStream {servers}, stream {stream} (R{replicas}), this node {}",
                server.node().unwrap_or("?")
            );
            say!(
                out,
                "  ready:     {address}/readyz answers 200 once the stream has a quorum"
            );
            Storage::Memory
        }
    };
    say!(
        out,
        "  anonymous subscribers: {}",
        if anonymous { "allowed" } else { "refused" }
    );
    let files = tidings_server::open_file_limit();
    say!(
        out,
        "  subscribers: at most {max_subscribers}{}",
        files.map_or(String::new(), |f| format!(" (open-file limit {f})"))
    );
    let day = Duration::from_secs(24 * 3600);
    if let (Some(publisher), Some(subscriber)) = (
        server.development_token(true, day),
        server.development_token(false, day),
    ) {
        say!(out, "");
        say!(
            out,
            "DEVELOPMENT MODE: no JWT key is configured, so the hub generated one"
        );
        if storage == Storage::Redb {
            say!(
                out,
                "(kept in {}). Set --jwt-key for production.",
                data_dir.join("development-jwt-key").display()
            );
        } else {
            say!(out, "(for this run only). Set --jwt-key for production.");
        }
        say!(out, "  publisher token (24 h):  {publisher}");
        say!(out, "  subscriber token (24 h): {subscriber}");
        say!(
            out,
            "  publish:   curl -{insecure}d topic=demo -d data=hello -H 'Authorization: Bearer {publisher}' {url}/.well-known/mercure"
        );
    }
    let _ = out.flush();
    Ok(())
}

/// Logs to stderr from a thread of its own: a write to a slow terminal or a
/// full pipe must not stall the runtime's workers, which serve every
/// connection. Lines beyond the writer's buffer (128 000) are dropped and
/// counted, rather than blocking a worker.
fn init_tracing(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .thread_name("tidings-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    guard
}

/// Reads the certificate files again on every SIGHUP; open connections keep
/// theirs, and a certificate that cannot be read leaves the old one in use.
async fn reload_on_sighup(reloader: tidings_server::TlsReloader) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; certificates are not reloaded");
        return;
    };
    while hangups.recv().await.is_some() {
        match reloader.reload() {
            Ok(true) => tracing::info!("TLS certificate reloaded (SIGHUP)"),
            Ok(false) => tracing::info!("SIGHUP: a self-signed certificate has no files to reload"),
            Err(error) => {
                tracing::error!(%error, "SIGHUP: cannot reload the TLS certificate; the old one stays")
            }
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the hub");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("signal received");
}
