//! The Redis tail: `XREAD BLOCK` from a concrete cursor, on a connection of
//! its own.
//!
//! - Never `$`: a cursor always names the last position this node fanned out,
//!   so a reconnect continues exactly there and loses nothing.
//! - Its own connection, with a response timeout above the block time: a
//!   blocked read would otherwise hold up every command multiplexed behind
//!   it, publishes included. It is named `tidings-tail-{node}` (`CLIENT
//!   LIST`), and reconnected by this loop, which owns the cursor.
//! - Each read is one pipeline: the `XREAD`, then the entry at the cursor,
//!   the epoch and the newest position. A new epoch means a recreated log;
//!   an entry at the cursor with another id, or a log shorter than the
//!   cursor, means the log went back (a failover to a replica that was
//!   behind), and the tail finds where the two histories part by comparing
//!   the ids it has seen. Either way what was just read is dropped and the
//!   tail is reset.
//! - Every entry must be cursor + 1; a hole means trimming overtook this node,
//!   and the tail is reset past it (the hub then ends its streams). An entry
//!   that cannot be read is skipped the same way, so that one foreign entry
//!   cannot stop every node.

use std::collections::VecDeque;
use std::sync::Arc;

use redis::Value;
use redis::aio::MultiplexedConnection;

use super::super::consecutive;
use super::entry::{self, BadEntry};
use super::log::RedisLog;
use crate::log::{Entry, LogError, LogFuture, Tail, TailEvent};

/// The most entries one `XREAD` returns: one fan-out pass.
const TAIL_COUNT: usize = 512;

/// Ids of the newest entries read, to find where a rewound log parts from
/// what this node delivered.
const SEEN: usize = 4096;

#[derive(Debug)]
pub(super) struct RedisTail {
    log: RedisLog,
    conn: Option<MultiplexedConnection>,
    cursor: u64,
    epoch: Option<Arc<str>>,
    /// Entries read past a hole, handed over after the reset.
    pending: Vec<Result<Arc<Entry>, BadEntry>>,
    /// (position, event id) of the newest entries read, consecutive.
    seen: VecDeque<(u64, Arc<str>)>,
}

/// One pipelined read.
struct Read {
    /// The event id now at the cursor, if an entry is there.
    at_cursor: Option<String>,
    entries: Vec<Result<Arc<Entry>, BadEntry>>,
    epoch: Option<String>,
    last: Option<u64>,
}

impl RedisTail {
    pub(super) fn new(log: RedisLog, after: u64, epoch: Option<Arc<str>>) -> RedisTail {
        RedisTail {
            log,
            conn: None,
            cursor: after,
            epoch,
            pending: Vec::new(),
            seen: VecDeque::new(),
        }
    }

    fn corrupt(&self, why: &str) -> LogError {
        let redis = &self.log.redis;
        LogError::Corrupt(format!(
            "Redis at {} ({}): {why}",
            redis.target, redis.keys.log
        ))
    }

    async fn connect(&self) -> Result<MultiplexedConnection, LogError> {
        let redis = &self.log.redis;
        let options = &redis.options;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(options.timeout.min(std::time::Duration::from_secs(2))))
            .set_response_timeout(Some(options.block + options.timeout));
        let mut conn = redis
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| redis.error("opening the tail's connection", e))?;
        // A name for operators (CLIENT LIST); a refusal changes nothing.
        let _: Result<Value, _> = redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(format!("tidings-tail-{}", redis.node))
            .query_async(&mut conn)
            .await;
        Ok(conn)
    }

    /// Sends `pipe` on the tail's connection, (re)connecting first.
    async fn query<T: redis::FromRedisValue>(
        &mut self,
        pipe: &redis::Pipeline,
    ) -> Result<T, LogError> {
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
        }
        let Some(conn) = self.conn.as_mut() else {
            unreachable!("connected above");
        };
        match pipe.query_async(conn).await {
            Ok(reply) => Ok(reply),
            Err(error) => {
                // Whatever happened, the next read starts on a new connection.
                self.conn = None;
                Err(self.log.redis.error("tailing the log", error))
            }
        }
    }

    /// One blocking read after the cursor, then the entry at the cursor, the
    /// epoch and the newest position.
    async fn read(&mut self) -> Result<Read, LogError> {
        let redis = self.log.redis.clone();
        let at = format!("{}-0", self.cursor);
        // The checks run right after the XREAD returns (Redis runs a client's
        // commands in order), so they see the log as it was when the entries
        // were read, even when it changed while the read was blocked.
        let mut pipe = redis::pipe();
        pipe.cmd("XREAD")
            .arg("COUNT")
            .arg(TAIL_COUNT)
            .arg("BLOCK")
            .arg(redis.options.block.as_millis().max(1) as u64)
            .arg("STREAMS")
            .arg(&redis.keys.log)
            .arg(&at)
            .cmd("XRANGE")
            .arg(&redis.keys.log)
            .arg(&at)
            .arg(&at)
            .cmd("HMGET")
            .arg(&redis.keys.meta)
            .arg("epoch")
            .arg("last");
        let (read, at_cursor, meta): (Value, Value, Value) = self.query(&pipe).await?;
        let entries = entry::read_reply(read).map_err(|e| self.corrupt(&e.0))?;
        let (epoch, last) = match &meta {
            Value::Array(fields) if fields.len() == 2 => (
                entry::text(&fields[0]),
                entry::integer(&fields[1]).and_then(|n| u64::try_from(n).ok()),
            ),
            _ => (None, None),
        };
        Ok(Read {
            at_cursor: entry::single_id(&at_cursor),
            entries,
            epoch,
            last,
        })
    }

    /// Whether the log went back under the cursor; where it parts from what
    /// this node read, if so.
    async fn rewound(&mut self, read: &Read) -> Result<Option<u64>, LogError> {
        let Some((position, id)) = self.seen.back().cloned() else {
            // Nothing read yet (a new tail, or just reset): what is at the
            // cursor now is the baseline later reads are checked against.
            if let Some(id) = &read.at_cursor {
                self.seen.push_back((self.cursor, id.as_str().into()));
            }
            return Ok(None);
        };
        debug_assert_eq!(position, self.cursor);
        let same = match (&read.at_cursor, read.last) {
            (Some(now), _) => **now == *id,
            // Gone: trimmed if the log still reaches the cursor.
            (None, Some(last)) => last >= self.cursor,
            (None, None) => true,
        };
        if same {
            return Ok(None);
        }
        // The seen ids agree with the log up to some position and disagree
        // after it (a replica holds a prefix of its primary's history):
        // search for the first disagreement.
        let (mut low, mut high) = (0, self.seen.len());
        while low < high {
            let middle = (low + high) / 2;
            let (position, id) = self.seen[middle].clone();
            let at = format!("{position}-0");
            let mut pipe = redis::pipe();
            pipe.cmd("XRANGE")
                .arg(&self.log.redis.keys.log)
                .arg(&at)
                .arg(&at);
            let (reply,): (Value,) = self.query(&pipe).await?;
            if entry::single_id(&reply).is_some_and(|now| *now == *id) {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        // Before the oldest id kept, agreement is assumed.
        Ok(Some(match low {
            0 => self.seen[0].0 - 1,
            n => self.seen[n - 1].0,
        }))
    }

    fn remember(&mut self, entries: &[Arc<Entry>]) {
        for entry in entries {
            self.seen.push_back((entry.position, entry.id.clone()));
        }
        let excess = self.seen.len().saturating_sub(SEEN);
        self.seen.drain(..excess);
    }

    fn reset(&mut self, after: u64, reason: String) -> TailEvent {
        self.cursor = after;
        while self.seen.back().is_some_and(|(p, _)| *p > after) {
            self.seen.pop_back();
        }
        TailEvent::Reset { after, reason }
    }
}

impl Tail for RedisTail {
    fn next(&mut self) -> LogFuture<'_, TailEvent> {
        Box::pin(async move {
            let mut items = std::mem::take(&mut self.pending);
            if items.is_empty() {
                let read = self.read().await?;
                match (&read.epoch, &self.epoch) {
                    (Some(now), Some(known)) if **now == **known => {}
                    (Some(now), None) => self.epoch = Some(now.as_str().into()),
                    (_, _) => {
                        // Recreated (a new epoch) or lost (none yet): what was
                        // just read may be the new log's, and this node's
                        // cursor means nothing there.
                        let epoch = self.log.init().await?;
                        self.epoch = Some(epoch.epoch);
                        self.seen.clear();
                        return Ok(self.reset(
                            epoch.base,
                            "the Redis log was recreated (Redis lost its data: restarted without persistence, or its keys were removed); updates before it are gone".into(),
                        ));
                    }
                }
                if let Some(fork) = self.rewound(&read).await? {
                    let reason = format!(
                        "the Redis log went back from update {} to {fork} (a failover to a replica that was behind); updates after {fork} that this node delivered are gone",
                        self.cursor
                    );
                    return Ok(self.reset(fork, reason));
                }
                items = read.entries;
            }
            let first = match items.first() {
                None => return Ok(TailEvent::Idle),
                Some(Ok(entry)) => entry.position,
                Some(Err(BadEntry {
                    position: Some(p), ..
                })) => *p,
                Some(Err(bad)) => return Err(self.corrupt(&bad.why)),
            };
            if first != self.cursor + 1 {
                let reason = format!(
                    "history gap: updates {}..={} were trimmed from Redis before this node read them",
                    self.cursor + 1,
                    first - 1
                );
                self.seen.clear();
                self.pending = items;
                return Ok(self.reset(first - 1, reason));
            }
            if let Some(Err(bad)) = items.first() {
                let reason = format!(
                    "update {first} in Redis cannot be read ({}); it was skipped",
                    bad.why
                );
                self.pending = items.split_off(1);
                self.seen.clear();
                return Ok(self.reset(first, reason));
            }
            // Consecutive and readable, up to the first hole or bad entry;
            // the rest waits for the next call.
            let (entries, more) =
                consecutive::take(&mut self.cursor, items, &mut self.pending, TAIL_COUNT);
            self.remember(&entries);
            Ok(TailEvent::Entries { entries, more })
        })
    }
}
