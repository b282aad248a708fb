//! Scenarios every cluster engine must pass, run by each engine's tests
//! (`redis.rs`, `nats.rs`) on two nodes of its own.

use std::time::Duration;

use futures_util::StreamExt;
use tidings_hub::{Appended, Entry, Error, Hub, Log, SubscribeRequest, Subscription, Update};

use super::{WAIT, next_ids, parse};

/// Both nodes deliver one order, every update once; a client of `a`
/// resumes on `b`; ids are unique across the cluster.
pub(crate) async fn one_order_and_resume_anywhere(a: &Hub, b: &Hub) {
    let mut on_a = a.subscribe(SubscribeRequest::new(["*"])).await.unwrap();
    let mut on_b = b.subscribe(SubscribeRequest::new(["t"])).await.unwrap();
    let publishers = [a.clone(), b.clone()].map(|hub| {
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..50 {
                let id = hub.publish(Update::new("t", i.to_string())).await.unwrap();
                ids.push(id.to_string());
            }
            ids
        })
    });
    let mut published = Vec::new();
    for publisher in publishers {
        published.extend(publisher.await.unwrap());
    }
    let seen_a = next_ids(&mut on_a, 100).await;
    let seen_b = next_ids(&mut on_b, 100).await;
    assert_eq!(seen_a, seen_b, "both nodes deliver one order");
    let mut sorted = seen_a.clone();
    sorted.sort();
    published.sort();
    assert_eq!(sorted, published, "every update exactly once");

    // A client of node A resumes on node B after the 40th update.
    let mut resumed = b
        .subscribe(SubscribeRequest::new(["t"]).last_event_id(seen_a[39].clone()))
        .await
        .unwrap();
    assert_eq!(resumed.last_event_id(), seen_a[39]);
    assert_eq!(next_ids(&mut resumed, 60).await, seen_a[40..].to_vec());

    // Ids are unique across the cluster.
    a.publish(Update::new("t", "x").id("mine")).await.unwrap();
    assert!(matches!(
        b.publish(Update::new("t", "y").id("mine")).await,
        Err(Error::DuplicateId(_))
    ));
}

/// `a` (presence on) lists a subscription of `b`, its watcher hears it end
/// when `b`'s subscriber leaves, and `a` no longer lists it.
pub(crate) async fn presence_spans_nodes(a: &Hub, b: &Hub) {
    let mut watcher = subscription_watcher(a).await;
    let mut request = SubscribeRequest::new(["books"]);
    request.subscriber = Some("urn:uuid:on-b".into());
    let on_b = b.subscribe(request).await.unwrap();
    until_listed(a, "urn:uuid:on-b", true).await;
    // B's subscriber leaves: B announces it, and A's watcher hears it from
    // the shared log. (A node killed outright is reaped by another node.)
    drop(on_b);
    assert_eq!(
        inactive_announcements(&mut watcher, "urn:uuid:on-b", Duration::ZERO).await,
        1,
        "node A's watcher hears B's subscription end"
    );
    until_listed(a, "urn:uuid:on-b", false).await;
}

/// A subscription to every subscription event, on `hub`.
pub(crate) async fn subscription_watcher(hub: &Hub) -> Subscription {
    hub.subscribe(
        SubscribeRequest::new(["/.well-known/mercure/subscriptions/{topic}/{subscriber}"])
            .authorized(["*"]),
    )
    .await
    .unwrap()
}

/// Waits until `hub` lists (or, with `listed` false, no longer lists) a
/// subscription of `subscriber`.
pub(crate) async fn until_listed(hub: &Hub, subscriber: &str, listed: bool) {
    let has =
        |list: &[tidings_hub::SubscriptionInfo]| list.iter().any(|s| s.subscriber == subscriber);
    let met = tokio::time::timeout(WAIT, async {
        while has(&hub.subscriptions().await.unwrap_or_default()) != listed {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let now = hub.subscriptions().await;
    assert!(
        met.is_ok(),
        "{subscriber} listed: {}, wanted {listed}; the hub lists {now:?}",
        !listed
    );
}

/// How many times `watcher` hears `subscriber` announced inactive: the
/// first, then any more within `linger`.
pub(crate) async fn inactive_announcements(
    watcher: &mut Subscription,
    subscriber: &str,
    linger: Duration,
) -> usize {
    let mut inactive = 0;
    let mut deadline = tokio::time::Instant::now() + WAIT;
    while let Ok(Some(frame)) = tokio::time::timeout_at(deadline, watcher.next()).await {
        if let Some((_, data)) = parse(&frame) {
            let doc: serde_json::Value = serde_json::from_str(&data).unwrap();
            if doc["subscriber"] == subscriber && doc["active"] == false {
                inactive += 1;
                if linger.is_zero() {
                    break;
                }
                deadline = deadline.min(tokio::time::Instant::now() + linger);
            }
        }
    }
    inactive
}

/// An entry with this id on topic `t`, for a log's own tests.
pub(crate) fn entry(id: &str) -> Entry {
    Entry {
        position: 0,
        id: id.into(),
        topics: vec!["t".into()].into_boxed_slice(),
        private: false,
        published_at_ms: 1,
        frame: bytes::Bytes::from(format!("id: {id}\ndata: x\n\n")),
    }
}

/// On a new log that keeps 100 updates: 300 appended in one batch, with an
/// id repeated within it, get dense positions in order and the repeats are
/// duplicates; retention keeps the newest 100; a page reads what follows a
/// position.
pub(crate) async fn dense_positions_duplicates_and_trim(log: &impl Log) {
    assert_eq!(log.open().await.unwrap(), 0);
    let mut ids: Vec<String> = (0..300).map(|i| format!("u{i}")).collect();
    ids[150] = "u140".into();
    ids[299] = "u298".into();
    let outcome = log
        .append(ids.iter().map(|id| entry(id)).collect())
        .await
        .unwrap();
    assert_eq!(outcome.len(), 300);
    assert_eq!(outcome[150], Appended::DuplicateId);
    assert_eq!(outcome[299], Appended::DuplicateId);
    let positions: Vec<u64> = outcome
        .iter()
        .filter_map(|o| match o {
            Appended::At(p) => Some(*p),
            _ => None,
        })
        .collect();
    assert_eq!(
        positions,
        (1..=298).collect::<Vec<u64>>(),
        "dense, in order"
    );
    let stats = log.stats().await.unwrap();
    assert_eq!(
        (stats.count, stats.first_position, stats.last_position),
        (100, Some(199), 298)
    );
    let page = log.read_after(296, 10).await.unwrap();
    let read: Vec<&str> = page.iter().map(|e| &*e.id).collect();
    assert_eq!(read, ["u297", "u298"]);
}
