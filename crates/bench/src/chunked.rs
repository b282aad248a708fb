//! An incremental decoder of HTTP/1.1 chunked transfer coding, just enough to
//! read an event stream's body.

/// Where the decoder is within the chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex size line; the value so far.
    Size(usize),
    /// Skipping chunk extensions up to the line end.
    Extension(usize),
    /// Expecting the LF of the size line.
    SizeLf(usize),
    /// Inside chunk data: bytes left.
    Data(usize),
    /// Expecting CR LF after the data.
    DataCr,
    DataLf,
    /// The last chunk was seen.
    Done,
}

/// Turns chunked bytes into body bytes.
#[derive(Debug)]
pub(crate) struct Dechunker {
    state: State,
}

/// A malformed chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct ChunkError;

impl Dechunker {
    pub(crate) fn new() -> Dechunker {
        Dechunker {
            state: State::Size(0),
        }
    }

    /// Whether the terminating chunk was seen.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Feeds `input`, calling `body` with each run of body bytes.
    pub(crate) fn feed(
        &mut self,
        mut input: &[u8],
        mut body: impl FnMut(&[u8]),
    ) -> Result<(), ChunkError> {
        while let Some((&b, rest)) = input.split_first() {
            match self.state {
                State::Size(n) => {
                    self.state = match b {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            let digit = (b as char).to_digit(16).ok_or(ChunkError)? as usize;
                            State::Size(
                                n.checked_mul(16)
                                    .and_then(|n| n.checked_add(digit))
                                    .ok_or(ChunkError)?,
                            )
                        }
                        b';' | b' ' | b'\t' => State::Extension(n),
                        b'\r' => State::SizeLf(n),
                        _ => return Err(ChunkError),
                    };
                }
                State::Extension(n) => {
                    if b == b'\r' {
                        self.state = State::SizeLf(n);
                    }
                }
                State::SizeLf(n) => {
                    if b != b'\n' {
                        return Err(ChunkError);
                    }
                    self.state = if n == 0 { State::Done } else { State::Data(n) };
                }
                State::Data(n) => {
                    let take = n.min(input.len());
                    body(&input[..take]);
                    input = &input[take..];
                    self.state = if take == n {
                        State::DataCr
                    } else {
                        State::Data(n - take)
                    };
                    continue;
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkError);
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkError);
                    }
                    self.state = State::Size(0);
                }
                State::Done => return Ok(()),
            }
            input = rest;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_in_any_split() {
        let wire = b"3\r\n:\n\n\r\n19;ext=1\r\nid: 1\ndata: abcdefghijk\n\n\r\n0\r\n\r\n";
        let expected = b":\n\nid: 1\ndata: abcdefghijk\n\n";
        for split in 0..wire.len() {
            let mut d = Dechunker::new();
            let mut out = Vec::new();
            d.feed(&wire[..split], |b| out.extend_from_slice(b))
                .unwrap();
            d.feed(&wire[split..], |b| out.extend_from_slice(b))
                .unwrap();
            assert_eq!(out, expected, "split at {split}");
            assert!(d.is_done());
        }
        assert!(Dechunker::new().feed(b"zz\r\n", |_| {}).is_err());
    }
}
