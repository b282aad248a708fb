//! The topic index: finds the subscribers of an update without scanning every
//! connection.
//!
//! Exact selectors (the common case) are looked up by topic in a hash map.
//! Wildcards and URI templates are grouped by their text, so a template shared
//! by many subscribers is matched once per topic, not once per subscriber; and
//! by their literal prefix (the text before the first expression), so an
//! update is tried only against the templates whose prefix starts its topic.
//! Subscribers choose their templates: without the prefix index a thousand
//! distinct ones cost a thousand matches per update.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::log::Entry;
use crate::subscription::Subscriber;

/// The subscribers of one topic or pattern. Most topics have one subscriber
/// (a topic per user, per document), so one is kept inline rather than in a
/// hash table of its own: that table would cost more than the subscription.
#[derive(Debug)]
enum Members {
    One(u64, Arc<Subscriber>),
    Many(HashMap<u64, Arc<Subscriber>>),
}

impl Members {
    fn insert(&mut self, key: u64, subscriber: Arc<Subscriber>) {
        match self {
            Members::One(one, _) if *one == key => *self = Members::One(key, subscriber),
            Members::One(..) => {
                let Members::One(one, first) =
                    std::mem::replace(self, Members::Many(HashMap::new()))
                else {
                    unreachable!("matched One above");
                };
                if let Members::Many(map) = self {
                    map.insert(one, first);
                    map.insert(key, subscriber);
                }
            }
            Members::Many(map) => {
                map.insert(key, subscriber);
            }
        }
    }

    /// Removes `key`; true when no member is left.
    fn remove(&mut self, key: u64) -> bool {
        match self {
            Members::One(one, _) => *one == key,
            Members::Many(map) => {
                map.remove(&key);
                map.is_empty()
            }
        }
    }

    fn for_each(&self, mut f: impl FnMut(&Arc<Subscriber>)) {
        match self {
            Members::One(_, subscriber) => f(subscriber),
            Members::Many(map) => map.values().for_each(f),
        }
    }
}

/// Templates (and `*`) sharing a literal prefix, by their text.
type Patterns = HashMap<Box<str>, (crate::Selector, Members)>;

#[derive(Debug, Default)]
pub(crate) struct TopicIndex {
    exact: HashMap<Box<str>, Members>,
    /// Templates and `*`, by literal prefix, then by text.
    patterns: HashMap<Box<str>, Patterns>,
    /// The lengths of the prefixes in `patterns`, with how many prefixes
    /// have each: the only lengths at which a topic is looked up.
    prefix_lens: BTreeMap<usize, usize>,
    /// Draft-08 URL patterns, by text: each update's topic is resolved as a
    /// URL once, then tried against each.
    url_patterns: HashMap<Box<str>, (crate::Selector, Members)>,
    all: HashMap<u64, Arc<Subscriber>>,
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
            let key = selector.as_str();
            if selector.is_exact() {
                match self.exact.get_mut(key) {
                    Some(members) => members.insert(subscriber.key, subscriber.clone()),
                    None => {
                        let one = Members::One(subscriber.key, subscriber.clone());
                        self.exact.insert(key.into(), one);
                    }
                }
                continue;
            }
            if selector.is_url_pattern() {
                match self.url_patterns.get_mut(key) {
                    Some((_, members)) => members.insert(subscriber.key, subscriber.clone()),
                    None => {
                        let one = Members::One(subscriber.key, subscriber.clone());
                        self.url_patterns
                            .insert(key.into(), (selector.clone(), one));
                    }
                }
                continue;
            }
            let prefix = selector.literal_prefix();
            let group = match self.patterns.get_mut(prefix) {
                Some(group) => group,
                None => {
                    *self.prefix_lens.entry(prefix.len()).or_default() += 1;
                    self.patterns.entry(prefix.into()).or_default()
                }
            };
            match group.get_mut(key) {
                Some((_, members)) => members.insert(subscriber.key, subscriber.clone()),
                None => {
                    let one = Members::One(subscriber.key, subscriber.clone());
                    group.insert(key.into(), (selector.clone(), one));
                }
            }
        }
        self.all.insert(subscriber.key, subscriber.clone());
    }

    pub(crate) fn remove(&mut self, subscriber: &Subscriber) {
        for selector in subscriber.selectors.iter() {
            let key = selector.as_str();
            if selector.is_exact() {
                if self
                    .exact
                    .get_mut(key)
                    .is_some_and(|m| m.remove(subscriber.key))
                {
                    self.exact.remove(key);
                }
                continue;
            }
            if selector.is_url_pattern() {
                if self
                    .url_patterns
                    .get_mut(key)
                    .is_some_and(|(_, m)| m.remove(subscriber.key))
                {
                    self.url_patterns.remove(key);
                }
                continue;
            }
            let prefix = selector.literal_prefix();
            let Some(group) = self.patterns.get_mut(prefix) else {
                continue;
            };
            if group
                .get_mut(key)
                .is_some_and(|(_, m)| m.remove(subscriber.key))
            {
                group.remove(key);
            }
            if group.is_empty() {
                self.patterns.remove(prefix);
                if let Some(count) = self.prefix_lens.get_mut(&prefix.len()) {
                    *count -= 1;
                    if *count == 0 {
                        self.prefix_lens.remove(&prefix.len());
                    }
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
                members.for_each(&mut f);
            }
        }
        for topic in entry.topics.iter() {
            for &len in self.prefix_lens.keys() {
                let Some(prefix) = topic.get(..len) else {
                    // Longer than the topic (or not at a character boundary).
                    if len > topic.len() {
                        break;
                    }
                    continue;
                };
                let Some(group) = self.patterns.get(prefix) else {
                    continue;
                };
                for (selector, members) in group.values() {
                    if selector.matches(topic) {
                        members.for_each(&mut f);
                    }
                }
            }
        }
        let Some((first, _)) = self.url_patterns.values().next() else {
            return;
        };
        for topic in entry.topics.iter() {
            let resolved = first.resolve_topic(topic);
            if resolved.is_none() {
                continue;
            }
            for (selector, members) in self.url_patterns.values() {
                if selector.matches_url(topic, resolved.as_ref()) {
                    members.for_each(&mut f);
                }
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
