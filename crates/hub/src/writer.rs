//! The writer, the one place that orders the log, and the ticker that sends
//! keep-alives: the hub's two background loops.

use std::collections::HashSet;
use std::sync::{Arc, Weak};

use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result, StoreError};
use crate::hub::{Shared, now_ms};
use crate::store::Entry;
use crate::subscription::{Offer, QueueLimits};
use crate::topic::Head;
use crate::update::EventId;

/// The most updates committed (one store transaction, one fsync) at once.
const MAX_BATCH: usize = 512;

/// A publish on its way to the writer.
pub(crate) struct Pending {
    pub(crate) entry: Entry,
    pub(crate) check_duplicate: bool,
    pub(crate) ack: Option<oneshot::Sender<Result<EventId>>>,
}

/// The writer: the one place that orders the log. It takes publishes in
/// batches, stores each batch in one transaction, then fans it out in order.
pub(crate) fn run_writer(shared: &Shared, mut rx: mpsc::Receiver<Pending>, mut next_position: u64) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        commit(shared, &mut batch, &mut next_position);
    }
}

fn commit(shared: &Shared, batch: &mut Vec<Pending>, next_position: &mut u64) {
    let mut entries = Vec::with_capacity(batch.len());
    let mut acks = Vec::with_capacity(batch.len());
    let mut ids_in_batch = HashSet::new();
    for pending in batch.drain(..) {
        let Pending {
            mut entry,
            check_duplicate,
            ack,
        } = pending;
        if check_duplicate {
            let taken = !ids_in_batch.insert(entry.id.clone())
                || matches!(shared.store.position_of(&entry.id), Ok(Some(_)));
            if taken {
                if let Some(ack) = ack {
                    let _ = ack.send(Err(Error::DuplicateId(entry.id.to_string())));
                }
                continue;
            }
        }
        entry.position = *next_position;
        *next_position += 1;
        entries.push(Arc::new(entry));
        acks.push(ack);
    }
    if entries.is_empty() {
        return;
    }
    let stats = match shared.store.append(&entries) {
        Ok(stats) => stats,
        Err(error) => {
            tracing::error!(%error, updates = entries.len(), "cannot store updates; they are refused");
            *next_position -= entries.len() as u64;
            for ack in acks.into_iter().flatten() {
                let _ = ack.send(Err(Error::Store(StoreError::Io(error.to_string()))));
            }
            return;
        }
    };
    {
        let mut recent = shared.recent.write().unwrap_or_else(|e| e.into_inner());
        recent.extend(entries.iter().cloned());
        let excess = recent.len().saturating_sub(shared.config.recent);
        recent.drain(..excess);
    }
    let limits = QueueLimits {
        max_entries: shared.config.subscriber_queue,
        max_bytes: shared.config.subscriber_queue_bytes,
    };
    let (mut delivered, mut lagged) = (0u64, 0u64);
    {
        let index = shared.index();
        for entry in &entries {
            index.for_each_candidate(entry, |subscriber| match subscriber.offer(entry, limits) {
                Offer::Queued => delivered += 1,
                Offer::Lagged => lagged += 1,
                Offer::Skipped => {}
            });
        }
        if let Some(last) = entries.last() {
            *index.head() = Head {
                position: last.position,
                id: Some(last.id.clone()),
            };
        }
    }
    metrics::counter!("tidings_updates_published_total").increment(entries.len() as u64);
    metrics::counter!("tidings_deliveries_total").increment(delivered);
    if lagged > 0 {
        metrics::counter!("tidings_slow_subscribers_total").increment(lagged);
    }
    for (entry, ack) in entries.iter().zip(acks) {
        if let Some(ack) = ack {
            let _ = ack.send(Ok(EventId(entry.id.clone())));
        }
    }
    metrics::gauge!("tidings_history_updates").set(stats.count as f64);
    metrics::gauge!("tidings_history_bytes").set(stats.bytes as f64);
}

/// One task for all keep-alives (no timer per subscriber), and the eviction of
/// history that has grown too old while nothing was published.
pub(crate) async fn run_ticker(shared: Weak<Shared>) {
    let period = match shared.upgrade() {
        Some(shared) => shared.config.keep_alive,
        None => return,
    };
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        for subscriber in shared.index().subscribers() {
            subscriber.tick();
        }
        let store = shared.store.clone();
        drop(shared);
        let _ = tokio::task::spawn_blocking(move || store.evict_expired(now_ms())).await;
    }
}
