//! `tidings publish`: publish an update to a Mercure hub.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tidings_server::{Algorithm, KeyMaterial, MintClaims};

/// Publish an update to a Mercure hub (Tidings or any other) and print its id.
///
/// Example:
///   tidings publish http://127.0.0.1:3000/.well-known/mercure --topic demo --data hello --token "$TOKEN"
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The hub URL, e.g. http://127.0.0.1:3000/.well-known/mercure.
    url: String,
    /// A topic (repeatable; the first is canonical, the others alternates).
    #[arg(long, required = true)]
    topic: Vec<String>,
    /// The update's data.
    #[arg(
        long,
        conflicts_with = "data_file",
        required_unless_present = "data_file"
    )]
    data: Option<String>,
    /// Read the data from this file (- for standard input).
    #[arg(long)]
    data_file: Option<PathBuf>,
    /// The update's id (the hub generates one otherwise).
    #[arg(long)]
    id: Option<String>,
    /// The SSE event type.
    #[arg(long = "type")]
    event_type: Option<String>,
    /// Only authorized subscribers receive it.
    #[arg(long)]
    private: bool,
    /// Reconnection delay for clients, in milliseconds.
    #[arg(long)]
    retry: Option<u64>,
    /// A publisher JWT.
    #[arg(
        long,
        env = "TIDINGS_TOKEN",
        hide_env_values = true,
        conflicts_with = "jwt_key"
    )]
    token: Option<String>,
    /// Mint a one-minute token for these topics with this key instead (HS256 secret, or @file).
    #[arg(long, hide_env_values = true)]
    jwt_key: Option<String>,
    /// Algorithm for --jwt-key.
    #[arg(long, default_value = "HS256")]
    alg: String,
    #[command(flatten)]
    tls: crate::tls::TlsArgs,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let data = match (&args.data, &args.data_file) {
        (Some(data), _) => data.clone(),
        (None, Some(path)) if path.as_os_str() == "-" => {
            std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        (None, None) => unreachable!("clap requires --data or --data-file"),
    };
    let token = match (&args.token, &args.jwt_key) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(key)) => {
            let key =
                KeyMaterial::from_setting(key).map_err(|e| anyhow::anyhow!("--jwt-key: {e}"))?;
            let algorithm: Algorithm = args.alg.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let claims = MintClaims {
                draft08: None,
                publish: Some(args.topic.clone()),
                subscribe: None,
                payload: None,
                ttl: Some(Duration::from_secs(60)),
            };
            Some(
                tidings_server::mint(&key, algorithm, &claims)
                    .map_err(|e| anyhow::anyhow!("cannot sign: {e}"))?,
            )
        }
        (None, None) => None,
    };
    let mut form = form_urlencoded::Serializer::new(String::new());
    for topic in &args.topic {
        form.append_pair("topic", topic);
    }
    form.append_pair("data", &data);
    if let Some(id) = &args.id {
        form.append_pair("id", id);
    }
    if let Some(event_type) = &args.event_type {
        form.append_pair("type", event_type);
    }
    if args.private {
        form.append_pair("private", "on");
    }
    if let Some(retry) = args.retry {
        form.append_pair("retry", &retry.to_string());
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = args.tls.client()?;
        let mut request = client
            .post(&args.url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.finish());
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {}", args.url))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status.is_success() {
            println!("{}", body.trim_end());
            Ok(ExitCode::SUCCESS)
        } else {
            eprintln!("tidings: the hub answered {status}: {}", body.trim_end());
            Ok(ExitCode::from(1))
        }
    })
}
