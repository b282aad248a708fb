//! Writing events in the `text/event-stream` format.
//!
//! Every field is written `name: value` (with the space) so that a value that
//! itself starts with a space survives the decoder's removal of one leading space;
//! empty values are written `name:`. Line breaks (CR, LF, CRLF) in data and
//! comments start a new `data:` or comment line, which is how the format carries
//! multi-line text. Lines end with LF.

use bytes::{BufMut, Bytes, BytesMut};
use memchr::memchr2;

use crate::event::Event;

/// A keep-alive: an empty comment line and the blank line that ends it.
pub const KEEP_ALIVE: &[u8] = b":\n\n";

impl Event {
    /// Appends the encoded event, ending with its blank line, to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.reserve(self.encoded_len_hint());
        if let Some(comment) = &self.comment {
            put_lines(buf, b"", comment);
        }
        if let Some(id) = &self.id {
            put_field(buf, b"id", id.as_bytes());
        }
        if let Some(event_type) = &self.event_type {
            put_field(buf, b"event", event_type.as_bytes());
        }
        if let Some(retry) = self.retry {
            let millis = u64::try_from(retry.as_millis()).unwrap_or(u64::MAX);
            put_field(buf, b"retry", itoa_u64(millis, &mut [0; 20]));
        }
        if let Some(data) = &self.data {
            put_lines(buf, b"data", data);
        }
        buf.put_u8(b'\n');
    }

    /// The encoded event as shared bytes: encode once, clone the `Bytes` for every
    /// subscriber (a clone is a reference-count increment, not a copy).
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len_hint());
        self.encode(&mut buf);
        buf.freeze()
    }

    /// Enough room for the common case: one line per field plus the blank line.
    fn encoded_len_hint(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, |s| s.len() + 8);
        text(&self.comment) + text(&self.id) + text(&self.event_type) + text(&self.data) + 30
    }
}

/// Appends a comment (`: text` lines, each line break starting a new one) to `buf`,
/// without the blank line: a comment alone is a complete item on the wire.
pub fn encode_comment(text: &str, buf: &mut BytesMut) {
    put_lines(buf, b"", text);
}

/// Writes `text` as one `name: line` per line of it; an empty name writes comments.
fn put_lines(buf: &mut BytesMut, name: &[u8], text: &str) {
    let mut rest = text.as_bytes();
    loop {
        match memchr2(b'\r', b'\n', rest) {
            None => {
                put_field(buf, name, rest);
                return;
            }
            Some(i) => {
                put_field(buf, name, &rest[..i]);
                let skip = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = &rest[i + skip..];
            }
        }
    }
}

fn put_field(buf: &mut BytesMut, name: &[u8], value: &[u8]) {
    buf.put_slice(name);
    if value.is_empty() {
        buf.put_u8(b':');
    } else {
        buf.put_slice(b": ");
        buf.put_slice(value);
    }
    buf.put_u8(b'\n');
}

/// Formats `n` in decimal into `scratch`, without allocating.
fn itoa_u64(mut n: u64, scratch: &mut [u8; 20]) -> &[u8] {
    let mut start = scratch.len();
    loop {
        start -= 1;
        scratch[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &scratch[start..];
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn encoded(event: &Event) -> String {
        String::from_utf8(event.to_bytes().to_vec()).unwrap()
    }

    #[test]
    fn writes_every_field_with_a_space() {
        let event = Event::builder()
            .comment("hi")
            .id("7")
            .event("update")
            .retry(Duration::from_millis(2500))
            .data(" leading space")
            .build()
            .unwrap();
        assert_eq!(
            encoded(&event),
            ": hi\nid: 7\nevent: update\nretry: 2500\ndata:  leading space\n\n"
        );
    }

    #[test]
    fn splits_data_and_comments_at_every_kind_of_line_break() {
        let event = Event::builder()
            .comment("a\r\nb")
            .data("1\r\n2\r3\n4\n")
            .build()
            .unwrap();
        assert_eq!(
            encoded(&event),
            ": a\n: b\ndata: 1\ndata: 2\ndata: 3\ndata: 4\ndata:\n\n"
        );
    }

    #[test]
    fn empty_values_have_no_trailing_space() {
        let event = Event::builder().id("").data("").build().unwrap();
        assert_eq!(encoded(&event), "id:\ndata:\n\n");
        assert_eq!(encoded(&Event::default()), "\n");
    }

    #[test]
    fn retry_extremes() {
        let zero = Event::builder().retry(Duration::ZERO).build().unwrap();
        assert_eq!(encoded(&zero), "retry: 0\n\n");
        let max = Event::builder().retry(Duration::MAX).build().unwrap();
        assert_eq!(encoded(&max), format!("retry: {}\n\n", u64::MAX));
    }

    #[test]
    fn standalone_comment() {
        let mut buf = BytesMut::new();
        encode_comment("keep\nalive", &mut buf);
        assert_eq!(&buf[..], b": keep\n: alive\n");
    }
}
