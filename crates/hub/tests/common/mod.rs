//! Helpers shared by the hub's integration tests.
// Each test binary uses only part of this module.
#![allow(dead_code)]

pub(crate) mod cluster;

use std::time::Duration;

use futures_util::StreamExt;
use tidings_hub::Subscription;

pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// One frame's `id` and `data` (keep-alives are `None`).
pub(crate) fn parse(frame: &[u8]) -> Option<(String, String)> {
    let mut decoder = tidings_codec::Decoder::new();
    decoder.feed(frame).find_map(|item| match item {
        tidings_codec::Item::Event(e) => Some((e.id, e.data)),
        _ => None,
    })
}

/// The next event (skipping keep-alives), or a panic after [`WAIT`].
pub(crate) async fn next_event(sub: &mut Subscription) -> (String, String) {
    tokio::time::timeout(WAIT, async {
        loop {
            let frame = sub.next().await.expect("subscription ended");
            if let Some(event) = parse(&frame) {
                return event;
            }
        }
    })
    .await
    .expect("no event within the wait")
}

/// The ids of the next `n` events.
pub(crate) async fn next_ids(sub: &mut Subscription, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(next_event(sub).await.0);
    }
    ids
}

/// Asserts that nothing is ready on `sub` once the hub has fanned out every
/// update published so far.
pub(crate) async fn assert_nothing_ready(hub: &tidings_hub::Hub, sub: &mut Subscription) {
    tokio::time::timeout(WAIT, hub.caught_up())
        .await
        .expect("the hub catches up within the wait")
        .unwrap();
    let waker = futures_util::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut frames = Vec::new();
    match sub.poll_frames(&mut cx, &mut frames, 16) {
        std::task::Poll::Pending => {}
        std::task::Poll::Ready(_) => panic!("unexpected frames: {frames:?}"),
    }
}

pub(crate) fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}
