//! JWT authorization as the Mercure protocol (draft-07) defines it: find the token a request carries,
//! check that it is genuine and current, and read what its `mercure` claim allows.
//!
//! The flow for one request:
//!
//! 1. [`token_from_request`] looks for a token in Mercure's order: the `Authorization: Bearer` header, then
//!    the `authorization` query parameter, then the cookie (default [`DEFAULT_COOKIE_NAME`]). `Ok(None)`
//!    means the request is anonymous; whether that is allowed is the caller's decision.
//! 2. [`Authorizer::verify_publisher`] or [`Authorizer::verify_subscriber`] checks the signature with that
//!    role's key and the `exp`/`nbf` times, and returns the [`Claims`].
//! 3. The caller matches [`Claims::publish`] / [`Claims::subscribe`] selectors against topics (403 when they
//!    do not match) and, for a token taken from a cookie on a publish, checks the `Origin` (CSRF).
//!
//! Every [`AuthError`] answers 401 and its message says which check failed and what to do about it.
//!
//! # Keys
//!
//! A key setting is read by [`KeyMaterial::from_setting`]: `@path` or `path.pem` reads a file, PEM text
//! (`-----BEGIN …`) is a PEM key, anything else is an HS256 secret used as raw bytes, as Mercure does.
//!
//! - `HS256`: the hub verifies and [`mint`] signs with the same secret.
//! - `RS256`: the hub verifies with a `PUBLIC KEY` (SPKI), `RSA PUBLIC KEY` (PKCS#1) or `CERTIFICATE`;
//!   [`mint`] signs with a `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1).
//! - `ES256`: the hub verifies with a P-256 `PUBLIC KEY` or `CERTIFICATE`; [`mint`] signs with a P-256
//!   `PRIVATE KEY` (PKCS#8).
//!
//! A private key also works for verifying (its public half is used), with a warning: the hub does not
//! need it. Not accepted, with a message saying how to convert: `EC PRIVATE KEY` (SEC1; convert with
//! `openssl pkcs8 -topk8 -nocrypt`), `ENCRYPTED PRIVATE KEY` (decrypt with `openssl pkey`).
//!
//! # Time
//!
//! `exp` is optional (tokens without it never expire, as in Mercure) and `nbf` is honoured when present.
//! Both allow [`LEEWAY_SECS`] of clock skew between whoever mints tokens and the hub.
//!
//! # Layout
//!
//! - `extract`: finding the token in a request ([`token_from_request`], [`Token`]).
//! - `verify`: checking it ([`Authorizer`], [`AuthConfig`], [`Claims`]).
//! - `mint`: writing one ([`mint`], [`MintClaims`]).
//! - `key` and `algorithm`: what the configuration says ([`KeyMaterial`], [`Algorithm`]); `crypto` turns
//!   that into checked jsonwebtoken keys.
//! - `error`: [`AuthConfigError`] and [`AuthError`].
//!
//! [`mint`]: fn@mint

mod algorithm;
mod crypto;
mod error;
mod extract;
#[cfg(test)]
mod fixtures;
mod key;
mod mint;
mod verify;

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

pub use algorithm::Algorithm;
pub use error::{AuthConfigError, AuthError};
pub use extract::DRAFT_08_COOKIE;
pub use extract::{Token, TokenSource, token_from_request};
pub use key::KeyMaterial;
pub use mint::{DRAFT_08_DEFAULT_TTL, Draft08Claims, MintClaims, mint};
pub use verify::{AuthConfig, Authorizer, Claims, Grants, MAX_DETAILS, MERCURE_DETAIL_TYPE};

/// The cookie Mercure clients send the token in, unless configured otherwise.
pub const DEFAULT_COOKIE_NAME: &str = "mercureAuthorization";

/// Seconds of clock skew tolerated on `exp` and `nbf`.
///
/// Tokens are usually minted by another server whose clock may be a little off; 5 s absorbs NTP-level skew
/// without noticeably extending the life of a revoked-by-expiry token.
pub const LEEWAY_SECS: u64 = 5;

/// Who presents a token: the two roles Mercure keys separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Posts updates; needs `mercure.publish` selectors.
    Publisher,
    /// Follows topics; needs `mercure.subscribe` selectors for private updates.
    Subscriber,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
        })
    }
}

/// Which configured key a configuration error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyUse {
    /// The key verifying this role's tokens.
    Verify(Role),
    /// The key given to [`mint`](fn@mint).
    Sign,
}

impl fmt::Display for KeyUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyUse::Verify(role) => write!(f, "{role} key"),
            KeyUse::Sign => f.write_str("signing key"),
        }
    }
}

fn unix_now() -> u64 {
    // A clock before 1970 is broken; treating it as 0 refuses every token with `exp` instead of panicking.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
