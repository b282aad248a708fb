//! [`RedbStore`]: history in a `redb` file, surviving restarts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{Entry, Retention, Store, StoreStats};
use crate::error::StoreError;

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

/// History in a `redb` database file: every update acknowledged by
/// [`append`](Store::append) is on disk (fsync'd) and survives a crash or
/// restart. The hub batches appends, so one fsync covers many updates.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
    path: PathBuf,
    retention: Retention,
}

impl RedbStore {
    /// Opens (or creates) the history in `dir/history.redb`, creating `dir`.
    ///
    /// # Errors
    /// [`StoreError::Open`] naming the path when the directory cannot be
    /// created, the file cannot be opened for writing, is held by another
    /// process, or is not a valid database; [`StoreError::Corrupt`] when its
    /// records cannot be read back.
    pub fn open(dir: impl AsRef<Path>, retention: Retention) -> Result<RedbStore, StoreError> {
        let dir = dir.as_ref();
        let open_error = |path: &Path, reason: String| StoreError::Open {
            path: path.to_owned(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_error(dir, e.to_string()))?;
        let path = dir.join("history.redb");
        let db = Database::create(&path).map_err(|e| open_error(&path, e.to_string()))?;
        let store = RedbStore {
            db,
            path,
            retention,
        };
        // Create the tables, and prove the file is writable now rather than at
        // the first publish.
        let txn = store
            .db
            .begin_write()
            .map_err(|e| open_error(&store.path, e.to_string()))?;
        {
            txn.open_table(LOG)
                .map_err(|e| open_error(&store.path, e.to_string()))?;
            txn.open_table(IDS)
                .map_err(|e| open_error(&store.path, e.to_string()))?;
            txn.open_table(META)
                .map_err(|e| open_error(&store.path, e.to_string()))?;
        }
        txn.commit()
            .map_err(|e| open_error(&store.path, e.to_string()))?;
        // Read the newest record back: a damaged file fails here, at start-up.
        let stats = store.stats()?;
        if let Some(first) = stats.first_position {
            store.read_after(first - 1, 1)?;
            store.read_after(stats.last_position - 1, 1)?;
        }
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the oldest entries while retention says so; returns the bytes
    /// and the count that remain.
    fn evict(
        &self,
        log: &mut redb::Table<'_, u64, &'static [u8]>,
        ids: &mut redb::Table<'_, &'static str, u64>,
        mut bytes: u64,
        now_ms: u64,
    ) -> Result<(u64, u64), StoreError> {
        let mut count = log.len().map_err(|e| self.io(e))?;
        loop {
            let oldest = match log.first().map_err(|e| self.io(e))? {
                Some((_, record)) => decode_record(0, record.value())?,
                None => return Ok((bytes, count)),
            };
            if !self
                .retention
                .must_evict(count, bytes, oldest.published_at_ms, now_ms)
            {
                return Ok((bytes, count));
            }
            log.pop_first().map_err(|e| self.io(e))?;
            ids.remove(&*oldest.id).map_err(|e| self.io(e))?;
            bytes = bytes.saturating_sub(oldest.size());
            count -= 1;
        }
    }

    fn io(&self, error: impl std::fmt::Display) -> StoreError {
        StoreError::Io(format!("{}: {error}", self.path.display()))
    }
}

impl Store for RedbStore {
    fn append(&self, entries: &[Arc<Entry>]) -> Result<StoreStats, StoreError> {
        let Some(last) = entries.last() else {
            return self.stats();
        };
        let txn = self.db.begin_write().map_err(|e| self.io(e))?;
        let stats;
        {
            let mut log = txn.open_table(LOG).map_err(|e| self.io(e))?;
            let mut ids = txn.open_table(IDS).map_err(|e| self.io(e))?;
            let mut meta = txn.open_table(META).map_err(|e| self.io(e))?;
            let mut bytes = meta
                .get(BYTES)
                .map_err(|e| self.io(e))?
                .map_or(0, |v| v.value());
            let mut record = Vec::new();
            for entry in entries {
                record.clear();
                encode_record(entry, &mut record);
                log.insert(entry.position, record.as_slice())
                    .map_err(|e| self.io(e))?;
                ids.insert(&*entry.id, entry.position)
                    .map_err(|e| self.io(e))?;
                bytes += entry.size();
            }
            let (bytes, count) = self.evict(&mut log, &mut ids, bytes, last.published_at_ms)?;
            meta.insert(BYTES, bytes).map_err(|e| self.io(e))?;
            meta.insert(LAST_POSITION, last.position)
                .map_err(|e| self.io(e))?;
            stats = StoreStats {
                count,
                bytes,
                first_position: log.first().map_err(|e| self.io(e))?.map(|(k, _)| k.value()),
                last_position: last.position,
            };
        }
        txn.commit().map_err(|e| self.io(e))?;
        Ok(stats)
    }

    fn read_after(&self, after: u64, max: usize) -> Result<Vec<Arc<Entry>>, StoreError> {
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

    fn position_of(&self, id: &str) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.io(e))?;
        let ids = txn.open_table(IDS).map_err(|e| self.io(e))?;
        Ok(ids.get(id).map_err(|e| self.io(e))?.map(|v| v.value()))
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.io(e))?;
        let log = txn.open_table(LOG).map_err(|e| self.io(e))?;
        let meta = txn.open_table(META).map_err(|e| self.io(e))?;
        let get = |key| -> Result<u64, StoreError> {
            Ok(meta
                .get(key)
                .map_err(|e| self.io(e))?
                .map_or(0, |v| v.value()))
        };
        Ok(StoreStats {
            count: log.len().map_err(|e| self.io(e))?,
            bytes: get(BYTES)?,
            first_position: log.first().map_err(|e| self.io(e))?.map(|(k, _)| k.value()),
            last_position: get(LAST_POSITION)?,
        })
    }

    fn evict_expired(&self, now_ms: u64) -> Result<(), StoreError> {
        if self.retention.max_age.is_none() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(|e| self.io(e))?;
        {
            let mut log = txn.open_table(LOG).map_err(|e| self.io(e))?;
            let mut ids = txn.open_table(IDS).map_err(|e| self.io(e))?;
            let mut meta = txn.open_table(META).map_err(|e| self.io(e))?;
            let bytes = meta
                .get(BYTES)
                .map_err(|e| self.io(e))?
                .map_or(0, |v| v.value());
            let (bytes, _) = self.evict(&mut log, &mut ids, bytes, now_ms)?;
            meta.insert(BYTES, bytes).map_err(|e| self.io(e))?;
        }
        txn.commit().map_err(|e| self.io(e))
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

fn decode_record(position: u64, record: &[u8]) -> Result<Entry, StoreError> {
    let corrupt =
        || StoreError::Corrupt(format!("record at position {position} cannot be decoded"));
    let mut r = Reader { rest: record };
    if r.take(1).ok_or_else(corrupt)? != [FORMAT] {
        return Err(StoreError::Corrupt(format!(
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
                matches!(
                    decode_record(9, &record[..cut]),
                    Err(StoreError::Corrupt(_))
                ),
                "cut at {cut}"
            );
        }
        record[0] = 99;
        assert!(
            matches!(decode_record(9, &record), Err(StoreError::Corrupt(m)) if m.contains("format version"))
        );
    }
}
