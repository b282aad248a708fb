//! One client connection.
//!
//! Subscribers are the many, long-lived connections, so they take a lean
//! path: the request head is read and parsed here (`httparse`), and a
//! subscription is then served with nothing but the socket, this task and the
//! subscription's cursor, so no HTTP library's buffers stay held (hyper keeps
//! two 8 KiB buffers per connection for its life). Queued frames go out in
//! one vectored write. Every other request (publish, presence, health, the
//! page, CORS preflight, HTTP/2) is handed to hyper and axum, with the bytes
//! already read replayed first.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::limits::ConnectionGuard;
use crate::state::SharedState;
use crate::subscribe;
use tidings_hub::Subscription;

/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Frames taken from a subscription for one write.
const MAX_FRAMES_PER_WRITE: usize = 64;
/// A subscriber whose socket accepts nothing for this long is dropped; it
/// resumes with `Last-Event-ID` when it comes back.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// What the lean path needs from a request head.
#[derive(Debug)]
struct Head {
    method: Method,
    path: String,
    query: Option<String>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    minor_version: u8,
    headers: HeaderMap,
    len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    Other,
}

pub(crate) fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    state: SharedState,
    router: Router,
    stopping: CancellationToken,
) -> impl Future<Output = ()> + Send {
    // Everything before the stream starts is one boxed phase, so that its
    // state is freed when it is done; and this is a plain function returning
    // a block that captures only that box, because an async fn would keep its
    // arguments for its whole life. A subscriber's task then holds only what
    // streaming needs: a boxed `SubscriberConn` and a small `run` future.
    let accepting = Box::pin(accept(stream, peer, state, router, stopping));
    async move {
        if let Some(subscriber) = accepting.await {
            subscriber.run().await;
        }
    }
}

/// Admits the connection, reads the request head, and either starts a
/// subscription (returned, to be streamed) or serves the connection with
/// hyper to its end.
async fn accept(
    mut stream: TcpStream,
    peer: SocketAddr,
    state: SharedState,
    router: Router,
    stopping: CancellationToken,
) -> Option<Box<SubscriberConn>> {
    let guard = match ConnectionGuard::admit(&state, peer.ip()) {
        Ok(guard) => guard,
        Err(error) => {
            tracing::info!(%peer, status = error.status.as_u16(), reason = %error.message, "connection refused");
            let _ = stream.write_all(&error.to_http1("")).await;
            return None;
        }
    };
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    let reading = tokio::time::timeout(
        state.config.header_read_timeout,
        read_head(&mut stream, &mut buf),
    );
    let head = match reading.await {
        Err(_) => {
            tracing::info!(%peer, "connection closed: request headers not received within header-read-timeout");
            let error = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request headers not received in time",
            );
            let _ = stream.write_all(&error.to_http1("")).await;
            return None;
        }
        Ok(Err(error)) => {
            tracing::info!(%peer, status = error.status.as_u16(), reason = %error.message, "request rejected");
            let _ = stream.write_all(&error.to_http1("")).await;
            return None;
        }
        Ok(Ok(head)) => head,
    };
    match head {
        Some(head) if is_subscription(&head, &buf) => {
            drop(buf);
            let (subscription, expires_at, chunked) =
                start_subscription(&mut stream, peer, head, &state).await?;
            Some(Box::new(SubscriberConn {
                stream,
                subscription,
                expires_at,
                chunked,
                peer,
                started: Instant::now(),
                _guard: guard,
            }))
        }
        Some(_) | None if buf.is_empty() => None,
        _ => {
            let timeout = state.config.header_read_timeout;
            let started = Instant::now();
            tracing::info!(%peer, "connection opened");
            serve_with_hyper(stream, Bytes::from(buf), router, stopping, timeout).await;
            tracing::info!(%peer, seconds = started.elapsed().as_secs(), "connection closed");
            None
        }
    }
}

fn is_subscription(head: &Head, buf: &[u8]) -> bool {
    matches!(head.method, Method::Get | Method::Head)
        && (head.path == "/.well-known/mercure" || head.path == "/events")
        && head.len == buf.len()
        && !head.headers.contains_key("upgrade")
}

/// Reads until a whole request head is in `buf`. `Ok(None)`: the client
/// closed first, or sent an HTTP/2 preface (left for hyper).
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<Head>, ApiError> {
    use tokio::io::AsyncReadExt;
    loop {
        if buf.starts_with(HTTP2_PREFACE) {
            return Ok(None);
        }
        if let Some(head) = parse_head(buf)? {
            return Ok(Some(head));
        }
        if buf.len() >= MAX_HEAD {
            return Err(ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!("request head larger than {MAX_HEAD} bytes"),
            ));
        }
        buf.reserve(if buf.is_empty() { 1024 } else { buf.len() });
        let limit = MAX_HEAD - buf.len();
        let n = (&mut *stream)
            .take(limit as u64)
            .read_buf(buf)
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot read the request: {e}")))?;
        if n == 0 {
            return Ok(None);
        }
    }
}

/// Parses a request head. The header array lives only in this synchronous
/// function, so it never grows the connection's task.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, ApiError> {
    let mut raw = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut raw);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(len)) => len,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "more than 64 request headers",
            ));
        }
        Err(error) => {
            return Err(ApiError::bad_request(format!(
                "malformed HTTP request: {error}"
            )));
        }
    };
    let target = request.path.unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (target, None),
    };
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for header in request.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| ApiError::bad_request(format!("invalid header name {:?}", header.name)))?;
        let value = HeaderValue::from_bytes(header.value).map_err(|_| {
            ApiError::bad_request(format!("invalid value of header {}", header.name))
        })?;
        headers.append(name, value);
    }
    let method = match request.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        _ => Method::Other,
    };
    Ok(Some(Head {
        method,
        path: path.to_owned(),
        query,
        minor_version: request.version.unwrap_or(1),
        headers,
        len,
    }))
}

/// A streaming subscriber connection: all a subscriber holds for its life.
struct SubscriberConn {
    stream: TcpStream,
    subscription: Subscription,
    /// `exp` of the subscriber's token, in Unix seconds.
    expires_at: Option<u64>,
    chunked: bool,
    peer: SocketAddr,
    started: Instant,
    /// Frees the connection's place in the limits when dropped.
    _guard: ConnectionGuard,
}

impl SubscriberConn {
    async fn run(mut self: Box<Self>) {
        let (reason, written) = stream_frames(
            &mut self.stream,
            &mut self.subscription,
            self.expires_at,
            self.chunked,
        )
        .await;
        let closing = Box::pin(async {
            if self.chunked {
                let _ =
                    tokio::time::timeout(WRITE_TIMEOUT, self.stream.write_all(b"0\r\n\r\n")).await;
            }
            let _ = self.stream.shutdown().await;
        });
        closing.await;
        let subscriber = &self.subscription.info().subscriber;
        tracing::info!(peer = %self.peer, %subscriber, reason, bytes = written, seconds = self.started.elapsed().as_secs(), "subscriber disconnected");
    }
}

/// Authorizes, subscribes and writes the response head. `None` when the
/// request was refused (the error is written) or is a `HEAD`.
async fn start_subscription(
    stream: &mut TcpStream,
    peer: SocketAddr,
    head: Head,
    state: &SharedState,
) -> Option<(Subscription, Option<u64>, bool)> {
    let origin = head.headers.get("origin").and_then(|v| v.to_str().ok());
    let cors = crate::cors::header_lines(&state.config.cors_origins, origin);
    let opened = match subscribe::open(state, &head.headers, head.query.as_deref()).await {
        Ok(opened) => opened,
        Err(error) => {
            tracing::info!(%peer, status = error.status.as_u16(), reason = %error.message, "subscription refused");
            let _ = stream.write_all(&error.to_http1(&cors)).await;
            return None;
        }
    };
    let chunked = head.minor_version >= 1;
    let mut response = format!("HTTP/1.{} 200 OK\r\n", head.minor_version);
    for (name, value) in subscribe::response_headers(&opened.subscription) {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str(&cors);
    response.push_str(if chunked {
        "Transfer-Encoding: chunked\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    if head.method == Method::Head {
        let _ = stream.write_all(response.as_bytes()).await;
        return None;
    }
    // A first comment flushes the headers through any proxy at once.
    response.push_str(if chunked { "3\r\n:\n\n\r\n" } else { ":\n\n" });
    if stream.write_all(response.as_bytes()).await.is_err() {
        return None;
    }
    bytes_written().increment(response.len() as u64);
    let info = opened.subscription.info();
    tracing::info!(%peer, subscriber = %info.subscriber, topics = ?info.topics, last_event_id = opened.subscription.last_event_id(), "subscriber connected");
    Some((opened.subscription, opened.expires_at, chunked))
}

/// The bytes-written counter, looked up once: `counter!` searches the
/// registry on every call, and this runs on every write.
fn bytes_written() -> &'static metrics::Counter {
    static COUNTER: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
    COUNTER.get_or_init(|| metrics::counter!("tidings_bytes_written_total"))
}

/// What woke an idle subscriber connection.
enum Wake {
    Frames,
    End,
    Readable,
    SocketError,
    Expired,
}

/// The life of a subscriber connection: wait for frames, write them. Its
/// state is a few words (no inner futures while idle), because there are
/// many of these and they live long. Returns why it ended and bytes written.
async fn stream_frames(
    stream: &mut TcpStream,
    subscription: &mut Subscription,
    expires_at: Option<u64>,
    chunked: bool,
) -> (&'static str, u64) {
    let mut expires = expires_at.map(|exp| Box::pin(tokio::time::sleep(until_unix(exp))));
    let mut written = 0u64;
    let mut frames = Vec::new();
    loop {
        let wake = std::future::poll_fn(|cx| {
            if let Some(expiry) = &mut expires {
                if expiry.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wake::Expired);
                }
            }
            match subscription.poll_frames(cx, &mut frames, MAX_FRAMES_PER_WRITE) {
                Poll::Ready(0) => return Poll::Ready(Wake::End),
                Poll::Ready(_) => return Poll::Ready(Wake::Frames),
                Poll::Pending => {}
            }
            match stream.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => Poll::Ready(Wake::Readable),
                Poll::Ready(Err(_)) => Poll::Ready(Wake::SocketError),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        match wake {
            Wake::Frames => {
                let result = match write_now(stream, &frames, chunked) {
                    Ok(Written::All(total)) => Ok(total),
                    Ok(Written::Partly { total, rest }) => {
                        // The socket is full: wait for it, boxed so that idle
                        // connections don't carry this state.
                        let finishing = Box::pin(finish_write(stream, rest));
                        finishing.await.map(|()| total)
                    }
                    Err(e) => Err(e),
                };
                frames = Vec::new();
                match result {
                    Ok(total) => {
                        written += total as u64;
                        bytes_written().increment(total as u64);
                    }
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                        return ("client stopped reading (write timeout)", written);
                    }
                    Err(_) => return ("write failed", written),
                }
            }
            Wake::End => return ("the hub is shutting down", written),
            Wake::Expired => return ("token expired", written),
            Wake::SocketError => return ("socket error", written),
            Wake::Readable => match stream.try_read(&mut [0u8; 64]) {
                Ok(0) => return ("client closed the connection", written),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return ("socket error", written),
                Ok(_) => {} // Nothing more is expected from a subscriber; ignore it.
            },
        }
    }
}

/// How long until a Unix time in seconds (zero if past).
fn until_unix(exp: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Duration::from_secs(exp.saturating_sub(now))
}

/// Sleeps until a token's `exp`, or forever without one.
pub(crate) async fn token_deadline(expires_at: Option<u64>) {
    match expires_at {
        Some(exp) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            tokio::time::sleep(Duration::from_secs(exp.saturating_sub(now))).await;
        }
        None => std::future::pending().await,
    }
}

/// What [`write_now`] managed.
enum Written {
    /// Everything: this many bytes.
    All(usize),
    /// The socket filled up: `rest` is still to be written, of `total`.
    Partly { total: usize, rest: Vec<u8> },
}

/// Writes frames as one chunk (HTTP/1.1) or raw (HTTP/1.0), with vectored
/// writes, as far as the socket takes them without waiting: the common case,
/// which needs no future state at all.
fn write_now(stream: &TcpStream, frames: &[Bytes], chunked: bool) -> io::Result<Written> {
    let len: usize = frames.iter().map(Bytes::len).sum();
    let chunk_head = if chunked {
        format!("{len:x}\r\n")
    } else {
        String::new()
    };
    let chunk_tail: &[u8] = if chunked { b"\r\n" } else { b"" };
    let mut slices = Vec::with_capacity(frames.len() + 2);
    slices.push(IoSlice::new(chunk_head.as_bytes()));
    slices.extend(frames.iter().map(|f| IoSlice::new(f)));
    slices.push(IoSlice::new(chunk_tail));
    let total = chunk_head.len() + len + chunk_tail.len();
    let mut remaining = &mut slices[..];
    IoSlice::advance_slices(&mut remaining, 0);
    let mut done = 0;
    while done < total {
        match stream.try_write_vectored(remaining) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                done += n;
                IoSlice::advance_slices(&mut remaining, n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let rest = remaining.iter().flat_map(|s| s.iter().copied()).collect();
                return Ok(Written::Partly { total, rest });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Written::All(total))
}

/// Writes what a full socket did not take, within [`WRITE_TIMEOUT`].
async fn finish_write(stream: &mut TcpStream, rest: Vec<u8>) -> io::Result<()> {
    match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&rest)).await {
        Ok(result) => result,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

async fn serve_with_hyper(
    stream: TcpStream,
    prefix: Bytes,
    router: Router,
    stopping: CancellationToken,
    header_read_timeout: Duration,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let io = TokioIo::new(Rewind {
        prefix,
        inner: stream,
    });
    let service = hyper_util::service::TowerToHyperService::new(router);
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // Without a timer hyper ignores its header read timeout, and a kept-alive
    // connection could then sit idle, or send half a request, for ever while
    // holding a connection slot.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopping.cancelled() => {
            // Finish the request in flight, then close.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// A socket that first yields bytes already read from it.
struct Rewind {
    prefix: Bytes,
    inner: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads_and_refuses_garbage() {
        let head =
            parse_head(b"GET /events?topic=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 5\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(
            (head.path.as_str(), head.query.as_deref()),
            ("/events", Some("topic=a"))
        );
        assert_eq!(head.headers["last-event-id"], "5");
        assert!(
            parse_head(b"GET /events HTTP/1.1\r\nHost")
                .unwrap()
                .is_none()
        );
        assert_eq!(
            parse_head(b"\x00\x01 garbage\r\n\r\n").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        let many: String = (0..70).map(|i| format!("X-{i}: y\r\n")).collect();
        let request = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            parse_head(request.as_bytes()).unwrap_err().status,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }
}

#[cfg(test)]
mod size_tests {
    /// Every subscriber holds its connection task for its whole life: a
    /// regression here multiplies by the number of subscribers. The budget
    /// leaves room for compiler changes, not for a new inline future.
    #[tokio::test]
    async fn an_idle_subscriber_connection_stays_small() {
        let config = crate::Config {
            storage: crate::Storage::Memory,
            jwt_key: Some("0123456789abcdef0123456789abcdef".into()),
            ..crate::Config::default()
        };
        let server = crate::Server::new(config).unwrap();
        let state = server.state.clone();
        let router = crate::router::router(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let peer = stream.local_addr().unwrap();
        let task = super::handle(
            stream,
            peer,
            state.clone(),
            router,
            tokio_util::sync::CancellationToken::new(),
        );
        let task_size = std::mem::size_of_val(&task);
        assert!(
            task_size <= 256,
            "the connection task grew to {task_size} bytes"
        );
        drop(task);
        let mut stream = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let mut subscription = state
            .hub
            .subscribe(tidings_hub::SubscribeRequest::new(["x"]))
            .await
            .unwrap();
        let streaming = super::stream_frames(&mut stream, &mut subscription, None, true);
        let streaming_size = std::mem::size_of_val(&streaming);
        assert!(
            streaming_size <= 192,
            "stream_frames grew to {streaming_size} bytes"
        );
        let held = std::mem::size_of::<super::SubscriberConn>();
        assert!(held <= 256, "SubscriberConn grew to {held} bytes");
    }
}
