//! The [`Event`] a server sends, and its builder.

use std::time::Duration;

use crate::error::EventError;

/// One server-sent event, validated and ready to [encode](Event::encode).
///
/// Build it with [`Event::builder`], or [`Event::message`] for a plain data event.
/// Every field is optional; an event without `data` still carries its `id`,
/// `retry` or comment to the client but dispatches nothing there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    pub(crate) id: Option<String>,
    pub(crate) event_type: Option<String>,
    pub(crate) data: Option<String>,
    pub(crate) retry: Option<Duration>,
    pub(crate) comment: Option<String>,
}

impl Event {
    /// A builder for an event with any of the fields.
    pub fn builder() -> EventBuilder {
        EventBuilder::default()
    }

    /// An event with only `data`; it cannot fail to build.
    pub fn message(data: impl Into<String>) -> Event {
        Event {
            data: Some(data.into()),
            ..Event::default()
        }
    }

    /// The `id` field, sent as the client's next `Last-Event-ID`.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The `event` field: the type the browser dispatches (`message` when absent).
    pub fn event_type(&self) -> Option<&str> {
        self.event_type.as_deref()
    }

    /// The `data` field. Line breaks in it become several `data:` lines on the wire.
    pub fn data(&self) -> Option<&str> {
        self.data.as_deref()
    }

    /// The `retry` field: the reconnection delay the client should use.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// A comment written before the fields (`: text`); clients do not dispatch it.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }
}

/// Builds an [`Event`]; [`build`](EventBuilder::build) validates it.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct EventBuilder {
    event: Event,
}

impl EventBuilder {
    /// Sets the `id`. It must not contain CR, LF or NUL.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.event.id = Some(id.into());
        self
    }

    /// Sets the `event` type. It must not contain CR or LF.
    pub fn event(mut self, event_type: impl Into<String>) -> Self {
        self.event.event_type = Some(event_type.into());
        self
    }

    /// Sets the `data`. Any text is allowed, line breaks included.
    pub fn data(mut self, data: impl Into<String>) -> Self {
        self.event.data = Some(data.into());
        self
    }

    /// Sets the `retry` delay, sent in whole milliseconds.
    pub fn retry(mut self, retry: Duration) -> Self {
        self.event.retry = Some(retry);
        self
    }

    /// Sets a comment. Line breaks in it become several comment lines.
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.event.comment = Some(comment.into());
        self
    }

    /// Checks the fields and returns the event.
    ///
    /// # Errors
    ///
    /// [`EventError::InvalidId`] if the id holds CR, LF or NUL;
    /// [`EventError::InvalidEventType`] if the type holds CR or LF.
    pub fn build(self) -> Result<Event, EventError> {
        let event = self.event;
        if let Some(id) = &event.id
            && id.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
        {
            return Err(EventError::InvalidId(id.clone()));
        }
        if let Some(event_type) = &event.event_type
            && event_type.bytes().any(|b| matches!(b, b'\r' | b'\n'))
        {
            return Err(EventError::InvalidEventType(event_type.clone()));
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_line_breaks_and_nul() {
        for bad in ["a\nb", "a\rb", "\r\n", "a\0b"] {
            assert_eq!(
                Event::builder().id(bad).build(),
                Err(EventError::InvalidId(bad.to_owned()))
            );
        }
        for bad in ["a\nb", "a\rb"] {
            assert_eq!(
                Event::builder().event(bad).build(),
                Err(EventError::InvalidEventType(bad.to_owned()))
            );
        }
        // NUL is harmless in a type, and anything goes in data and comments.
        let ok = Event::builder()
            .event("a\0b")
            .data("x\r\ny\0")
            .comment("c\nd")
            .build()
            .unwrap();
        assert_eq!(ok.event_type(), Some("a\0b"));
        assert_eq!(ok.data(), Some("x\r\ny\0"));
    }
}
