//! `--cacert` and `--insecure`, shared by the commands that talk to a hub.

use std::path::PathBuf;

use anyhow::Context;

/// How to trust an HTTPS hub.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TlsArgs {
    /// Also trust the certificates in this PEM file (a private CA, or the
    /// hub's own certificate), besides the system's roots (repeatable).
    #[arg(long, value_name = "FILE")]
    cacert: Vec<PathBuf>,
    /// Accept any certificate, even self-signed or for another host: for
    /// development only.
    #[arg(long)]
    insecure: bool,
}

impl TlsArgs {
    /// The PEM files' contents, each read now so that a bad path fails at
    /// once, naming it.
    pub(crate) fn roots(&self) -> anyhow::Result<Vec<Vec<u8>>> {
        self.cacert
            .iter()
            .map(|path| {
                std::fs::read(path)
                    .with_context(|| format!("cannot read --cacert {}", path.display()))
            })
            .collect()
    }

    /// Whether to accept any certificate; says so on stderr when it does.
    pub(crate) fn insecure(&self) -> bool {
        if self.insecure {
            eprintln!("tidings: --insecure: the hub's certificate is not checked");
        }
        self.insecure
    }

    /// A reqwest client that trusts what these arguments say.
    pub(crate) fn client(&self) -> anyhow::Result<reqwest::Client> {
        let mut roots = Vec::new();
        for (pem, path) in self.roots()?.iter().zip(&self.cacert) {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .ok()
                .filter(|certs| !certs.is_empty())
                .with_context(|| format!("--cacert {} holds no PEM certificate", path.display()))?;
            roots.extend(certs);
        }
        reqwest::Client::builder()
            .tls_certs_merge(roots)
            .tls_danger_accept_invalid_certs(self.insecure())
            .build()
            .context("cannot set up the HTTP client")
    }
}
