//! [`Hub`]: publish, subscribe, and the handles on the hub's three loops (the
//! writer, the tail, the ticker).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Error, Result};
use crate::health::Health;
use crate::log::{Entry, Log, MemoryLog, Retention};
use crate::presence::{LocalPresence, Presence, SubscriptionInfo};
use crate::selector::{Matcher, Selector, SelectorCache};
use crate::subscription::{PageRead, Subscriber, Subscription};
use crate::topic::TopicIndex;
use crate::update::{EventId, Update};
use crate::writer::{self, Pending};

/// Entries read from history at a time when catching up: bounds the memory a
/// catching-up subscriber holds.
pub(crate) const PAGE: usize = 64;

/// How the hub behaves. Every field documents its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Interval of keep-alive comments on idle subscriptions. Default: 15 s.
    pub keep_alive: Duration,
    /// Updates a subscriber may have queued before it counts as slow and
    /// switches to catching up from history. Default: 256.
    pub subscriber_queue: usize,
    /// Bytes a subscriber may have queued before it counts as slow.
    /// Default: 1 MiB.
    pub subscriber_queue_bytes: usize,
    /// Most recent updates kept in memory, so that slow and resuming
    /// subscribers catch up without reading the log. Default: 4096.
    pub recent: usize,
    /// Bytes those recent updates may take (their [`Entry::size`]); the
    /// oldest go first when either bound is hit. Default: 64 MiB.
    pub recent_bytes: usize,
    /// Publishes waiting for the writer before `publish` waits: back-pressure
    /// that keeps publishers from running far ahead of the log. Default: 1024.
    pub publish_queue: usize,
    /// The longest a publish waits for the log to accept it (and a
    /// subscription for the log to be reached at start); after it, the
    /// publish fails with [`Error::Timeout`]. Default: 5 s.
    pub publish_timeout: Duration,
    /// Publish a private update on `/.well-known/mercure/subscriptions/…` when
    /// a subscription starts or ends. Default: off.
    pub presence: bool,
    /// The hub's URL (its Mercure endpoint): draft-08 URL patterns, and the
    /// topics they are matched against, resolve against it when relative.
    /// Default: none (relative URL patterns are refused).
    pub base_url: Option<url::Url>,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            keep_alive: Duration::from_secs(15),
            subscriber_queue: 256,
            subscriber_queue_bytes: 1 << 20,
            recent: 4096,
            recent_bytes: 64 << 20,
            publish_queue: 1024,
            publish_timeout: Duration::from_secs(5),
            presence: false,
            base_url: None,
        }
    }
}

/// Where a subscription starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRequest {
    /// What to receive: draft-07 topic selectors (`*`, exact topics, URI
    /// templates) and draft-08 matchers (exact, URL patterns), in any mix;
    /// an update matching any of them is delivered.
    pub selectors: Vec<Matcher>,
    /// Resume after this event id; `earliest` replays all history.
    pub last_event_id: Option<String>,
    /// The subscriber's authorization for private updates (a token's
    /// `mercure.subscribe` selectors, or its draft-08 subscribe grants);
    /// `None` receives public updates only.
    pub authorized: Option<Vec<Matcher>>,
    /// The subscriber's id for presence; generated (`urn:uuid:…`) when `None`.
    pub subscriber: Option<String>,
    /// Data about the subscriber shown by presence (a token's `payload`).
    pub payload: Option<serde_json::Value>,
}

impl SubscribeRequest {
    /// Public updates on these selectors (strings are draft-07 topic
    /// selectors), from now on.
    pub fn new<S: Into<Matcher>>(selectors: impl IntoIterator<Item = S>) -> SubscribeRequest {
        SubscribeRequest {
            selectors: selectors.into_iter().map(Into::into).collect(),
            last_event_id: None,
            authorized: None,
            subscriber: None,
            payload: None,
        }
    }

    /// Resume after `id` (or from the start of history with `earliest`).
    #[must_use]
    pub fn last_event_id(mut self, id: impl Into<String>) -> SubscribeRequest {
        self.last_event_id = Some(id.into());
        self
    }

    /// Also receive private updates on topics these selectors match.
    #[must_use]
    pub fn authorized<S: Into<Matcher>>(
        mut self,
        selectors: impl IntoIterator<Item = S>,
    ) -> SubscribeRequest {
        self.authorized = Some(selectors.into_iter().map(Into::into).collect());
        self
    }
}

/// The hub: an ordered log of updates and their fan-out to this node's
/// subscribers. Cheap to clone; every clone is the same hub.
///
/// Needs a Tokio runtime. The writer is a task; the tail loop, which fans
/// out, runs on a thread of its own so that its wake-ups of thousands of
/// subscriber tasks spread over every worker (see `tail.rs`), or on a
/// current-thread runtime as one of its tasks.
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    writer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    tail: std::sync::Mutex<Option<TailLoop>>,
}

/// Where the tail loop runs.
#[derive(Debug)]
enum TailLoop {
    Thread(std::thread::JoinHandle<()>),
    Task(tokio::task::JoinHandle<()>),
}

/// What the loops, the subscriptions and the hub handles share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) log: Arc<dyn Log>,
    pub(crate) presence: Arc<dyn Presence>,
    pub(crate) config: HubConfig,
    pub(crate) index: RwLock<TopicIndex>,
    /// The newest updates fanned out, consecutive positions, at most
    /// `config.recent` and `config.recent_bytes`. Owned by the tail loop.
    pub(crate) recent: RwLock<Recent>,
    pub(crate) health: Health,
    /// The position the tail loop has fanned out up to.
    pub(crate) fanned_out: watch::Sender<u64>,
    /// Resets of the log so far: a subscription resolved before a reset
    /// resolves again. Moved under the index's read lock, checked under its
    /// write lock.
    pub(crate) resets: AtomicU64,
    /// Why the log was last reset under this node, for the frame that ends
    /// each stream.
    pub(crate) reset_reason: RwLock<Arc<str>>,
    /// Set once to stop the tail loop and the ticker.
    pub(crate) stopping: watch::Sender<bool>,
    /// Subscribers the last fan-out woke that have not run yet.
    pub(crate) drain: crate::tail::Drain,
    selectors: SelectorCache,
    next_key: AtomicU64,
    /// The writer's queue; taken on shutdown, which stops the writer.
    publish_tx: RwLock<Option<mpsc::Sender<Pending>>>,
}

impl Hub {
    /// A hub with history in memory (lost on exit) and default settings.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn in_memory() -> Hub {
        Hub::new(MemoryLog::new(Retention::default()), HubConfig::default())
            .expect("a memory hub starts")
    }

    /// A hub alone on `log`, continuing it where it ended.
    ///
    /// # Errors
    /// If the hub's thread cannot be started.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn new(log: impl Log, config: HubConfig) -> Result<Hub> {
        Hub::with_presence(log, LocalPresence, config)
    }

    /// A hub on `log` that keeps presence in `presence`: one node of a
    /// cluster when both are shared with other nodes. Returns at once; the
    /// tail loop connects in the background, retrying with backoff, and the
    /// hub is not [ready](Hub::ready) until it has.
    ///
    /// # Errors
    /// If the hub's thread cannot be started.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn with_presence(
        log: impl Log,
        presence: impl Presence,
        mut config: HubConfig,
    ) -> Result<Hub> {
        // A queue of zero would mark every subscriber slow at every update,
        // and a zero interval cannot tick.
        config.subscriber_queue = config.subscriber_queue.max(1);
        config.keep_alive = config.keep_alive.max(Duration::from_millis(1));
        config.publish_timeout = config.publish_timeout.max(Duration::from_millis(1));
        let runtime = tokio::runtime::Handle::current();
        let (tx, rx) = mpsc::channel(config.publish_queue.max(1));
        let shared = Arc::new(Shared {
            log: Arc::new(log),
            presence: Arc::new(presence),
            config,
            index: RwLock::new(TopicIndex::default()),
            recent: RwLock::new(Recent::default()),
            health: Health::default(),
            fanned_out: watch::Sender::new(0),
            resets: AtomicU64::new(0),
            reset_reason: RwLock::new(Arc::from("the log was reset")),
            stopping: watch::Sender::new(false),
            drain: crate::tail::Drain::default(),
            selectors: SelectorCache::default(),
            next_key: AtomicU64::new(1),
            publish_tx: RwLock::new(Some(tx)),
        });
        let tail = {
            // The keep-alive tick walks every subscriber: it shares the
            // tail's thread rather than holding up a runtime worker.
            let (weak, period) = (Arc::downgrade(&shared), shared.config.keep_alive);
            let shared = shared.clone();
            let loops = async move {
                tokio::join!(
                    crate::tail::run_tail(shared),
                    writer::every(weak, period, writer::keep_alive)
                );
            };
            // A thread spreads the fan-out's wakes over the runtime's
            // workers (see `tail.rs`). A current-thread runtime has one
            // worker, so there is nothing to spread: the tail is its task,
            // and its clock (paused in tests) governs the tail too.
            if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
                TailLoop::Task(runtime.spawn(loops))
            } else {
                let thread = std::thread::Builder::new()
                    .name("tidings-tail".into())
                    .spawn(move || runtime.block_on(loops))
                    .map_err(|e| {
                        Error::Log(crate::LogError::Io(format!(
                            "cannot start the tail thread: {e}"
                        )))
                    })?;
                TailLoop::Thread(thread)
            }
        };
        let writer = tokio::spawn(writer::run_writer(shared.clone(), rx));
        let (weak, period) = (Arc::downgrade(&shared), shared.config.keep_alive);
        tokio::spawn(writer::every(weak.clone(), period, writer::tidy));
        if shared.config.presence {
            tokio::spawn(writer::every(weak, writer::REAP_INTERVAL, writer::reap));
        }
        Ok(Hub {
            inner: Arc::new(Inner {
                shared,
                writer: std::sync::Mutex::new(Some(writer)),
                tail: std::sync::Mutex::new(Some(tail)),
            }),
        })
    }

    /// Publishes `update` and returns its id once the log has accepted it
    /// (stored it: on disk for [`RedbLog`](crate::RedbLog), in Redis for
    /// the cluster). Fan-out follows, on every node, from the log's tail.
    ///
    /// Cancel-safe in the sense that dropping the future never corrupts the
    /// log; the update may or may not have been published.
    ///
    /// # Errors
    /// [`Error::InvalidUpdate`] or [`Error::DuplicateId`] for bad input,
    /// [`Error::Log`] when the log refused the update or could not be
    /// reached (nothing is stored then), [`Error::Unconfirmed`] or
    /// [`Error::Timeout`] when it failed or did not answer within
    /// [`HubConfig::publish_timeout`] while the update was on its way (it may
    /// be stored: publish again with the same id), [`Error::Closed`] after
    /// shutdown.
    pub async fn publish(&self, update: Update) -> Result<EventId> {
        let (ack, acked) = oneshot::channel();
        let deadline = self.inner.shared.enqueue(update, Some(ack)).await?;
        // The writer answers by the deadline unless the log holds the whole
        // batch up; the publisher never waits longer than its own deadline.
        match tokio::time::timeout_at(deadline, acked).await {
            Ok(answer) => answer.map_err(|_| Error::Closed)?,
            Err(_) => Err(Error::Timeout(self.inner.shared.config.publish_timeout)),
        }
    }

    /// Subscribes. The subscription is registered for live updates before
    /// history is replayed, so nothing published meanwhile is lost.
    ///
    /// # Errors
    /// [`Error::NoSelector`] without selectors, [`Error::Log`] if the resume
    /// point cannot be looked up or the log has not been reached yet,
    /// [`Error::Closed`] after shutdown.
    pub async fn subscribe(&self, request: SubscribeRequest) -> Result<Subscription> {
        let shared = &self.inner.shared;
        if request.selectors.is_empty() {
            return Err(Error::NoSelector);
        }
        if shared.is_closed() {
            return Err(Error::Closed);
        }
        shared.wait_opened().await?;
        let compile = |list: &[Matcher]| -> Result<Box<[Selector]>> {
            list.iter().map(|m| self.matcher(m)).collect()
        };
        let selectors = compile(&request.selectors)?;
        let authorized = request.authorized.as_deref().map(compile).transpose()?;
        let info = SubscriptionInfo {
            subscriber: request
                .subscriber
                .unwrap_or_else(|| format!("urn:uuid:{}", uuid::Uuid::now_v7())),
            topics: request.selectors.iter().map(|m| m.value.clone()).collect(),
            match_types: request.selectors.iter().map(|m| m.match_type).collect(),
            connected_at_ms: now_ms(),
            payload: request.payload,
        };
        let subscriber = Arc::new(Subscriber::new(
            shared.next_key.fetch_add(1, Ordering::Relaxed),
            selectors,
            authorized,
            info,
        ));
        let mut attempts = 0;
        let (cursor, last_event_id, missed_history, catching_up) = loop {
            // Resolve the resume point before registering (a lookup may
            // wait), then register only if the log was not reset meanwhile:
            // a position resolved before a reset means nothing after it.
            let generation = shared.resets.load(Ordering::Acquire);
            let resume = match request.last_event_id.as_deref() {
                None => None,
                Some(id) => Some(shared.resolve(id).await?),
            };
            let mut index = shared.index_mut();
            if shared.resets.load(Ordering::Acquire) != generation {
                drop(index);
                attempts += 1;
                if attempts == 3 {
                    return Err(Error::NotReady(
                        "the log keeps being reset under this node".into(),
                    ));
                }
                continue;
            }
            index.insert(&subscriber);
            metrics::gauge!("tidings_subscribers").set(index.len() as f64);
            let head = index.head().clone();
            let (cursor, last_event_id, missed) = match resume {
                None => (
                    head.position,
                    head.id.as_deref().unwrap_or("earliest").to_owned(),
                    false,
                ),
                Some(Resume::After(position, id)) => (position, id, false),
                Some(Resume::Start {
                    before_first,
                    missed,
                }) => (before_first, "earliest".to_owned(), missed),
            };
            break (cursor, last_event_id, missed, cursor < head.position);
        };
        // From here on dropping the subscription unregisters it, also when
        // this future is dropped while announcing.
        let subscription = Subscription {
            shared: shared.clone(),
            subscriber,
            cursor,
            catching_up,
            reading: None,
            page: VecDeque::new(),
            last_event_id,
            missed_history,
            ended: false,
        };
        if shared.config.presence {
            let info = subscription.subscriber.info();
            shared.presence.joined(subscription.subscriber.key, &info);
            shared.announce(&info, true).await;
        }
        Ok(subscription)
    }

    /// The active subscriptions of the whole hub (every node of a cluster),
    /// for presence.
    ///
    /// # Errors
    /// When the other nodes' subscriptions cannot be read.
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionInfo>> {
        let mut list = self.local_subscriptions();
        list.extend(self.inner.shared.presence.others().await?);
        Ok(list)
    }

    /// The active subscriptions of this node only.
    pub fn local_subscriptions(&self) -> Vec<SubscriptionInfo> {
        self.inner
            .shared
            .index()
            .subscribers()
            .map(|s| s.info())
            .collect()
    }

    /// `text` compiled as a topic selector, from the hub's cache of compiled
    /// URI templates (the ones its subscriptions use): an authorization
    /// checked on every publish compiles its templates once, not per request.
    pub fn selector(&self, text: &str) -> Selector {
        self.inner.shared.selectors.get_or_compile(text)
    }

    /// `matcher` compiled, from the hub's cache, URL patterns against the
    /// hub's URL: for draft-08 grants checked on every publish.
    ///
    /// # Errors
    /// [`Error::InvalidSelector`] for a URL pattern that does not compile.
    pub fn matcher(&self, matcher: &Matcher) -> Result<Selector> {
        let shared = &self.inner.shared;
        shared
            .selectors
            .get_or_compile_matcher(matcher, shared.config.base_url.as_ref())
            .map_err(|e| Error::InvalidSelector(format!("{:?}: {e}", matcher.value)))
    }

    /// The id of the newest update fanned out, or `earliest` when there is
    /// none: the `lastEventID` of Mercure's subscription API.
    pub fn last_event_id(&self) -> String {
        let index = self.inner.shared.index();
        let head = index.head();
        head.id.as_deref().unwrap_or("earliest").to_owned()
    }

    /// Whether this node can serve: its tail reached the log, is connected
    /// and caught up, and the log accepts writes (for readiness probes).
    ///
    /// # Errors
    /// [`Error::NotReady`] saying why not.
    pub async fn ready(&self) -> Result<()> {
        let shared = &self.inner.shared;
        // Just after start the tail may be a moment from opening the log; a
        // probe then waits that moment rather than failing, but no longer:
        // probes have short timeouts of their own.
        let mut opened = shared.health.opened.subscribe();
        let _ = tokio::time::timeout(Duration::from_millis(250), opened.wait_for(|o| *o)).await;
        shared.health.tail_ready().map_err(Error::NotReady)?;
        match tokio::time::timeout(shared.config.publish_timeout, shared.log.check()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Error::NotReady(format!("cannot publish: {error}"))),
            Err(_) => Err(Error::NotReady(format!(
                "cannot publish: the log did not answer within {:?}",
                shared.config.publish_timeout
            ))),
        }
    }

    /// What the log's engine says of itself: the servers reached and their
    /// quorum (for readiness probes and operators).
    ///
    /// # Errors
    /// When the log cannot be asked.
    pub async fn log_status(&self) -> Result<crate::log::LogStatus> {
        let shared = &self.inner.shared;
        match tokio::time::timeout(shared.config.publish_timeout, shared.log.status()).await {
            Ok(status) => Ok(status?),
            Err(_) => Err(Error::Timeout(shared.config.publish_timeout)),
        }
    }

    /// Waits until this node has fanned out every update the log held when
    /// called: after it, a new subscription starts after those updates.
    ///
    /// # Errors
    /// If the log cannot be read.
    pub async fn caught_up(&self) -> Result<()> {
        let shared = &self.inner.shared;
        let last = shared.log.stats().await?.last_position;
        let mut fanned_out = shared.fanned_out.subscribe();
        fanned_out
            .wait_for(|position| *position >= last)
            .await
            .map(drop)
            .map_err(|_| Error::Closed)
    }

    /// Stops accepting publishes, lets the writer store what it has and the
    /// tail fan it out, and ends every subscription after the frames already
    /// queued for it.
    pub async fn shutdown(&self) {
        let shared = self.inner.shared.clone();
        shared.close_queue();
        let writer = self.inner.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            let _ = writer.await;
        }
        // Give the tail a moment to fan out what the writer stored.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.caught_up()).await;
        shared.stopping.send_replace(true);
        let tail = self.inner.tail.lock().ok().and_then(|mut t| t.take());
        match tail {
            Some(TailLoop::Thread(thread)) => {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
            Some(TailLoop::Task(task)) => {
                let _ = task.await;
            }
            None => {}
        }
        for subscriber in shared.index().subscribers() {
            subscriber.close();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: stop the loops (subscriptions still open
        // end after what is queued for them).
        self.shared.close_queue();
        self.shared.stopping.send_replace(true);
    }
}

/// The recent window: consecutive entries and the bytes they count for.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    pub(crate) entries: VecDeque<Arc<Entry>>,
    bytes: u64,
}

impl Recent {
    pub(crate) fn push(&mut self, entry: Arc<Entry>) {
        self.bytes += entry.size();
        self.entries.push_back(entry);
    }

    /// Drops the oldest entries beyond `count` entries or `bytes` bytes.
    pub(crate) fn bound(&mut self, count: usize, bytes: usize) {
        while self.entries.len() > count || (self.bytes > bytes as u64 && !self.entries.is_empty())
        {
            if let Some(oldest) = self.entries.pop_front() {
                self.bytes -= oldest.size();
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

/// A resolved `Last-Event-ID`.
enum Resume {
    /// Found: continue after this position; the id is echoed back.
    After(u64, String),
    /// `earliest`, or an id no longer held: replay from the oldest held.
    Start { before_first: u64, missed: bool },
}

impl Shared {
    pub(crate) fn index(&self) -> RwLockReadGuard<'_, TopicIndex> {
        // No code panics while holding it; recover rather than cascade.
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn index_mut(&self) -> RwLockWriteGuard<'_, TopicIndex> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    fn sender(&self) -> Option<mpsc::Sender<Pending>> {
        self.publish_tx
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn is_closed(&self) -> bool {
        self.publish_tx
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    fn close_queue(&self) {
        self.publish_tx
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// Waits (at most the publish timeout) until the tail loop has reached
    /// the log and set the head.
    async fn wait_opened(&self) -> Result<()> {
        let mut opened = self.health.opened.subscribe();
        if *opened.borrow() {
            return Ok(());
        }
        match tokio::time::timeout(self.config.publish_timeout, opened.wait_for(|o| *o)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::NotReady(self.health.opening_error())),
        }
    }

    /// Queues a publish for the writer; returns its deadline.
    async fn enqueue(
        &self,
        update: Update,
        ack: Option<oneshot::Sender<Result<EventId>>>,
    ) -> Result<tokio::time::Instant> {
        let entry = update.into_entry(now_ms())?;
        let timeout = self.config.publish_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let tx = self.sender().ok_or(Error::Closed)?;
        let pending = Pending {
            entry,
            deadline,
            ack,
        };
        match tokio::time::timeout_at(deadline, tx.send(pending)).await {
            Ok(Ok(())) => Ok(deadline),
            Ok(Err(_)) => Err(Error::Closed),
            // Never queued, so certainly not stored.
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    async fn resolve(&self, id: &str) -> Result<Resume> {
        // No update has an empty id, so for `earliest` this asks the log
        // for its bounds only.
        let located = self
            .log
            .locate(if id == "earliest" { "" } else { id })
            .await?;
        Ok(match located.position {
            Some(position) if id != "earliest" => Resume::After(position, id.to_owned()),
            _ => Resume::Start {
                before_first: located.before_first(),
                missed: id != "earliest",
            },
        })
    }

    /// Up to [`PAGE`] entries after `after`: at once from the in-memory
    /// window when it covers them, else a read of the log in a task.
    pub(crate) fn read_page(
        self: &Arc<Self>,
        after: u64,
    ) -> std::result::Result<Vec<Arc<Entry>>, PageRead> {
        {
            let recent = self.recent.read().unwrap_or_else(|e| e.into_inner());
            // An empty window says nothing (it may hold no entries at all,
            // with `recent: 0`): only a window that reaches back far enough
            // answers.
            match recent.entries.front() {
                Some(first) if first.position <= after + 1 => {
                    let start = (after + 1 - first.position) as usize;
                    return Ok(recent
                        .entries
                        .iter()
                        .skip(start)
                        .take(PAGE)
                        .cloned()
                        .collect());
                }
                _ => {}
            }
        }
        let shared = self.clone();
        Err(tokio::spawn(async move {
            shared.log.read_after(after, PAGE).await
        }))
    }

    pub(crate) fn unsubscribe(&self, subscriber: &Arc<Subscriber>) {
        subscriber.gone(&self.drain);
        let remaining = {
            let mut index = self.index_mut();
            index.remove(subscriber);
            index.len()
        };
        metrics::gauge!("tidings_subscribers").set(remaining as f64);
        if self.config.presence {
            self.presence.left(subscriber.key);
            self.announce_now(&subscriber.info(), false);
        }
    }

    /// Queues presence announcements, waiting for room in the queue.
    pub(crate) async fn announce(&self, info: &SubscriptionInfo, active: bool) {
        for update in presence_updates(info, active) {
            if let Err(error) = self.enqueue(update, None).await {
                tracing::warn!(%error, subscriber = %info.subscriber, "cannot announce subscription");
            }
        }
    }

    /// Queues presence announcements if there is room (`Drop` cannot wait).
    fn announce_now(&self, info: &SubscriptionInfo, active: bool) {
        let Some(tx) = self.sender() else {
            return;
        };
        for update in presence_updates(info, active) {
            let Ok(entry) = update.into_entry(now_ms()) else {
                continue;
            };
            let pending = Pending {
                entry,
                deadline: tokio::time::Instant::now() + self.config.publish_timeout,
                ack: None,
            };
            if tx.try_send(pending).is_err() {
                tracing::warn!(subscriber = %info.subscriber, "publish queue full; unsubscribe not announced");
            }
        }
    }

    /// The last frame of a stream ended by a reset of the log: a comment, so
    /// that it changes nothing for an `EventSource` but a person reading the
    /// stream sees why it ends.
    pub(crate) fn reset_frame(&self) -> bytes::Bytes {
        let reason = self
            .reset_reason
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        bytes::Bytes::from(format!(
            ": {reason}; reconnect with Last-Event-ID to resume\n\n"
        ))
    }

    pub(crate) fn lagged(&self) {
        metrics::counter!("tidings_slow_subscriber_catchups_total").increment(1);
    }

    pub(crate) fn history_gap(&self, key: u64, cursor: u64, next: u64) {
        metrics::counter!("tidings_history_gaps_total").increment(1);
        tracing::warn!(
            subscriber = key,
            missed = next - cursor - 1,
            "a slow subscriber fell behind the retained history; its stream ends so that it resumes and is told"
        );
    }
}

/// A subscription's events, each in its selector's draft: draft-07's
/// JSON-LD as type `Subscription`, draft-08's plain JSON as type `mercure`.
fn presence_updates(info: &SubscriptionInfo, active: bool) -> impl Iterator<Item = Update> + '_ {
    info.selectors().map(move |(match_type, selector)| {
        let event_type = match match_type {
            crate::MatchType::Topic => "Subscription",
            _ => "mercure",
        };
        Update::new(
            info.event_topic(match_type, selector),
            info.document(match_type, selector, active).to_string(),
        )
        .event_type(event_type)
        .private(true)
    })
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Recent;
    use crate::Update;

    #[test]
    fn the_recent_window_is_bounded_by_bytes_as_well_as_count() {
        let mut recent = Recent::default();
        for i in 0..10u64 {
            let mut entry = Update::new("t", "x".repeat(4096))
                .id(i.to_string())
                .into_entry(0)
                .unwrap();
            entry.position = i + 1;
            recent.push(Arc::new(entry));
        }
        let size = recent.entries[0].size();
        recent.bound(100, (3 * size) as usize);
        let kept: Vec<u64> = recent.entries.iter().map(|e| e.position).collect();
        assert_eq!(kept, [8, 9, 10], "the newest that fit in the bytes");
        recent.bound(2, usize::MAX);
        assert_eq!(recent.entries.len(), 2);
        assert_eq!(recent.bytes, 2 * size);
    }
}
