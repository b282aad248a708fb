//! Fuzzes topic selectors (`*`, exact topics, RFC 6570 URI templates): parsing
//! and matching must never panic on any text, and must keep their promises.
//!
//! - every selector matches its own text;
//! - `*` matches every topic;
//! - a selector without `{` matches its own text only;
//! - the cache compiles to the same matcher as a fresh parse.
//!
//! The input is `selector`, a NUL byte, `topic` (lossy UTF-8 each).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings_hub::{Selector, SelectorCache};

fuzz_target!(|input: &[u8]| {
    let (selector, topic) = match input.iter().position(|&b| b == 0) {
        Some(nul) => (&input[..nul], &input[nul + 1..]),
        None => (input, &b""[..]),
    };
    let (selector, topic) = (
        String::from_utf8_lossy(selector),
        String::from_utf8_lossy(topic),
    );
    let parsed = Selector::parse(&selector);
    let matched = parsed.matches(&topic);
    assert!(
        parsed.matches(&selector),
        "{selector:?} does not match itself"
    );
    if selector == "*" {
        assert!(matched);
    }
    if !selector.contains('{') && selector != "*" {
        assert_eq!(matched, *topic == *selector, "{selector:?} on {topic:?}");
    }
    let cache = SelectorCache::default();
    let cached = cache.get_or_compile(&selector);
    assert_eq!(cached.matches(&topic), matched, "cache and parse disagree");
    assert_eq!(cached.matches(&selector), true);
});
