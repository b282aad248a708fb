//! The in-process tail of [`MemoryLog`](super::MemoryLog) and
//! [`RedbLog`](super::RedbLog): an append, once committed, pushes its entries
//! into a small bounded ring and wakes the tail; a tail that fell behind the
//! ring reads the log itself. The tail never waits on the writer, and the
//! writer never waits on the tail.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::{Entry, Log, LogFuture, Tail, TailEvent};

/// The most entries one tail read hands over: one fan-out pass.
pub(crate) const TAIL_PAGE: usize = 512;

/// Bounds of the ring: enough for a few writer batches, so that a tail
/// keeping up never reads the log back; small enough that large frames do
/// not pile up (the tail reads the log when it falls behind).
const RING_ENTRIES: usize = 2048;
const RING_BYTES: usize = 16 << 20;

/// The newest committed entries, consecutive positions.
#[derive(Debug, Default)]
pub(crate) struct Committed {
    ring: Mutex<Ring>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<Arc<Entry>>,
    bytes: usize,
    /// The newest position committed, even when the ring is empty.
    last: u64,
}

/// What the ring can say about the entries after a cursor.
enum Covered {
    Entries(Vec<Arc<Entry>>, bool),
    /// Nothing committed after the cursor yet.
    Nothing,
    /// The ring starts later than the cursor: read the log.
    Behind,
}

impl Committed {
    pub(crate) fn new(last: u64) -> Committed {
        Committed {
            ring: Mutex::new(Ring {
                last,
                ..Ring::default()
            }),
            notify: Notify::new(),
        }
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        // Nothing panics while holding it; its fields stay valid each alone.
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The newest committed position.
    pub(crate) fn last(&self) -> u64 {
        self.ring().last
    }

    /// Records committed entries and wakes the tails. Callers push in commit
    /// order (they hold the log's append lock).
    pub(crate) fn push(&self, entries: &[Arc<Entry>]) {
        let Some(newest) = entries.last() else {
            return;
        };
        {
            let mut ring = self.ring();
            for entry in entries {
                ring.bytes += entry.frame.len();
                ring.entries.push_back(entry.clone());
            }
            ring.last = newest.position;
            while ring.entries.len() > RING_ENTRIES
                || (ring.bytes > RING_BYTES && ring.entries.len() > 1)
            {
                if let Some(old) = ring.entries.pop_front() {
                    ring.bytes -= old.frame.len();
                }
            }
        }
        self.notify.notify_waiters();
    }

    fn after(&self, cursor: u64) -> Covered {
        let ring = self.ring();
        if ring.last <= cursor {
            return Covered::Nothing;
        }
        match ring.entries.front() {
            Some(first) if first.position <= cursor + 1 => {
                let start = (cursor + 1 - first.position) as usize;
                let entries: Vec<_> = ring
                    .entries
                    .iter()
                    .skip(start)
                    .take(TAIL_PAGE)
                    .cloned()
                    .collect();
                let more = entries.last().is_some_and(|e| e.position < ring.last);
                Covered::Entries(entries, more)
            }
            _ => Covered::Behind,
        }
    }
}

/// A tail over a log in this process.
#[derive(Debug)]
pub(crate) struct LocalTail<L> {
    log: L,
    committed: Arc<Committed>,
    cursor: u64,
}

impl<L: Log> LocalTail<L> {
    pub(crate) fn new(log: L, committed: Arc<Committed>, after: u64) -> LocalTail<L> {
        LocalTail {
            log,
            committed,
            cursor: after,
        }
    }

    /// The tail fell behind the ring: read the log from the cursor.
    async fn read_back(&mut self) -> Result<TailEvent, super::LogError> {
        let entries = self.log.read_after(self.cursor, TAIL_PAGE).await?;
        match entries.first() {
            Some(first) if first.position == self.cursor + 1 => {
                self.cursor = entries.last().map_or(self.cursor, |e| e.position);
                let more = self.cursor < self.committed.last();
                Ok(TailEvent::Entries { entries, more })
            }
            first => {
                // Retention evicted entries before this tail read them.
                let after = match first {
                    Some(first) => first.position - 1,
                    None => self.committed.last(),
                };
                let reason = format!(
                    "history gap: updates {}..={after} were evicted before this node fanned them out",
                    self.cursor + 1
                );
                self.cursor = after;
                Ok(TailEvent::Reset { after, reason })
            }
        }
    }
}

impl<L: Log> Tail for LocalTail<L> {
    fn next(&mut self) -> LogFuture<'_, TailEvent> {
        Box::pin(async move {
            let committed = self.committed.clone();
            loop {
                // Register for the wake-up before looking, so that a push
                // between the look and the wait is not missed.
                let notified = committed.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                match committed.after(self.cursor) {
                    Covered::Entries(entries, more) => {
                        self.cursor = entries.last().map_or(self.cursor, |e| e.position);
                        return Ok(TailEvent::Entries { entries, more });
                    }
                    Covered::Behind => return self.read_back().await,
                    Covered::Nothing => notified.await,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{MemoryLog, Retention};

    fn entry(position: u64) -> Arc<Entry> {
        Arc::new(Entry {
            position,
            id: position.to_string().into(),
            topics: vec!["t".into()].into_boxed_slice(),
            private: false,
            published_at_ms: 0,
            frame: bytes::Bytes::from_static(b"data: x\n\n"),
        })
    }

    #[test]
    fn the_ring_answers_consecutive_entries_after_the_cursor_and_stays_bounded() {
        let committed = Committed::new(0);
        let batch: Vec<_> = (1..=RING_ENTRIES as u64 + 10).map(entry).collect();
        committed.push(&batch);
        assert!(matches!(committed.after(0), Covered::Behind));
        match committed.after(20) {
            Covered::Entries(entries, more) => {
                assert_eq!(entries[0].position, 21);
                assert_eq!(entries.len(), TAIL_PAGE);
                assert!(more);
            }
            _ => panic!("the ring covers position 21"),
        }
        assert!(matches!(
            committed.after(RING_ENTRIES as u64 + 10),
            Covered::Nothing
        ));
    }

    #[tokio::test]
    async fn a_tail_behind_retention_is_reset_with_the_gap_named() {
        let log = MemoryLog::new(Retention {
            max_count: Some(5),
            ..Retention::default()
        });
        let updates = (0..RING_ENTRIES + 50)
            .map(|i| crate::Update::new("t", "x").id(i.to_string()).into_entry(0))
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        log.append(updates).await.unwrap();
        let mut tail = log.tail(0);
        match tail.next().await.unwrap() {
            TailEvent::Reset { after, reason } => {
                assert_eq!(after, (RING_ENTRIES + 50 - 5) as u64);
                assert!(reason.contains("history gap"), "{reason}");
            }
            other => panic!("expected a reset, got {other:?}"),
        }
        match tail.next().await.unwrap() {
            TailEvent::Entries { entries, more } => {
                assert_eq!(entries.len(), 5);
                assert!(!more);
            }
            other => panic!("expected entries, got {other:?}"),
        }
    }
}
