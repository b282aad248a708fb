//! Configuring an [`EventSource`]: the builder, and the request it sends on
//! every (re)connection.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use tidings_codec::DecoderConfig;
use url::Url;

use crate::error::{Error, Result};
use crate::stream::EventSource;

/// Sent unless the caller sets a `User-Agent` header: servers like to know.
const USER_AGENT: &str = concat!("tidings-client/", env!("CARGO_PKG_VERSION"));

/// `Last-Event-ID` is not among `http`'s named constants.
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// Builds an [`EventSource`]; made by [`EventSource::builder`].
///
/// Every setting has a default that matches a browser's `EventSource` where a
/// browser has one. Invalid values (URL, headers) are reported by
/// [`build`](Self::build), so calls can be chained.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct EventSourceBuilder {
    url: String,
    method: Method,
    headers: Vec<(String, String)>,
    body: Option<Bytes>,
    last_event_id: String,
    retry: Duration,
    max_retry: Duration,
    read_timeout: Option<Duration>,
    max_redirects: usize,
    limits: DecoderConfig,
    /// PEM certificates trusted besides the system's roots.
    root_certificates: Vec<Vec<u8>>,
    accept_invalid_certificates: bool,
}

impl EventSourceBuilder {
    pub(crate) fn new(url: impl AsRef<str>) -> EventSourceBuilder {
        EventSourceBuilder {
            url: url.as_ref().to_owned(),
            method: Method::GET,
            headers: Vec::new(),
            body: None,
            last_event_id: String::new(),
            retry: Duration::from_secs(3),
            max_retry: Duration::from_secs(30),
            read_timeout: None,
            max_redirects: 20,
            limits: DecoderConfig::default(),
            root_certificates: Vec::new(),
            accept_invalid_certificates: false,
        }
    }

    /// Also trusts the certificates in `pem` (a private CA, a server's own
    /// certificate) for `https`, besides the system's roots. HTTPS servers
    /// that offer HTTP/2 are spoken to in HTTP/2.
    pub fn root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    /// Accepts any certificate, even one for another host or expired: for
    /// development against a self-signed certificate only, as it lets anyone
    /// in the path read and change the stream. Default: off.
    pub fn danger_accept_invalid_certificates(mut self, accept: bool) -> Self {
        self.accept_invalid_certificates = accept;
        self
    }

    /// Adds a request header, sent on every connection. Call it again with the
    /// same name to send several values.
    ///
    /// `Accept: text/event-stream` and `Last-Event-ID` are always set by the
    /// client and replace any value given here; `Cache-Control` defaults to
    /// `no-cache` unless given here. `Authorization`, `Cookie` and
    /// `Proxy-Authorization` are dropped when a redirect leads to another
    /// host, scheme or port; other headers (an API key, say) are not.
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.headers
            .push((name.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// The request method. Default: `GET`. Some APIs want `POST` (or
    /// `REPORT`) with a [`body`](Self::body) describing the subscription.
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// A request body, sent again on every reconnection. Default: none.
    ///
    /// A 301, 302 or 303 redirect turns a `POST` into a `GET` without body,
    /// as browsers do; 307 and 308 keep both.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// The last event id to resume from: sent as `Last-Event-ID` on the first
    /// connection, and carried by events that come without an `id`. Default:
    /// empty (no header).
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = id.into();
        self
    }

    /// The reconnection time: how long to wait before reconnecting after a
    /// healthy stream ends, until the server sends a `retry:` field. It is
    /// also the base of the backoff after failures. Default: 3 s, as browsers.
    pub fn retry(mut self, delay: Duration) -> Self {
        self.retry = delay;
        self
    }

    /// The cap on the backoff after repeated failures. Default: 30 s. A
    /// server's `retry:` above the cap is still obeyed.
    pub fn max_retry(mut self, delay: Duration) -> Self {
        self.max_retry = delay;
        self
    }

    /// Drop the connection and reconnect when nothing at all arrives (no
    /// event, no keep-alive comment, no response headers) for this long.
    /// Default: none, as browsers; set it a little above the server's
    /// keep-alive interval to notice dead connections that TCP does not
    /// report.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// How many redirects in a row to follow before failing with
    /// [`Error::TooManyRedirects`]. Default: 20, the limit of the Fetch
    /// standard that browsers follow. `0` follows none.
    pub fn max_redirects(mut self, limit: usize) -> Self {
        self.max_redirects = limit;
        self
    }

    /// The decoder's limits on line and event size. Default:
    /// [`DecoderConfig::default`]. An event over a limit is dropped and
    /// reported as [`StreamItem::EventDropped`](crate::StreamItem::EventDropped).
    pub fn limits(mut self, limits: DecoderConfig) -> Self {
        self.limits = limits;
        self
    }

    /// Checks the settings and makes the [`EventSource`].
    ///
    /// Nothing connects yet: the first connection starts when the stream is
    /// first polled, so this may be called outside an async runtime. The
    /// stream itself must be polled inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] unless the URL is absolute `http` or `https`;
    /// [`Error::InvalidHeader`] for a header that is not valid HTTP;
    /// [`Error::Client`] if the HTTP client cannot be set up.
    pub fn build(self) -> Result<EventSource> {
        let url = parse_url(&self.url)?;
        let headers = self.request_headers()?;
        let limit = self.max_redirects;
        let roots = self
            .root_certificates
            .iter()
            .map(|pem| match reqwest::Certificate::from_pem_bundle(pem) {
                Ok(certs) if certs.is_empty() => Err(Error::Client(
                    "a root certificate given holds no PEM certificate".into(),
                )),
                Ok(certs) => Ok(certs),
                Err(e) => Err(Error::Client(e.into())),
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                // `previous` holds every URL requested so far, the first one
                // included: its length is the number of this redirect.
                if attempt.previous().len() > limit {
                    attempt.error(RedirectLimit)
                } else {
                    attempt.follow()
                }
            }))
            // Sending `Referer` would leak the subscription URL (which may
            // carry a token in its query) to the redirect target.
            .referer(false)
            .user_agent(USER_AGENT)
            .tls_certs_merge(roots)
            .tls_danger_accept_invalid_certs(self.accept_invalid_certificates)
            .build()
            .map_err(|e| Error::Client(e.into()))?;
        let config = Config {
            client,
            url,
            method: self.method,
            headers,
            body: self.body,
            retry: self.retry,
            max_retry: self.max_retry,
            read_timeout: self.read_timeout,
            max_redirects: self.max_redirects,
            limits: self.limits,
        };
        Ok(EventSource::from_config(config, self.last_event_id))
    }

    fn request_headers(&self) -> Result<HeaderMap> {
        let mut headers = HeaderMap::new();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        let mut user_cache_control = false;
        for (name, value) in &self.headers {
            let invalid = |reason: &dyn fmt::Display| Error::InvalidHeader {
                name: name.clone(),
                reason: reason.to_string(),
            };
            let header_name = HeaderName::try_from(name.as_str()).map_err(|e| invalid(&e))?;
            let header_value = HeaderValue::try_from(value.as_str()).map_err(|e| invalid(&e))?;
            if header_name == CACHE_CONTROL && !user_cache_control {
                // The caller's Cache-Control replaces ours rather than adding to it.
                headers.remove(CACHE_CONTROL);
                user_cache_control = true;
            }
            headers.append(header_name, header_value);
        }
        // The protocol's own headers win over the caller's: the response must
        // be an event stream, and the resume point is the stream's business.
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        headers.remove(LAST_EVENT_ID);
        Ok(headers)
    }
}

fn parse_url(url: &str) -> Result<Url> {
    let invalid = |reason: String| Error::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let parsed = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(invalid(format!("scheme {other:?} is not http or https"))),
    }
}

/// The error our redirect policy raises, found again in the HTTP client's
/// error chain to report [`Error::TooManyRedirects`].
#[derive(Debug)]
struct RedirectLimit;

impl fmt::Display for RedirectLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("redirect limit reached")
    }
}

impl StdError for RedirectLimit {}

/// Whether `error` (from sending a request) is our redirect limit.
pub(crate) fn is_redirect_limit(error: &(dyn StdError + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<RedirectLimit>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// What the builder checked: everything needed to (re)connect.
#[derive(Debug)]
pub(crate) struct Config {
    client: reqwest::Client,
    pub(crate) url: Url,
    method: Method,
    headers: HeaderMap,
    body: Option<Bytes>,
    pub(crate) retry: Duration,
    pub(crate) max_retry: Duration,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) max_redirects: usize,
    pub(crate) limits: DecoderConfig,
}

/// The future of one connection attempt: the response headers, or why not.
pub(crate) type Connecting =
    std::pin::Pin<Box<dyn Future<Output = reqwest::Result<Answer>> + Send>>;

/// What a server answered to one attempt.
pub(crate) enum Answer {
    /// 200, 204 or a redirect the client could not follow: for `open` to judge.
    Response(reqwest::Response),
    /// Any other status, with the start of the body: servers put the reason
    /// there ("missing topic parameter…"), and a person needs it.
    Refused {
        status: StatusCode,
        url: Url,
        message: Option<String>,
    },
}

/// Most of a refusal's body kept for the error message.
const MESSAGE_LIMIT: usize = 1024;

/// The start of a refused response's body, as text, if it comes quickly.
async fn refusal_message(mut response: reqwest::Response) -> Option<String> {
    let read = async {
        let mut body = Vec::new();
        while body.len() < MESSAGE_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        body.truncate(MESSAGE_LIMIT);
        body
    };
    let body = tokio::time::timeout(Duration::from_secs(2), read)
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

impl Config {
    /// Starts one connection attempt, resuming after `last_event_id`.
    ///
    /// Every attempt goes to the URL given to the builder, not to where an
    /// earlier redirect led, as in a browser: a redirect may be temporary.
    pub(crate) fn connect(&self, last_event_id: &str) -> Connecting {
        let mut headers = self.headers.clone();
        if !last_event_id.is_empty() {
            // The decoder never keeps CR, LF or NUL in an id, but other
            // control characters cannot go in a header: such an id is not
            // sent, and the server starts afresh rather than the request fail.
            if let Ok(value) = HeaderValue::from_bytes(last_event_id.as_bytes()) {
                headers.insert(LAST_EVENT_ID, value);
            }
        }
        let mut request = self
            .client
            .request(self.method.clone(), self.url.clone())
            .headers(headers);
        if let Some(body) = &self.body {
            request = request.body(body.clone()); // a cheap reference-counted clone
        }
        let sending = request.send();
        Box::pin(async move {
            let response = sending.await?;
            let status = response.status();
            if status == StatusCode::OK
                || status == StatusCode::NO_CONTENT
                || status.is_redirection()
            {
                return Ok(Answer::Response(response));
            }
            let url = response.url().clone();
            let message = refusal_message(response).await;
            Ok(Answer::Refused {
                status,
                url,
                message,
            })
        })
    }
}
