//! Presence: who is subscribed to what, as Mercure's subscription API shows it.

use serde_json::{Value, json};

/// The topic prefix of Mercure's subscription events and API.
pub const SUBSCRIPTIONS_PREFIX: &str = "/.well-known/mercure/subscriptions";

/// An active subscription, as the presence API reports it.
#[derive(Debug, Clone, PartialEq)]
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
