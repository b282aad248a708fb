//! Topic selectors: which topics a subscription, or a JWT's `publish` and
//! `subscribe` claims, cover. [`Selector`] documents what matches.
//!
//! # How a template matches
//!
//! The stable Mercure hub matches templates with `Template.Regexp()` from Go's
//! `github.com/yosida95/uritemplate/v3`. This module parses templates with the same
//! grammar (RFC 6570 section 2, as that library reads it) and builds the same
//! regular expression, anchored at both ends: each literal part escaped, and for
//! each expression `(?:FIRST VALUE(?:SEP VALUE){0,n-1})?` (Go's adds capturing
//! groups around the values, which change nothing for a yes/no match), where FIRST and SEP
//! are the operator's prefix and separator, n is the number of variables (`*`
//! instead of `{0,n-1}` when one explodes) and VALUE is
//! `(?:[allowed]|%[0-9A-Fa-f]{2})*`.
//!
//! Implementation choices that change no answer:
//! - groups are non-capturing, and the template's leading and trailing literal
//!   text is compared with `strip_prefix`/`strip_suffix` before the regex runs on
//!   what is left: most non-matching topics are rejected by one comparison;
//! - templates are compiled with the `regex` crate, whose lazy DFA matches in
//!   time linear in the topic and falls back to bounded-memory automata when a
//!   crafted template needs too many states. `regex-lite` compiles about 5x faster
//!   but matches 20-30x slower, and matching runs once per update per template.
//!
//! Deviation: a template longer than [`MAX_TEMPLATE_LEN`] bytes or with more than
//! [`MAX_TEMPLATE_VARIABLES`] variables is not compiled and matches by equality
//! only ([`TemplateError::TooLong`], [`TemplateError::TooManyVariables`]).
//! Selectors come from anonymous subscribers, and without a bound one crafted
//! selector costs tens of milliseconds to compile and then slows every update it
//! is matched against. The reference hub has no such bound, though Go's `regexp`
//! rejects repetition counts above 1000 and the library then panics, so it cannot
//! serve a 1002-variable expression either.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use self::template::Template;
pub use self::template::TemplateError;
use self::urlpattern::UrlPatternMatcher;
pub use self::urlpattern::{MAX_URL_PATTERN_LEN, UrlPatternError};

mod template;
#[cfg(test)]
mod tests;
mod urlpattern;

/// The selector that matches every topic.
pub const WILDCARD: &str = "*";

/// The most variables a template may have, counted over all its expressions.
///
/// Real topic templates have a handful. Selectors come from untrusted query
/// strings and tokens, and some shapes (many adjacent expressions) make compiling
/// and matching grow faster than linearly with the variable count; at this bound
/// compiling any template stays well under a millisecond.
pub const MAX_TEMPLATE_VARIABLES: usize = 32;

/// The longest selector, in bytes, compiled as a template. Longer ones match by
/// equality only. Topic templates are URLs of a few dozen bytes; this bound keeps
/// the literal text the matcher must hold, and so compiling, small.
pub const MAX_TEMPLATE_LEN: usize = 2048;

/// Upper bound, in bytes, on the compiled form of one template's matcher: a
/// backstop, since templates within [`MAX_TEMPLATE_LEN`] and
/// [`MAX_TEMPLATE_VARIABLES`] stay far below it. Real templates compile to a few KiB.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Upper bound, in bytes, on the lazy DFA cache one template's matcher keeps per
/// thread that uses it. Real templates fill a few KiB of it; a template crafted
/// to need exponentially many DFA states hits the bound, and its searches then fall
/// back to slower automata instead of growing memory.
pub const REGEX_CACHE_LIMIT: usize = 256 * 1024;

/// A parsed topic selector: `*`, an exact topic or a URI template.
///
/// A Mercure selector is one of
/// - `*`, which matches every topic;
/// - a plain string, which matches the identical topic only;
/// - an [RFC 6570] URI template such as `https://example.com/books/{id}`, which
///   matches the identical string and every topic the template can expand to.
///
/// Parsing never fails. A selector that contains `{` but is not a valid template
/// matches by equality only, as in the reference Mercure hub, and
/// [`Selector::template_error`] says why the template was not usable.
///
/// Cloning is cheap: clones share one compiled matcher. Equality and hashing
/// compare the selector's text and [`MatchType`].
///
/// # Matching templates
///
/// Templates match as in the reference hub (Go's `yosida95/uritemplate`), whose
/// answers subscribers written against it expect, leniencies included:
/// - every expression is optional, because an undefined variable expands to
///   nothing: `/books{/id}` matches `/books`;
/// - a value is any run of the characters its operator leaves unencoded (the
///   unreserved `A-Za-z0-9-._~`, plus the reserved `:/?#[]@!$&'()*+,;=` for `+`
///   and `#`) and `%XX` triplets; `,` is allowed in every value (lists expand
///   with commas) and `=` in the values of `;`, `?`, `&` and exploded expressions
///   (`name=value` pairs). Other characters, non-ASCII included, must be
///   percent-encoded in the topic;
/// - the names after `;`, `?` and `&` are not checked: `{?q}` matches `?lang=en`;
/// - an expression of n variables admits at most n separated values; one with an
///   explode modifier `*` admits any number;
/// - a prefix modifier `:N` must be 1 to 9999 but does not bound the value's
///   length: `{id:3}` matches `12345`;
/// - literal text is compared byte for byte: `%C3%A9` in a template does not
///   match `é` in a topic;
/// - templates longer than [`MAX_TEMPLATE_LEN`] or with more than
///   [`MAX_TEMPLATE_VARIABLES`] variables match by equality only (the one
///   deviation from the reference hub, which accepts them).
///
/// [RFC 6570]: https://www.rfc-editor.org/rfc/rfc6570
///
/// # Examples
///
/// ```
/// use tidings_hub::Selector;
///
/// let books = Selector::parse("https://example.com/books/{id}");
/// assert!(books.matches("https://example.com/books/1"));
/// assert!(!books.matches("https://example.com/books/1/reviews"));
/// assert!(!books.is_exact());
///
/// let search = Selector::parse("https://example.com/search{?q,lang}");
/// assert!(search.matches("https://example.com/search?q=rust&lang=en"));
/// assert!(search.matches("https://example.com/search?q=rust"));
///
/// // Not a valid template (the brace is never closed): exact match only.
/// let broken = Selector::parse("https://example.com/books/{id");
/// assert!(broken.is_exact());
/// assert!(broken.template_error().is_some());
/// assert!(broken.matches("https://example.com/books/{id"));
/// assert!(!broken.matches("https://example.com/books/1"));
///
/// assert!(Selector::parse("*").matches("urn:anything"));
/// ```
#[derive(Clone)]
pub struct Selector {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    text: Box<str>,
    match_type: MatchType,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Wildcard,
    /// Matches by string equality only; `template_error` says why a selector that
    /// looked like a template (it contains `{`) could not be used as one.
    Exact {
        template_error: Option<TemplateError>,
    },
    Template(Template),
    UrlPattern(Box<UrlPatternMatcher>),
}

/// How a selector's text is read: the draft-07 `topic` parameter, or one of
/// draft-08's matcher types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchType {
    /// Draft-07 `topic` (and the `mercure` claim's selectors): `*`, an exact
    /// topic, or an RFC 6570 URI template.
    Topic,
    /// Draft-08 `match` / `match_exact`: byte equality, no template; `*`
    /// matches every topic.
    Exact,
    /// Draft-08 `match_urlpattern`: a WHATWG URL Pattern; relative patterns
    /// and topics resolve against the hub's URL; `*` matches every topic.
    #[serde(rename = "urlpattern")]
    UrlPattern,
}

impl MatchType {
    /// The name draft-08 gives it (`exact`, `urlpattern`); `topic` for draft-07.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Topic => "topic",
            MatchType::Exact => "exact",
            MatchType::UrlPattern => "urlpattern",
        }
    }
}

/// A selector as a subscriber or a token gave it: its text and how to read it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Matcher {
    /// How [`Matcher::value`] is read.
    pub match_type: MatchType,
    /// The selector's text.
    pub value: String,
}

impl Matcher {
    /// A draft-07 topic selector.
    pub fn topic(value: impl Into<String>) -> Matcher {
        Matcher {
            match_type: MatchType::Topic,
            value: value.into(),
        }
    }

    /// A draft-08 exact matcher.
    pub fn exact(value: impl Into<String>) -> Matcher {
        Matcher {
            match_type: MatchType::Exact,
            value: value.into(),
        }
    }

    /// A draft-08 URL Pattern matcher.
    pub fn url_pattern(value: impl Into<String>) -> Matcher {
        Matcher {
            match_type: MatchType::UrlPattern,
            value: value.into(),
        }
    }
}

impl From<&str> for Matcher {
    fn from(value: &str) -> Matcher {
        Matcher::topic(value)
    }
}

impl From<String> for Matcher {
    fn from(value: String) -> Matcher {
        Matcher::topic(value)
    }
}

impl From<&String> for Matcher {
    fn from(value: &String) -> Matcher {
        Matcher::topic(value.as_str())
    }
}

impl Selector {
    /// Parses a selector. Never fails: a string that is not a valid template
    /// matches by equality (see [`Selector::template_error`]).
    ///
    /// Compiling a template costs tens of microseconds; use a [`SelectorCache`]
    /// when many subscribers send the same selectors.
    pub fn parse(selector: &str) -> Selector {
        let kind = if selector == WILDCARD {
            Kind::Wildcard
        } else if !selector.contains('{') {
            // Without an expression a template can only match itself, so skip
            // parsing; the reference hub does the same.
            Kind::Exact {
                template_error: None,
            }
        } else {
            match Template::compile(selector) {
                Ok(template) => Kind::Template(template),
                Err(error) => Kind::Exact {
                    template_error: Some(error),
                },
            }
        };
        Selector::new(selector, MatchType::Topic, kind)
    }

    fn new(text: &str, match_type: MatchType, kind: Kind) -> Selector {
        Selector {
            inner: Arc::new(Inner {
                text: text.into(),
                match_type,
                kind,
            }),
        }
    }

    /// A draft-08 exact matcher: the identical topic only (no template),
    /// every topic for `*`.
    pub fn exact(text: &str) -> Selector {
        let kind = if text == WILDCARD {
            Kind::Wildcard
        } else {
            Kind::Exact {
                template_error: None,
            }
        };
        Selector::new(text, MatchType::Exact, kind)
    }

    /// A draft-08 URL Pattern matcher; `base` is the hub's URL, which
    /// relative patterns and topics resolve against. `*` matches every topic.
    ///
    /// # Errors
    /// When `text` is not a URL pattern, is relative without a `base`, or is
    /// longer than [`MAX_URL_PATTERN_LEN`].
    pub fn url_pattern(text: &str, base: Option<&url::Url>) -> Result<Selector, UrlPatternError> {
        let kind = if text == WILDCARD {
            Kind::Wildcard
        } else {
            Kind::UrlPattern(Box::new(UrlPatternMatcher::compile(text, base)?))
        };
        Ok(Selector::new(text, MatchType::UrlPattern, kind))
    }

    /// `matcher` compiled by its type (see [`Selector::parse`],
    /// [`Selector::exact`], [`Selector::url_pattern`]).
    ///
    /// # Errors
    /// As [`Selector::url_pattern`].
    pub fn compile(
        matcher: &Matcher,
        base: Option<&url::Url>,
    ) -> Result<Selector, UrlPatternError> {
        match matcher.match_type {
            MatchType::Topic => Ok(Selector::parse(&matcher.value)),
            MatchType::Exact => Ok(Selector::exact(&matcher.value)),
            MatchType::UrlPattern => Selector::url_pattern(&matcher.value, base),
        }
    }

    /// How this selector's text is read.
    pub fn match_type(&self) -> MatchType {
        self.inner.match_type
    }

    /// The selector as a [`Matcher`].
    pub fn matcher(&self) -> Matcher {
        Matcher {
            match_type: self.inner.match_type,
            value: self.as_str().to_owned(),
        }
    }

    /// Whether `topic` is covered by this selector.
    ///
    /// Does not allocate. For templates this runs a precompiled automaton whose
    /// cost grows with the topic's length, not with the number of expressions.
    pub fn matches(&self, topic: &str) -> bool {
        match &self.inner.kind {
            Kind::Wildcard => true,
            Kind::Exact { .. } => topic == &*self.inner.text,
            Kind::Template(template) => topic == &*self.inner.text || template.matches(topic),
            Kind::UrlPattern(pattern) => pattern.matches(topic),
        }
    }

    /// `topic` resolved as a URL for [`Selector::matches_url`]: the same
    /// for every URL pattern of a hub (they share its URL), so a fan-out
    /// resolves each topic once. `None` for other selectors, and for a topic
    /// that is not a URL.
    pub(crate) fn resolve_topic(&self, topic: &str) -> Option<url::Url> {
        match &self.inner.kind {
            Kind::UrlPattern(pattern) => pattern.resolve(topic),
            _ => None,
        }
    }

    /// Whether a URL pattern matches a topic [`Selector::resolve_topic`]
    /// resolved; other selectors answer as [`Selector::matches`] would.
    pub(crate) fn matches_url(&self, topic: &str, resolved: Option<&url::Url>) -> bool {
        match &self.inner.kind {
            Kind::UrlPattern(pattern) => resolved.is_some_and(|url| pattern.matches_url(url)),
            _ => self.matches(topic),
        }
    }

    /// Whether this is a URL pattern (not `*`).
    pub fn is_url_pattern(&self) -> bool {
        matches!(self.inner.kind, Kind::UrlPattern(_))
    }

    /// The text every topic this selector matches starts with: a template's
    /// literal text before its first expression; empty for `*` (and for a
    /// template that starts with an expression). The hub indexes templates
    /// by it, so an update is tried against the templates that can match.
    pub fn literal_prefix(&self) -> &str {
        match &self.inner.kind {
            Kind::Wildcard => "",
            Kind::Exact { .. } => &self.inner.text,
            Kind::Template(template) => template.prefix(),
            // Patterns match canonical URLs (hosts in any case, relative
            // topics resolved): no prefix of their text is safe to index by.
            Kind::UrlPattern(_) => "",
        }
    }

    /// The selector as it was given.
    pub fn as_str(&self) -> &str {
        &self.inner.text
    }

    /// Whether this is `*`, which matches every topic.
    pub fn is_wildcard(&self) -> bool {
        matches!(self.inner.kind, Kind::Wildcard)
    }

    /// Whether this selector matches exactly one topic, its own text.
    ///
    /// True for plain strings and for strings that failed to parse as templates.
    /// The hub indexes these by topic instead of calling [`Selector::matches`].
    pub fn is_exact(&self) -> bool {
        matches!(self.inner.kind, Kind::Exact { .. })
    }

    /// Whether this selector is a valid URI template with at least one expression.
    pub fn is_template(&self) -> bool {
        matches!(self.inner.kind, Kind::Template(_))
    }

    /// Why a selector containing `{` is not used as a template, if it is not.
    ///
    /// `None` for `*`, for valid templates and for strings without `{`, which were
    /// never meant as templates.
    pub fn template_error(&self) -> Option<&TemplateError> {
        match &self.inner.kind {
            Kind::Exact { template_error } => template_error.as_ref(),
            Kind::Wildcard | Kind::Template(_) | Kind::UrlPattern(_) => None,
        }
    }
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Selector").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Selector {
    fn eq(&self, other: &Self) -> bool {
        self.inner.match_type == other.inner.match_type && self.as_str() == other.as_str()
    }
}

impl Eq for Selector {}

impl Hash for Selector {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.match_type.hash(state);
        self.as_str().hash(state);
    }
}

/// A bounded, thread-safe cache of compiled selectors, keyed by selector text.
///
/// Thousands of subscribers usually send the same few templates; with this cache
/// each template is compiled once and every subscriber shares the result.
///
/// Only selectors containing `{` are cached: `*` and plain strings cost one small
/// allocation to build, and keeping them out means a flood of distinct exact
/// topics cannot push the expensive templates out of the cache.
///
/// When full, the cache drops the entry inserted first (FIFO). Eviction never
/// invalidates anything: subscribers keep their [`Selector`] clones, and the next
/// request for an evicted text compiles it again.
///
/// A compiled template with its search cache for one thread holds about 7 KiB,
/// so a full cache at [`SelectorCache::DEFAULT_CAPACITY`] holds about 70 MiB;
/// pick the capacity to fit the machine.
pub struct SelectorCache {
    capacity: usize,
    state: Mutex<CacheState>,
}

struct CacheState {
    templates: HashMap<Box<str>, Selector>,
    url_patterns: HashMap<Box<str>, Selector>,
    insertion_order: VecDeque<Selector>,
}

impl CacheState {
    fn map(&mut self, match_type: MatchType) -> &mut HashMap<Box<str>, Selector> {
        match match_type {
            MatchType::UrlPattern => &mut self.url_patterns,
            MatchType::Topic | MatchType::Exact => &mut self.templates,
        }
    }

    fn len(&self) -> usize {
        self.templates.len() + self.url_patterns.len()
    }
}

impl SelectorCache {
    /// Capacity of [`SelectorCache::default`].
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// Creates a cache holding at most `capacity` compiled templates. A capacity
    /// of 0 caches nothing.
    pub fn new(capacity: usize) -> SelectorCache {
        SelectorCache {
            capacity,
            state: Mutex::new(CacheState {
                templates: HashMap::new(),
                url_patterns: HashMap::new(),
                insertion_order: VecDeque::new(),
            }),
        }
    }

    /// Returns the compiled selector for `selector` (a draft-07 topic
    /// selector), compiling and caching it if it is not cached yet.
    pub fn get_or_compile(&self, selector: &str) -> Selector {
        if !selector.contains('{') {
            return Selector::parse(selector);
        }
        self.cached(MatchType::Topic, selector, || Ok(Selector::parse(selector)))
            .unwrap_or_else(|_: UrlPatternError| Selector::parse(selector))
    }

    /// Returns `matcher` compiled (URL patterns against `base`, the hub's
    /// URL), from the cache when it is there. Templates and URL patterns are
    /// cached; exact matchers cost one small allocation to build.
    ///
    /// # Errors
    /// As [`Selector::url_pattern`]; refusals are not cached.
    pub fn get_or_compile_matcher(
        &self,
        matcher: &Matcher,
        base: Option<&url::Url>,
    ) -> Result<Selector, UrlPatternError> {
        match matcher.match_type {
            MatchType::Topic => Ok(self.get_or_compile(&matcher.value)),
            // Nothing to cache: no automaton is built for these.
            MatchType::Exact => Selector::compile(matcher, base),
            MatchType::UrlPattern if matcher.value == WILDCARD => Selector::compile(matcher, base),
            MatchType::UrlPattern => self.cached(MatchType::UrlPattern, &matcher.value, || {
                Selector::compile(matcher, base)
            }),
        }
    }

    fn cached(
        &self,
        match_type: MatchType,
        text: &str,
        compile: impl FnOnce() -> Result<Selector, UrlPatternError>,
    ) -> Result<Selector, UrlPatternError> {
        if let Some(cached) = self.lock().map(match_type).get(text) {
            return Ok(cached.clone());
        }
        // Compile without holding the lock: it takes microseconds and other
        // threads only need the lock for a lookup. Two threads may compile the
        // same text at once; the first to insert wins and both return its copy.
        let compiled = compile()?;
        let mut state = self.lock();
        if let Some(cached) = state.map(match_type).get(text) {
            return Ok(cached.clone());
        }
        if self.capacity == 0 {
            return Ok(compiled);
        }
        while state.len() >= self.capacity {
            let Some(oldest) = state.insertion_order.pop_front() else {
                break;
            };
            state.map(oldest.match_type()).remove(oldest.as_str());
        }
        state.map(match_type).insert(text.into(), compiled.clone());
        state.insertion_order.push_back(compiled.clone());
        Ok(compiled)
    }

    /// How many compiled templates and URL patterns the cache holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most compiled templates the cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> MutexGuard<'_, CacheState> {
        // A panic while holding the lock cannot leave the set and the queue
        // inconsistent in a way that matters (at worst an entry is missing from
        // one of them), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for SelectorCache {
    fn default() -> Self {
        SelectorCache::new(SelectorCache::DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for SelectorCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectorCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}
