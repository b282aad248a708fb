//! [`RedisLog`]: the [`Log`] on a Redis Stream.

use std::sync::{Arc, Mutex};

use redis::Value;

use super::entry::{self, Malformed};
use super::tail::RedisTail;
use super::{Redis, RedisOptions};
use crate::log::{Appended, Entry, Located, Log, LogError, LogFuture, LogStats, Tail};

/// Entries one publish script may evict per update it stores: enough to keep
/// up with any count limit, small enough that a script stays short.
const TRIM_PER_PUBLISH: u32 = 4;

/// Updates per publish script call. One call is atomic and holds Redis for
/// its length (about 0.2 ms for 64); a writer batch pipelines several. The
/// per-call cost (script lookup, the epoch check, the trim) is shared by the
/// chunk: see BENCHMARKS.md, "publishes through the script".
const PER_CALL: usize = 64;

/// Entries one trim call may evict (the ticker calls it every keep-alive).
const TRIM_PER_CALL: u32 = 1000;

/// The hub's log on a Redis Stream, shared by every node with the same URL
/// and prefix. Cheap to clone; every clone is the same log.
///
/// The publisher's answer comes after Redis accepted the update: with Redis
/// persistence off or asynchronous (`appendfsync everysec`, replication), a
/// Redis crash can still lose the last updates, and the nodes then see a new
/// epoch and tell their clients of the gap.
#[derive(Debug, Clone)]
pub struct RedisLog {
    pub(super) redis: Arc<Redis>,
    /// The epoch this node writes under; `None` until known.
    epoch: Arc<Mutex<Option<Arc<str>>>>,
}

/// What the init script answered.
#[derive(Debug)]
pub(super) struct Epoch {
    pub(super) epoch: Arc<str>,
    pub(super) last: u64,
    /// The last position when the epoch was created: its own entries follow.
    pub(super) base: u64,
}

impl RedisLog {
    /// A log on the Redis at `options.url`, not connected yet: it connects
    /// on first use and reconnects with backoff whenever Redis goes away.
    ///
    /// # Errors
    /// [`LogError::Config`] for an unusable URL.
    pub fn new(options: RedisOptions) -> Result<RedisLog, LogError> {
        Ok(RedisLog {
            redis: Arc::new(Redis::new(options)?),
            epoch: Arc::default(),
        })
    }

    /// The presence of this node, on the same connection.
    pub fn presence(&self) -> super::RedisPresence {
        super::RedisPresence::new(self.redis.clone())
    }

    /// This node's id in the cluster.
    pub fn node(&self) -> &str {
        &self.redis.node
    }

    fn known_epoch(&self) -> Option<Arc<str>> {
        self.epoch.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Learns the epoch, giving the log one if it has none.
    pub(super) async fn init(&self) -> Result<Epoch, LogError> {
        let redis = &self.redis;
        let candidate = uuid::Uuid::now_v7().to_string();
        let reply: Value = redis
            .scripts
            .init
            .key(&redis.keys.log)
            .key(&redis.keys.meta)
            .arg(&candidate)
            .invoke_async(&mut redis.conn.clone())
            .await
            .map_err(|e| redis.error("reading the log's epoch", e))?;
        let parts = match &reply {
            Value::Array(parts) if parts.len() == 3 => parts,
            _ => return Err(self.malformed(Malformed(format!("init answered {reply:?}")))),
        };
        let epoch: Arc<str> = entry::text(&parts[0])
            .ok_or_else(|| self.malformed(Malformed("no epoch".into())))?
            .into();
        let number = |v: &Value| entry::integer(v).map_or(0, |n| n.max(0) as u64);
        let answer = Epoch {
            epoch: epoch.clone(),
            last: number(&parts[1]),
            base: number(&parts[2]),
        };
        let previous = self
            .epoch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(epoch.clone());
        if previous.is_some_and(|p| p != epoch) {
            tracing::warn!(epoch = %epoch, "the Redis log was recreated (a new epoch): history before it is gone");
        }
        Ok(answer)
    }

    fn malformed(&self, error: Malformed) -> LogError {
        LogError::Corrupt(format!(
            "Redis at {} ({}): {}",
            self.redis.target, self.redis.keys.log, error.0
        ))
    }

    /// One publish script call for the entries at `chunk`.
    fn publish_call(
        &self,
        pipe: &mut redis::Pipeline,
        epoch: &str,
        entries: &[Entry],
        chunk: &[usize],
        now_ms: u64,
    ) {
        let redis = &self.redis;
        let retention = &redis.options.retention;
        let bound = |b: Option<u64>| b.map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let min_t = retention.max_age.map_or(-1, |age| {
            now_ms.saturating_sub(age.as_millis() as u64) as i64
        });
        let call = pipe
            .cmd("EVALSHA")
            .arg(redis.scripts.publish.get_hash())
            .arg(3)
            .arg(&redis.keys.log)
            .arg(&redis.keys.ids)
            .arg(&redis.keys.meta)
            .arg(epoch)
            .arg(bound(retention.max_count))
            .arg(bound(retention.max_bytes))
            .arg(min_t)
            .arg(TRIM_PER_PUBLISH);
        for &i in chunk {
            let entry = &entries[i];
            let (t, n, p, topics) = entry::fields(entry);
            call.arg(&*entry.id)
                .arg(t)
                .arg(n)
                .arg(p)
                .arg(topics)
                .arg(&entry.frame[..]);
        }
    }

    async fn append_all(&self, entries: Vec<Entry>) -> Result<Vec<Appended>, LogError> {
        let redis = &self.redis;
        let mut epoch = match self.known_epoch() {
            Some(epoch) => epoch,
            None => self.init().await?.epoch,
        };
        let now_ms = crate::hub::now_ms();
        let mut outcome: Vec<Option<Appended>> = vec![None; entries.len()];
        let mut todo: Vec<usize> = (0..entries.len()).collect();
        // A retry after loading the scripts, and one after learning a new
        // epoch: never more, so a persistent failure is reported at once.
        for _ in 0..3 {
            let chunks: Vec<&[usize]> = todo.chunks(PER_CALL).collect();
            // With several calls, SCRIPT LOAD first (cheap when Redis has it:
            // a hash of 3 KB per batch): then no EVALSHA of this pipeline can
            // meet NOSCRIPT while a later one succeeds, which would store the
            // batch out of order on the retry. One call alone fails whole.
            let load_first = chunks.len() > 1;
            let mut pipe = redis::pipe();
            if load_first {
                pipe.cmd("SCRIPT").arg("LOAD").arg(super::PUBLISH);
            }
            for chunk in &chunks {
                self.publish_call(&mut pipe, &epoch, &entries, chunk, now_ms);
            }
            let mut replies: Vec<Value> = pipe
                .ignore_errors()
                .query_async(&mut redis.conn.clone())
                .await
                .map_err(|e| redis.error("publishing", e))?;
            let commands = chunks.len() + usize::from(load_first);
            if replies.len() != commands {
                return Err(LogError::Io(format!(
                    "Redis at {} answered {} replies to {commands} commands",
                    redis.target,
                    replies.len(),
                )));
            }
            if load_first {
                replies.remove(0);
            }
            let (mut retry, mut load, mut new_epoch) = (Vec::new(), false, false);
            for (chunk, reply) in chunks.iter().zip(replies) {
                match reply {
                    Value::Array(items) => self.read_outcome(chunk, &items, &mut outcome),
                    Value::ServerError(e) if e.kind() == Some(redis::ServerErrorKind::NoScript) => {
                        load = true;
                        retry.extend_from_slice(chunk);
                    }
                    Value::ServerError(e) if e.code() == "TIDINGS_EPOCH" => {
                        new_epoch = true;
                        retry.extend_from_slice(chunk);
                    }
                    other => {
                        let why: Arc<str> = Arc::from(format!(
                            "Redis at {} refused the update: {other:?}",
                            redis.target
                        ));
                        for &i in *chunk {
                            outcome[i] = Some(Appended::Refused(why.clone()));
                        }
                    }
                }
            }
            if retry.is_empty() {
                break;
            }
            if load {
                redis.load_scripts().await?;
            }
            if new_epoch {
                epoch = self.init().await?.epoch;
            }
            todo = retry;
        }
        let mut outcome: Vec<Appended> = outcome
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    Appended::Refused(Arc::from(
                        "the Redis log kept changing under this node; try again",
                    ))
                })
            })
            .collect();
        let wanted = redis.options.min_replicas;
        if wanted > 0 && outcome.iter().any(|o| matches!(o, Appended::At(_))) {
            self.confirm(wanted, &mut outcome).await;
        }
        Ok(outcome)
    }

    /// Redis's role and how many replicas are connected to it.
    async fn replication(&self) -> Result<(String, u32), LogError> {
        let redis = &self.redis;
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut redis.conn.clone())
            .await
            .map_err(|e| redis.error("reading its replication state", e))?;
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.trim().to_owned())
        };
        let role = field("role").unwrap_or_else(|| "unknown role".into());
        let replicas = field("connected_slaves")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Ok((role, replicas))
    }

    /// Waits until `wanted` replicas hold this connection's writes (`WAIT`):
    /// the stored updates of the batch are answered only then, or told
    /// [`Appended::Unconfirmed`] when fewer did within the timeout.
    ///
    /// `WAIT` counts the replicas that acknowledged every write this
    /// connection made so far, the batch's included; the writer is the only
    /// one writing on it in order, so that is the batch.
    async fn confirm(&self, wanted: u32, outcome: &mut [Appended]) {
        let redis = &self.redis;
        // The command's own budget: the publish timeout less a margin for
        // the round trip, so that the answer comes before the writer's
        // deadline does.
        let budget = redis
            .options
            .timeout
            .saturating_sub(redis.options.timeout / 5);
        let reply: Result<i64, _> = redis::cmd("WAIT")
            .arg(wanted)
            .arg(budget.as_millis().max(1) as u64)
            .query_async(&mut redis.conn.clone())
            .await;
        let why = match reply {
            Ok(acknowledged) if acknowledged >= i64::from(wanted) => return,
            Ok(acknowledged) => format!(
                "only {acknowledged} of the {wanted} Redis replicas required (min-replicas) confirmed the update within {budget:?}"
            ),
            Err(error) => format!(
                "Redis at {} stored the update but could not confirm its replicas: {error}",
                redis.target
            ),
        };
        metrics::counter!("tidings_redis_wait_shortfalls_total").increment(1);
        let why: Arc<str> = why.into();
        for o in outcome.iter_mut() {
            if matches!(o, Appended::At(_)) {
                *o = Appended::Unconfirmed(why.clone());
            }
        }
    }

    /// What one publish script call said of each update of its chunk.
    fn read_outcome(&self, chunk: &[usize], items: &[Value], outcome: &mut [Option<Appended>]) {
        let refusal = items.get(chunk.len()).and_then(entry::text);
        for (k, &i) in chunk.iter().enumerate() {
            outcome[i] = Some(match items.get(k).and_then(entry::integer) {
                Some(0) => Appended::DuplicateId,
                Some(position) if position > 0 => Appended::At(position as u64),
                _ => Appended::Refused(Arc::from(format!(
                    "Redis at {} refused the update: {}",
                    self.redis.target,
                    refusal.as_deref().unwrap_or("no reason given")
                ))),
            });
        }
    }

    async fn read(&self, after: u64, max: usize) -> Result<Vec<Arc<Entry>>, LogError> {
        let redis = &self.redis;
        let mut pipe = redis::pipe();
        pipe.cmd("XRANGE")
            .arg(&redis.keys.log)
            .arg(format!("{}-0", after + 1))
            .arg("+")
            .arg("COUNT")
            .arg(max)
            .cmd("HGET")
            .arg(&redis.keys.meta)
            .arg("epoch");
        let (reply, epoch): (Value, Value) = pipe
            .query_async(&mut redis.conn.clone())
            .await
            .map_err(|e| redis.error("reading history", e))?;
        // A page of a recreated log read with a cursor of the old one would
        // skip what the new log holds at or before it: refuse it, so that the
        // reader resumes and is told of the gap.
        if let Some(known) = self.known_epoch()
            && entry::text(&epoch).is_none_or(|now| *now != *known)
        {
            return Err(LogError::Io(format!(
                "the Redis log at {} was recreated; resume to learn what history holds",
                redis.target
            )));
        }
        entry::entries(reply).map_err(|e| self.malformed(e))
    }

    async fn first_and_last(
        &self,
        pipe: &mut redis::Pipeline,
    ) -> Result<(Vec<Value>, Option<u64>, u64), LogError> {
        let redis = &self.redis;
        pipe.cmd("XRANGE")
            .arg(&redis.keys.log)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .cmd("HGET")
            .arg(&redis.keys.meta)
            .arg("last");
        let mut replies: Vec<Value> = pipe
            .query_async(&mut redis.conn.clone())
            .await
            .map_err(|e| redis.error("reading the log's bounds", e))?;
        let last = replies.pop().as_ref().and_then(entry::integer).unwrap_or(0);
        let first = replies.pop().unwrap_or(Value::Nil);
        let first = entry::entries(first)
            .map_err(|e| self.malformed(e))?
            .first()
            .map(|e| e.position);
        Ok((replies, first, last.max(0) as u64))
    }
}

impl Log for RedisLog {
    fn open(&self) -> LogFuture<'_, u64> {
        Box::pin(async move {
            self.redis.load_scripts().await?;
            Ok(self.init().await?.last)
        })
    }

    fn append(&self, entries: Vec<Entry>) -> LogFuture<'_, Vec<Appended>> {
        Box::pin(self.append_all(entries))
    }

    fn read_after(&self, after: u64, max: usize) -> LogFuture<'_, Vec<Arc<Entry>>> {
        Box::pin(self.read(after, max))
    }

    fn locate(&self, id: &str) -> LogFuture<'_, Located> {
        let id = id.to_owned();
        Box::pin(async move {
            let mut pipe = redis::pipe();
            pipe.cmd("HGET").arg(&self.redis.keys.ids).arg(&id);
            let (replies, first_position, last_position) = self.first_and_last(&mut pipe).await?;
            let position = replies
                .first()
                .and_then(entry::integer)
                .and_then(|p| u64::try_from(p).ok());
            Ok(Located {
                position,
                first_position,
                last_position,
            })
        })
    }

    fn trim(&self, now_ms: u64) -> LogFuture<'_, u64> {
        Box::pin(async move {
            let redis = &self.redis;
            let retention = &redis.options.retention;
            let bound = |b: Option<u64>| b.map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX));
            let min_t = retention.max_age.map_or(-1, |age| {
                now_ms.saturating_sub(age.as_millis() as u64) as i64
            });
            let removed: Value = redis
                .scripts
                .trim
                .key(&redis.keys.log)
                .key(&redis.keys.ids)
                .key(&redis.keys.meta)
                .arg(bound(retention.max_count))
                .arg(bound(retention.max_bytes))
                .arg(min_t)
                .arg(TRIM_PER_CALL)
                .invoke_async(&mut redis.conn.clone())
                .await
                .map_err(|e| redis.error("trimming history", e))?;
            Ok(entry::integer(&removed).map_or(0, |n| n.max(0) as u64))
        })
    }

    fn stats(&self) -> LogFuture<'_, LogStats> {
        Box::pin(async move {
            let redis = &self.redis;
            let mut pipe = redis::pipe();
            pipe.cmd("XLEN")
                .arg(&redis.keys.log)
                .cmd("HGET")
                .arg(&redis.keys.meta)
                .arg("bytes");
            let (replies, first_position, last_position) = self.first_and_last(&mut pipe).await?;
            let number = |i: usize| {
                replies
                    .get(i)
                    .and_then(entry::integer)
                    .map_or(0, |n| n.max(0) as u64)
            };
            Ok(LogStats {
                count: number(0),
                bytes: number(1),
                first_position,
                last_position,
            })
        })
    }

    /// Ready when Redis answers, and with `min_replicas`, when that many
    /// replicas are connected to it (publishes would be unconfirmed
    /// otherwise).
    fn check(&self) -> LogFuture<'_, ()> {
        Box::pin(async move {
            let redis = &self.redis;
            let wanted = redis.options.min_replicas;
            if wanted == 0 {
                let _: Value = redis::cmd("PING")
                    .query_async(&mut redis.conn.clone())
                    .await
                    .map_err(|e| redis.error("answering a ping", e))?;
                return Ok(());
            }
            let (role, replicas) = self.replication().await?;
            if replicas < wanted {
                return Err(LogError::Unavailable {
                    what: format!(
                        "Redis at {} ({role}) has {replicas} replicas connected, and publishes need {wanted} (min-replicas)",
                        redis.target
                    ),
                    source: Arc::new(std::io::Error::other("too few replicas")),
                });
            }
            Ok(())
        })
    }

    fn status(&self) -> LogFuture<'_, crate::log::LogStatus> {
        Box::pin(async move {
            let redis = &self.redis;
            let (state, quorum) = match self.replication().await {
                Ok((role, replicas)) => (
                    format!("reached, {role}"),
                    format!(
                        "{replicas} replicas connected; publishes wait for {} (min-replicas)",
                        redis.options.min_replicas
                    ),
                ),
                Err(error) => (format!("unreachable: {error}"), "unknown".to_owned()),
            };
            Ok(crate::log::LogStatus {
                engine: "redis".into(),
                servers: vec![format!("{} ({state})", redis.target)],
                quorum: Some(quorum),
            })
        })
    }

    fn tail(&self, after: u64) -> Box<dyn Tail> {
        Box::new(RedisTail::new(self.clone(), after, self.known_epoch()))
    }
}
