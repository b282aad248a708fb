//! The incremental `text/event-stream` decoder.
//!
//! It follows WHATWG HTML § 9.2.6 "Interpreting an event stream" exactly, and
//! works in time linear in its input whatever the chunking: each byte is scanned
//! for a line end once, and only the unfinished tail of a chunk is copied (into a
//! line buffer that is bounded by [`DecoderConfig::max_line_len`]). The lines
//! that lie wholly in one chunk are checked to be UTF-8 together, in one call.
//! The value of a `data` line that spans chunks skips the line buffer: it is
//! decoded piece by piece straight into the event's data, so a long line is
//! copied once.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::mem;
use std::time::Duration;

use memchr::{memchr, memchr2, memrchr2};

use crate::error::DecodeError;
use crate::utf8::{LossyPieces, lossy, utf8};

const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// One thing the stream said, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Item {
    /// A dispatched event (a blank line ended an event with data).
    Event(MessageEvent),
    /// A comment line (`:` and what follows it, one leading space removed).
    Comment(String),
    /// An accepted `retry` field: the new reconnection delay.
    Retry(Duration),
    /// An event was dropped because it broke a size limit; decoding goes on.
    Error(DecodeError),
}

/// A dispatched event, as a browser's `MessageEvent` would carry it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageEvent {
    /// The event type: the last `event` field, or `message` when none or empty.
    pub event_type: String,
    /// The `data` lines joined with LF.
    pub data: String,
    /// The last event id at dispatch (ids persist across events until changed).
    pub id: String,
}

/// Limits that bound the decoder's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecoderConfig {
    /// Longest line accepted, in bytes, line terminator excluded.
    /// Default: 16 MiB.
    pub max_line_len: usize,
    /// Largest `data` of one event, in bytes. Default: 16 MiB.
    pub max_event_len: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            max_line_len: 16 << 20,
            max_event_len: 16 << 20,
        }
    }
}

impl DecoderConfig {
    /// Sets [`max_line_len`](Self::max_line_len).
    #[must_use]
    pub fn max_line_len(mut self, bytes: usize) -> Self {
        self.max_line_len = bytes;
        self
    }

    /// Sets [`max_event_len`](Self::max_event_len).
    #[must_use]
    pub fn max_event_len(mut self, bytes: usize) -> Self {
        self.max_event_len = bytes;
        self
    }
}

/// How a stream ended, as told by [`Decoder::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Finish {
    /// The stream ended between events.
    Clean,
    /// The stream ended inside an event (no closing blank line); that event was
    /// discarded, as the standard requires.
    DiscardedIncompleteEvent,
}

/// How a `data` line starts; its value follows (after one optional space).
const DATA: &[u8] = b"data:";

/// An unfinished `data` line shorter than this stays in the line buffer: the
/// copy saved on a short line is less than what decoding in pieces costs
/// (when a stream comes a few bytes at a time, say), and a long line moves out
/// having been copied once more only this far.
const DATA_LINE_MIN: usize = 256;

/// A `data` line that spans chunks, its value decoded into the event's data
/// as it arrives.
#[derive(Debug, Clone)]
struct DataLine {
    /// Bytes of the line so far, `data:` included, as `max_line_len` counts.
    line_len: usize,
    /// Where the value starts in the line: after `data:` and one space.
    value_start: usize,
    /// The event's data before this line, which `max_event_len` counts.
    data_len_before: usize,
    utf8: LossyPieces,
}

impl DataLine {
    fn push(&mut self, data: &mut String, bytes: &[u8]) {
        self.line_len += bytes.len();
        self.utf8.push(data, bytes);
    }
}

/// Where the decoder is with the optional byte-order mark at the stream start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bom {
    /// `n` bytes of a BOM seen so far (0..=2).
    Pending(usize),
    Done,
}

/// An incremental event-stream decoder: [`feed`](Decoder::feed) it bytes in any
/// chunks and take [`Item`]s out.
///
/// ```
/// use tidings_codec::{Decoder, Item};
///
/// let mut decoder = Decoder::new();
/// let mut items = Vec::new();
/// for chunk in [&b"id: 1\ndata: hel"[..], b"lo\r", b"\n\n: ping\n"] {
///     items.extend(decoder.feed(chunk));
/// }
/// let Item::Event(event) = &items[0] else { panic!() };
/// assert_eq!((event.event_type.as_str(), event.data.as_str(), event.id.as_str()), ("message", "hello", "1"));
/// assert_eq!(items[1], Item::Comment("ping".into()));
/// assert_eq!(decoder.finish(), tidings_codec::Finish::Clean);
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    config: DecoderConfig,
    bom: Bom,
    /// The unfinished line carried over from earlier chunks.
    line: Vec<u8>,
    /// The previous chunk ended with CR: a LF opening the next one belongs to it.
    after_cr: bool,
    /// Skipping the rest of a line that broke `max_line_len`.
    skipping_line: bool,
    /// The unfinished line is a `data` line whose value is being decoded
    /// straight into `data` (then `line` is empty).
    data_line: Option<DataLine>,
    /// The current event broke a limit: drop it at its blank line.
    dropping_event: bool,
    /// A field line was seen since the last blank line.
    in_event: bool,
    data: String,
    event_type: String,
    id_buffer: String,
    last_event_id: String,
    items: VecDeque<Item>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::with_config(DecoderConfig::default())
    }
}

impl Decoder {
    /// A decoder with the default limits.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// A decoder with the given limits.
    pub fn with_config(config: DecoderConfig) -> Decoder {
        Decoder {
            config,
            bom: Bom::Pending(0),
            line: Vec::new(),
            after_cr: false,
            skipping_line: false,
            data_line: None,
            dropping_event: false,
            in_event: false,
            data: String::new(),
            event_type: String::new(),
            id_buffer: String::new(),
            last_event_id: String::new(),
            items: VecDeque::new(),
        }
    }

    /// Starts from a known last event id, as a client resuming a stream does.
    /// Events without an `id` field then carry this id.
    #[must_use]
    pub fn with_last_event_id(mut self, id: impl Into<String>) -> Decoder {
        self.last_event_id = id.into();
        self.id_buffer.clone_from(&self.last_event_id);
        self
    }

    /// The last event id committed by a blank line: what a client sends as
    /// `Last-Event-ID` when it reconnects. Empty when none (or reset by `id:`).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Decodes `chunk` and returns the items it completed.
    ///
    /// Items not taken from the returned iterator stay queued and come first
    /// next time (or from [`next_item`](Self::next_item)); nothing is lost.
    pub fn feed(&mut self, chunk: &[u8]) -> Items<'_> {
        self.push_bytes(chunk);
        Items { decoder: self }
    }

    /// Takes the next queued item, if any.
    pub fn next_item(&mut self) -> Option<Item> {
        self.items.pop_front()
    }

    /// Ends the stream: an unterminated line or event is discarded, as the
    /// standard requires. The decoder is then ready for a new stream (a
    /// reconnection); it keeps the last event id, as browsers do.
    ///
    /// Queued items stay available from [`next_item`](Self::next_item).
    pub fn finish(&mut self) -> Finish {
        let incomplete = self.in_event
            || !self.line.is_empty()
            || self.skipping_line
            || self.data_line.is_some()
            || matches!(self.bom, Bom::Pending(n) if n > 0);
        self.bom = Bom::Pending(0);
        self.line = Vec::new();
        self.after_cr = false;
        self.skipping_line = false;
        self.data_line = None;
        self.dropping_event = false;
        self.in_event = false;
        self.data = String::new();
        self.event_type.clear();
        self.id_buffer.clone_from(&self.last_event_id);
        if incomplete {
            Finish::DiscardedIncompleteEvent
        } else {
            Finish::Clean
        }
    }

    fn push_bytes(&mut self, mut input: &[u8]) {
        if let Bom::Pending(mut seen) = self.bom {
            while seen < BOM.len() {
                match input.first() {
                    None => {
                        self.bom = Bom::Pending(seen);
                        return;
                    }
                    Some(&b) if b == BOM[seen] => {
                        seen += 1;
                        input = &input[1..];
                    }
                    Some(_) => break,
                }
            }
            self.bom = Bom::Done;
            if seen < BOM.len() {
                // Not a BOM after all: the bytes taken are stream content (an
                // incomplete UTF-8 sequence, so they will decode as U+FFFD).
                self.push_lines(&BOM[..seen]);
            }
        }
        self.push_lines(input);
    }

    fn push_lines(&mut self, input: &[u8]) {
        if input.is_empty() {
            return; // an empty chunk must not forget a pending CR
        }
        let mut pos = usize::from(mem::take(&mut self.after_cr) && input[0] == b'\n');
        // The lines that lie wholly in `input`, checked to be UTF-8 by one call
        // when the first of them is processed: one check over a chunk is
        // far cheaper than over each value, and it spares every value its own
        // check. `None` inside: not UTF-8, so each value gets `lossy`.
        let mut text: Option<Option<(usize, &str)>> = None;
        // No line ends at or after this. Finding the last one for `text` also
        // spares the forward search the unfinished line after it, so each byte
        // is still searched once.
        let mut lines_end = input.len();
        while let Some(len) = find_line_end(&input[pos..lines_end]) {
            let end = pos + len;
            let content = &input[pos..end];
            let terminator = if input[end] == b'\r' {
                match input.get(end + 1) {
                    Some(b'\n') => 2,
                    Some(_) => 1,
                    None => {
                        self.after_cr = true;
                        1
                    }
                }
            } else {
                1
            };
            if self.skipping_line {
                self.skipping_line = false;
            } else if let Some(data_line) = self.data_line.take() {
                self.end_data_line(data_line, content);
            } else if self.line.is_empty() {
                if content.len() > self.config.max_line_len {
                    self.line_too_long();
                } else if content.is_empty() {
                    self.dispatch();
                } else {
                    let text = *text.get_or_insert_with(|| {
                        let last = memrchr2(b'\r', b'\n', &input[end..]).map_or(end, |i| end + i);
                        lines_end = last + 1;
                        utf8(&input[pos..=last]).map(|text| (pos, text))
                    });
                    // Line ends are ASCII, so `pos` and `end` are char boundaries.
                    let content_text = text.map(|(start, text)| &text[pos - start..end - start]);
                    self.process_line(content, content_text);
                }
            } else if self.line.len() + content.len() > self.config.max_line_len {
                self.line.clear();
                self.line_too_long();
            } else {
                let mut line = mem::take(&mut self.line);
                line.extend_from_slice(content);
                self.process_line(&line, None);
                line.clear();
                self.line = line;
            }
            pos = end + terminator;
        }
        let input = &input[pos..];
        if input.is_empty() || self.skipping_line {
            return;
        }
        let line_len = match &self.data_line {
            Some(data_line) => data_line.line_len,
            None => self.line.len(),
        };
        if line_len + input.len() > self.config.max_line_len {
            self.line = Vec::new();
            self.data_line = None;
            self.line_too_long();
            self.skipping_line = true;
        } else if let Some(data_line) = &mut self.data_line {
            data_line.push(&mut self.data, input);
        } else {
            self.line.extend_from_slice(input);
            self.start_data_line();
        }
    }

    /// Once the unfinished line is a long enough `data` line, moves its value
    /// into `data`, where the rest of the line will go as it comes.
    fn start_data_line(&mut self) {
        let line = &self.line;
        if self.dropping_event || line.len() < DATA_LINE_MIN || !line.starts_with(DATA) {
            return;
        }
        let start = value_start(line, DATA.len());
        let mut data_line = DataLine {
            line_len: line.len(),
            value_start: start,
            data_len_before: self.data.len(),
            utf8: LossyPieces::default(),
        };
        data_line.utf8.push(&mut self.data, &line[start..]);
        self.data_line = Some(data_line);
        self.line.clear();
    }

    /// Ends a `data` line whose last part is `content`, as `process_line`
    /// would have ended the whole line: the same limits, checked at the
    /// same point, give the same errors.
    fn end_data_line(&mut self, mut data_line: DataLine, content: &[u8]) {
        data_line.line_len += content.len();
        if data_line.line_len > self.config.max_line_len {
            self.line_too_long();
            return;
        }
        self.in_event = true;
        // The value's length in bytes as received, which is what the check in
        // `process_line` counts: `line_len` less `data:` and the space.
        let value_len = data_line.line_len - data_line.value_start;
        if data_line.data_len_before + value_len + 1 > self.config.max_event_len {
            self.drop_event(DecodeError::EventTooLarge {
                limit: self.config.max_event_len,
            });
            return;
        }
        data_line.utf8.push(&mut self.data, content);
        data_line.utf8.finish(&mut self.data);
        self.data.push('\n');
    }

    fn line_too_long(&mut self) {
        self.drop_event(DecodeError::LineTooLong {
            limit: self.config.max_line_len,
        });
    }

    fn drop_event(&mut self, error: DecodeError) {
        self.items.push_back(Item::Error(error));
        self.dropping_event = true;
        self.in_event = true;
        self.data = String::new();
    }

    /// Interprets one line (terminator excluded). `text` is the same line
    /// when it is already known to be UTF-8, so its values need no check.
    fn process_line(&mut self, line: &[u8], text: Option<&str>) {
        // `line[start..]` as text; `start` always follows an ASCII `:` or
        // space, so it is a char boundary of `text`.
        let text_from = |start: usize| match text {
            Some(text) => Cow::Borrowed(&text[start..]),
            None => lossy(&line[start..]),
        };
        if line.is_empty() {
            self.dispatch();
            return;
        }
        if line[0] == b':' {
            let comment = text_from(value_start(line, 1));
            self.items.push_back(Item::Comment(comment.into_owned()));
            return;
        }
        let (name, start) = match find_colon(line) {
            Some(colon) => (&line[..colon], value_start(line, colon + 1)),
            None => (line, line.len()),
        };
        let value = &line[start..];
        self.in_event = true;
        match name {
            b"data" if !self.dropping_event => {
                if self.data.len() + value.len() + 1 > self.config.max_event_len {
                    self.drop_event(DecodeError::EventTooLarge {
                        limit: self.config.max_event_len,
                    });
                } else {
                    let value = text_from(start);
                    if self.data.capacity() == 0 {
                        // Exactly the room needed, so that the LF does not make
                        // a long first line reallocate (and copy) the buffer.
                        self.data = String::with_capacity(value.len() + 1);
                    }
                    self.data.push_str(&value);
                    self.data.push('\n');
                }
            }
            b"event" if !self.dropping_event => {
                if self.event_type.capacity() == 0 {
                    self.event_type = text_from(start).into_owned();
                } else {
                    self.event_type.clear();
                    self.event_type.push_str(&text_from(start));
                }
            }
            b"id" if memchr(0, value).is_none() => {
                self.id_buffer.clear();
                self.id_buffer.push_str(&text_from(start));
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // All digits, so the only failure is overflow: saturate.
                let millis = text_from(start).parse::<u64>().unwrap_or(u64::MAX);
                self.items
                    .push_back(Item::Retry(Duration::from_millis(millis)));
            }
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        if self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        self.in_event = false;
        if mem::take(&mut self.dropping_event) || self.data.is_empty() {
            self.data.clear();
            self.event_type.clear();
            return;
        }
        let mut data = mem::take(&mut self.data);
        data.pop(); // the LF after the last data line
        let event_type = if self.event_type.is_empty() {
            String::from("message")
        } else {
            mem::take(&mut self.event_type)
        };
        self.items.push_back(Item::Event(MessageEvent {
            event_type,
            data,
            id: self.last_event_id.clone(),
        }));
    }
}

/// The items completed by one [`Decoder::feed`].
#[derive(Debug)]
pub struct Items<'a> {
    decoder: &'a mut Decoder,
}

impl Iterator for Items<'_> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        self.decoder.items.pop_front()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.decoder.items.len();
        (n, Some(n))
    }
}

/// Below this many bytes, the searches below use a plain loop: `memchr`'s SIMD
/// set-up costs more than it saves on the short lines and field names most
/// streams are made of, and on a chunk's last few bytes (one byte fed at a
/// time, say).
const SCALAR_HEAD: usize = 16;

/// The index of the first CR or LF in `bytes`.
fn find_line_end(bytes: &[u8]) -> Option<usize> {
    if bytes.len() <= SCALAR_HEAD {
        bytes.iter().position(|&b| b == b'\r' || b == b'\n')
    } else {
        memchr2(b'\r', b'\n', bytes)
    }
}

/// The index of the first `:` in `line`: looked for in the first bytes one by
/// one (a field name is short), then in the rest with `memchr`.
fn find_colon(line: &[u8]) -> Option<usize> {
    let head = &line[..line.len().min(SCALAR_HEAD)];
    match head.iter().position(|&b| b == b':') {
        Some(colon) => Some(colon),
        None if head.len() == line.len() => None,
        None => memchr(b':', &line[SCALAR_HEAD..]).map(|colon| colon + SCALAR_HEAD),
    }
}

/// Where the value starts in a line whose colon ends at `after_colon`: one
/// leading space is not part of it.
fn value_start(line: &[u8], after_colon: usize) -> usize {
    after_colon + usize::from(line.get(after_colon) == Some(&b' '))
}
