//! A load generator for any Server-Sent Events server: open N subscribers,
//! publish at a steady rate, and measure deliveries per second, publish→receive
//! latency, loss, and the server's memory per subscriber.
//!
//! Subscribers are raw HTTP/1.1 connections decoded with `tidings-codec`, so
//! the generator costs little per connection and speaks to any server:
//! Tidings (Mercure form publishing), or anything that takes the event data as
//! a raw POST body (Nchan, the Node/Express pattern).
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), tidings_bench::BenchError> {
//! use tidings_bench::{BenchConfig, PublishFormat};
//!
//! let mut config = BenchConfig::new("http://127.0.0.1:3000/.well-known/mercure?topic=bench")?;
//! config.publish = Some(tidings_bench::Publish::new(
//!     "http://127.0.0.1:3000/.well-known/mercure",
//!     PublishFormat::Mercure { topic: "bench".into() },
//! )?);
//! config.subscribers = 1000;
//! let report = tidings_bench::run(&config).await?;
//! println!("{} deliveries/s", report.deliveries_per_sec);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod chunked;
mod count;
mod net;
mod publisher;
mod storm;
mod subscriber;

pub use storm::{StormReport, run_storm};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::{Semaphore, watch};

pub use chunked::ChunkError;

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A URL is unusable.
    #[error("invalid URL {0}")]
    Url(String),
    /// A connection failed.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// A subscription was refused.
    #[error("subscription refused: {0}")]
    Status(String),
    /// A publish failed.
    #[error("publish failed: {0}")]
    Publish(String),
}

/// Where to connect and what to send on every request.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    addr: String,
    host: String,
    path_and_query: String,
    /// Extra header lines, each ending in CRLF.
    extra_headers: String,
    /// `https://`: TLS, certificates not checked.
    tls: bool,
    /// The host, for TLS's server name.
    server_name: String,
}

impl Target {
    fn parse(raw: &str) -> Result<Target, BenchError> {
        let url = url::Url::parse(raw).map_err(|e| BenchError::Url(format!("{raw}: {e}")))?;
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => {
                return Err(BenchError::Url(format!(
                    "{raw}: only http:// and https:// are supported"
                )));
            }
        };
        let host = url
            .host_str()
            .ok_or_else(|| BenchError::Url(format!("{raw}: no host")))?;
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let mut path_and_query = url.path().to_owned();
        if let Some(query) = url.query() {
            path_and_query.push('?');
            path_and_query.push_str(query);
        }
        Ok(Target {
            addr: format!("{host}:{port}"),
            host: format!("{host}:{port}"),
            path_and_query,
            extra_headers: String::new(),
            tls,
            server_name: host.to_owned(),
        })
    }
}

/// How the server takes a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishFormat {
    /// Mercure: form-encoded `topic` and `data`.
    Mercure {
        /// The topic to publish on.
        topic: String,
    },
    /// The data as the raw request body (Nchan, simple Node servers).
    Raw,
    /// Pushpin's publish API: a JSON item with an `http-stream` format on
    /// this channel.
    Grip {
        /// The channel to publish on.
        channel: String,
    },
}

impl PublishFormat {
    /// Whether `{n}` in the topic or channel spreads updates over topics.
    fn spreads(&self) -> bool {
        match self {
            PublishFormat::Mercure { topic } => topic.contains("{n}"),
            PublishFormat::Grip { channel } => channel.contains("{n}"),
            PublishFormat::Raw => false,
        }
    }
}

/// Where and how to publish.
#[derive(Debug, Clone)]
pub struct Publish {
    /// Where publishers connect: publisher `p` takes `targets[p % len]`.
    targets: Vec<Target>,
    format: PublishFormat,
}

impl Publish {
    /// Whether `{n}` (in the topic, the channel or a URL) sends update `i` to
    /// topic `i % subscribers` only: with `{n}` in the subscription URL too,
    /// each update then has one subscriber.
    pub fn spreads(&self) -> bool {
        self.format.spreads()
            || self
                .targets
                .iter()
                .any(|t| t.path_and_query.contains("{n}") || t.path_and_query.contains("%7Bn%7D"))
    }

    /// Publishing to `url` in `format`.
    ///
    /// # Errors
    /// If the URL is not an `http://` URL.
    pub fn new(url: &str, format: PublishFormat) -> Result<Publish, BenchError> {
        Ok(Publish {
            targets: vec![Target::parse(url)?],
            format,
        })
    }

    /// Also publishes to `url`: publishing connections take the URLs in turn,
    /// the nodes of a cluster, say.
    ///
    /// # Errors
    /// If the URL is not an `http://` URL.
    pub fn also(mut self, url: &str) -> Result<Publish, BenchError> {
        self.targets.push(Target::parse(url)?);
        Ok(self)
    }

    /// Sends `Authorization: Bearer <token>` with every publish.
    #[must_use]
    pub fn token(mut self, token: &str) -> Publish {
        for target in &mut self.targets {
            target.extra_headers = format!("Authorization: Bearer {token}\r\n");
        }
        self
    }
}

/// What to run. Every field documents its default.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Where subscribers connect: subscriber `n` takes `subscribe[n % len]`.
    subscribe: Vec<Target>,
    /// Where to publish; `None` only measures idle connections.
    pub publish: Option<Publish>,
    /// Subscribers to open. Default: 100.
    pub subscribers: usize,
    /// Updates to publish. Default: 1000.
    pub updates: usize,
    /// Updates per second. Default: 1000.
    pub rate: u32,
    /// Bytes of padding in each update's data. Default: 64.
    pub payload: usize,
    /// Subscribers connecting at once. Default: 200.
    pub connect_concurrency: usize,
    /// The server's process ids, to read their memory (Linux): the sum of
    /// their resident sets counts. Default: none.
    pub server_pids: Vec<u32>,
    /// Publishing connections, each taking an equal share of the updates and
    /// the rate. Default: 1.
    pub publishers: usize,
    /// How long to wait for every delivery after the last publish. Default: 10 s.
    pub drain_timeout: Duration,
}

impl BenchConfig {
    /// Also subscribes to `url`: subscribers take the URLs in turn, the
    /// nodes of a cluster, say.
    ///
    /// # Errors
    /// If the URL is not an `http://` URL.
    pub fn also_subscribe(&mut self, url: &str) -> Result<(), BenchError> {
        self.subscribe.push(Target::parse(url)?);
        Ok(())
    }

    /// A benchmark of subscribers to `subscribe_url`.
    ///
    /// # Errors
    /// If the URL is not an `http://` URL.
    pub fn new(subscribe_url: &str) -> Result<BenchConfig, BenchError> {
        Ok(BenchConfig {
            subscribe: vec![Target::parse(subscribe_url)?],
            publish: None,
            subscribers: 100,
            updates: 1000,
            rate: 1000,
            payload: 64,
            connect_concurrency: 200,
            server_pids: Vec::new(),
            publishers: 1,
            drain_timeout: Duration::from_secs(10),
        })
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Subscribers that connected.
    pub subscribers: usize,
    /// Server memory (resident) before subscribers connected, in bytes.
    pub server_rss_before: Option<u64>,
    /// Server memory with every subscriber connected and idle, in bytes.
    pub server_rss_idle: Option<u64>,
    /// (idle − before) / subscribers, in bytes.
    pub server_bytes_per_idle_subscriber: Option<f64>,
    /// Updates published.
    pub published: u64,
    /// Events received, all subscribers together.
    pub deliveries: u64,
    /// subscribers × published.
    pub expected_deliveries: u64,
    /// expected − received.
    pub lost: u64,
    /// From the first publish to the last delivery, in seconds.
    pub seconds: f64,
    /// deliveries / seconds.
    pub deliveries_per_sec: f64,
    /// Publish→receive latency percentiles, in microseconds.
    pub latency_us: Latency,
    /// CPU time the server used from the first publish to the last delivery,
    /// in seconds (user + system, all its processes), when its pids are known.
    pub server_cpu_seconds: Option<f64>,
    /// Server CPU time per delivery, in nanoseconds: its cost, whatever else
    /// shares the machine.
    pub server_cpu_ns_per_delivery: Option<f64>,
    /// CPU seconds this load generator used over the same window: with the
    /// server's, what says which of the two a figure was limited by.
    pub generator_cpu_seconds: Option<f64>,
    /// Events published before their subscriber connected (old events a
    /// server sent a new subscriber): not counted in `deliveries`.
    pub unexpected: u64,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
}

/// Runs the benchmark.
///
/// # Errors
/// If a subscriber cannot connect or a publish fails.
pub async fn run(config: &BenchConfig) -> Result<Report, BenchError> {
    let rss_before = rss_sum(&config.server_pids);
    let total = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(config.connect_concurrency.max(1)));
    let mut connecting = Vec::with_capacity(config.subscribers);
    for n in 0..config.subscribers {
        let mut target = config.subscribe[n % config.subscribe.len()].clone();
        // `{n}` in the URL becomes the subscriber's number: one topic each.
        target.path_and_query = target
            .path_and_query
            .replace("%7Bn%7D", &n.to_string())
            .replace("{n}", &n.to_string());
        let gate = gate.clone();
        connecting.push(tokio::spawn(async move {
            let _permit = gate.acquire().await;
            subscriber::connect(&target).await
        }));
    }
    let mut readers = Vec::with_capacity(config.subscribers);
    for handle in connecting {
        let (stream, first, chunked) = handle
            .await
            .map_err(|e| BenchError::Connect(e.to_string()))??;
        readers.push(tokio::spawn(subscriber::read_events(
            stream,
            first,
            chunked,
            unix_micros(),
            total.clone(),
            stop_rx.clone(),
        )));
    }
    // Let the server settle (and our first reads land) before measuring idle memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = rss_sum(&config.server_pids);
    let baseline = total.load(Ordering::Relaxed);
    let mut published = 0u64;
    let cpu_before = cpu_sum(&config.server_pids);
    let own = [std::process::id()];
    let own_before = cpu_sum(&own);
    let start = Instant::now();
    if let Some(publish) = &config.publish {
        published = publish_all(publish, config).await?;
    }
    let spread = config.publish.as_ref().is_some_and(Publish::spreads);
    let expected = if spread {
        published
    } else {
        published * config.subscribers as u64
    };
    let deadline = Instant::now() + config.drain_timeout;
    while total.load(Ordering::Relaxed) - baseline < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu_after = cpu_sum(&config.server_pids);
    let own_after = cpu_sum(&own);
    let _ = stop_tx.send(true);
    let mut latency: Option<Histogram<u64>> = None;
    let mut deliveries = 0;
    let mut unexpected = 0;
    for reader in readers {
        let received = reader
            .await
            .map_err(|e| BenchError::Connect(e.to_string()))?;
        deliveries += received.events;
        unexpected += received.stale;
        if received.latency_us.is_empty() {
            continue;
        }
        let all = latency.get_or_insert_with(|| {
            Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds")
        });
        for micros in received.latency_us {
            let _ = all.record(u64::from(micros));
        }
    }
    let latency_us = latency
        .map(|h| Latency {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        })
        .unwrap_or_default();
    Ok(Report {
        subscribers: config.subscribers,
        server_rss_before: rss_before,
        server_rss_idle: rss_idle,
        server_bytes_per_idle_subscriber: match (rss_before, rss_idle) {
            (Some(before), Some(idle)) if config.subscribers > 0 => {
                Some((idle as f64 - before as f64) / config.subscribers as f64)
            }
            _ => None,
        },
        published,
        deliveries,
        expected_deliveries: expected,
        lost: expected.saturating_sub(deliveries),
        seconds,
        deliveries_per_sec: per_second(deliveries, seconds),
        latency_us,
        server_cpu_seconds: cpu_before.zip(cpu_after).map(|(b, a)| a - b),
        server_cpu_ns_per_delivery: match cpu_before.zip(cpu_after) {
            Some((b, a)) if deliveries > 0 => Some((a - b) * 1e9 / deliveries as f64),
            _ => None,
        },
        generator_cpu_seconds: own_before.zip(own_after).map(|(b, a)| a - b),
        unexpected,
    })
}

/// Runs the publishers on a thread and a runtime of their own: on the
/// runtime of a thousand subscriber readers, a publisher's next request waited
/// behind every reader's turn (measured: with one publishing connection the
/// generator, not the server, set the pace), so the figure measured the tool.
pub(crate) async fn publish_all(
    publish: &Publish,
    config: &BenchConfig,
) -> Result<u64, BenchError> {
    let publishers = config.publishers.max(1);
    let (updates, rate, payload) = (config.updates, config.rate, config.payload);
    let subscribers = config.subscribers;
    let publish = publish.clone();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-publishers".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = done_tx.send(Err(BenchError::Publish(e.to_string())));
                    return;
                }
            };
            let result = runtime.block_on(async move {
                let mut tasks = Vec::with_capacity(publishers);
                for p in 0..publishers {
                    let share = updates / publishers + usize::from(p < updates % publishers);
                    let subscribers = subscribers.max(1);
                    let rate = f64::from(rate.max(1)) / publishers as f64;
                    let (target, format) = (
                        publish.targets[p % publish.targets.len()].clone(),
                        publish.format.clone(),
                    );
                    tasks.push(tokio::spawn(async move {
                        let mut publisher = publisher::Publisher::connect(target, format).await?;
                        let mut interval =
                            tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
                        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                        let padding = "x".repeat(payload);
                        for k in 0..share {
                            interval.tick().await;
                            let data = format!("{{\"t\":{},\"p\":\"{padding}\"}}", unix_micros());
                            // Update i of the run (publishers interleave).
                            let n = (k * publishers + p) % subscribers;
                            publisher.publish(&data, n).await?;
                        }
                        Ok::<u64, BenchError>(share as u64)
                    }));
                }
                let mut published = 0;
                for task in tasks {
                    published += task
                        .await
                        .map_err(|e| BenchError::Publish(e.to_string()))??;
                }
                Ok(published)
            });
            let _ = done_tx.send(result);
        })
        .map_err(|e| BenchError::Publish(e.to_string()))?;
    done_rx
        .await
        .map_err(|_| BenchError::Publish("the publishing thread stopped".into()))?
}

/// `count` over `seconds`; 0 for an empty window.
pub(crate) fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// Microseconds since the Unix epoch: the publish time in each update's
/// data, comparable across runs, so a subscriber can tell an old event.
pub(crate) fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// User + system CPU seconds of processes, from `/proc/PID/stat`.
pub(crate) fn cpu_sum(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    // Clock ticks per second: 100 on Linux for every mainstream architecture.
    const TICKS: f64 = 100.0;
    pids.iter()
        .map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the command name, which is in parentheses.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / TICKS)
        })
        .sum()
}

/// The summed resident memory of processes; `None` if any cannot be read.
fn rss_sum(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| rss_of(pid)).sum()
}

/// Resident memory of a process, from `/proc/PID/status`.
pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
