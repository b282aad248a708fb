//! [`KeyMaterial`]: a key setting read from the configuration, a file or inline PEM. Turning it into a key
//! jsonwebtoken can use is `crypto`'s job.

use std::fmt;
use std::path::Path;

use super::AuthConfigError;
use super::crypto::pem_label;

/// A key as configured: an HS256 secret or PEM text. Which PEM kinds work where is in the `auth` module docs.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::fixtures::*;
    use crate::auth::{Algorithm, Token, TokenSource};

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
}
