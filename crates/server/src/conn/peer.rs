//! The socket under a lean subscriber connection: plain TCP or TLS.
//!
//! The streaming loop needs two things of it without a future of its own,
//! so that an idle subscriber holds no more than its state: to notice the
//! client going away, and to write what fits now. Plain TCP does both with
//! readiness and `try_` calls; TLS goes through rustls, which reads and
//! writes records in its own buffers, so it is polled (with a no-op waker
//! where the caller does not wait).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// What the client did, as far as a subscriber connection cares.
pub(super) enum PeerEvent {
    /// It closed the connection.
    Closed,
    /// The socket failed.
    Failed,
    /// It sent something, which a subscriber connection ignores.
    Sent,
}

/// What [`Peer::write_now`] managed.
pub(super) enum Written {
    /// Everything: this many bytes.
    All(usize),
    /// The socket filled up: `rest` is still to be written (and flushed),
    /// of `total`.
    Partly { total: usize, rest: Vec<u8> },
}

/// A subscriber's socket.
pub(super) trait Peer: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Waits for the client to close, fail or send.
    fn poll_peer(&mut self, cx: &mut Context<'_>) -> Poll<PeerEvent>;

    /// Writes `slices` (`total` bytes) as far as the socket takes them now.
    fn write_now(&mut self, slices: &mut [IoSlice<'_>], total: usize) -> io::Result<Written>;
}

impl Peer for TcpStream {
    fn poll_peer(&mut self, cx: &mut Context<'_>) -> Poll<PeerEvent> {
        loop {
            match self.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(PeerEvent::Failed),
                Poll::Pending => return Poll::Pending,
            }
            return Poll::Ready(match self.try_read(&mut [0u8; 64]) {
                Ok(0) => PeerEvent::Closed,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(_) => PeerEvent::Failed,
                Ok(_) => PeerEvent::Sent,
            });
        }
    }

    fn write_now(&mut self, slices: &mut [IoSlice<'_>], total: usize) -> io::Result<Written> {
        let mut remaining = slices;
        let mut done = 0;
        while done < total {
            match self.try_write_vectored(remaining) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    done += n;
                    IoSlice::advance_slices(&mut remaining, n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let rest = unwritten(remaining, total - done);
                    return Ok(Written::Partly { total, rest });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Written::All(total))
    }
}

impl Peer for TlsStream<TcpStream> {
    fn poll_peer(&mut self, cx: &mut Context<'_>) -> Poll<PeerEvent> {
        poll_peer_by_reading(self, cx)
    }

    fn write_now(&mut self, slices: &mut [IoSlice<'_>], total: usize) -> io::Result<Written> {
        // rustls holds the records until flushed.
        write_now_by_polling(self, slices, total)
    }
}

/// An in-memory socket for tests: the far end of a `tokio::io::duplex`,
/// polled like TLS, so that timing tests run on paused time.
#[cfg(test)]
impl Peer for tokio::io::DuplexStream {
    fn poll_peer(&mut self, cx: &mut Context<'_>) -> Poll<PeerEvent> {
        poll_peer_by_reading(self, cx)
    }

    fn write_now(&mut self, slices: &mut [IoSlice<'_>], total: usize) -> io::Result<Written> {
        write_now_by_polling(self, slices, total)
    }
}

/// What a full socket did not take, copied slice by slice (a memcpy each:
/// a byte-by-byte copy of megabytes of 64 KiB frames cost more than their
/// write).
fn unwritten(remaining: &[IoSlice<'_>], len: usize) -> Vec<u8> {
    let mut rest = Vec::with_capacity(len);
    for slice in remaining {
        rest.extend_from_slice(slice);
    }
    rest
}

/// What the client did, found by reading (and dropping) what it sent.
fn poll_peer_by_reading<S: AsyncRead + Unpin>(
    stream: &mut S,
    cx: &mut Context<'_>,
) -> Poll<PeerEvent> {
    let mut scratch = [0u8; 64];
    let mut buf = ReadBuf::new(&mut scratch);
    match Pin::new(stream).poll_read(cx, &mut buf) {
        Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(PeerEvent::Closed),
        Poll::Ready(Ok(())) => Poll::Ready(PeerEvent::Sent),
        Poll::Ready(Err(_)) => Poll::Ready(PeerEvent::Failed),
        Poll::Pending => Poll::Pending,
    }
}

/// Writes by polling with a no-op waker: the caller waits on the socket
/// only if this cannot finish, and that wait registers a real waker.
fn write_now_by_polling<S: AsyncWrite + Unpin>(
    stream: &mut S,
    slices: &mut [IoSlice<'_>],
    total: usize,
) -> io::Result<Written> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut remaining = slices;
    let mut done = 0;
    while done < total {
        match Pin::new(&mut *stream).poll_write_vectored(&mut cx, remaining) {
            Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => {
                done += n;
                IoSlice::advance_slices(&mut remaining, n);
            }
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => {
                let rest = unwritten(remaining, total - done);
                return Ok(Written::Partly { total, rest });
            }
        }
    }
    match Pin::new(stream).poll_flush(&mut cx) {
        Poll::Ready(Ok(())) => Ok(Written::All(total)),
        Poll::Ready(Err(e)) => Err(e),
        Poll::Pending => Ok(Written::Partly {
            total,
            rest: Vec::new(),
        }),
    }
}
