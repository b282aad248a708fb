//! Fuzzes the incremental decoder: whatever the bytes and however they are
//! chunked, decoding must not panic, must not depend on the chunking, and must
//! only yield what the encoder can write back and the decoder read again.
//!
//! The first input byte steers the run (chunk sizes and limits), the rest is
//! the stream.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tidings_codec::{Decoder, DecoderConfig, Event, Finish, Item, encode_comment};

/// Everything one decoding says: its items in order, the last event id, and
/// how the stream ended.
#[derive(Debug, PartialEq)]
struct Decoded {
    items: Vec<Item>,
    last_event_id: String,
    finish: Finish,
}

fn decode<'a>(config: DecoderConfig, chunks: impl IntoIterator<Item = &'a [u8]>) -> Decoded {
    let mut decoder = Decoder::with_config(config);
    let mut items = Vec::new();
    for chunk in chunks {
        items.extend(decoder.feed(chunk));
    }
    let finish = decoder.finish();
    items.extend(std::iter::from_fn(|| decoder.next_item()));
    Decoded {
        items,
        last_event_id: decoder.last_event_id().to_owned(),
        finish,
    }
}

/// Limits small enough that fuzz inputs break them, or the defaults.
fn config(control: u8) -> DecoderConfig {
    let (line, event) = match (control >> 5) & 3 {
        0 => return DecoderConfig::default(),
        1 => (8, 16),
        2 => (64, 32),
        _ => (1024, 128),
    };
    DecoderConfig::default()
        .max_line_len(line)
        .max_event_len(event)
}

/// `stream` cut into chunks of irregular sizes (empty ones included) drawn
/// from a generator seeded by `control` and the stream itself.
fn irregular_chunks(stream: &[u8], control: u8) -> Vec<&[u8]> {
    let mut state = u32::from(control) << 16 | stream.len() as u32 | 1;
    let mut chunks = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        // xorshift32: cheap, and the same input always gets the same cuts.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = (state % 8) as usize; // 0..=7, so CR|LF and BOM splits are common
        let (chunk, after) = rest.split_at(size.min(rest.len()));
        chunks.push(chunk);
        rest = after;
    }
    chunks
}

/// The items written back with the encoder: what a server relaying them would
/// send. Errors have no wire form and are left out.
fn reencode(items: &[Item]) -> (Vec<u8>, Vec<Item>) {
    let mut wire = BytesMut::new();
    let mut expected = Vec::new();
    for item in items {
        match item {
            Item::Event(event) => {
                Event::builder()
                    .id(event.id.as_str())
                    .event(event.event_type.as_str())
                    .data(event.data.as_str())
                    .build()
                    .expect("a decoded event can always be encoded")
                    .encode(&mut wire);
            }
            Item::Comment(text) => encode_comment(text, &mut wire),
            Item::Retry(delay) => {
                Event::builder()
                    .retry(*delay)
                    .build()
                    .expect("a retry can always be encoded")
                    .encode(&mut wire);
            }
            Item::Error(_) => continue,
            _ => unreachable!("an item kind this target does not know: {item:?}"),
        }
        expected.push(item.clone());
    }
    (wire.to_vec(), expected)
}

fuzz_target!(|input: &[u8]| {
    let Some((&control, stream)) = input.split_first() else {
        return;
    };
    let config = config(control);

    // 1. Chunking does not matter: whole, fixed-size pieces, irregular pieces.
    let whole = decode(config, [stream]);
    let size = usize::from(control & 0x1f) + 1;
    assert_eq!(
        decode(config, stream.chunks(size)),
        whole,
        "chunks of {size}"
    );
    assert_eq!(
        decode(config, irregular_chunks(stream, control)),
        whole,
        "irregular chunks"
    );

    // 2. What comes out is well formed.
    for item in &whole.items {
        match item {
            Item::Event(event) => {
                assert!(
                    !event.event_type.is_empty(),
                    "the type defaults to `message`"
                );
                assert!(!event.event_type.contains(['\r', '\n']));
                assert!(!event.id.contains(['\r', '\n', '\0']));
                assert!(!event.data.contains('\r'), "a CR always ends a line");
            }
            Item::Comment(text) => assert!(!text.contains(['\r', '\n'])),
            _ => {}
        }
    }
    assert!(!whole.last_event_id.contains(['\r', '\n', '\0']));

    // 3. `Finish` is right: a stream ending with a blank line ends clean;
    // closing whatever was open (three LFs) always ends clean and keeps the
    // items so far; after a clean end, blank lines change nothing (so nothing
    // was pending).
    if stream.ends_with(b"\n\n") {
        assert_eq!(whole.finish, Finish::Clean);
    }
    let mut closed = stream.to_vec();
    closed.extend_from_slice(b"\n\n\n");
    let closed = decode(config, [&closed[..]]);
    assert_eq!(closed.finish, Finish::Clean);
    assert!(
        closed.items.starts_with(&whole.items),
        "items never depend on what follows"
    );
    if whole.finish == Finish::Clean {
        assert_eq!(
            closed, whole,
            "blank lines after a clean end change nothing"
        );
    }

    // 4. Encoding the items and decoding them again gives the same items.
    let (wire, expected) = reencode(&whole.items);
    let again = decode(DecoderConfig::default(), [&wire[..]]);
    assert_eq!(
        again.items,
        expected,
        "re-encoded as {:?}",
        String::from_utf8_lossy(&wire)
    );
    assert_eq!(again.finish, Finish::Clean);
});
