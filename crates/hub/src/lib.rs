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
//! | [`Hub`] | publish and subscribe, over three loops: the writer (`writer.rs`) appends publishes to the log in batches; the tail loop (`tail.rs`) reads the log back and fans out; the ticker sends keep-alives and trims |
//! | [`Log`], [`Tail`] | the seams: one ordered log (append → position or duplicate, read a page, locate an id, trim) and its committed entries in order |
//! | [`MemoryLog`], [`RedbLog`] | logs in this process, tailed in process (`log/local.rs`) |
//! | [`RedisLog`], [`RedisPresence`] (feature `redis`, on by default) | the cluster: one log on Redis Streams shared by every node |
//! | [`NatsLog`], [`NatsPresence`] (feature `nats`, on by default) | the cluster: one log on a replicated NATS JetStream stream, acknowledged once a quorum holds it |
//! | [`Subscription`] | a stream of frames with a cursor in the log; the slow-subscriber policy is documented there |
//! | [`Presence`], [`SubscriptionInfo`] | who is subscribed, as Mercure's subscription API shows it, for the whole cluster |
//!
//! # Guarantees
//!
//! - One ordered log: every update has a dense position; `Last-Event-ID`
//!   resumes across any set of topics, on any node of a cluster.
//! - `publish` returns after the log accepted the update (fsync'd for
//!   [`RedbLog`], in Redis for the cluster), never for what was not stored.
//!   Fan-out follows from the tail, on every node in the same order.
//! - Each update is encoded once; subscribers share the same `Bytes`.
//! - A subscription registers for live updates before replaying history;
//!   nothing is lost or duplicated in the switch.
//! - Bounded memory per subscriber; a slow one never slows the others.
//! - When the log cannot continue from where a node was (entries trimmed
//!   before the node read them, a recreated log), the node's streams end with
//!   a reason: clients resume and are told of the gap, never silence.
//!
//! # Metrics
//!
//! Through the `metrics` facade: `tidings_updates_published_total`,
//! `tidings_updates_fanned_out_total`, `tidings_publish_failures_total`,
//! `tidings_deliveries_total`, `tidings_subscribers`,
//! `tidings_slow_subscribers_total`, `tidings_slow_subscriber_catchups_total`,
//! `tidings_history_gaps_total`, `tidings_tail_resets_total`,
//! `tidings_history_updates`, `tidings_history_bytes`,
//! `tidings_log_append_seconds` (the engine's round trip per writer batch),
//! `tidings_publishes_unconfirmed_total`.

#![warn(missing_docs)]

#[cfg(any(feature = "redis", feature = "nats"))]
mod cluster;
mod error;
mod health;
mod hub;
mod log;
mod presence;
mod selector;
mod subscription;
mod tail;
mod topic;
mod update;
mod writer;

#[cfg(feature = "nats")]
pub use cluster::{NatsLog, NatsOptions, NatsPresence};
#[cfg(feature = "redis")]
pub use cluster::{RedisLog, RedisOptions, RedisPresence, RedisTls};
pub use error::{Error, LogError, Result};
pub use hub::{Hub, HubConfig, SubscribeRequest};
pub use log::{
    Appended, Entry, Located, Log, LogFuture, LogStats, LogStatus, MemoryLog, RedbLog, Retention,
    Tail, TailEvent,
};
pub use presence::{
    LocalPresence, Presence, Reaped, SUBSCRIPTIONS_PREFIX, SubscriptionInfo,
    draft08_subscription_topic, draft08_subscriptions_path, subscription_topic,
};
pub use selector::{
    MAX_TEMPLATE_LEN, MAX_TEMPLATE_VARIABLES, MAX_URL_PATTERN_LEN, MatchType, Matcher,
    REGEX_CACHE_LIMIT, REGEX_SIZE_LIMIT, Selector, SelectorCache, TemplateError, UrlPatternError,
    WILDCARD,
};
pub use subscription::Subscription;
pub use update::{EventId, MAX_TOPICS, RESERVED_ID, Update};
