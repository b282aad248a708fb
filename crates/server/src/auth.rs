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

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind as JwtErrorKind};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The cookie Mercure clients send the token in, unless configured otherwise.
pub const DEFAULT_COOKIE_NAME: &str = "mercureAuthorization";

/// Seconds of clock skew tolerated on `exp` and `nbf`.
///
/// Tokens are usually minted by another server whose clock may be a little off; 5 s absorbs NTP-level skew
/// without noticeably extending the life of a revoked-by-expiry token.
pub const LEEWAY_SECS: u64 = 5;

/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits).
const MIN_SECRET_BYTES: usize = 32;

/// RSA moduli below 2048 bits are considered breakable (NIST SP 800-131A).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Longest piece of client input (an algorithm or scheme name) quoted back in an error message.
const MAX_QUOTED_CHARS: usize = 32;

/// The signature algorithms a hub accepts; one per hub, as in Mercure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC with SHA-256 and a shared secret (the Mercure default).
    #[default]
    HS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256: the hub holds only the public key.
    RS256,
    /// ECDSA on P-256 with SHA-256: the hub holds only the public key.
    ES256,
}

impl Algorithm {
    /// The name used in a JWT header and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
        }
    }

    fn to_jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = AuthConfigError;

    /// Parses `HS256`, `RS256` or `ES256`, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256]
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| AuthConfigError::UnknownAlgorithm {
                given: s.to_owned(),
            })
    }
}

/// Configuration files name the algorithm as a string, case-insensitive.
impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// A key as configured: an HS256 secret or PEM text. Which PEM kinds work where is in the module docs.
///
/// `Debug` never prints the secret or the PEM body.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// A shared HS256 secret, used as raw UTF-8 bytes (not base64-decoded), as in Mercure.
    Secret(String),
    /// A PEM document: a public key or certificate to verify, a private key to mint.
    Pem(Vec<u8>),
}

impl KeyMaterial {
    /// Reads a key setting (config file, `TIDINGS_*` variable or flag).
    ///
    /// - `@path` reads the file at `path` (e.g. `@/run/secrets/jwt`).
    /// - A single-line value ending in `.pem` is a file path too; it must exist, because silently using
    ///   `keys/pub.pem` as an HMAC secret would fail every token with a baffling "bad signature".
    /// - Text starting with `-----BEGIN` is inline PEM. A literal `\n` is turned into a newline when the value
    ///   has no real newline, so PEM fits in one environment variable.
    /// - Anything else is an HS256 secret.
    ///
    /// A file whose content starts with `-----BEGIN` is PEM, otherwise it is a secret with one trailing line
    /// ending removed (editors and `echo` add one).
    ///
    /// # Errors
    ///
    /// [`AuthConfigError::ReadKeyFile`] naming the path if the file cannot be read,
    /// [`AuthConfigError::KeyFileNotText`] if it is not UTF-8.
    pub fn from_setting(value: &str) -> Result<KeyMaterial, AuthConfigError> {
        if let Some(path) = value.strip_prefix('@') {
            return KeyMaterial::from_file(Path::new(path.trim()));
        }
        let trimmed = value.trim();
        let looks_like_path = trimmed.len() > ".pem".len()
            && trimmed.to_ascii_lowercase().ends_with(".pem")
            && !trimmed.contains('\n')
            && !trimmed.starts_with("-----BEGIN");
        if looks_like_path {
            return KeyMaterial::from_file(Path::new(trimmed));
        }
        if trimmed.starts_with("-----BEGIN") {
            let pem = if trimmed.contains('\n') {
                trimmed.to_owned()
            } else {
                trimmed.replace("\\n", "\n")
            };
            return Ok(KeyMaterial::Pem(pem.into_bytes()));
        }
        Ok(KeyMaterial::Secret(value.to_owned()))
    }

    /// Reads a key from a file: PEM if it starts with `-----BEGIN`, else a secret without its final newline.
    ///
    /// # Errors
    ///
    /// [`AuthConfigError::ReadKeyFile`] or [`AuthConfigError::KeyFileNotText`], naming the path.
    pub fn from_file(path: &Path) -> Result<KeyMaterial, AuthConfigError> {
        let bytes = std::fs::read(path).map_err(|error| AuthConfigError::ReadKeyFile {
            path: path.to_owned(),
            error,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| AuthConfigError::KeyFileNotText {
            path: path.to_owned(),
        })?;
        if text.trim_start().starts_with("-----BEGIN") {
            return Ok(KeyMaterial::Pem(text.into_bytes()));
        }
        let secret = text
            .strip_suffix('\n')
            .map_or(text.as_str(), |s| s.strip_suffix('\r').unwrap_or(s));
        Ok(KeyMaterial::Secret(secret.to_owned()))
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyMaterial::Secret(secret) => write!(f, "Secret(<{} bytes redacted>)", secret.len()),
            KeyMaterial::Pem(pem) => {
                write!(f, "Pem({:?})", pem_label(pem).unwrap_or("<no BEGIN line>"))
            }
        }
    }
}

/// What the hub needs to check tokens. Give the same key to both roles for Mercure's single shared key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfig {
    /// Key that verifies publishers' tokens. Default `None`: publishing is refused.
    pub publisher_key: Option<KeyMaterial>,
    /// Key that verifies subscribers' tokens. Default `None`: only anonymous subscriptions (the caller's
    /// policy), and a token sent anyway is answered [`AuthError::NotConfigured`].
    pub subscriber_key: Option<KeyMaterial>,
    /// The one algorithm tokens must be signed with. Default [`Algorithm::HS256`].
    pub algorithm: Algorithm,
    /// Cookie that may carry the token. Default [`DEFAULT_COOKIE_NAME`] (`mercureAuthorization`).
    pub cookie_name: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            publisher_key: None,
            subscriber_key: None,
            algorithm: Algorithm::default(),
            cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
        }
    }
}

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
    /// The key given to [`mint`].
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

/// A key or setting the hub cannot start with (or [`mint`] cannot sign with). Messages name the key and say
/// what to change.
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
    /// The hub has no key for this role, so no token of that role can be accepted.
    #[error("this hub has no {role} key configured, so it cannot accept {role} tokens")]
    NotConfigured {
        /// The role without a key.
        role: Role,
    },
}

impl AuthError {
    /// The HTTP status to answer with: 401 for every variant, so a client knows to fetch a new token.
    pub fn status(&self) -> u16 {
        401
    }
}

/// What a verified token allows, from its `mercure` claim (absent claim: all `None`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Claims {
    /// Topic selectors this token may publish to.
    pub publish: Option<Vec<String>>,
    /// Topic selectors this token may receive private updates for.
    pub subscribe: Option<Vec<String>>,
    /// Arbitrary data the hub attaches to this subscriber (Mercure's subscription payload).
    pub payload: Option<serde_json::Value>,
    /// The `exp` claim in unix seconds; `None` for a token that never expires.
    #[serde(skip)]
    pub expires_at: Option<u64>,
}

impl Claims {
    /// `true` if `publish` contains the `*` selector.
    pub fn can_publish_all(&self) -> bool {
        self.publish
            .as_ref()
            .is_some_and(|s| s.iter().any(|s| s == "*"))
    }

    /// `true` if `subscribe` contains the `*` selector.
    pub fn can_subscribe_all(&self) -> bool {
        self.subscribe
            .as_ref()
            .is_some_and(|s| s.iter().any(|s| s == "*"))
    }
}

/// The JWT body as the hub reads it; unknown claims (`sub`, `aud`, …) are ignored as in Mercure.
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    mercure: Option<Claims>,
    // A NumericDate may be fractional (RFC 7519 §2), so read a JSON number, not an integer.
    #[serde(default)]
    exp: Option<serde_json::Number>,
    #[serde(default)]
    nbf: Option<serde_json::Number>,
}

/// Checks tokens against the configured keys. Build once at startup; verifying takes `&self`.
#[derive(Debug)]
pub struct Authorizer {
    algorithm: Algorithm,
    publisher: Option<DecodingKey>,
    subscriber: Option<DecodingKey>,
    validation: Validation,
    cookie_name: String,
    warnings: Vec<String>,
}

impl Authorizer {
    /// Parses and checks the configured keys, so a bad key stops the hub at startup rather than failing
    /// every request with "bad signature".
    ///
    /// # Errors
    ///
    /// An [`AuthConfigError`] naming the key at fault: a secret where RS256/ES256 needs PEM, PEM where HS256
    /// needs a secret, an unparsable or wrong-family PEM, an empty secret, or an invalid cookie name.
    /// Weak but usable keys are accepted and reported by [`Authorizer::warnings`].
    pub fn new(config: &AuthConfig) -> Result<Authorizer, AuthConfigError> {
        use_rust_crypto();
        if !is_cookie_name(&config.cookie_name) {
            return Err(AuthConfigError::InvalidCookieName {
                name: config.cookie_name.clone(),
            });
        }
        let mut warnings = Vec::new();
        let mut build = |material: &Option<KeyMaterial>, role| {
            material
                .as_ref()
                .map(|m| decoding_key(m, config.algorithm, KeyUse::Verify(role), &mut warnings))
                .transpose()
        };
        let publisher = build(&config.publisher_key, Role::Publisher)?;
        let subscriber = build(&config.subscriber_key, Role::Subscriber)?;

        let mut validation = Validation::new(config.algorithm.to_jwt());
        // exp/nbf are checked in `verify_at` so errors can say when; `exp` is optional in Mercure.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        // Mercure ignores `aud`; jsonwebtoken would reject any token carrying one.
        validation.validate_aud = false;

        Ok(Authorizer {
            algorithm: config.algorithm,
            publisher,
            subscriber,
            validation,
            cookie_name: config.cookie_name.clone(),
            warnings,
        })
    }

    /// Problems worth logging at startup that do not stop the hub (short secret, private key where a
    /// public key would do, small RSA key).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The algorithm every token must use.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The cookie that may carry a token; pass it to [`token_from_request`].
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// Whether a key is configured for `role`.
    pub fn is_configured(&self, role: Role) -> bool {
        self.key(role).is_some()
    }

    /// The error for a request that needs a token and has none; its message names the cookie.
    pub fn missing(&self) -> AuthError {
        AuthError::Missing {
            cookie_name: self.cookie_name.clone(),
        }
    }

    /// Verifies a publisher's token with the publisher key.
    ///
    /// # Errors
    ///
    /// See [`Authorizer::verify`].
    pub fn verify_publisher(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify(Role::Publisher, token)
    }

    /// Verifies a subscriber's token with the subscriber key.
    ///
    /// # Errors
    ///
    /// See [`Authorizer::verify`].
    pub fn verify_subscriber(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify(Role::Subscriber, token)
    }

    /// Verifies `token` with `role`'s key and returns its claims.
    ///
    /// # Errors
    ///
    /// [`AuthError::NotConfigured`] if `role` has no key; otherwise whichever check fails first, in this
    /// order: [`AuthError::Malformed`], [`AuthError::WrongAlgorithm`], [`AuthError::BadSignature`],
    /// [`AuthError::Malformed`] (claims), [`AuthError::Expired`], [`AuthError::NotYetValid`].
    pub fn verify(&self, role: Role, token: &str) -> Result<Claims, AuthError> {
        self.verify_at(role, token, unix_now())
    }

    fn key(&self, role: Role) -> Option<&DecodingKey> {
        match role {
            Role::Publisher => self.publisher.as_ref(),
            Role::Subscriber => self.subscriber.as_ref(),
        }
    }

    fn verify_at(&self, role: Role, token: &str, now: u64) -> Result<Claims, AuthError> {
        let key = self.key(role).ok_or(AuthError::NotConfigured { role })?;
        // jsonwebtoken only says "InvalidAlgorithm"; reading `alg` first lets the error name it.
        check_header(token, self.algorithm)?;
        let raw = jsonwebtoken::decode::<RawClaims>(token, key, &self.validation)
            .map_err(|e| decode_error(e, token, role))?
            .claims;

        let expires_at = raw.exp.as_ref().map(numeric_date);
        if let Some(expired_at) = expires_at
            && now > expired_at.saturating_add(LEEWAY_SECS)
        {
            return Err(AuthError::Expired { expired_at, now });
        }
        if let Some(not_before) = raw.nbf.as_ref().map(numeric_date)
            && not_before > now.saturating_add(LEEWAY_SECS)
        {
            return Err(AuthError::NotYetValid { not_before, now });
        }
        Ok(Claims {
            expires_at,
            ..raw.mercure.unwrap_or_default()
        })
    }
}

/// A token found in a request. `Debug` shows only its length: tokens are credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The compact JWT.
    pub value: String,
    /// Where it came from; a cookie used to publish needs an `Origin` check (CSRF).
    pub source: TokenSource,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field(
                "value",
                &format_args!("<{} bytes redacted>", self.value.len()),
            )
            .field("source", &self.source)
            .finish()
    }
}

/// Where a request carried its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenSource {
    /// `Authorization: Bearer <jwt>`.
    Header,
    /// The `authorization` query parameter (for `EventSource`, which cannot set headers).
    Query,
    /// The configured cookie; browsers send it on their own, hence the CSRF check on publish.
    Cookie,
}

/// Finds the token in a request, in Mercure's order: `Authorization: Bearer` header, then the
/// `authorization` query parameter, then the `cookie_name` cookie. The first place that has one wins;
/// later places are not looked at.
///
/// `query` is the URI query string (with or without a leading `?`).
///
/// # Errors
///
/// [`AuthError::Malformed`] for a request that clearly meant to send a token but sent it wrongly: a
/// non-Bearer or empty `Authorization` header, several `Authorization` headers or `authorization`
/// parameters, an empty `authorization` parameter, a non-UTF-8 cookie value. An empty cookie counts as
/// absent, because browsers send cookies the page did not choose to send.
pub fn token_from_request(
    headers: &HeaderMap,
    query: Option<&str>,
    cookie_name: &str,
) -> Result<Option<Token>, AuthError> {
    let found = if let Some(value) = token_from_header(headers)? {
        Some((value, TokenSource::Header))
    } else if let Some(value) = query.map(token_from_query).transpose()?.flatten() {
        Some((value, TokenSource::Query))
    } else {
        token_from_cookie(headers, cookie_name)?.map(|value| (value, TokenSource::Cookie))
    };
    Ok(found.map(|(value, source)| Token { value, source }))
}

fn token_from_header(headers: &HeaderMap) -> Result<Option<String>, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    // Two headers could each be checked by a different layer; refuse the ambiguity, as Mercure does.
    if values.next().is_some() {
        return Err(malformed("several Authorization headers: send exactly one"));
    }
    let value = value
        .to_str()
        .map_err(|_| {
            malformed(
                "the Authorization header has non-ASCII bytes; send `Authorization: Bearer <jwt>`",
            )
        })?
        .trim();
    if value.is_empty() {
        return Err(malformed(
            "the Authorization header is empty; send `Authorization: Bearer <jwt>`",
        ));
    }
    let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Quote only the scheme: what follows it is someone's credential.
        return Err(AuthError::Malformed(format!(
            "the Authorization header uses the `{}` scheme; send `Authorization: Bearer <jwt>`",
            quote(scheme)
        )));
    }
    let token = rest.trim();
    if token.is_empty() {
        return Err(malformed(
            "the Authorization header says Bearer but carries no token",
        ));
    }
    Ok(Some(token.to_owned()))
}

fn token_from_query(query: &str) -> Result<Option<String>, AuthError> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut found = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name == "authorization" {
            if found.is_some() {
                return Err(malformed(
                    "several authorization query parameters: send exactly one",
                ));
            }
            found = Some(value.into_owned());
        }
    }
    match found {
        Some(value) if value.trim().is_empty() => {
            Err(malformed("the authorization query parameter is empty"))
        }
        found => Ok(found.map(|v| v.trim().to_owned())),
    }
}

fn token_from_cookie(headers: &HeaderMap, cookie_name: &str) -> Result<Option<String>, AuthError> {
    // HTTP/2 may split cookies over several `Cookie` headers, so read them all. Bytes, not `to_str`, so one
    // odd cookie of another application cannot hide ours.
    let pairs = headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b';'));
    for pair in pairs {
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        if pair[..eq].trim_ascii() != cookie_name.as_bytes() {
            continue;
        }
        let mut value = pair[eq + 1..].trim_ascii();
        // RFC 6265 allows a cookie value in double quotes.
        if let Some(inner) = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
        {
            value = inner;
        }
        if value.is_empty() {
            continue;
        }
        let value = std::str::from_utf8(value).map_err(|_| {
            AuthError::Malformed(format!("the `{cookie_name}` cookie is not UTF-8"))
        })?;
        return Ok(Some(value.to_owned()));
    }
    Ok(None)
}

/// What `mint` needs to write a token with Mercure claims.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MintClaims {
    /// `mercure.publish` selectors; `None` leaves the field out.
    pub publish: Option<Vec<String>>,
    /// `mercure.subscribe` selectors; `None` leaves the field out.
    pub subscribe: Option<Vec<String>>,
    /// `mercure.payload`; `None` leaves the field out.
    pub payload: Option<serde_json::Value>,
    /// Lifetime from now, rounded up to whole seconds; `None` writes no `exp` (the token never expires).
    pub ttl: Option<Duration>,
}

/// Mints a signed token with a `mercure` claim, for `tidings token` and the dev-mode demo token.
///
/// HS256 signs with the secret; RS256 and ES256 need the private key PEM (see the module docs).
///
/// # Errors
///
/// An [`AuthConfigError`] with [`KeyUse::Sign`] if the key does not fit the algorithm or is not a private
/// key, or [`AuthConfigError::Sign`] if signing itself fails.
pub fn mint(
    key: &KeyMaterial,
    algorithm: Algorithm,
    claims: &MintClaims,
) -> Result<String, AuthConfigError> {
    use_rust_crypto();
    mint_at(key, algorithm, claims, unix_now())
}

fn mint_at(
    key: &KeyMaterial,
    algorithm: Algorithm,
    claims: &MintClaims,
    now: u64,
) -> Result<String, AuthConfigError> {
    #[derive(Serialize)]
    struct Body<'a> {
        mercure: MercureOut<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        exp: Option<u64>,
    }
    #[derive(Serialize)]
    struct MercureOut<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        publish: Option<&'a [String]>,
        #[serde(skip_serializing_if = "Option::is_none")]
        subscribe: Option<&'a [String]>,
        #[serde(skip_serializing_if = "Option::is_none")]
        payload: Option<&'a serde_json::Value>,
    }

    let encoding_key = match (algorithm, key) {
        (Algorithm::HS256, KeyMaterial::Secret(secret)) => {
            if secret.is_empty() {
                return Err(AuthConfigError::EmptySecret { key: KeyUse::Sign });
            }
            EncodingKey::from_secret(secret.as_bytes())
        }
        (Algorithm::HS256, KeyMaterial::Pem(_)) => {
            return Err(AuthConfigError::PemForHmac { key: KeyUse::Sign });
        }
        (_, KeyMaterial::Secret(_)) => {
            return Err(AuthConfigError::SecretForPublicKeyAlgorithm {
                key: KeyUse::Sign,
                algorithm,
            });
        }
        (_, KeyMaterial::Pem(pem)) => private_key(pem, algorithm, KeyUse::Sign)?.0,
    };
    let ttl_secs = |ttl: Duration| {
        ttl.as_secs()
            .saturating_add(u64::from(ttl.subsec_nanos() > 0))
    };
    let body = Body {
        mercure: MercureOut {
            publish: claims.publish.as_deref(),
            subscribe: claims.subscribe.as_deref(),
            payload: claims.payload.as_ref(),
        },
        exp: claims.ttl.map(|ttl| now.saturating_add(ttl_secs(ttl))),
    };
    jsonwebtoken::encode(&Header::new(algorithm.to_jwt()), &body, &encoding_key).map_err(|e| {
        AuthConfigError::Sign {
            reason: e.to_string(),
        }
    })
}

/// Makes jsonwebtoken use its RustCrypto backend.
///
/// jsonwebtoken picks a backend from its cargo features and panics at the first signature when it finds
/// none or both (`rust_crypto` and `aws_lc_rs` unified from different crates). Naming the provider turns
/// "none" into a compile error and "both" into a working choice. Later calls, or a provider installed by the
/// embedding program first, are left alone.
fn use_rust_crypto() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER,
    );
}

/// Builds the key that verifies one role's tokens, checking it fully now rather than at the first request.
fn decoding_key(
    material: &KeyMaterial,
    algorithm: Algorithm,
    key: KeyUse,
    warnings: &mut Vec<String>,
) -> Result<DecodingKey, AuthConfigError> {
    let pem = match (algorithm, material) {
        (Algorithm::HS256, KeyMaterial::Secret(secret)) => {
            if secret.is_empty() {
                return Err(AuthConfigError::EmptySecret { key });
            }
            if secret.len() < MIN_SECRET_BYTES {
                warnings.push(format!(
                    "the {key} is only {} bytes; HS256 secrets should be at least {MIN_SECRET_BYTES} random bytes \
                     (RFC 7518 §3.2), e.g. `openssl rand -base64 32`",
                    secret.len()
                ));
            }
            return Ok(DecodingKey::from_secret(secret.as_bytes()));
        }
        (Algorithm::HS256, KeyMaterial::Pem(_)) => return Err(AuthConfigError::PemForHmac { key }),
        (_, KeyMaterial::Secret(_)) => {
            return Err(AuthConfigError::SecretForPublicKeyAlgorithm { key, algorithm });
        }
        (_, KeyMaterial::Pem(pem)) => pem.as_slice(),
    };

    let jwk = match pem_kind(pem, key)? {
        PemKind::Public => {
            let parsed = match algorithm {
                Algorithm::ES256 => DecodingKey::from_ec_pem(pem),
                _ => DecodingKey::from_rsa_pem(pem),
            };
            let parsed = parsed.map_err(|e| pem_error(pem, algorithm, key, &e))?;
            // For RSA this parses the DER now (jsonwebtoken would defer it to every verification).
            Jwk::from_decoding_key(&parsed, Some(algorithm.to_jwt()))
                .map_err(|e| pem_error(pem, algorithm, key, &e))?
        }
        PemKind::Private => {
            warnings.push(format!(
                "the {key} is a private key; the hub only needs the public key (`openssl pkey -in key.pem -pubout`), \
                 keep the private key with whoever mints tokens"
            ));
            private_key(pem, algorithm, key)?.1
        }
    };

    match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let modulus_bytes = URL_SAFE_NO_PAD.decode(&rsa.n).map_or(0, |n| n.len());
            if modulus_bytes < MIN_RSA_MODULUS_BYTES {
                warnings.push(format!(
                    "the {key} is a {}-bit RSA key; use at least 2048 bits",
                    modulus_bytes * 8
                ));
            }
        }
        AlgorithmParameters::EllipticCurve(ec) if ec.curve != EllipticCurve::P256 => {
            return Err(AuthConfigError::InvalidPem {
                key,
                reason: format!(
                    "ES256 needs a P-256 (prime256v1) key, this one is on {:?}",
                    ec.curve
                ),
            });
        }
        _ => {}
    }
    // From components, so a verification does no DER parsing.
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| pem_error(pem, algorithm, key, &e))?;
    if algorithm == Algorithm::ES256 {
        // The verifier factory checks that the point is on the curve; an empty signature then merely fails.
        jsonwebtoken::crypto::verify("", b"", &decoding, algorithm.to_jwt())
            .map_err(|e| pem_error(pem, algorithm, key, &e))?;
    }
    Ok(decoding)
}

/// Parses a private key PEM for `algorithm`; returns the signing key and its public half.
fn private_key(
    pem: &[u8],
    algorithm: Algorithm,
    key: KeyUse,
) -> Result<(EncodingKey, Jwk), AuthConfigError> {
    if pem_kind(pem, key)? == PemKind::Public {
        return Err(AuthConfigError::PublicKeyForSigning { key });
    }
    let parsed = match algorithm {
        Algorithm::HS256 => return Err(AuthConfigError::PemForHmac { key }),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
    };
    let parsed = parsed.map_err(|e| pem_error(pem, algorithm, key, &e))?;
    // Deriving the public half parses the whole key, so a damaged one fails here, not at first use.
    let jwk = Jwk::from_encoding_key(&parsed, algorithm.to_jwt())
        .map_err(|e| pem_error(pem, algorithm, key, &e))?;
    Ok((parsed, jwk))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PemKind {
    Public,
    Private,
}

/// Sorts a PEM by its label, refusing the kinds jsonwebtoken cannot read with a hint on converting them.
fn pem_kind(pem: &[u8], key: KeyUse) -> Result<PemKind, AuthConfigError> {
    let Some(label) = pem_label(pem) else {
        return Err(AuthConfigError::InvalidPem {
            key,
            reason: "no `-----BEGIN …-----` line".to_owned(),
        });
    };
    let hint = match label {
        "PUBLIC KEY" | "RSA PUBLIC KEY" | "CERTIFICATE" => return Ok(PemKind::Public),
        "PRIVATE KEY" | "RSA PRIVATE KEY" => return Ok(PemKind::Private),
        "EC PRIVATE KEY" => {
            "convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in key.pem -out key.p8.pem`"
        }
        "ENCRYPTED PRIVATE KEY" => "decrypt it with `openssl pkey -in key.pem -out key.plain.pem`",
        _ => "give a `PUBLIC KEY`, `CERTIFICATE` or `PRIVATE KEY` PEM",
    };
    Err(AuthConfigError::UnsupportedPem {
        key,
        label: label.to_owned(),
        hint,
    })
}

/// The label of the first `-----BEGIN <label>-----` line, if any.
fn pem_label(pem: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let len = text[start..].find("-----")?;
    Some(&text[start..start + len])
}

/// Turns a jsonwebtoken key error into one that says what is wrong, noticing a key of the other family.
fn pem_error(pem: &[u8], algorithm: Algorithm, key: KeyUse, error: &JwtError) -> AuthConfigError {
    // The algorithm the PEM's key family would need, if the PEM parses as a key at all.
    let family = if DecodingKey::from_ec_pem(pem).is_ok() || EncodingKey::from_ec_pem(pem).is_ok() {
        Some((Some(Algorithm::ES256), "an EC (ES256)"))
    } else if DecodingKey::from_rsa_pem(pem).is_ok() {
        Some((Some(Algorithm::RS256), "an RSA (RS256)"))
    } else if DecodingKey::from_ed_pem(pem).is_ok() || EncodingKey::from_ed_pem(pem).is_ok() {
        Some((None, "an Ed25519 (EdDSA, unsupported)"))
    } else {
        None
    };
    if let Some((family_algorithm, found)) = family
        && family_algorithm != Some(algorithm)
    {
        return AuthConfigError::WrongKeyType {
            key,
            algorithm,
            found,
        };
    }
    let reason = match error.kind() {
        JwtErrorKind::InvalidKeyFormat => {
            "the PEM body is not a valid key (damaged base64 or DER?)".to_owned()
        }
        JwtErrorKind::InvalidEcdsaKey => "not a valid P-256 (prime256v1) key".to_owned(),
        JwtErrorKind::InvalidRsaKey(why) => format!("not a valid RSA key: {why}"),
        _ => error.to_string(),
    };
    AuthConfigError::InvalidPem { key, reason }
}

/// Reads the header's `alg` and compares it with the hub's before any cryptography runs.
fn check_header(token: &str, expected: Algorithm) -> Result<(), AuthError> {
    #[derive(Deserialize)]
    struct RawHeader {
        alg: Option<String>,
    }

    if token.is_empty() {
        return Err(malformed("the token is empty"));
    }
    let parts = token.split('.').count();
    if parts != 3 {
        return Err(AuthError::Malformed(format!(
            "a JWT is three base64url parts separated by dots; this has {parts}"
        )));
    }
    let header = token.split('.').next().unwrap_or_default();
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed("the JWT header (first part) is not base64url"))?;
    let header: RawHeader = serde_json::from_slice(&header).map_err(|_| {
        malformed("the JWT header (first part) is not a JSON object with a string `alg`")
    })?;
    let Some(alg) = header.alg else {
        return Err(malformed("the JWT header has no `alg`"));
    };
    if alg != expected.as_str() {
        return Err(AuthError::WrongAlgorithm {
            expected,
            found: quote(&alg),
        });
    }
    Ok(())
}

/// Maps a jsonwebtoken decode failure to the check that failed. Only runs on the error path, so it may
/// re-decode parts of the token to say which part is broken.
fn decode_error(error: JwtError, token: &str, role: Role) -> AuthError {
    let mut parts = token.split('.');
    let (payload, signature) = (parts.nth(1), parts.next());
    let decodes = |part: Option<&str>| part.is_some_and(|p| URL_SAFE_NO_PAD.decode(p).is_ok());
    match error.kind() {
        JwtErrorKind::InvalidSignature => AuthError::BadSignature { role },
        // The header named the right algorithm, so only the key can disagree; `Authorizer::new` prevents that.
        JwtErrorKind::InvalidAlgorithm => AuthError::Malformed(format!(
            "the token's algorithm does not fit the configured {role} key"
        )),
        JwtErrorKind::Base64(_) if !decodes(signature) => {
            malformed("the JWT signature (third part) is not base64url")
        }
        JwtErrorKind::Base64(_) if !decodes(payload) => {
            malformed("the JWT claims (second part) are not base64url")
        }
        // `check_header` accepted the header's `alg`, but jsonwebtoken also types the other fields.
        JwtErrorKind::Json(e) if jsonwebtoken::decode_header(token).is_err() => {
            AuthError::Malformed(format!("the JWT header is not valid: {e}"))
        }
        JwtErrorKind::Json(e) => {
            AuthError::Malformed(format!("the claims are not valid Mercure claims: {e}"))
        }
        JwtErrorKind::Utf8(_) => malformed("the JWT claims are not UTF-8"),
        _ => AuthError::Malformed(error.to_string()),
    }
}

fn malformed(message: &str) -> AuthError {
    AuthError::Malformed(message.to_owned())
}

/// Client input made safe to quote in a message: short, printable ASCII only.
fn quote(text: &str) -> String {
    text.chars()
        .take(MAX_QUOTED_CHARS)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// RFC 6265 cookie-name = token (RFC 9110): visible ASCII except separators.
fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

/// A NumericDate as whole seconds; negative or fractional values are clamped/truncated.
fn numeric_date(n: &serde_json::Number) -> u64 {
    n.as_u64().unwrap_or_else(|| {
        // `as` saturates: negative and NaN become 0, huge values u64::MAX.
        n.as_f64().map_or(0, |f| f as u64)
    })
}

fn unix_now() -> u64 {
    // A clock before 1970 is broken; treating it as 0 refuses every token with `exp` instead of panicking.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `2024-05-06T07:08:09Z` for unix seconds, so expiry messages are readable without a date crate.
fn format_unix_time(secs: u64) -> String {
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
    use http::HeaderValue;

    const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";
    const NOW: u64 = 1_700_000_000;

    fn authorizer(algorithm: Algorithm, key: &str) -> Authorizer {
        let key = KeyMaterial::from_setting(key).unwrap();
        let config = AuthConfig {
            publisher_key: Some(key.clone()),
            subscriber_key: Some(key),
            algorithm,
            ..AuthConfig::default()
        };
        Authorizer::new(&config).unwrap()
    }

    fn config_error(algorithm: Algorithm, key: &str) -> AuthConfigError {
        let config = AuthConfig {
            subscriber_key: Some(KeyMaterial::from_setting(key).unwrap()),
            algorithm,
            ..AuthConfig::default()
        };
        Authorizer::new(&config).unwrap_err()
    }

    fn mint_with(key: &str, algorithm: Algorithm, claims: &MintClaims) -> String {
        mint(&KeyMaterial::from_setting(key).unwrap(), algorithm, claims).unwrap()
    }

    fn full_claims() -> MintClaims {
        MintClaims {
            publish: Some(vec!["https://example.com/books/{id}".to_owned()]),
            subscribe: Some(vec!["*".to_owned()]),
            payload: Some(serde_json::json!({"user": "alice", "n": 1})),
            ttl: Some(Duration::from_secs(3_600)),
        }
    }

    /// A token with the given header and claims JSON and a valid HS256 signature by `SECRET`.
    fn hs256_raw(header: &str, claims: &str) -> String {
        use jsonwebtoken::crypto::sign;
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        let signature = sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap();
        format!("{message}.{signature}")
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn round_trip_for_every_algorithm_and_verifying_pem_kind() {
        let cases = [
            (Algorithm::HS256, SECRET, SECRET),
            (Algorithm::RS256, RSA_PRIVATE, RSA_PUBLIC),
            (Algorithm::RS256, RSA_PRIVATE, RSA_PUBLIC_PKCS1),
            (Algorithm::RS256, RSA_PRIVATE, RSA_CERTIFICATE),
            (Algorithm::RS256, RSA_PRIVATE, RSA_PRIVATE),
            (Algorithm::ES256, EC_PRIVATE, EC_PUBLIC),
            (Algorithm::ES256, EC_PRIVATE, EC_CERTIFICATE),
            (Algorithm::ES256, EC_PRIVATE, EC_PRIVATE),
        ];
        for (algorithm, signing, verifying) in cases {
            let token = mint_with(signing, algorithm, &full_claims());
            let auth = authorizer(algorithm, verifying);
            for claims in [
                auth.verify_publisher(&token),
                auth.verify_subscriber(&token),
            ] {
                let claims = claims.unwrap_or_else(|e| panic!("{algorithm} {verifying:.40}: {e}"));
                assert_eq!(
                    claims.publish.as_deref(),
                    Some(&["https://example.com/books/{id}".to_owned()][..])
                );
                assert!(claims.can_subscribe_all() && !claims.can_publish_all());
                assert_eq!(
                    claims.payload,
                    Some(serde_json::json!({"user": "alice", "n": 1}))
                );
                let exp = claims.expires_at.unwrap();
                assert!(exp.abs_diff(unix_now() + 3_600) <= 2, "exp {exp}");
            }
        }
    }

    #[test]
    fn expired_token_is_rejected_after_the_leeway_only() {
        let token = mint_at(
            &KeyMaterial::Secret(SECRET.into()),
            Algorithm::HS256,
            &full_claims(),
            NOW,
        )
        .unwrap();
        let auth = authorizer(Algorithm::HS256, SECRET);
        let exp = NOW + 3_600;
        assert!(
            auth.verify_at(Role::Subscriber, &token, exp + LEEWAY_SECS)
                .is_ok()
        );
        let err = auth
            .verify_at(Role::Subscriber, &token, exp + LEEWAY_SECS + 1)
            .unwrap_err();
        assert_eq!(
            err,
            AuthError::Expired {
                expired_at: exp,
                now: exp + LEEWAY_SECS + 1
            }
        );
        assert_eq!(
            err.to_string(),
            "the token expired at 2023-11-14T23:13:20Z (6 s ago): mint a new one"
        );
        // And with the real clock, through the public API.
        let err = auth.verify_publisher(&token).unwrap_err();
        assert!(
            matches!(err, AuthError::Expired { expired_at, .. } if expired_at == exp),
            "{err}"
        );
    }

    #[test]
    fn exp_is_optional_and_nbf_is_honoured() {
        let auth = authorizer(Algorithm::HS256, SECRET);
        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        let no_exp = hs256_raw(header, r#"{"mercure":{"subscribe":["a"]}}"#);
        let claims = auth.verify_at(Role::Subscriber, &no_exp, u64::MAX).unwrap();
        assert_eq!(
            (claims.subscribe, claims.expires_at),
            (Some(vec!["a".to_owned()]), None)
        );

        let nbf = hs256_raw(
            header,
            &format!(r#"{{"nbf":{},"exp":{}.5}}"#, NOW + 60, NOW + 120),
        );
        let err = auth.verify_at(Role::Subscriber, &nbf, NOW).unwrap_err();
        assert_eq!(
            err,
            AuthError::NotYetValid {
                not_before: NOW + 60,
                now: NOW
            }
        );
        assert!(
            auth.verify_at(Role::Subscriber, &nbf, NOW + 60 - LEEWAY_SECS)
                .is_ok()
        );
        // A fractional NumericDate is allowed (RFC 7519 §2).
        let claims = auth.verify_at(Role::Subscriber, &nbf, NOW + 60).unwrap();
        assert_eq!(claims.expires_at, Some(NOW + 120));
    }

    #[test]
    fn missing_mercure_claim_gives_no_rights_and_foreign_claims_are_ignored() {
        let auth = authorizer(Algorithm::HS256, SECRET);
        let token = hs256_raw(
            r#"{"alg":"HS256"}"#,
            r#"{"sub":"x","aud":"elsewhere","iss":"me"}"#,
        );
        assert_eq!(auth.verify_subscriber(&token).unwrap(), Claims::default());
        let token = hs256_raw(
            r#"{"alg":"HS256"}"#,
            r#"{"mercure":{"publish":["*"],"future":1}}"#,
        );
        assert!(auth.verify_publisher(&token).unwrap().can_publish_all());
    }

    #[test]
    fn wrong_key_is_bad_signature() {
        let cases = [
            (
                Algorithm::HS256,
                "another-secret-that-is-32-bytes-long",
                SECRET,
            ),
            (Algorithm::RS256, RSA_PRIVATE, OTHER_RSA_PUBLIC),
            (Algorithm::ES256, EC_PRIVATE, OTHER_EC_PUBLIC),
        ];
        for (algorithm, signing, verifying) in cases {
            let token = mint_with(signing, algorithm, &MintClaims::default());
            let err = authorizer(algorithm, verifying)
                .verify_publisher(&token)
                .unwrap_err();
            assert_eq!(
                err,
                AuthError::BadSignature {
                    role: Role::Publisher
                },
                "{algorithm}"
            );
            assert!(
                err.to_string().contains("configured publisher key"),
                "{err}"
            );
        }
    }

    #[test]
    fn tampered_claims_are_bad_signature() {
        let token = mint_with(SECRET, Algorithm::HS256, &MintClaims::default());
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(r#"{"mercure":{"publish":["*"]}}"#);
        parts[1] = &forged;
        let err = authorizer(Algorithm::HS256, SECRET)
            .verify_publisher(&parts.join("."))
            .unwrap_err();
        assert_eq!(
            err,
            AuthError::BadSignature {
                role: Role::Publisher
            }
        );
    }

    #[test]
    fn other_algorithm_is_wrong_algorithm() {
        let token = mint_with(SECRET, Algorithm::HS256, &MintClaims::default());
        let err = authorizer(Algorithm::RS256, RSA_PUBLIC)
            .verify_subscriber(&token)
            .unwrap_err();
        assert_eq!(
            err,
            AuthError::WrongAlgorithm {
                expected: Algorithm::RS256,
                found: "HS256".to_owned()
            }
        );
        assert_eq!(
            err.to_string(),
            "the token is signed with `HS256`, but this hub accepts only RS256"
        );
    }

    #[test]
    fn hs256_token_signed_with_the_rsa_public_key_is_rejected() {
        // The classic key-confusion attack: the public key is public, so using it as an HMAC secret must fail.
        let token = mint_with("this-is-not-used", Algorithm::HS256, &MintClaims::default());
        let forged = mint(
            &KeyMaterial::Secret(RSA_PUBLIC.to_owned()),
            Algorithm::HS256,
            &MintClaims::default(),
        );
        let auth = authorizer(Algorithm::RS256, RSA_PUBLIC);
        for token in [token, forged.unwrap()] {
            assert!(matches!(
                auth.verify_publisher(&token),
                Err(AuthError::WrongAlgorithm { .. })
            ));
        }
    }

    #[test]
    fn alg_none_is_wrong_algorithm() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        let claims = URL_SAFE_NO_PAD.encode(r#"{"mercure":{"publish":["*"]}}"#);
        let err = authorizer(Algorithm::HS256, SECRET)
            .verify_publisher(&format!("{header}.{claims}."))
            .unwrap_err();
        assert_eq!(
            err,
            AuthError::WrongAlgorithm {
                expected: Algorithm::HS256,
                found: "none".to_owned()
            }
        );
    }

    #[test]
    fn garbage_is_malformed_with_a_message_naming_the_part() {
        let auth = authorizer(Algorithm::HS256, SECRET);
        let good = mint_with(SECRET, Algorithm::HS256, &MintClaims::default());
        let (header, rest) = good.split_once('.').unwrap();
        let cases = [
            ("", "empty"),
            ("not-a-jwt", "this has 1"),
            ("a.b.c.d", "this has 4"),
            ("!!!.e30.sig", "header (first part) is not base64url"),
            (
                &format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("[]")),
                "not a JSON object",
            ),
            (
                &format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("{}")),
                "has no `alg`",
            ),
            (
                &format!("{header}.e30.!!!"),
                "signature (third part) is not base64url",
            ),
            (
                &hs256_raw(r#"{"alg":"HS256"}"#, "not json"),
                "claims are not valid Mercure claims",
            ),
            (
                &hs256_raw(r#"{"alg":"HS256"}"#, r#"{"mercure":{"publish":"*"}}"#),
                "expected a sequence",
            ),
            (
                &hs256_raw(r#"{"alg":"HS256"}"#, r#"{"exp":"tomorrow"}"#),
                "Mercure claims",
            ),
            (
                &hs256_raw(r#"{"alg":"HS256","typ":5}"#, "{}"),
                "header is not valid",
            ),
        ];
        for (token, expected) in cases {
            match auth.verify_subscriber(token) {
                Err(AuthError::Malformed(message)) => {
                    assert!(message.contains(expected), "{token}: {message}")
                }
                other => panic!("{token}: {other:?}"),
            }
        }
        assert!(auth.verify_subscriber(rest).is_err());
    }

    #[test]
    fn role_without_key_is_not_configured() {
        let config = AuthConfig {
            subscriber_key: Some(KeyMaterial::Secret(SECRET.into())),
            ..AuthConfig::default()
        };
        let auth = Authorizer::new(&config).unwrap();
        let token = mint_with(SECRET, Algorithm::HS256, &MintClaims::default());
        assert!(auth.verify_subscriber(&token).is_ok());
        assert!(!auth.is_configured(Role::Publisher));
        let err = auth.verify_publisher(&token).unwrap_err();
        assert_eq!(
            err,
            AuthError::NotConfigured {
                role: Role::Publisher
            }
        );
        assert_eq!(err.status(), 401);
        assert_eq!(
            auth.missing().to_string(),
            "no token: send `Authorization: Bearer <jwt>`, the `authorization` query parameter, \
             or the `mercureAuthorization` cookie"
        );
    }

    #[test]
    fn extraction_order_is_header_then_query_then_cookie() {
        let all = headers(&[
            ("authorization", "Bearer from-header"),
            ("cookie", "mercureAuthorization=from-cookie"),
        ]);
        let query = Some("topic=x&authorization=from-query");
        let token = token_from_request(&all, query, DEFAULT_COOKIE_NAME)
            .unwrap()
            .unwrap();
        assert_eq!(
            (token.value.as_str(), token.source),
            ("from-header", TokenSource::Header)
        );

        let cookie_only = headers(&[("cookie", "mercureAuthorization=from-cookie")]);
        let token = token_from_request(&cookie_only, query, DEFAULT_COOKIE_NAME)
            .unwrap()
            .unwrap();
        assert_eq!(
            (token.value.as_str(), token.source),
            ("from-query", TokenSource::Query)
        );

        let token = token_from_request(&cookie_only, Some("topic=x"), DEFAULT_COOKIE_NAME)
            .unwrap()
            .unwrap();
        assert_eq!(
            (token.value.as_str(), token.source),
            ("from-cookie", TokenSource::Cookie)
        );

        assert_eq!(
            token_from_request(&HeaderMap::new(), Some("topic=x"), DEFAULT_COOKIE_NAME),
            Ok(None)
        );
        assert_eq!(
            token_from_request(&HeaderMap::new(), None, DEFAULT_COOKIE_NAME),
            Ok(None)
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_the_token_trimmed() {
        for value in ["Bearer abc", "bearer abc", "BEARER   abc  ", "Bearer\tabc"] {
            let token = token_from_request(&headers(&[("authorization", value)]), None, "c")
                .unwrap()
                .unwrap();
            assert_eq!(token.value, "abc", "{value:?}");
        }
    }

    #[test]
    fn bad_authorization_headers_are_malformed_without_echoing_credentials() {
        let cases = [
            ("Basic dXNlcjpwYXNzd29yZA==", "uses the `Basic` scheme"),
            ("Bearer", "carries no token"),
            ("Bearer   ", "carries no token"),
            ("", "is empty"),
            (
                "eyJhbGciOiJIUzI1NiJ9.e30.sig",
                "uses the `eyJhbGciOiJIUzI1NiJ9.e30.sig` scheme",
            ),
        ];
        for (value, expected) in cases {
            let err =
                token_from_request(&headers(&[("authorization", value)]), None, "c").unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains(expected) && !message.contains("dXNlcjpw"),
                "{value:?}: {message}"
            );
        }
        let twice = headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]);
        assert!(
            matches!(token_from_request(&twice, None, "c"), Err(AuthError::Malformed(m)) if m.contains("several"))
        );
    }

    #[test]
    fn query_parameter_is_decoded_and_must_be_single_and_non_empty() {
        let token =
            token_from_request(&HeaderMap::new(), Some("?a=1&authorization=x%2Ey.z&b"), "c")
                .unwrap();
        assert_eq!(token.unwrap().value, "x.y.z");
        for query in ["authorization=", "authorization=a&authorization=b"] {
            assert!(matches!(
                token_from_request(&HeaderMap::new(), Some(query), "c"),
                Err(AuthError::Malformed(_))
            ));
        }
        // The name is case-sensitive, as in Mercure.
        assert_eq!(
            token_from_request(&HeaderMap::new(), Some("Authorization=x"), "c"),
            Ok(None)
        );
    }

    #[test]
    fn cookie_is_found_among_others_with_odd_spacing() {
        let cases = [
            ("a=b; mercureAuthorization=tok; c=d", "tok"),
            ("a=b;mercureAuthorization=tok;c=d", "tok"),
            ("  mercureAuthorization =  tok  ;", "tok"),
            (
                "xmercureAuthorization=no; mercureAuthorizationx=no; mercureAuthorization=tok",
                "tok",
            ),
            ("flag; a==b; mercureAuthorization=\"tok\"", "tok"),
            ("mercureAuthorization=; mercureAuthorization=tok", "tok"),
        ];
        for (cookie, expected) in cases {
            let token =
                token_from_request(&headers(&[("cookie", cookie)]), None, DEFAULT_COOKIE_NAME)
                    .unwrap();
            assert_eq!(
                token.map(|t| t.value),
                Some(expected.to_owned()),
                "{cookie:?}"
            );
        }
        let split = headers(&[
            ("cookie", "a=b"),
            ("cookie", "sess=1; mercureAuthorization=tok"),
        ]);
        let token = token_from_request(&split, None, DEFAULT_COOKIE_NAME)
            .unwrap()
            .unwrap();
        assert_eq!(
            (token.value.as_str(), token.source),
            ("tok", TokenSource::Cookie)
        );
        for cookie in [
            "a=b; c=d",
            "mercureAuthorization=",
            "mercureAuthorization",
            "mercureauthorization=x",
        ] {
            let found =
                token_from_request(&headers(&[("cookie", cookie)]), None, DEFAULT_COOKIE_NAME)
                    .unwrap();
            assert_eq!(found, None, "{cookie:?}");
        }
    }

    #[test]
    fn no_input_panics() {
        let header_b64 = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#);
        let odd = [
            String::new(),
            ".".into(),
            "..".into(),
            "...".into(),
            "a.b.c".into(),
            "é.é.é".into(),
            "\0.\0.\0".into(),
            "=.=.=".into(),
            format!("{header_b64}.."),
            format!("{header_b64}.e30."),
            format!("{header_b64}.e30.AAAA"),
            format!("{}.e30.", URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256"}"#)),
            format!(
                "{}.e30.{}",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
                "A".repeat(342)
            ),
            format!(
                "{}.e30.{}",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256"}"#),
                "A".repeat(86)
            ),
            format!("{}.e30.x", URL_SAFE_NO_PAD.encode(r#"{"alg":["HS256"]}"#)),
            hs256_raw(r#"{"alg":"HS256"}"#, r#"{"exp":-5,"nbf":1e300}"#),
            hs256_raw(
                r#"{"alg":"HS256"}"#,
                r#"{"exp":18446744073709551615,"nbf":-1e300}"#,
            ),
            hs256_raw(r#"{"alg":"HS256"}"#, r#"{"mercure":null,"exp":null}"#),
            hs256_raw(r#"{"alg":"HS256"}"#, "[]"),
            "a".repeat(100_000),
            ".".repeat(10_000),
        ];
        let authorizers = [
            authorizer(Algorithm::HS256, SECRET),
            authorizer(Algorithm::RS256, RSA_PUBLIC),
            authorizer(Algorithm::ES256, EC_PUBLIC),
            Authorizer::new(&AuthConfig::default()).unwrap(),
        ];
        for token in &odd {
            for auth in &authorizers {
                for now in [0, NOW, u64::MAX] {
                    let _ = auth.verify_at(Role::Publisher, token, now);
                }
                let _ = auth.verify_subscriber(token);
            }
            let _ = token_from_request(&HeaderMap::new(), Some(token), token);
            let _ = KeyMaterial::from_setting(token);
            if let Ok(value) = HeaderValue::from_str(token) {
                let mut map = HeaderMap::new();
                map.insert(AUTHORIZATION, value.clone());
                map.insert(COOKIE, value);
                let _ = token_from_request(&map, Some(token), DEFAULT_COOKIE_NAME);
            }
        }
        let mut binary = HeaderMap::new();
        binary.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        );
        assert!(matches!(
            token_from_request(&binary, None, "c"),
            Err(AuthError::Malformed(_))
        ));
        binary.remove(AUTHORIZATION);
        binary.insert(
            COOKIE,
            HeaderValue::from_bytes(b"\xff=\xff; c=\xff").unwrap(),
        );
        assert!(matches!(
            token_from_request(&binary, None, "c"),
            Err(AuthError::Malformed(_))
        ));
        for secs in [0, 1, 951_782_400, NOW, u64::MAX] {
            let _ = format_unix_time(secs);
        }
    }

    #[test]
    fn format_unix_time_matches_known_dates() {
        assert_eq!(format_unix_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_unix_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_unix_time(NOW), "2023-11-14T22:13:20Z");
        assert_eq!(format_unix_time(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn bad_keys_stop_the_authorizer_with_a_message_naming_the_key() {
        let sec1 = EC_PRIVATE.replace("PRIVATE KEY", "EC PRIVATE KEY");
        let damaged = RSA_PUBLIC.replace("MIIB", "MIIC");
        let cases: [(Algorithm, &str, &str); 12] = [
            (
                Algorithm::RS256,
                SECRET,
                "subscriber key is a plain secret, but RS256 needs a PEM key",
            ),
            (Algorithm::HS256, RSA_PUBLIC, "HS256 needs a shared secret"),
            (Algorithm::HS256, "", "subscriber key is empty"),
            (
                Algorithm::RS256,
                EC_PUBLIC,
                "is an EC (ES256) key, but the algorithm is RS256",
            ),
            (
                Algorithm::ES256,
                RSA_PUBLIC,
                "is an RSA (RS256) key, but the algorithm is ES256",
            ),
            (
                Algorithm::ES256,
                RSA_PRIVATE,
                "is an RSA (RS256) key, but the algorithm is ES256",
            ),
            (Algorithm::ES256, P384_PUBLIC, "P-256"),
            (
                Algorithm::ES256,
                ED25519_PUBLIC,
                "an Ed25519 (EdDSA, unsupported) key",
            ),
            (
                Algorithm::ES256,
                &sec1,
                "`EC PRIVATE KEY` PEM, which is not supported: convert it to PKCS#8",
            ),
            (
                Algorithm::RS256,
                "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n",
                "not a valid",
            ),
            (Algorithm::RS256, &damaged, "not a usable PEM key"),
            (
                Algorithm::RS256,
                "-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n",
                "`X509 CRL` PEM",
            ),
        ];
        for (algorithm, key, expected) in cases {
            let message = config_error(algorithm, key).to_string();
            assert!(
                message.contains(expected),
                "{algorithm} {key:.40}: {message}"
            );
        }
        let config = AuthConfig {
            cookie_name: "bad name;".into(),
            ..AuthConfig::default()
        };
        assert!(matches!(
            Authorizer::new(&config),
            Err(AuthConfigError::InvalidCookieName { .. })
        ));
    }

    #[test]
    fn weak_keys_are_warnings() {
        let short = authorizer(Algorithm::HS256, "short");
        assert_eq!(short.warnings().len(), 2, "{:?}", short.warnings());
        assert!(short.warnings()[0].contains("publisher key is only 5 bytes"));
        assert!(authorizer(Algorithm::HS256, SECRET).warnings().is_empty());
        assert!(
            authorizer(Algorithm::RS256, RSA_PUBLIC)
                .warnings()
                .is_empty()
        );
        let private = authorizer(Algorithm::ES256, EC_PRIVATE);
        assert!(
            private.warnings()[0].contains("only needs the public key"),
            "{:?}",
            private.warnings()
        );
    }

    #[test]
    fn minting_needs_a_private_key_of_the_right_kind() {
        let cases = [
            (
                Algorithm::RS256,
                RSA_PUBLIC,
                "minting needs the private key",
            ),
            (
                Algorithm::ES256,
                EC_CERTIFICATE,
                "minting needs the private key",
            ),
            (Algorithm::RS256, SECRET, "signing key is a plain secret"),
            (Algorithm::HS256, EC_PRIVATE, "signing key is a PEM key"),
            (Algorithm::RS256, EC_PRIVATE, "is an EC (ES256) key"),
            (Algorithm::HS256, "", "signing key is empty"),
        ];
        for (algorithm, key, expected) in cases {
            let key = KeyMaterial::from_setting(key).unwrap();
            let message = mint(&key, algorithm, &MintClaims::default())
                .unwrap_err()
                .to_string();
            assert!(message.contains(expected), "{algorithm}: {message}");
        }
    }

    #[test]
    fn minted_claims_leave_out_what_was_not_given() {
        let token = mint_with(SECRET, Algorithm::HS256, &MintClaims::default());
        let claims: serde_json::Value =
            jsonwebtoken::dangerous::insecure_decode_claims(&token).unwrap();
        assert_eq!(claims, serde_json::json!({"mercure": {}}));
        let ttl = MintClaims {
            ttl: Some(Duration::from_millis(1_500)),
            ..MintClaims::default()
        };
        let token = mint_at(
            &KeyMaterial::Secret(SECRET.into()),
            Algorithm::HS256,
            &ttl,
            NOW,
        )
        .unwrap();
        let claims: serde_json::Value =
            jsonwebtoken::dangerous::insecure_decode_claims(&token).unwrap();
        assert_eq!(claims["exp"], NOW + 2);
    }

    #[test]
    fn algorithm_parses_case_insensitively_and_lists_the_choices() {
        assert_eq!("hs256".parse::<Algorithm>().unwrap(), Algorithm::HS256);
        assert_eq!(" Rs256 ".parse::<Algorithm>().unwrap(), Algorithm::RS256);
        assert_eq!("ES256".parse::<Algorithm>().unwrap(), Algorithm::ES256);
        let message = "HS512".parse::<Algorithm>().unwrap_err().to_string();
        assert_eq!(
            message,
            "unknown JWT algorithm `HS512`: use HS256, RS256 or ES256"
        );
        let parsed: Algorithm = serde_json::from_str("\"es256\"").unwrap();
        assert_eq!(parsed, Algorithm::ES256);
    }

    #[test]
    fn key_settings_read_files_inline_pem_and_secrets() {
        let dir = std::env::temp_dir().join(format!("tidings-auth-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem_path = dir.join("public.pem");
        std::fs::write(&pem_path, RSA_PUBLIC).unwrap();
        let secret_path = dir.join("secret");
        std::fs::write(&secret_path, "s3cret\r\n").unwrap();

        let pem = KeyMaterial::Pem(RSA_PUBLIC.as_bytes().to_vec());
        assert_eq!(
            KeyMaterial::from_setting(pem_path.to_str().unwrap()).unwrap(),
            pem
        );
        assert_eq!(
            KeyMaterial::from_setting(&format!("@{}", pem_path.display())).unwrap(),
            pem
        );
        let secret = KeyMaterial::from_setting(&format!("@{}", secret_path.display())).unwrap();
        assert_eq!(secret, KeyMaterial::Secret("s3cret".into()));

        let missing = dir.join("missing.pem");
        for setting in [
            format!("@{}", missing.display()),
            missing.display().to_string(),
        ] {
            let message = KeyMaterial::from_setting(&setting).unwrap_err().to_string();
            assert!(
                message.contains(&missing.display().to_string()),
                "{message}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();

        let one_line = RSA_PUBLIC.trim_end().replace('\n', "\\n");
        assert_eq!(
            KeyMaterial::from_setting(&one_line).unwrap(),
            KeyMaterial::Pem(RSA_PUBLIC.trim_end().into())
        );
        assert_eq!(
            KeyMaterial::from_setting("!ChangeThis!").unwrap(),
            KeyMaterial::Secret("!ChangeThis!".into())
        );
    }

    #[test]
    fn debug_output_never_shows_secrets_or_tokens() {
        let secret = format!("{:?}", KeyMaterial::Secret("hunter2-hunter2".into()));
        assert_eq!(secret, "Secret(<15 bytes redacted>)");
        assert_eq!(
            format!("{:?}", KeyMaterial::Pem(RSA_PRIVATE.into())),
            "Pem(\"PRIVATE KEY\")"
        );
        let token = Token {
            value: "eyJ.eyJ.sig".into(),
            source: TokenSource::Query,
        };
        assert!(!format!("{token:?}").contains("eyJ"));
        let auth = format!("{:?}", authorizer(Algorithm::HS256, SECRET));
        assert!(!auth.contains(SECRET) && !auth.contains("97, 45"), "{auth}");
    }

    #[test]
    fn tokens_signed_by_another_implementation_verify() {
        // Signed with the `openssl` CLI: ECDSA signatures with a high and a low `s` (other JWT libraries emit
        // both, so rejecting high `s` would fail half their tokens) and a PKCS#1 v1.5 RSA signature.
        let es256 = authorizer(Algorithm::ES256, EC_PUBLIC);
        for token in [OPENSSL_ES256_HIGH_S, OPENSSL_ES256_LOW_S] {
            let claims = es256.verify_subscriber(token).unwrap();
            assert_eq!(
                claims.subscribe,
                Some(vec!["https://example.com/{id}".to_owned()])
            );
            assert_eq!(claims.payload, Some(serde_json::json!({"via": "openssl"})));
        }
        let rs256 = authorizer(Algorithm::RS256, RSA_CERTIFICATE);
        assert!(
            rs256
                .verify_publisher(OPENSSL_RS256)
                .unwrap()
                .can_publish_all()
        );
    }

    const OPENSSL_ES256_HIGH_S: &str = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.\
        eyJtZXJjdXJlIjp7InN1YnNjcmliZSI6WyJodHRwczovL2V4YW1wbGUuY29tL3tpZH0iXSwicGF5bG9hZCI6eyJ2aWEiOiJvcGVuc3NsIn19fQ.\
        nih8cRp8bx9l6AJzVHGOF2H7x_T9x_Y_UkaIUop4q36qecVai8wr6LDBxmoB5ttgnjQhkDv8eaKiTRQQiI2Bxw";
    const OPENSSL_ES256_LOW_S: &str = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.\
        eyJtZXJjdXJlIjp7InN1YnNjcmliZSI6WyJodHRwczovL2V4YW1wbGUuY29tL3tpZH0iXSwicGF5bG9hZCI6eyJ2aWEiOiJvcGVuc3NsIn19fQ.\
        vJSoIYk4zuWeo9w8VeFwCy2UsTxrA5DsZgPIbqNIKFcv-OHg6W0KCqg8hRtrVUlAHyW_kuaeysLOFWnETUIL0g";
    const OPENSSL_RS256: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJtZXJjdXJlIjp7InB1Ymxpc2giOlsiKiJdfX0.\
        Rlz0PYWnmgwCcztIWKSTH_-bvf_tkgtPAO28aO1No37mHKo2UNrdph7hKpSdAaiPr1D4JNxlCD2MOAod-FN3OJNBQPTLTYuDl2zTFXqTLmny\
        jGO39UeMuakANmruWOEbgvVPzNDbKpIZtq4N3WW4negJqoi942xp219WAHNMXrfi_9fooj51nSsVH4h6Xka1oF0O7ijFDH4h8k7w1NggeLUx\
        lsNsEnnA1kHXRIJSYjzHWdH8MsKCkHBuyvYokqUGR9daOvE_FrDIho_2AYF-4ShUg5RCWtmDD_M0QXZrK_cbJYZSUjnK2XsHdEYUpna68RV4\
        Y6MqlTZQk0JAveQT5Q";

    // Test keys generated once on this machine with `openssl genpkey`, `openssl pkey -pubout`,
    // `openssl rsa -RSAPublicKey_out` and `openssl req -x509`. They protect nothing.
    const RSA_PRIVATE: &str = "\
    -----BEGIN PRIVATE KEY-----\n\
    MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQDJNRSjk9ZayOQu\n\
    uPB9Xozby8bb0EACgGeY8noBQBuJgzccmT3ZBtLeFEcewDBUa6Qvg6FgYoqnscJq\n\
    m+1ZyVmWY7PMCeu95GK2bzPAnqqOAYUQ1r0S21gMqU8QObAm1Gkq+m50ZZuvWpLx\n\
    1yoIpPWotEddYSrqd7VgvSVn0n45/qTD0uwQdBa2psEvJCjknbg1K14JtTWZYPaL\n\
    ojai07PgiVK3o6hyh5ZNoTf199tLom0mRZXuwlthacvFPRyc9DHJoDihZW6hpulg\n\
    0SNK5YDClwjpLnWH+jFDmPoqdj0T4BzA6dRReOdXSCQnjcY3vUib2siLHOYnTAEj\n\
    73KmclcxAgMBAAECggEAAnfkC9KXvN5AKjMm/EhouAFPZvwjzeK3//eGX+2tYiNA\n\
    bcQ9lCQQxLb5AqIVpwfOmu3de4yH7OEvPF4zHqXr2JPwFVOllIXjdgobZ3HML+Dp\n\
    76GCbn4vUxvwXNedVGjzN5WSCBvklEWQiLaZ/5hGTSUVh0pBQ9Y3PO4jF2YyLy6j\n\
    HO8qCclT/8N57EnI8dNXKnN9sz9koUCx8cCQ9KYLOxRObd4vWF1CM85OvZIwzr5/\n\
    UUWWF8Xk8Derd+rrXggDEdzS3pf4jSFlyge4YmWN2GjL3Ry0h9GTYCAJy2SaJzeM\n\
    6bOrJfgGXYtc5Ie4yQd8H43NcnRdZisfkNTmNlBzgQKBgQDoVM32uYurKE7V1xEz\n\
    pbBbe7lV0m2L8ChryKrAIvqqdct6VIY7w8GVe5ZmkGj6jVq1HEKSuoqkGEtiwpXu\n\
    Xp6K7xI6PTxMc1NbbuR+Nija1pMpy5nWbB0nhRjvD6oqcZ3UJfROq0C/kiAlr6d/\n\
    lqvnFOkDVgG3K2FUS3jFixzwgQKBgQDdtJCSnqCUVlERKHHFmcwcQHNN06Ax5ZA6\n\
    v/A2YgXhBm27/h03ppZujCIqvpWA95qnQacIh3e5KRjHWmYvoeJ8T+exevHxEO+C\n\
    2ZiBCURZWr7k18/rwNlLaBdFLYYUWY4tigmEaVcPs3bqOSleL1xAync00RPGHXFZ\n\
    sY4SjckOsQKBgQC6U8kbJpOtIRaYyXMySJ+3vvJUsf7JTEIer0DB90uxiec2pLND\n\
    GywWBpgIiainyNYGijOaGaE3GYTcH9K+6YOdST8FFjdV2OfxXG5ECouZdp1v16n5\n\
    HZwEJeppT9bZU2WQzx+wOAglm7vMfaOH3/7dxRdbZY7aqB/WyvCA/aCoAQKBgQCF\n\
    sTz9LWroCKUaE6mH3xaWcscVR2hyrlwrEVNpd/LTn2zM0JAN3wcX4qk33XWKL8Wy\n\
    1oRDQG2R2pZ2oKy+TICnNgghnmIHXI8R+OVd6pisyWwT05AuOjzOnBZsQOd5ngd+\n\
    rp7OmjdF4JL060Nm6GhZKb54uxuRfG++BrQFvDpiAQKBgQCGawzCMon8N9drU9U1\n\
    BQKCJzBnEwdnm9zRPTy4icRo9pYTDS1bVIsmopFSCQmdI5szm4+eIunX++lO6JpS\n\
    zwp/SDUQTXi6vobimoqeC1HluC1vakCNb7nTTJHNa9kCdm5BLuMCfAFIPR4icFvo\n\
    M5Ksc1k9Tlh7rFLfBPRMViHGoA==\n\
    -----END PRIVATE KEY-----\n";
    const RSA_PUBLIC: &str = "\
    -----BEGIN PUBLIC KEY-----\n\
    MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAyTUUo5PWWsjkLrjwfV6M\n\
    28vG29BAAoBnmPJ6AUAbiYM3HJk92QbS3hRHHsAwVGukL4OhYGKKp7HCapvtWclZ\n\
    lmOzzAnrveRitm8zwJ6qjgGFENa9EttYDKlPEDmwJtRpKvpudGWbr1qS8dcqCKT1\n\
    qLRHXWEq6ne1YL0lZ9J+Of6kw9LsEHQWtqbBLyQo5J24NSteCbU1mWD2i6I2otOz\n\
    4IlSt6OocoeWTaE39ffbS6JtJkWV7sJbYWnLxT0cnPQxyaA4oWVuoabpYNEjSuWA\n\
    wpcI6S51h/oxQ5j6KnY9E+AcwOnUUXjnV0gkJ43GN71Im9rIixzmJ0wBI+9ypnJX\n\
    MQIDAQAB\n\
    -----END PUBLIC KEY-----\n";
    const RSA_PUBLIC_PKCS1: &str = "\
    -----BEGIN RSA PUBLIC KEY-----\n\
    MIIBCgKCAQEAyTUUo5PWWsjkLrjwfV6M28vG29BAAoBnmPJ6AUAbiYM3HJk92QbS\n\
    3hRHHsAwVGukL4OhYGKKp7HCapvtWclZlmOzzAnrveRitm8zwJ6qjgGFENa9EttY\n\
    DKlPEDmwJtRpKvpudGWbr1qS8dcqCKT1qLRHXWEq6ne1YL0lZ9J+Of6kw9LsEHQW\n\
    tqbBLyQo5J24NSteCbU1mWD2i6I2otOz4IlSt6OocoeWTaE39ffbS6JtJkWV7sJb\n\
    YWnLxT0cnPQxyaA4oWVuoabpYNEjSuWAwpcI6S51h/oxQ5j6KnY9E+AcwOnUUXjn\n\
    V0gkJ43GN71Im9rIixzmJ0wBI+9ypnJXMQIDAQAB\n\
    -----END RSA PUBLIC KEY-----\n";
    const RSA_CERTIFICATE: &str = "\
    -----BEGIN CERTIFICATE-----\n\
    MIIDETCCAfmgAwIBAgIUFoV9tujYo7LHbqyy6f4JBNIlq6kwDQYJKoZIhvcNAQEL\n\
    BQAwFzEVMBMGA1UEAwwMdGlkaW5ncy10ZXN0MCAXDTI2MTEyMTA2NTkwM1oYDzIx\n\
    MjYxMDI4MDY1OTAzWjAXMRUwEwYDVQQDDAx0aWRpbmdzLXRlc3QwggEiMA0GCSqG\n\
    SIb3DQEBAQUAA4IBDwAwggEKAoIBAQDJNRSjk9ZayOQuuPB9Xozby8bb0EACgGeY\n\
    8noBQBuJgzccmT3ZBtLeFEcewDBUa6Qvg6FgYoqnscJqm+1ZyVmWY7PMCeu95GK2\n\
    bzPAnqqOAYUQ1r0S21gMqU8QObAm1Gkq+m50ZZuvWpLx1yoIpPWotEddYSrqd7Vg\n\
    vSVn0n45/qTD0uwQdBa2psEvJCjknbg1K14JtTWZYPaLojai07PgiVK3o6hyh5ZN\n\
    oTf199tLom0mRZXuwlthacvFPRyc9DHJoDihZW6hpulg0SNK5YDClwjpLnWH+jFD\n\
    mPoqdj0T4BzA6dRReOdXSCQnjcY3vUib2siLHOYnTAEj73KmclcxAgMBAAGjUzBR\n\
    MB0GA1UdDgQWBBSeksMlHRwfPybhBEuGQyDB8a4uWjAfBgNVHSMEGDAWgBSeksMl\n\
    HRwfPybhBEuGQyDB8a4uWjAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUA\n\
    A4IBAQC6jOdYRYpE3u02q5/WldAfOOe1tFZAUzA/w68GZIaHUk+gQH6IgAgfxw7w\n\
    +mHCBpU9EuWxbxQS9YuCBPFUGtfHNk1eeTgNViB/5H80b5LEMrsD27pEXCDVeNSy\n\
    2CnYkmbD7KJYpd/zDK5TOrIxOO90ynHGQi+sO/KJj8GFyRVNTObJNcrfuI7vt2DE\n\
    CBTri9v9/4M3KWZU16Iv5pmoE1RvePiND984DxwSNfoVUEgdu9i9vzuZo904A4D2\n\
    a9K2a2k+BOMv1eRsPdz8473FqOBJOpyoYY1+nBFUo3+Fn0WL99ukH0aSg+YpuJNO\n\
    6Jq78iAMb8i7i0YchtrvYft42lp0\n\
    -----END CERTIFICATE-----\n";
    const OTHER_RSA_PUBLIC: &str = "\
    -----BEGIN PUBLIC KEY-----\n\
    MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAuGKUp1awZdMpfF/XnR8G\n\
    3/chyMZ8sX0pxxkqt/35ClUtG8UkcHgG1zcEz0UkA4XPNJ+zjbFrasmU56ty07bs\n\
    WZDAwpMIZYzGI6OOhYoNrx6T5cBL3Hkr0p8iLOlZRDAUD6aH6tIc4OFHjYeErgty\n\
    DSt1Exn0EPFLSEzFtva7g5myIXEUQIpk+kYFa9tqyHH7Tcj783Ig3sBg/IRDqzEt\n\
    M6zZ6KGw0ce1j73oj5JWYzo5pQXCHLaO4som97RdbKrkABQg5aur/h3sgDibcsSW\n\
    vqiNLCGu+4wh6EcOyoCNmMMgEop46RhhaBTTWz8voqzX6ZJ3mnO1f95KI/pEVoee\n\
    ywIDAQAB\n\
    -----END PUBLIC KEY-----\n";
    const EC_PRIVATE: &str = "\
    -----BEGIN PRIVATE KEY-----\n\
    MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg5UmID9oOQrGXX75G\n\
    od8rYK/9tbKZrThxCjaqOEz+nwKhRANCAATNwPHWP4HwP94AuXHkJcebDZpHgjjg\n\
    En//W/3xl6dA4De6KCAZgzHt0LKV76VJDuzdXLCVsB4gT7fZCWcuVj6l\n\
    -----END PRIVATE KEY-----\n";
    const EC_PUBLIC: &str = "\
    -----BEGIN PUBLIC KEY-----\n\
    MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEzcDx1j+B8D/eALlx5CXHmw2aR4I4\n\
    4BJ//1v98ZenQOA3uiggGYMx7dCyle+lSQ7s3VywlbAeIE+32QlnLlY+pQ==\n\
    -----END PUBLIC KEY-----\n";
    const EC_CERTIFICATE: &str = "\
    -----BEGIN CERTIFICATE-----\n\
    MIIBhTCCASugAwIBAgIUIpEemNSzYWWRslHj8i/y0J+tZykwCgYIKoZIzj0EAwIw\n\
    FzEVMBMGA1UEAwwMdGlkaW5ncy10ZXN0MCAXDTI2MTEyMTA2NTkwM1oYDzIxMjYx\n\
    MDI4MDY1OTAzWjAXMRUwEwYDVQQDDAx0aWRpbmdzLXRlc3QwWTATBgcqhkjOPQIB\n\
    BggqhkjOPQMBBwNCAATNwPHWP4HwP94AuXHkJcebDZpHgjjgEn//W/3xl6dA4De6\n\
    KCAZgzHt0LKV76VJDuzdXLCVsB4gT7fZCWcuVj6lo1MwUTAdBgNVHQ4EFgQUzOCa\n\
    buGoSwvx0+1Jb8yB505rP5gwHwYDVR0jBBgwFoAUzOCabuGoSwvx0+1Jb8yB505r\n\
    P5gwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAo5jN6YCTY61D\n\
    AIq2h+I6oX5MWNNa59zsHL2nA5m7UU4CIDLBFjmEA1x9h48YaNHsG/I9QCaqKGW1\n\
    fMmusmvJg8+w\n\
    -----END CERTIFICATE-----\n";
    const OTHER_EC_PUBLIC: &str = "\
    -----BEGIN PUBLIC KEY-----\n\
    MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEliYgKuaYygQlC18cdN9vsVUaL0wL\n\
    WBR4HnGl92UB41O3aXYdOPeNVYlc/8UC2rxcu1voBGmr+FfNPaBNa3DWmg==\n\
    -----END PUBLIC KEY-----\n";
    const P384_PUBLIC: &str = "\
    -----BEGIN PUBLIC KEY-----\n\
    MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEhIj3njz6fyfTGyD736Tgku3fFn9R4OI1\n\
    C5IPnd8TcmntCvZMgVnBCtkeuSQaa5hJ0KuaJZDsWa/WERUbqtJEdvaClYthxgMG\n\
    QbxXcR8a5PjorjmPLrYQRZ9cptkyPbaW\n\
    -----END PUBLIC KEY-----\n";
    const ED25519_PUBLIC: &str = "\
    -----BEGIN PUBLIC KEY-----\n\
    MCowBQYDK2VwAyEAQaJtywp2oYIREklpg3oZDJYwqTo2Mu0RYG2tnGzbtKo=\n\
    -----END PUBLIC KEY-----\n";
}
