//! Publish→fan-out cost of the in-process hub, and memory per idle
//! subscription. Run: `cargo bench -p tidings-hub --bench fanout`.
//!
//! Every subscriber is a Tokio task that reads its stream, as a server's
//! connection task would; a scenario's time runs from the first publish until
//! every subscriber has received every update. Prints a Markdown table.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tidings_hub::{Hub, HubConfig, MemoryLog, Retention, SubscribeRequest, Update};
use tokio::sync::Notify;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn hub() -> Hub {
    let retention = Retention {
        max_count: Some(1_000_000),
        max_age: None,
        max_bytes: Some(1 << 30),
    };
    Hub::new(MemoryLog::new(retention), HubConfig::default()).unwrap()
}

struct Scenario {
    name: String,
    subscribers: usize,
    topics: usize,
    updates: usize,
    payload: usize,
    /// Idle subscribers, each with a distinct URI template that matches
    /// none of the published topics: what they cost every publish.
    templates: usize,
}

/// Runs one scenario; returns (elapsed, deliveries).
async fn run(s: &Scenario) -> (Duration, usize) {
    let hub = hub();
    let mut idle = Vec::with_capacity(s.templates);
    for n in 0..s.templates {
        let template = format!("https://example.com/users/{n}/{{doc}}");
        idle.push(
            hub.subscribe(SubscribeRequest::new([template]))
                .await
                .unwrap(),
        );
    }
    let done = Arc::new(Notify::new());
    let remaining = Arc::new(AtomicUsize::new(s.subscribers));
    let per_topic = s.updates / s.topics;
    for i in 0..s.subscribers {
        let topic = format!("https://example.com/t/{}", i % s.topics);
        let mut sub = hub.subscribe(SubscribeRequest::new([topic])).await.unwrap();
        let (done, remaining) = (done.clone(), remaining.clone());
        tokio::spawn(async move {
            let mut received = 0;
            while received < per_topic {
                let frame = sub.next().await.expect("stream ended");
                if frame.len() > 3 {
                    received += 1; // not a keep-alive
                }
            }
            if remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                done.notify_one();
            }
        });
    }
    let data = "x".repeat(s.payload);
    let start = Instant::now();
    // Four concurrent publishers, so the writer can batch.
    let mut publishers = Vec::new();
    for p in 0..4 {
        let (hub, data) = (hub.clone(), data.clone());
        let (updates, topics) = (s.updates, s.topics);
        publishers.push(tokio::spawn(async move {
            for n in (p..updates).step_by(4) {
                let topic = format!("https://example.com/t/{}", n % topics);
                hub.publish(Update::new(topic, data.clone())).await.unwrap();
            }
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    done.notified().await;
    drop(idle);
    (start.elapsed(), s.subscribers * per_topic)
}

async fn idle_memory(n: usize) -> (f64, f64) {
    let hub = hub();
    let before = rss_bytes();
    let mut subs = Vec::with_capacity(n);
    for i in 0..n {
        subs.push(
            hub.subscribe(SubscribeRequest::new([format!(
                "https://example.com/idle/{i}"
            )]))
            .await
            .unwrap(),
        );
    }
    let held = rss_bytes();
    // The realistic case: each subscription parked in its own task.
    let mut tasks = Vec::with_capacity(n);
    for mut sub in subs {
        tasks.push(tokio::spawn(async move {
            let _ = sub.next().await;
        }));
    }
    tokio::task::yield_now().await;
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    let parked = rss_bytes();
    hub.shutdown().await;
    for t in tasks {
        let _ = t.await;
    }
    (
        (held - before) as f64 / n as f64,
        (parked - before) as f64 / n as f64,
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if std::env::var_os("FANOUT_ONLY").is_none() {
            let (held, parked) = idle_memory(100_000).await;
            println!("memory per idle subscription (100 000): {held:.0} B held, {parked:.0} B with a parked task each\n");
        }
        let scenarios = [
            Scenario { name: "1 subscriber, 1 topic".into(), subscribers: 1, topics: 1, updates: 200_000, payload: 64, templates: 0 },
            Scenario { name: "1 000 subscribers, 1 topic".into(), subscribers: 1_000, topics: 1, updates: 2_000, payload: 64, templates: 0 },
            Scenario { name: "1 000 subscribers, 1 topic, 16 KiB".into(), subscribers: 1_000, topics: 1, updates: 2_000, payload: 16 << 10, templates: 0 },
            Scenario { name: "100 000 subscribers, 1 topic".into(), subscribers: 100_000, topics: 1, updates: 40, payload: 64, templates: 0 },
            Scenario { name: "100 000 subscribers, 100 000 topics".into(), subscribers: 100_000, topics: 100_000, updates: 200_000, payload: 64, templates: 0 },
            Scenario { name: "1 subscriber, 1 topic, 1 000 distinct templates idle".into(), subscribers: 1, topics: 1, updates: 200_000, payload: 64, templates: 1_000 },
        ];
        // FANOUT_ONLY=text runs the scenarios whose name contains it.
        let only = std::env::var("FANOUT_ONLY").unwrap_or_default();
        println!("| scenario | updates | deliveries | time | deliveries/s | ns/delivery |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        for s in scenarios.iter().filter(|s| s.name.contains(&only)) {
            let (elapsed, deliveries) = run(s).await;
            println!(
                "| {} | {} | {} | {:.2} s | {:.0} | {:.0} |",
                s.name,
                s.updates,
                deliveries,
                elapsed.as_secs_f64(),
                deliveries as f64 / elapsed.as_secs_f64(),
                elapsed.as_nanos() as f64 / deliveries as f64
            );
        }
    });
}
