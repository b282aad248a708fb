//! Subscribers and the [`Subscription`] stream.
//!
//! # Delivery, and what happens to a slow subscriber
//!
//! Every update has a position in the hub's one ordered log, and every
//! subscription keeps a cursor: the last position it has passed. The fan-out
//! pushes a pointer to each matching update into a small bounded queue per
//! subscriber. A subscriber that cannot keep up (its queue is full, by count
//! or by bytes) is never waited for and never grows memory: its queue is
//! dropped and it is marked *lagged*. Its stream then reads the log from its
//! cursor in pages (from the in-memory window, else from the log) until it
//! has caught up, and goes back to live delivery, skipping anything at or
//! before its cursor. Resuming with `Last-Event-ID` is the same mechanism:
//! register for live updates first, read history from the resume point,
//! then switch to live. Nothing is lost or sent twice, and order is log order.
//! Only when the slow subscriber falls further behind than the history
//! retains does it miss updates: its stream then ends with a comment saying
//! so (counted and logged), and its client, resuming with its last id, is
//! told of the gap.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_core::Stream;
use tokio::task::JoinHandle;

use crate::error::LogError;
use crate::hub::Shared;
use crate::log::Entry;
use crate::presence::SubscriptionInfo;
use crate::selector::Selector;

/// Bounds of one subscriber's queue of pending updates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    pub(crate) max_entries: usize,
    pub(crate) max_bytes: usize,
}

/// What the fan-out did with an update for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    Queued,
    Lagged,
    Skipped,
}

/// The hub's side of a subscription: what the index and the fan-out hold.
#[derive(Debug)]
pub(crate) struct Subscriber {
    pub(crate) key: u64,
    pub(crate) selectors: Box<[Selector]>,
    /// Selectors of the subscriber's authorization, for private updates;
    /// `None` for anonymous subscribers, who only get public updates.
    pub(crate) authorized: Option<Box<[Selector]>>,
    /// Who subscribed: the id presence shows, when, and the token's payload.
    /// The topics are the selectors' own text, not stored twice.
    pub(crate) subscriber: Box<str>,
    connected_at_ms: u64,
    payload: Option<serde_json::Value>,
    /// Last position offered, to skip an update that several selectors match.
    /// Only the fan-out (one thread) touches it.
    last_offered: AtomicU64,
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    entries: VecDeque<Arc<Entry>>,
    bytes: usize,
    lagged: bool,
    /// Something was queued since the last keep-alive tick.
    active: bool,
    keep_alive: bool,
    closed: bool,
    /// Ended by a reset of the log: the stream says why (the reason is
    /// kept once, in the hub) and ends at once.
    reset: bool,
    /// The fan-out generation that woke it, until it runs (0: none):
    /// counted in the hub's `Drain`, which the tail waits on before the next
    /// batch.
    woken: u64,
    waker: Option<Waker>,
}

impl Queue {
    /// Its subscriber ran (or went away): if the last fan-out had woken it,
    /// it counts as drained.
    fn ran(&mut self, drain: &crate::tail::Drain) {
        let woken = std::mem::take(&mut self.woken);
        if woken != 0 {
            drain.polled(woken);
        }
    }
}

/// What the live queue has for the stream.
enum Live {
    Entry(Arc<Entry>),
    Lagged,
    KeepAlive,
    Closed,
    Reset,
    Pending,
}

impl Subscriber {
    pub(crate) fn new(
        key: u64,
        selectors: Box<[Selector]>,
        authorized: Option<Box<[Selector]>>,
        info: SubscriptionInfo,
    ) -> Subscriber {
        Subscriber {
            key,
            selectors,
            authorized,
            subscriber: info.subscriber.into_boxed_str(),
            connected_at_ms: info.connected_at_ms,
            payload: info.payload,
            last_offered: AtomicU64::new(0),
            queue: Mutex::default(),
        }
    }

    /// The subscription as presence shows it.
    pub(crate) fn info(&self) -> SubscriptionInfo {
        SubscriptionInfo {
            subscriber: self.subscriber.to_string(),
            topics: self
                .selectors
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            match_types: self.selectors.iter().map(|s| s.match_type()).collect(),
            connected_at_ms: self.connected_at_ms,
            payload: self.payload.clone(),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding this lock; if something ever did, the
        // queue's fields are still each valid, so go on rather than cascade.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this subscriber receives `entry`: a selector matches one of its
    /// topics and, for a private update, the authorization matches one too.
    pub(crate) fn wants(&self, entry: &Entry) -> bool {
        any_match(&self.selectors, entry) && (!entry.private || self.authorized_for(entry))
    }

    fn authorized_for(&self, entry: &Entry) -> bool {
        self.authorized
            .as_deref()
            .is_some_and(|selectors| any_match(selectors, entry))
    }

    /// Called by the fan-out, in log order, for every candidate update. The
    /// subscriber's waker, if this offer took it, goes into `wakes`: the
    /// fan-out wakes once per batch, after it, so a subscriber task runs
    /// once for the whole batch rather than racing the fan-out frame by
    /// frame.
    pub(crate) fn offer(
        &self,
        entry: &Arc<Entry>,
        limits: QueueLimits,
        generation: u64,
        wakes: &mut Vec<Waker>,
    ) -> Offer {
        if self.last_offered.load(Ordering::Relaxed) >= entry.position {
            return Offer::Skipped;
        }
        self.last_offered.store(entry.position, Ordering::Relaxed);
        if entry.private && !self.authorized_for(entry) {
            return Offer::Skipped;
        }
        let mut queue = self.queue();
        if queue.closed || queue.lagged {
            // A lagged subscriber will read this update from history.
            return Offer::Skipped;
        }
        queue.active = true;
        let full = queue.entries.len() >= limits.max_entries
            || (!queue.entries.is_empty() && queue.bytes + entry.frame.len() > limits.max_bytes);
        let offer = if full {
            queue.lagged = true;
            queue.entries = VecDeque::new();
            queue.bytes = 0;
            Offer::Lagged
        } else {
            queue.bytes += entry.frame.len();
            queue.entries.push_back(entry.clone());
            Offer::Queued
        };
        if let Some(waker) = queue.waker.take() {
            queue.woken = generation;
            wakes.push(waker);
        }
        offer
    }

    /// Called when its stream is dropped: it counts as drained.
    pub(crate) fn gone(&self, drain: &crate::tail::Drain) {
        self.queue().ran(drain);
    }

    /// Takes queued live entries (if `live`), up to `max` frames in `out`,
    /// under one lock; skips what is at or before `cursor` and moves it.
    /// Leaves the flags (lagged, closed, keep-alive, reset) to
    /// [`Subscriber::poll_live`]. Counts the subscriber drained.
    fn take_live(
        &self,
        out: &mut Vec<Bytes>,
        max: usize,
        cursor: &mut u64,
        drain: &crate::tail::Drain,
        live: bool,
    ) -> usize {
        let mut queue = self.queue();
        queue.ran(drain);
        if !live || queue.reset || queue.lagged {
            return 0;
        }
        let mut taken = 0;
        while taken < max {
            let Some(entry) = queue.entries.pop_front() else {
                break;
            };
            queue.bytes -= entry.frame.len();
            if entry.position > *cursor {
                *cursor = entry.position;
                out.push(entry.frame.clone());
                taken += 1;
            }
        }
        taken
    }

    /// The keep-alive tick: a subscriber that got nothing since the last tick
    /// gets a comment, so proxies and clients see the connection is alive.
    pub(crate) fn tick(&self) {
        let mut queue = self.queue();
        if std::mem::take(&mut queue.active) || !queue.entries.is_empty() {
            return;
        }
        queue.keep_alive = true;
        let waker = queue.waker.take();
        drop(queue);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Ends the subscription once what is queued has been taken.
    pub(crate) fn close(&self) {
        let mut queue = self.queue();
        queue.closed = true;
        let waker = queue.waker.take();
        drop(queue);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Ends the subscription now, dropping what is queued: what this node
    /// holds is stale after a reset of the log.
    pub(crate) fn end(&self) {
        let mut queue = self.queue();
        queue.closed = true;
        queue.reset = true;
        queue.entries = VecDeque::new();
        queue.bytes = 0;
        let waker = queue.waker.take();
        drop(queue);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn is_reset(&self) -> bool {
        self.queue().reset
    }

    fn poll_live(&self, cx: &mut Context<'_>, drain: &crate::tail::Drain) -> Live {
        let mut queue = self.queue();
        queue.ran(drain);
        if queue.reset {
            return Live::Reset;
        }
        if std::mem::take(&mut queue.lagged) {
            return Live::Lagged;
        }
        if let Some(entry) = queue.entries.pop_front() {
            queue.bytes -= entry.frame.len();
            return Live::Entry(entry);
        }
        if queue.closed {
            return Live::Closed;
        }
        if std::mem::take(&mut queue.keep_alive) {
            return Live::KeepAlive;
        }
        match &queue.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => queue.waker = Some(cx.waker().clone()),
        }
        Live::Pending
    }
}

fn any_match(selectors: &[Selector], entry: &Entry) -> bool {
    entry
        .topics
        .iter()
        .any(|topic| selectors.iter().any(|selector| selector.matches(topic)))
}

/// A read of history in progress, in a task of its own.
pub(crate) type PageRead = JoinHandle<Result<Vec<Arc<Entry>>, LogError>>;

/// A live subscription: a [`Stream`] of encoded frames, ready to write to a
/// client as they are (events and keep-alive comments), in log order.
///
/// Dropping it unsubscribes. The stream ends when the hub shuts down, when
/// the log is reset under this node (entries trimmed before the node read
/// them, or the log recreated: a last comment frame says so), or if the
/// history cannot be read while catching up. The client should then
/// reconnect and resume with its last event id.
#[derive(Debug)]
pub struct Subscription {
    pub(crate) shared: Arc<Shared>,
    pub(crate) subscriber: Arc<Subscriber>,
    pub(crate) cursor: u64,
    pub(crate) catching_up: bool,
    pub(crate) reading: Option<PageRead>,
    pub(crate) page: VecDeque<Arc<Entry>>,
    pub(crate) last_event_id: String,
    pub(crate) missed_history: bool,
    pub(crate) ended: bool,
}

impl Subscription {
    /// The id of the last update before the first one this subscription
    /// delivers, or `earliest` when it starts from the beginning of history:
    /// the value of Mercure's `Last-Event-ID` response header.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// True when the requested `Last-Event-ID` is no longer (or never was) in
    /// the history, so the replay starts at the oldest update held and the
    /// client may have missed some.
    pub fn missed_history(&self) -> bool {
        self.missed_history
    }

    /// Who this subscription is, for presence.
    pub fn info(&self) -> SubscriptionInfo {
        self.subscriber.info()
    }

    /// The subscriber's id (`urn:uuid:…` unless the request chose one).
    pub fn subscriber_id(&self) -> &str {
        &self.subscriber.subscriber
    }

    /// Updates queued for this subscription and not yet taken: at most the
    /// hub's `subscriber_queue`, however slow the reader.
    pub fn backlog(&self) -> usize {
        self.subscriber.queue().entries.len()
    }

    /// Ends the subscription after the frames already queued.
    pub fn close(&self) {
        self.subscriber.close();
    }

    /// Takes every frame that is ready now, up to `max`, so a writer can send
    /// them in one vectored write. Returns `Ready(0)` at the end of the
    /// stream, `Pending` (with the waker registered) when none is ready.
    pub fn poll_frames(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Bytes>,
        max: usize,
    ) -> Poll<usize> {
        // Live delivery, the common case: every queued frame in one lock.
        // Called in every case, to count this subscriber drained.
        let live =
            !self.ended && !self.catching_up && self.reading.is_none() && self.page.is_empty();
        let (shared, subscriber) = (&self.shared, &self.subscriber);
        let mut taken = subscriber.take_live(out, max, &mut self.cursor, &shared.drain, live);
        while taken < max {
            match Pin::new(&mut *self).poll_next(cx) {
                Poll::Ready(Some(frame)) => {
                    out.push(frame);
                    taken += 1;
                }
                Poll::Ready(None) => return Poll::Ready(taken),
                Poll::Pending if taken > 0 => return Poll::Ready(taken),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(taken)
    }

    /// The next frame from a history page that this subscriber wants.
    fn next_from_page(&mut self) -> Option<Bytes> {
        while let Some(entry) = self.page.pop_front() {
            if entry.position <= self.cursor {
                continue;
            }
            if entry.position > self.cursor + 1 {
                // Retention evicted updates this subscriber had not read. Go
                // on and it would never know; end the stream saying so, and
                // the client's resume is told of the gap (its last id is
                // gone from history too).
                self.shared
                    .history_gap(self.subscriber.key, self.cursor, entry.position);
                let frame = format!(
                    ": this stream fell behind the history: updates {}..={} are gone; reconnect with Last-Event-ID to resume\n\n",
                    self.cursor + 1,
                    entry.position - 1
                );
                self.page.clear();
                self.catching_up = false;
                self.ended = true;
                return Some(Bytes::from(frame));
            }
            self.cursor = entry.position;
            if self.subscriber.wants(&entry) {
                return Some(entry.frame.clone());
            }
        }
        None
    }
}

impl Stream for Subscription {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = self.get_mut();
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            if let Some(frame) = this.next_from_page() {
                return Poll::Ready(Some(frame));
            }
            if let Some(read) = &mut this.reading {
                let result = std::task::ready!(Pin::new(read).poll(cx));
                this.reading = None;
                match result
                    .map_err(|e| LogError::Io(e.to_string()))
                    .and_then(|r| r)
                {
                    Ok(entries) => this.accept_page(entries),
                    Err(error) => {
                        tracing::error!(%error, subscriber = %this.subscriber.subscriber, "cannot read history; ending the subscription so the client resumes");
                        this.ended = true;
                    }
                }
                continue;
            }
            if this.catching_up {
                if this.subscriber.is_reset() {
                    this.catching_up = false;
                    continue;
                }
                match this.shared.read_page(this.cursor) {
                    Ok(entries) => this.accept_page(entries),
                    Err(read) => this.reading = Some(read),
                }
                continue;
            }
            match this.subscriber.poll_live(cx, &this.shared.drain) {
                Live::Entry(entry) => {
                    if entry.position > this.cursor {
                        this.cursor = entry.position;
                        return Poll::Ready(Some(entry.frame.clone()));
                    }
                }
                Live::Lagged => {
                    this.shared.lagged();
                    this.catching_up = true;
                }
                Live::KeepAlive => {
                    return Poll::Ready(Some(Bytes::from_static(tidings_codec::KEEP_ALIVE)));
                }
                Live::Closed => this.ended = true,
                Live::Reset => {
                    this.ended = true;
                    return Poll::Ready(Some(this.shared.reset_frame()));
                }
                Live::Pending => return Poll::Pending,
            }
        }
    }
}

impl Subscription {
    fn accept_page(&mut self, entries: Vec<Arc<Entry>>) {
        // A page read while the log was reset under this node may belong to
        // another history: drop it, and let the stream end with the reason.
        if entries.len() < crate::hub::PAGE || self.subscriber.is_reset() {
            self.catching_up = false;
        }
        if !self.subscriber.is_reset() {
            self.page = entries.into();
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(read) = self.reading.take() {
            read.abort();
        }
        self.shared.unsubscribe(&self.subscriber);
    }
}
