//! `tidings token`: mint a JWT with the Mercure claim.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tidings_server::{Algorithm, KeyMaterial, MintClaims};

/// Print a JWT with a Mercure claim, signed with KEY.
///
/// KEY is an HS256 secret, PEM text, or @path to a PEM private key (RS256,
/// ES256 in PKCS#8). Example:
///   tidings token --key "$SECRET" --publish '*' --subscribe 'https://example.com/books/{id}' --ttl 3600
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Signing key: secret, PEM, or @file.
    #[arg(long, env = "TIDINGS_JWT_KEY", hide_env_values = true)]
    key: String,
    /// HS256, RS256 or ES256.
    #[arg(long, default_value = "HS256")]
    alg: String,
    /// A topic selector the token may publish to (repeatable).
    #[arg(long)]
    publish: Vec<String>,
    /// A topic selector the token may receive private updates for (repeatable).
    #[arg(long)]
    subscribe: Vec<String>,
    /// JSON shown to others by the subscription API.
    #[arg(long)]
    payload: Option<String>,
    /// Lifetime in seconds; without it the token does not expire.
    #[arg(long)]
    ttl: Option<u64>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let algorithm: Algorithm = args.alg.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let key = KeyMaterial::from_setting(&args.key).map_err(|e| anyhow::anyhow!("--key: {e}"))?;
    let payload = args
        .payload
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .context("--payload must be JSON")?;
    let claims = MintClaims {
        publish: (!args.publish.is_empty()).then_some(args.publish),
        subscribe: (!args.subscribe.is_empty()).then_some(args.subscribe),
        payload,
        ttl: args.ttl.map(Duration::from_secs),
    };
    let token = tidings_server::mint(&key, algorithm, &claims)
        .map_err(|e| anyhow::anyhow!("cannot sign: {e}"))?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
