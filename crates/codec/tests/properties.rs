//! Property tests: encoding round-trips through decoding, and decoding does not
//! depend on how the input is chunked.

mod common;

use std::time::Duration;

use common::decode_chunks;
use proptest::prelude::*;
use tidings_codec::{Decoder, DecoderConfig, Event, Finish, Item, MessageEvent};

/// What a browser would see for `event` (sent first on a fresh stream).
fn expected_items(event: &Event) -> Vec<Item> {
    let mut items = Vec::new();
    if let Some(comment) = event.comment() {
        items.extend(
            comment
                .split("\r\n")
                .flat_map(|l| l.split(['\r', '\n']))
                .map(|l| Item::Comment(l.into())),
        );
    }
    if let Some(retry) = event.retry() {
        items.push(Item::Retry(Duration::from_millis(retry.as_millis() as u64)));
    }
    if let Some(data) = event.data() {
        let event_type = match event.event_type() {
            None | Some("") => "message",
            Some(t) => t,
        };
        items.push(Item::Event(MessageEvent {
            event_type: event_type.into(),
            data: data.replace("\r\n", "\n").replace('\r', "\n"),
            id: event.id().unwrap_or("").into(),
        }));
    }
    items
}

fn arb_event() -> impl Strategy<Value = Event> {
    let text = || prop_oneof![".*", "[ a-z:\r\n]*", Just(String::new())];
    (
        proptest::option::of("[^\r\n\0]*"),
        proptest::option::of("[^\r\n]*"),
        proptest::option::of(text()),
        proptest::option::of(0u64..=u64::MAX),
        proptest::option::of(text()),
    )
        .prop_map(|(id, event_type, data, retry, comment)| {
            let mut b = Event::builder();
            if let Some(id) = id {
                b = b.id(id);
            }
            if let Some(t) = event_type {
                b = b.event(t);
            }
            if let Some(d) = data {
                b = b.data(d);
            }
            if let Some(ms) = retry {
                b = b.retry(Duration::from_millis(ms));
            }
            if let Some(c) = comment {
                b = b.comment(c);
            }
            b.build().expect("strategy only makes valid fields")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decode_of_encode_is_the_event(event in arb_event(), split in any::<prop::sample::Index>()) {
        let wire = event.to_bytes();
        let at = split.index(wire.len() + 1);
        let outcome = decode_chunks(DecoderConfig::default(), [&wire[..at], &wire[at..]]);
        prop_assert_eq!(outcome.items, expected_items(&event));
        prop_assert_eq!(outcome.finish, Finish::Clean);
        prop_assert_eq!(outcome.last_event_id, event.id().unwrap_or(""));
    }

    #[test]
    fn a_sequence_of_events_round_trips(events in prop::collection::vec(arb_event(), 1..8)) {
        let mut decoder = Decoder::new();
        let mut last_id = String::new();
        for event in &events {
            let items: Vec<Item> = decoder.feed(&event.to_bytes()).collect();
            if let Some(id) = event.id() {
                last_id = id.to_owned();
            }
            let mut expected = expected_items(event);
            for item in &mut expected {
                if let Item::Event(e) = item {
                    e.id.clone_from(&last_id);
                }
            }
            prop_assert_eq!(items, expected);
            prop_assert_eq!(decoder.last_event_id(), last_id.as_str());
        }
    }

    /// Any bytes at all, cut anywhere: the same items as fed whole.
    #[test]
    fn chunking_never_changes_the_result(
        input in prop::collection::vec(prop_oneof![
            4 => prop::sample::select(b"data:id: event\r\n\xEF\xBB\xBF\xFF:retry0".to_vec()),
            1 => any::<u8>(),
        ], 0..200),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        small in any::<bool>(),
    ) {
        let config = if small {
            DecoderConfig::default().max_line_len(12).max_event_len(20)
        } else {
            DecoderConfig::default()
        };
        let mut offsets: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        offsets.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for offset in offsets {
            chunks.push(&input[start..offset]);
            start = offset;
        }
        chunks.push(&input[start..]);
        prop_assert_eq!(decode_chunks(config, chunks), decode_chunks(config, [&input[..]]));
    }
}

#[test]
fn regression_empty_chunk_between_cr_and_lf() {
    let outcome = decode_chunks(
        DecoderConfig::default(),
        [&b"data: a\r"[..], b"", b"\ndata: b\n\n"],
    );
    assert_eq!(
        outcome.items,
        vec![Item::Event(MessageEvent {
            event_type: "message".into(),
            data: "a\nb".into(),
            id: String::new()
        })]
    );
}

#[test]
fn finish_starts_a_new_stream_and_keeps_the_last_id() {
    let mut decoder = Decoder::new();
    assert_eq!(
        decoder.feed(b"id: 4\ndata: a\n\nid: 5\ndata: half").count(),
        1
    );
    assert_eq!(decoder.finish(), Finish::DiscardedIncompleteEvent);
    assert_eq!(decoder.last_event_id(), "4");
    // The next stream starts clean: no leftover data, a BOM is stripped again,
    // and events without an id carry the id the client resumed from.
    let items: Vec<Item> = decoder.feed(b"\xEF\xBB\xBFdata: b\n\n").collect();
    assert_eq!(
        items,
        vec![Item::Event(MessageEvent {
            event_type: "message".into(),
            data: "b".into(),
            id: "4".into()
        })]
    );
    assert_eq!(decoder.finish(), Finish::Clean);
}

#[test]
fn resuming_decoder_carries_its_id() {
    let mut decoder = Decoder::new().with_last_event_id("17");
    let Some(Item::Event(event)) = decoder.feed(b"data: x\n\n").next() else {
        panic!("expected an event");
    };
    assert_eq!(event.id, "17");
}

#[test]
fn items_left_in_the_iterator_are_not_lost() {
    let mut decoder = Decoder::new();
    let unread = decoder.feed(b"data: 1\n\ndata: 2\n\n");
    assert_eq!(unread.size_hint(), (2, Some(2)));
    let items: Vec<Item> = decoder.feed(b"data: 3\n\n").collect();
    assert_eq!(items.len(), 3);
}
