//! Presence: who is subscribed to what, as Mercure's subscription API shows
//! it, and the [`Presence`] seam that makes it cluster-wide.

use serde_json::{Value, json};

use crate::log::LogFuture;

/// Where a node keeps its subscriptions for the other nodes to see. The hub
/// lists its own subscriptions from memory and asks this seam for the others.
/// Only used when presence is on.
pub trait Presence: Send + Sync + std::fmt::Debug + 'static {
    /// A subscription of this node started. Must not block: it is called
    /// while subscribing, and also from `Drop`.
    fn joined(&self, key: u64, info: &SubscriptionInfo);

    /// A subscription of this node ended. Must not block.
    fn left(&self, key: u64);

    /// The subscriptions held by the other live nodes.
    ///
    /// # Errors
    /// When they cannot be read.
    fn others(&self) -> LogFuture<'_, Vec<SubscriptionInfo>>;

    /// The subscriptions of nodes found dead since the last call, claimed by
    /// this node: each is returned to exactly one node of the cluster, which
    /// announces it inactive. Also this node's own subscriptions, when other
    /// nodes took it for dead while it was cut off: announced active again.
    ///
    /// # Errors
    /// When the cluster cannot be reached.
    fn reap(&self) -> LogFuture<'_, Reaped>;
}

/// What [`Presence::reap`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reaped {
    /// Subscriptions of dead nodes, to announce inactive.
    pub gone: Vec<SubscriptionInfo>,
    /// This node's subscriptions that were announced inactive while it was
    /// cut off, to announce active again.
    pub back: Vec<SubscriptionInfo>,
}

/// Presence of a hub that is alone: nothing beyond its own subscriptions.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalPresence;

impl Presence for LocalPresence {
    fn joined(&self, _key: u64, _info: &SubscriptionInfo) {}

    fn left(&self, _key: u64) {}

    fn others(&self) -> LogFuture<'_, Vec<SubscriptionInfo>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn reap(&self) -> LogFuture<'_, Reaped> {
        Box::pin(async { Ok(Reaped::default()) })
    }
}

/// The topic prefix of Mercure's subscription events and API.
pub const SUBSCRIPTIONS_PREFIX: &str = "/.well-known/mercure/subscriptions";

/// An active subscription, as the presence API reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SubscriptionInfo {
    /// The subscriber's id (`urn:uuid:…` unless the caller chose one).
    pub subscriber: String,
    /// The topic selectors it subscribed with.
    pub topics: Vec<String>,
    /// When it connected, in milliseconds since the Unix epoch.
    pub connected_at_ms: u64,
    /// The `payload` of the subscriber's token, if any.
    pub payload: Option<Value>,
}

impl SubscriptionInfo {
    /// The Mercure topic (and JSON-LD id) for this subscriber's subscription
    /// to `selector`: `/.well-known/mercure/subscriptions/{selector}/{subscriber}`,
    /// both parts percent-encoded.
    pub fn topic_for(&self, selector: &str) -> String {
        subscription_topic(selector, &self.subscriber)
    }

    /// The JSON document Mercure publishes and lists for this subscription to
    /// `selector`.
    pub fn to_json(&self, selector: &str, active: bool) -> Value {
        let mut doc = json!({
            "id": self.topic_for(selector),
            "type": "Subscription",
            "topic": selector,
            "subscriber": self.subscriber,
            "active": active,
        });
        if let Some(payload) = &self.payload {
            doc["payload"] = payload.clone();
        }
        doc
    }
}

/// `/.well-known/mercure/subscriptions/{selector}/{subscriber}`, escaped as Go's
/// `url.QueryEscape` does (the stable Mercure hub's choice).
pub fn subscription_topic(selector: &str, subscriber: &str) -> String {
    let escape = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "{SUBSCRIPTIONS_PREFIX}/{}/{}",
        escape(selector),
        escape(subscriber)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mercure_shaped_document() {
        let info = SubscriptionInfo {
            subscriber: "urn:uuid:1".into(),
            topics: vec!["https://example.com/{id}".into()],
            connected_at_ms: 0,
            payload: Some(json!({"user": "ann"})),
        };
        let doc = info.to_json("https://example.com/{id}", true);
        assert_eq!(
            doc,
            json!({
                "id": "/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2F%7Bid%7D/urn%3Auuid%3A1",
                "type": "Subscription",
                "topic": "https://example.com/{id}",
                "subscriber": "urn:uuid:1",
                "active": true,
                "payload": {"user": "ann"}
            })
        );
    }
}
