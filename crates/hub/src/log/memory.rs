//! [`MemoryLog`]: history in a bounded in-memory ring. Fast, lost on exit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, RwLock};

use super::local::{Committed, LocalTail};
use super::{Appended, Entry, Located, Log, LogError, LogFuture, LogStats, Retention, Tail};

/// History kept in memory, bounded by [`Retention`]. Nothing survives a
/// restart: use [`RedbLog`](crate::RedbLog) for that. Cheap to clone; every
/// clone is the same log.
#[derive(Debug, Clone, Default)]
pub struct MemoryLog {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    retention: Retention,
    ring: RwLock<Ring>,
    committed: Arc<Committed>,
}

#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<Arc<Entry>>,
    ids: HashMap<Arc<str>, u64>,
    bytes: u64,
    last_position: u64,
}

impl MemoryLog {
    /// An empty log that keeps what `retention` allows.
    pub fn new(retention: Retention) -> MemoryLog {
        MemoryLog {
            inner: Arc::new(Inner {
                retention,
                ring: RwLock::default(),
                committed: Arc::new(Committed::new(0)),
            }),
        }
    }

    fn ring(&self) -> std::sync::RwLockReadGuard<'_, Ring> {
        // A poisoned lock means a panic elsewhere mid-update; the ring's
        // fields are each valid on their own, so reading on is safe.
        self.inner.ring.read().unwrap_or_else(|e| e.into_inner())
    }

    fn ring_mut(&self) -> std::sync::RwLockWriteGuard<'_, Ring> {
        self.inner.ring.write().unwrap_or_else(|e| e.into_inner())
    }

    /// What the log holds, without waiting.
    pub fn stats_now(&self) -> LogStats {
        self.ring().stats()
    }

    fn append_now(&self, entries: Vec<Entry>) -> Vec<Appended> {
        let mut ring = self.ring_mut();
        let mut outcome = Vec::with_capacity(entries.len());
        let mut stored = Vec::with_capacity(entries.len());
        let mut in_batch = HashSet::new();
        let mut now_ms = 0;
        for mut entry in entries {
            if ring.ids.contains_key(&entry.id) || !in_batch.insert(entry.id.clone()) {
                outcome.push(Appended::DuplicateId);
                continue;
            }
            ring.last_position += 1;
            entry.position = ring.last_position;
            now_ms = now_ms.max(entry.published_at_ms);
            let entry = Arc::new(entry);
            ring.bytes += entry.size();
            ring.ids.insert(entry.id.clone(), entry.position);
            ring.entries.push_back(entry.clone());
            outcome.push(Appended::At(entry.position));
            stored.push(entry);
        }
        ring.evict(&self.inner.retention, now_ms);
        // Still under the write lock: pushes happen in commit order.
        self.inner.committed.push(&stored);
        outcome
    }
}

impl Ring {
    fn stats(&self) -> LogStats {
        LogStats {
            count: self.entries.len() as u64,
            bytes: self.bytes,
            first_position: self.entries.front().map(|e| e.position),
            last_position: self.last_position,
        }
    }

    /// Evicts what retention says; returns how many entries went.
    fn evict(&mut self, retention: &Retention, now_ms: u64) -> u64 {
        let before = self.entries.len();
        while let Some(oldest) = self.entries.front() {
            if !retention.must_evict(
                self.entries.len() as u64,
                self.bytes,
                oldest.published_at_ms,
                now_ms,
            ) {
                break;
            }
            self.bytes -= oldest.size();
            self.ids.remove(&oldest.id);
            self.entries.pop_front();
        }
        (before - self.entries.len()) as u64
    }

    fn read_after(&self, after: u64, max: usize) -> Vec<Arc<Entry>> {
        let Some(first) = self.entries.front().map(|e| e.position) else {
            return Vec::new();
        };
        // Positions in the ring are consecutive, so the start is arithmetic.
        let start = usize::try_from((after + 1).saturating_sub(first)).unwrap_or(usize::MAX);
        self.entries.iter().skip(start).take(max).cloned().collect()
    }
}

impl Log for MemoryLog {
    fn open(&self) -> LogFuture<'_, u64> {
        let last = self.ring().last_position;
        Box::pin(async move { Ok(last) })
    }

    fn append(&self, entries: Vec<Entry>) -> LogFuture<'_, Vec<Appended>> {
        let outcome = self.append_now(entries);
        Box::pin(async move { Ok(outcome) })
    }

    fn read_after(&self, after: u64, max: usize) -> LogFuture<'_, Vec<Arc<Entry>>> {
        let entries = self.ring().read_after(after, max);
        Box::pin(async move { Ok(entries) })
    }

    fn locate(&self, id: &str) -> LogFuture<'_, Located> {
        let ring = self.ring();
        let located = Located {
            position: ring.ids.get(id).copied(),
            first_position: ring.entries.front().map(|e| e.position),
            last_position: ring.last_position,
        };
        drop(ring);
        Box::pin(async move { Ok(located) })
    }

    fn trim(&self, now_ms: u64) -> LogFuture<'_, u64> {
        let removed = self.ring_mut().evict(&self.inner.retention, now_ms);
        Box::pin(async move { Ok(removed) })
    }

    fn stats(&self) -> LogFuture<'_, LogStats> {
        let stats = self.stats_now();
        Box::pin(async move { Ok::<_, LogError>(stats) })
    }

    fn check(&self) -> LogFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn status(&self) -> LogFuture<'_, crate::log::LogStatus> {
        Box::pin(async {
            Ok(crate::log::LogStatus {
                engine: "memory".into(),
                ..crate::log::LogStatus::default()
            })
        })
    }

    fn tail(&self, after: u64) -> Box<dyn Tail> {
        Box::new(LocalTail::new(
            self.clone(),
            self.inner.committed.clone(),
            after,
        ))
    }
}
