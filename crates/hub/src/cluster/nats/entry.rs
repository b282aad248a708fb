//! One update as a JetStream message: its subject names its event id, its
//! payload holds the routing data and the encoded event.
//!
//! The payload is binary rather than NATS headers: headers are parsed into a
//! map of strings on every message a tail reads, and the frame would be
//! copied; here the tail decodes a few integers and slices the frame out of
//! the message's `Bytes` without copying it.
//!
//! ```text
//! "TDG1"                    magic and version
//! u128                      nonce: tells this node's publish from another
//! u64                       published at, ms since the Unix epoch
//! u8                        flags: bit 0 private
//! u32 + bytes               event id (UTF-8)
//! u32                       number of topics
//!   u32 + bytes             each topic (UTF-8), canonical first
//! rest                      the encoded event (the frame)
//! ```
//! Integers are big-endian.

use std::sync::Arc;

use base64::Engine as _;
use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::log::Entry;

const MAGIC: &[u8; 4] = b"TDG1";

/// The subject of an update with this id: `{stream}.log.{id}`, the id in
/// URL-safe base64 so that any id is one subject token. Each id has a
/// subject of its own, which is what the duplicate check stands on (see
/// `log.rs`).
pub(super) fn subject(stream: &str, id: &str) -> String {
    let mut subject = String::with_capacity(stream.len() + 5 + id.len() * 4 / 3 + 4);
    subject.push_str(stream);
    subject.push_str(".log.");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(id, &mut subject);
    subject
}

/// The payload of `entry`, stamped with `nonce`.
pub(super) fn encode(entry: &Entry, nonce: u128) -> Bytes {
    let topics: usize = entry.topics.iter().map(|t| t.len() + 4).sum();
    let mut out = BytesMut::with_capacity(
        4 + 16 + 8 + 1 + 4 + entry.id.len() + 4 + topics + entry.frame.len(),
    );
    out.put_slice(MAGIC);
    out.put_u128(nonce);
    out.put_u64(entry.published_at_ms);
    out.put_u8(u8::from(entry.private));
    put_text(&mut out, &entry.id);
    out.put_u32(entry.topics.len() as u32);
    for topic in &entry.topics {
        put_text(&mut out, topic);
    }
    out.put_slice(&entry.frame);
    out.freeze()
}

fn put_text(out: &mut BytesMut, text: &str) {
    out.put_u32(text.len() as u32);
    out.put_slice(text.as_bytes());
}

/// A message of the stream that is not an update of this hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Foreign(pub(super) &'static str);

/// The entry at `position` and its nonce, from a payload made by [`encode`].
///
/// # Errors
/// When the payload is not one (another program published on the stream's
/// subjects, or it is damaged).
pub(super) fn decode(position: u64, payload: &Bytes) -> Result<(Entry, u128), Foreign> {
    let mut rest = payload.clone();
    if rest.len() < 4 + 16 + 8 + 1 || &rest[..4] != MAGIC {
        return Err(Foreign("not a Tidings update (no TDG1 header)"));
    }
    rest.advance(4);
    let nonce = rest.get_u128();
    let published_at_ms = rest.get_u64();
    let private = rest.get_u8() & 1 == 1;
    let id = take_text(&mut rest)?;
    if rest.remaining() < 4 {
        return Err(Foreign("truncated before its topics"));
    }
    let count = rest.get_u32() as usize;
    // Every topic takes four bytes at least: a count beyond that is damage,
    // not a reason to allocate.
    if count > rest.remaining() / 4 {
        return Err(Foreign("more topics than bytes"));
    }
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        topics.push(take_text(&mut rest)?.into_boxed_str());
    }
    Ok((
        Entry {
            position,
            id: Arc::from(id),
            topics: topics.into_boxed_slice(),
            private,
            published_at_ms,
            frame: rest,
        },
        nonce,
    ))
}

/// Only the nonce, for telling whose a stored update is.
pub(super) fn nonce(payload: &[u8]) -> Option<u128> {
    (payload.len() >= 20 && &payload[..4] == MAGIC)
        .then(|| u128::from_be_bytes(payload[4..20].try_into().unwrap_or_default()))
}

fn take_text(rest: &mut Bytes) -> Result<String, Foreign> {
    if rest.remaining() < 4 {
        return Err(Foreign("truncated"));
    }
    let len = rest.get_u32() as usize;
    if rest.remaining() < len {
        return Err(Foreign("truncated"));
    }
    let bytes = rest.split_to(len);
    String::from_utf8(bytes.to_vec()).map_err(|_| Foreign("a text field is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            position: 0,
            id: Arc::from("urn:uuid:0192-é"),
            topics: vec!["https://example.com/a".into(), "b".into()].into_boxed_slice(),
            private: true,
            published_at_ms: 1_700_000_000_123,
            frame: Bytes::from_static(b"id: x\ndata: y\n\n"),
        }
    }

    #[test]
    fn an_entry_survives_the_payload_and_its_frame_is_not_copied() {
        let payload = encode(&entry(), 42);
        let (decoded, nonce) = decode(7, &payload).unwrap();
        assert_eq!(nonce, 42);
        assert_eq!(
            decoded,
            Entry {
                position: 7,
                ..entry()
            }
        );
        assert_eq!(
            decoded.frame.as_ptr(),
            payload[payload.len() - decoded.frame.len()..].as_ptr()
        );
        assert_eq!(super::nonce(&payload), Some(42));
    }

    #[test]
    fn a_foreign_or_damaged_payload_is_refused_at_every_cut() {
        let payload = encode(&entry(), 1);
        assert!(decode(1, &Bytes::from_static(b"hello world, not ours")).is_err());
        // Cut inside the header and the texts: refused, never a panic.
        let frame_starts = payload.len() - entry().frame.len();
        for cut in 0..frame_starts {
            let short = payload.slice(..cut);
            assert!(decode(1, &short).is_err(), "cut at {cut}");
        }
        let mut lying = BytesMut::from(&payload[..]);
        lying[4 + 16 + 8 + 1 + 4 + entry().id.len()..][..4]
            .copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(1, &lying.freeze()).is_err());
    }

    #[test]
    fn any_id_is_one_subject_token() {
        let subject = subject("tidings", "a.b *>\u{1F600}");
        let token = subject.strip_prefix("tidings.log.").unwrap();
        assert!(!token.is_empty());
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{token}"
        );
    }
}
