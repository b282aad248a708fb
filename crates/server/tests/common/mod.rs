//! What the server's integration tests share: a hub served on `127.0.0.1:0`,
//! tokens, a small HTTP/1.1 client over real sockets, and an event-stream
//! reader built on `tidings_codec::Decoder`.
//!
//! Every wait is bounded by [`WAIT`]: a test waits for the response or event
//! it expects, never for a fixed time.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tidings_codec::{Decoder, Item, MessageEvent};
use tidings_server::{Algorithm, Config, KeyMaterial, MintClaims, Server, Storage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// The longest a test waits for something it expects.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The HS256 secret of the test hubs.
pub(crate) const SECRET: &str = "tidings-integration-test-secret-0123456789";

/// A hub with a key (so not in development mode), memory storage and
/// anonymous subscribers allowed.
pub(crate) fn config() -> Config {
    Config {
        jwt_key: Some(SECRET.into()),
        storage: Storage::Memory,
        anonymous: Some(true),
        ..Config::default()
    }
}

/// A server running on a loopback port, in the test's runtime.
pub(crate) struct TestHub {
    pub(crate) addr: SocketAddr,
    /// The hub behind the server, to look at subscriptions directly.
    pub(crate) hub: tidings_hub::Hub,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestHub {
    pub(crate) async fn start(config: Config) -> TestHub {
        TestHub::start_with(config, None).await
    }

    /// A server that also serves `/metrics` on `metrics`.
    pub(crate) async fn start_with(config: Config, metrics: Option<TcpListener>) -> TestHub {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = Server::new(config).expect("the server starts");
        if let Some(metrics) = metrics {
            server = server.with_metrics_listener(metrics);
        }
        let hub = server.hub().clone();
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .serve(listener, async {
                    let _ = stop.await;
                })
                .await
                .expect("serve returns without error");
        });
        TestHub {
            addr,
            hub,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Shuts the server down and waits until `serve` has returned.
    pub(crate) async fn stop(mut self) {
        drop(self.shutdown.take());
        let task = self.task.take().unwrap();
        timeout(WAIT, task)
            .await
            .expect("the server stops within the wait")
            .expect("the server task does not panic");
    }

    /// A new connection to the server.
    pub(crate) async fn connect(&self) -> Conn {
        Conn::open(self.addr).await
    }

    /// `GET path` on a fresh connection.
    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.connect().await.get(path, &[]).await
    }

    /// Publishes form `fields` with `token` (Bearer), on a fresh connection.
    pub(crate) async fn publish_form(&self, token: Option<&str>, fields: &[(&str, &str)]) -> Reply {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut headers = vec![(
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        )];
        if let Some(token) = token {
            headers.push(("authorization", format!("Bearer {token}")));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        self.connect()
            .await
            .post("/.well-known/mercure", &headers, body)
            .await
    }

    /// Publishes and expects 200; returns the id the hub answered.
    pub(crate) async fn publish(&self, fields: &[(&str, &str)]) -> String {
        let reply = self.publish_form(Some(&publisher_token()), fields).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "publish failed: {}",
            reply.body
        );
        reply.body
    }

    /// Subscribes on a fresh connection (the lean path) and expects 200.
    pub(crate) async fn subscribe(&self, query: &str, headers: &[(&str, &str)]) -> Sse {
        let sse = self.try_subscribe(query, headers).await;
        assert_eq!(sse.status, StatusCode::OK, "subscribe to ?{query} failed");
        sse
    }

    /// Subscribes on a fresh connection, whatever the answer.
    pub(crate) async fn try_subscribe(&self, query: &str, headers: &[(&str, &str)]) -> Sse {
        self.connect()
            .await
            .subscribe(&format!("/.well-known/mercure?{query}"), headers)
            .await
    }

    /// Subscribes on a connection that served `GET /healthz` first, so the
    /// subscription goes through hyper and the axum route.
    pub(crate) async fn subscribe_routed(&self, query: &str, headers: &[(&str, &str)]) -> Sse {
        let mut conn = self.connect().await;
        let health = conn.get("/healthz", &[]).await;
        assert_eq!(health.status, StatusCode::OK);
        let sse = conn
            .subscribe(&format!("/.well-known/mercure?{query}"), headers)
            .await;
        assert_eq!(sse.status, StatusCode::OK, "routed subscribe failed");
        sse
    }

    /// Subscribes through `path` (lean or routed).
    pub(crate) async fn subscribe_via(
        &self,
        path: Path,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Sse {
        match path {
            Path::Lean => self.subscribe(query, headers).await,
            Path::Routed => self.subscribe_routed(query, headers).await,
        }
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        // A test that failed before `stop` still lets the server end.
        drop(self.shutdown.take());
    }
}

/// How a subscription reaches the hub: a fresh connection is served by the
/// lean path, a kept-alive one by hyper and the axum route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    Lean,
    Routed,
}

pub(crate) const PATHS: [Path; 2] = [Path::Lean, Path::Routed];

/// A complete response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// One HTTP/1.1 connection; requests on it go one after another.
pub(crate) struct Conn {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub(crate) async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.unwrap();
        Conn::over(addr, stream).await
    }

    pub(crate) async fn over(addr: SocketAddr, stream: TcpStream) -> Conn {
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Conn { addr, sender }
    }

    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Response<Incoming> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into())).unwrap();
        timeout(WAIT, async {
            self.sender.ready().await.expect("connection ready");
            self.sender.send_request(request).await
        })
        .await
        .expect("response head within the wait")
        .expect("a response")
    }

    pub(crate) async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let response = self.send(method, path, headers, body).await;
        let (parts, body) = response.into_parts();
        let body = timeout(WAIT, body.collect())
            .await
            .expect("response body within the wait")
            .expect("a complete body")
            .to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8(body.to_vec()).expect("a UTF-8 body"),
        }
    }

    pub(crate) async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.request("GET", path, headers, Bytes::new()).await
    }

    pub(crate) async fn post(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        self.request("POST", path, headers, body).await
    }

    /// A `GET` whose body is read as an event stream.
    pub(crate) async fn subscribe(self, path: &str, headers: &[(&str, &str)]) -> Sse {
        let mut conn = self;
        let response = conn.send("GET", path, headers, Bytes::new()).await;
        Sse::from_response(response, conn)
    }
}

/// An open event stream.
pub(crate) struct Sse {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    body: Incoming,
    decoder: Decoder,
    // Held so the connection stays open as long as the stream.
    _conn: Conn,
}

impl Sse {
    /// The stream of a response read on `conn` (kept open with it).
    pub(crate) fn from_response(response: Response<Incoming>, conn: Conn) -> Sse {
        let (parts, body) = response.into_parts();
        Sse {
            status: parts.status,
            headers: parts.headers,
            body,
            decoder: Decoder::new(),
            _conn: conn,
        }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The next body chunk as sent, not decoded; `None` at the end.
    pub(crate) async fn chunk(&mut self) -> Option<Bytes> {
        loop {
            let frame = timeout(WAIT, self.body.frame())
                .await
                .expect("stream data within the wait")?
                .expect("the stream does not fail");
            if let Ok(data) = frame.into_data() {
                return Some(data);
            }
        }
    }

    /// The next decoded item; `None` when the stream ends.
    pub(crate) async fn item(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.decoder.next_item() {
                return Some(item);
            }
            let data = self.chunk().await?;
            // Items stay queued in the decoder until taken.
            let _ = self.decoder.feed(&data);
        }
    }

    /// The next event, skipping comments.
    pub(crate) async fn event(&mut self) -> MessageEvent {
        loop {
            match self.item().await {
                Some(Item::Event(event)) => return event,
                Some(Item::Comment(_) | Item::Retry(_)) => {}
                Some(other) => panic!("unexpected item {other:?}"),
                None => panic!("the stream ended while an event was expected"),
            }
        }
    }

    /// The next `n` events.
    pub(crate) async fn events(&mut self, n: usize) -> Vec<MessageEvent> {
        let mut events = Vec::with_capacity(n);
        for _ in 0..n {
            events.push(self.event().await);
        }
        events
    }

    /// The data of the next `n` events.
    pub(crate) async fn data(&mut self, n: usize) -> Vec<String> {
        self.events(n).await.into_iter().map(|e| e.data).collect()
    }

    /// Waits for the end of the stream; an event before it fails the test.
    pub(crate) async fn end(&mut self) {
        loop {
            match self.item().await {
                None => return,
                Some(Item::Comment(_)) => {}
                Some(other) => panic!("expected the stream to end, got {other:?}"),
            }
        }
    }
}

/// A token signed with [`SECRET`].
pub(crate) fn token(publish: Option<&[&str]>, subscribe: Option<&[&str]>) -> String {
    token_with(MintClaims {
        publish: publish.map(strings),
        subscribe: subscribe.map(strings),
        ..MintClaims::default()
    })
}

pub(crate) fn token_with(claims: MintClaims) -> String {
    mint_with(SECRET, claims)
}

pub(crate) fn mint_with(secret: &str, claims: MintClaims) -> String {
    tidings_server::mint(
        &KeyMaterial::Secret(secret.into()),
        Algorithm::HS256,
        &claims,
    )
    .unwrap()
}

/// May publish to every topic.
pub(crate) fn publisher_token() -> String {
    token(Some(&["*"]), None)
}

/// A token whose `exp` is `seconds_ago` in the past (`mint` only writes
/// future ones).
pub(crate) fn expired_token(seconds_ago: u64) -> String {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER,
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({
            "mercure": {"publish": ["*"], "subscribe": ["*"]},
            "exp": now - seconds_ago,
        }),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A query-string component.
pub(crate) fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A response read from a raw socket: status, header lines, and the body
/// bytes that came with the head.
#[derive(Debug)]
pub(crate) struct RawHead {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) rest: Vec<u8>,
}

impl RawHead {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a response head from a raw socket.
pub(crate) async fn read_head(stream: &mut TcpStream) -> RawHead {
    let mut buf = Vec::new();
    timeout(WAIT, async {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(len) = response.parse(&buf).unwrap() {
                return RawHead {
                    status: response.code.unwrap(),
                    headers: response
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_owned(),
                                String::from_utf8(h.value.to_vec()).unwrap(),
                            )
                        })
                        .collect(),
                    rest: buf[len..].to_vec(),
                };
            }
            let n = stream.read_buf(&mut buf).await.expect("read the response");
            assert!(
                n > 0,
                "connection closed before a full response head: {:?}",
                String::from_utf8_lossy(&buf)
            );
        }
    })
    .await
    .expect("a response head within the wait")
}

/// Reads until the server closes the connection.
pub(crate) async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut rest))
        .await
        .expect("the server closes the connection within the wait")
        .expect("the connection ends cleanly");
    rest
}

/// Sends raw bytes on a fresh connection and returns the socket.
pub(crate) async fn raw(addr: SocketAddr, request: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    stream
}

/// The value of the metric `name` in a Prometheus text page; 0 when absent
/// (a counter not yet incremented is not listed).
pub(crate) fn metric(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
}
