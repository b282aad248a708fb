//! Stream entries to [`Entry`] and back, and the reading of Redis replies.
//!
//! Replies are walked as `redis::Value`s rather than through the `streams`
//! feature's typed replies, which build a `HashMap` of `Value`s per entry:
//! the tail parses every update once per node, so an entry goes straight
//! from the reply's buffers into an `Entry` (the frame without a copy).

use std::sync::Arc;

use bytes::Bytes;
use redis::Value;

use crate::log::Entry;

/// The reply did not have the expected shape: someone else wrote these keys,
/// or a Redis this code does not know.
#[derive(Debug)]
pub(super) struct Malformed(pub(super) String);

fn malformed(what: impl Into<String>) -> Malformed {
    Malformed(what.into())
}

/// The `XADD` fields of an entry, as the publish script takes them:
/// id, published at, size, private, topics (a JSON array), frame.
pub(super) fn fields(entry: &Entry) -> (String, String, &'static str, String) {
    let topics: Vec<&str> = entry.topics.iter().map(|t| &**t).collect();
    (
        entry.published_at_ms.to_string(),
        entry.size().to_string(),
        if entry.private { "1" } else { "0" },
        serde_json::to_string(&topics).unwrap_or_else(|_| "[]".into()),
    )
}

/// The position of a stream entry id `N-0`.
pub(super) fn position(id: &[u8]) -> Result<u64, Malformed> {
    let text = std::str::from_utf8(id).map_err(|_| malformed("a stream id is not text"))?;
    let (position, sequence) = text
        .split_once('-')
        .ok_or_else(|| malformed(format!("stream id {text:?} is not N-0")))?;
    match (position.parse(), sequence) {
        (Ok(position), "0") => Ok(position),
        _ => Err(malformed(format!(
            "stream id {text:?} is not a position (N-0): were these keys written by another program?"
        ))),
    }
}

/// The entries of an `XRANGE` reply (or of one stream of an `XREAD` reply).
pub(super) fn entries(reply: Value) -> Result<Vec<Arc<Entry>>, Malformed> {
    match reply {
        Value::Nil => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .map(|item| entry(item).map(Arc::new))
            .collect(),
        other => Err(malformed(format!("expected stream entries, got {other:?}"))),
    }
}

/// An entry of the stream that cannot be read as an update.
#[derive(Debug)]
pub(super) struct BadEntry {
    /// Its position, when at least its stream id is one (`N-0`).
    pub(super) position: Option<u64>,
    pub(super) why: String,
}

/// The entries of an `XREAD` reply on one stream (nil when it timed out),
/// each on its own: one unreadable entry must not hide the others.
pub(super) fn read_reply(reply: Value) -> Result<Vec<Result<Arc<Entry>, BadEntry>>, Malformed> {
    let items = match reply {
        Value::Nil => return Ok(Vec::new()),
        // RESP2: [[key, entries]]
        Value::Array(mut streams) => match streams.pop() {
            Some(Value::Array(mut stream)) if stream.len() == 2 => stream.pop(),
            None => return Ok(Vec::new()),
            Some(other) => return Err(malformed(format!("unexpected XREAD stream {other:?}"))),
        },
        // RESP3: {key: entries}
        Value::Map(mut streams) => streams.pop().map(|(_, stream)| stream),
        other => return Err(malformed(format!("unexpected XREAD reply {other:?}"))),
    };
    match items {
        None | Some(Value::Nil) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items
            .into_iter()
            .map(|item| {
                let position = stream_id(&item).and_then(|id| position(id).ok());
                entry(item)
                    .map(Arc::new)
                    .map_err(|e| BadEntry { position, why: e.0 })
            })
            .collect()),
        Some(other) => Err(malformed(format!("expected stream entries, got {other:?}"))),
    }
}

/// The stream id of an entry `[id, fields]`, if it has that shape.
fn stream_id(item: &Value) -> Option<&[u8]> {
    match item {
        Value::Array(parts) => match parts.first() {
            Some(Value::BulkString(id)) => Some(id),
            _ => None,
        },
        _ => None,
    }
}

/// The event id of the single entry of an `XRANGE p p` reply, if any.
pub(super) fn single_id(reply: &Value) -> Option<String> {
    let Value::Array(items) = reply else {
        return None;
    };
    let Value::Array(parts) = items.first()? else {
        return None;
    };
    let Value::Array(fields) = parts.get(1)? else {
        return None;
    };
    // Fields in XADD order: `id` first.
    match (fields.first(), fields.get(1)) {
        (Some(Value::BulkString(name)), Some(value)) if name == b"id" => text(value),
        _ => None,
    }
}

fn entry(item: Value) -> Result<Entry, Malformed> {
    let Value::Array(mut parts) = item else {
        return Err(malformed("a stream entry is not [id, fields]"));
    };
    let (fields, id) = match (parts.pop(), parts.pop()) {
        (Some(fields), Some(Value::BulkString(id))) if parts.is_empty() => (fields, id),
        _ => return Err(malformed("a stream entry is not [id, fields]")),
    };
    let position = position(&id)?;
    let pairs: Vec<(Value, Value)> = match fields {
        Value::Array(flat) => {
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
                pairs.push((name, value));
            }
            pairs
        }
        Value::Map(pairs) => pairs,
        _ => return Err(malformed("stream entry fields are not a list")),
    };
    let mut event_id = None;
    let mut published_at_ms = None;
    let mut private = false;
    let mut topics = None;
    let mut frame = None;
    for (name, value) in pairs {
        let (Value::BulkString(name), Value::BulkString(value)) = (name, value) else {
            return Err(malformed("a stream entry field is not a string"));
        };
        match name.as_slice() {
            b"id" => event_id = String::from_utf8(value).ok(),
            b"t" => {
                published_at_ms = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|t| t.parse().ok())
            }
            b"p" => private = value == b"1",
            b"topics" => topics = serde_json::from_slice::<Vec<String>>(&value).ok(),
            b"frame" => frame = Some(Bytes::from(value)),
            _ => {}
        }
    }
    let missing = |field: &str| malformed(format!("entry {position} lacks a valid {field} field"));
    Ok(Entry {
        position,
        id: Arc::from(event_id.ok_or_else(|| missing("id"))?),
        topics: topics
            .ok_or_else(|| missing("topics"))?
            .into_iter()
            .map(String::into_boxed_str)
            .collect(),
        private,
        published_at_ms: published_at_ms.ok_or_else(|| missing("t"))?,
        frame: frame.ok_or_else(|| missing("frame"))?,
    })
}

/// An integer reply (Redis answers some numbers as strings).
pub(super) fn integer(reply: &Value) -> Option<i64> {
    match reply {
        Value::Int(n) => Some(*n),
        Value::BulkString(s) => std::str::from_utf8(s).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

/// A string reply, `None` for nil.
pub(super) fn text(reply: &Value) -> Option<String> {
    match reply {
        Value::BulkString(s) => String::from_utf8(s.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    fn stream_entry(id: &[u8], fields: &[(&[u8], &[u8])]) -> Value {
        let flat = fields
            .iter()
            .flat_map(|(n, v)| [bulk(n), bulk(v)])
            .collect();
        Value::Array(vec![bulk(id), Value::Array(flat)])
    }

    #[test]
    fn an_entry_round_trips_through_its_fields() {
        let original = Entry {
            position: 7,
            id: "urn:uuid:x".into(),
            topics: vec!["a".into(), "b/ü".into()].into_boxed_slice(),
            private: true,
            published_at_ms: 1234,
            frame: Bytes::from_static(b"id: urn:uuid:x\ndata: y\n\n"),
        };
        let (t, n, p, topics) = fields(&original);
        let reply = stream_entry(
            b"7-0",
            &[
                (b"id", b"urn:uuid:x"),
                (b"t", t.as_bytes()),
                (b"n", n.as_bytes()),
                (b"p", p.as_bytes()),
                (b"topics", topics.as_bytes()),
                (b"frame", &original.frame),
            ],
        );
        let parsed = entries(Value::Array(vec![reply])).unwrap();
        assert_eq!(*parsed[0], original);
    }

    #[test]
    fn foreign_data_is_a_clear_error_not_a_panic() {
        assert!(position(b"1700000000000-3").is_err(), "an XADD * id");
        assert!(position(b"12").is_err());
        assert_eq!(position(b"12-0").unwrap(), 12);
        let without_frame =
            stream_entry(b"1-0", &[(b"id", b"x"), (b"t", b"1"), (b"topics", b"[]")]);
        let error = entries(Value::Array(vec![without_frame])).unwrap_err();
        assert!(error.0.contains("frame"), "{}", error.0);
        assert!(entries(Value::Int(3)).is_err());
        assert!(read_reply(Value::Array(vec![Value::Int(1)])).is_err());
        // In a read, a bad entry is reported on its own, with its position.
        let good = stream_entry(
            b"2-0",
            &[
                (b"id", b"i"),
                (b"t", b"1"),
                (b"topics", b"[]"),
                (b"frame", b"data: x\n\n"),
            ],
        );
        let bad = stream_entry(b"3-0", &[(b"id", b"j")]);
        let reply = Value::Array(vec![Value::Array(vec![
            bulk(b"{t}:log"),
            Value::Array(vec![good, bad]),
        ])]);
        let read = read_reply(reply).unwrap();
        assert!(read[0].is_ok());
        assert!(matches!(
            &read[1],
            Err(BadEntry {
                position: Some(3),
                ..
            })
        ));
    }

    #[test]
    fn xread_replies_in_both_protocols() {
        let one = || {
            stream_entry(
                b"3-0",
                &[
                    (b"id", b"i"),
                    (b"t", b"1"),
                    (b"topics", b"[\"t\"]"),
                    (b"frame", b"data: x\n\n"),
                ],
            )
        };
        let resp2 = Value::Array(vec![Value::Array(vec![
            bulk(b"{t}:log"),
            Value::Array(vec![one()]),
        ])]);
        assert_eq!(read_reply(resp2).unwrap()[0].as_ref().unwrap().position, 3);
        let resp3 = Value::Map(vec![(bulk(b"{t}:log"), Value::Array(vec![one()]))]);
        assert_eq!(read_reply(resp3).unwrap()[0].as_ref().unwrap().position, 3);
        assert!(read_reply(Value::Nil).unwrap().is_empty());
    }
}
