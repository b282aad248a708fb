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

mod head;
mod hyper;
mod stream;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::http::StatusCode;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::limits::ConnectionGuard;
use crate::state::SharedState;

use self::head::{Head, Method, read_head};
use self::hyper::serve_with_hyper;
pub(crate) use self::stream::token_deadline;
use self::stream::{SubscriberConn, start_subscription};

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
            let started = start_subscription(&mut stream, peer, head, &state).await?;
            Some(Box::new(SubscriberConn {
                stream,
                subscription: started.subscription,
                expires_at: started.expires_at,
                chunked: started.chunked,
                peer,
                started: Instant::now(),
                _guard: guard,
                _slot: started.slot,
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
