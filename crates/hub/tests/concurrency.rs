//! The switch from replay to live never loses or duplicates an update, even
//! while publishes race with subscribers that reconnect at random points.

mod common;

use std::collections::HashSet;

use common::{WAIT, parse};
use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tidings_hub::{Hub, HubConfig, MemoryLog, Retention, SubscribeRequest, Update};

const TOPICS: [&str; 3] = ["a", "b", "c"];
const PUBLISHERS: usize = 4;
const PER_PUBLISHER: usize = 1500;

/// Reads `selectors` until the `end` update, reconnecting with the last id it
/// saw (or the id the hub said it started after) whenever `rng` says so.
async fn reconnecting_reader(
    hub: Hub,
    selectors: Vec<&'static str>,
    seed: u64,
) -> (Vec<String>, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sub = hub
        .subscribe(SubscribeRequest::new(selectors.clone()))
        .await
        .unwrap();
    let mut resume_from = sub.last_event_id().to_owned();
    let mut seen = Vec::new();
    let mut reconnects = 0;
    loop {
        // Reconnect at random points, before the first event too (then from
        // the id the hub said the subscription started after).
        if rng.random_ratio(1, 20) {
            drop(sub);
            reconnects += 1;
            // Sometimes let publishes pile up while disconnected.
            for _ in 0..rng.random_range(0..3) {
                tokio::task::yield_now().await;
            }
            sub = hub
                .subscribe(
                    SubscribeRequest::new(selectors.clone()).last_event_id(resume_from.clone()),
                )
                .await
                .unwrap();
        }
        let frame = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("stalled")
            .expect("ended");
        let Some((id, _)) = parse(&frame) else {
            continue;
        };
        seen.push(id.clone());
        if id == "end" {
            return (seen, reconnects);
        }
        resume_from = id;
    }
}

fn topic_of(id: &str) -> &'static str {
    // ids are "<topic>-<publisher>-<n>", and "end" is on every topic.
    TOPICS
        .iter()
        .find(|t| id.starts_with(*t))
        .copied()
        .unwrap_or("*")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_subscribers_see_every_update_exactly_once_in_log_order() {
    let seed: u64 = std::env::var("TIDINGS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed} (set TIDINGS_TEST_SEED to replay)");
    // Tiny queues and a tiny in-memory tail force every path: live, lagging,
    // catching up from the tail and from the store.
    let config = HubConfig {
        subscriber_queue: 4,
        recent: 32,
        ..HubConfig::default()
    };
    let hub = Hub::new(MemoryLog::new(Retention::default()), config).unwrap();
    let reference = tokio::spawn(reconnecting_reader_never(hub.clone()));
    let selector_sets: Vec<Vec<&'static str>> = vec![
        vec!["a"],
        vec!["b"],
        vec!["a", "c"],
        vec!["*"],
        vec!["c", "b", "a"],
        vec!["a"],
        vec!["b", "c"],
        vec!["*"],
    ];
    let mut readers = Vec::new();
    for (i, selectors) in selector_sets.iter().enumerate() {
        readers.push(tokio::spawn(reconnecting_reader(
            hub.clone(),
            selectors.clone(),
            seed ^ i as u64,
        )));
    }
    // Let every reader register before the first publish.
    while hub.local_subscriptions().len() < selector_sets.len() + 1 {
        tokio::task::yield_now().await;
    }
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let hub = hub.clone();
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(100 + p as u64));
        publishers.push(tokio::spawn(async move {
            for n in 0..PER_PUBLISHER {
                let topic = TOPICS[rng.random_range(0..TOPICS.len())];
                let id = format!("{topic}-{p}-{n}");
                hub.publish(Update::new(topic, "x").id(id)).await.unwrap();
            }
        }));
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    hub.publish(
        Update::with_topics(TOPICS.iter().map(|t| t.to_string()).collect(), "bye").id("end"),
    )
    .await
    .unwrap();

    let log = reference.await.unwrap();
    assert_eq!(log.len(), PUBLISHERS * PER_PUBLISHER + 1);
    assert_eq!(
        log.iter().collect::<HashSet<_>>().len(),
        log.len(),
        "duplicates in the reference"
    );
    let mut total_reconnects = 0;
    for (reader, selectors) in readers.into_iter().zip(&selector_sets) {
        let (seen, reconnects) = reader.await.unwrap();
        total_reconnects += reconnects;
        let expected: Vec<String> = log
            .iter()
            .filter(|id| {
                let topic = topic_of(id);
                topic == "*" || selectors.iter().any(|s| *s == "*" || *s == topic)
            })
            .cloned()
            .collect();
        assert_eq!(
            seen.len(),
            expected.len(),
            "{selectors:?}: wrong count (seed {seed})"
        );
        assert_eq!(
            seen, expected,
            "{selectors:?}: not the log order (seed {seed})"
        );
    }
    assert!(
        total_reconnects > 10,
        "the test must actually reconnect (got {total_reconnects})"
    );
}

/// The reference: one `*` subscription for the whole run, defining log order.
async fn reconnecting_reader_never(hub: Hub) -> Vec<String> {
    let mut sub = hub.subscribe(SubscribeRequest::new(["*"])).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let frame = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("stalled")
            .expect("ended");
        if let Some((id, _)) = parse(&frame) {
            let end = id == "end";
            seen.push(id);
            if end {
                return seen;
            }
        }
    }
}
