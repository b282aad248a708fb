//! `tidings serve` over HTTPS, as the real binary: `tidings subscribe` and
//! `tidings publish` with `--cacert` (and without it), and certificates read
//! again on SIGHUP while a stream stays open.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

const KEY: &str = "https-test-key-0123456789abcdef01234567";
const WAIT: Duration = Duration::from_secs(20);

fn tidings() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TIDINGS_") {
            command.env_remove(name);
        }
    }
    command
}

/// A CA, and certificates for localhost it signs.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// Writes a new certificate for localhost and its key; returns its DER.
    fn issue(&self, cert: &Path, key: &Path) -> Vec<u8> {
        let pair = KeyPair::generate().unwrap();
        let issued = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&pair, &self.issuer)
            .unwrap();
        std::fs::write(cert, issued.pem()).unwrap();
        std::fs::write(key, pair.serialize_pem()).unwrap();
        issued.der().to_vec()
    }
}

/// The lines a child writes on a stream, as they come.
fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

fn wait_for_line(
    lines: &mpsc::Receiver<String>,
    what: &str,
    found: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no line {what} within {WAIT:?}"));
        if found(&line) {
            return line;
        }
    }
}

/// The certificate a fresh connection to the hub is shown.
fn served_certificate(runtime: &tokio::runtime::Runtime, url: &str, ca: &Path) -> Vec<u8> {
    runtime.block_on(async {
        let root = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
        let client = reqwest::Client::builder()
            .tls_certs_merge([root])
            .tls_info(true)
            .build()
            .unwrap();
        let response = client.get(format!("{url}/healthz")).send().await.unwrap();
        let info = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .unwrap();
        info.peer_certificate().unwrap().to_vec()
    })
}

fn publish(url: &str, data: &str, tls: &[&str]) -> std::process::Output {
    tidings()
        .args(["publish", &format!("{url}/.well-known/mercure")])
        .args(["--topic", "t", "--data", data, "--jwt-key", KEY])
        .args(tls)
        .output()
        .unwrap()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn https_with_cacert_and_a_certificate_reloaded_on_sighup_while_a_stream_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca_file) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    let ca = Ca::new();
    std::fs::write(&ca_file, ca.issuer.pem()).unwrap();
    let first = ca.issue(&cert, &key);
    let mut serve = tidings()
        .args(["serve", "--listen", "127.0.0.1:0", "--storage", "memory"])
        .args(["--jwt-key", KEY, "--anonymous", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let banner = lines(serve.stdout.take().unwrap());
    let log = lines(serve.stderr.take().unwrap());
    let pid = serve.id();
    let serve = Killed(serve);
    let listening = wait_for_line(&banner, "naming the address", |l| {
        l.starts_with("Tidings hub listening on https://")
    });
    let port = listening.rsplit(':').next().unwrap().trim().to_owned();
    let url = format!("https://localhost:{port}");
    let ca_arg = ["--cacert", ca_file.to_str().unwrap()];

    // Without the CA the certificate is refused; with it, or --insecure, not.
    let refused = publish(&url, "x", &[]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(
        said.contains("certificate") || said.contains("cannot reach"),
        "{said}"
    );
    assert!(publish(&url, "x", &["--insecure"]).status.success());

    let mut subscriber = tidings()
        .args([
            "subscribe",
            &format!("{url}/.well-known/mercure"),
            "--topic",
            "t",
        ])
        .args(["--json", "--max-events", "2", "--timeout", "30"])
        .args(ca_arg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let said = lines(subscriber.stderr.take().unwrap());
    let events = lines(subscriber.stdout.take().unwrap());
    let subscriber = Killed(subscriber);
    wait_for_line(&said, "saying it connected", |l| l.contains("connected to"));
    assert!(publish(&url, "one", &ca_arg).status.success());
    wait_for_line(&events, "with the first event", |l| l.contains("\"one\""));

    // New files, SIGHUP: new connections get the new certificate.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(served_certificate(&runtime, &url, &ca_file), first);
    let second = ca.issue(&cert, &key);
    assert_ne!(first, second);
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for_line(&log, "saying the certificate was reloaded", |l| {
        l.contains("TLS certificate reloaded")
    });
    assert_eq!(served_certificate(&runtime, &url, &ca_file), second);

    // The stream opened before the reload is still the same stream.
    assert!(publish(&url, "two", &ca_arg).status.success());
    wait_for_line(&events, "with the second event", |l| l.contains("\"two\""));
    let mut subscriber = subscriber;
    let exited = subscriber.0.wait().unwrap();
    assert!(exited.success(), "{exited}");
    let reconnects: Vec<String> = said
        .try_iter()
        .filter(|l| l.contains("reconnecting"))
        .collect();
    assert!(reconnects.is_empty(), "{reconnects:?}");

    // A broken file on SIGHUP is refused, and the certificate in use stays.
    std::fs::write(&cert, "broken").unwrap();
    Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    wait_for_line(&log, "saying the reload failed", |l| {
        l.contains("cannot reload")
    });
    assert_eq!(served_certificate(&runtime, &url, &ca_file), second);
    drop(serve);
}
