//! A scripted HTTP/1.1 server on 127.0.0.1, and helpers to read the client.
//!
//! The server records every request (so tests can check what the client
//! sent) and answers with exact bytes written in the chunks a script gives,
//! flushed one by one, so tests control what the client reads and when.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tidings_client::{Error, EventSource, StreamItem};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// How long a test waits for something it expects before failing. Generous,
/// because the machine may be busy; a passing test never waits this long.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The head of a good event-stream response; the body runs until the server
/// closes the connection.
pub(crate) const SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";

/// One request as the server read it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) target: String,
    /// Names lowercased, in order received.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// When the server had read it, on Tokio's clock (paused in tests of
    /// timing).
    pub(crate) at: tokio::time::Instant,
}

impl Request {
    /// The first value of a header, if any.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).into_iter().next()
    }

    /// Every value of a header, in order.
    pub(crate) fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// What the server does on a connection after reading the request. When the
/// steps run out it closes the connection.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Write these bytes and flush them.
    Send(Vec<u8>),
    /// Wait (to pace keep-alives; never used to synchronize with the client).
    Pause(Duration),
    /// Keep the connection open until the client closes it, then report it.
    HoldUntilClientCloses,
}

/// A whole answer in one write.
pub(crate) fn send(bytes: impl AsRef<[u8]>) -> Step {
    Step::Send(bytes.as_ref().to_vec())
}

/// A 200 event stream with this body, then the connection closes.
pub(crate) fn sse(body: &str) -> Vec<Step> {
    vec![send(format!("{SSE_HEAD}{body}"))]
}

/// A response with this status line and extra header lines, and no body.
pub(crate) fn status(status_line: &str, headers: &str) -> Vec<Step> {
    vec![send(format!(
        "HTTP/1.1 {status_line}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
    ))]
}

/// 204 No Content: "stop reconnecting".
pub(crate) fn no_content() -> Vec<Step> {
    status("204 No Content", "")
}

type Script = dyn Fn(usize, &Request) -> Vec<Step> + Send + Sync;

/// A running server; it stops when the test's runtime does.
pub(crate) struct Server {
    base: String,
    requests: mpsc::UnboundedReceiver<Request>,
    closed: mpsc::UnboundedReceiver<usize>,
    count: Arc<AtomicUsize>,
}

impl Server {
    /// Starts a server answering connection `n` (from 0, in accept order)
    /// with `script(n, &request)`.
    pub(crate) async fn start(
        script: impl Fn(usize, &Request) -> Vec<Step> + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (request_tx, requests) = mpsc::unbounded_channel();
        let (closed_tx, closed) = mpsc::unbounded_channel();
        let count = Arc::new(AtomicUsize::new(0));
        let script: Arc<Script> = Arc::new(script);
        let counter = Arc::clone(&count);
        tokio::spawn(async move {
            for n in 0.. {
                let (socket, _) = listener.accept().await.unwrap();
                let (script, request_tx, closed_tx) =
                    (Arc::clone(&script), request_tx.clone(), closed_tx.clone());
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    serve(n, socket, &*script, &request_tx, &closed_tx).await;
                });
            }
        });
        Server {
            base,
            requests,
            closed,
            count,
        }
    }

    /// The URL of `path` on this server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The next request received, waiting for it.
    pub(crate) async fn request(&mut self) -> Request {
        timeout(WAIT, self.requests.recv())
            .await
            .expect("the client sent no request in time")
            .unwrap()
    }

    /// The next request if one arrives within `wait`: for tests that check
    /// that nothing more comes.
    pub(crate) async fn request_within(&mut self, wait: Duration) -> Option<Request> {
        timeout(wait, self.requests.recv()).await.ok().flatten()
    }

    /// Waits until the client closes a held connection; returns its number.
    pub(crate) async fn client_closed(&mut self) -> usize {
        timeout(WAIT, self.closed.recv())
            .await
            .expect("the client did not close the connection in time")
            .unwrap()
    }

    /// How many connections were accepted so far.
    pub(crate) fn connections(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

async fn serve(
    n: usize,
    mut socket: TcpStream,
    script: &Script,
    requests: &mpsc::UnboundedSender<Request>,
    closed: &mpsc::UnboundedSender<usize>,
) {
    // Every chunk its own segment, so the client really sees the splits.
    socket.set_nodelay(true).unwrap();
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    let steps = script(n, &request);
    let _ = requests.send(request);
    for step in steps {
        match step {
            Step::Send(bytes) => {
                if socket.write_all(&bytes).await.is_err() || socket.flush().await.is_err() {
                    return; // the client went away: that is its right
                }
            }
            Step::Pause(delay) => tokio::time::sleep(delay).await,
            Step::HoldUntilClientCloses => {
                let mut sink = [0u8; 64];
                while matches!(socket.read(&mut sink).await, Ok(read) if read > 0) {}
                let _ = closed.send(n);
                return;
            }
        }
    }
}

/// Reads one request head and its `Content-Length` body. `None` if the client
/// closed the connection first.
async fn read_request(socket: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let mut chunk = [0u8; 1024];
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("request head is UTF-8");
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, target) = (
        request_line.next()?.to_owned(),
        request_line.next()?.to_owned(),
    );
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("header line has a colon");
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse::<usize>().unwrap());
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 1024];
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some(Request {
        method,
        target,
        headers,
        body,
        at: tokio::time::Instant::now(),
    })
}

/// The next item of the stream, which must be an `Ok` item.
pub(crate) async fn next(events: &mut EventSource) -> StreamItem {
    match next_or_end(events).await {
        Some(Ok(item)) => item,
        Some(Err(error)) => panic!("unexpected fatal error: {error}"),
        None => panic!("the stream ended unexpectedly"),
    }
}

/// The next thing the stream yields, including its end.
pub(crate) async fn next_or_end(events: &mut EventSource) -> Option<Result<StreamItem, Error>> {
    use futures_util::StreamExt;
    timeout(WAIT, events.next())
        .await
        .expect("the stream yielded nothing in time")
}

/// Every item until the stream ends, described as text (see [`describe`]),
/// and the fatal error that ended it, if any.
pub(crate) async fn run_to_end(events: &mut EventSource) -> (Vec<String>, Option<Error>) {
    let mut items = Vec::new();
    loop {
        // Every scripted server ends its streams; a client that loops
        // (reconnecting where it must stop) fails here instead of hanging.
        assert!(items.len() < 100, "the stream does not end: {items:?}");
        match next_or_end(events).await {
            Some(Ok(item)) => items.push(describe(&item)),
            Some(Err(error)) => {
                assert!(
                    next_or_end(events).await.is_none(),
                    "a fatal error is the last item"
                );
                return (items, Some(error));
            }
            None => return (items, None),
        }
    }
}

/// A stream item as a short line, so whole sequences compare in one assert.
/// Reconnection delays are left out (jitter); tests that care check them.
pub(crate) fn describe(item: &StreamItem) -> String {
    match item {
        StreamItem::Open { url } => format!("open {}", url.path()),
        StreamItem::Event(event) => {
            format!(
                "event {} id={:?} {:?}",
                event.event_type, event.id, event.data
            )
        }
        StreamItem::Comment(text) => format!("comment {text:?}"),
        StreamItem::Retry(delay) => format!("retry {delay:?}"),
        StreamItem::EventDropped(error) => format!("dropped {error}"),
        StreamItem::Reconnecting { error, .. } => format!("reconnecting: {error}"),
        other => format!("{other:?}"),
    }
}
