//! One client connection.
//!
//! Subscribers are the many, long-lived connections, so they take a lean
//! path: the request head is read and parsed here (`httparse`), and a
//! subscription is then served with nothing but the socket, this task and the
//! subscription's cursor, so no HTTP library's buffers stay held (hyper keeps
//! two 8 KiB buffers per connection for its life). Queued frames go out in
//! one vectored write. Every other request (publish, presence, health, the
//! page, CORS preflight) is handed to hyper and axum, with the bytes already
//! read replayed first.
//!
//! With TLS, the handshake comes first (bounded by the header-read timeout).
//! A client that chose HTTP/2 by ALPN goes to hyper whole (its streams are
//! multiplexed, so there is no socket to keep per subscriber); one that chose
//! HTTP/1.1 takes the same lean path as plain TCP, over the TLS stream.

mod head;
mod hyper;
mod peer;
mod stream;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::http::StatusCode;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::limits::ConnectionGuard;
use crate::state::SharedState;

use self::head::{Head, Method, read_head};
use self::hyper::serve_with_hyper;
use self::peer::Peer;
pub(crate) use self::stream::token_deadline;
use self::stream::{SubscriberConn, start_subscription};

/// A connection that became a lean subscriber, over either socket.
enum Streaming {
    Plain(Box<SubscriberConn<TcpStream>>),
    Tls(Box<SubscriberConn<TlsStream<TcpStream>>>),
}

/// What a connection needs besides its socket.
pub(crate) struct Context {
    pub(crate) peer: SocketAddr,
    pub(crate) state: SharedState,
    pub(crate) router: Router,
    pub(crate) stopping: CancellationToken,
    pub(crate) tls: Option<TlsAcceptor>,
}

pub(crate) fn handle(stream: TcpStream, context: Context) -> impl Future<Output = ()> + Send {
    // Everything before the stream starts is one boxed phase, so that its
    // state is freed when it is done; and this is a plain function returning
    // a block that captures only that box, because an async fn would keep its
    // arguments for its whole life. A subscriber's task then holds only what
    // streaming needs: a boxed `SubscriberConn` and a small `run` future.
    let accepting = Box::pin(accept(stream, context));
    async move {
        match accepting.await {
            Some(Streaming::Plain(subscriber)) => subscriber.run().await,
            Some(Streaming::Tls(subscriber)) => subscriber.run().await,
            None => {}
        }
    }
}

/// Admits the connection, shakes hands (TLS), reads the request head, and
/// either starts a subscription (returned, to be streamed) or serves the
/// connection with hyper to its end.
async fn accept(mut stream: TcpStream, context: Context) -> Option<Streaming> {
    let Context {
        peer,
        state,
        router,
        stopping,
        tls,
    } = context;
    let guard = match ConnectionGuard::admit(&state, peer.ip()) {
        Ok(guard) => guard,
        Err(error) => {
            tracing::info!(%peer, status = error.status.as_u16(), reason = %error.message, "connection refused");
            if tls.is_none() {
                let _ = stream.write_all(&error.to_http1("")).await;
            }
            return None;
        }
    };
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = tls else {
        return lean(stream, peer, state, router, stopping, guard)
            .await
            .map(Streaming::Plain);
    };
    // A client that stops inside the handshake is dropped like one that
    // stops inside its request head, and shutdown does not wait for it.
    let handshake = tokio::time::timeout(state.config.header_read_timeout, acceptor.accept(stream));
    let stream = tokio::select! {
        shaken = handshake => match shaken {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::info!(%peer, %error, "TLS handshake failed");
                return None;
            }
            Err(_) => {
                tracing::info!(%peer, "connection closed: TLS handshake not done within header-read-timeout");
                return None;
            }
        },
        () = stopping.cancelled() => return None,
    };
    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        let (timeout, keep_alive) = (state.config.header_read_timeout, state.config.keep_alive);
        let router = router.layer(axum::Extension(PeerAddr(peer)));
        tracing::debug!(%peer, "HTTP/2 connection opened");
        metrics::counter!("tidings_http2_connections_total").increment(1);
        let started = Instant::now();
        drop(state);
        let _guard = guard;
        serve_with_hyper(stream, Bytes::new(), router, stopping, timeout, keep_alive).await;
        tracing::debug!(%peer, seconds = started.elapsed().as_secs(), "HTTP/2 connection closed");
        return None;
    }
    lean(stream, peer, state, router, stopping, guard)
        .await
        .map(Streaming::Tls)
}

/// The address of the client of an HTTP/2 connection, for the handlers of
/// its streams (each stream counts against the per-IP limit).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub(crate) SocketAddr);

/// HTTP/1 on `stream`: a subscription on the lean path, or hyper for the rest.
async fn lean<S: Peer>(
    mut stream: S,
    peer: SocketAddr,
    state: SharedState,
    router: Router,
    stopping: CancellationToken,
    mut guard: ConnectionGuard,
) -> Option<Box<SubscriberConn<S>>> {
    let mut buf = Vec::new();
    let reading = tokio::time::timeout(
        state.config.header_read_timeout,
        read_head(&mut stream, &mut buf),
    );
    // A request that has not started (its head still coming) does not hold
    // up a shutdown: the client retries elsewhere.
    let reading = tokio::select! {
        reading = reading => reading,
        () = stopping.cancelled() => return None,
    };
    let head = match reading {
        Err(_) => {
            tracing::info!(%peer, "connection closed: request headers not received within header-read-timeout");
            let error = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request headers not received in time",
            );
            let _ = stream.write_all(&error.to_http1("")).await;
            let _ = stream.flush().await;
            return None;
        }
        Ok(Err(error)) => {
            tracing::info!(%peer, status = error.status.as_u16(), reason = %error.message, "request rejected");
            let _ = stream.write_all(&error.to_http1("")).await;
            let _ = stream.flush().await;
            return None;
        }
        Ok(Ok(head)) => head,
    };
    match head {
        Some(head) if is_subscription(&head, &buf) => {
            drop(buf);
            let started = start_subscription(&mut stream, peer, head, &state).await?;
            started.slot.into_guard(&mut guard);
            Some(Box::new(SubscriberConn {
                stream,
                subscription: started.subscription,
                expires_at: started.expires_at,
                chunked: started.chunked,
                peer,
                started: Instant::now(),
                _guard: guard,
            }))
        }
        Some(_) | None if buf.is_empty() => None,
        _ => {
            let (timeout, keep_alive) = (state.config.header_read_timeout, state.config.keep_alive);
            let started = Instant::now();
            tracing::debug!(%peer, "connection opened");
            let router = router.layer(axum::Extension(PeerAddr(peer)));
            serve_with_hyper(
                stream,
                Bytes::from(buf),
                router,
                stopping,
                timeout,
                keep_alive,
            )
            .await;
            tracing::debug!(%peer, seconds = started.elapsed().as_secs(), "connection closed");
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
