//! `tidings subscribe`, `publish` and `token`, run as the real binary against
//! the real hub (`tidings serve`) and against a plain scripted SSE server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "test-key-0123456789abcdef0123456789";

fn tidings() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidings"))
}

/// A `tidings serve` on a free port; killed on drop.
struct Hub {
    child: Child,
    url: String,
}

impl Hub {
    fn start() -> Hub {
        Hub::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> Hub {
        let mut child = tidings()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--storage",
                "memory",
                "--jwt-key",
                KEY,
                "--anonymous",
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let address = first.trim().rsplit("http://").next().unwrap().to_owned();
        assert!(first.starts_with("Tidings hub listening on"), "{first}");
        Hub {
            child,
            url: format!("http://{address}/.well-known/mercure"),
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// Starts `tidings` with `args`; the receiver gets a message when the
/// subscriber reports on stderr that it is connected.
fn spawn_subscriber(args: &[&str]) -> (Child, std::sync::mpsc::Receiver<()>) {
    let mut child = tidings()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("connected to") {
                let _ = tx.send(());
            }
        }
    });
    (child, rx)
}

#[test]
fn publish_and_subscribe_through_the_hub() {
    let hub = Hub::start();
    let (subscriber, connected) = spawn_subscriber(&[
        "subscribe",
        &hub.url,
        "--topic",
        "news",
        "--json",
        "--max-events",
        "2",
        "--timeout",
        "20",
    ]);
    connected
        .recv_timeout(Duration::from_secs(10))
        .expect("subscriber connected");

    let first = run(tidings().args([
        "publish",
        &hub.url,
        "--topic",
        "news",
        "--data",
        "hello",
        "--jwt-key",
        KEY,
    ]));
    assert!(first.status.success(), "{first:?}");
    let generated_id = stdout(&first).trim().to_owned();
    assert!(generated_id.starts_with("urn:uuid:"), "{generated_id}");

    let token = run(tidings().args(["token", "--key", KEY, "--publish", "news", "--ttl", "60"]));
    assert!(token.status.success());
    let token = stdout(&token).trim().to_owned();
    let second = run(tidings().args([
        "publish",
        &hub.url,
        "--topic",
        "news",
        "--data",
        "{\"n\":2}",
        "--type",
        "update",
        "--id",
        "n2",
        "--token",
        &token,
    ]));
    assert_eq!(stdout(&second).trim(), "n2");

    let output = subscriber.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout(&output),
        format!(
            "{{\"type\":\"message\",\"data\":\"hello\",\"id\":\"{generated_id}\"}}\n{{\"type\":\"update\",\"data\":\"{{\\\"n\\\":2}}\",\"id\":\"n2\"}}\n"
        )
    );

    // Resuming replays from the hub's history.
    let resumed = run(tidings().args([
        "subscribe",
        &hub.url,
        "--topic",
        "news",
        "--last-event-id",
        &generated_id,
        "--max-events",
        "1",
        "--timeout",
        "10",
    ]));
    assert!(resumed.status.success());
    assert_eq!(stdout(&resumed), "id: n2\nevent: update\n{\"n\":2}\n\n");
}

#[test]
fn publish_errors_show_the_hub_status_and_message() {
    let hub = Hub::start();
    let bad = run(tidings().args([
        "publish",
        &hub.url,
        "--topic",
        "news",
        "--data",
        "x",
        "--token",
        "not-a-jwt",
    ]));
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("401") && stderr.contains("malformed token"),
        "{stderr}"
    );

    let token = stdout(&run(tidings().args([
        "token",
        "--key",
        KEY,
        "--publish",
        "other",
    ])));
    let forbidden = run(tidings().args([
        "publish",
        &hub.url,
        "--topic",
        "news",
        "--data",
        "x",
        "--token",
        token.trim(),
    ]));
    let stderr = String::from_utf8_lossy(&forbidden.stderr);
    assert!(
        stderr.contains("403") && stderr.contains("news"),
        "{stderr}"
    );
}

/// A server that answers each connection with the next scripted response and
/// closes it; returns its base URL and the requests it saw.
fn scripted_server(responses: Vec<&'static str>) -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/stream", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for response in responses {
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && socket.read(&mut byte).unwrap() == 1 {
                request.push(byte[0]);
            }
            let _ = tx.send(String::from_utf8_lossy(&request).into_owned());
            socket.write_all(response.as_bytes()).unwrap();
        }
    });
    (url, rx)
}

#[test]
fn subscribe_to_a_plain_server_until_the_end() {
    let (url, requests) = scripted_server(vec![
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\r\n: hi\r\nid: 7\r\ndata: a\r\ndata: b\r\n\r\nevent: x\ndata: c\n\ndata: half",
    ]);
    let output = run(tidings().args([
        "subscribe",
        &url,
        "--no-reconnect",
        "-H",
        "X-Test: yes",
        "--last-event-id",
        "5",
    ]));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "id: 7\na\nb\n\nid: 7\nevent: x\nc\n\n");
    let request = requests.recv().unwrap().to_ascii_lowercase();
    for header in [
        "accept: text/event-stream",
        "cache-control: no-cache",
        "last-event-id: 5",
        "x-test: yes",
    ] {
        assert!(request.contains(header), "{header} missing in {request}");
    }
}

#[test]
fn subscribe_reconnects_and_resumes() {
    let (url, requests) = scripted_server(vec![
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nretry: 10\nid: 1\ndata: one\n\n",
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nid: 2\ndata: two\n\n",
    ]);
    let started = Instant::now();
    let output = run(tidings().args([
        "subscribe",
        &url,
        "--json",
        "--max-events",
        "2",
        "--timeout",
        "10",
    ]));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout(&output),
        "{\"type\":\"message\",\"data\":\"one\",\"id\":\"1\"}\n{\"type\":\"message\",\"data\":\"two\",\"id\":\"2\"}\n"
    );
    let _first = requests.recv().unwrap();
    let second = requests.recv().unwrap().to_ascii_lowercase();
    assert!(second.contains("last-event-id: 1"), "{second}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("reconnecting"));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_wrong_answer_is_a_clear_failure() {
    let (url, requests) = scripted_server(vec![
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi",
    ]);
    let output = run(tidings().args(["subscribe", &url]));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("text/event-stream"));
    assert_eq!(
        requests.try_iter().count(),
        1,
        "no retry after a wrong content type"
    );

    let (url, _) = scripted_server(vec!["HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"]);
    let output = run(tidings().args(["subscribe", &url]));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("404"));
}

#[test]
fn timeout_before_max_events_exits_1() {
    let (url, _) = scripted_server(vec![
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: only\n\n",
    ]);
    let output = run(tidings().args(["subscribe", &url, "--max-events", "2", "--timeout", "0.5"]));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "only\n\n");
}

#[test]
fn token_claims_are_what_was_asked() {
    let output = run(tidings().args([
        "token",
        "--key",
        KEY,
        "--publish",
        "a",
        "--subscribe",
        "b/{id}",
        "--payload",
        "{\"u\":1}",
    ]));
    assert!(output.status.success());
    let token = stdout(&output);
    let claims = token.trim().split('.').nth(1).unwrap();
    let decoded =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&decoded).unwrap();
    assert_eq!(value["mercure"]["publish"], serde_json::json!(["a"]));
    assert_eq!(value["mercure"]["subscribe"], serde_json::json!(["b/{id}"]));
    assert_eq!(value["mercure"]["payload"]["u"], 1);
    let bad = run(tidings().args(["token", "--key", KEY, "--payload", "{oops"]));
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--payload"));
}

#[test]
fn a_refused_subscription_shows_the_hubs_reason() {
    let hub = Hub::start();
    let output = run(tidings().args(["subscribe", &hub.url]));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("400 Bad Request: missing topic parameter"),
        "{stderr}"
    );
}

#[test]
fn draft_08_tokens_and_matchers_from_the_command_line() {
    let issuer = "https://issuer.example";
    let hub = Hub::start_with(&["--jwt-issuer", issuer]);
    let (subscriber, connected) = spawn_subscriber(&[
        "subscribe",
        &hub.url,
        "--match",
        "urn:a",
        "--match-urlpattern",
        "https://example.com/books/:id",
        "--json",
        "--max-events",
        "2",
        "--timeout",
        "20",
    ]);
    connected
        .recv_timeout(Duration::from_secs(10))
        .expect("subscriber connected");
    let token = run(tidings().args([
        "token",
        "--key",
        KEY,
        "--draft",
        "08",
        "--issuer",
        issuer,
        "--audience",
        &hub.url,
        "--publish",
        "urn:a",
        "--publish",
        "urn:b",
        "--publish-urlpattern",
        "https://example.com/books/:id",
    ]));
    assert!(token.status.success(), "{token:?}");
    let token = stdout(&token).trim().to_owned();
    for (topic, id) in [
        ("urn:b", "b"),
        ("urn:a", "a"),
        ("https://example.com/books/1", "book"),
    ] {
        let published = run(tidings().args([
            "publish", &hub.url, "--topic", topic, "--data", id, "--id", id, "--token", &token,
        ]));
        assert_eq!(stdout(&published).trim(), id, "{published:?}");
    }
    // Not granted by the token: refused, with the hub's reason.
    let refused = run(tidings().args([
        "publish", &hub.url, "--topic", "urn:c", "--data", "x", "--token", &token,
    ]));
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("403"),
        "{refused:?}"
    );
    let output = subscriber.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout(&output),
        "{\"type\":\"message\",\"data\":\"a\",\"id\":\"a\"}\n{\"type\":\"message\",\"data\":\"book\",\"id\":\"book\"}\n"
    );
    // A draft-08 token needs its issuer and audience.
    let incomplete =
        run(tidings().args(["token", "--key", KEY, "--draft", "08", "--publish", "x"]));
    assert!(!incomplete.status.success());
    assert!(
        String::from_utf8_lossy(&incomplete.stderr).contains("--issuer"),
        "{incomplete:?}"
    );
}
