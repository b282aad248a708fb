//! The body of a subscription served by hyper (HTTP/2 streams, and HTTP/1.1
//! subscriptions on kept-alive connections): every frame ready at once goes
//! out as one data frame, as the lean path puts them in one vectored write,
//! so an HTTP/2 stream costs one DATA frame per wake-up, not one per event.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tidings_hub::Subscription;

use crate::limits::{StreamSlot, SubscriberSlot};

/// Frames taken from a subscription for one data frame.
const MAX_FRAMES_PER_CHUNK: usize = 64;

/// A subscription as a response body.
pub(crate) struct SubscriptionBody {
    /// The first comment, which flushes the headers through any proxy.
    first: Option<Bytes>,
    subscription: Subscription,
    /// The token's `exp`: the stream ends then.
    expires: Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    frames: Vec<Bytes>,
    /// The subscriber's place in the limits, for as long as the stream.
    _slot: SubscriberSlot,
    _stream: Option<StreamSlot>,
}

impl SubscriptionBody {
    pub(crate) fn new(opened: crate::subscribe::Opened) -> SubscriptionBody {
        SubscriptionBody {
            first: Some(Bytes::from_static(b":\n\n")),
            subscription: opened.subscription,
            expires: Box::pin(crate::conn::token_deadline(opened.expires_at)),
            frames: Vec::new(),
            _slot: opened.slot,
            _stream: opened.stream,
        }
    }
}

impl Body for SubscriptionBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if this.expires.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        let mut frames = std::mem::take(&mut this.frames);
        let taken = this
            .subscription
            .poll_frames(cx, &mut frames, MAX_FRAMES_PER_CHUNK);
        let chunk = match taken {
            Poll::Pending => {
                this.frames = frames;
                return Poll::Pending;
            }
            Poll::Ready(0) => return Poll::Ready(None),
            Poll::Ready(1) => frames.pop().unwrap_or_default(),
            Poll::Ready(_) => {
                let len = frames.iter().map(Bytes::len).sum();
                let mut chunk = BytesMut::with_capacity(len);
                for frame in frames.drain(..) {
                    chunk.extend_from_slice(&frame);
                }
                this.frames = frames;
                chunk.freeze()
            }
        };
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
