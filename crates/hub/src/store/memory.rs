//! [`MemoryStore`]: history in a bounded in-memory ring. Fast, lost on exit.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use super::{Entry, Retention, Store, StoreStats};
use crate::error::StoreError;

/// History kept in memory, bounded by [`Retention`]. Nothing survives a
/// restart: use [`RedbStore`](crate::RedbStore) for that.
#[derive(Debug, Default)]
pub struct MemoryStore {
    retention: Retention,
    inner: RwLock<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<Arc<Entry>>,
    ids: HashMap<Arc<str>, u64>,
    bytes: u64,
    last_position: u64,
}

impl MemoryStore {
    /// An empty store that keeps what `retention` allows.
    pub fn new(retention: Retention) -> MemoryStore {
        MemoryStore {
            retention,
            inner: RwLock::default(),
        }
    }

    fn ring(&self) -> std::sync::RwLockReadGuard<'_, Ring> {
        // A poisoned lock means a panic elsewhere mid-update; the ring's
        // fields are each valid on their own, so reading on is safe.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn ring_mut(&self) -> std::sync::RwLockWriteGuard<'_, Ring> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Ring {
    fn stats(&self) -> StoreStats {
        StoreStats {
            count: self.entries.len() as u64,
            bytes: self.bytes,
            first_position: self.entries.front().map(|e| e.position),
            last_position: self.last_position,
        }
    }

    fn evict(&mut self, retention: &Retention, now_ms: u64) {
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
    }
}

impl Store for MemoryStore {
    fn append(&self, entries: &[Arc<Entry>]) -> Result<StoreStats, StoreError> {
        let mut ring = self.ring_mut();
        let mut now_ms = 0;
        for entry in entries {
            ring.bytes += entry.size();
            ring.ids.insert(entry.id.clone(), entry.position);
            ring.last_position = entry.position;
            ring.entries.push_back(entry.clone());
            now_ms = entry.published_at_ms;
        }
        ring.evict(&self.retention, now_ms);
        Ok(ring.stats())
    }

    fn read_after(&self, after: u64, max: usize) -> Result<Vec<Arc<Entry>>, StoreError> {
        let ring = self.ring();
        let Some(first) = ring.entries.front().map(|e| e.position) else {
            return Ok(Vec::new());
        };
        // Positions in the ring are consecutive, so the start is arithmetic.
        let start = usize::try_from((after + 1).saturating_sub(first)).unwrap_or(usize::MAX);
        Ok(ring.entries.iter().skip(start).take(max).cloned().collect())
    }

    fn position_of(&self, id: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.ring().ids.get(id).copied())
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        Ok(self.ring().stats())
    }

    fn evict_expired(&self, now_ms: u64) -> Result<(), StoreError> {
        self.ring_mut().evict(&self.retention, now_ms);
        Ok(())
    }
}
