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

pub(crate) async fn handle(
    mut stream: TcpStream,
    peer: SocketAddr,
    state: SharedState,
    router: Router,
    stopping: CancellationToken,
) {
    let guard = match ConnectionGuard::admit(&state, peer.ip()) {
        Ok(guard) => guard,
        Err(error) => {
            tracing::info!(%peer, status = error.status.as_u16(), reason = %error.message, "connection refused");
            let _ = stream.write_all(&error.to_http1("")).await;
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    let head = match tokio::time::timeout(
        state.config.header_read_timeout,
        read_head(&mut stream, &mut buf),
    )
    .await
    {
        Err(_) => {
            tracing::info!(%peer, "connection closed: request headers not received within header-read-timeout");
            let error = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request headers not received in time",
            );
            let _ = stream.write_all(&error.to_http1("")).await;
            return;
        }
        Ok(Err(error)) => {
            tracing::info!(%peer, status = error.status.as_u16(), reason = %error.message, "request rejected");
            let _ = stream.write_all(&error.to_http1("")).await;
            return;
        }
        Ok(Ok(head)) => head,
    };
    match head {
        Some(head) if is_subscription(&head, &buf) => {
            // The head is parsed; its bytes are no longer needed.
            drop(buf);
            serve_subscription(stream, peer, head, &state).await;
        }
        Some(_) | None if buf.is_empty() => {}
        _ => serve_with_hyper(stream, Bytes::from(buf), router, stopping).await,
    }
    drop(guard);
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

async fn serve_subscription(
    mut stream: TcpStream,
    peer: SocketAddr,
    head: Head,
    state: &SharedState,
) {
    let origin = head
        .headers
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let cors = crate::cors::header_lines(&state.config.cors_origins, origin.as_deref());
    let opened = match subscribe::open(state, &head.headers, head.query.as_deref()).await {
        Ok(opened) => opened,
        Err(error) => {
            tracing::info!(%peer, status = error.status.as_u16(), reason = %error.message, "subscription refused");
            let _ = stream.write_all(&error.to_http1(&cors)).await;
            return;
        }
    };
    let mut subscription = opened.subscription;
    let chunked = head.minor_version >= 1;
    let mut response = format!("HTTP/1.{} 200 OK\r\n", head.minor_version);
    for (name, value) in subscribe::response_headers(&subscription) {
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
        return;
    }
    // A first comment flushes the headers through any proxy at once.
    response.push_str(if chunked { "3\r\n:\n\n\r\n" } else { ":\n\n" });
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let started = Instant::now();
    let subscriber = subscription.info().subscriber.clone();
    tracing::info!(%peer, %subscriber, topics = ?subscription.info().topics, last_event_id = subscription.last_event_id(), "subscriber connected");
    drop(head);
    let expires = token_deadline(opened.expires_at);
    tokio::pin!(expires);
    let mut written = response.len() as u64;
    let reason = loop {
        let mut frames = Vec::new();
        tokio::select! {
            taken = std::future::poll_fn(|cx| subscription.poll_frames(cx, &mut frames, MAX_FRAMES_PER_WRITE)) => {
                if taken == 0 {
                    break "the hub is shutting down";
                }
                match tokio::time::timeout(WRITE_TIMEOUT, write_frames(&mut stream, &frames, chunked)).await {
                    Ok(Ok(n)) => {
                        written += n as u64;
                        metrics::counter!("tidings_bytes_written_total").increment(n as u64);
                    }
                    Ok(Err(_)) => break "write failed",
                    Err(_) => break "client stopped reading (write timeout)",
                }
            }
            ready = stream.readable() => {
                if ready.is_err() {
                    break "socket error";
                }
                match stream.try_read(&mut [0u8; 64]) {
                    Ok(0) => break "client closed the connection",
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => break "socket error",
                    Ok(_) => {} // Nothing more is expected; ignore it.
                }
            }
            () = &mut expires => break "token expired",
        }
    };
    if chunked {
        let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(b"0\r\n\r\n")).await;
    }
    let _ = stream.shutdown().await;
    tracing::info!(%peer, %subscriber, reason, bytes = written, seconds = started.elapsed().as_secs(), "subscriber disconnected");
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

/// Writes frames as one chunk (HTTP/1.1) or raw (HTTP/1.0) with vectored
/// writes; returns the bytes written.
async fn write_frames(
    stream: &mut TcpStream,
    frames: &[Bytes],
    chunked: bool,
) -> io::Result<usize> {
    let len: usize = frames.iter().map(Bytes::len).sum();
    let chunk_head = if chunked {
        format!("{len:x}\r\n")
    } else {
        String::new()
    };
    let mut slices = Vec::with_capacity(frames.len() + 2);
    slices.push(IoSlice::new(chunk_head.as_bytes()));
    slices.extend(frames.iter().map(|f| IoSlice::new(f)));
    if chunked {
        slices.push(IoSlice::new(b"\r\n"));
    }
    let total = chunk_head.len() + len + if chunked { 2 } else { 0 };
    let mut remaining = &mut slices[..];
    IoSlice::advance_slices(&mut remaining, 0);
    let mut done = 0;
    while done < total {
        let n = stream.write_vectored(remaining).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        done += n;
        IoSlice::advance_slices(&mut remaining, n);
    }
    Ok(total)
}

async fn serve_with_hyper(
    stream: TcpStream,
    prefix: Bytes,
    router: Router,
    stopping: CancellationToken,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let io = TokioIo::new(Rewind {
        prefix,
        inner: stream,
    });
    let service = hyper_util::service::TowerToHyperService::new(router);
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
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
