//! The two error types: [`AuthConfigError`] for keys and settings the hub cannot start with, [`AuthError`]
//! for a request's token that is refused (always 401).

use std::path::PathBuf;

use super::{Algorithm, KeyUse, Role};

/// Longest piece of client input (an algorithm or scheme name) quoted back in an error message.
const MAX_QUOTED_CHARS: usize = 32;

/// A key or setting the hub cannot start with (or [`mint`](fn@super::mint) cannot sign with). Messages name
/// the key and say what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthConfigError {
    /// The algorithm name is not one the hub supports.
    #[error("unknown JWT algorithm `{given}`: use HS256, RS256 or ES256")]
    UnknownAlgorithm {
        /// The name as given.
        given: String,
    },
    /// A key file could not be read.
    // The io::Error is in the message and deliberately not a `source`, so a printed chain does not say it twice.
    #[error("cannot read key file {}: {error}", path.display())]
    ReadKeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A key file is binary (DER?) rather than text.
    #[error("key file {} is not UTF-8 text: give a PEM file (convert DER with `openssl pkey -inform DER`) or a text secret", path.display())]
    KeyFileNotText {
        /// The file.
        path: PathBuf,
    },
    /// An HS256 secret is empty.
    #[error("the {key} is empty: give a secret of at least 32 random bytes")]
    EmptySecret {
        /// Which key.
        key: KeyUse,
    },
    /// RS256/ES256 was configured but the key is a plain secret.
    #[error(
        "the {key} is a plain secret, but {algorithm} needs a PEM key: give the PEM text or `@path/to/key.pem`, \
         or set the algorithm to HS256"
    )]
    SecretForPublicKeyAlgorithm {
        /// Which key.
        key: KeyUse,
        /// The configured algorithm.
        algorithm: Algorithm,
    },
    /// HS256 was configured but the key is PEM.
    #[error(
        "the {key} is a PEM key, but HS256 needs a shared secret: set the algorithm to RS256 or ES256 to use it"
    )]
    PemForHmac {
        /// Which key.
        key: KeyUse,
    },
    /// The PEM holds a key of another family than the algorithm's.
    #[error(
        "the {key} is {found} key, but the algorithm is {algorithm}: set the matching algorithm or give another key"
    )]
    WrongKeyType {
        /// Which key.
        key: KeyUse,
        /// The configured algorithm.
        algorithm: Algorithm,
        /// What the key is, e.g. "an EC (ES256)".
        found: &'static str,
    },
    /// A PEM kind this module does not read.
    #[error("the {key} is a `{label}` PEM, which is not supported: {hint}")]
    UnsupportedPem {
        /// Which key.
        key: KeyUse,
        /// The PEM label, e.g. `EC PRIVATE KEY`.
        label: String,
        /// What to do instead.
        hint: &'static str,
    },
    /// Minting needs a private key but got a public one.
    #[error(
        "the {key} is a public key or certificate, but minting needs the private key (`-----BEGIN PRIVATE KEY-----`)"
    )]
    PublicKeyForSigning {
        /// Which key.
        key: KeyUse,
    },
    /// The PEM could not be parsed into a usable key.
    #[error("the {key} is not a usable PEM key: {reason}")]
    InvalidPem {
        /// Which key.
        key: KeyUse,
        /// What is wrong with it.
        reason: String,
    },
    /// The cookie name is not a valid cookie name.
    #[error(
        "cookie name {name:?} is not a valid cookie name: use letters, digits and `-_.`, e.g. `mercureAuthorization`"
    )]
    InvalidCookieName {
        /// The name as given.
        name: String,
    },
    /// Signing failed although the key parsed.
    #[error("cannot sign the token: {reason}")]
    Sign {
        /// The underlying error.
        reason: String,
    },
}

/// Why a request's token was refused. Every variant is a 401 ([`AuthError::status`]); a genuine token whose
/// selectors do not allow the action is the caller's 403.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The request carries no token but needs one.
    #[error(
        "no token: send `Authorization: Bearer <jwt>`, the `authorization` query parameter, \
         or the `{cookie_name}` cookie"
    )]
    Missing {
        /// The configured cookie name, so the message names it.
        cookie_name: String,
    },
    /// The token was sent wrongly (another scheme than Bearer, several headers, an empty value, the
    /// `access_token` parameter): RFC 6750's `invalid_request`, answered 400.
    #[error("{0}")]
    Presentation(String),
    /// Not a JWT: wrong number of parts, bad base64url, bad JSON, wrong claim types, or a broken header.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The signature was made with another key.
    #[error(
        "the token's signature does not match the configured {role} key: was it minted with another key?"
    )]
    BadSignature {
        /// Whose key was tried.
        role: Role,
    },
    /// `exp` (plus leeway) has passed.
    #[error("the token expired at {} ({} s ago): mint a new one", format_unix_time(*expired_at), now.saturating_sub(*expired_at))]
    Expired {
        /// The token's `exp`, unix seconds.
        expired_at: u64,
        /// The hub's clock when checking, unix seconds.
        now: u64,
    },
    /// `nbf` (minus leeway) is still in the future.
    #[error(
        "the token is not valid before {} ({} s from now): check the clock of whoever minted it",
        format_unix_time(*not_before),
        not_before.saturating_sub(*now)
    )]
    NotYetValid {
        /// The token's `nbf`, unix seconds.
        not_before: u64,
        /// The hub's clock when checking, unix seconds.
        now: u64,
    },
    /// The header's `alg` is not the hub's algorithm (this also stops `none` and key-confusion tokens).
    #[error("the token is signed with `{found}`, but this hub accepts only {expected}")]
    WrongAlgorithm {
        /// The hub's algorithm.
        expected: Algorithm,
        /// The header's `alg`, shortened and with odd characters replaced.
        found: String,
    },
    /// A draft-08 token's `iss` is not an issuer this hub trusts.
    #[error(
        "the token's issuer `{found}` is not trusted by this hub: its operator lists issuers with --jwt-issuer"
    )]
    UntrustedIssuer {
        /// The `iss`, shortened and with odd characters replaced.
        found: String,
    },
    /// A draft-08 token's `aud` does not name this hub.
    #[error("the token's audience (aud) does not name this hub: mint it for {expected:?}")]
    WrongAudience {
        /// The audience the hub expects.
        expected: String,
    },
    /// The hub has no key for this role, so no token of that role can be accepted.
    #[error("this hub has no {role} key configured, so it cannot accept {role} tokens")]
    NotConfigured {
        /// The role without a key.
        role: Role,
    },
}

impl AuthError {
    /// The HTTP status to answer with: 400 for a token sent wrongly, 401 for every other variant, so a
    /// client knows to fetch a new token.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Presentation(_) => 400,
            _ => 401,
        }
    }
}

pub(super) fn malformed(message: &str) -> AuthError {
    AuthError::Malformed(message.to_owned())
}

/// Client input made safe to quote in a message: short, printable ASCII only.
pub(super) fn quote(text: &str) -> String {
    text.chars()
        .take(MAX_QUOTED_CHARS)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// `2024-05-06T07:08:09Z` for unix seconds, so expiry messages are readable without a date crate.
pub(super) fn format_unix_time(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, shifted so that every intermediate is non-negative.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::fixtures::NOW;

    #[test]
    fn format_unix_time_matches_known_dates() {
        assert_eq!(format_unix_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_unix_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_unix_time(NOW), "2023-11-14T22:13:20Z");
        assert_eq!(format_unix_time(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
