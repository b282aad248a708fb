//! The two seams the hub stands on: the [`Log`], one ordered history of every
//! update, and its [`Tail`], the committed entries in log order.
//!
//! The log assigns positions (dense, from 1) and answers for each appended
//! update its position or "duplicate id". The hub never fans out what it
//! appended; every node fans out only what its tail reads back, its own
//! publishes included, so that every node delivers one order.
//!
//! [`MemoryLog`] and [`RedbLog`] live in this process and tail it in
//! process (`local.rs`); the Redis log is in `crate::cluster`.

mod local;
mod memory;
mod redb;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use self::memory::MemoryLog;
pub use self::redb::RedbLog;

/// A boxed future of a log operation: the seams are object-safe so that the
/// hub holds any backend behind one pointer.
pub type LogFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LogError>> + Send + 'a>>;

/// One update in the log: its position, routing data and the encoded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The place in the hub's one ordered log, from 1, without holes. Zero
    /// until the log has assigned it.
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

/// What a log holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
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

/// What the log made of one update of an appended batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored at this position.
    At(u64),
    /// Refused: the log already holds an update with this id.
    DuplicateId,
    /// Not stored, for this reason, although others of the batch may be (a
    /// shared log can fail part way through a batch, when it runs out of
    /// memory, say).
    Refused(Arc<str>),
    /// Most likely stored, but not confirmed as the log promises (fewer
    /// replicas than required acknowledged it in time, or the answer was
    /// lost on the way): the publisher is told to publish again with the
    /// same id, which a stored update refuses as a duplicate.
    Unconfirmed(Arc<str>),
}

/// Where an event id is, for a resume.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Located {
    /// The id's position, if the log still holds it.
    pub position: Option<u64>,
    /// The oldest position held, if any.
    pub first_position: Option<u64>,
    /// The newest position ever appended.
    pub last_position: u64,
}

impl Located {
    /// The position before the oldest held: where a replay of everything
    /// held starts.
    pub fn before_first(&self) -> u64 {
        self.first_position
            .map_or(self.last_position, |p| p.saturating_sub(1))
    }
}

/// The hub's history: one ordered log of updates.
///
/// The hub appends from one task at a time, in order, and reads from many.
/// Every method is cancel-safe in the sense that dropping its future never
/// corrupts the log; an append whose future is dropped may or may not have
/// been stored.
pub trait Log: Send + Sync + fmt::Debug + 'static {
    /// Connects if needed and answers the position of the newest update ever
    /// appended (0 before the first): where this node's tail starts.
    ///
    /// # Errors
    /// When the log cannot be reached; the hub retries with backoff.
    fn open(&self) -> LogFuture<'_, u64>;

    /// Appends `entries` in order, assigning each the next position, unless
    /// its id is already held ([`Appended::DuplicateId`]; a duplicate within
    /// the batch counts too). When the future answers `Ok`, the stored entries
    /// survive a restart (for durable logs). Evicts by retention, a bounded
    /// amount per call.
    ///
    /// # Errors
    /// If the batch could not be stored; none of it is then kept.
    fn append(&self, entries: Vec<Entry>) -> LogFuture<'_, Vec<Appended>>;

    /// Up to `max` entries with position greater than `after`, in order.
    ///
    /// # Errors
    /// If the history could not be read.
    fn read_after(&self, after: u64, max: usize) -> LogFuture<'_, Vec<Arc<Entry>>>;

    /// The position of the update with this id, if still held, and the
    /// bounds of what is held.
    ///
    /// # Errors
    /// If the history could not be read.
    fn locate(&self, id: &str) -> LogFuture<'_, Located>;

    /// Evicts by retention even without appends (by age, mostly), a bounded
    /// amount per call, so that one call never holds the log for long.
    /// Returns how many entries went; the caller calls again while that is
    /// not zero.
    ///
    /// # Errors
    /// If the history could not be written.
    fn trim(&self, now_ms: u64) -> LogFuture<'_, u64>;

    /// What the log holds.
    ///
    /// # Errors
    /// If the history could not be read.
    fn stats(&self) -> LogFuture<'_, LogStats>;

    /// Whether this node can write to the log now (for readiness).
    ///
    /// # Errors
    /// Why it cannot.
    fn check(&self) -> LogFuture<'_, ()>;

    /// A tail that yields every entry after position `after`, in log order.
    fn tail(&self, after: u64) -> Box<dyn Tail>;

    /// What this node can say of its log's engine, the servers it reaches
    /// and their quorum, for readiness probes and operators.
    ///
    /// # Errors
    /// When the log cannot be asked.
    fn status(&self) -> LogFuture<'_, LogStatus> {
        Box::pin(async {
            Ok(LogStatus {
                engine: "in-process".into(),
                ..LogStatus::default()
            })
        })
    }
}

/// What [`Log::status`] says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogStatus {
    /// The engine: `memory`, `redb`, `redis`, `nats-jetstream`.
    pub engine: String,
    /// The servers reached or known, each with its state.
    pub servers: Vec<String>,
    /// The replication state: who leads, how many replicas are current.
    pub quorum: Option<String>,
}

/// The committed entries of a [`Log`] after a cursor, in log order. Each node
/// runs one tail loop over one of these.
pub trait Tail: Send + fmt::Debug {
    /// Waits for what comes next after the cursor, and moves the cursor.
    ///
    /// # Errors
    /// A transient failure (the log is unreachable): the cursor is kept, and
    /// the caller calls again after a pause.
    fn next(&mut self) -> LogFuture<'_, TailEvent>;
}

/// What a [`Tail`] read.
#[derive(Debug)]
pub enum TailEvent {
    /// The next entries, consecutive positions right after the cursor.
    Entries {
        /// At least one entry.
        entries: Vec<Arc<Entry>>,
        /// True when more were already committed (the tail is behind).
        more: bool,
    },
    /// Nothing new within the tail's wait: connected and caught up.
    Idle,
    /// The log cannot continue from the cursor: entries were trimmed before
    /// this node read them, or the log was recreated (a new epoch). The tail
    /// now continues after `after`; everything a node holds from before is
    /// stale, so its subscriptions end and their clients resume.
    Reset {
        /// The tail's new cursor.
        after: u64,
        /// What happened, for logs and for the clients told to resume.
        reason: String,
    },
}

/// A failure of a [`Log`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The data directory or database file could not be opened or created.
    #[error("cannot open the history log at {path}: {reason}")]
    Open {
        /// The file or directory involved.
        path: std::path::PathBuf,
        /// What the system or the database said.
        reason: String,
    },
    /// Reading or writing the history failed.
    #[error("history log failure: {0}")]
    Io(String),
    /// A stored record could not be decoded: the file is damaged or from
    /// another program.
    #[error("history log is corrupted: {0}")]
    Corrupt(String),
    /// The log cannot be reached now (its server is down or too slow); a
    /// later attempt may succeed.
    #[error("{what}: {source}")]
    Unavailable {
        /// What could not be done, naming the server.
        what: String,
        /// The cause.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// A setting of the log is unusable (a bad URL, say).
    #[error("{0}")]
    Config(String),
    /// The log took the update but could not confirm it as it promises
    /// (see [`Appended::Unconfirmed`]).
    #[error("{0}")]
    Unconfirmed(String),
}

impl LogError {
    /// Whether a later attempt may succeed without changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LogError::Unavailable { .. } | LogError::Unconfirmed(_)
        )
    }
}
