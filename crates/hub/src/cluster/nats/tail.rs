//! The JetStream tail: an ordered pull consumer from a concrete cursor.
//!
//! - Never "new messages only": the consumer starts at the sequence after
//!   the last one this node fanned out, so a reconnect (or a new stream
//!   leader) continues exactly there. The client library recreates an
//!   ordered consumer by itself when it sees a gap in its delivery or misses
//!   heartbeats; this loop recreates it when the stream is unreachable.
//! - Whenever nothing came for the block time, the tail reads the stream's
//!   state: a stream recreated under the same name (another creation time)
//!   has restarted its sequences, so a cursor of the old one would wait
//!   silently for sequences that mean something else; the tail is reset.
//! - Every entry must be cursor + 1; a hole means the stream's limits
//!   dropped updates before this node read them, and the tail is reset past
//!   it (the hub then ends its streams). A message that is not an update is
//!   skipped the same way, so one foreign publish cannot stop every node.

use std::sync::Arc;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::{FutureExt, StreamExt};

use super::super::consecutive;
use super::entry::{self, Foreign};
use super::log::NatsLog;
use crate::log::{Entry, LogError, LogFuture, Tail, TailEvent};

/// The most entries one pass hands over: one fan-out pass.
const TAIL_COUNT: usize = 512;

pub(super) struct NatsTail {
    log: NatsLog,
    messages: Option<pull::Ordered>,
    cursor: u64,
    epoch: Option<Arc<str>>,
    /// Entries read past a hole, handed over after the reset.
    pending: Vec<Item>,
}

type Item = Result<Arc<Entry>, (u64, Foreign)>;

impl std::fmt::Debug for NatsTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsTail")
            .field("cursor", &self.cursor)
            .field("epoch", &self.epoch)
            .field("consuming", &self.messages.is_some())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl NatsTail {
    pub(super) fn new(log: NatsLog, after: u64) -> NatsTail {
        let epoch = log.known_epoch();
        NatsTail {
            log,
            messages: None,
            cursor: after,
            epoch,
            pending: Vec::new(),
        }
    }

    /// Whether the stream is still the one the cursor is in; a reset if not.
    async fn check_stream(&mut self) -> Result<Option<TailEvent>, LogError> {
        let (info, now) = self.log.info().await?;
        match &self.epoch {
            Some(known) if **known == *now => {}
            None => self.epoch = Some(now),
            Some(_) => {
                self.epoch = Some(now);
                self.messages = None;
                self.pending.clear();
                return Ok(Some(self.reset(
                    0,
                    format!(
                        "the NATS stream {} was recreated (deleted, or its servers lost their data); updates before it are gone",
                        info.config.name
                    ),
                )));
            }
        }
        if info.state.last_sequence > self.cursor && self.messages.is_some() {
            // Idle for a whole block time while the stream holds more: the
            // consumer is stuck (its server died and the client has not
            // noticed yet, say). Start it again from the cursor; what it
            // already delivered is dropped as seen.
            tracing::debug!(
                cursor = self.cursor,
                last = info.state.last_sequence,
                "the tail's consumer delivers nothing while the stream holds more; starting it again"
            );
            self.messages = None;
        }
        if info.state.last_sequence < self.cursor {
            self.messages = None;
            self.pending.clear();
            let last = info.state.last_sequence;
            return Ok(Some(self.reset(
                last,
                format!(
                    "the NATS stream went back from update {} to {last}; updates after {last} that this node delivered are gone",
                    self.cursor
                ),
            )));
        }
        Ok(None)
    }

    async fn consumer(&mut self) -> Result<&mut pull::Ordered, LogError> {
        if self.messages.is_none() {
            let stream = self.log.stream().await?;
            let nats = &self.log.nats;
            let consumer = stream
                .create_consumer(pull::OrderedConfig {
                    // A new name each time: the server keeps an old
                    // consumer until it has been inactive for a while, and
                    // a create with its name but another start sequence is
                    // refused ("start sequence can not be updated").
                    name: Some(format!(
                        "tidings-tail-{}-{}",
                        nats.node,
                        uuid::Uuid::now_v7().simple()
                    )),
                    description: Some("a Tidings node's tail".into()),
                    deliver_policy: DeliverPolicy::ByStartSequence {
                        start_sequence: self.cursor + 1,
                    },
                    ..Default::default()
                })
                .await
                .map_err(|e| nats.unavailable("opening the tail's consumer", e))?;
            let messages = consumer
                .messages()
                .await
                .map_err(|e| nats.unavailable("opening the tail's consumer", e))?;
            self.messages = Some(messages);
        }
        match self.messages.as_mut() {
            Some(messages) => Ok(messages),
            None => unreachable!("made above"),
        }
    }

    /// Up to [`TAIL_COUNT`] messages, waiting at most the block time for the
    /// first; `None` when nothing came.
    async fn read(&mut self) -> Result<Option<Vec<Item>>, LogError> {
        let block = self.log.nats.options.block;
        let nats = self.log.nats.clone();
        let messages = self.consumer().await?;
        let first = match tokio::time::timeout(block, messages.next()).await {
            Err(_) => return Ok(None),
            Ok(first) => first,
        };
        let mut items = Vec::new();
        let mut next = first;
        loop {
            match next {
                Some(Ok(message)) => {
                    let sequence =
                        message
                            .info()
                            .map(|info| info.stream_sequence)
                            .map_err(|e| {
                                nats.unavailable(
                                    "reading the tail",
                                    std::io::Error::other(e.to_string()),
                                )
                            })?;
                    items.push(
                        entry::decode(sequence, &message.payload)
                            .map(|(entry, _)| Arc::new(entry))
                            .map_err(|foreign| (sequence, foreign)),
                    );
                }
                Some(Err(error)) => {
                    if items.is_empty() {
                        self.messages = None;
                        return Err(nats.unavailable("reading the tail", error));
                    }
                    // Hand over what was read; the next call meets it again.
                    break;
                }
                None => {
                    self.messages = None;
                    if items.is_empty() {
                        return Err(nats.unavailable(
                            "reading the tail",
                            std::io::Error::other("the consumer ended"),
                        ));
                    }
                    break;
                }
            }
            if items.len() == TAIL_COUNT {
                break;
            }
            let Some(messages) = self.messages.as_mut() else {
                break;
            };
            // What already arrived, without waiting.
            match messages.next().now_or_never() {
                Some(more) => next = more,
                None => break,
            }
        }
        Ok(Some(items))
    }

    fn reset(&mut self, after: u64, reason: String) -> TailEvent {
        self.cursor = after;
        // The consumer started after the old cursor: start it again.
        self.messages = None;
        TailEvent::Reset { after, reason }
    }
}

impl Tail for NatsTail {
    fn next(&mut self) -> LogFuture<'_, TailEvent> {
        Box::pin(async move {
            let mut items = std::mem::take(&mut self.pending);
            if items.is_empty() {
                if self.messages.is_none() {
                    // (Re)connecting: check the stream before trusting the
                    // cursor in it.
                    if let Some(reset) = self.check_stream().await? {
                        return Ok(reset);
                    }
                }
                match self.read().await? {
                    Some(read) => items = read,
                    None => {
                        if let Some(reset) = self.check_stream().await? {
                            return Ok(reset);
                        }
                        return Ok(TailEvent::Idle);
                    }
                }
            }
            // Delivered again after the consumer was recreated: drop what
            // this node has already handed over.
            items.retain(|item| match item {
                Ok(entry) => entry.position > self.cursor,
                Err((position, _)) => *position > self.cursor,
            });
            let first = match items.first() {
                None => return Ok(TailEvent::Idle),
                Some(Ok(entry)) => entry.position,
                Some(Err((position, _))) => *position,
            };
            if first != self.cursor + 1 {
                let reason = format!(
                    "history gap: updates {}..={} left the NATS stream (its limits) before this node read them",
                    self.cursor + 1,
                    first - 1
                );
                // The consumer is where it should be: the pending entries
                // follow the new cursor.
                self.pending = items;
                self.cursor = first - 1;
                return Ok(TailEvent::Reset {
                    after: first - 1,
                    reason,
                });
            }
            if let Some(Err((_, foreign))) = items.first() {
                let reason = format!(
                    "update {first} in the NATS stream cannot be read ({}); it was skipped",
                    foreign.0
                );
                self.pending = items.split_off(1);
                self.cursor = first;
                return Ok(TailEvent::Reset {
                    after: first,
                    reason,
                });
            }
            // Consecutive and readable, up to the first hole or bad entry;
            // the rest waits for the next call.
            let (entries, more) =
                consecutive::take(&mut self.cursor, items, &mut self.pending, TAIL_COUNT);
            Ok(TailEvent::Entries { entries, more })
        })
    }
}
