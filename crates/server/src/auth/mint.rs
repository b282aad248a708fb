//! [`mint`]: writing a signed token with a `mercure` claim.

use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;

use super::crypto::{private_key, use_rust_crypto};
use super::{Algorithm, AuthConfigError, KeyMaterial, KeyUse, unix_now};

/// What `mint` needs to write a token with Mercure claims.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MintClaims {
    /// `mercure.publish` selectors; `None` leaves the field out.
    pub publish: Option<Vec<String>>,
    /// `mercure.subscribe` selectors; `None` leaves the field out.
    pub subscribe: Option<Vec<String>>,
    /// `mercure.payload`; `None` leaves the field out.
    pub payload: Option<serde_json::Value>,
    /// Lifetime from now, rounded up to whole seconds; `None` writes no `exp` (the token never expires;
    /// a draft-08 token then lives [`DRAFT_08_DEFAULT_TTL`], since it must have one).
    pub ttl: Option<Duration>,
    /// Mint a Mercure draft-08 token (RFC 9068 `at+jwt`, grants in `authorization_details`) instead of a
    /// draft-07 one (a `mercure` claim): `publish` and `subscribe` are then exact matchers.
    pub draft08: Option<Draft08Claims>,
}

/// What a draft-08 token carries besides its grants.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Draft08Claims {
    /// `iss`: who issued it (the hub lists trusted issuers with `--jwt-issuer`).
    pub issuer: String,
    /// `aud`: the hub it is for (its public URL, unless the hub sets `--jwt-audience`).
    pub audience: String,
    /// URL patterns the token may publish to, besides `publish`.
    pub publish_urlpatterns: Vec<String>,
    /// URL patterns the token may receive private updates for, besides `subscribe`.
    pub subscribe_urlpatterns: Vec<String>,
}

/// The lifetime of a draft-08 token minted without one.
pub const DRAFT_08_DEFAULT_TTL: Duration = Duration::from_secs(3_600);

/// Mints a signed token with a `mercure` claim, for `tidings token` and the dev-mode demo token.
///
/// HS256 signs with the secret; RS256 and ES256 need the private key PEM (see the `auth` module docs).
///
/// # Errors
///
/// An [`AuthConfigError`] with [`KeyUse::Sign`](crate::KeyUse::Sign) if the key does not fit the algorithm or is not a private
/// key, or [`AuthConfigError::Sign`] if signing itself fails.
pub fn mint(
    key: &KeyMaterial,
    algorithm: Algorithm,
    claims: &MintClaims,
) -> Result<String, AuthConfigError> {
    use_rust_crypto();
    mint_at(key, algorithm, claims, unix_now())
}

pub(super) fn mint_at(
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
    if let Some(draft08) = &claims.draft08 {
        let ttl = claims.ttl.unwrap_or(DRAFT_08_DEFAULT_TTL);
        let body = draft08_body(claims, draft08, now, now.saturating_add(ttl_secs(ttl)));
        let mut header = Header::new(algorithm.to_jwt());
        header.typ = Some("at+jwt".into());
        return jsonwebtoken::encode(&header, &body, &encoding_key).map_err(|e| {
            AuthConfigError::Sign {
                reason: e.to_string(),
            }
        });
    }
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

/// The claims of a draft-08 token: one authorization detail per action.
fn draft08_body(
    claims: &MintClaims,
    draft08: &Draft08Claims,
    now: u64,
    exp: u64,
) -> serde_json::Value {
    use serde_json::json;
    let topics = |exact: &Option<Vec<String>>, patterns: &[String]| -> Vec<serde_json::Value> {
        exact
            .iter()
            .flatten()
            .map(|m| json!({"match": m, "match_type": "exact"}))
            .chain(
                patterns
                    .iter()
                    .map(|m| json!({"match": m, "match_type": "urlpattern"})),
            )
            .collect()
    };
    let mut details = Vec::new();
    let publish = topics(&claims.publish, &draft08.publish_urlpatterns);
    if !publish.is_empty() {
        details.push(json!({
            "type": super::MERCURE_DETAIL_TYPE,
            "actions": ["publish"],
            "topics": publish,
        }));
    }
    let subscribe = topics(&claims.subscribe, &draft08.subscribe_urlpatterns);
    if !subscribe.is_empty() {
        let mut detail = json!({
            "type": super::MERCURE_DETAIL_TYPE,
            "actions": ["subscribe"],
            "topics": subscribe,
        });
        if let Some(payload) = &claims.payload {
            detail["payload"] = payload.clone();
        }
        details.push(detail);
    }
    json!({
        "iss": draft08.issuer,
        "aud": draft08.audience,
        "exp": exp,
        "iat": now,
        "authorization_details": details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::fixtures::*;

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
}
