//! [`Algorithm`]: the one signature algorithm a hub accepts.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::AuthConfigError;

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

    pub(super) fn to_jwt(self) -> jsonwebtoken::Algorithm {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
