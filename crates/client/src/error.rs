//! What can go wrong, and which failures end the stream.

use std::time::Duration;

use http::StatusCode;
use url::Url;

/// A boxed error from the HTTP stack, kept opaque so that this crate's API does
/// not change when the HTTP client underneath does.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with an [`EventSource`](crate::EventSource).
///
/// Three kinds, told apart by [`is_fatal`](Error::is_fatal) and
/// [`is_retryable`](Error::is_retryable):
///
/// - **configuration** errors come from
///   [`EventSourceBuilder::build`](crate::EventSourceBuilder::build);
/// - **fatal** errors are the last item of a stream: the server answered in a
///   way that retrying cannot fix (wrong status or content type, broken
///   redirects), so the stream ends, as a browser's `EventSource` does;
/// - **retryable** errors only travel inside
///   [`StreamItem::Reconnecting`](crate::StreamItem::Reconnecting) to say why
///   the connection was lost; the stream carries on.
///
/// Transport errors keep their cause in [`source`](std::error::Error::source):
/// print the whole chain (e.g. anyhow's `{:#}`) to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Configuration: the URL is not an absolute `http` or `https` URL.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },

    /// Configuration: a header name or value is not valid HTTP.
    #[error("invalid header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name as given.
        name: String,
        /// Why it was refused.
        reason: String,
    },

    /// Configuration: the HTTP client could not be set up (TLS, for example).
    #[error("cannot set up the HTTP client")]
    Client(#[source] BoxError),

    /// Fatal: the server answered with a status other than 200 (or 204, which
    /// ends the stream without an error).
    #[error(
        "{url} answered {status}{}; an event stream needs 200 OK",
        message.as_deref().map_or_else(String::new, |m| format!(": {m}"))
    )]
    Status {
        /// The status received.
        status: StatusCode,
        /// The URL that answered (after redirects).
        url: Url,
        /// The start of the response body (up to 1 KiB), where servers say why.
        message: Option<String>,
    },

    /// Fatal: the server answered 200 with a content type other than
    /// `text/event-stream`.
    #[error(
        "{url} answered with content type {}; an event stream needs text/event-stream",
        content_type.as_deref().map_or_else(|| "(none)".to_owned(), |t| format!("{t:?}"))
    )]
    ContentType {
        /// The `Content-Type` received, if there was one (lossily decoded).
        content_type: Option<String>,
        /// The URL that answered (after redirects).
        url: Url,
    },

    /// Fatal: a redirect had no usable `Location` (missing, not a URL, or not
    /// `http`/`https`).
    #[error("redirect without a usable Location: {detail}")]
    InvalidRedirect {
        /// What was wrong, for a person to read.
        detail: String,
    },

    /// Fatal: more redirects in a row than
    /// [`max_redirects`](crate::EventSourceBuilder::max_redirects) allows.
    #[error("more than {limit} redirects in a row")]
    TooManyRedirects {
        /// The configured limit.
        limit: usize,
    },

    /// Retryable: the connection could not be made, or broke.
    #[error("connection failed")]
    Network(#[source] BoxError),

    /// Retryable: nothing at all (not even a keep-alive comment) arrived for
    /// the [read timeout](crate::EventSourceBuilder::read_timeout).
    #[error("nothing received for {0:?}")]
    ReadTimeout(Duration),

    /// Retryable: the server ended the response normally. Event streams are
    /// meant to stay open, so the client reconnects.
    #[error("the server ended the stream")]
    Ended,
}

impl Error {
    /// True for errors after which the stream reconnects; they are reported in
    /// [`StreamItem::Reconnecting`](crate::StreamItem::Reconnecting).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Network(_) | Error::ReadTimeout(_) | Error::Ended
        )
    }

    /// True for errors that end a stream: the server's answer is not an event
    /// stream, and retrying would get the same answer.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Error::Status { .. }
                | Error::ContentType { .. }
                | Error::InvalidRedirect { .. }
                | Error::TooManyRedirects { .. }
        )
    }
}
