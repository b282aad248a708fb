//! Mercure draft-08's `match_urlpattern` selectors: WHATWG URL Patterns,
//! matched by the `urlpattern` crate (Deno's) on the `regex` crate, whose
//! engines run in time linear in the input.
//!
//! The cost is capped where the crate leaves it open: the pattern's length
//! ([`MAX_URL_PATTERN_LEN`]), and each component's compiled program and lazy
//! DFA cache ([`REGEX_SIZE_LIMIT`](super::REGEX_SIZE_LIMIT),
//! [`REGEX_CACHE_LIMIT`](super::REGEX_CACHE_LIMIT), as for URI templates): a
//! pattern with a crafted `(regex)` group is refused at subscribe time
//! instead of holding megabytes per subscriber. Matching is always
//! case-sensitive (the pattern's `ignoreCase` is off, as the draft says).

use url::Url;
use urlpattern::RegexSyntax;
use urlpattern::regexp::RegExp;
use urlpattern::{UrlPattern, UrlPatternInit, UrlPatternMatchInput, UrlPatternOptions};

/// The longest URL pattern accepted, in bytes (the Mercure hub's cap).
pub const MAX_URL_PATTERN_LEN: usize = 4096;

/// Why a URL pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlPatternError {
    /// Longer than [`MAX_URL_PATTERN_LEN`].
    #[error("URL pattern longer than {MAX_URL_PATTERN_LEN} bytes")]
    TooLong,
    /// Relative, and the hub has no URL to resolve it against.
    #[error("relative URL pattern, and this hub has no URL to resolve it against")]
    NoBase,
    /// Not a URL pattern (or a `(regex)` group too costly to compile).
    #[error("invalid URL pattern: {0}")]
    Invalid(String),
}

/// A compiled URL pattern and the URL relative topics resolve against.
#[derive(Debug)]
pub(crate) struct UrlPatternMatcher {
    pattern: UrlPattern<CappedRegex>,
    base: Option<Url>,
}

impl UrlPatternMatcher {
    pub(crate) fn compile(text: &str, base: Option<&Url>) -> Result<Self, UrlPatternError> {
        if text.len() > MAX_URL_PATTERN_LEN {
            return Err(UrlPatternError::TooLong);
        }
        // urlpattern 0.6.0 decrements an unsigned bracket depth on a `]` with
        // no `[` before it (`https://e.co]/x`): an overflow panic where overflow
        // checks are on (debug builds; the fuzzer found it). Such patterns are
        // refused before the crate sees them (conservatively: anywhere in the
        // pattern, not only in its hostname), and a panic in the parse, pure
        // computation on the pattern, is caught as a backstop.
        if has_unopened_bracket(text) {
            return Err(UrlPatternError::Invalid("a ] without a [ before it".into()));
        }
        let parsed = std::panic::catch_unwind(|| {
            let init = UrlPatternInit::parse_constructor_string::<CappedRegex>(text, base.cloned())
                .map_err(|error| match error {
                    urlpattern::Error::BaseUrlRequired => UrlPatternError::NoBase,
                    other => UrlPatternError::Invalid(other.to_string()),
                })?;
            let options = UrlPatternOptions {
                ignore_case: false,
                ..UrlPatternOptions::default()
            };
            UrlPattern::<CappedRegex>::parse(init, options)
                .map_err(|error| UrlPatternError::Invalid(error.to_string()))
        });
        let pattern = parsed.unwrap_or_else(|_| {
            Err(UrlPatternError::Invalid(
                "the pattern could not be parsed".into(),
            ))
        })?;
        Ok(UrlPatternMatcher {
            pattern,
            base: base.cloned(),
        })
    }

    /// `topic` as a URL, resolved against the hub's URL when relative; `None`
    /// when it is not a URL (it then matches no pattern).
    pub(crate) fn resolve(&self, topic: &str) -> Option<Url> {
        Url::options()
            .base_url(self.base.as_ref())
            .parse(topic)
            .ok()
    }

    /// Whether the resolved topic matches.
    pub(crate) fn matches_url(&self, topic: &Url) -> bool {
        self.pattern
            .test(UrlPatternMatchInput::Url(topic.clone()))
            .unwrap_or(false)
    }

    pub(crate) fn matches(&self, topic: &str) -> bool {
        self.resolve(topic)
            .is_some_and(|url| self.matches_url(&url))
    }
}

/// Whether a `]` comes with no unclosed `[` before it (`\\` escapes skipped).
fn has_unopened_bracket(text: &str) -> bool {
    let mut depth = 0usize;
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => {
                bytes.next();
            }
            b'[' => depth += 1,
            b']' if depth == 0 => return true,
            b']' => depth -= 1,
            _ => {}
        }
    }
    false
}

/// The `regex` crate with the same bounds as URI templates' matchers.
#[derive(Debug)]
struct CappedRegex(regex::Regex);

impl RegExp for CappedRegex {
    fn syntax() -> RegexSyntax {
        RegexSyntax::Rust
    }

    fn parse(pattern: &str, flags: &str, _force_eval: bool) -> Result<Self, ()> {
        regex::RegexBuilder::new(pattern)
            .case_insensitive(flags.contains('i'))
            .size_limit(super::REGEX_SIZE_LIMIT)
            .dfa_size_limit(super::REGEX_CACHE_LIMIT)
            .build()
            .map(CappedRegex)
            .map_err(|_| ())
    }

    fn matches<'a>(&self, text: &'a str) -> Option<Vec<Option<&'a str>>> {
        let captures = self.0.captures(text)?;
        Some(
            captures
                .iter()
                .skip(1)
                .map(|group| group.map(|m| m.as_str()))
                .collect(),
        )
    }

    fn pattern_string(&self) -> &str {
        self.0.as_str()
    }
}
