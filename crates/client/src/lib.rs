//! An `EventSource` for Rust: a Server-Sent Events client that reconnects,
//! honours `retry:`, resumes with `Last-Event-ID`, and goes beyond the browser
//! with custom methods, headers, bodies and a read timeout.
//!
//! An [`EventSource`] is a [`Stream`](futures_core::Stream) of
//! [`StreamItem`]s: the events, and everything else that happens (connection
//! opened, comments, reconnections and why), so a program can show or log it.
//! Parsing is [`tidings_codec`]'s, exact to the WHATWG standard whatever the
//! chunking.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use futures_util::StreamExt;
//! use tidings_client::{EventSource, StreamItem};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # // A tiny server: a stream with two events, then 204 ("stop") on reconnection.
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let url = format!("http://{}/events", listener.local_addr()?);
//! # tokio::spawn(async move {
//! #     use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! #     let stream = "retry: 10\n\nid: 1\ndata: hello\n\nid: 2\nevent: price\ndata: 42\n\n";
//! #     for response in [
//! #         format!("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n{stream}"),
//! #         "HTTP/1.1 204 No Content\r\n\r\n".to_owned(),
//! #     ] {
//! #         let (mut socket, _) = listener.accept().await.unwrap();
//! #         let mut request = Vec::new();
//! #         while !request.ends_with(b"\r\n\r\n") {
//! #             request.push(socket.read_u8().await.unwrap());
//! #         }
//! #         socket.write_all(response.as_bytes()).await.unwrap();
//! #     }
//! # });
//! let mut events = EventSource::builder(&url)
//!     .header("Authorization", "Bearer <token>")
//!     .read_timeout(Duration::from_secs(60))
//!     .build()?;
//! let mut received = Vec::new();
//! while let Some(item) = events.next().await {
//!     match item? {
//!         StreamItem::Open { url } => println!("connected to {url}"),
//!         StreamItem::Event(event) => received.push(event.data),
//!         StreamItem::Reconnecting { delay, error } => {
//!             println!("{error}; reconnecting in {delay:?}")
//!         }
//!         _ => {}
//!     }
//! }
//! // The server answered the reconnection with 204: the stream ended.
//! assert_eq!(received, ["hello", "42"]);
//! assert_eq!(events.last_event_id(), "2");
//! # Ok(())
//! # }
//! ```
//!
//! # Behaviour
//!
//! | | |
//! | --- | --- |
//! | requests | `Accept: text/event-stream`, `Cache-Control: no-cache`, `Last-Event-ID` when the last event id is not empty; the configured method, headers and body, on every connection |
//! | answers | 200 with `text/event-stream` (parameters ignored) opens; 204 ends the stream; any other status or type is a fatal [`Error`] and nothing is retried |
//! | redirects | 301, 302, 303, 307, 308 followed up to [`max_redirects`](EventSourceBuilder::max_redirects); `Authorization` and `Cookie` dropped when one leads to another origin; a redirect without a usable `Location` is fatal |
//! | reconnection | after a network error, a normal end or a [read timeout](EventSourceBuilder::read_timeout): wait the `retry:` time (default 3 s); after consecutive failures back off exponentially with jitter, up to [`max_retry`](EventSourceBuilder::max_retry); a half-received event is discarded |
//! | healthy stream | one that delivered an event or stayed open 30 s: it resets the backoff |
//! | TLS | rustls with the platform's certificate verifier; no OpenSSL |
//! | ending | [`EventSource::close`] or dropping the stream stops everything at once: no task is left behind |
//!
//! # Layout
//!
//! `client.rs` the builder and the request; `stream.rs` the connection state
//! machine; `backoff.rs` reconnection delays; `error.rs` the error type.

#![warn(missing_docs)]

mod backoff;
mod client;
mod error;
mod stream;

pub use client::EventSourceBuilder;
pub use error::{BoxError, Error, Result};
pub use http::Method;
pub use stream::{EventSource, StreamItem};
pub use tidings_codec::{DecodeError, DecoderConfig, MessageEvent};
pub use url::Url;
