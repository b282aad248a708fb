//! [`RedisPresence`]: each node keeps its subscriptions in a hash of its own
//! and a heartbeat in the nodes set; a node whose heartbeat expired is dead,
//! and exactly one surviving node claims its subscriptions to announce them
//! inactive (`lua/claim.lua`).
//!
//! Changes are recorded without waiting (subscribing must not wait on Redis,
//! and unsubscribing happens in `Drop`) and written by one background task in
//! pipelines. When Redis was unreachable, or this node was declared dead
//! while cut off, the task rewrites the whole hash from what it holds.

use std::sync::Arc;

use redis::Value;

use super::super::ledger::{self, Ledger};
use super::Redis;
use super::entry;
use crate::log::{LogError, LogFuture};
use crate::presence::{Presence, Reaped, SubscriptionInfo};

/// Fields written per `HSET` when rewriting a whole hash.
const REWRITE_CHUNK: usize = 500;

/// This node's subscriptions in the cluster. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RedisPresence {
    redis: Arc<Redis>,
    state: Arc<Ledger>,
}

impl RedisPresence {
    /// Starts the node's heartbeat task. Needs a Tokio runtime.
    pub(super) fn new(redis: Arc<Redis>) -> RedisPresence {
        let state = Arc::new(Ledger::default());
        let writer = redis.clone();
        tokio::spawn(ledger::run(
            Arc::downgrade(&state),
            state.changed.clone(),
            redis.options.node_timeout / 3,
            move |state, heartbeat| {
                let redis = writer.clone();
                async move { write(&redis, &state, heartbeat).await }
            },
        ));
        RedisPresence { redis, state }
    }

    /// Ids of the nodes alive (`alive`) or dead, by Redis's clock.
    async fn nodes(&self, which: &str) -> Result<Vec<String>, LogError> {
        let redis = &self.redis;
        let reply: Value = redis
            .scripts
            .nodes
            .key(&redis.keys.nodes)
            .arg(which)
            .invoke_async(&mut redis.conn.clone())
            .await
            .map_err(|e| redis.error("listing nodes", e))?;
        Ok(strings(&reply))
    }
}

impl Presence for RedisPresence {
    fn joined(&self, key: u64, info: &SubscriptionInfo) {
        self.state.joined(key, info);
    }

    fn left(&self, key: u64) {
        self.state.left(key);
    }

    fn others(&self) -> LogFuture<'_, Vec<SubscriptionInfo>> {
        Box::pin(async move {
            let redis = &self.redis;
            let mut pipe = redis::pipe();
            for node in self.nodes("alive").await? {
                if *node != *redis.node {
                    pipe.cmd("HVALS").arg(redis.keys.presence(&node));
                }
            }
            if pipe.is_empty() {
                return Ok(Vec::new());
            }
            let replies: Vec<Value> = pipe
                .query_async(&mut redis.conn.clone())
                .await
                .map_err(|e| redis.error("reading the other nodes' subscriptions", e))?;
            Ok(replies.iter().flat_map(infos).collect())
        })
    }

    fn reap(&self) -> LogFuture<'_, Reaped> {
        Box::pin(async move {
            let redis = &self.redis;
            let mut reaped = Reaped {
                back: self.state.take_back(),
                ..Reaped::default()
            };
            // Only a node heard on time for a whole node timeout may judge:
            // any node alive meanwhile has sent a heartbeat since.
            if !self.state.beats().steady_for(redis.options.node_timeout) {
                return Ok(reaped);
            }
            for node in self.nodes("dead").await? {
                if *node == *redis.node {
                    continue;
                }
                let claimed: Value = redis
                    .scripts
                    .claim
                    .key(&redis.keys.nodes)
                    .key(redis.keys.presence(&node))
                    .arg(&node)
                    .invoke_async(&mut redis.conn.clone())
                    .await
                    .map_err(|e| redis.error("claiming a dead node", e))?;
                let infos = infos(&claimed);
                if !infos.is_empty() {
                    tracing::info!(
                        node,
                        subscriptions = infos.len(),
                        "a node stopped its heartbeat; this node announces its subscriptions inactive"
                    );
                }
                reaped.gone.extend(infos);
            }
            Ok(reaped)
        })
    }
}

/// Writes what changed (or everything), with the heartbeat when due.
async fn write(redis: &Redis, state: &Ledger, heartbeat: bool) -> Result<(), LogError> {
    let key = redis.keys.presence(&redis.node);
    let timeout_ms = redis.options.node_timeout.as_millis() as u64;
    let mut conn = redis.conn.clone();
    if heartbeat || state.book().rewrite {
        let added: Result<Value, _> = redis
            .scripts
            .heartbeat
            .key(&redis.keys.nodes)
            .key(&key)
            .arg(&*redis.node)
            .arg(timeout_ms)
            .invoke_async(&mut conn)
            .await;
        // 1: the node was not listed (new, or reaped while cut off), so
        // its hash is gone.
        let lost = added
            .map(|added| entry::integer(&added) == Some(1))
            .map_err(|e| redis.error("sending the heartbeat", e));
        state.beaten(lost, redis.options.node_timeout / 3)?;
    }
    let mut pipe = redis::pipe();
    let (whole, writes) = state.take_writes();
    if whole {
        pipe.cmd("DEL").arg(&key);
        for chunk in writes.chunks(REWRITE_CHUNK) {
            let cmd = pipe.cmd("HSET").arg(&key);
            for (k, json) in chunk {
                cmd.arg(k.to_string())
                    .arg(json.as_deref().unwrap_or_default());
            }
        }
    } else {
        for (k, json) in writes {
            match json {
                Some(json) => pipe.cmd("HSET").arg(&key).arg(k.to_string()).arg(json),
                None => pipe.cmd("HDEL").arg(&key).arg(k.to_string()),
            };
        }
    }
    if pipe.is_empty() {
        return Ok(());
    }
    pipe.cmd("PEXPIRE").arg(&key).arg(timeout_ms * 30);
    pipe.query_async::<Value>(&mut conn)
        .await
        .map_err(|e| redis.error("writing this node's presence", e))?;
    Ok(())
}

fn strings(reply: &Value) -> Vec<String> {
    match reply {
        Value::Array(items) | Value::Set(items) => items.iter().filter_map(entry::text).collect(),
        _ => Vec::new(),
    }
}

fn infos(reply: &Value) -> Vec<SubscriptionInfo> {
    strings(reply)
        .iter()
        .filter_map(|json| serde_json::from_str(json).ok())
        .collect()
}
