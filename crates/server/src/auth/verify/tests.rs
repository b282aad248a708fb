//! Verification end to end: tokens minted here and elsewhere, every way a token can be refused, and odd
//! input.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderValue};

use crate::auth::error::format_unix_time;
use crate::auth::fixtures::*;
use crate::auth::mint::mint_at;
use crate::auth::{
    Algorithm, AuthConfig, AuthError, Authorizer, Claims, DEFAULT_COOKIE_NAME, KeyMaterial,
    LEEWAY_SECS, MintClaims, Role, mint, token_from_request, unix_now,
};

fn full_claims() -> MintClaims {
    MintClaims {
        publish: Some(vec!["https://example.com/books/{id}".to_owned()]),
        subscribe: Some(vec!["*".to_owned()]),
        payload: Some(serde_json::json!({"user": "alice", "n": 1})),
        ttl: Some(Duration::from_secs(3_600)),
        draft08: None,
    }
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
        Err(AuthError::Presentation(_))
    ));
    binary.remove(AUTHORIZATION);
    binary.insert(
        COOKIE,
        HeaderValue::from_bytes(b"\xff=\xff; c=\xff").unwrap(),
    );
    assert!(matches!(
        token_from_request(&binary, None, "c"),
        Err(AuthError::Presentation(_))
    ));
    for secs in [0, 1, 951_782_400, NOW, u64::MAX] {
        let _ = format_unix_time(secs);
    }
}
