//! The topic index: finds the subscribers of an update without scanning every
//! connection.
//!
//! Exact selectors (the common case) are looked up by topic in a hash map.
//! Wildcards and URI templates are grouped by their text, so a template shared
//! by many subscribers is matched once per topic, not once per subscriber.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::store::Entry;
use crate::subscription::Subscriber;

type Members = HashMap<u64, Arc<Subscriber>>;

#[derive(Debug, Default)]
pub(crate) struct TopicIndex {
    exact: HashMap<Box<str>, Members>,
    patterns: HashMap<Box<str>, (crate::Selector, Members)>,
    all: Members,
    /// The last update fanned out: where a new live subscription starts.
    /// The fan-out moves it while holding the index's read lock, and
    /// registration reads it under the write lock, so a new subscription sees
    /// either all of a batch fanned out or none of it.
    pub(crate) head: Mutex<Head>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Head {
    pub(crate) position: u64,
    pub(crate) id: Option<Arc<str>>,
}

impl TopicIndex {
    pub(crate) fn insert(&mut self, subscriber: &Arc<Subscriber>) {
        for selector in subscriber.selectors.iter() {
            let members = if selector.is_exact() {
                self.exact.entry(selector.as_str().into()).or_default()
            } else {
                &mut self
                    .patterns
                    .entry(selector.as_str().into())
                    .or_insert_with(|| (selector.clone(), Members::new()))
                    .1
            };
            members.insert(subscriber.key, subscriber.clone());
        }
        self.all.insert(subscriber.key, subscriber.clone());
    }

    pub(crate) fn remove(&mut self, subscriber: &Subscriber) {
        for selector in subscriber.selectors.iter() {
            let key = selector.as_str();
            if selector.is_exact() {
                if let Some(members) = self.exact.get_mut(key) {
                    members.remove(&subscriber.key);
                    if members.is_empty() {
                        self.exact.remove(key);
                    }
                }
            } else if let Some((_, members)) = self.patterns.get_mut(key) {
                members.remove(&subscriber.key);
                if members.is_empty() {
                    self.patterns.remove(key);
                }
            }
        }
        self.all.remove(&subscriber.key);
    }

    /// Calls `f` for every subscriber with a selector matching a topic of
    /// `entry`; a subscriber may be named more than once (it de-duplicates).
    pub(crate) fn for_each_candidate(&self, entry: &Entry, mut f: impl FnMut(&Arc<Subscriber>)) {
        for topic in entry.topics.iter() {
            if let Some(members) = self.exact.get(&**topic) {
                members.values().for_each(&mut f);
            }
        }
        for (selector, members) in self.patterns.values() {
            if entry.topics.iter().any(|topic| selector.matches(topic)) {
                members.values().for_each(&mut f);
            }
        }
    }

    pub(crate) fn subscribers(&self) -> impl Iterator<Item = &Arc<Subscriber>> {
        self.all.values()
    }

    pub(crate) fn head(&self) -> MutexGuard<'_, Head> {
        self.head.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn len(&self) -> usize {
        self.all.len()
    }
}
