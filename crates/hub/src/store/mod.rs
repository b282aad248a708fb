//! History: the ordered log every update is appended to, behind the [`Store`] trait.

mod memory;
mod redb;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use self::memory::MemoryStore;
pub use self::redb::RedbStore;
use crate::error::StoreError;

/// One update in the log: its position, routing data and the encoded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The place in the hub's one ordered log, from 1, without holes.
    pub position: u64,
    /// The event id (the `id:` field).
    pub id: Arc<str>,
    /// The topics, canonical first.
    pub topics: Box<[Box<str>]>,
    /// Whether only authorized subscribers may receive it.
    pub private: bool,
    /// When the hub accepted it, in milliseconds since the Unix epoch.
    pub published_at_ms: u64,
    /// The encoded event, ready to write to any subscriber.
    pub frame: Bytes,
}

impl Entry {
    /// Bytes this entry counts for in the history's size limit.
    pub fn size(&self) -> u64 {
        let topics: usize = self.topics.iter().map(|t| t.len()).sum();
        (self.frame.len() + self.id.len() + topics + 32) as u64
    }
}

/// How much history to keep. Whichever bound is hit first evicts the oldest
/// updates. `None` means no bound of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The most updates kept. Default: 100 000.
    pub max_count: Option<u64>,
    /// The oldest update kept. Default: none.
    pub max_age: Option<Duration>,
    /// The most bytes kept (see [`Entry::size`]). Default: 256 MiB.
    pub max_bytes: Option<u64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_count: Some(100_000),
            max_age: None,
            max_bytes: Some(256 << 20),
        }
    }
}

impl Retention {
    /// Whether the oldest entry must go, given the totals and the clock.
    pub(crate) fn must_evict(&self, count: u64, bytes: u64, oldest_ms: u64, now_ms: u64) -> bool {
        self.max_count.is_some_and(|max| count > max)
            || self.max_bytes.is_some_and(|max| bytes > max)
            || self
                .max_age
                .is_some_and(|age| now_ms.saturating_sub(oldest_ms) > age.as_millis() as u64)
    }
}

/// What a store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Updates held.
    pub count: u64,
    /// Their size (see [`Entry::size`]).
    pub bytes: u64,
    /// Position of the oldest held, if any.
    pub first_position: Option<u64>,
    /// Position of the newest ever appended (0 before the first). It survives
    /// eviction and restarts so that positions never repeat.
    pub last_position: u64,
}

/// The hub's history. Implementations must be safe to call from several
/// threads; the hub calls `append` from one writer thread only, and the
/// reading methods from blocking tasks, so methods may block.
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Appends entries whose positions follow the last appended one without
    /// holes, then evicts by retention. When it returns `Ok`, the entries
    /// survive a restart (for durable stores).
    ///
    /// Returns what the store holds afterwards, which the append has just
    /// worked out anyway (the hub's gauges need it after every batch).
    ///
    /// # Errors
    /// If the entries could not be stored; none of them is then kept.
    fn append(&self, entries: &[Arc<Entry>]) -> Result<StoreStats, StoreError>;

    /// Up to `max` entries with position greater than `after`, in order.
    ///
    /// # Errors
    /// If the history could not be read.
    fn read_after(&self, after: u64, max: usize) -> Result<Vec<Arc<Entry>>, StoreError>;

    /// The position of the update with this id, if it is still held.
    ///
    /// # Errors
    /// If the history could not be read.
    fn position_of(&self, id: &str) -> Result<Option<u64>, StoreError>;

    /// What the store holds.
    ///
    /// # Errors
    /// If the history could not be read.
    fn stats(&self) -> Result<StoreStats, StoreError>;

    /// Drops entries that are too old, even without new appends.
    ///
    /// # Errors
    /// If the history could not be written.
    fn evict_expired(&self, now_ms: u64) -> Result<(), StoreError>;
}
