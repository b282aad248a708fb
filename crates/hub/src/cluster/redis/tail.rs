//! The Redis tail: `XREAD BLOCK` from a concrete cursor, on a connection of
//! its own.
//!
//! - Never `$`: a cursor always names the last position this node fanned out,
//!   so a reconnect continues exactly there and loses nothing.
//! - Its own connection, with a response timeout above the block time: a
//!   blocked read would otherwise hold up every command multiplexed behind
//!   it, publishes included. It is named `tidings-tail-{node}` (`CLIENT
//!   LIST`), and reconnected by this loop, which owns the cursor.
//! - The epoch is read in the same pipeline, right after the `XREAD`: when it
//!   differs, the entries just read may belong to a recreated log, so they
//!   are dropped and the tail is reset to where the new epoch starts.
//! - Every entry must be cursor + 1; a hole means trimming overtook this node,
//!   and the tail is reset past it (the hub then ends its streams).
//! - The newest position is read with the epoch: a log shorter than the
//!   cursor went back in time (a failover to a replica that was behind), and
//!   the tail is reset to where it now ends.

use std::sync::Arc;

use redis::Value;
use redis::aio::MultiplexedConnection;

use super::entry;
use super::log::RedisLog;
use crate::log::{Entry, LogError, LogFuture, Tail, TailEvent};

/// The most entries one `XREAD` returns: one fan-out pass.
const TAIL_COUNT: usize = 512;

#[derive(Debug)]
pub(super) struct RedisTail {
    log: RedisLog,
    conn: Option<MultiplexedConnection>,
    cursor: u64,
    epoch: Option<Arc<str>>,
    /// Entries read past a hole, handed over after the reset.
    pending: Vec<Arc<Entry>>,
}

impl RedisTail {
    pub(super) fn new(log: RedisLog, after: u64, epoch: Option<Arc<str>>) -> RedisTail {
        RedisTail {
            log,
            conn: None,
            cursor: after,
            epoch,
            pending: Vec::new(),
        }
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

    /// One blocking read after the cursor, and the epoch and newest position
    /// right after it.
    async fn read(&mut self) -> Result<(Vec<Arc<Entry>>, Option<String>, Option<u64>), LogError> {
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
        }
        let redis = &self.log.redis;
        let mut pipe = redis::pipe();
        pipe.cmd("XREAD")
            .arg("COUNT")
            .arg(TAIL_COUNT)
            .arg("BLOCK")
            .arg(redis.options.block.as_millis().max(1) as u64)
            .arg("STREAMS")
            .arg(&redis.keys.log)
            .arg(format!("{}-0", self.cursor))
            .cmd("HMGET")
            .arg(&redis.keys.meta)
            .arg("epoch")
            .arg("last");
        let Some(conn) = self.conn.as_mut() else {
            unreachable!("connected above");
        };
        let replies: Result<(Value, Value), _> = pipe.query_async(conn).await;
        let (read, meta) = match replies {
            Ok(replies) => replies,
            Err(error) => {
                // Whatever happened, the next read starts on a new connection.
                self.conn = None;
                return Err(redis.error("tailing the log", error));
            }
        };
        let entries = entry::read_reply(read).map_err(|e| {
            LogError::Corrupt(format!(
                "Redis at {} ({}): {}",
                redis.target, redis.keys.log, e.0
            ))
        })?;
        let (epoch, last) = match &meta {
            Value::Array(fields) if fields.len() == 2 => (
                entry::text(&fields[0]),
                entry::integer(&fields[1]).and_then(|n| u64::try_from(n).ok()),
            ),
            _ => (None, None),
        };
        Ok((entries, epoch, last))
    }
}

impl Tail for RedisTail {
    fn next(&mut self) -> LogFuture<'_, TailEvent> {
        Box::pin(async move {
            let mut entries = std::mem::take(&mut self.pending);
            if entries.is_empty() {
                let (read, epoch, last) = self.read().await?;
                match (epoch, &self.epoch) {
                    (Some(now), Some(known)) if *now == **known => {
                        if let Some(last) = last.filter(|last| *last < self.cursor) {
                            // Same log, but shorter than what this node read:
                            // Redis failed over to a replica that was behind.
                            let reason = format!(
                                "the Redis log went back from update {} to {last} (a failover to a replica that was behind); updates after {last} that this node delivered are gone",
                                self.cursor
                            );
                            self.cursor = last;
                            return Ok(TailEvent::Reset {
                                after: last,
                                reason,
                            });
                        }
                    }
                    (Some(now), None) => self.epoch = Some(now.into()),
                    (_, _) => {
                        // Recreated (a new epoch) or lost (none yet): what was
                        // just read may be the new log's, and this node's
                        // cursor means nothing there.
                        let epoch = self.log.init().await?;
                        self.epoch = Some(epoch.epoch);
                        self.cursor = epoch.base;
                        return Ok(TailEvent::Reset {
                            after: epoch.base,
                            reason: "the Redis log was recreated (Redis lost its data: restarted without persistence, or its keys were removed); updates before it are gone".into(),
                        });
                    }
                }
                entries = read;
            }
            let Some(first) = entries.first().map(|e| e.position) else {
                return Ok(TailEvent::Idle);
            };
            if first != self.cursor + 1 {
                let reason = format!(
                    "history gap: updates {}..={} were trimmed from Redis before this node read them",
                    self.cursor + 1,
                    first - 1
                );
                self.cursor = first - 1;
                self.pending = entries;
                return Ok(TailEvent::Reset {
                    after: self.cursor,
                    reason,
                });
            }
            // Consecutive within one read (trimming only removes the oldest);
            // anything after a hole waits for the next call.
            let contiguous = entries
                .windows(2)
                .position(|w| w[1].position != w[0].position + 1)
                .map_or(entries.len(), |i| i + 1);
            let rest = entries.split_off(contiguous);
            let more = !rest.is_empty() || entries.len() == TAIL_COUNT;
            self.pending = rest;
            self.cursor = entries.last().map_or(self.cursor, |e| e.position);
            Ok(TailEvent::Entries { entries, more })
        })
    }
}
