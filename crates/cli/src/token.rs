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
    /// Lifetime in seconds; without it a draft-07 token does not expire (a
    /// draft-08 one lives an hour).
    #[arg(long)]
    ttl: Option<u64>,
    /// Which Mercure draft's token: 07 (a mercure claim) or 08 (an RFC 9068
    /// at+jwt access token with authorization_details; needs --issuer and
    /// --audience, and --publish/--subscribe are exact topics).
    #[arg(long, default_value = "07", value_parser = ["07", "08"])]
    draft: String,
    /// Draft 08: the token's issuer (iss), one the hub lists with --jwt-issuer.
    #[arg(long, value_name = "ISS")]
    issuer: Option<String>,
    /// Draft 08: the hub the token is for (aud), its public URL unless the
    /// hub sets --jwt-audience.
    #[arg(long, value_name = "AUD")]
    audience: Option<String>,
    /// Draft 08: a URL pattern the token may publish to (repeatable).
    #[arg(long, value_name = "PATTERN")]
    publish_urlpattern: Vec<String>,
    /// Draft 08: a URL pattern the token may receive private updates for
    /// (repeatable).
    #[arg(long, value_name = "PATTERN")]
    subscribe_urlpattern: Vec<String>,
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
    let draft08 = if args.draft == "08" {
        let (Some(issuer), Some(audience)) = (args.issuer, args.audience) else {
            anyhow::bail!(
                "--draft 08 needs --issuer ISS and --audience AUD (the hub's public URL, like https://hub.example.com/.well-known/mercure)"
            );
        };
        Some(tidings_server::Draft08Claims {
            issuer,
            audience,
            publish_urlpatterns: args.publish_urlpattern,
            subscribe_urlpatterns: args.subscribe_urlpattern,
        })
    } else {
        if args.issuer.is_some()
            || args.audience.is_some()
            || !args.publish_urlpattern.is_empty()
            || !args.subscribe_urlpattern.is_empty()
        {
            anyhow::bail!(
                "--issuer, --audience and the --*-urlpattern flags are for draft-08 tokens: add --draft 08"
            );
        }
        None
    };
    let claims = MintClaims {
        publish: (!args.publish.is_empty()).then_some(args.publish),
        subscribe: (!args.subscribe.is_empty()).then_some(args.subscribe),
        payload,
        ttl: args.ttl.map(Duration::from_secs),
        draft08,
    };
    let token = tidings_server::mint(&key, algorithm, &claims)
        .map_err(|e| anyhow::anyhow!("cannot sign: {e}"))?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
