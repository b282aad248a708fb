//! [`Hub`]: publish, subscribe, and the writer that orders, stores and fans out.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result, StoreError};
use crate::presence::SubscriptionInfo;
use crate::selector::{Selector, SelectorCache};
use crate::store::{Entry, MemoryStore, Retention, Store};
use crate::subscription::{PageRead, Subscriber, Subscription};
use crate::topic::{Head, TopicIndex};
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
    /// subscribers catch up without reading the store. Default: 4096.
    pub recent: usize,
    /// Publishes waiting for the writer before `publish` waits: back-pressure
    /// that keeps publishers from running far ahead of fan-out. Default: 1024.
    pub publish_queue: usize,
    /// Publish a private update on `/.well-known/mercure/subscriptions/…` when
    /// a subscription starts or ends. Default: off.
    pub presence: bool,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            keep_alive: Duration::from_secs(15),
            subscriber_queue: 256,
            subscriber_queue_bytes: 1 << 20,
            recent: 4096,
            publish_queue: 1024,
            presence: false,
        }
    }
}

/// Where a subscription starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRequest {
    /// Topic selectors: `*`, exact topics, or URI templates.
    pub selectors: Vec<String>,
    /// Resume after this event id; `earliest` replays all history.
    pub last_event_id: Option<String>,
    /// The subscriber's authorization for private updates (a token's
    /// `mercure.subscribe` selectors); `None` receives public updates only.
    pub authorized: Option<Vec<String>>,
    /// The subscriber's id for presence; generated (`urn:uuid:…`) when `None`.
    pub subscriber: Option<String>,
    /// Data about the subscriber shown by presence (a token's `payload`).
    pub payload: Option<serde_json::Value>,
}

impl SubscribeRequest {
    /// Public updates on these selectors, from now on.
    pub fn new<S: Into<String>>(selectors: impl IntoIterator<Item = S>) -> SubscribeRequest {
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
    pub fn authorized<S: Into<String>>(
        mut self,
        selectors: impl IntoIterator<Item = S>,
    ) -> SubscribeRequest {
        self.authorized = Some(selectors.into_iter().map(Into::into).collect());
        self
    }
}

/// The hub: an ordered, stored log of updates and their fan-out to
/// subscribers. Cheap to clone; every clone is the same hub.
///
/// Needs a Tokio runtime (for keep-alives and history reads); the writer runs
/// on a thread of its own so that store commits never block async tasks.
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
}

/// What the writer, the subscriptions and the hub handles share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: HubConfig,
    pub(crate) index: RwLock<TopicIndex>,
    /// The newest updates, consecutive positions, at most `config.recent`.
    pub(crate) recent: RwLock<VecDeque<Arc<Entry>>>,
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
        Hub::new(MemoryStore::new(Retention::default()), HubConfig::default())
            .expect("a memory store cannot fail to open")
    }

    /// A hub over `store`, continuing its log where it ended.
    ///
    /// # Errors
    /// If the store cannot be read.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn new(store: impl Store, mut config: HubConfig) -> Result<Hub> {
        // A queue of zero would mark every subscriber slow at every update.
        config.subscriber_queue = config.subscriber_queue.max(1);
        let store: Arc<dyn Store> = Arc::new(store);
        let stats = store.stats()?;
        let index = TopicIndex::default();
        let recent_start = stats.last_position.saturating_sub(config.recent as u64);
        let recent: VecDeque<_> = store.read_after(recent_start, config.recent)?.into();
        *index.head() = Head {
            position: stats.last_position,
            id: recent.back().map(|e| e.id.clone()),
        };
        let (tx, rx) = mpsc::channel(config.publish_queue.max(1));
        let shared = Arc::new(Shared {
            store,
            config,
            index: RwLock::new(index),
            recent: RwLock::new(recent),
            selectors: SelectorCache::default(),
            next_key: AtomicU64::new(1),
            publish_tx: RwLock::new(Some(tx)),
        });
        let writer = {
            let shared = shared.clone();
            let next_position = stats.last_position + 1;
            std::thread::Builder::new()
                .name("tidings-writer".into())
                .spawn(move || writer::run_writer(&shared, rx, next_position))
                .map_err(|e| StoreError::Io(format!("cannot start the writer thread: {e}")))?
        };
        tokio::spawn(writer::run_ticker(Arc::downgrade(&shared)));
        metrics::gauge!("tidings_history_updates").set(stats.count as f64);
        metrics::gauge!("tidings_history_bytes").set(stats.bytes as f64);
        Ok(Hub {
            inner: Arc::new(Inner {
                shared,
                writer: std::sync::Mutex::new(Some(writer)),
            }),
        })
    }

    /// Publishes `update` and returns its id once the store has accepted it
    /// and it has been handed to every matching subscriber.
    ///
    /// Cancel-safe in the sense that dropping the future never corrupts the
    /// log; the update may or may not have been published.
    ///
    /// # Errors
    /// [`Error::InvalidUpdate`] or [`Error::DuplicateId`] for bad input,
    /// [`Error::Store`] when history cannot be written (nothing is
    /// published then), [`Error::Closed`] after shutdown.
    pub async fn publish(&self, update: Update) -> Result<EventId> {
        let (ack, acked) = oneshot::channel();
        self.inner.shared.enqueue(update, Some(ack)).await?;
        acked.await.map_err(|_| Error::Closed)?
    }

    /// Subscribes. The subscription is registered for live updates before
    /// history is replayed, so nothing published meanwhile is lost.
    ///
    /// # Errors
    /// [`Error::NoSelector`] without selectors, [`Error::Store`] if the
    /// resume point cannot be looked up, [`Error::Closed`] after shutdown.
    pub async fn subscribe(&self, request: SubscribeRequest) -> Result<Subscription> {
        let shared = &self.inner.shared;
        if request.selectors.is_empty() {
            return Err(Error::NoSelector);
        }
        if shared
            .publish_tx
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
        {
            return Err(Error::Closed);
        }
        // Resolve the resume point before registering: a lookup may block.
        let resume = match request.last_event_id.as_deref() {
            None => None,
            Some(id) => Some(shared.resolve(id).await?),
        };
        let compile = |list: &[String]| -> Box<[Selector]> {
            list.iter()
                .map(|s| shared.selectors.get_or_compile(s))
                .collect()
        };
        let info = SubscriptionInfo {
            subscriber: request
                .subscriber
                .unwrap_or_else(|| format!("urn:uuid:{}", uuid::Uuid::now_v7())),
            topics: request.selectors.clone(),
            connected_at_ms: now_ms(),
            payload: request.payload,
        };
        let subscriber = Arc::new(Subscriber::new(
            shared.next_key.fetch_add(1, Ordering::Relaxed),
            compile(&request.selectors),
            request.authorized.as_deref().map(compile),
            info,
        ));
        let (cursor, last_event_id, missed_history, catching_up) = {
            let mut index = shared.index_mut();
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
            (cursor, last_event_id, missed, cursor < head.position)
        };
        if shared.config.presence {
            shared.announce(&subscriber.info(), true).await;
        }
        Ok(Subscription {
            shared: shared.clone(),
            subscriber,
            cursor,
            catching_up,
            reading: None,
            page: VecDeque::new(),
            last_event_id,
            missed_history,
            ended: false,
        })
    }

    /// The active subscriptions, for presence.
    pub fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        self.inner
            .shared
            .index()
            .subscribers()
            .map(|s| s.info())
            .collect()
    }

    /// The id of the newest update, or `earliest` when there is none: the
    /// `lastEventID` of Mercure's subscription API.
    pub fn last_event_id(&self) -> String {
        let index = self.inner.shared.index();
        let head = index.head();
        head.id.as_deref().unwrap_or("earliest").to_owned()
    }

    /// Checks that the store answers (for readiness probes).
    ///
    /// # Errors
    /// The store's error.
    pub fn check_store(&self) -> Result<()> {
        self.inner
            .shared
            .store
            .stats()
            .map(drop)
            .map_err(Error::from)
    }

    /// Stops accepting publishes, lets the writer commit what it has, and ends
    /// every subscription after the frames already queued for it.
    pub async fn shutdown(&self) {
        let shared = self.inner.shared.clone();
        shared
            .publish_tx
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(writer) = writer {
            // Joining blocks until the writer has drained its queue.
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
        for subscriber in shared.index().subscribers() {
            subscriber.close();
        }
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

    fn index_mut(&self) -> RwLockWriteGuard<'_, TopicIndex> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    async fn enqueue(
        &self,
        update: Update,
        ack: Option<oneshot::Sender<Result<EventId>>>,
    ) -> Result<()> {
        let check_duplicate = update.has_id();
        let entry = update.into_entry(now_ms())?;
        let tx = self
            .publish_tx
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let tx = tx.ok_or(Error::Closed)?;
        tx.send(Pending {
            entry,
            check_duplicate,
            ack,
        })
        .await
        .map_err(|_| Error::Closed)
    }

    async fn resolve(self: &Arc<Self>, id: &str) -> Result<Resume> {
        let store = self.store.clone();
        let id_owned = id.to_owned();
        let (position, stats) = tokio::task::spawn_blocking(move || {
            let position = if id_owned == "earliest" {
                None
            } else {
                store.position_of(&id_owned)?
            };
            Ok::<_, StoreError>((position, store.stats()?))
        })
        .await
        .map_err(|e| StoreError::Io(e.to_string()))??;
        let before_first = stats.first_position.map_or(stats.last_position, |p| p - 1);
        Ok(match position {
            Some(position) => Resume::After(position, id.to_owned()),
            None => Resume::Start {
                before_first,
                missed: id != "earliest",
            },
        })
    }

    /// Up to [`PAGE`] entries after `after`: at once from the in-memory tail
    /// when it covers them, else a blocking read of the store.
    pub(crate) fn read_page(
        self: &Arc<Self>,
        after: u64,
    ) -> std::result::Result<Vec<Arc<Entry>>, PageRead> {
        {
            let recent = self.recent.read().unwrap_or_else(|e| e.into_inner());
            // An empty tail says nothing (it may hold no entries at all, with
            // `recent: 0`): only a tail that reaches back far enough answers.
            match recent.front() {
                Some(first) if first.position <= after + 1 => {
                    let start = (after + 1 - first.position) as usize;
                    return Ok(recent.iter().skip(start).take(PAGE).cloned().collect());
                }
                _ => {}
            }
        }
        let store = self.store.clone();
        Err(tokio::task::spawn_blocking(move || {
            store.read_after(after, PAGE)
        }))
    }

    pub(crate) fn unsubscribe(&self, subscriber: &Arc<Subscriber>) {
        let remaining = {
            let mut index = self.index_mut();
            index.remove(subscriber);
            index.len()
        };
        metrics::gauge!("tidings_subscribers").set(remaining as f64);
        if self.config.presence {
            // Drop cannot wait: queue the announcement if there is room.
            for update in presence_updates(&subscriber.info(), false) {
                if let Ok(entry) = update.into_entry(now_ms()) {
                    let tx = self
                        .publish_tx
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    let sent = tx.is_some_and(|tx| {
                        tx.try_send(Pending {
                            entry,
                            check_duplicate: false,
                            ack: None,
                        })
                        .is_ok()
                    });
                    if !sent {
                        tracing::warn!(subscriber = %subscriber.subscriber, "publish queue full; unsubscribe not announced");
                    }
                }
            }
        }
    }

    async fn announce(&self, info: &SubscriptionInfo, active: bool) {
        for update in presence_updates(info, active) {
            if let Err(error) = self.enqueue(update, None).await {
                tracing::warn!(%error, subscriber = %info.subscriber, "cannot announce subscription");
            }
        }
    }

    pub(crate) fn lagged(&self) {
        metrics::counter!("tidings_slow_subscriber_catchups_total").increment(1);
    }

    pub(crate) fn history_gap(&self, key: u64, cursor: u64, next: u64) {
        metrics::counter!("tidings_history_gaps_total").increment(1);
        tracing::warn!(
            subscriber = key,
            missed = next - cursor - 1,
            "a slow subscriber fell behind the retained history and missed updates"
        );
    }
}

fn presence_updates(info: &SubscriptionInfo, active: bool) -> impl Iterator<Item = Update> + '_ {
    info.topics.iter().map(move |selector| {
        Update::new(
            info.topic_for(selector),
            info.to_json(selector, active).to_string(),
        )
        .event_type("Subscription")
        .private(true)
    })
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
