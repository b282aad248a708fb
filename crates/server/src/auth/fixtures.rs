//! What the unit tests share: test keys and tokens (in `testdata/`), and shortcuts to build an authorizer
//! or a token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;

use super::{Algorithm, AuthConfig, Authorizer, KeyMaterial, MintClaims, mint};

pub(super) const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";
pub(super) const NOW: u64 = 1_700_000_000;

pub(super) fn authorizer(algorithm: Algorithm, key: &str) -> Authorizer {
    let key = KeyMaterial::from_setting(key).unwrap();
    let config = AuthConfig {
        publisher_key: Some(key.clone()),
        subscriber_key: Some(key),
        algorithm,
        ..AuthConfig::default()
    };
    Authorizer::new(&config).unwrap()
}

pub(super) fn mint_with(key: &str, algorithm: Algorithm, claims: &MintClaims) -> String {
    mint(&KeyMaterial::from_setting(key).unwrap(), algorithm, claims).unwrap()
}

/// A token with the given header and claims JSON and a valid HS256 signature by `SECRET`.
pub(super) fn hs256_raw(header: &str, claims: &str) -> String {
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

// Signed with the `openssl` CLI; see `tokens_signed_by_another_implementation_verify`. The files have no
// final newline: each is exactly the token.
pub(super) const OPENSSL_ES256_HIGH_S: &str = include_str!("testdata/openssl_es256_high_s.jwt");
pub(super) const OPENSSL_ES256_LOW_S: &str = include_str!("testdata/openssl_es256_low_s.jwt");
pub(super) const OPENSSL_RS256: &str = include_str!("testdata/openssl_rs256.jwt");

// Test keys generated once on this machine with `openssl genpkey`, `openssl pkey -pubout`,
// `openssl rsa -RSAPublicKey_out` and `openssl req -x509`. They protect nothing.
pub(super) const RSA_PRIVATE: &str = include_str!("testdata/rsa_private.pem");
pub(super) const RSA_PUBLIC: &str = include_str!("testdata/rsa_public.pem");
pub(super) const RSA_PUBLIC_PKCS1: &str = include_str!("testdata/rsa_public_pkcs1.pem");
pub(super) const RSA_CERTIFICATE: &str = include_str!("testdata/rsa_certificate.pem");
pub(super) const OTHER_RSA_PUBLIC: &str = include_str!("testdata/other_rsa_public.pem");
pub(super) const EC_PRIVATE: &str = include_str!("testdata/ec_private.pem");
pub(super) const EC_PUBLIC: &str = include_str!("testdata/ec_public.pem");
pub(super) const EC_CERTIFICATE: &str = include_str!("testdata/ec_certificate.pem");
pub(super) const OTHER_EC_PUBLIC: &str = include_str!("testdata/other_ec_public.pem");
pub(super) const P384_PUBLIC: &str = include_str!("testdata/p384_public.pem");
pub(super) const ED25519_PUBLIC: &str = include_str!("testdata/ed25519_public.pem");
