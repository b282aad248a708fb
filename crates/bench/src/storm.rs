//! The resume storm: many subscribers reconnect at once, each with a
//! `Last-Event-ID` some updates back, and the clock runs until every one has
//! caught up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tidings_codec::{Decoder, Item};
use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, watch};

use crate::chunked::Dechunker;
use crate::{BenchConfig, BenchError, cpu_sum, per_second, publish_all, subscriber};

/// What a resume storm measured.
#[derive(Debug, Clone, Serialize)]
pub struct StormReport {
    /// Subscribers that reconnected at once.
    pub subscribers: usize,
    /// Updates each one resumed behind (what it had to catch up).
    pub behind: u64,
    /// The `Last-Event-ID` they sent.
    pub last_event_id: String,
    /// Events received, all subscribers together.
    pub deliveries: u64,
    /// subscribers × behind.
    pub expected_deliveries: u64,
    /// expected − received.
    pub lost: u64,
    /// From the first reconnect until every subscriber had caught up (or
    /// the drain timeout), in seconds.
    pub seconds: f64,
    /// deliveries / seconds.
    pub deliveries_per_sec: f64,
    /// Server CPU seconds over the storm, when its pids are known.
    pub server_cpu_seconds: Option<f64>,
}

/// Publishes `config.updates + 1` updates (a probe subscriber learns the id
/// of the first), then reconnects `config.subscribers` subscribers at once,
/// `config.connect_concurrency` at a time, with `Last-Event-ID` set to that
/// id: each must receive the `config.updates` that followed.
///
/// # Errors
/// If the probe or a subscriber cannot connect, a publish fails, or the
/// server's events carry no id.
pub async fn run_storm(config: &BenchConfig) -> Result<StormReport, BenchError> {
    let publish = config
        .publish
        .as_ref()
        .ok_or_else(|| BenchError::Publish("a resume storm needs a publish URL".into()))?;
    let mut target = config.subscribe[0].clone();
    target.path_and_query = target.path_and_query.replace("{n}", "0");
    let (stream, first, chunked) = subscriber::connect(&target).await?;
    let probe = tokio::spawn(first_id(stream, first, chunked, config.updates as u64 + 1));
    let mut run = config.clone();
    run.updates = config.updates + 1;
    publish_all(publish, &run).await?;
    let last_event_id = tokio::time::timeout(config.drain_timeout, probe)
        .await
        .map_err(|_| BenchError::Connect("the probe did not receive every update".into()))?
        .map_err(|e| BenchError::Connect(e.to_string()))??;
    let behind = config.updates as u64;
    let expected = behind * config.subscribers as u64;
    let total = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(config.connect_concurrency.max(1)));
    let cpu_before = cpu_sum(&config.server_pids);
    let start = Instant::now();
    let mut readers = Vec::with_capacity(config.subscribers);
    for n in 0..config.subscribers {
        let mut target = config.subscribe[n % config.subscribe.len()].clone();
        target.path_and_query = target.path_and_query.replace("{n}", "0");
        target.extra_headers += &format!("Last-Event-ID: {last_event_id}\r\n");
        let (gate, total, stop) = (gate.clone(), total.clone(), stop_rx.clone());
        readers.push(tokio::spawn(async move {
            let (stream, first, chunked) = {
                let _permit = gate.acquire().await;
                subscriber::connect(&target).await?
            };
            Ok::<_, BenchError>(
                // They resume: every event they get is older than they are.
                subscriber::read_events(stream, first, chunked, 0, total, stop).await,
            )
        }));
    }
    let deadline = Instant::now() + config.drain_timeout;
    while total.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu_after = cpu_sum(&config.server_pids);
    let _ = stop_tx.send(true);
    let mut deliveries = 0;
    for reader in readers {
        deliveries += reader
            .await
            .map_err(|e| BenchError::Connect(e.to_string()))??
            .events;
    }
    Ok(StormReport {
        subscribers: config.subscribers,
        behind,
        last_event_id,
        deliveries,
        expected_deliveries: expected,
        lost: expected.saturating_sub(deliveries),
        seconds,
        deliveries_per_sec: per_second(deliveries, seconds),
        server_cpu_seconds: cpu_before.zip(cpu_after).map(|(b, a)| a - b),
    })
}

/// Reads `count` events and returns the id of the first.
async fn first_id(
    mut stream: crate::net::Conn,
    first: Vec<u8>,
    chunked: bool,
    count: u64,
) -> Result<String, BenchError> {
    let mut decoder = Decoder::new();
    let mut dechunker = chunked.then(Dechunker::new);
    let (mut seen, mut id) = (0u64, None::<String>);
    let mut buf = first;
    let mut body = Vec::new();
    loop {
        body.clear();
        match &mut dechunker {
            Some(d) => d
                .feed(&buf, |b| body.extend_from_slice(b))
                .map_err(|e| BenchError::Connect(e.to_string()))?,
            None => body.extend_from_slice(&buf),
        }
        for item in decoder.feed(&body) {
            if let Item::Event(event) = item {
                seen += 1;
                if id.is_none() {
                    if event.id.is_empty() {
                        return Err(BenchError::Connect(
                            "the server's events carry no id: it cannot resume".into(),
                        ));
                    }
                    id = Some(event.id);
                }
            }
        }
        if seen >= count {
            return id.ok_or_else(|| BenchError::Connect("no event".into()));
        }
        buf.clear();
        let n = stream
            .read_buf(&mut buf)
            .await
            .map_err(|e| BenchError::Connect(e.to_string()))?;
        if n == 0 {
            return Err(BenchError::Connect("the probe's stream ended".into()));
        }
    }
}
