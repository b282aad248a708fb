//! Counting the events of a stream without keeping them: what the load
//! generator's subscribers need (how many events, and when each first data
//! line says it was sent), at the cost of a scan for line ends.
//!
//! Why not `tidings_codec::Decoder` here: it builds every event (its data
//! copied out of the read buffer, validated as UTF-8), which is right for a
//! client and too much for a generator that shares the server's two cores.
//! Measured with 1 000 subscribers and 64 KiB updates: the decoder's copies
//! were 20 % of the generator's samples and UTF-8 validation 2.4 %; the
//! generator, not the server, then set the pace (BENCHMARKS.md, scenario E).
//! The field rules are the same as the codec's (WHATWG "interpreting an event
//! stream"), checked against it by the tests below.

/// How much of a line's start is kept: `data:` or `data: `, then `{"t":` and
/// up to 20 digits.
const KEPT: usize = 40;

/// One event that a blank line dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counted {
    /// `t` from the event's first data line (`{"t":MICROS,...`), if it had one.
    pub(crate) sent_at: Option<u64>,
}

/// An incremental event counter over a stream's body bytes.
#[derive(Debug)]
pub(crate) struct Counter {
    /// The first bytes of the line being read.
    line: [u8; KEPT],
    line_len: usize,
    /// The previous byte ended a line with CR: an LF next belongs to it.
    after_cr: bool,
    /// Bytes of the stream seen so far, up to 3 (for a leading BOM).
    seen: u8,
    /// The event being read has a data line (so a blank line dispatches it).
    has_data: bool,
    sent_at: Option<u64>,
}

impl Counter {
    pub(crate) fn new() -> Counter {
        Counter {
            line: [0; KEPT],
            line_len: 0,
            after_cr: false,
            seen: 0,
            has_data: false,
            sent_at: None,
        }
    }

    /// Feeds body bytes; `event` is called for each event they complete.
    pub(crate) fn feed(&mut self, mut input: &[u8], mut event: impl FnMut(Counted)) {
        if self.seen < 3 {
            input = self.skip_bom(input);
        }
        while !input.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if input[0] == b'\n' {
                    input = &input[1..];
                    continue;
                }
            }
            match memchr::memchr2(b'\n', b'\r', input) {
                Some(end) => {
                    self.keep(&input[..end]);
                    self.after_cr = input[end] == b'\r';
                    self.end_line(&mut event);
                    input = &input[end + 1..];
                }
                None => {
                    self.keep(input);
                    return;
                }
            }
        }
    }

    /// Drops a UTF-8 byte order mark at the very start of the stream.
    fn skip_bom<'a>(&mut self, input: &'a [u8]) -> &'a [u8] {
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        let mut input = input;
        while self.seen < 3 {
            let Some((&b, rest)) = input.split_first() else {
                return input;
            };
            if b != BOM[self.seen as usize] {
                // Not a BOM: the bytes matched so far were the line's start.
                let matched = &BOM[..self.seen as usize];
                self.seen = 3;
                self.keep(matched);
                return input;
            }
            self.seen += 1;
            input = rest;
        }
        input
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = KEPT - self.line_len;
        let take = bytes.len().min(room);
        self.line[self.line_len..self.line_len + take].copy_from_slice(&bytes[..take]);
        self.line_len += take;
        if self.seen < 3 && !bytes.is_empty() {
            self.seen = 3;
        }
    }

    fn end_line(&mut self, event: &mut impl FnMut(Counted)) {
        let line = &self.line[..self.line_len];
        self.line_len = 0;
        self.seen = 3;
        if line.is_empty() {
            if self.has_data {
                event(Counted {
                    sent_at: self.sent_at,
                });
            }
            self.has_data = false;
            self.sent_at = None;
            return;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        if field == b"data" {
            if !self.has_data {
                self.sent_at = sent_at(value);
            }
            self.has_data = true;
        }
    }
}

/// The send time the publisher put in the data: `{"t":MICROS,...`.
pub(crate) fn sent_at(data: &[u8]) -> Option<u64> {
    let rest = data.strip_prefix(b"{\"t\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidings_codec::{Decoder, Item};

    /// What the codec dispatches, as the counter reports it.
    fn by_codec(stream: &[u8]) -> Vec<Counted> {
        let mut decoder = Decoder::new();
        decoder
            .feed(stream)
            .filter_map(|item| match item {
                Item::Event(event) => Some(Counted {
                    sent_at: sent_at(event.data.as_bytes()),
                }),
                _ => None,
            })
            .collect()
    }

    fn by_counter(stream: &[u8], split: usize) -> Vec<Counted> {
        let mut counter = Counter::new();
        let mut out = Vec::new();
        for piece in stream.chunks(split.max(1)) {
            counter.feed(piece, |c| out.push(c));
        }
        out
    }

    #[test]
    fn counts_what_the_codec_dispatches_however_the_bytes_are_split() {
        let long = format!("data: {{\"t\":7,\"p\":\"{}\"}}\n\n", "x".repeat(100_000));
        let streams: Vec<Vec<u8>> = vec![
            b"id: 1\ndata: {\"t\":123,\"x\":1}\n\n".to_vec(),
            b"\xEF\xBB\xBFdata: {\"t\":5}\n\n".to_vec(),
            b"\xEF\xBBdata: {\"t\":5}\n\n".to_vec(),
            b"data:{\"t\":9}\r\n\r\ndata: {\"t\":10}\r\rdata\n\n".to_vec(),
            b"data: a\r\ndata: {\"t\":1}\r\n\r\ndata: {\"t\":2}\r\n\r\n".to_vec(),
            b": keep-alive\n\nid: 2\n\nevent: x\ndata: a\ndata: {\"t\":1}\n\n".to_vec(),
            b"data: {\"t\":12345678901234567890}\n\ndata: {\"t\":1}\n".to_vec(),
            b"retry: 10\ndata:\n\ndat: {\"t\":1}\n\ndata : x\n\n".to_vec(),
            long.into_bytes(),
        ];
        for stream in &streams {
            let expected = by_codec(stream);
            for split in [1, 2, 3, 5, 7, 64, stream.len()] {
                assert_eq!(
                    by_counter(stream, split),
                    expected,
                    "split {split}: {:?}",
                    String::from_utf8_lossy(&stream[..stream.len().min(80)])
                );
            }
        }
    }

    #[test]
    fn reads_the_send_time_of_the_first_data_line_only() {
        let got = by_counter(b"data: {\"t\":42,\"x\":0}\ndata: {\"t\":43}\n\n", 4);
        assert_eq!(got, [Counted { sent_at: Some(42) }]);
        let got = by_counter(b"data: hello\ndata: {\"t\":43}\n\n", 4);
        assert_eq!(got, [Counted { sent_at: None }]);
    }
}
