//! [`RedbLog`]: history in a `redb` file, surviving restarts.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::local::{Committed, LocalTail};
use super::{Appended, Entry, Located, Log, LogError, LogFuture, LogStats, Retention, Tail};

/// Position → encoded entry.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Event id → position, to resume from `Last-Event-ID`.
const IDS: TableDefinition<&str, u64> = TableDefinition::new("ids");
/// Totals that must survive eviction and restarts.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const LAST_POSITION: &str = "last_position";
const BYTES: &str = "bytes";

/// The record format version, first byte of every stored entry.
const FORMAT: u8 = 1;

/// See [`RedbLog::EVICT_BATCH`].
const EVICT_BATCH: u64 = RedbLog::EVICT_BATCH;

/// History in a `redb` database file: every update acknowledged by
/// [`append`](Log::append) is on disk (fsync'd) and survives a crash or
/// restart. The hub batches appends, so one fsync covers many updates.
/// Cheap to clone; every clone is the same log.
#[derive(Debug, Clone)]
pub struct RedbLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Database,
    path: PathBuf,
    retention: Retention,
    committed: Arc<Committed>,
    /// Held from the start of a write transaction until its entries are in
    /// `committed`, so that the tail sees commits in order even when an
    /// abandoned append is still finishing while the next one starts.
    append_lock: Mutex<()>,
}

impl RedbLog {
    /// The most entries one transaction evicts beyond what it appends, so
    /// that a large eviction (a lowered limit, an age limit after a quiet
    /// night) never holds the writer for long: the rest goes in the next
    /// calls.
    pub const EVICT_BATCH: u64 = 4096;

    /// Opens (or creates) the history in `dir/history.redb`, creating `dir`.
    ///
    /// # Errors
    /// [`LogError::Open`] naming the path when the directory cannot be
    /// created, the file cannot be opened for writing, is held by another
    /// process, or is not a valid database; [`LogError::Corrupt`] when its
    /// records cannot be read back.
    pub fn open(dir: impl AsRef<Path>, retention: Retention) -> Result<RedbLog, LogError> {
        let dir = dir.as_ref();
        let open_error = |path: &Path, reason: String| LogError::Open {
            path: path.to_owned(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_error(dir, e.to_string()))?;
        let path = dir.join("history.redb");
        let db = Database::create(&path).map_err(|e| open_error(&path, e.to_string()))?;
        // Create the tables, and prove the file is writable now rather than at
        // the first publish.
        let txn = db
            .begin_write()
            .map_err(|e| open_error(&path, e.to_string()))?;
        {
            txn.open_table(LOG)
                .map_err(|e| open_error(&path, e.to_string()))?;
            txn.open_table(IDS)
                .map_err(|e| open_error(&path, e.to_string()))?;
            txn.open_table(META)
                .map_err(|e| open_error(&path, e.to_string()))?;
        }
        txn.commit().map_err(|e| open_error(&path, e.to_string()))?;
        let mut inner = Inner {
            db,
            path,
            retention,
            committed: Arc::new(Committed::new(0)),
            append_lock: Mutex::new(()),
        };
        // Read the oldest and newest records back: a damaged file fails here,
        // at start-up.
        let stats = inner.stats()?;
        if let Some(first) = stats.first_position {
            inner.read_after(first - 1, 1)?;
            inner.read_after(stats.last_position - 1, 1)?;
        }
        inner.committed = Arc::new(Committed::new(stats.last_position));
        Ok(RedbLog {
            inner: Arc::new(inner),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// What the log holds, read now (blocking).
    ///
    /// # Errors
    /// If the file cannot be read.
    pub fn stats_now(&self) -> Result<LogStats, LogError> {
        self.inner.stats()
    }

    /// Runs `f` on the blocking pool: redb transactions block on disk I/O.
    fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, LogError> + Send + 'static,
    ) -> LogFuture<'_, T> {
        let inner = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || f(&inner));
        Box::pin(async move {
            task.await
                .map_err(|e| LogError::Io(format!("a history task failed: {e}")))?
        })
    }
}

impl Inner {
    fn io(&self, error: impl std::fmt::Display) -> LogError {
        LogError::Io(format!("{}: {error}", self.path.display()))
    }

    fn append(&self, entries: Vec<Entry>) -> Result<Vec<Appended>, LogError> {
        let _order = self.append_lock.lock().unwrap_or_else(|e| e.into_inner());
        let txn = self.db.begin_write().map_err(|e| self.io(e))?;
        let mut outcome = Vec::with_capacity(entries.len());
        let mut stored = Vec::with_capacity(entries.len());
        {
            let mut log = txn.open_table(LOG).map_err(|e| self.io(e))?;
            let mut ids = txn.open_table(IDS).map_err(|e| self.io(e))?;
            let mut meta = txn.open_table(META).map_err(|e| self.io(e))?;
            let mut bytes = meta
                .get(BYTES)
                .map_err(|e| self.io(e))?
                .map_or(0, |v| v.value());
            let mut last = meta
                .get(LAST_POSITION)
                .map_err(|e| self.io(e))?
                .map_or(0, |v| v.value());
            let mut in_batch = HashSet::new();
            let mut record = Vec::new();
            let mut now_ms = 0;
            for mut entry in entries {
                let taken = ids.get(&*entry.id).map_err(|e| self.io(e))?.is_some();
                if taken || !in_batch.insert(entry.id.clone()) {
                    outcome.push(Appended::DuplicateId);
                    continue;
                }
                last += 1;
                entry.position = last;
                record.clear();
                encode_record(&entry, &mut record);
                log.insert(entry.position, record.as_slice())
                    .map_err(|e| self.io(e))?;
                ids.insert(&*entry.id, entry.position)
                    .map_err(|e| self.io(e))?;
                bytes += entry.size();
                now_ms = now_ms.max(entry.published_at_ms);
                outcome.push(Appended::At(entry.position));
                stored.push(Arc::new(entry));
            }
            let limit = EVICT_BATCH + stored.len() as u64;
            let (bytes, _) = self.evict(&mut log, &mut ids, bytes, now_ms, limit)?;
            meta.insert(BYTES, bytes).map_err(|e| self.io(e))?;
            meta.insert(LAST_POSITION, last).map_err(|e| self.io(e))?;
        }
        txn.commit().map_err(|e| self.io(e))?;
        self.committed.push(&stored);
        Ok(outcome)
    }

    /// Removes the oldest entries while retention says so, at most `limit`;
    /// returns the bytes that remain and how many went.
    fn evict(
        &self,
        log: &mut redb::Table<'_, u64, &'static [u8]>,
        ids: &mut redb::Table<'_, &'static str, u64>,
        mut bytes: u64,
        now_ms: u64,
        limit: u64,
    ) -> Result<(u64, u64), LogError> {
        let mut count = log.len().map_err(|e| self.io(e))?;
        let mut removed = 0;
        for _ in 0..limit {
            let oldest = match log.first().map_err(|e| self.io(e))? {
                Some((_, record)) => decode_record(0, record.value())?,
                None => break,
            };
            if !self
                .retention
                .must_evict(count, bytes, oldest.published_at_ms, now_ms)
            {
                break;
            }
            log.pop_first().map_err(|e| self.io(e))?;
            ids.remove(&*oldest.id).map_err(|e| self.io(e))?;
            bytes = bytes.saturating_sub(oldest.size());
            count -= 1;
            removed += 1;
        }
        Ok((bytes, removed))
    }

    fn read_after(&self, after: u64, max: usize) -> Result<Vec<Arc<Entry>>, LogError> {
        let txn = self.db.begin_read().map_err(|e| self.io(e))?;
        let log = txn.open_table(LOG).map_err(|e| self.io(e))?;
        let mut out = Vec::new();
        for row in log
            .range(after.saturating_add(1)..)
            .map_err(|e| self.io(e))?
            .take(max)
        {
            let (position, record) = row.map_err(|e| self.io(e))?;
            out.push(Arc::new(decode_record(position.value(), record.value())?));
        }
        Ok(out)
    }

    fn locate(&self, id: &str) -> Result<Located, LogError> {
        let txn = self.db.begin_read().map_err(|e| self.io(e))?;
        let ids = txn.open_table(IDS).map_err(|e| self.io(e))?;
        let position = ids.get(id).map_err(|e| self.io(e))?.map(|v| v.value());
        let log = txn.open_table(LOG).map_err(|e| self.io(e))?;
        let meta = txn.open_table(META).map_err(|e| self.io(e))?;
        Ok(Located {
            position,
            first_position: log.first().map_err(|e| self.io(e))?.map(|(k, _)| k.value()),
            last_position: meta
                .get(LAST_POSITION)
                .map_err(|e| self.io(e))?
                .map_or(0, |v| v.value()),
        })
    }

    fn stats(&self) -> Result<LogStats, LogError> {
        let txn = self.db.begin_read().map_err(|e| self.io(e))?;
        let log = txn.open_table(LOG).map_err(|e| self.io(e))?;
        let meta = txn.open_table(META).map_err(|e| self.io(e))?;
        let get = |key| -> Result<u64, LogError> {
            Ok(meta
                .get(key)
                .map_err(|e| self.io(e))?
                .map_or(0, |v| v.value()))
        };
        Ok(LogStats {
            count: log.len().map_err(|e| self.io(e))?,
            bytes: get(BYTES)?,
            first_position: log.first().map_err(|e| self.io(e))?.map(|(k, _)| k.value()),
            last_position: get(LAST_POSITION)?,
        })
    }

    fn trim(&self, now_ms: u64) -> Result<u64, LogError> {
        if self.retention.max_age.is_none() {
            return Ok(0);
        }
        let _order = self.append_lock.lock().unwrap_or_else(|e| e.into_inner());
        let txn = self.db.begin_write().map_err(|e| self.io(e))?;
        let removed = {
            let mut log = txn.open_table(LOG).map_err(|e| self.io(e))?;
            let mut ids = txn.open_table(IDS).map_err(|e| self.io(e))?;
            let mut meta = txn.open_table(META).map_err(|e| self.io(e))?;
            let bytes = meta
                .get(BYTES)
                .map_err(|e| self.io(e))?
                .map_or(0, |v| v.value());
            let (bytes, removed) = self.evict(&mut log, &mut ids, bytes, now_ms, EVICT_BATCH)?;
            meta.insert(BYTES, bytes).map_err(|e| self.io(e))?;
            removed
        };
        txn.commit().map_err(|e| self.io(e))?;
        Ok(removed)
    }
}

impl Log for RedbLog {
    fn open(&self) -> LogFuture<'_, u64> {
        let last = self.inner.committed.last();
        Box::pin(async move { Ok(last) })
    }

    fn append(&self, entries: Vec<Entry>) -> LogFuture<'_, Vec<Appended>> {
        // On the blocking pool, to its end even if this future is dropped:
        // a commit is always followed by its push to the tail.
        self.blocking(move |inner| inner.append(entries))
    }

    fn read_after(&self, after: u64, max: usize) -> LogFuture<'_, Vec<Arc<Entry>>> {
        self.blocking(move |inner| inner.read_after(after, max))
    }

    fn locate(&self, id: &str) -> LogFuture<'_, Located> {
        let id = id.to_owned();
        self.blocking(move |inner| inner.locate(&id))
    }

    fn trim(&self, now_ms: u64) -> LogFuture<'_, u64> {
        self.blocking(move |inner| inner.trim(now_ms))
    }

    fn stats(&self) -> LogFuture<'_, LogStats> {
        self.blocking(|inner| inner.stats())
    }

    fn check(&self) -> LogFuture<'_, ()> {
        self.blocking(|inner| inner.stats().map(drop))
    }

    fn status(&self) -> LogFuture<'_, crate::log::LogStatus> {
        Box::pin(async {
            Ok(crate::log::LogStatus {
                engine: "redb".into(),
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

/// `FORMAT, published_at_ms u64, private u8, id (u32 len + bytes),
/// topic count u32, topics (u32 len + bytes each), frame (the rest)`, all
/// little-endian.
fn encode_record(entry: &Entry, out: &mut Vec<u8>) {
    out.push(FORMAT);
    out.extend_from_slice(&entry.published_at_ms.to_le_bytes());
    out.push(u8::from(entry.private));
    put_str(out, &entry.id);
    out.extend_from_slice(&(entry.topics.len() as u32).to_le_bytes());
    for topic in &entry.topics {
        put_str(out, topic);
    }
    out.extend_from_slice(&entry.frame);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn decode_record(position: u64, record: &[u8]) -> Result<Entry, LogError> {
    let corrupt = || LogError::Corrupt(format!("record at position {position} cannot be decoded"));
    let mut r = Reader { rest: record };
    if r.take(1).ok_or_else(corrupt)? != [FORMAT] {
        return Err(LogError::Corrupt(format!(
            "record at position {position} has an unknown format version"
        )));
    }
    let published_at_ms = u64::from_le_bytes(
        r.take(8)
            .ok_or_else(corrupt)?
            .try_into()
            .map_err(|_| corrupt())?,
    );
    let private = r.take(1).ok_or_else(corrupt)?[0] != 0;
    let id = r.string().ok_or_else(corrupt)?;
    let topic_count = r.u32().ok_or_else(corrupt)?;
    let mut topics = Vec::with_capacity(topic_count.min(64) as usize);
    for _ in 0..topic_count {
        topics.push(r.string().ok_or_else(corrupt)?.into_boxed_str());
    }
    Ok(Entry {
        position,
        id: id.into(),
        topics: topics.into_boxed_slice(),
        private,
        published_at_ms,
        frame: Bytes::copy_from_slice(r.rest),
    })
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_corruption() {
        let entry = Entry {
            position: 9,
            id: "urn:uuid:x".into(),
            topics: vec!["a".into(), "ü/b".into()].into_boxed_slice(),
            private: true,
            published_at_ms: 1234,
            frame: Bytes::from_static(b"id: x\ndata: y\n\n"),
        };
        let mut record = Vec::new();
        encode_record(&entry, &mut record);
        assert_eq!(decode_record(9, &record).unwrap(), entry);
        for cut in 0..record.len() - entry.frame.len() {
            assert!(
                matches!(decode_record(9, &record[..cut]), Err(LogError::Corrupt(_))),
                "cut at {cut}"
            );
        }
        record[0] = 99;
        assert!(
            matches!(decode_record(9, &record), Err(LogError::Corrupt(m)) if m.contains("format version"))
        );
    }
}
