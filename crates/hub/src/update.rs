//! The [`Update`] a publisher sends, and the [`EventId`] it gets back.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tidings_codec::Event;

use crate::error::{Error, Result};

/// The most topics one update may carry.
pub const MAX_TOPICS: usize = 64;

/// The `Last-Event-ID` that asks for all of history: no update may have it.
pub const RESERVED_ID: &str = "earliest";

/// An update to publish: data for one or more topics.
///
/// The first topic is the canonical one; the others are alternates (a
/// subscriber matching any of them receives the update once).
///
/// ```
/// use std::time::Duration;
/// use tidings_hub::Update;
///
/// let update = Update::new("https://example.com/books/1", r#"{"stock": 3}"#)
///     .alternate("https://example.com/stock")
///     .event_type("stock")
///     .retry(Duration::from_secs(2))
///     .private(true);
/// assert_eq!(update.topics().len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    topics: Vec<String>,
    data: String,
    id: Option<String>,
    event_type: Option<String>,
    retry: Option<Duration>,
    private: bool,
}

impl Update {
    /// An update of `data` on `topic`.
    pub fn new(topic: impl Into<String>, data: impl Into<String>) -> Update {
        Update {
            topics: vec![topic.into()],
            data: data.into(),
            id: None,
            event_type: None,
            retry: None,
            private: false,
        }
    }

    /// An update on several topics, the first canonical.
    pub fn with_topics(topics: Vec<String>, data: impl Into<String>) -> Update {
        Update {
            topics,
            ..Update::new("", data)
        }
    }

    /// Adds an alternate topic.
    #[must_use]
    pub fn alternate(mut self, topic: impl Into<String>) -> Update {
        self.topics.push(topic.into());
        self
    }

    /// Sets the id; without one the hub generates `urn:uuid:` + a UUIDv7.
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Update {
        self.id = Some(id.into());
        self
    }

    /// Sets the SSE event type (the `event:` field).
    #[must_use]
    pub fn event_type(mut self, event_type: impl Into<String>) -> Update {
        self.event_type = Some(event_type.into());
        self
    }

    /// Sets the reconnection delay sent to clients (the `retry:` field).
    #[must_use]
    pub fn retry(mut self, retry: Duration) -> Update {
        self.retry = Some(retry);
        self
    }

    /// Marks the update private: only subscribers authorized for one of its
    /// topics receive it.
    #[must_use]
    pub fn private(mut self, private: bool) -> Update {
        self.private = private;
        self
    }

    /// The topics, canonical first.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The data.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// Whether the update is private.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// Checks the update and encodes its event once, with its final id.
    pub(crate) fn into_entry(self, now_ms: u64) -> Result<crate::log::Entry> {
        if self.topics.is_empty() {
            return Err(Error::InvalidUpdate(
                "an update needs at least one topic".into(),
            ));
        }
        if self.topics.len() > MAX_TOPICS {
            return Err(Error::InvalidUpdate(format!(
                "an update may have at most {MAX_TOPICS} topics, this one has {}",
                self.topics.len()
            )));
        }
        if self.topics.iter().any(String::is_empty) {
            return Err(Error::InvalidUpdate("a topic must not be empty".into()));
        }
        let id = match self.id {
            Some(id) if id.is_empty() => {
                return Err(Error::InvalidUpdate("the id must not be empty".into()));
            }
            Some(id) if id.starts_with('#') => {
                return Err(Error::InvalidUpdate(format!(
                    "the id must not start with '#' (got {id:?})"
                )));
            }
            // A client that received it would resume with it, and a resume
            // from `earliest` replays all of history.
            Some(id) if id == RESERVED_ID => {
                return Err(Error::InvalidUpdate(format!(
                    "the id {RESERVED_ID:?} is reserved: it asks for all of history when resuming"
                )));
            }
            Some(id) => id,
            None => format!("urn:uuid:{}", uuid::Uuid::now_v7()),
        };
        let mut event = Event::builder().id(id.as_str()).data(self.data);
        if let Some(event_type) = self.event_type {
            event = event.event(event_type);
        }
        if let Some(retry) = self.retry {
            event = event.retry(retry);
        }
        let frame: Bytes = event
            .build()
            .map_err(|e| Error::InvalidUpdate(e.to_string()))?
            .to_bytes();
        Ok(crate::log::Entry {
            position: 0,
            id: id.into(),
            topics: self
                .topics
                .into_iter()
                .map(String::into_boxed_str)
                .collect(),
            private: self.private,
            published_at_ms: now_ms,
            frame,
        })
    }
}

/// The id of a published update, as sent to clients in `id:` and resumed from
/// with `Last-Event-ID`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventId(pub(crate) Arc<str>);

impl EventId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(update: Update) -> String {
        match update.into_entry(0) {
            Err(Error::InvalidUpdate(why)) => why,
            other => panic!("expected InvalidUpdate, got {other:?}"),
        }
    }

    #[test]
    fn refuses_what_would_break_the_stream_or_the_protocol() {
        assert!(invalid(Update::with_topics(vec![], "x")).contains("at least one topic"));
        assert!(invalid(Update::new("", "x")).contains("empty"));
        assert!(invalid(Update::new("t", "x").id("#frag")).contains("'#'"));
        assert!(invalid(Update::new("t", "x").id("earliest")).contains("reserved"));
        assert!(invalid(Update::new("t", "x").id("a\nb")).contains("CR, LF or NUL"));
        assert!(invalid(Update::new("t", "x").event_type("a\rb")).contains("CR or LF"));
        let many = Update::with_topics((0..=MAX_TOPICS).map(|i| i.to_string()).collect(), "x");
        assert!(invalid(many).contains("at most"));
    }

    #[test]
    fn generates_uuid_v7_ids_and_encodes_once() {
        let entry = Update::new("t", "a\nb")
            .event_type("e")
            .into_entry(5)
            .unwrap();
        assert!(entry.id.starts_with("urn:uuid:"), "{}", entry.id);
        let uuid = uuid::Uuid::parse_str(&entry.id["urn:uuid:".len()..]).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
        let expected = format!("id: {}\nevent: e\ndata: a\ndata: b\n\n", entry.id);
        assert_eq!(&entry.frame[..], expected.as_bytes());
    }
}
