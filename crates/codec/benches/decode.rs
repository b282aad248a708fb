//! Decoding throughput of `tidings-codec`'s [`Decoder`] side by side with the
//! `eventsource-stream` and `sse-stream` crates, and a check that our decoder
//! works in linear time whatever the chunking.
//!
//! Run with `cargo bench -p tidings-codec --bench decode` (results and the
//! machine they came from are in `BENCHMARKS.md`).
//!
//! Every decoder gets the same bytes in the same 4 KiB chunks: ours through
//! [`Decoder::feed`], the peers as a `Stream` of [`Bytes`] driven to the end
//! by `futures_executor::block_on` (the stream is always ready, so this costs a
//! poll per item, nothing more). Each run counts the events and their data
//! bytes and hands the tally to `black_box`, so no decoding work is dead code.
//! Before measuring, all three decoders must yield the very same events
//! (type, data, id) for every input; the benchmark panics otherwise.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::hint::black_box;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use eventsource_stream::Eventsource;
use futures_executor::block_on;
use futures_util::{Stream, StreamExt};
use sse_stream::SseByteStream;
use tidings_codec::{Decoder, Finish, Item};

/// How a network read typically hands bytes to a decoder.
const CHUNK: usize = 4 << 10;

/// One benchmark input: the stream and how many events it holds.
struct Input {
    name: &'static str,
    stream: Bytes,
    events: usize,
}

/// (a) 10 000 small events, the shape of a typical notification feed.
fn small_events() -> Input {
    let events = 10_000;
    let mut text = String::new();
    for n in 0..events {
        write!(text, "id: {n}\nevent: tick\ndata: {{\"n\":{n}}}\n\n").unwrap();
    }
    Input {
        name: "small_events",
        stream: Bytes::from(text),
        events,
    }
}

/// (b) 16 events of 64 KiB data each, sent as 1 024 `data:` lines of 63
/// bytes (plus the LF that joins them).
fn large_events() -> Input {
    let events = 16;
    let line: String = (0..63).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let mut text = String::new();
    for n in 0..events {
        write!(text, "id: {n}\nevent: snapshot\n").unwrap();
        for _ in 0..1024 {
            writeln!(text, "data: {line}").unwrap();
        }
        text.push('\n');
    }
    Input {
        name: "large_events",
        stream: Bytes::from(text),
        events,
    }
}

/// (c) One event whose data is a single 1 MiB line, JSON-like text with a
/// two-byte UTF-8 character now and then so that chunk edges split some.
fn long_line() -> Input {
    Input {
        name: "long_line",
        stream: Bytes::from(one_line_event(1 << 20, MIXED)),
        events: 1,
    }
}

/// (d) The same line in plain ASCII: shows how much of (c) is UTF-8 checking.
fn long_line_ascii() -> Input {
    Input {
        name: "long_line_ascii",
        stream: Bytes::from(one_line_event(1 << 20, ASCII)),
        events: 1,
    }
}

const MIXED: &str = "{\"k\":\"grüße\",\"v\":[1,2,3]},";
const ASCII: &str = "{\"k\":\"gruss\",\"v\":[1,2,3]},";

/// `id: 1`, then a `data:` line of exactly `len` bytes of `pattern` repeated,
/// then a blank line.
fn one_line_event(len: usize, pattern: &str) -> String {
    let mut text = String::from("id: 1\ndata: ");
    let start = text.len();
    while text.len() - start < len {
        text.push_str(pattern);
    }
    while text.len() - start > len {
        text.pop(); // the patterns end in ASCII, so this keeps whole characters
    }
    text.push_str("\n\n");
    text
}

/// Small events, as many as fit in `len` bytes.
fn small_events_within(len: usize) -> Bytes {
    let mut text = String::new();
    let mut event = String::new();
    for n in 0.. {
        event.clear();
        write!(event, "id: {n}\nevent: tick\ndata: {{\"n\":{n}}}\n\n").unwrap();
        if text.len() + event.len() > len {
            break;
        }
        text.push_str(&event);
    }
    Bytes::from(text)
}

/// `stream` cut into `size`-byte chunks that share its buffer.
fn chunks(stream: &Bytes, size: usize) -> Vec<Bytes> {
    (0..stream.len())
        .step_by(size)
        .map(|start| stream.slice(start..stream.len().min(start + size)))
        .collect()
}

/// The chunks as the byte stream a network client would hand a decoder.
fn byte_stream(chunks: &[Bytes]) -> impl Stream<Item = Result<Bytes, Infallible>> + '_ {
    futures_util::stream::iter(chunks.iter().cloned().map(Ok))
}

/// Our decoder; calls `on_event(type, data, id)` for every dispatched event.
fn decode_ours(chunks: &[Bytes], mut on_event: impl FnMut(&str, &str, &str)) {
    let mut decoder = Decoder::new();
    for chunk in chunks {
        for item in decoder.feed(chunk) {
            if let Item::Event(event) = item {
                on_event(&event.event_type, &event.data, &event.id);
            }
        }
    }
    assert_eq!(decoder.finish(), Finish::Clean);
}

/// `eventsource-stream`; calls `on_event(type, data, id)` for every event.
fn decode_eventsource_stream(chunks: &[Bytes], mut on_event: impl FnMut(&str, &str, &str)) {
    block_on(async {
        let mut events = byte_stream(chunks).eventsource();
        while let Some(event) = events.next().await {
            let event = event.expect("eventsource-stream fails on valid input");
            on_event(&event.event, &event.data, &event.id);
        }
    });
}

/// `sse-stream`; calls `on_event(type, data, id)` for every block with data.
/// It yields raw blocks (no `message` default, no id carried over), so the
/// defaults are filled in here; every event of our inputs carries its own id.
fn decode_sse_stream(chunks: &[Bytes], mut on_event: impl FnMut(&str, &str, &str)) {
    block_on(async {
        let mut blocks = pin!(SseByteStream::new(byte_stream(chunks)));
        while let Some(block) = blocks.next().await {
            let block = block.expect("sse-stream fails on valid input");
            let Some(data) = block.data.as_deref() else {
                continue;
            };
            let event_type = match block.event.as_deref() {
                None | Some("") => "message",
                Some(event_type) => event_type,
            };
            on_event(event_type, data, block.id.as_deref().unwrap_or(""));
        }
    });
}

/// Events and data bytes seen: what the measured loops hand to `black_box`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    events: usize,
    data_bytes: usize,
}

impl Tally {
    fn count(&mut self, _event_type: &str, data: &str, _id: &str) {
        self.events += 1;
        self.data_bytes += data.len();
    }
}

/// What one decoder saw: (type, data, id) of every event.
type Seen = Vec<(String, String, String)>;

fn recorder(seen: &mut Seen) -> impl FnMut(&str, &str, &str) + '_ {
    |t, d, i| seen.push((t.to_owned(), d.to_owned(), i.to_owned()))
}

/// Panics unless every decoder yields the same events, as many as expected.
fn assert_decoders_agree(input: &Input, chunks: &[Bytes]) {
    let (mut ours, mut ess, mut sse) = (Seen::new(), Seen::new(), Seen::new());
    decode_ours(chunks, recorder(&mut ours));
    decode_eventsource_stream(chunks, recorder(&mut ess));
    decode_sse_stream(chunks, recorder(&mut sse));
    assert_eq!(ours.len(), input.events, "{}: tidings-codec", input.name);
    assert!(ess == ours, "{}: eventsource-stream disagrees", input.name);
    assert!(sse == ours, "{}: sse-stream disagrees", input.name);
}

fn peers(c: &mut Criterion) {
    for input in [
        small_events(),
        large_events(),
        long_line(),
        long_line_ascii(),
    ] {
        let chunks = chunks(&input.stream, CHUNK);
        assert_decoders_agree(&input, &chunks);

        let mut group = c.benchmark_group(format!("decode/{}", input.name));
        group.throughput(Throughput::Bytes(input.stream.len() as u64));
        group.bench_function("tidings-codec", |b| {
            b.iter(|| {
                let mut tally = Tally::default();
                decode_ours(black_box(&chunks), |t, d, i| tally.count(t, d, i));
                black_box(tally)
            });
        });
        group.bench_function("eventsource-stream", |b| {
            b.iter(|| {
                let mut tally = Tally::default();
                decode_eventsource_stream(black_box(&chunks), |t, d, i| tally.count(t, d, i));
                black_box(tally)
            });
        });
        group.bench_function("sse-stream", |b| {
            b.iter(|| {
                let mut tally = Tally::default();
                decode_sse_stream(black_box(&chunks), |t, d, i| tally.count(t, d, i));
                black_box(tally)
            });
        });
        group.finish();
    }
}

/// Our decoder alone on inputs of doubling size: with linear work the
/// throughput (bytes per second) stays the same when the size doubles.
fn linear_time(c: &mut Criterion) {
    let mut group = c.benchmark_group("linear/long_line_1KiB_chunks");
    for mib in [4, 8] {
        let stream = Bytes::from(one_line_event(mib << 20, MIXED));
        let chunks = chunks(&stream, 1 << 10);
        let mut tally = Tally::default();
        decode_ours(&chunks, |t, d, i| tally.count(t, d, i));
        assert_eq!((tally.events, tally.data_bytes), (1, mib << 20));
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{mib}MiB")),
            &chunks,
            |b, chunks| {
                b.iter(|| {
                    let mut tally = Tally::default();
                    decode_ours(black_box(chunks), |t, d, i| tally.count(t, d, i));
                    black_box(tally)
                });
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("linear/small_events_1B_chunks");
    for kib in [32, 64] {
        let stream = small_events_within(kib << 10);
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{kib}KiB")),
            &bytes,
            |b, bytes| {
                b.iter(|| {
                    let mut decoder = Decoder::new();
                    let mut events = 0_usize;
                    for byte in black_box(bytes) {
                        events += decoder
                            .feed(byte)
                            .filter(|item| matches!(item, Item::Event(_)))
                            .count();
                    }
                    assert_eq!(decoder.finish(), Finish::Clean);
                    black_box(events)
                });
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Modest times keep the whole run to a few minutes on a shared machine.
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = peers, linear_time
}
criterion_main!(benches);
