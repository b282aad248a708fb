//! The decoder against a table of test vectors, one or more per rule of WHATWG
//! HTML "interpreting an event stream". Each vector runs whole, split at every
//! offset (and every pair of offsets when short), and byte by byte.

mod common;

use std::time::Duration;

use common::{Outcome, assert_every_chunking};
use tidings_codec::{DecodeError, DecoderConfig, Finish, Item, MessageEvent};

fn ev(event_type: &str, data: &str, id: &str) -> Item {
    Item::Event(MessageEvent {
        event_type: event_type.into(),
        data: data.into(),
        id: id.into(),
    })
}

fn msg(data: &str) -> Item {
    ev("message", data, "")
}

fn comment(text: &str) -> Item {
    Item::Comment(text.into())
}

fn retry(ms: u64) -> Item {
    Item::Retry(Duration::from_millis(ms))
}

struct Vector {
    name: &'static str,
    input: &'static [u8],
    items: Vec<Item>,
    last_event_id: &'static str,
    finish: Finish,
    config: DecoderConfig,
}

fn v(name: &'static str, input: &'static [u8], items: Vec<Item>) -> Vector {
    Vector {
        name,
        input,
        items,
        last_event_id: "",
        finish: Finish::Clean,
        config: DecoderConfig::default(),
    }
}

impl Vector {
    fn last_id(mut self, id: &'static str) -> Self {
        self.last_event_id = id;
        self
    }
    fn incomplete(mut self) -> Self {
        self.finish = Finish::DiscardedIncompleteEvent;
        self
    }
    fn config(mut self, config: DecoderConfig) -> Self {
        self.config = config;
        self
    }
}

fn vectors() -> Vec<Vector> {
    let small_lines = DecoderConfig::default().max_line_len(10);
    let small_events = DecoderConfig::default().max_event_len(8);
    vec![
        // Fields and values.
        v("one data line", b"data: hello\n\n", vec![msg("hello")]),
        v(
            "no space after colon",
            b"data:hello\n\n",
            vec![msg("hello")],
        ),
        v(
            "only one leading space removed",
            b"data:  hello\n\n",
            vec![msg(" hello")],
        ),
        v(
            "tab is not a space",
            b"data:\thello\n\n",
            vec![msg("\thello")],
        ),
        v(
            "colon inside the value",
            b"data: a:b\n\ndata:: x\n\n",
            vec![msg("a:b"), msg(": x")],
        ),
        v(
            "data lines join with LF",
            b"data: a\ndata: b\ndata: c\n\n",
            vec![msg("a\nb\nc")],
        ),
        v(
            "one trailing LF removed",
            b"data: a\ndata:\n\n",
            vec![msg("a\n")],
        ),
        v(
            "field without colon has empty value",
            b"data\n\n",
            vec![msg("")],
        ),
        v(
            "empty data line dispatches empty data",
            b"data:\n\n",
            vec![msg("")],
        ),
        v("no data, no dispatch", b"event: x\n\n", vec![]),
        v(
            "names are case-sensitive",
            b"Data: x\n\nDATA: y\n\n",
            vec![],
        ),
        v(
            "space before colon is part of the name",
            b"data : x\n\n",
            vec![],
        ),
        v(
            "unknown fields ignored",
            b"foo: bar\ndata: x\nbaz\n\n",
            vec![msg("x")],
        ),
        v("NUL in data kept", b"data: a\0b\n\n", vec![msg("a\0b")]),
        v(
            "several blank lines dispatch once",
            b"data: x\n\n\n\n",
            vec![msg("x")],
        ),
        // Line endings.
        v("CRLF", b"data: a\r\ndata: b\r\n\r\n", vec![msg("a\nb")]),
        v("CR", b"data: a\rdata: b\r\r", vec![msg("a\nb")]),
        v(
            "mixed endings",
            b"data: a\r\ndata: b\rdata: c\n\r\n",
            vec![msg("a\nb\nc")],
        ),
        v(
            "CR CR is two line ends",
            b"data: a\r\rdata: b\r\r",
            vec![msg("a"), msg("b")],
        ),
        v(
            "LF CR is two line ends",
            b"data: a\n\rdata: b\n\r",
            vec![msg("a"), msg("b")],
        ),
        v("CR then LF then CR LF", b"data: a\r\n\r\n", vec![msg("a")]),
        // Event type.
        v(
            "event type",
            b"event: add\ndata: 1\n\n",
            vec![ev("add", "1", "")],
        ),
        v(
            "empty event type means message",
            b"event:\ndata: 1\n\n",
            vec![msg("1")],
        ),
        v(
            "last event field wins",
            b"event: a\nevent: b\ndata: 1\n\n",
            vec![ev("b", "1", "")],
        ),
        v(
            "event type resets after dispatch",
            b"event: a\ndata: 1\n\ndata: 2\n\n",
            vec![ev("a", "1", ""), msg("2")],
        ),
        v(
            "event type resets even without dispatch",
            b"event: a\n\ndata: 2\n\n",
            vec![msg("2")],
        ),
        // Ids.
        v("id", b"id: 1\ndata: a\n\n", vec![ev("message", "a", "1")]).last_id("1"),
        v(
            "id persists across events",
            b"id: 1\ndata: a\n\ndata: b\n\n",
            vec![ev("message", "a", "1"), ev("message", "b", "1")],
        )
        .last_id("1"),
        v(
            "empty id resets",
            b"id: 1\ndata: a\n\nid\ndata: b\n\n",
            vec![ev("message", "a", "1"), ev("message", "b", "")],
        ),
        v(
            "id with NUL ignored",
            b"id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n",
            vec![ev("message", "a", "1"), ev("message", "b", "1")],
        )
        .last_id("1"),
        v("id committed without dispatch", b"id: 5\n\n", vec![]).last_id("5"),
        v(
            "id keeps a second leading space",
            b"id:  7\ndata\n\n",
            vec![ev("message", "", " 7")],
        )
        .last_id(" 7"),
        v(
            "id set after data still counts",
            b"data: a\nid: 9\n\n",
            vec![ev("message", "a", "9")],
        )
        .last_id("9"),
        v(
            "id of an unterminated event is not committed",
            b"id: 1\n\nid: 2\ndata: x\n",
            vec![],
        )
        .last_id("1")
        .incomplete(),
        // Retry.
        v("retry", b"retry: 1000\n", vec![retry(1000)]).incomplete(),
        v("retry zero", b"retry: 0\n\n", vec![retry(0)]),
        v(
            "retry must be all digits",
            b"retry: 10a\nretry: -1\nretry:  5\nretry:\nretry: 1.5\nretry\n\n",
            vec![],
        ),
        v(
            "retry overflow saturates",
            b"retry: 99999999999999999999999\n\n",
            vec![retry(u64::MAX)],
        ),
        v(
            "retry applies at its line, before the event",
            b"data: x\nretry: 5\n\n",
            vec![retry(5), msg("x")],
        ),
        // Comments.
        v(
            "comments",
            b": hi\n:\n:  two\n",
            vec![comment("hi"), comment(""), comment(" two")],
        ),
        v(
            "comment inside an event",
            b"data: a\n: note\ndata: b\n\n",
            vec![comment("note"), msg("a\nb")],
        ),
        // Byte-order mark and UTF-8.
        v("BOM stripped", b"\xEF\xBB\xBFdata: x\n\n", vec![msg("x")]),
        v(
            "only one BOM stripped",
            b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n",
            vec![msg("y")],
        ),
        v(
            "BOM alone then a blank line",
            b"\xEF\xBB\xBF\ndata: x\n\n",
            vec![msg("x")],
        ),
        v(
            "BOM later is content",
            b"data: x\n\n\xEF\xBB\xBFdata: y\n\n",
            vec![msg("x")],
        ),
        v(
            "part of a BOM is not stripped",
            b"\xEF\xBBdata: x\n\ndata: y\n\n",
            vec![msg("y")],
        ),
        v(
            "part of a BOM in data",
            b"\xEF\xBB\n\ndata: \xEF\xBB\n\n",
            vec![msg("\u{FFFD}")],
        ),
        v(
            "invalid UTF-8 becomes U+FFFD",
            b"data: a\xFFb\xC3\n\n",
            vec![msg("a\u{FFFD}b\u{FFFD}")],
        ),
        v(
            "multi-byte characters",
            "data: é€😀\nevent: ünï\nid: ☃\n\n".as_bytes(),
            vec![ev("ünï", "é€😀", "☃")],
        )
        .last_id("☃"),
        v(
            "invalid UTF-8 in a comment",
            b":\xF0\x9F\n",
            vec![comment("\u{FFFD}")],
        ),
        // End of stream.
        v("unterminated event discarded", b"data: x\n", vec![]).incomplete(),
        v(
            "unterminated line discarded",
            b"data: a\n\ndata: b",
            vec![msg("a")],
        )
        .incomplete(),
        v(
            "unterminated comment line",
            b"data: a\n\n: c",
            vec![msg("a")],
        )
        .incomplete(),
        v(
            "a comment does not open an event",
            b"data: a\n\n: c\n",
            vec![msg("a"), comment("c")],
        ),
        v("empty stream", b"", vec![]),
        // Limits.
        v(
            "line too long",
            b"data: 0123456789abc\n\ndata: ok\n\n",
            vec![
                Item::Error(DecodeError::LineTooLong { limit: 10 }),
                msg("ok"),
            ],
        )
        .config(small_lines),
        v(
            "line too long drops its event but keeps the id",
            b"id: 3\ndata: 0123456789\ndata: x\n\ndata: ok\n\n",
            vec![
                Item::Error(DecodeError::LineTooLong { limit: 10 }),
                ev("message", "ok", "3"),
            ],
        )
        .last_id("3")
        .config(small_lines),
        v(
            "line of exactly the limit",
            b"data:12345\n\n",
            vec![msg("12345")],
        )
        .config(small_lines),
        v(
            "unterminated long line at the end",
            b"data: ok\n\ndata: 0123456789",
            vec![
                msg("ok"),
                Item::Error(DecodeError::LineTooLong { limit: 10 }),
            ],
        )
        .config(small_lines)
        .incomplete(),
        v(
            "event too large",
            b"data: 12345\ndata: 678\ndata: 9\n\ndata: ok\n\n",
            vec![
                Item::Error(DecodeError::EventTooLarge { limit: 8 }),
                msg("ok"),
            ],
        )
        .config(small_events),
        v(
            "event of exactly the limit",
            b"data: 1234\ndata: 12\n\n",
            vec![msg("1234\n12")],
        )
        .config(small_events),
    ]
}

#[test]
fn every_vector_in_every_chunking() {
    for vector in vectors() {
        let expected = Outcome {
            items: vector.items,
            last_event_id: vector.last_event_id.to_owned(),
            finish: vector.finish,
        };
        assert_every_chunking(vector.name, vector.config, vector.input, &expected);
    }
}

/// The browser client's tests (`tests/browser/client.test.mjs`) read these
/// vectors, every one with the default limits, from
/// `tests/browser/codec-vectors.json`: this keeps that file what the codec
/// checks. `UPDATE_VECTORS=1 cargo test -p tidings-codec --test vectors`
/// rewrites it.
#[test]
fn the_browser_tests_read_the_same_vectors() {
    let defaults = DecoderConfig::default();
    let list: Vec<serde_json::Value> = vectors()
        .into_iter()
        .filter(|v| v.config == defaults)
        .map(|v| {
            let events: Vec<serde_json::Value> = v
                .items
                .iter()
                .filter_map(|item| match item {
                    Item::Event(e) => Some(serde_json::json!([e.event_type, e.data, e.id])),
                    _ => None,
                })
                .collect();
            serde_json::json!({"name": v.name, "input": v.input, "events": events})
        })
        .collect();
    let text = serde_json::to_string_pretty(&list).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/browser/codec-vectors.json");
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == text,
        "{} is not the codec's vectors: UPDATE_VECTORS=1 cargo test -p tidings-codec --test vectors",
        path.display()
    );
}
