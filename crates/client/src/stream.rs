//! The connection state machine: connect, check the answer, read and decode,
//! and on any transient failure wait and reconnect.
//!
//! Everything lives inside the [`EventSource`] value: no task is spawned, so
//! dropping it (or [`close`](EventSource::close)) ends the connection and the
//! reconnecting at once, and nothing runs while nobody polls.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue, LOCATION};
use http_body::Body as _;
use tidings_codec::{DecodeError, Decoder, Item, MessageEvent};
use tokio::time::{Instant, Sleep, sleep};
use url::Url;

use crate::backoff::Backoff;
use crate::client::{Answer, Config, Connecting, EventSourceBuilder, is_redirect_limit};
use crate::error::{Error, Result};

/// A stream that stayed open this long was healthy even if it delivered no
/// event (a quiet topic with keep-alive comments): the failure count resets
/// and the next wait is the plain reconnection time. Shorter streams with no
/// event count as failures, so a server that accepts and drops at once is
/// backed off like one that refuses.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);

/// What an [`EventSource`] reports, in order.
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamItem {
    /// A connection opened: the server answered 200 with `text/event-stream`.
    Open {
        /// The URL that answered, after any redirects.
        url: Url,
    },
    /// An event was dispatched.
    Event(MessageEvent),
    /// A comment line (`: ...`), such as a keep-alive, without the colon and
    /// one leading space.
    Comment(String),
    /// The server sent `retry:`: reconnections wait this long from now on.
    Retry(Duration),
    /// An event broke the decoder's [limits](crate::EventSourceBuilder::limits)
    /// and was dropped; the stream goes on.
    EventDropped(DecodeError),
    /// The connection was lost or could not be made; the next attempt starts
    /// after `delay`. An event half-received when the connection broke is
    /// discarded, as the standard requires.
    Reconnecting {
        /// How long until the next attempt.
        delay: Duration,
        /// Why: a retryable [`Error`] ([`Error::Ended`] when the server simply
        /// ended the response).
        error: Error,
    },
}

/// A reconnecting Server-Sent Events client, read as a [`Stream`] of
/// [`StreamItem`]s.
///
/// It behaves like a browser's `EventSource`: it reconnects after network
/// errors and normal ends, waiting the server's `retry:` time; resumes with
/// `Last-Event-ID`; and stops for good on an answer that is not an event
/// stream. Beyond the browser it can send any method, headers and body, give
/// up on silent connections ([`read_timeout`](EventSourceBuilder::read_timeout))
/// and back off on repeated failures.
///
/// The stream yields `Ok` items until one of these ends it:
/// - `Some(Err(e))` with a [fatal](Error::is_fatal) error, then `None`;
/// - `None` alone when the server answered 204 No Content ("stop
///   reconnecting"), or after [`close`](Self::close).
///
/// Polling needs a Tokio runtime (for timers and sockets). Nothing happens
/// between polls: the connection, its timers and the reconnections all make
/// progress only while the stream is polled, so poll it continuously (a
/// `while let Some(item) = events.next().await` loop). The stream is cancel
/// safe: dropping a `next()` future loses no item.
pub struct EventSource {
    config: Config,
    decoder: Decoder,
    backoff: Backoff,
    state: State,
    /// One network chunk can complete several items; they wait here and are
    /// handed out one per poll.
    queue: VecDeque<StreamItem>,
}

enum State {
    /// Built, never polled: connect on the first poll, inside the runtime.
    Start,
    /// Waiting for the response headers.
    Connecting {
        response: Connecting,
        /// The read timeout also covers a server that accepts the connection
        /// and then says nothing.
        deadline: Option<Pin<Box<Sleep>>>,
    },
    /// Reading the event stream.
    Open {
        body: reqwest::Body,
        /// Reset by every chunk received.
        idle: Option<Pin<Box<Sleep>>>,
        opened: Instant,
        delivered_event: bool,
    },
    /// Waiting to reconnect.
    Waiting(Pin<Box<Sleep>>),
    /// Ended: by a fatal error, a 204, or `close`.
    Closed,
}

/// What happened on the wire, for the state machine to act on.
enum Wake {
    TimeToConnect,
    Response(reqwest::Result<Answer>),
    Data(Bytes),
    Lost(Error),
}

impl EventSource {
    /// Starts configuring an event source for `url` (checked by
    /// [`build`](EventSourceBuilder::build)).
    pub fn builder(url: impl AsRef<str>) -> EventSourceBuilder {
        EventSourceBuilder::new(url)
    }

    /// An event source for `url` with every setting at its default.
    ///
    /// # Errors
    ///
    /// As [`EventSourceBuilder::build`].
    pub fn new(url: impl AsRef<str>) -> Result<EventSource> {
        EventSource::builder(url).build()
    }

    pub(crate) fn from_config(config: Config, last_event_id: String) -> EventSource {
        EventSource {
            decoder: Decoder::with_config(config.limits).with_last_event_id(last_event_id),
            backoff: Backoff::new(config.retry, config.max_retry),
            config,
            state: State::Start,
            queue: VecDeque::new(),
        }
    }

    /// The last event id: what the next connection sends as `Last-Event-ID`
    /// (nothing when empty). Set by the builder, then by each `id:` field the
    /// server sends, once its event is complete.
    pub fn last_event_id(&self) -> &str {
        self.decoder.last_event_id()
    }

    /// The URL every connection starts from.
    pub fn url(&self) -> &Url {
        &self.config.url
    }

    /// Closes the connection and stops reconnecting; the stream then ends.
    /// Items already received but not yet taken are dropped. Dropping the
    /// `EventSource` does the same.
    pub fn close(&mut self) {
        self.state = State::Closed;
        self.queue.clear();
    }

    /// True once the stream has ended: after a fatal error, a 204, or
    /// [`close`](Self::close).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    fn connect(&mut self) {
        self.state = State::Connecting {
            response: self.config.connect(self.decoder.last_event_id()),
            deadline: self.config.read_timeout.map(|t| Box::pin(sleep(t))),
        };
    }

    /// Checks the response headers; opens the stream, or ends it.
    fn open(&mut self, response: reqwest::Response) -> Result<()> {
        let status = response.status();
        let url = response.url().clone();
        match status {
            StatusCode::OK => {}
            StatusCode::NO_CONTENT => {
                self.state = State::Closed;
                return Ok(());
            }
            // The HTTP client follows every redirect it can, so one that
            // reaches us is missing its Location or has one that is no URL.
            StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT => {
                let detail = match response.headers().get(LOCATION) {
                    None => format!("{status} from {url} has no Location header"),
                    Some(location) => format!(
                        "{status} from {url} has Location {:?}, which is not a URL",
                        String::from_utf8_lossy(location.as_bytes())
                    ),
                };
                return Err(Error::InvalidRedirect { detail });
            }
            _ => {
                return Err(Error::Status {
                    status,
                    url,
                    message: None,
                });
            }
        }
        let content_type = response.headers().get(CONTENT_TYPE);
        if !content_type.is_some_and(is_event_stream) {
            return Err(Error::ContentType {
                content_type: content_type.map(|v| String::from_utf8_lossy(v.as_bytes()).into()),
                url,
            });
        }
        self.state = State::Open {
            body: response.into(),
            idle: self.config.read_timeout.map(|t| Box::pin(sleep(t))),
            opened: Instant::now(),
            delivered_event: false,
        };
        self.queue.push_back(StreamItem::Open { url });
        Ok(())
    }

    /// Sorts a failed attempt into fatal (returned) and retryable.
    fn connect_failed(&mut self, error: reqwest::Error) -> Result<()> {
        if is_redirect_limit(&error) {
            return Err(Error::TooManyRedirects {
                limit: self.config.max_redirects,
            });
        }
        if error.is_builder() {
            // Our own request was checked by the builder, so a request that
            // cannot be built is a redirect to somewhere we cannot go.
            return Err(Error::InvalidRedirect {
                detail: error_chain(&error),
            });
        }
        self.reconnect(Error::Network(error.into()), false);
        Ok(())
    }

    fn feed(&mut self, chunk: &[u8]) {
        let mut delivered = false;
        for item in self.decoder.feed(chunk) {
            self.queue.push_back(match item {
                Item::Event(event) => {
                    delivered = true;
                    StreamItem::Event(event)
                }
                Item::Comment(text) => StreamItem::Comment(text),
                Item::Retry(delay) => {
                    self.backoff.set_retry(delay);
                    StreamItem::Retry(delay)
                }
                Item::Error(error) => StreamItem::EventDropped(error),
                // Kinds a newer codec may add are not ours to report yet.
                _ => continue,
            });
        }
        if let State::Open {
            delivered_event, ..
        } = &mut self.state
        {
            *delivered_event |= delivered;
        }
    }

    /// The connection was lost (or never made): schedule the next attempt.
    fn disconnect(&mut self, error: Error) {
        let healthy = match &self.state {
            State::Open {
                opened,
                delivered_event,
                ..
            } => *delivered_event || opened.elapsed() >= HEALTHY_AFTER,
            _ => false,
        };
        // Drops a half-received event and readies the decoder for a new
        // stream (a new BOM may come); the last event id stays.
        let _ = self.decoder.finish();
        self.reconnect(error, healthy);
    }

    fn reconnect(&mut self, error: Error, healthy: bool) {
        let delay = self.backoff.next_delay(healthy);
        self.state = State::Waiting(Box::pin(sleep(delay)));
        self.queue
            .push_back(StreamItem::Reconnecting { delay, error });
    }
}

impl Stream for EventSource {
    type Item = Result<StreamItem>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.queue.pop_front() {
                return Poll::Ready(Some(Ok(item)));
            }
            let Some(wake) = ready!(this.state.poll(cx, this.config.read_timeout)) else {
                return Poll::Ready(None);
            };
            let outcome = match wake {
                Wake::TimeToConnect => {
                    this.connect();
                    Ok(())
                }
                Wake::Response(Ok(Answer::Response(response))) => this.open(response),
                Wake::Response(Ok(Answer::Refused {
                    status,
                    url,
                    message,
                })) => Err(Error::Status {
                    status,
                    url,
                    message,
                }),
                Wake::Response(Err(error)) => this.connect_failed(error),
                Wake::Data(chunk) => {
                    this.feed(&chunk);
                    Ok(())
                }
                Wake::Lost(error) => {
                    this.disconnect(error);
                    Ok(())
                }
            };
            if let Err(fatal) = outcome {
                this.close();
                return Poll::Ready(Some(Err(fatal)));
            }
        }
    }
}

impl State {
    /// Polls whatever the current state waits on; `None` when closed.
    fn poll(&mut self, cx: &mut Context<'_>, read_timeout: Option<Duration>) -> Poll<Option<Wake>> {
        match self {
            State::Closed => Poll::Ready(None),
            State::Start => Poll::Ready(Some(Wake::TimeToConnect)),
            State::Waiting(delay) => {
                ready!(delay.as_mut().poll(cx));
                Poll::Ready(Some(Wake::TimeToConnect))
            }
            State::Connecting { response, deadline } => {
                if let Poll::Ready(result) = response.as_mut().poll(cx) {
                    return Poll::Ready(Some(Wake::Response(result)));
                }
                poll_timeout(deadline, read_timeout, cx)
            }
            State::Open { body, idle, .. } => loop {
                match Pin::new(&mut *body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        // Trailers (HTTP/2) carry no events; keep reading.
                        let Ok(data) = frame.into_data() else {
                            continue;
                        };
                        if let (Some(idle), Some(timeout)) = (idle.as_mut(), read_timeout) {
                            idle.as_mut().reset(Instant::now() + timeout);
                        }
                        return Poll::Ready(Some(Wake::Data(data)));
                    }
                    Poll::Ready(Some(Err(error))) => {
                        return Poll::Ready(Some(Wake::Lost(Error::Network(error.into()))));
                    }
                    Poll::Ready(None) => return Poll::Ready(Some(Wake::Lost(Error::Ended))),
                    Poll::Pending => return poll_timeout(idle, read_timeout, cx),
                }
            },
        }
    }
}

/// `Lost(ReadTimeout)` once the read timeout's timer fires, else pending.
fn poll_timeout(
    timer: &mut Option<Pin<Box<Sleep>>>,
    read_timeout: Option<Duration>,
    cx: &mut Context<'_>,
) -> Poll<Option<Wake>> {
    if let (Some(timer), Some(timeout)) = (timer, read_timeout) {
        ready!(timer.as_mut().poll(cx));
        return Poll::Ready(Some(Wake::Lost(Error::ReadTimeout(timeout))));
    }
    Poll::Pending
}

/// Whether a `Content-Type` is `text/event-stream`: parameters such as
/// `charset` are ignored (the stream is UTF-8 whatever they say), and type
/// names are case-insensitive.
fn is_event_stream(content_type: &HeaderValue) -> bool {
    let bytes = content_type.as_bytes();
    let essence = bytes.split(|&b| b == b';').next().unwrap_or_default();
    essence
        .trim_ascii()
        .eq_ignore_ascii_case(b"text/event-stream")
}

/// An error and its causes on one line, for messages that must stand alone.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

impl fmt::Debug for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Start => "start",
            State::Connecting { .. } => "connecting",
            State::Open { .. } => "open",
            State::Waiting(_) => "waiting",
            State::Closed => "closed",
        };
        f.debug_struct("EventSource")
            .field("url", &self.config.url.as_str())
            .field("state", &state)
            .field("last_event_id", &self.last_event_id())
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_essence_ignores_parameters_case_and_whitespace() {
        for yes in [
            "text/event-stream",
            "Text/Event-Stream",
            "text/event-stream; charset=utf-8",
            "text/event-stream;charset=latin1",
            " text/event-stream ",
        ] {
            assert!(is_event_stream(&HeaderValue::from_static(yes)), "{yes}");
        }
        for no in [
            "text/plain",
            "text/event-streams",
            "text/event",
            "",
            "event-stream",
        ] {
            assert!(!is_event_stream(&HeaderValue::from_static(no)), "{no}");
        }
    }

    #[test]
    fn event_sources_can_move_between_tasks() {
        fn send_and_unpin<T: Send + Unpin + 'static>() {}
        send_and_unpin::<EventSource>();
        send_and_unpin::<StreamItem>();
        send_and_unpin::<Error>();
    }

    #[test]
    fn error_chain_names_every_cause() {
        let inner = std::io::Error::other("connection reset");
        let outer = Error::Network(inner.into());
        assert_eq!(error_chain(&outer), "connection failed: connection reset");
    }
}
