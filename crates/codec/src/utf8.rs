//! UTF-8 decoding for the decoder: checked with `simdutf8`, invalid bytes
//! replaced by U+FFFD exactly as `String::from_utf8_lossy` replaces them, and
//! a lossy decoder that takes its input in pieces.

use std::borrow::Cow;

/// Whether `bytes` are UTF-8, as text.
///
/// `simdutf8` checks mixed text about four times as fast as `str::from_utf8`
/// (18 GB/s against 4 GB/s on the benchmark's long line), and the decoder
/// checks every byte it is given.
pub(crate) fn utf8(bytes: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(bytes).ok()
}

/// `bytes` as text, invalid UTF-8 replaced by U+FFFD.
///
/// `String::from_utf8_lossy` walks its input in `Utf8Chunks`, which is several
/// times slower than a validator (about 15× on ASCII), so the common valid
/// case is checked first; same result either way.
pub(crate) fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match utf8(bytes) {
        Some(text) => Cow::Borrowed(text),
        None => String::from_utf8_lossy(bytes),
    }
}

/// Decodes bytes that arrive in pieces into a `String`, with the very result
/// `String::from_utf8_lossy` gives on all the pieces joined.
///
/// A piece may end inside a character; those (at most three) bytes wait here
/// for the next piece. Lossy decoding replaces each maximal invalid sequence
/// by one U+FFFD and resumes right after it, so it never needs to look further
/// back than the start of the character it is in: decoding the waiting bytes
/// together with the next piece's first bytes is the same as decoding the
/// pieces joined.
#[derive(Debug, Clone, Default)]
pub(crate) struct LossyPieces {
    /// The start of a character cut off by the end of the last piece: always
    /// a valid prefix of a UTF-8 sequence, so shorter than 4 bytes.
    pending: [u8; 3],
    pending_len: usize,
}

impl LossyPieces {
    /// Appends `piece` to `out`, keeping back a character it cuts off.
    pub(crate) fn push(&mut self, out: &mut String, mut piece: &[u8]) {
        if self.pending_len > 0 {
            piece = &piece[self.complete_pending(out, piece)..];
        }
        if piece.is_empty() {
            return;
        }
        let (whole, cut) = piece.split_at(cut_character_start(piece));
        // (Not a let chain: the crate builds with Rust 1.85.)
        if let Some(text) = utf8(whole)
            && self.keep_back(cut)
        {
            out.push_str(text);
            return;
        }
        // Invalid bytes (rare): decode character by character.
        let mut chunks = piece.utf8_chunks().peekable();
        while let Some(chunk) = chunks.next() {
            out.push_str(chunk.valid());
            let invalid = chunk.invalid();
            if invalid.is_empty() {
                continue;
            }
            if chunks.peek().is_some() || !self.keep_back(invalid) {
                out.push(char::REPLACEMENT_CHARACTER);
            }
        }
    }

    /// Ends the input: a character still cut off is invalid.
    pub(crate) fn finish(&mut self, out: &mut String) {
        if self.pending_len > 0 {
            self.pending_len = 0;
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }

    /// Decodes the waiting bytes with the first bytes of `piece` up to the end
    /// of that one character (or its invalid sequence); returns how many bytes
    /// of `piece` it took.
    fn complete_pending(&mut self, out: &mut String, piece: &[u8]) -> usize {
        let held = self.pending_len;
        let taken = piece.len().min(4 - held);
        let mut joined = [0; 4];
        joined[..held].copy_from_slice(&self.pending[..held]);
        joined[held..held + taken].copy_from_slice(&piece[..taken]);
        let joined = &joined[..held + taken];
        self.pending_len = 0;
        match std::str::from_utf8(joined) {
            Ok(text) => {
                out.push_str(text);
                taken
            }
            // The character is complete (what follows it is for the caller).
            Err(error) if error.valid_up_to() > 0 => {
                let valid = &joined[..error.valid_up_to()];
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                valid.len() - held
            }
            // Invalid: its sequence holds the waiting bytes (they are a valid
            // prefix), so it ends at or after them.
            Err(error) => match error.error_len() {
                Some(len) => {
                    out.push(char::REPLACEMENT_CHARACTER);
                    len - held
                }
                None => {
                    // Still cut off: `piece` was shorter than the character.
                    self.pending[..joined.len()].copy_from_slice(joined);
                    self.pending_len = joined.len();
                    taken
                }
            },
        }
    }

    /// Keeps `cut` back for the next piece if it is the valid start of a
    /// character (or empty); says whether it did.
    fn keep_back(&mut self, cut: &[u8]) -> bool {
        if cut.is_empty() {
            return true;
        }
        let is_prefix = cut.len() < 4
            && std::str::from_utf8(cut)
                .is_err_and(|error| error.valid_up_to() == 0 && error.error_len().is_none());
        if is_prefix {
            self.pending[..cut.len()].copy_from_slice(cut);
            self.pending_len = cut.len();
        }
        is_prefix
    }
}

/// Where a character cut off by the end of `bytes` starts (`bytes.len()` when
/// none is): the last lead byte among the last three bytes, if the character
/// it starts needs more bytes than are left.
fn cut_character_start(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for start in (len.saturating_sub(3)..len).rev() {
        let width = match bytes[start] {
            0x80..=0xBF => continue, // a continuation byte: look further back
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xFF => 4,
            _ => 1,
        };
        return if len - start < width { start } else { len };
    }
    len
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::LossyPieces;

    /// `bytes` decoded by `LossyPieces` in the given pieces.
    fn in_pieces<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> String {
        let mut decoder = LossyPieces::default();
        let mut out = String::new();
        for piece in pieces {
            decoder.push(&mut out, piece);
        }
        decoder.finish(&mut out);
        out
    }

    /// Cut off, invalid, overlong, surrogate and out-of-range sequences, each
    /// between ASCII and next to each other.
    const TRICKY: &[&[u8]] = &[
        b"a\xC3\xBCb",
        b"\xE2\x82\xAC\xF0\x9F\x98\x80",
        b"\xE2\x82",
        b"\xE2\x82a",
        b"\xF0\x9F\x98",
        b"\xF0\x9F\x98\xE2\x82\xAC",
        b"\xE0\x80\xAF",
        b"\xC0\xAF\xC1",
        b"\xED\xA0\x80x",
        b"\xF4\x90\x80\x80",
        b"\xF5\xF8\xFF\xFE",
        b"\x80\xBF\x80\xC3",
        b"\xC3\xC3\xBC\xE2\xE2\x82\xAC",
        b"ab\xF0\x90\x80\xF0\x90\x80\x80\xF0",
    ];

    #[test]
    fn every_split_into_three_pieces_decodes_as_the_whole() {
        for bytes in TRICKY {
            let whole = String::from_utf8_lossy(bytes);
            for i in 0..=bytes.len() {
                for j in i..=bytes.len() {
                    let pieces = [&bytes[..i], &bytes[i..j], &bytes[j..]];
                    assert_eq!(in_pieces(pieces), whole, "{bytes:x?} split at {i} and {j}");
                }
            }
            assert_eq!(in_pieces(bytes.chunks(1)), whole, "{bytes:x?} byte by byte");
        }
    }

    proptest! {
        #[test]
        fn pieces_decode_as_the_whole(
            bytes in prop::collection::vec(
                prop_oneof![Just(b'a'), 0x80u8..=0xBF, 0xC0u8..=0xFF, any::<u8>()],
                0..64,
            ),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                pieces.push(&bytes[start..cut]);
                start = cut;
            }
            prop_assert_eq!(in_pieces(pieces), String::from_utf8_lossy(&bytes));
        }
    }
}
