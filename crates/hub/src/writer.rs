//! The writer, which hands publishes to the log in batches and answers each
//! publisher with what the log said, and the hub's timed loops: keep-alives,
//! trimming and gauges, and the presence reaper.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::hub::{Shared, now_ms};
use crate::log::{Appended, Entry};
use crate::update::EventId;

/// The most updates handed to the log at once (one redb transaction and
/// fsync; one Redis pipeline).
const MAX_BATCH: usize = 512;

/// The most bounded trim calls one janitor tick makes (4096 entries each
/// for redb: a million a tick).
const MAX_TRIMS_PER_TICK: usize = 256;

/// How often a node looks for dead nodes whose subscriptions to announce
/// inactive.
pub(crate) const REAP_INTERVAL: Duration = Duration::from_secs(1);

/// A publish on its way to the log.
pub(crate) struct Pending {
    pub(crate) entry: Entry,
    /// After this the publisher has been told [`Error::Timeout`] (or will
    /// be): the update must not be stored any more.
    pub(crate) deadline: Instant,
    pub(crate) ack: Option<oneshot::Sender<Result<EventId>>>,
}

/// Takes publishes in batches, appends each batch, answers each publisher.
/// One batch at a time, so publishes are stored in the order they came.
pub(crate) async fn run_writer(shared: Arc<Shared>, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit(&shared, &mut batch).await;
    }
}

async fn commit(shared: &Shared, batch: &mut Vec<Pending>) {
    let now = Instant::now();
    let timeout = shared.config.publish_timeout;
    let mut entries = Vec::with_capacity(batch.len());
    let mut waiting = Vec::with_capacity(batch.len());
    // The batch may run until its latest deadline: each publisher stops
    // waiting at its own (`Hub::publish`), so one publish that waited long in
    // the queue never shortens the others' time, nor they its.
    let mut deadline = None::<Instant>;
    for pending in batch.drain(..) {
        if pending.deadline <= now {
            answer(pending.ack, Err(Error::Timeout(timeout)));
            continue;
        }
        deadline = Some(deadline.map_or(pending.deadline, |d| d.max(pending.deadline)));
        waiting.push((pending.entry.id.clone(), pending.ack));
        entries.push(pending.entry);
    }
    let Some(deadline) = deadline else {
        return;
    };
    let count = entries.len();
    let started = Instant::now();
    let appended = tokio::time::timeout_at(deadline, shared.log.append(entries)).await;
    // The engine's round trip for one batch: what a publish waits on the
    // log (Redis, JetStream's quorum, redb's fsync).
    metrics::histogram!("tidings_log_append_seconds").record(started.elapsed().as_secs_f64());
    match appended {
        Ok(Ok(outcome)) if outcome.len() == count => {
            let stored = outcome
                .iter()
                .filter(|o| matches!(o, Appended::At(_)))
                .count();
            metrics::counter!("tidings_updates_published_total").increment(stored as u64);
            for ((id, ack), appended) in waiting.into_iter().zip(outcome) {
                let answer_with = match appended {
                    Appended::At(_) => Ok(EventId(id)),
                    Appended::DuplicateId => Err(Error::DuplicateId(id.to_string())),
                    Appended::Refused(why) => Err(Error::Log(crate::LogError::Io(why.to_string()))),
                    Appended::Unconfirmed(why) => {
                        metrics::counter!("tidings_publishes_unconfirmed_total").increment(1);
                        Err(Error::Unconfirmed(crate::LogError::Unconfirmed(
                            why.to_string(),
                        )))
                    }
                };
                answer(ack, answer_with);
            }
        }
        Ok(Ok(outcome)) => {
            let error = crate::LogError::Io(format!(
                "the log answered {} outcomes for {count} updates",
                outcome.len()
            ));
            tracing::error!(%error, "cannot tell which updates were stored");
            for (_, ack) in waiting {
                answer(ack, Err(Error::Log(error.clone())));
            }
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, updates = count, "the log failed a batch; its publishers are told");
            metrics::counter!("tidings_publish_failures_total").increment(count as u64);
            // A transient failure (a connection lost, a server gone slow) may
            // have come after the log took the batch: say so.
            let transient = error.is_transient();
            if transient {
                metrics::counter!("tidings_publishes_unconfirmed_total").increment(count as u64);
            }
            for (_, ack) in waiting {
                let error = error.clone();
                answer(
                    ack,
                    Err(if transient {
                        Error::Unconfirmed(error)
                    } else {
                        Error::Log(error)
                    }),
                );
            }
        }
        Err(_) => {
            tracing::warn!(updates = count, ?timeout, "the log did not answer in time");
            metrics::counter!("tidings_publish_failures_total").increment(count as u64);
            for (_, ack) in waiting {
                answer(ack, Err(Error::Timeout(timeout)));
            }
        }
    }
}

fn answer(ack: Option<oneshot::Sender<Result<EventId>>>, result: Result<EventId>) {
    if let Some(ack) = ack {
        // The publisher may have gone; nothing to tell then.
        let _ = ack.send(result);
    }
}

/// Runs `job` once a `period` (the first time after one period) until the
/// hub stops or is gone. The hub's timed loops: [`keep_alive`], [`tidy`] and
/// [`reap`], each a task of its own so that none waits on another.
pub(crate) async fn every<F, Fut>(shared: Weak<Shared>, period: Duration, job: F)
where
    F: Fn(Arc<Shared>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(mut stopping) = shared.upgrade().map(|s| s.stopping.subscribe()) else {
        return;
    };
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        job(shared).await;
    }
}

/// Keep-alives, for every subscriber at once (no timer per subscriber). It
/// never waits on the log, so a slow or unreachable log cannot delay a
/// keep-alive (and have proxies drop idle streams).
pub(crate) async fn keep_alive(shared: Arc<Shared>) {
    for subscriber in shared.index().subscribers() {
        subscriber.tick();
    }
}

/// Trims history that has grown too old while nothing was published, and
/// sets the history gauges.
pub(crate) async fn tidy(shared: Arc<Shared>) {
    // Each call is bounded; a large backlog (an age limit after a quiet
    // night) takes several, with room for the writer between them.
    for _ in 0..MAX_TRIMS_PER_TICK {
        match shared.log.trim(now_ms()).await {
            Ok(0) => break,
            Ok(_) => tokio::task::yield_now().await,
            Err(error) => {
                tracing::debug!(%error, "cannot trim history now");
                break;
            }
        }
    }
    if let Ok(stats) = shared.log.stats().await {
        metrics::gauge!("tidings_history_updates").set(stats.count as f64);
        metrics::gauge!("tidings_history_bytes").set(stats.bytes as f64);
    }
}

/// Announces inactive, once across the cluster, the subscriptions of nodes
/// that stopped their heartbeat (and this node's own again, if others took
/// it for dead).
pub(crate) async fn reap(shared: Arc<Shared>) {
    match shared.presence.reap().await {
        Ok(reaped) => {
            if !reaped.gone.is_empty() {
                tracing::info!(
                    subscriptions = reaped.gone.len(),
                    "announcing the subscriptions of a dead node inactive"
                );
            }
            for info in reaped.gone {
                shared.announce(&info, false).await;
            }
            if !reaped.back.is_empty() {
                tracing::warn!(
                    subscriptions = reaped.back.len(),
                    "this node was taken for dead while cut off from Redis; announcing its subscriptions active again"
                );
            }
            for info in reaped.back {
                shared.announce(&info, true).await;
            }
        }
        Err(error) => tracing::debug!(%error, "cannot look for dead nodes now"),
    }
}
