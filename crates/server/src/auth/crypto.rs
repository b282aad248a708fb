//! From [`KeyMaterial`] to jsonwebtoken's keys: picks the crypto backend, sorts PEMs by kind, checks each key
//! fully at startup, and explains a key that does not fit.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::{Error as JwtError, ErrorKind as JwtErrorKind};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{DecodingKey, EncodingKey};

use super::{Algorithm, AuthConfigError, KeyMaterial, KeyUse};

/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits).
const MIN_SECRET_BYTES: usize = 32;

/// RSA moduli below 2048 bits are considered breakable (NIST SP 800-131A).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Makes jsonwebtoken use its RustCrypto backend.
///
/// jsonwebtoken picks a backend from its cargo features and panics at the first signature when it finds
/// none or both (`rust_crypto` and `aws_lc_rs` unified from different crates). Naming the provider turns
/// "none" into a compile error and "both" into a working choice. Later calls, or a provider installed by the
/// embedding program first, are left alone.
pub(super) fn use_rust_crypto() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER,
    );
}

/// Builds the key that verifies one role's tokens, checking it fully now rather than at the first request.
pub(super) fn decoding_key(
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
pub(super) fn private_key(
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
pub(super) fn pem_label(pem: &[u8]) -> Option<&str> {
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

#[cfg(test)]
mod tests {
    use crate::auth::fixtures::*;
    use crate::auth::{Algorithm, AuthConfig, AuthConfigError, Authorizer, KeyMaterial};

    fn config_error(algorithm: Algorithm, key: &str) -> AuthConfigError {
        let config = AuthConfig {
            subscriber_key: Some(KeyMaterial::from_setting(key).unwrap()),
            algorithm,
            ..AuthConfig::default()
        };
        Authorizer::new(&config).unwrap_err()
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
}
