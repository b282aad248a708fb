//! One benchmark subscriber: a raw HTTP/1.1 connection reading an event
//! stream, counting events and measuring their latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::chunked::Dechunker;
use crate::count::{Counted, Counter};
use crate::net::Conn;
use crate::{BenchError, Target};

/// What a subscriber measured.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) events: u64,
    /// Publish→receive latency of each event, in microseconds. A plain list
    /// while running: a histogram per subscriber cost 10 000 allocations of
    /// its bucket array when 10 000 subscribers got their first event.
    pub(crate) latency_us: Vec<u32>,
    /// Events published before this subscriber connected (a server that
    /// sends old events to a new subscriber): not counted as deliveries.
    pub(crate) stale: u64,
}

/// Opens the stream and returns once the response head arrived.
pub(crate) async fn connect(target: &Target) -> Result<(Conn, Vec<u8>, bool), BenchError> {
    let mut stream = Conn::open(target).await?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n{}\r\n",
        target.path_and_query, target.host, target.extra_headers
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| BenchError::Connect(e.to_string()))?;
    stream
        .flush()
        .await
        .map_err(|e| BenchError::Connect(e.to_string()))?;
    let mut buf = Vec::with_capacity(1024);
    loop {
        if let Some(end) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status_ok = head.starts_with("http/1.1 200") || head.starts_with("http/1.0 200");
            if !status_ok {
                let line = head.lines().next().unwrap_or("").to_owned();
                return Err(BenchError::Status(line));
            }
            let chunked = head.contains("transfer-encoding: chunked");
            let rest = buf[end + 4..].to_vec();
            return Ok((stream, rest, chunked));
        }
        if buf.len() > 64 * 1024 {
            return Err(BenchError::Status("response head too large".into()));
        }
        let n = stream
            .read_buf(&mut buf)
            .await
            .map_err(|e| BenchError::Connect(e.to_string()))?;
        if n == 0 {
            return Err(BenchError::Connect(
                "closed before the response head".into(),
            ));
        }
    }
}

/// Reads events until `stop` turns true; counts into `total` as it goes.
pub(crate) async fn read_events(
    mut stream: Conn,
    first: Vec<u8>,
    chunked: bool,
    since: u64,
    total: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> Received {
    let mut counter = Counter::new();
    let mut dechunker = chunked.then(Dechunker::new);
    let mut received = Received {
        events: 0,
        latency_us: Vec::new(),
        stale: 0,
    };
    let mut buf = first;
    loop {
        let mut events = 0;
        let now = crate::unix_micros();
        let mut count = |counted: Counted| {
            if counted.sent_at.is_some_and(|sent| sent < since) {
                received.stale += 1;
                return;
            }
            events += 1;
            if let Some(sent) = counted.sent_at {
                let micros = now.saturating_sub(sent).max(1);
                received
                    .latency_us
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
        };
        match &mut dechunker {
            Some(d) => {
                if d.feed(&buf, |body| counter.feed(body, &mut count)).is_err() {
                    return received;
                }
            }
            None => counter.feed(&buf, &mut count),
        }
        if events > 0 {
            received.events += events;
            total.fetch_add(events, Ordering::Relaxed);
        }
        buf.clear();
        if buf.capacity() < 16 * 1024 {
            buf.reserve(16 * 1024);
        }
        tokio::select! {
            n = stream.read_buf(&mut buf) => match n {
                Ok(0) | Err(_) => return received,
                Ok(_) => {}
            },
            _ = stop.wait_for(|s| *s) => return received,
        }
    }
}
