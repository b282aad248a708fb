//! Errors of building events (encoder side) and of decoding streams.

use std::fmt;

/// Why an [`Event`](crate::Event) could not be built.
///
/// The event-stream format has no escaping: a line break inside `id` or `event`
/// would end the field early and inject the rest as new fields, and a NUL in `id`
/// makes browsers ignore it. Such values are refused when the event is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The id contains CR, LF or NUL.
    #[error("event id must not contain CR, LF or NUL (got {0:?})")]
    InvalidId(String),
    /// The event type contains CR or LF.
    #[error("event type must not contain CR or LF (got {0:?})")]
    InvalidEventType(String),
}

/// A problem met while decoding, reported in stream order as
/// [`Item::Error`](crate::Item::Error). Decoding continues after it.
///
/// Plain and cheap on purpose: it sits on the decoder's hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A line grew past [`DecoderConfig::max_line_len`](crate::DecoderConfig).
    /// The rest of that line is skipped and the event it belonged to is dropped.
    LineTooLong {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// An event's data grew past [`DecoderConfig::max_event_len`](crate::DecoderConfig).
    /// The event is dropped; decoding resumes after its closing blank line.
    EventTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::LineTooLong { limit } => {
                write!(
                    f,
                    "line longer than the limit of {limit} bytes; event dropped"
                )
            }
            DecodeError::EventTooLarge { limit } => {
                write!(
                    f,
                    "event data larger than the limit of {limit} bytes; event dropped"
                )
            }
        }
    }
}

impl std::error::Error for DecodeError {}
