//! The Tidings hub as a library: topics, fan-out, and history that survives
//! restarts. No HTTP here; `tidings-server` puts the Mercure protocol in front.
//!
//! Embed it in any Tokio program and publish from anywhere in your code, like
//! an event emitter: every matching subscriber receives the update as a
//! ready-to-write `text/event-stream` frame.
//!
//! # Example
//!
//! ```
//! use futures_util::StreamExt;
//! use tidings_hub::{Hub, SubscribeRequest, Update};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let hub = Hub::in_memory();
//! let mut books = hub.subscribe(SubscribeRequest::new(["https://example.com/books/{id}"])).await?;
//!
//! let id = hub.publish(Update::new("https://example.com/books/1", "in stock").id("1")).await?;
//! assert_eq!(id.as_str(), "1");
//!
//! let frame = books.next().await.unwrap();
//! assert_eq!(&frame[..], b"id: 1\ndata: in stock\n\n");
//!
//! // A client that reconnects resumes after the last id it saw.
//! hub.publish(Update::new("https://example.com/books/2", "sold out").id("2")).await?;
//! let mut resumed = hub
//!     .subscribe(SubscribeRequest::new(["*"]).last_event_id("1"))
//!     .await?;
//! assert_eq!(&resumed.next().await.unwrap()[..], b"id: 2\ndata: sold out\n\n");
//! # Ok::<(), tidings_hub::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Layout
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`Update`], [`EventId`] | what publishers send and get back |
//! | [`Selector`] | `*`, exact topics and RFC 6570 URI templates |
//! | [`Hub`] | publish and subscribe; the writer (`writer.rs`) orders, stores and fans out; one ticker sends keep-alives |
//! | [`Subscription`] | a stream of frames with a cursor in the log; the slow-subscriber policy is documented there |
//! | [`Store`], [`MemoryStore`], [`RedbStore`] | history, retention by count, age and bytes |
//! | [`SubscriptionInfo`] | presence, as Mercure's subscription API shows it |
//!
//! # Guarantees
//!
//! - One ordered log: every update has a position; `Last-Event-ID` resumes
//!   across any set of topics.
//! - `publish` returns after the store accepted the update (fsync'd, for
//!   [`RedbStore`]) and it was handed to every matching subscriber.
//! - Each update is encoded once; subscribers share the same `Bytes`.
//! - A subscription registers for live updates before replaying history;
//!   nothing is lost or duplicated in the switch.
//! - Bounded memory per subscriber; a slow one never slows the others.
//!
//! # Metrics
//!
//! Through the `metrics` facade: `tidings_updates_published_total`,
//! `tidings_deliveries_total`, `tidings_subscribers`,
//! `tidings_slow_subscribers_total`, `tidings_slow_subscriber_catchups_total`,
//! `tidings_history_gaps_total`, `tidings_history_updates`,
//! `tidings_history_bytes`.

#![warn(missing_docs)]

mod error;
mod hub;
mod presence;
mod selector;
mod store;
mod subscription;
mod topic;
mod update;
mod writer;

pub use error::{Error, Result, StoreError};
pub use hub::{Hub, HubConfig, SubscribeRequest};
pub use presence::{SUBSCRIPTIONS_PREFIX, SubscriptionInfo, subscription_topic};
pub use selector::{
    MAX_TEMPLATE_LEN, MAX_TEMPLATE_VARIABLES, REGEX_CACHE_LIMIT, REGEX_SIZE_LIMIT, Selector,
    SelectorCache, TemplateError, WILDCARD,
};
pub use store::{Entry, MemoryStore, RedbStore, Retention, Store, StoreStats};
pub use subscription::Subscription;
pub use update::{EventId, MAX_TOPICS, Update};
