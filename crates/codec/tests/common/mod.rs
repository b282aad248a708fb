//! Shared by the codec's integration tests: run a decoder over chunks.
// Each test binary uses only part of this module.
#![allow(dead_code)]

use tidings_codec::{Decoder, DecoderConfig, Finish, Item};

/// What a whole stream decoded to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) items: Vec<Item>,
    pub(crate) last_event_id: String,
    pub(crate) finish: Finish,
}

pub(crate) fn decode_chunks<'a>(
    config: DecoderConfig,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Outcome {
    let mut decoder = Decoder::with_config(config);
    let mut items = Vec::new();
    for chunk in chunks {
        items.extend(decoder.feed(chunk));
    }
    let finish = decoder.finish();
    Outcome {
        items,
        last_event_id: decoder.last_event_id().to_owned(),
        finish,
    }
}

/// Decodes `input` whole, split at every offset, split at every pair of offsets
/// (for short inputs), and byte by byte; asserts that every way gives `expected`.
pub(crate) fn assert_every_chunking(
    name: &str,
    config: DecoderConfig,
    input: &[u8],
    expected: &Outcome,
) {
    let whole = decode_chunks(config, [input]);
    assert_eq!(&whole, expected, "{name}: fed whole");
    for i in 0..=input.len() {
        let (a, b) = input.split_at(i);
        assert_eq!(
            &decode_chunks(config, [a, b]),
            expected,
            "{name}: split at {i}"
        );
    }
    if input.len() <= 80 {
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let chunks = [&input[..i], &input[i..j], &input[j..]];
                assert_eq!(
                    &decode_chunks(config, chunks),
                    expected,
                    "{name}: split at {i} and {j}"
                );
            }
        }
    }
    let bytes = decode_chunks(config, input.chunks(1));
    assert_eq!(&bytes, expected, "{name}: byte by byte");
}
