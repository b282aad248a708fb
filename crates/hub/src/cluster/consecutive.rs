//! What a cluster engine's tail hands over: the entries that follow its
//! cursor one by one.

use std::sync::Arc;

use crate::log::Entry;

/// The entries of `items` that follow `cursor` without a hole, up to the
/// first hole or unreadable item (`Err`); the rest goes to the end of
/// `pending`, for the tail's next call. Moves the cursor past what it hands
/// over, and says whether more is waiting: something pending, or a read of
/// `count`, the most one read returns, that was full.
pub(crate) fn take<B>(
    cursor: &mut u64,
    items: Vec<Result<Arc<Entry>, B>>,
    pending: &mut Vec<Result<Arc<Entry>, B>>,
    count: usize,
) -> (Vec<Arc<Entry>>, bool) {
    let mut entries = Vec::with_capacity(items.len());
    let mut rest = items.into_iter();
    for item in rest.by_ref() {
        match item {
            Ok(entry) if entry.position == *cursor + entries.len() as u64 + 1 => {
                entries.push(entry);
            }
            other => {
                pending.push(other);
                break;
            }
        }
    }
    pending.extend(rest);
    let more = !pending.is_empty() || entries.len() == count;
    *cursor = entries.last().map_or(*cursor, |e| e.position);
    (entries, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(position: u64) -> Result<Arc<Entry>, &'static str> {
        Ok(Arc::new(Entry {
            position,
            id: position.to_string().into(),
            topics: Box::default(),
            private: false,
            published_at_ms: 0,
            frame: bytes::Bytes::new(),
        }))
    }

    #[test]
    fn hands_over_up_to_the_first_hole_or_bad_item_and_keeps_the_rest() {
        let (mut cursor, mut pending) = (4, Vec::new());
        let items = vec![at(5), at(6), at(8), at(9)];
        let (entries, more) = take(&mut cursor, items, &mut pending, 512);
        assert_eq!(
            entries.iter().map(|e| e.position).collect::<Vec<_>>(),
            [5, 6]
        );
        assert_eq!((cursor, pending.len(), more), (6, 2, true));
        let (mut cursor, mut pending) = (0, Vec::new());
        let (entries, more) = take(
            &mut cursor,
            vec![at(1), Err("bad"), at(3)],
            &mut pending,
            512,
        );
        assert_eq!(
            (entries.len(), cursor, pending.len(), more),
            (1, 1, 2, true)
        );
        let (entries, more) = take(&mut cursor, vec![at(2)], &mut Vec::new(), 1);
        assert_eq!((entries.len(), cursor, more), (1, 2, true), "a full read");
    }
}
