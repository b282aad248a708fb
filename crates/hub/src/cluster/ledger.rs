//! What a node's presence keeps, whatever the engine: its book of
//! subscriptions as stored, and its own heartbeats.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::log::LogError;
use crate::presence::SubscriptionInfo;

/// This node's presence state, shared by its handle and its writer task.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    book: Mutex<Book>,
    beats: Mutex<Beats>,
    /// Its own `Arc`: the task waits on it while holding the state weakly.
    pub(crate) changed: Arc<Notify>,
}

/// This node's subscriptions, and what the store holds of them.
#[derive(Debug, Default)]
pub(crate) struct Book {
    /// Every subscription of this node, as stored (JSON).
    pub(crate) current: HashMap<u64, String>,
    /// Keys changed since the last write.
    pub(crate) dirty: HashSet<u64>,
    /// What is stored cannot be trusted: write it whole.
    pub(crate) rewrite: bool,
    /// A heartbeat went through at least once.
    pub(crate) beaten: bool,
    /// Another node claimed this one while it was cut off: its
    /// subscriptions were announced inactive and must be announced again.
    pub(crate) revived: bool,
}

impl Ledger {
    pub(crate) fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn beats(&self) -> MutexGuard<'_, Beats> {
        self.beats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A subscription started: recorded now, written by the task.
    pub(crate) fn joined(&self, key: u64, info: &SubscriptionInfo) {
        let json = serde_json::to_string(info).unwrap_or_default();
        let mut book = self.book();
        book.current.insert(key, json);
        book.dirty.insert(key);
        drop(book);
        self.changed.notify_one();
    }

    /// A subscription ended.
    pub(crate) fn left(&self, key: u64) {
        let mut book = self.book();
        book.current.remove(&key);
        book.dirty.insert(key);
        drop(book);
        self.changed.notify_one();
    }

    /// Records what the heartbeat `beat` (sent every `period`) answered: on
    /// success, whether the store had lost this node (new, or reaped while
    /// it was cut off), so that everything is written again and, if it had
    /// been heard before, announced active again.
    ///
    /// # Errors
    /// The heartbeat's own failure, after recording it.
    pub(crate) fn beaten(
        &self,
        beat: Result<bool, LogError>,
        period: Duration,
    ) -> Result<(), LogError> {
        self.beats().record(beat.is_ok(), period);
        let lost = beat?;
        let mut book = self.book();
        if lost {
            book.rewrite = true;
            book.revived |= book.beaten;
        }
        book.beaten = true;
        Ok(())
    }

    /// What to write now: everything (`true`, the store's copy replaced
    /// whole) when the store cannot be trusted, else the keys changed since
    /// the last call, each with its JSON or `None` when it ended.
    pub(crate) fn take_writes(&self) -> (bool, Vec<(u64, Option<String>)>) {
        let mut book = self.book();
        if std::mem::take(&mut book.rewrite) {
            book.dirty.clear();
            let all = book
                .current
                .iter()
                .map(|(k, json)| (*k, Some(json.clone())))
                .collect();
            return (true, all);
        }
        let dirty: Vec<u64> = book.dirty.drain().collect();
        let changes = dirty
            .into_iter()
            .map(|k| (k, book.current.get(&k).cloned()))
            .collect();
        (false, changes)
    }

    /// This node's subscriptions to announce active again, once, after
    /// other nodes took it for dead.
    pub(crate) fn take_back(&self) -> Vec<SubscriptionInfo> {
        let mut book = self.book();
        if !std::mem::take(&mut book.revived) {
            return Vec::new();
        }
        book.current
            .values()
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect()
    }
}

/// The heartbeat and the writer of a node's presence, until the presence is
/// dropped: `write(state, heartbeat)` runs every `period` with a heartbeat
/// due, and whenever a subscription starts or ends. A failed write leaves
/// the store's copy untrusted: the next one rewrites it whole.
pub(crate) async fn run<F, Fut>(
    state: Weak<Ledger>,
    changed: Arc<Notify>,
    period: Duration,
    write: F,
) where
    F: Fn(Arc<Ledger>, bool) -> Fut,
    Fut: Future<Output = Result<(), LogError>>,
{
    let mut interval = tokio::time::interval(period.max(Duration::from_millis(100)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let heartbeat = tokio::select! {
            _ = interval.tick() => true,
            () = changed.notified() => false,
        };
        let Some(state) = state.upgrade() else {
            return;
        };
        if let Err(error) = write(state.clone(), heartbeat).await {
            tracing::debug!(%error, "cannot write this node's presence now; will rewrite it");
            state.book().rewrite = true;
        }
    }
}

/// This node's own heartbeats, so that it judges others only when it can
/// judge: when the store itself stalled, every heartbeat is late, and the first
/// node back must not declare the others dead.
#[derive(Debug, Default)]
pub(crate) struct Beats {
    last_ok: Option<Instant>,
    /// Since when every heartbeat went through on time.
    continuous_since: Option<Instant>,
}

impl Beats {
    pub(crate) fn record(&mut self, ok: bool, beat: Duration) {
        let now = Instant::now();
        if !ok {
            self.continuous_since = None;
            return;
        }
        let on_time = self
            .last_ok
            .is_some_and(|last| now.duration_since(last) <= beat + beat / 2);
        if !on_time || self.continuous_since.is_none() {
            self.continuous_since = Some(now);
        }
        self.last_ok = Some(now);
    }

    /// Whether this node has been heard without a gap for `span`.
    pub(crate) fn steady_for(&self, span: Duration) -> bool {
        self.continuous_since
            .is_some_and(|since| since.elapsed() >= span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_judges_others_only_after_a_whole_timeout_of_its_own_beats() {
        let beat = Duration::from_secs(1);
        let minute = Duration::from_secs(60);
        let mut beats = Beats::default();
        assert!(!beats.steady_for(Duration::ZERO), "never heard");
        let long_ago = Instant::now() - 2 * minute;
        // Beating on time for two minutes: steady.
        beats.continuous_since = Some(long_ago);
        beats.last_ok = Some(Instant::now());
        beats.record(true, beat);
        assert!(beats.steady_for(minute));
        // A beat after a long silence (Redis stalled) starts over.
        beats.last_ok = Some(long_ago);
        beats.record(true, beat);
        assert!(!beats.steady_for(minute));
        assert!(beats.steady_for(Duration::ZERO));
        // A failed beat stops judging at once.
        beats.continuous_since = Some(long_ago);
        beats.record(false, beat);
        assert!(!beats.steady_for(Duration::ZERO));
    }
}
