//! Presence: who is subscribed to what, as Mercure's subscription API shows
//! it, and the [`Presence`] seam that makes it cluster-wide.

use serde_json::{Value, json};

use crate::log::LogFuture;
use crate::selector::MatchType;

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
    /// How each of `topics` is read, in the same order: `topic` (draft-07)
    /// or a draft-08 matcher type. Empty (as nodes that predate draft-08
    /// write it) means draft-07 for all.
    #[serde(default)]
    pub match_types: Vec<MatchType>,
    /// When it connected, in milliseconds since the Unix epoch.
    pub connected_at_ms: u64,
    /// The `payload` of the subscriber's token, if any.
    pub payload: Option<Value>,
}

impl SubscriptionInfo {
    /// Each selector with how it is read.
    pub fn selectors(&self) -> impl Iterator<Item = (MatchType, &str)> {
        self.topics.iter().enumerate().map(|(i, topic)| {
            let match_type = self.match_types.get(i).copied().unwrap_or(MatchType::Topic);
            (match_type, topic.as_str())
        })
    }

    /// The Mercure topic (and JSON-LD id) for this subscriber's subscription
    /// to `selector`: `/.well-known/mercure/subscriptions/{selector}/{subscriber}`,
    /// both parts percent-encoded.
    pub fn topic_for(&self, selector: &str) -> String {
        subscription_topic(selector, &self.subscriber)
    }

    /// The topic of a subscription event in its draft's shape: draft-07's
    /// [`SubscriptionInfo::topic_for`], or draft-08's
    /// `/.well-known/mercure/subscriptions/{match_type}/{match}/{subscriber}`.
    pub fn event_topic(&self, match_type: MatchType, selector: &str) -> String {
        match match_type {
            MatchType::Topic => self.topic_for(selector),
            _ => draft08_subscription_topic(match_type, selector, &self.subscriber),
        }
    }

    /// The document of this subscription to `selector` in its draft's shape:
    /// draft-07's [`SubscriptionInfo::to_json`], or draft-08's plain JSON
    /// (`match` and `match_type` instead of `topic`).
    pub fn document(&self, match_type: MatchType, selector: &str, active: bool) -> Value {
        if match_type == MatchType::Topic {
            return self.to_json(selector, active);
        }
        let mut doc = json!({
            "id": self.event_topic(match_type, selector),
            "type": "subscription",
            "match": selector,
            "match_type": match_type.as_str(),
            "subscriber": self.subscriber,
            "active": active,
        });
        if let Some(payload) = &self.payload {
            doc["payload"] = payload.clone();
        }
        doc
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

/// Draft-08's `/.well-known/mercure/subscriptions/{match_type}/{match}/{subscriber}`,
/// each part percent-encoded once (all but RFC 3986's unreserved characters).
pub fn draft08_subscription_topic(
    match_type: MatchType,
    selector: &str,
    subscriber: &str,
) -> String {
    format!(
        "{}/{}",
        draft08_subscriptions_path(match_type, selector),
        escape_component(subscriber)
    )
}

/// Draft-08's `/.well-known/mercure/subscriptions/{match_type}/{match}`: the
/// subscription API's list of one matcher's subscriptions.
pub fn draft08_subscriptions_path(match_type: MatchType, selector: &str) -> String {
    format!(
        "{SUBSCRIPTIONS_PREFIX}/{}/{}",
        match_type.as_str(),
        escape_component(selector)
    )
}

fn escape_component(s: &str) -> String {
    const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
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
    fn draft_08_shaped_document_and_topic() {
        let info = SubscriptionInfo {
            subscriber: "urn:uuid:1".into(),
            topics: vec!["https://example.com/:id".into(), "urn:x".into()],
            match_types: vec![MatchType::UrlPattern, MatchType::Exact],
            connected_at_ms: 0,
            payload: None,
        };
        let topic = "/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2F%3Aid/urn%3Auuid%3A1";
        assert_eq!(
            info.event_topic(MatchType::UrlPattern, "https://example.com/:id"),
            topic
        );
        assert_eq!(
            info.document(MatchType::UrlPattern, "https://example.com/:id", false),
            json!({
                "id": topic,
                "type": "subscription",
                "match": "https://example.com/:id",
                "match_type": "urlpattern",
                "subscriber": "urn:uuid:1",
                "active": false,
            })
        );
        let kinds: Vec<_> = info.selectors().map(|(t, _)| t).collect();
        assert_eq!(kinds, [MatchType::UrlPattern, MatchType::Exact]);
    }

    #[test]
    fn mercure_shaped_document() {
        let info = SubscriptionInfo {
            subscriber: "urn:uuid:1".into(),
            topics: vec!["https://example.com/{id}".into()],
            match_types: Vec::new(),
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
