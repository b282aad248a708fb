//! A subscriber connection on the lean path: the response head, then frames
//! as they come, until the hub, the client or the token ends it.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tidings_hub::Subscription;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::limits::{ConnectionGuard, SubscriberSlot};
use crate::state::SharedState;
use crate::subscribe;

use super::head::{Head, Method};
use super::peer::{Peer, PeerEvent, Written};

/// Frames taken from a subscription for one write.
const MAX_FRAMES_PER_WRITE: usize = 64;

/// A subscriber whose socket accepts nothing for this long is dropped; it
/// resumes with `Last-Event-ID` when it comes back.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a stream ended, when its socket stopped taking writes.
const WRITE_TIMED_OUT: &str = "client stopped reading (write timeout)";
const WRITE_FAILED: &str = "write failed";

/// A streaming subscriber connection: all a subscriber holds for its life.
pub(super) struct SubscriberConn<S> {
    pub(super) stream: S,
    pub(super) subscription: Subscription,
    /// `exp` of the subscriber's token, in Unix seconds.
    pub(super) expires_at: Option<u64>,
    pub(super) chunked: bool,
    pub(super) peer: SocketAddr,
    pub(super) started: Instant,
    /// Frees the connection's (and the subscriber's) place in the limits
    /// when dropped.
    pub(super) _guard: ConnectionGuard,
}

impl<S: Peer> SubscriberConn<S> {
    pub(super) async fn run(mut self: Box<Self>) {
        let (reason, written) = stream_frames(
            &mut self.stream,
            &mut self.subscription,
            self.expires_at,
            self.chunked,
        )
        .await;
        // The closing chunk only where the socket still takes writes: after
        // a write timeout it would wait a second WRITE_TIMEOUT for a client
        // that reads nothing, holding the connection's slot twice as long as
        // documented.
        let socket_stuck = matches!(reason, WRITE_TIMED_OUT | WRITE_FAILED);
        let closing = Box::pin(async {
            if self.chunked && !socket_stuck {
                let _ =
                    tokio::time::timeout(WRITE_TIMEOUT, self.stream.write_all(b"0\r\n\r\n")).await;
            }
            let _ = self.stream.shutdown().await;
        });
        closing.await;
        let subscriber = self.subscription.subscriber_id();
        tracing::debug!(peer = %self.peer, %subscriber, reason, bytes = written, seconds = self.started.elapsed().as_secs(), "subscriber disconnected");
    }
}

/// A subscription that has sent its response head.
pub(super) struct Started {
    pub(super) subscription: Subscription,
    pub(super) expires_at: Option<u64>,
    pub(super) chunked: bool,
    pub(super) slot: SubscriberSlot,
}

/// Authorizes, subscribes and writes the response head. `None` when the
/// request was refused (the error is written) or is a `HEAD`.
pub(super) async fn start_subscription<S: AsyncWrite + Unpin>(
    stream: &mut S,
    peer: SocketAddr,
    head: Head,
    state: &SharedState,
) -> Option<Started> {
    let origin = head.headers.get("origin").and_then(|v| v.to_str().ok());
    let cors = crate::cors::header_lines(&state.config.cors_origins, origin);
    let chunked = head.minor_version >= 1;
    let answer = if head.method == Method::Head {
        subscribe::probe(state, &head.headers, head.query.as_deref()).map(|headers| (headers, None))
    } else {
        subscribe::open(state, &head.headers, head.query.as_deref(), None)
            .await
            .map(|opened| {
                (
                    subscribe::response_headers(&opened.subscription),
                    Some(opened),
                )
            })
    };
    let (headers, opened) = match answer {
        Ok(answer) => answer,
        Err(error) => {
            tracing::info!(%peer, status = error.status.as_u16(), reason = %error.message, "subscription refused");
            let _ = stream.write_all(&error.to_http1(&cors)).await;
            let _ = stream.flush().await;
            return None;
        }
    };
    let mut response = format!("HTTP/1.{} 200 OK\r\n", head.minor_version);
    for (name, value) in headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str(&cors);
    response.push_str(if chunked {
        "Transfer-Encoding: chunked\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    let Some(opened) = opened else {
        // HEAD: the headers only.
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.flush().await;
        return None;
    };
    // A first comment flushes the headers through any proxy at once.
    response.push_str(if chunked { "3\r\n:\n\n\r\n" } else { ":\n\n" });
    if stream.write_all(response.as_bytes()).await.is_err() || stream.flush().await.is_err() {
        return None;
    }
    bytes_written().increment(response.len() as u64);
    let info = opened.subscription.info();
    tracing::debug!(%peer, subscriber = %info.subscriber, topics = ?info.topics, last_event_id = opened.subscription.last_event_id(), "subscriber connected");
    Some(Started {
        subscription: opened.subscription,
        expires_at: opened.expires_at,
        chunked,
        slot: opened.slot,
    })
}

/// The bytes-written counter, looked up once: `counter!` searches the
/// registry on every call, and this runs on every write.
fn bytes_written() -> &'static metrics::Counter {
    static COUNTER: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
    COUNTER.get_or_init(|| metrics::counter!("tidings_bytes_written_total"))
}

thread_local! {
    /// The frames of one write, reused by every connection this thread
    /// polls: a connection holds no buffer between writes (most of them are
    /// idle most of the time), and a write allocates none. Borrowed only
    /// inside one poll, never across an await.
    static FRAMES: std::cell::RefCell<Vec<Bytes>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What woke an idle subscriber connection.
enum Wake {
    /// Frames were ready and written as far as the socket took them.
    Wrote(io::Result<Written>),
    End,
    Closed,
    SocketError,
    Expired,
}

/// The life of a subscriber connection: wait for frames, write them. Its
/// state is a few words (no inner futures while idle), because there are
/// many of these and they live long. Returns why it ended and bytes written.
pub(super) async fn stream_frames<S: Peer>(
    stream: &mut S,
    subscription: &mut Subscription,
    expires_at: Option<u64>,
    chunked: bool,
) -> (&'static str, u64) {
    let mut expires = expires_at.map(|exp| Box::pin(tokio::time::sleep(until_unix(exp))));
    let mut written = 0u64;
    loop {
        let wake = std::future::poll_fn(|cx| {
            if let Some(expiry) = &mut expires
                && expiry.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Wake::Expired);
            }
            let ready = FRAMES.with_borrow_mut(|frames| {
                let ready = match subscription.poll_frames(cx, frames, MAX_FRAMES_PER_WRITE) {
                    Poll::Ready(0) => Some(Wake::End),
                    Poll::Ready(_) => Some(Wake::Wrote(write_now(stream, frames, chunked))),
                    Poll::Pending => None,
                };
                frames.clear();
                ready
            });
            if let Some(wake) = ready {
                return Poll::Ready(wake);
            }
            loop {
                return match stream.poll_peer(cx) {
                    Poll::Ready(PeerEvent::Closed) => Poll::Ready(Wake::Closed),
                    Poll::Ready(PeerEvent::Failed) => Poll::Ready(Wake::SocketError),
                    // Nothing more is expected from a subscriber; ignore it.
                    Poll::Ready(PeerEvent::Sent) => continue,
                    Poll::Pending => Poll::Pending,
                };
            }
        })
        .await;
        match wake {
            Wake::Wrote(result) => {
                let result = match result {
                    Ok(Written::All(total)) => Ok(total),
                    Ok(Written::Partly { total, rest }) => {
                        // The socket is full: wait for it, boxed so that idle
                        // connections don't carry this state.
                        let finishing = Box::pin(finish_write(stream, rest));
                        finishing.await.map(|()| total)
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Ok(total) => {
                        written += total as u64;
                        bytes_written().increment(total as u64);
                    }
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                        return (WRITE_TIMED_OUT, written);
                    }
                    Err(_) => return (WRITE_FAILED, written),
                }
            }
            Wake::End => return ("the hub is shutting down", written),
            Wake::Expired => return ("token expired", written),
            Wake::SocketError => return ("socket error", written),
            Wake::Closed => return ("client closed the connection", written),
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
        Some(exp) => tokio::time::sleep(until_unix(exp)).await,
        None => std::future::pending().await,
    }
}

/// Writes frames as one chunk (HTTP/1.1) or raw (HTTP/1.0), with vectored
/// writes, as far as the socket takes them without waiting: the common case,
/// which needs no future state at all.
/// Allocates nothing: the chunk head and the slices live on the stack.
fn write_now<S: Peer>(stream: &mut S, frames: &[Bytes], chunked: bool) -> io::Result<Written> {
    use std::io::Write as _;
    debug_assert!(frames.len() <= MAX_FRAMES_PER_WRITE);
    let len: usize = frames.iter().map(Bytes::len).sum();
    // 16 hex digits and CRLF at most.
    let mut head = [0u8; 18];
    let head_len = if chunked {
        let mut cursor = &mut head[..];
        write!(cursor, "{len:x}\r\n")?;
        18 - cursor.len()
    } else {
        0
    };
    let chunk_tail: &[u8] = if chunked { b"\r\n" } else { b"" };
    let mut slices = [IoSlice::new(&[]); MAX_FRAMES_PER_WRITE + 2];
    let frames = &frames[..frames.len().min(MAX_FRAMES_PER_WRITE)];
    slices[0] = IoSlice::new(&head[..head_len]);
    for (slot, frame) in slices[1..].iter_mut().zip(frames) {
        *slot = IoSlice::new(frame);
    }
    slices[frames.len() + 1] = IoSlice::new(chunk_tail);
    let total = head_len + len + chunk_tail.len();
    stream.write_now(&mut slices[..frames.len() + 2], total)
}

/// Writes (and flushes) what a full socket did not take, within
/// [`WRITE_TIMEOUT`].
async fn finish_write<S: Peer>(stream: &mut S, rest: Vec<u8>) -> io::Result<()> {
    let finishing = async {
        stream.write_all(&rest).await?;
        stream.flush().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, finishing).await {
        Ok(result) => result,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

#[cfg(test)]
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
        let task = crate::conn::handle(
            stream,
            crate::conn::Context {
                peer,
                state: state.clone(),
                router,
                stopping: tokio_util::sync::CancellationToken::new(),
                tls: None,
            },
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
        let held = std::mem::size_of::<super::SubscriberConn<tokio::net::TcpStream>>();
        assert!(held <= 256, "SubscriberConn grew to {held} bytes");
    }

    /// A subscriber whose socket takes nothing is dropped one write timeout
    /// after its socket filled, not two: the closing chunk used to get a
    /// timeout of its own.
    #[tokio::test]
    async fn regression_a_stuck_subscriber_is_dropped_after_one_write_timeout() {
        let config = crate::Config {
            storage: crate::Storage::Memory,
            jwt_key: Some("0123456789abcdef0123456789abcdef".into()),
            ..crate::Config::default()
        };
        let server = crate::Server::new(config).unwrap();
        let hub = server.hub().clone();
        let subscription = hub
            .subscribe(tidings_hub::SubscribeRequest::new(["t"]))
            .await
            .unwrap();
        for i in 0..8 {
            hub.publish(tidings_hub::Update::new("t", "x".repeat(4096)).id(i.to_string()))
                .await
                .unwrap();
        }
        hub.caught_up().await.unwrap();
        // The far end never reads: a 1 KiB pipe fills with the first frame.
        let (socket, _far_end) = tokio::io::duplex(1024);
        let guard =
            crate::limits::ConnectionGuard::admit(&server.state, [127, 0, 0, 1].into()).unwrap();
        let conn = Box::new(super::SubscriberConn {
            stream: socket,
            subscription,
            expires_at: None,
            chunked: true,
            peer: "127.0.0.1:1".parse().unwrap(),
            started: std::time::Instant::now(),
            _guard: guard,
        });
        // Everything is queued: only timers are left, and paused time runs
        // them in order.
        tokio::time::pause();
        let started = tokio::time::Instant::now();
        conn.run().await;
        let took = started.elapsed();
        assert!(
            took >= super::WRITE_TIMEOUT && took < super::WRITE_TIMEOUT * 3 / 2,
            "dropped after {took:?}, the write timeout is {:?}",
            super::WRITE_TIMEOUT
        );
    }
}
