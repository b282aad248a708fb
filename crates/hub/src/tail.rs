//! The tail loop: the one place a node fans out. It reads the log's committed
//! entries in order (its own publishes included, so every node delivers the
//! same order), keeps the recent window and the head, and hands each entry to
//! the matching subscribers of this node.
//!
//! It runs on a thread of its own (`Handle::block_on`): waking a thousand
//! subscriber tasks from a runtime worker puts them all on that worker's local
//! queue, and a measured fan-out on a runtime task was slower for it
//! (BENCHMARKS.md, "fan-out on a runtime task"). From a foreign thread the
//! wakes go to the shared queue, which every worker takes from. On a
//! current-thread runtime there is one worker only, and the loop is its task.

use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};
use std::time::Duration;

use crate::hub::Shared;
use crate::log::{Entry, TailEvent};
use crate::subscription::{Offer, QueueLimits};
use crate::topic::Head;

/// The most offers the fan-out makes under one hold of the index's lock.
const MAX_OFFERS_PER_LOCK: usize = 65_536;

/// The longest the tail waits for the subscribers it woke to run before it
/// fans out the next batch.
const DRAIN_MAX: Duration = Duration::from_millis(5);

/// A fan-out that woke at least this many subscribers is followed by a
/// [`FLUSH_WINDOW`]: the cost of a batch is mostly one write per subscriber,
/// whatever the batch's size, so under load a batch should be larger.
const BUSY_WAKES: usize = 64;

/// How long the tail lets updates gather after a busy fan-out. Measured
/// (BENCHMARKS.md, "flush window"): +25-50 % deliveries/s with 1 to 16
/// publishers, no change in latency at 200 updates/s to 1 000 subscribers.
const FLUSH_WINDOW: Duration = Duration::from_millis(1);

/// Deliberate coalescing: the tail fans out the next batch once the
/// subscribers it woke for the last one have taken their frames (or after
/// [`DRAIN_MAX`]). Under load, updates published meanwhile gather into one
/// batch, so each subscriber writes them in one vectored write; when idle
/// there is nothing to wait for and no latency is added.
///
/// Each fan-out is a generation: a subscriber that has not run by the time
/// the tail stops waiting (a stream its owner does not poll) no longer
/// counts, so it delays one batch by the bound at most, not every batch.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    generation: AtomicU64,
    /// Subscribers of this generation woken and not run yet; may dip below
    /// zero when one runs before the fan-out has counted it.
    pending: AtomicIsize,
    drained: tokio::sync::Notify,
    /// Subscribers the last fan-out woke: a busy one earns a flush window.
    last_woken: std::sync::atomic::AtomicUsize,
}

impl Drain {
    /// A new fan-out begins: its wakes are marked with the generation returned.
    fn begin(&self) -> u64 {
        self.pending.store(0, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The fan-out woke `n` subscribers.
    fn woke(&self, n: usize) {
        self.last_woken.store(n, Ordering::Release);
        let n = isize::try_from(n).unwrap_or(isize::MAX);
        if self.pending.fetch_add(n, Ordering::AcqRel) + n <= 0 {
            self.drained.notify_one();
        }
    }

    /// A subscriber woken by the fan-out of `generation` ran (or went away).
    pub(crate) fn polled(&self, generation: u64) {
        if self.generation.load(Ordering::Acquire) == generation
            && self.pending.fetch_sub(1, Ordering::AcqRel) == 1
        {
            self.drained.notify_one();
        }
    }

    async fn wait(&self) {
        if self.pending.load(Ordering::Acquire) > 0 {
            self.drained_or_bound().await;
        }
        if self.last_woken.swap(0, Ordering::AcqRel) >= BUSY_WAKES {
            tokio::time::sleep(FLUSH_WINDOW).await;
        }
    }

    async fn drained_or_bound(&self) {
        let _ = tokio::time::timeout(DRAIN_MAX, async {
            loop {
                let drained = self.drained.notified();
                if self.pending.load(Ordering::Acquire) <= 0 {
                    return;
                }
                drained.await;
            }
        })
        .await;
    }
}

/// Retry delays while the log cannot be reached: quick at first, then at
/// most every few seconds.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

pub(crate) async fn run_tail(shared: Arc<Shared>) {
    let mut stopping = shared.stopping.subscribe();
    let mut backoff = BACKOFF_MIN;
    let start = loop {
        tokio::select! {
            opened = shared.log.open() => match opened {
                Ok(last) => break last,
                Err(error) => {
                    if shared.health.disconnected(error.to_string()) {
                        tracing::warn!(%error, "cannot reach the log; retrying");
                    }
                }
            },
            _ = stopping.wait_for(|s| *s) => return,
        }
        if pause(&mut stopping, &mut backoff).await {
            return;
        }
    };
    fill_recent(&shared, start).await;
    shared.health.connected(false);
    shared.fanned_out.send_replace(start);
    shared.health.opened.send_replace(true);
    tracing::debug!(position = start, "tail started");
    let mut tail = shared.log.tail(start);
    backoff = BACKOFF_MIN;
    loop {
        shared.drain.wait().await;
        let event = tokio::select! {
            event = tail.next() => event,
            _ = stopping.wait_for(|s| *s) => return,
        };
        match event {
            Ok(TailEvent::Entries { entries, more }) => {
                fan_out(&shared, &entries);
                if shared.health.connected(more) {
                    tracing::info!("the tail is connected to the log again");
                }
                backoff = BACKOFF_MIN;
            }
            Ok(TailEvent::Idle) => {
                if shared.health.connected(false) {
                    tracing::info!("the tail is connected to the log again");
                }
                backoff = BACKOFF_MIN;
            }
            Ok(TailEvent::Reset { after, reason }) => reset(&shared, after, &reason),
            Err(error) => {
                if shared.health.disconnected(error.to_string()) {
                    tracing::warn!(%error, "the tail lost the log; open streams stay connected and catch up when it returns");
                }
                if pause(&mut stopping, &mut backoff).await {
                    return;
                }
            }
        }
    }
}

/// Sleeps for `backoff` and doubles it; true if the hub stops meanwhile.
async fn pause(stopping: &mut tokio::sync::watch::Receiver<bool>, backoff: &mut Duration) -> bool {
    let delay = *backoff;
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
    tokio::select! {
        () = tokio::time::sleep(delay) => false,
        _ = stopping.wait_for(|s| *s) => true,
    }
}

/// Loads the newest `recent` entries up to `start` into the window and sets
/// the head, so that resumes right after a start read no log.
async fn fill_recent(shared: &Shared, start: u64) {
    let want = shared.config.recent as u64;
    let mut after = start.saturating_sub(want);
    let mut window = crate::hub::Recent::default();
    while after < start {
        let page = match shared.log.read_after(after, crate::hub::PAGE).await {
            Ok(page) => page,
            Err(error) => {
                // The window is an optimisation: resumes read the log.
                tracing::warn!(%error, "cannot load recent history into memory");
                window.clear();
                break;
            }
        };
        let Some(newest) = page.last().map(|e| e.position) else {
            break;
        };
        for entry in page.into_iter().filter(|e| e.position <= start) {
            // The window must hold consecutive positions (pages are found
            // in it by arithmetic): keep only what follows a hole.
            if window
                .entries
                .back()
                .is_some_and(|b: &Arc<Entry>| b.position + 1 != entry.position)
            {
                window.clear();
            }
            window.push(entry);
        }
        window.bound(shared.config.recent, shared.config.recent_bytes);
        after = newest;
    }
    let id = window
        .entries
        .back()
        .filter(|e| e.position == start)
        .map(|e| e.id.clone());
    *shared.index().head() = Head {
        position: start,
        id,
    };
    *shared.recent.write().unwrap_or_else(|e| e.into_inner()) = window;
}

/// Hands committed entries, in log order, to every matching subscriber.
fn fan_out(shared: &Shared, entries: &[Arc<Entry>]) {
    let Some(last) = entries.last() else {
        return;
    };
    {
        let mut recent = shared.recent.write().unwrap_or_else(|e| e.into_inner());
        for entry in entries {
            recent.push(entry.clone());
        }
        recent.bound(shared.config.recent, shared.config.recent_bytes);
    }
    let limits = QueueLimits {
        max_entries: shared.config.subscriber_queue,
        max_bytes: shared.config.subscriber_queue_bytes,
    };
    let (mut delivered, mut lagged) = (0u64, 0u64);
    let mut wakes = Vec::new();
    let generation = shared.drain.begin();
    // The index's read lock is held for a bounded number of offers at a
    // time, so that a subscribe or an unsubscribe (the write lock, on a
    // runtime worker) waits for a slice of the batch, not for all of it: at
    // 100 000 subscribers on one topic a batch of 512 is 51 M offers.
    let chunk = (MAX_OFFERS_PER_LOCK / shared.index().len().max(1)).max(1);
    for part in entries.chunks(chunk) {
        let index = shared.index();
        for entry in part {
            index.for_each_candidate(entry, |subscriber| {
                match subscriber.offer(entry, limits, generation, &mut wakes) {
                    Offer::Queued => delivered += 1,
                    Offer::Lagged => lagged += 1,
                    Offer::Skipped => {}
                }
            });
        }
        // Moved under the index's read lock: a new subscription (which takes
        // the write lock) sees all of this part fanned out or none of it.
        if let Some(last) = part.last() {
            *index.head() = Head {
                position: last.position,
                id: Some(last.id.clone()),
            };
        }
    }
    // Outside the index's lock, once per subscriber for the whole batch.
    shared.drain.woke(wakes.len());
    for waker in wakes {
        waker.wake();
    }
    metrics::counter!("tidings_updates_fanned_out_total").increment(entries.len() as u64);
    metrics::counter!("tidings_deliveries_total").increment(delivered);
    if lagged > 0 {
        metrics::counter!("tidings_slow_subscribers_total").increment(lagged);
    }
    shared.fanned_out.send_replace(last.position);
}

/// The log cannot continue from where this node was: what the node holds is
/// stale. Every subscription ends with the reason, so its client resumes with
/// its `Last-Event-ID` and is told of the gap by the resume.
fn reset(shared: &Shared, after: u64, reason: &str) {
    tracing::warn!(
        reason,
        after,
        "the log was reset under this node; ending every stream so clients resume"
    );
    metrics::counter!("tidings_tail_resets_total").increment(1);
    shared
        .recent
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    *shared
        .reset_reason
        .write()
        .unwrap_or_else(|e| e.into_inner()) = Arc::from(reason.replace(['\r', '\n'], " "));
    {
        let index = shared.index();
        shared
            .resets
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        *index.head() = Head {
            position: after,
            id: None,
        };
        for subscriber in index.subscribers() {
            subscriber.end();
        }
    }
    shared.fanned_out.send_replace(after);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{BUSY_WAKES, DRAIN_MAX, Drain, FLUSH_WINDOW};

    fn pending(future: std::pin::Pin<&mut impl Future>) -> bool {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        future.poll(&mut cx).is_pending()
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_batch_waits_until_every_woken_subscriber_ran() {
        let drain = Drain::default();
        drain.wait().await; // nothing woken: no wait
        let generation = drain.begin();
        // One ran before the fan-out counted its wakes.
        drain.polled(generation);
        drain.woke(3);
        let start = tokio::time::Instant::now();
        let waiting = drain.wait();
        tokio::pin!(waiting);
        assert!(pending(waiting.as_mut()));
        drain.polled(generation);
        assert!(pending(waiting.as_mut()));
        drain.polled(generation);
        waiting.await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_fan_out_is_followed_by_the_flush_window_once() {
        let drain = Drain::default();
        let generation = drain.begin();
        drain.woke(BUSY_WAKES);
        for _ in 0..BUSY_WAKES {
            drain.polled(generation);
        }
        let start = tokio::time::Instant::now();
        drain.wait().await;
        assert_eq!(start.elapsed(), FLUSH_WINDOW);
        let start = tokio::time::Instant::now();
        drain.wait().await;
        assert_eq!(start.elapsed(), Duration::ZERO, "once per busy batch");
        let generation = drain.begin();
        drain.woke(BUSY_WAKES - 1);
        for _ in 0..BUSY_WAKES - 1 {
            drain.polled(generation);
        }
        drain.wait().await;
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "a small fan-out waits for nothing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_subscriber_that_never_runs_delays_a_batch_by_the_bound_only() {
        let drain = Drain::default();
        let stale = drain.begin();
        drain.woke(1);
        let start = tokio::time::Instant::now();
        drain.wait().await;
        assert_eq!(start.elapsed(), DRAIN_MAX);
        // The next fan-out does not wait for it again, nor miscount it
        // when it finally runs.
        let generation = drain.begin();
        drain.woke(1);
        drain.polled(stale);
        let start = tokio::time::Instant::now();
        let waiting = drain.wait();
        tokio::pin!(waiting);
        assert!(pending(waiting.as_mut()));
        drain.polled(generation);
        waiting.await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
