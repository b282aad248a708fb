//! Publishes per second each log takes, in batches as the hub's writer hands
//! them over: memory, redb, and Redis through the publish script (EVALSHA
//! pipelined per batch) with each persistence setting. Also Redis's own CPU
//! per publish, from `INFO cpu`, the figure that bounds one Redis primary.
//!
//! Run: `cargo bench -p tidings-hub --bench log_append`. Starts its own
//! `redis-server` on a free port (never the machine's 6379). Prints a
//! Markdown table.

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_server::RedisServer;
use tidings_hub::{Entry, Log, MemoryLog, RedbLog, RedisLog, RedisOptions, Retention};

/// Updates per measured run.
const UPDATES: usize = 100_000;
/// Bytes of data in each update (the frame adds its `id:` and field names).
const DATA: usize = 100;

fn retention() -> Retention {
    Retention {
        max_count: Some(1_000_000),
        max_age: None,
        max_bytes: Some(1 << 30),
    }
}

fn batch(start: usize, len: usize) -> Vec<Entry> {
    let data = "x".repeat(DATA);
    (start..start + len)
        .map(|i| {
            let id = format!("urn:uuid:bench-{i:012}");
            Entry {
                position: 0,
                frame: format!("id: {id}\ndata: {data}\n\n").into_bytes().into(),
                id: id.into(),
                topics: vec!["https://example.com/bench".into()].into_boxed_slice(),
                private: false,
                published_at_ms: 1,
            }
        })
        .collect()
}

/// Appends `UPDATES` in batches of `size`, one batch at a time as the writer
/// does; returns the elapsed time.
async fn appends(log: &dyn Log, size: usize) -> Duration {
    // Build the batches first: only the log's work is timed.
    let batches: Vec<Vec<Entry>> = (0..UPDATES / size).map(|b| batch(b * size, size)).collect();
    let started = Instant::now();
    for entries in batches {
        let outcome = log
            .append(entries)
            .await
            .expect("the log accepts the batch");
        assert!(
            outcome
                .iter()
                .all(|o| matches!(o, tidings_hub::Appended::At(_)))
        );
    }
    started.elapsed()
}

/// Redis's user + system CPU seconds so far.
fn redis_cpu(server: &RedisServer) -> f64 {
    let info = server.command(&["INFO", "cpu"]).unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let (name, value) = l.trim().split_once(':')?;
            matches!(name, "used_cpu_sys" | "used_cpu_user").then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

fn row(name: &str, size: usize, elapsed: Duration, redis_cpu: Option<f64>) {
    let per_sec = UPDATES as f64 / elapsed.as_secs_f64();
    let cpu = redis_cpu.map_or("—".to_owned(), |s| {
        format!("{:.1} µs", s * 1e6 / UPDATES as f64)
    });
    println!(
        "| {name} | {size} | {:.2} s | {:.0} | {cpu} |",
        elapsed.as_secs_f64(),
        per_sec
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("| log | batch | time for {UPDATES} | publishes/s | Redis CPU per publish |");
        println!("| --- | ---: | ---: | ---: | ---: |");
        for size in [512, 64, 1] {
            let memory = MemoryLog::new(retention());
            row("memory", size, appends(&memory, size).await, None);
        }
        for size in [512, 64] {
            let dir = tempfile::tempdir().unwrap();
            let redb = RedbLog::open(dir.path(), retention()).unwrap();
            row(
                "redb (fsync per batch)",
                size,
                appends(&redb, size).await,
                None,
            );
        }
        for (name, persistent, fsync) in [
            ("Redis, no persistence", false, None),
            ("Redis, AOF everysec", true, Some("everysec")),
            ("Redis, AOF always", true, Some("always")),
        ] {
            for size in [512, 64, 1] {
                if size == 1 && fsync == Some("always") {
                    continue; // an fsync per publish: minutes for this count
                }
                let server = RedisServer::start(persistent);
                if let Some(fsync) = fsync {
                    server.command(&["CONFIG", "SET", "appendfsync", fsync]);
                }
                let log = RedisLog::new(RedisOptions {
                    url: server.url(),
                    retention: retention(),
                    ..RedisOptions::default()
                })
                .unwrap();
                log.open().await.expect("Redis answers");
                let before = redis_cpu(&server);
                let elapsed = appends(&log, size).await;
                let cpu = redis_cpu(&server) - before;
                row(name, size, elapsed, Some(cpu));
                drop(Arc::new(server));
            }
        }
    });
}
