//! [`Authorizer`]: checks a token's signature, algorithm and times with the role's key and returns its
//! [`Claims`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::{Error as JwtError, ErrorKind as JwtErrorKind};
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use tidings_hub::Matcher;

use super::crypto::{decoding_key, use_rust_crypto};
use super::error::{malformed, quote};
use super::{
    Algorithm, AuthConfigError, AuthError, DEFAULT_COOKIE_NAME, KeyMaterial, KeyUse, LEEWAY_SECS,
    Role, unix_now,
};

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
    /// Issuers whose draft-08 (RFC 9068) tokens are accepted, compared exactly with `iss`. Default none:
    /// draft-08 tokens are refused, draft-07 ones (a `mercure` claim) work as before.
    pub issuers: Vec<String>,
    /// The audience draft-08 tokens must name in `aud`: the hub's public URL. Default none (every
    /// draft-08 token is refused).
    pub audience: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            publisher_key: None,
            subscriber_key: None,
            algorithm: Algorithm::default(),
            cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
            issuers: Vec::new(),
            audience: None,
        }
    }
}

/// The `type` of Mercure's RFC 9396 authorization details.
pub const MERCURE_DETAIL_TYPE: &str = "https://mercure.rocks/authorization-detail";

/// The most authorization details, and topics over all of them, a draft-08 token may hold.
pub const MAX_DETAILS: usize = 100;

/// What a draft-08 token grants, from its Mercure `authorization_details`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grants {
    /// Topics this token may publish to.
    pub publish: Vec<Matcher>,
    /// Topics this token may receive private updates for.
    pub subscribe: Vec<Matcher>,
    /// The `payload` of each subscribe detail, with that detail's topics, in the token's order.
    pub payloads: Vec<(Vec<Matcher>, serde_json::Value)>,
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
    /// A draft-08 token's grants; when set, the `mercure` claim is ignored (it never widens them).
    #[serde(skip)]
    pub grants: Option<Grants>,
}

impl Claims {
    /// The topics this token may publish to, whichever draft it follows.
    pub fn publish_matchers(&self) -> Vec<Matcher> {
        match &self.grants {
            Some(grants) => grants.publish.clone(),
            None => topics(self.publish.as_deref()),
        }
    }

    /// The topics this token may receive private updates for; `None` when it names none.
    pub fn subscribe_matchers(&self) -> Option<Vec<Matcher>> {
        match &self.grants {
            Some(grants) => Some(grants.subscribe.clone()),
            None => self.subscribe.as_deref().map(|list| topics(Some(list))),
        }
    }

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

fn topics(list: Option<&[String]>) -> Vec<Matcher> {
    list.unwrap_or_default()
        .iter()
        .map(Matcher::topic)
        .collect()
}

/// An `aud` claim: one string or several.
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The JWT body as the hub reads it; unknown claims (`sub`, `jti`, …) are ignored as in Mercure.
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    authorization_details: Option<serde_json::Value>,
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
    issuers: Vec<String>,
    audience: Option<String>,
    /// Relative URL patterns in grants resolve against the audience (the hub's URL).
    base: Option<url::Url>,
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
            issuers: config.issuers.clone(),
            audience: config.audience.clone(),
            base: config
                .audience
                .as_deref()
                .and_then(|a| url::Url::parse(a).ok()),
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

    /// The cookie that may carry a token; pass it to [`token_from_request`](super::token_from_request).
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
        let access_token = check_header(token, self.algorithm)?;
        let raw = jsonwebtoken::decode::<RawClaims>(token, key, &self.validation)
            .map_err(|e| decode_error(e, token, role))?
            .claims;
        // Draft-08: a typed access token, or one with authorization details, gets every check of
        // RFC 9068, whatever else it carries.
        let draft08 = access_token || raw.authorization_details.is_some();
        if draft08 {
            self.check_access_token(access_token, &raw)?;
        }

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
        if draft08 {
            let grants = parse_details(raw.authorization_details.as_ref(), self.base.as_ref())?;
            return Ok(Claims {
                expires_at,
                grants: Some(grants),
                ..Claims::default()
            });
        }
        Ok(Claims {
            expires_at,
            ..raw.mercure.unwrap_or_default()
        })
    }

    /// RFC 9068's checks of a draft-08 token: `typ`, a trusted `iss`, this hub in `aud`, an `exp`.
    fn check_access_token(&self, typed: bool, raw: &RawClaims) -> Result<(), AuthError> {
        if !typed {
            return Err(malformed(
                "a token with authorization_details is an RFC 9068 access token: its header needs typ at+jwt",
            ));
        }
        match raw.iss.as_deref() {
            None => return Err(malformed("an at+jwt token needs an iss claim")),
            Some(iss) if !self.issuers.iter().any(|i| i == iss) => {
                return Err(AuthError::UntrustedIssuer { found: quote(iss) });
            }
            Some(_) => {}
        }
        let audience = self.audience.as_deref().unwrap_or_default();
        let named = match &raw.aud {
            None => false,
            Some(Audience::One(aud)) => aud == audience,
            Some(Audience::Many(list)) => list.iter().any(|a| a == audience),
        };
        if !named {
            return Err(AuthError::WrongAudience {
                expected: audience.to_owned(),
            });
        }
        if raw.exp.is_none() {
            return Err(malformed("an at+jwt token needs an exp claim"));
        }
        Ok(())
    }
}

/// Mercure's `authorization_details` (RFC 9396): entries of [`MERCURE_DETAIL_TYPE`], others ignored. Any
/// malformed Mercure entry refuses the whole token (no partial grants).
fn parse_details(
    details: Option<&serde_json::Value>,
    base: Option<&url::Url>,
) -> Result<Grants, AuthError> {
    use serde_json::Value;
    let bad = |why: &str| AuthError::Malformed(format!("authorization_details: {why}"));
    let mut grants = Grants::default();
    let Some(details) = details else {
        return Ok(grants);
    };
    let Value::Array(entries) = details else {
        return Err(bad("must be an array"));
    };
    if entries.len() > MAX_DETAILS {
        return Err(bad(&format!("more than {MAX_DETAILS} entries")));
    }
    let mut topic_count = 0;
    for entry in entries {
        let Value::Object(entry) = entry else {
            return Err(bad("each entry must be an object"));
        };
        if entry.get("type").and_then(Value::as_str) != Some(MERCURE_DETAIL_TYPE) {
            continue;
        }
        let Some(Value::Array(actions)) = entry.get("actions") else {
            return Err(bad("a Mercure entry needs actions, an array"));
        };
        if actions.is_empty() {
            return Err(bad("actions is empty"));
        }
        let mut publish = false;
        let mut subscribe = false;
        for action in actions {
            match action.as_str() {
                Some("publish") => publish = true,
                Some("subscribe") => subscribe = true,
                Some(_) => {}
                None => return Err(bad("every action must be a string")),
            }
        }
        let Some(Value::Array(list)) = entry.get("topics") else {
            return Err(bad("a Mercure entry needs topics, an array"));
        };
        if list.is_empty() {
            return Err(bad("topics is empty"));
        }
        topic_count += list.len();
        if topic_count > MAX_DETAILS {
            return Err(bad(&format!("more than {MAX_DETAILS} topics")));
        }
        let mut matchers = Vec::with_capacity(list.len());
        for topic in list {
            let Value::Object(topic) = topic else {
                return Err(bad(
                    "each topic must be an object like {\"match\": \"…\", \"match_type\": \"exact\"}",
                ));
            };
            let Some(value) = topic.get("match").and_then(Value::as_str) else {
                return Err(bad("each topic needs match, a string"));
            };
            let matcher = match topic.get("match_type") {
                None => Matcher::exact(value),
                Some(Value::String(t)) if t == "exact" => Matcher::exact(value),
                Some(Value::String(t)) if t == "urlpattern" => {
                    tidings_hub::Selector::url_pattern(value, base)
                        .map_err(|e| bad(&format!("topic {:?}: {e}", quote(value))))?;
                    Matcher::url_pattern(value)
                }
                Some(_) => return Err(bad("match_type must be exact or urlpattern")),
            };
            matchers.push(matcher);
        }
        let payload = match entry.get("payload") {
            None | Some(Value::Null) => None,
            Some(p @ Value::Object(_)) => Some(p.clone()),
            Some(_) => return Err(bad("payload must be an object")),
        };
        if publish {
            grants.publish.extend(matchers.iter().cloned());
        }
        if subscribe {
            if let Some(payload) = payload {
                grants.payloads.push((matchers.clone(), payload));
            }
            grants.subscribe.extend(matchers);
        }
    }
    Ok(grants)
}

/// Reads the header's `alg` and compares it with the hub's before any cryptography runs; refuses keys
/// carried in the header (`jwk`, `jku`, `x5u`: only configured keys are trusted). Returns whether `typ`
/// is RFC 9068's `at+jwt`.
fn check_header(token: &str, expected: Algorithm) -> Result<bool, AuthError> {
    #[derive(Deserialize)]
    struct RawHeader {
        alg: Option<String>,
        // Any JSON: jsonwebtoken types the header later and says what is wrong.
        #[serde(default)]
        typ: Option<serde_json::Value>,
        #[serde(default)]
        jwk: Option<serde_json::Value>,
        #[serde(default)]
        jku: Option<serde_json::Value>,
        #[serde(default)]
        x5u: Option<serde_json::Value>,
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
    if header.jwk.is_some() || header.jku.is_some() || header.x5u.is_some() {
        return Err(malformed(
            "the JWT header carries a key (jwk, jku or x5u): this hub trusts only its configured keys",
        ));
    }
    let typ = header
        .typ
        .as_ref()
        .and_then(serde_json::Value::as_str)
        .map(str::to_ascii_lowercase);
    Ok(matches!(
        typ.as_deref(),
        Some("at+jwt" | "application/at+jwt")
    ))
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

#[cfg(test)]
mod tests;
