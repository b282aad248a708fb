//! [`NatsPresence`]: each node keeps its subscriptions and a heartbeat in a
//! stream of their own, `{stream}-presence`, used as a key-value store: one
//! subject per key (`{stream}.presence.{key}`), one message kept per
//! subject, its stream sequence the key's revision. (That is what a
//! JetStream KV bucket is; the stream is made directly because the KV API of
//! the client does not read the answers of NATS 2.9, Debian's, to a bucket's
//! creation.)
//!
//! | key | value |
//! | --- | --- |
//! | `nodes.{node}` | the node's heartbeat (`alive`), or `reaped` once another node took it for dead |
//! | `subs.{node}.{key}` | one subscription (JSON) |
//!
//! Expiry as on Redis: a node whose heartbeat is older than the node
//! timeout is dead, judged on the servers' clock (each entry's time is the
//! stream leader's, and the newest heartbeat, this node's own, stands for
//! "now"), and only by a node heard on time for a whole timeout itself.
//! Claims use compare-and-set on revisions, so each subscription of a dead
//! node is announced inactive by exactly one node:
//!
//! 1. the claimant marks `nodes.{dead}` `reaped` (an update at the revision
//!    it saw: the dead node, should it come back, then fails its next
//!    heartbeat and knows to write its subscriptions again);
//! 2. every node that sees the mark deletes each `subs.{dead}.*` at the
//!    revision it read: the one whose delete succeeds announces it;
//! 3. the claimant purges the dead node's keys, tombstones included. A
//!    claimant that dies between these steps leaves a mark the others
//!    finish.
//!
//! A node removes its own ended subscriptions by purging their subject, so
//! that no tombstone is left behind for each subscription ever made.

use std::collections::HashSet;
use std::sync::Arc;

use async_nats::jetstream;
use async_nats::jetstream::consumer::{DeliverPolicy, ReplayPolicy, push};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::Stream;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::join_all;
use tokio::sync::{Mutex as AsyncMutex, OnceCell};

use super::super::ledger::{self, Ledger};
use super::Nats;
use crate::log::{LogError, LogFuture};
use crate::presence::{Presence, Reaped, SubscriptionInfo};

const ALIVE: &[u8] = b"alive";
const REAPED: &[u8] = b"reaped";

/// This node's subscriptions in the cluster. Cheap to clone.
#[derive(Debug, Clone)]
pub struct NatsPresence {
    inner: Arc<Inner>,
    state: Arc<Ledger>,
}

#[derive(Debug)]
struct Inner {
    nats: Arc<Nats>,
    /// The presence stream, once made (or found).
    store: OnceCell<Stream<()>>,
    /// The revision of this node's heartbeat, once written.
    beat: AsyncMutex<Option<u64>>,
}

/// The newest value of one key.
#[derive(Debug)]
struct Held {
    key: String,
    value: Bytes,
    revision: u64,
    /// On the servers' clock, in nanoseconds since the Unix epoch.
    at_ns: i128,
}

/// The header that marks a tombstone (a key claimed away).
const OPERATION: &str = "Tidings-Op";

impl NatsPresence {
    /// Starts the node's heartbeat task. Needs a Tokio runtime.
    pub(super) fn new(nats: Arc<Nats>) -> NatsPresence {
        let state = Arc::new(Ledger::default());
        let inner = Arc::new(Inner {
            nats,
            store: OnceCell::new(),
            beat: AsyncMutex::new(None),
        });
        let writer = inner.clone();
        tokio::spawn(ledger::run(
            Arc::downgrade(&state),
            state.changed.clone(),
            inner.nats.options.node_timeout / 3,
            move |state, heartbeat| {
                let inner = writer.clone();
                async move { inner.write(&state, heartbeat).await }
            },
        ));
        NatsPresence { inner, state }
    }
}

impl Inner {
    fn node(&self) -> &str {
        &self.nats.node
    }

    fn subject(&self, key: &str) -> String {
        format!("{}.presence.{key}", self.nats.options.stream)
    }

    /// The presence stream, created on first use.
    async fn store(&self) -> Result<&Stream<()>, LogError> {
        self.store
            .get_or_try_init(|| async {
                let connection = self.nats.connection().await?;
                let name = self.nats.presence_bucket();
                let config = jetstream::stream::Config {
                    name: name.clone(),
                    description: Some(
                        "Tidings presence: nodes' heartbeats and subscriptions".into(),
                    ),
                    subjects: vec![self.subject(">")],
                    max_messages_per_subject: 1,
                    discard: jetstream::stream::DiscardPolicy::Old,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: self.nats.options.replicas,
                    ..Default::default()
                };
                if let Err(error) = connection.js.get_stream(&name).await {
                    let missing = matches!(
                        error.kind(),
                        jetstream::context::GetStreamErrorKind::JetStream(ref e)
                            if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                    );
                    if !missing {
                        return Err(self.nats.unavailable("reading the presence stream", error));
                    }
                    if let Err(error) = connection.js.create_stream(config).await
                        && !error.to_string().contains("already in use")
                    {
                        return Err(self.nats.unavailable("creating the presence stream", error));
                    }
                }
                connection
                    .js
                    .get_stream_no_info(&name)
                    .await
                    .map_err(|e| LogError::Config(format!("unusable presence stream name: {e}")))
            })
            .await
    }

    /// Writes `value` at `key`; with `expected`, only if the key's revision
    /// is that (0: absent). The new revision.
    async fn put(&self, key: &str, value: Bytes, expected: Option<u64>) -> Result<u64, LogError> {
        self.publish(key, PublishMessage::build().payload(value), expected)
            .await
    }

    /// Leaves a tombstone at `key` if its revision is `expected`: the one
    /// caller that succeeds has claimed it.
    async fn claim_key(&self, key: &str, expected: u64) -> bool {
        self.publish(
            key,
            PublishMessage::build().header(OPERATION, "del"),
            Some(expected),
        )
        .await
        .is_ok()
    }

    async fn publish(
        &self,
        key: &str,
        mut message: PublishMessage,
        expected: Option<u64>,
    ) -> Result<u64, LogError> {
        let connection = self.nats.connection().await?;
        self.store().await?;
        if let Some(expected) = expected {
            message = message.expected_last_subject_sequence(expected);
        }
        let ack = connection
            .js
            .send_publish(self.subject(key), message)
            .await
            .map_err(|e| self.nats.unavailable("writing presence", e))?
            .await
            .map_err(|e| self.nats.unavailable("writing presence", e))?;
        Ok(ack.sequence)
    }

    /// Removes every key matching `filter`, tombstones included.
    async fn purge(&self, filter: &str) -> Result<(), LogError> {
        self.store()
            .await?
            .purge()
            .filter(self.subject(filter))
            .await
            .map(drop)
            .map_err(|e| self.nats.unavailable("purging presence", e))
    }

    /// The newest value of every key matching `filter` (`nodes.*`,
    /// `subs.>`), tombstones left out: an ordered consumer that delivers the
    /// last message per subject, read until nothing is pending.
    async fn snapshot(&self, filter: &str) -> Result<Vec<Held>, LogError> {
        let store = self.store().await?;
        let connection = self.nats.connection().await?;
        let prefix = self.subject("");
        let consumer = store
            .create_consumer(push::OrderedConfig {
                deliver_subject: connection.client.new_inbox(),
                description: Some("a Tidings node reading presence".into()),
                filter_subject: self.subject(filter),
                deliver_policy: DeliverPolicy::LastPerSubject,
                replay_policy: ReplayPolicy::Instant,
                ..Default::default()
            })
            .await
            .map_err(|e| self.nats.unavailable("reading presence", e))?;
        let mut held = Vec::new();
        if consumer.cached_info().num_pending == 0 {
            return Ok(held);
        }
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| self.nats.unavailable("reading presence", e))?;
        loop {
            let next = tokio::time::timeout(self.nats.options.timeout, messages.next()).await;
            let message = match next {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(e))) => return Err(self.nats.unavailable("reading presence", e)),
                Ok(None) | Err(_) => {
                    return Err(self.nats.unavailable(
                        "reading presence",
                        std::io::Error::other("the presence snapshot did not complete in time"),
                    ));
                }
            };
            let info = message.info().map_err(|e| {
                self.nats
                    .unavailable("reading presence", std::io::Error::other(e.to_string()))
            })?;
            let (revision, pending, at_ns) = (
                info.stream_sequence,
                info.pending,
                info.published.unix_timestamp_nanos(),
            );
            let tombstone = message
                .headers
                .as_ref()
                .is_some_and(|h| h.get(OPERATION).is_some());
            if !tombstone && let Some(key) = message.subject.strip_prefix(prefix.as_str()) {
                held.push(Held {
                    key: key.to_owned(),
                    value: message.payload.clone(),
                    revision,
                    at_ns,
                });
            }
            if pending == 0 {
                return Ok(held);
            }
        }
    }

    /// The nodes' heartbeats: (node, entry), and the servers' "now" (the
    /// newest heartbeat).
    async fn nodes(&self) -> Result<(Vec<(String, Held)>, i128), LogError> {
        let nodes: Vec<(String, Held)> = self
            .snapshot("nodes.*")
            .await?
            .into_iter()
            .filter_map(|held| {
                let node = held.key.strip_prefix("nodes.")?.to_owned();
                Some((node, held))
            })
            .collect();
        let now = nodes.iter().map(|(_, h)| h.at_ns).max().unwrap_or_default();
        Ok((nodes, now))
    }

    fn timeout_ns(&self) -> i128 {
        self.nats.options.node_timeout.as_nanos() as i128
    }

    /// Writes the heartbeat; true when this node had been reaped (or is
    /// new): its subscriptions must be written again.
    async fn heartbeat(&self) -> Result<bool, LogError> {
        let key = format!("nodes.{}", self.node());
        let mut beat = self.beat.lock().await;
        if let Some(revision) = *beat {
            let alive = Bytes::from_static(ALIVE);
            if let Ok(revision) = self.put(&key, alive, Some(revision)).await {
                *beat = Some(revision);
                return Ok(false);
            }
        }
        let revision = self.put(&key, Bytes::from_static(ALIVE), None).await?;
        *beat = Some(revision);
        Ok(true)
    }

    /// Claims the subscriptions of `dead` (marked reaped): each one this node
    /// leaves a tombstone on first is its to announce.
    async fn claim(&self, dead: &str) -> Result<Vec<SubscriptionInfo>, LogError> {
        let held = self.snapshot(&format!("subs.{dead}.*")).await?;
        let claims = join_all(held.iter().map(|h| async move {
            self.claim_key(&h.key, h.revision)
                .await
                .then(|| serde_json::from_slice::<SubscriptionInfo>(&h.value).ok())
                .flatten()
        }))
        .await;
        Ok(claims.into_iter().flatten().collect())
    }

    /// Writes what changed (or everything), with the heartbeat when due.
    async fn write(&self, state: &Ledger, heartbeat: bool) -> Result<(), LogError> {
        if heartbeat || state.book().rewrite {
            state.beaten(self.heartbeat().await, self.nats.options.node_timeout / 3)?;
        }
        // A whole rewrite puts every key; the keys of ended subscriptions
        // are already gone (purged, or claimed by whoever reaped this node).
        let node = self.node();
        let writes: Vec<(String, Option<Bytes>)> = state
            .take_writes()
            .1
            .into_iter()
            .map(|(k, json)| (format!("subs.{node}.{k}"), json.map(Bytes::from)))
            .collect();
        if writes.is_empty() {
            return Ok(());
        }
        let results = join_all(writes.iter().map(|(key, value)| async move {
            match value {
                Some(value) => self.put(key, value.clone(), None).await.map(drop),
                // Purged, not a tombstone: nothing stays behind for each
                // subscription ever made.
                None => self.purge(key).await,
            }
        }))
        .await;
        results.into_iter().collect()
    }
}

impl Presence for NatsPresence {
    fn joined(&self, key: u64, info: &SubscriptionInfo) {
        self.state.joined(key, info);
    }

    fn left(&self, key: u64) {
        self.state.left(key);
    }

    fn others(&self) -> LogFuture<'_, Vec<SubscriptionInfo>> {
        Box::pin(async move {
            let inner = &self.inner;
            let (nodes, now) = inner.nodes().await?;
            let alive: HashSet<&str> = nodes
                .iter()
                .filter(|(node, held)| {
                    node != inner.node()
                        && &held.value[..] == ALIVE
                        && now - held.at_ns <= inner.timeout_ns()
                })
                .map(|(node, _)| node.as_str())
                .collect();
            if alive.is_empty() {
                return Ok(Vec::new());
            }
            Ok(inner
                .snapshot("subs.>")
                .await?
                .into_iter()
                .filter(|held| {
                    held.key
                        .split('.')
                        .nth(1)
                        .is_some_and(|node| alive.contains(node))
                })
                .filter_map(|held| serde_json::from_slice(&held.value).ok())
                .collect())
        })
    }

    fn reap(&self) -> LogFuture<'_, Reaped> {
        Box::pin(async move {
            let inner = &self.inner;
            let mut reaped = Reaped {
                back: self.state.take_back(),
                ..Reaped::default()
            };
            // Only a node heard on time for a whole node timeout may judge:
            // any node alive meanwhile has sent a heartbeat since.
            if !self
                .state
                .beats()
                .steady_for(inner.nats.options.node_timeout)
            {
                return Ok(reaped);
            }
            let (nodes, now) = inner.nodes().await?;
            for (node, held) in nodes {
                if node == inner.node() {
                    continue;
                }
                let marked = &held.value[..] == REAPED;
                let mark = if marked {
                    // Another claimant's mark: finish what it started once
                    // it had time to do it itself.
                    if now - held.at_ns <= inner.timeout_ns() {
                        continue;
                    }
                    held.revision
                } else if now - held.at_ns > inner.timeout_ns() {
                    let reaped = Bytes::from_static(REAPED);
                    match inner.put(&held.key, reaped, Some(held.revision)).await {
                        Ok(revision) => revision,
                        // Back, or claimed by another node meanwhile.
                        Err(_) => continue,
                    }
                } else {
                    continue;
                };
                let gone = inner.claim(&node).await?;
                if !gone.is_empty() {
                    tracing::info!(
                        node,
                        subscriptions = gone.len(),
                        "a node stopped its heartbeat; this node announces its subscriptions inactive"
                    );
                }
                reaped.gone.extend(gone);
                // Every claim is made: the dead node's keys go, tombstones
                // and mark included, unless the mark changed meanwhile (the
                // node came back: it is left alone).
                if inner.claim_key(&held.key, mark).await {
                    inner.purge(&format!("subs.{node}.>")).await?;
                    inner.purge(&held.key).await?;
                }
            }
            Ok(reaped)
        })
    }
}
