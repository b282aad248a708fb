//! The TLS material a node presents to a cluster's servers (Redis or NATS),
//! checked at start as the connection will use it.

use std::sync::Arc;

/// Checks PEM material as a TLS connection will use it: each file holds a
/// certificate at least, the CA's can be roots, and the client's certificate
/// parses and matches its key. The caller names the server in its message.
///
/// Both client libraries build their TLS settings only when they connect,
/// and take a file with no certificate as an empty trust store, so a bad
/// file would otherwise show only later, as connections failing on the
/// certificate, far from the cause.
pub(crate) fn check_pem(ca: Option<&[u8]>, client: Option<(&[u8], &[u8])>) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certificates = |pem: &[u8], what: &str| {
        let certificates = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the {what} is not PEM: {e}"))?;
        if certificates.is_empty() {
            return Err(format!("the {what} holds no PEM certificate"));
        }
        Ok(certificates)
    };
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        for certificate in certificates(ca, "CA file")? {
            roots.add(certificate).map_err(|e| {
                format!("the CA file holds a certificate that cannot be a root: {e}")
            })?;
        }
    }
    if let Some((cert, key)) = client {
        let chain = certificates(cert, "client certificate file")?;
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| format!("the client key file holds no PEM private key ({e})"))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| {
                let text = e.to_string();
                // A certificate signed without extensions (plain
                // `openssl x509 -req`) is X.509 v1, which TLS stacks built
                // on webpki refuse.
                let hint = if text.contains("UnsupportedCertVersion") {
                    "; it is an X.509 v1 certificate, and only v3 is taken: sign it with extensions (openssl x509 -req … -extfile with extendedKeyUsage=clientAuth)"
                } else {
                    ""
                };
                format!("the client certificate and key cannot be used: {text}{hint}")
            })?;
    }
    Ok(())
}
