//! Spec-exact Server-Sent Events: build, encode and incrementally decode the
//! `text/event-stream` format.
//!
//! No I/O, no runtime: bytes in, items out. The hub encodes each update once
//! into [`Bytes`](bytes::Bytes) and shares it with every subscriber; clients
//! feed whatever chunks the network delivers to a [`Decoder`].
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use tidings_codec::{Decoder, Event, Item};
//!
//! let event = Event::builder()
//!     .id("42")
//!     .event("price")
//!     .data("line one\nline two")
//!     .retry(Duration::from_secs(5))
//!     .build()?;
//! let wire = event.to_bytes(); // encode once, clone for every subscriber
//! assert_eq!(
//!     &wire[..],
//!     b"id: 42\nevent: price\nretry: 5000\ndata: line one\ndata: line two\n\n"
//! );
//!
//! let mut decoder = Decoder::new();
//! let items: Vec<Item> = decoder.feed(&wire).collect();
//! assert_eq!(items[0], Item::Retry(Duration::from_secs(5)));
//! let Item::Event(received) = &items[1] else { unreachable!() };
//! assert_eq!(received.data, "line one\nline two");
//! assert_eq!(received.event_type, "price");
//! assert_eq!(decoder.last_event_id(), "42");
//! # Ok::<(), tidings_codec::EventError>(())
//! ```
//!
//! # What it guarantees
//!
//! | | |
//! | --- | --- |
//! | exactness | WHATWG HTML "interpreting an event stream": one leading BOM stripped, CR / LF / CRLF line ends (also split across chunks), lossy UTF-8, `id` with NUL ignored, `retry` only when all digits, unterminated events discarded |
//! | linear time | every byte is scanned once, whatever the chunking |
//! | bounded memory | [`DecoderConfig`] limits line and event size; breaking a limit yields [`Item::Error`] and drops only that event |
//! | safe encoding | [`EventBuilder::build`] refuses ids and types that would break the framing |

#![warn(missing_docs)]

mod decode;
mod encode;
mod error;
mod event;
mod utf8;

pub use decode::{Decoder, DecoderConfig, Finish, Item, Items, MessageEvent};
pub use encode::{KEEP_ALIVE, encode_comment};
pub use error::{DecodeError, EventError};
pub use event::{Event, EventBuilder};
