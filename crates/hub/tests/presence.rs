//! Presence: the hub lists active subscriptions and, when enabled, announces
//! them with private updates on Mercure's subscription topics.

mod common;

use common::{WAIT, parse};
use futures_util::StreamExt;
use serde_json::Value;
use tidings_hub::{Hub, HubConfig, MemoryLog, Retention, SubscribeRequest, Subscription};

async fn next_json(sub: &mut Subscription) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, sub.next())
            .await
            .unwrap()
            .unwrap();
        if let Some((_, data)) = parse(&frame) {
            return serde_json::from_str(&data).unwrap();
        }
    }
}

#[tokio::test]
async fn subscriptions_are_listed_and_announced() {
    let config = HubConfig {
        presence: true,
        ..HubConfig::default()
    };
    let hub = Hub::new(MemoryLog::new(Retention::default()), config).unwrap();
    let mut watcher = hub
        .subscribe(SubscribeRequest::new(["*"]).authorized(["*"]))
        .await
        .unwrap();
    let mut anonymous_watcher = hub.subscribe(SubscribeRequest::new(["*"])).await.unwrap();
    // The watchers' own subscriptions were announced too.
    next_json(&mut watcher).await;
    next_json(&mut watcher).await;

    let mut request = SubscribeRequest::new(["books"]);
    request.subscriber = Some("urn:uuid:reader".into());
    request.payload = Some(serde_json::json!({"user": "ann"}));
    let reader = hub.subscribe(request).await.unwrap();
    let listed = hub.subscriptions().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|s| s.subscriber == "urn:uuid:reader" && s.topics == ["books"])
    );

    let on = next_json(&mut watcher).await;
    assert_eq!(on["type"], "Subscription");
    assert_eq!(on["topic"], "books");
    assert_eq!(on["subscriber"], "urn:uuid:reader");
    assert_eq!(on["active"], true);
    assert_eq!(on["payload"]["user"], "ann");
    assert_eq!(
        on["id"],
        "/.well-known/mercure/subscriptions/books/urn%3Auuid%3Areader"
    );

    drop(reader);
    let off = next_json(&mut watcher).await;
    assert_eq!(
        (off["subscriber"].as_str(), off["active"].as_bool()),
        (Some("urn:uuid:reader"), Some(false))
    );
    assert!(
        !hub.subscriptions()
            .await
            .unwrap()
            .iter()
            .any(|s| s.subscriber == "urn:uuid:reader")
    );
    // Presence updates are private: the anonymous watcher saw none of them.
    common::assert_nothing_ready(&hub, &mut anonymous_watcher).await;
}
