//! HTTPS: rustls with ALPN `h2` and `http/1.1`, certificates from PEM files
//! (reloadable without dropping open streams) or made at start for
//! development (`--tls-self-signed`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::Digest;
use tokio_rustls::TlsAcceptor;

/// What the server needs to accept TLS connections, and to reload them.
#[derive(Clone)]
pub(crate) struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    resolver: Arc<Resolver>,
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The certificate in use, swapped whole on reload: handshakes in progress
/// keep the one they took, open connections are not touched.
#[derive(Debug)]
struct Resolver(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// A TLS setting that cannot be used; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

impl Tls {
    /// From PEM files: a certificate chain and its private key.
    pub(crate) fn from_files(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let certified = load(cert, key)?;
        Tls::build(
            certified,
            Source::Files {
                cert: cert.to_owned(),
                key: key.to_owned(),
            },
        )
    }

    /// A certificate for `localhost`, `127.0.0.1` and `::1`, made now and
    /// signed by itself: browsers warn about it, which is the point.
    pub(crate) fn self_signed() -> Result<(Tls, String), TlsError> {
        let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| TlsError(format!("cannot make a development certificate: {e}")))?;
        let der = CertificateDer::from(made.cert.der().to_vec());
        let fingerprint = fingerprint(&der);
        let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
            .map_err(|e| TlsError(format!("cannot use the development key: {e}")))?;
        let certified = certified(vec![der], key)
            .map_err(|e| TlsError(format!("cannot use the development certificate: {e}")))?;
        Ok((Tls::build(certified, Source::SelfSigned)?, fingerprint))
    }

    fn build(certified: CertifiedKey, source: Source) -> Result<Tls, TlsError> {
        let resolver = Arc::new(Resolver(RwLock::new(Arc::new(certified))));
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        // HTTP/2 first: browsers then multiplex every stream of an origin
        // over one connection instead of stalling at 6.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            resolver,
            source,
        })
    }

    /// Reads the certificate files again and uses them for new connections.
    /// Open connections keep theirs. A self-signed certificate stays.
    ///
    /// # Errors
    /// When the files cannot be read or do not match; the certificate in use
    /// is kept then.
    pub(crate) fn reload(&self) -> Result<bool, TlsError> {
        let Source::Files { cert, key } = &self.source else {
            return Ok(false);
        };
        let certified = load(cert, key)?;
        *self.resolver.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(certified);
        Ok(true)
    }
}

/// The SHA-256 fingerprint of a certificate, as browsers show it
/// (`AB:CD:…`).
pub(crate) fn fingerprint(der: &CertificateDer<'_>) -> String {
    sha2::Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn load(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let named =
        |path: &Path, e: &dyn std::fmt::Display| TlsError(format!("{}: {e}", path.display()));
    let chain = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| named(cert_path, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| named(cert_path, &e))?;
    if chain.is_empty() {
        return Err(named(cert_path, &"no PEM certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| named(key_path, &e))?;
    certified(chain, key).map_err(|e| {
        TlsError(format!(
            "{} and {}: {e}",
            cert_path.display(),
            key_path.display()
        ))
    })
}

/// A chain and its key, checked to belong together.
fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, String> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let mismatch = || "the private key does not belong to the certificate".to_owned();
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => mismatch(),
        other => other.to_string(),
    })?;
    certified.keys_match().map_err(|_| mismatch())?;
    Ok(certified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_errors_naming_them_and_a_reload_keeps_the_old_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        let tls = Tls::from_files(&cert, &key).unwrap();
        assert!(tls.reload().unwrap(), "files are read again");

        let missing = dir.path().join("missing.pem");
        let error = Tls::from_files(&missing, &key).unwrap_err().to_string();
        assert!(error.contains("missing.pem"), "{error}");
        std::fs::write(&missing, "not pem").unwrap();
        let error = Tls::from_files(&missing, &key).unwrap_err().to_string();
        assert!(error.contains("no PEM certificate"), "{error}");
        let other = rcgen::generate_simple_self_signed(vec!["other".to_owned()]).unwrap();
        let wrong_key = dir.path().join("other-key.pem");
        std::fs::write(&wrong_key, other.signing_key.serialize_pem()).unwrap();
        let error = Tls::from_files(&cert, &wrong_key).unwrap_err().to_string();
        assert!(error.contains("does not belong"), "{error}");

        // A broken file on reload: refused, and the old certificate stays.
        std::fs::write(&cert, "broken").unwrap();
        assert!(tls.reload().is_err());
    }

    #[test]
    fn a_self_signed_certificate_has_a_fingerprint_to_compare() {
        let (_, fingerprint) = Tls::self_signed().unwrap();
        assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");
        assert!(
            fingerprint
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':')
        );
    }
}
