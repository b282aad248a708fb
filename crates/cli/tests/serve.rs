//! `tidings serve`, run as the real binary: it prints where it listens and a
//! development token, stops cleanly on SIGTERM, resumes clients across a
//! restart, and refuses bad settings with a message that names them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tidings_codec::{Decoder, Item};

/// The longest a test waits for something it expects.
const WAIT: Duration = Duration::from_secs(15);

/// A running `tidings serve`; killed if a test fails before stopping it.
struct Serve {
    child: Child,
    addr: String,
    publisher_token: String,
    log: PathBuf,
}

fn tidings() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
    // Settings of the environment running the tests must not leak in.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TIDINGS_") {
            command.env_remove(name);
        }
    }
    command.env("RUST_LOG", "info");
    command
}

impl Serve {
    fn start(data_dir: &Path, log: &Path) -> Serve {
        let mut child = tidings()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("run tidings serve");
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            // Read stdout to its end: `tidings serve` fails if it cannot
            // print the rest of its banner.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines_tx.send(line);
            }
        });
        let mut serve = Serve {
            child,
            addr: String::new(),
            publisher_token: String::new(),
            log: log.to_owned(),
        };
        let deadline = Instant::now() + WAIT;
        while serve.publisher_token.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no banner with a publisher token; log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            });
            if let Some(url) = line.strip_prefix("Tidings hub listening on http://") {
                serve.addr = url.trim().to_owned();
            } else if let Some(token) = line.trim().strip_prefix("publisher token (24 h):") {
                serve.publisher_token = token.trim().to_owned();
            }
        }
        assert!(!serve.addr.is_empty(), "the banner names the address");
        serve
    }

    /// Publishes `data` on `topic` and returns the id.
    fn publish(&self, token: &str, topic: &str, data: &str) -> String {
        let body = format!("topic={topic}&data={data}");
        let request = format!(
            "POST /.well-known/mercure HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{response}");
        body.to_owned()
    }

    /// Opens an HTTP/1.0 subscription (the body ends when the connection
    /// does) and returns it once the response head has arrived.
    fn subscribe(&self, query: &str, last_event_id: &str) -> (TcpStream, Vec<u8>) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            stream,
            "GET /.well-known/mercure?{query} HTTP/1.0\r\nLast-Event-ID: {last_event_id}\r\n\r\n"
        )
        .unwrap();
        let mut received = Vec::new();
        let mut buf = [0; 4096];
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).expect("a response head");
            assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&received));
            received.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&received);
        assert!(text.starts_with("HTTP/1.0 200"), "{text}");
        assert!(
            text.to_lowercase()
                .contains(&format!("last-event-id: {}", last_event_id.to_lowercase())),
            "{text}"
        );
        (stream, received)
    }

    /// Sends SIGTERM and waits for the exit.
    fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
        wait(&mut self.child).unwrap_or_else(|| {
            panic!(
                "tidings serve did not exit after SIGTERM; log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        })
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to [`WAIT`] for `child` to exit.
fn wait(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads a subscription until the server closes it; returns its events as
/// `(id, data)`.
fn read_events(mut stream: TcpStream, mut received: Vec<u8>) -> Vec<(String, String)> {
    stream.read_to_end(&mut received).expect("the stream ends");
    let split = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut decoder = Decoder::new();
    let items: Vec<Item> = decoder.feed(&received[split..]).collect();
    assert!(
        matches!(items.first(), Some(Item::Comment(_))),
        "the body starts with a comment: {items:?}"
    );
    items
        .into_iter()
        .filter_map(|item| match item {
            Item::Event(event) => Some((event.id, event.data)),
            _ => None,
        })
        .collect()
}

#[test]
fn serve_stops_on_sigterm_and_resumes_clients_after_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    let log = root.path().join("serve.log");

    let first = Serve::start(&data_dir, &log);
    let first_token = first.publisher_token.clone();
    let ids: Vec<String> = ["one", "two", "three"]
        .iter()
        .map(|data| first.publish(&first_token, "log", data))
        .collect();
    let (open, head) = first.subscribe("topic=*", &ids[1]);
    let status = first.terminate();
    assert!(status.success(), "exit status {status:?}");
    // The shutdown ended the open stream after what it was owed.
    assert_eq!(
        read_events(open, head),
        [(ids[2].clone(), "three".to_owned())]
    );

    let second = Serve::start(&data_dir, &log);
    // The development key lives in the data dir: old tokens still work.
    let four = second.publish(&first_token, "log", "four");
    let (resumed, head) = second.subscribe("topic=*", &ids[0]);
    let five = second.publish(&second.publisher_token, "log", "five");
    let status = second.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(
        read_events(resumed, head),
        [
            (ids[1].clone(), "two".to_owned()),
            (ids[2].clone(), "three".to_owned()),
            (four, "four".to_owned()),
            (five, "five".to_owned()),
        ]
    );
}

/// Runs `tidings` with `args`, expecting it to fail fast; returns stderr.
fn fails(args: &[&std::ffi::OsStr]) -> String {
    let mut child = tidings()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait(&mut child);
    let _ = child.kill();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = status.unwrap_or_else(|| panic!("still running; stderr:\n{stderr}"));
    assert!(!status.success(), "{args:?} succeeded");
    stderr
}

#[test]
fn a_data_dir_that_is_a_file_fails_fast_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("not-a-directory");
    std::fs::write(&file, "plain file").unwrap();
    let stderr = fails(&[
        "serve".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data-dir".as_ref(),
        file.as_os_str(),
    ]);
    assert!(
        stderr.contains(&*file.to_string_lossy()),
        "the message names {}: {stderr}",
        file.display()
    );
    // The file is left as it was.
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "plain file");
}

#[test]
fn a_config_file_with_an_unknown_key_fails_naming_the_key() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("tidings.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\nstorage = \"memory\"\nmax-conections = 10\n",
    )
    .unwrap();
    let stderr = fails(&["serve".as_ref(), "--config".as_ref(), config.as_os_str()]);
    assert!(stderr.contains("max-conections"), "{stderr}");
    assert!(stderr.contains(&*config.to_string_lossy()), "{stderr}");
}

#[test]
fn a_cluster_without_a_shared_key_or_with_a_bad_prefix_fails_saying_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().as_os_str();
    let redis = ["--redis".as_ref(), "redis://127.0.0.1:1/0".as_ref()];
    let serve = [
        "serve".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data-dir".as_ref(),
        data,
    ];
    let stderr = fails(&[&serve[..], &redis[..]].concat());
    assert!(
        stderr.contains("jwt-key") && stderr.contains("every node"),
        "{stderr}"
    );
    let prefix = [
        "--jwt-key".as_ref(),
        "k".as_ref(),
        "--redis-prefix".as_ref(),
        "a{b".as_ref(),
    ];
    let stderr = fails(&[&serve[..], &redis[..], &prefix[..]].concat());
    assert!(stderr.contains("prefix"), "{stderr}");
    let url = [
        "--jwt-key".as_ref(),
        "k".as_ref(),
        "--redis".as_ref(),
        "http://127.0.0.1/".as_ref(),
    ];
    let stderr = fails(&[&serve[..], &url[..]].concat());
    assert!(stderr.contains("invalid Redis URL"), "{stderr}");
}

#[test]
fn redis_tls_files_that_cannot_work_fail_at_start_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let no_pem = dir.path().join("no.pem");
    std::fs::write(&no_pem, "not a certificate\n").unwrap();
    let no_pem = no_pem.to_str().unwrap();
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    // A certificate with the key of another.
    let (cert, other_key) = (
        dir.path().join("cert.pem"),
        dir.path().join("other-key.pem"),
    );
    let signed = rcgen::generate_simple_self_signed(vec!["tidings-node".to_owned()]).unwrap();
    std::fs::write(&cert, signed.cert.pem()).unwrap();
    std::fs::write(
        &other_key,
        rcgen::KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    let (cert, other_key) = (cert.to_str().unwrap(), other_key.to_str().unwrap());
    let data = dir.path().to_str().unwrap();
    let serve = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data,
        "--jwt-key",
        "k",
    ];
    let rediss = ["--redis", "rediss://localhost:1/0"];
    for (args, says) in [
        (
            &[
                "--redis",
                "redis://localhost:1/0",
                "--redis-ca-file",
                no_pem,
            ][..],
            "give a rediss:// url",
        ),
        (
            &[rediss[0], rediss[1], "--redis-cert-file", no_pem][..],
            "go together",
        ),
        (
            &[rediss[0], rediss[1], "--redis-ca-file", missing][..],
            "cannot read redis ca-file",
        ),
        (
            &[rediss[0], rediss[1], "--redis-ca-file", no_pem][..],
            "the CA file holds no PEM certificate",
        ),
        (
            &[
                rediss[0],
                rediss[1],
                "--redis-cert-file",
                no_pem,
                "--redis-key-file",
                no_pem,
            ][..],
            "the client certificate file holds no PEM certificate",
        ),
        (
            &[
                rediss[0],
                rediss[1],
                "--redis-cert-file",
                cert,
                "--redis-key-file",
                other_key,
            ][..],
            "the client certificate and key cannot be used",
        ),
    ] {
        let all: Vec<&std::ffi::OsStr> = serve.iter().chain(args).map(|a| a.as_ref()).collect();
        let stderr = fails(&all);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        if args.contains(&missing) {
            assert!(stderr.contains(missing), "the file is named: {stderr}");
        }
    }
}

#[test]
fn regression_zero_keep_alive_is_refused_at_start_instead_of_panicking_later() {
    let dir = tempfile::tempdir().unwrap();
    // The address is taken on purpose: settings are checked before binding,
    // so the error names the setting (CI once saw "address in use" here,
    // when a parallel test held the default port).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let stderr = fails(&[
        "serve".as_ref(),
        "--listen".as_ref(),
        address.as_ref(),
        "--data-dir".as_ref(),
        dir.path().as_os_str(),
        "--keep-alive".as_ref(),
        "0s".as_ref(),
    ]);
    assert!(
        stderr.contains("keep-alive must be longer than 0s"),
        "{stderr}"
    );
}

#[test]
fn regression_weak_keys_are_printed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tidings()
        .args(["serve", "--listen", "127.0.0.1:0", "--storage", "memory"])
        .args(["--jwt-key", "short", "--log-format", "json", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    // Whatever the log level and format, the operator sees it.
    let warning = lines
        .recv_timeout(WAIT)
        .expect("a warning on stderr at start");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        warning.starts_with("WARNING: ") && warning.contains("only 5 bytes"),
        "{warning}"
    );
}

#[test]
fn redis_and_nats_together_or_unusable_nats_settings_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.creds");
    for (extra, says) in [
        (
            vec![
                "--redis",
                "redis://127.0.0.1:1/0",
                "--nats",
                "nats://127.0.0.1:1",
            ],
            "not both",
        ),
        (vec!["--nats", "http://127.0.0.1:1"], "invalid NATS URL"),
        (
            vec!["--nats", "nats://127.0.0.1:1", "--nats-replicas", "0"],
            "replicas",
        ),
        (
            vec!["--nats", "nats://127.0.0.1:1", "--nats-stream", "a.b"],
            "stream name",
        ),
        (
            vec![
                "--nats",
                "nats://127.0.0.1:1",
                "--nats-creds",
                missing.to_str().unwrap(),
            ],
            "cannot read nats creds",
        ),
    ] {
        let mut args: Vec<&std::ffi::OsStr> = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--jwt-key",
            "a-cluster-key-shared-by-nodes-0123",
        ]
        .iter()
        .map(|s| s.as_ref())
        .collect();
        args.push("--data-dir".as_ref());
        args.push(dir.path().as_os_str());
        args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
        let stderr = fails(&args);
        assert!(stderr.contains(says), "{extra:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{extra:?}: {stderr}");
    }
}
