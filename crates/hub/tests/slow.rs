//! A subscriber that stops reading never slows the others nor grows memory,
//! and later catches up from history without loss or duplicates.

mod common;

use common::{next_event, next_ids};
use tidings_hub::{Hub, HubConfig, MemoryLog, Retention, SubscribeRequest, Update};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_is_bounded_and_catches_up() {
    let config = HubConfig {
        subscriber_queue: 16,
        recent: 100,
        ..HubConfig::default()
    };
    let hub = Hub::new(MemoryLog::new(Retention::default()), config).unwrap();
    let mut stalled = hub.subscribe(SubscribeRequest::new(["t"])).await.unwrap();
    let fast = hub.subscribe(SubscribeRequest::new(["t"])).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut fast = fast;
        next_ids(&mut fast, 2000).await
    });
    // Publishing 2000 updates completes although one subscriber reads nothing.
    let ids: Vec<String> = (0..2000).map(|i| i.to_string()).collect();
    for id in &ids {
        hub.publish(Update::new("t", "payload").id(id.clone()))
            .await
            .unwrap();
    }
    assert_eq!(
        reader.await.unwrap(),
        ids,
        "the fast subscriber got everything in order"
    );
    assert!(
        stalled.backlog() <= 16,
        "backlog {} exceeds the queue bound",
        stalled.backlog()
    );
    // Now it reads: every update once, in order, mostly from the store since
    // the in-memory tail holds only the last 100.
    assert_eq!(next_ids(&mut stalled, 2000).await, ids);
    hub.publish(Update::new("t", "live again").id("live"))
        .await
        .unwrap();
    assert_eq!(next_event(&mut stalled).await.0, "live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_subscriber_behind_retention_is_ended_with_a_reason_not_silence() {
    let config = HubConfig {
        subscriber_queue: 2,
        recent: 0,
        ..HubConfig::default()
    };
    let retention = Retention {
        max_count: Some(20),
        ..Retention::default()
    };
    let hub = Hub::new(MemoryLog::new(retention), config).unwrap();
    let mut stalled = hub.subscribe(SubscribeRequest::new(["t"])).await.unwrap();
    for i in 1..=100 {
        hub.publish(Update::new("t", "x").id(i.to_string()))
            .await
            .unwrap();
    }
    hub.caught_up().await.unwrap();
    // Its queue overflowed (and was dropped); catching up, it finds history
    // already past what it missed.
    let mut seen = Vec::new();
    let last = loop {
        let frame = tokio::time::timeout(common::WAIT, futures_util::StreamExt::next(&mut stalled))
            .await
            .unwrap()
            .expect("a last frame before the end");
        match common::parse(&frame) {
            Some((id, _)) => seen.push(id),
            None => break String::from_utf8_lossy(&frame).into_owned(),
        }
    };
    assert!(seen.is_empty(), "{seen:?}");
    assert!(
        last.starts_with(": ") && last.contains("fell behind the history: updates 1..=80 are gone"),
        "{last}"
    );
    assert!(futures_util::StreamExt::next(&mut stalled).await.is_none());
}
