//! Handing a connection to hyper (and axum), with the bytes already read.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

/// The most streams a client may open at once on one HTTP/2 connection. A
/// browser shares one connection between all tabs of an origin, so this is
/// what one browser may hold; each stream also counts against the hub's
/// limits as a subscriber.
const MAX_STREAMS_PER_CONNECTION: u32 = 100;

/// How long an HTTP/2 client may take to answer a ping before its connection
/// is closed: what the write timeout is on HTTP/1.1 (a socket that accepts
/// nothing), since a stalled connection also stalls the ping.
const PING_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn serve_with_hyper<S>(
    stream: S,
    prefix: Bytes,
    router: Router,
    stopping: CancellationToken,
    header_read_timeout: Duration,
    keep_alive: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let io = TokioIo::new(Rewind {
        prefix,
        inner: stream,
    });
    let activity = Arc::new(Activity::default());
    let tracked = activity.clone();
    let router = router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let activity = tracked.clone();
            async move {
                activity.begin();
                let response = next.run(request).await;
                // The request counts as open until its body is done (a
                // subscription's, for the stream's whole life).
                response.map(|body| axum::body::Body::new(Tracked { body, activity }))
            }
        },
    ));
    let service = hyper_util::service::TowerToHyperService::new(router);
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // Without a timer hyper ignores its header read timeout, and a kept-alive
    // connection could then sit idle, or send half a request, for ever while
    // holding a connection slot.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .keep_alive_interval(keep_alive)
        .keep_alive_timeout(PING_TIMEOUT);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopping.cancelled() => {
            // Finish the request in flight, then close.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        () = activity.idle(header_read_timeout) => {
            // A GOAWAY first, if the client ever got this far; but do not
            // wait on a client that never finished its handshake.
            tracing::debug!("closing a connection that carries no request");
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(GOAWAY_GRACE.min(header_read_timeout), connection.as_mut())
                .await
            {
                Ok(result) => result,
                Err(_) => Ok(()),
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// How long an idle connection being closed has to take its GOAWAY: with no
/// request in flight there is nothing to finish, only a frame to flush.
const GOAWAY_GRACE: Duration = Duration::from_secs(1);

/// How long a connection that served requests may stay open with none in
/// flight: a browser keeps its HTTP/2 connection for the next page or tab, so
/// this is longer than the wait for the first request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The requests in flight on one connection, so that a connection that
/// carries none is closed. hyper bounds the wait for an HTTP/1 request head,
/// but an HTTP/2 client that sent its preface (or part of it) and then
/// nothing, or that keeps an idle connection, would hold its slot (and a
/// place in its IP's count) for ever.
#[derive(Debug, Default)]
struct Activity {
    open: AtomicUsize,
    /// Requests begun so far.
    begun: AtomicUsize,
    changed: tokio::sync::Notify,
}

impl Activity {
    fn begin(&self) {
        self.open.fetch_add(1, Ordering::AcqRel);
        self.begun.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    fn end(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    /// Completes when no request has been in flight for a while: the first
    /// within `first` of the start, later ones within [`IDLE_TIMEOUT`] of
    /// the last one's end.
    async fn idle(&self, first: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.open.load(Ordering::Acquire) > 0 {
                changed.await;
                continue;
            }
            let wait = if self.begun.load(Ordering::Acquire) == 0 {
                first
            } else {
                IDLE_TIMEOUT.max(first)
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {
                    if self.open.load(Ordering::Acquire) == 0 {
                        return;
                    }
                }
                () = changed => {}
            }
        }
    }
}

/// A response body that tells its connection's [`Activity`] when it is done.
struct Tracked {
    body: axum::body::Body,
    activity: Arc<Activity>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.activity.end();
    }
}

/// A socket that first yields bytes already read from it.
struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
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

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
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
