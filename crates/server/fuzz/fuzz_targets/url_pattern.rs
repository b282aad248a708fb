//! Fuzzes draft-08 URL Pattern selectors: compiling and matching must never
//! panic on any pattern or topic, and must keep their promises:
//!
//! - `*` matches every topic;
//! - the cache compiles to the same matcher as a fresh compile, refusals
//!   included;
//! - matching stays fast: `scripts/test.sh` runs this target with a per-input
//!   timeout of 2 s (`-timeout=2`) over inputs of up to 8 KiB, which a
//!   backtracking engine fails on crafted `(regex)` groups and the linear
//!   `regex` crate under the hub's size caps does not.
//!
//! The input is `pattern`, a NUL byte, `topic` (lossy UTF-8 each).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings_hub::{Matcher, Selector, SelectorCache};

fuzz_target!(|input: &[u8]| {
    let (pattern, topic) = match input.iter().position(|&b| b == 0) {
        Some(nul) => (&input[..nul], &input[nul + 1..]),
        None => (input, &b""[..]),
    };
    let (pattern, topic) = (
        String::from_utf8_lossy(pattern),
        String::from_utf8_lossy(topic),
    );
    let base = url::Url::parse("https://hub.example.com/.well-known/mercure").unwrap();
    let compiled = Selector::url_pattern(&pattern, Some(&base));
    let cache = SelectorCache::default();
    let cached = cache.get_or_compile_matcher(&Matcher::url_pattern(&*pattern), Some(&base));
    assert_eq!(compiled.is_ok(), cached.is_ok(), "cache and compile disagree on {pattern:?}");
    let (Ok(compiled), Ok(cached)) = (compiled, cached) else {
        return;
    };
    let matched = compiled.matches(&topic);
    assert_eq!(cached.matches(&topic), matched, "cache and compile disagree");
    if pattern == "*" {
        assert!(matched);
    }
});
