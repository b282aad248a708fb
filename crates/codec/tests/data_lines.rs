//! `data` lines that span chunks, whose value the decoder decodes straight
//! into the event's data: the result must be the one the whole line gives, in
//! every chunking, with the same errors at the same points.

mod common;

use common::{Outcome, assert_every_chunking, decode_chunks};
use proptest::prelude::*;
use tidings_codec::{DecodeError, Decoder, DecoderConfig, Finish, Item, MessageEvent};

fn msg(data: &str) -> Item {
    Item::Event(MessageEvent {
        event_type: "message".into(),
        data: data.into(),
        id: String::new(),
    })
}

fn clean(items: Vec<Item>) -> Outcome {
    Outcome {
        items,
        last_event_id: String::new(),
        finish: Finish::Clean,
    }
}

/// The decoder moves a `data` line out of its line buffer only once the line
/// is this long (`DATA_LINE_MIN` in `decode.rs`); the tests pad their lines
/// with `x`s to get there.
const PAD: usize = 300;

fn pad() -> String {
    "x".repeat(PAD)
}

/// `input` with `{pad}` replaced by the padding.
fn padded(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = input;
    while let Some(at) = rest.windows(5).position(|w| w == b"{pad}") {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(pad().as_bytes());
        rest = &rest[at + 5..];
    }
    out.extend_from_slice(rest);
    out
}

/// Decodes `input` (`{pad}` padded) in every chunking `assert_every_chunking`
/// tries, and also cut in three with a middle piece of up to 16 bytes
/// anywhere past the first 250, where the long lines leave the line buffer.
fn check(name: &str, config: DecoderConfig, input: &[u8], items: Vec<Item>) {
    let input = padded(input);
    let items = items
        .into_iter()
        .map(|item| match item {
            Item::Event(mut event) => {
                event.data = event.data.replace("{pad}", &pad());
                Item::Event(event)
            }
            other => other,
        })
        .collect();
    let expected = clean(items);
    assert_every_chunking(name, config, &input, &expected);
    for i in 250.min(input.len())..=input.len() {
        for j in i..=input.len().min(i + 16) {
            let chunks = [&input[..i], &input[i..j], &input[j..]];
            assert_eq!(
                decode_chunks(config, chunks),
                expected,
                "{name}: split at {i} and {j}"
            );
        }
    }
}

#[test]
fn multi_byte_characters_split_anywhere() {
    check(
        "two-, three- and four-byte characters",
        DecoderConfig::default(),
        "data: {pad}grüße € 😀 end\ndata:{pad}ü\n\n".as_bytes(),
        vec![msg("{pad}grüße € 😀 end\n{pad}ü")],
    );
}

#[test]
fn split_character_then_invalid_byte() {
    // A character cut by a chunk edge, then a byte that cannot continue it,
    // then one that can start nothing: as `from_utf8_lossy` on the whole line.
    check(
        "cut character then invalid bytes",
        DecoderConfig::default(),
        b"data: {pad}a\xC3\xBC\xE2\x82\xFFb\xF0\x9F\x98\x80\xED\xA0\x80z\n\n",
        vec![msg("{pad}aü\u{FFFD}\u{FFFD}b😀\u{FFFD}\u{FFFD}\u{FFFD}z")],
    );
    check(
        "invalid bytes right after data:, and where the line leaves the buffer",
        DecoderConfig::default(),
        b"data:\xFF \xC0\xAF{pad}\xE2\x82\xAC\xF0\x9F\x98\n\n",
        vec![msg("\u{FFFD} \u{FFFD}\u{FFFD}{pad}€\u{FFFD}")],
    );
}

#[test]
fn character_cut_off_by_the_line_end() {
    check(
        "incomplete characters before LF, CR and CRLF",
        DecoderConfig::default(),
        b"data: {pad}ab\xE2\x82\ndata: {pad}\xF0\x9F\rdata: {pad}\xC3\r\ndata: ok\n\n",
        vec![msg("{pad}ab\u{FFFD}\n{pad}\u{FFFD}\n{pad}\u{FFFD}\nok")],
    );
}

#[test]
fn value_space_and_name_split_from_the_value() {
    check(
        "one space dropped, a second kept",
        DecoderConfig::default(),
        b"data:  {pad}\ndata:{pad}\ndata: \ndata\n\n",
        vec![msg(" {pad}\n{pad}\n\n")],
    );
    check(
        "names that only look like data",
        DecoderConfig::default(),
        b"datax: {pad}\ndat: {pad}\nData: {pad}\n data: {pad}\ndata: 5\n\n",
        vec![msg("5")],
    );
}

#[test]
fn byte_order_mark_before_a_data_line() {
    check(
        "BOM",
        DecoderConfig::default(),
        b"\xEF\xBB\xBFdata: \xC3\xBC{pad}\xEF\xBB\xBF\n\n",
        vec![msg("ü{pad}\u{FEFF}")],
    );
}

#[test]
fn data_line_over_the_line_limit_mid_line() {
    // `data: ` and the padding are 306 bytes.
    let config = DecoderConfig::default().max_line_len(310);
    check(
        "over the limit, then a good event",
        config,
        b"data: {pad}1\xC3\xBC45\n\ndata: {pad}1234\n\n",
        vec![
            Item::Error(DecodeError::LineTooLong { limit: 310 }),
            msg("{pad}1234"),
        ],
    );
    check(
        "earlier data of the event dropped with it",
        config,
        b"data: a\ndata: {pad}12345\ndata: b\n\ndata: c\n\n",
        vec![
            Item::Error(DecodeError::LineTooLong { limit: 310 }),
            msg("c"),
        ],
    );
}

#[test]
fn data_line_over_the_event_limit() {
    let config = DecoderConfig::default().max_event_len(308);
    check(
        "over by one",
        config,
        b"data: 12\ndata: {pad}12345\n\ndata: ok\n\n",
        vec![
            Item::Error(DecodeError::EventTooLarge { limit: 308 }),
            msg("ok"),
        ],
    );
    check(
        "exactly the limit",
        config,
        b"data: 12\ndata: {pad}1234\n\n",
        vec![msg("12\n{pad}1234")],
    );
    check(
        "later lines of a dropped event are ignored",
        config,
        b"data: {pad}123456789\ndata: {pad}\n\ndata: ok\n\n",
        vec![
            Item::Error(DecodeError::EventTooLarge { limit: 308 }),
            msg("ok"),
        ],
    );
}

#[test]
fn event_limit_counts_the_line_as_received() {
    // Three invalid bytes count as 3 for their line, but their U+FFFDs as 9
    // for the data that a later line adds to: the same as for a whole line.
    let config = DecoderConfig::default().max_event_len(304);
    check(
        "invalid bytes at the limit",
        config,
        b"data: {pad}\xFF\xFF\xFF\n\ndata: \xFF\xFF\xFF{pad}\ndata: a\n\n",
        vec![
            msg("{pad}\u{FFFD}\u{FFFD}\u{FFFD}"),
            Item::Error(DecodeError::EventTooLarge { limit: 304 }),
        ],
    );
}

#[test]
fn finish_inside_a_data_line_discards_it() {
    let mut decoder = Decoder::new();
    let line = format!("data: {}a", pad());
    assert_eq!(decoder.feed(b"data: one\n\n").count(), 1);
    assert_eq!(decoder.feed(line.as_bytes()).count(), 0);
    assert_eq!(decoder.feed(b"bc").count(), 0);
    assert_eq!(decoder.feed(b"\xC3").count(), 0);
    assert_eq!(decoder.finish(), Finish::DiscardedIncompleteEvent);
    // The cut-off character is not carried into the next stream.
    let items: Vec<Item> = decoder.feed(b"data: \xBCok\n\n").collect();
    assert_eq!(items, vec![msg("\u{FFFD}ok")]);
    assert_eq!(decoder.finish(), Finish::Clean);
}

#[test]
fn long_data_line_in_small_chunks() {
    let value = "grüße, €😀 ".repeat(5_000);
    let input = format!("data: {value}\ndata: {value}\n\n");
    let expected = clean(vec![msg(&format!("{value}\n{value}"))]);
    for size in [1, 2, 3, 7, 4096] {
        let outcome = decode_chunks(DecoderConfig::default(), input.as_bytes().chunks(size));
        assert_eq!(outcome, expected, "{size}-byte chunks");
    }
}

/// Bytes that make `data` lines interesting: field names, line ends, and
/// pieces of valid and invalid UTF-8.
fn token() -> impl Strategy<Value = &'static [u8]> {
    prop::sample::select(vec![
        &b"data:"[..],
        b"data: ",
        b"data",
        b"id: ",
        b":",
        b" ",
        b"ab",
        b"\n",
        b"\r",
        b"\r\n",
        b"\xC3",
        b"\xBC",
        b"\xE2\x82",
        b"\xAC",
        b"\xF0\x9F",
        b"\x98\x80",
        b"\xFF",
        b"\xED\xA0",
        b"\xEF\xBB\xBF",
        // Long enough to take a line out of the line buffer.
        &[b'x'; 150],
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn chunked_data_lines_decode_as_the_whole(
        tokens in prop::collection::vec(token(), 0..60),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        limits in (1usize..700, 1usize..700),
        limited in any::<bool>(),
    ) {
        let input = tokens.concat();
        let config = if limited {
            DecoderConfig::default().max_line_len(limits.0).max_event_len(limits.1)
        } else {
            DecoderConfig::default()
        };
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([input.len()]) {
            chunks.push(&input[start..cut]);
            start = cut;
        }
        prop_assert_eq!(decode_chunks(config, chunks), decode_chunks(config, [&input[..]]));
    }
}
