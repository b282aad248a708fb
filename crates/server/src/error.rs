//! [`ApiError`]: every failure of the HTTP face, as a status and a message a
//! person can act on.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A failed request: the status code and the reason, sent as plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong and, where it helps, what to do.
    pub message: String,
    /// Seconds after which a retry may succeed (`Retry-After`).
    pub retry_after: Option<u32>,
    /// An RFC 6750 `WWW-Authenticate` challenge, for token errors.
    pub challenge: Option<String>,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
            challenge: None,
        }
    }

    /// Adds a `WWW-Authenticate: Bearer …` challenge (RFC 6750): `error` is `invalid_token`,
    /// `insufficient_scope` or `invalid_request`, or `None` for a request without a token;
    /// `metadata` is the hub's RFC 9728 resource metadata URL.
    #[must_use]
    pub fn bearer_challenge(mut self, error: Option<&str>, metadata: &str) -> ApiError {
        self.challenge = Some(match error {
            Some(error) => format!("Bearer error=\"{error}\", resource_metadata=\"{metadata}\""),
            None => format!("Bearer resource_metadata=\"{metadata}\""),
        });
        self
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    /// Adds `Retry-After`.
    #[must_use]
    pub fn retry_after(mut self, seconds: u32) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// The response as raw HTTP/1.1 bytes, for connections answered before
    /// (or instead of) hyper. The connection closes after it.
    pub(crate) fn to_http1(&self, extra_headers: &str) -> Vec<u8> {
        let body = format!("{}\n", self.message);
        let mut retry = self
            .retry_after
            .map(|s| format!("Retry-After: {s}\r\n"))
            .unwrap_or_default();
        if let Some(challenge) = &self.challenge {
            retry.push_str(&format!("WWW-Authenticate: {challenge}\r\n"));
        }
        format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{retry}{extra_headers}Connection: close\r\n\r\n{body}",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or(""),
            body.len(),
        )
        .into_bytes()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        tracing::info!(status = self.status.as_u16(), reason = %self.message, "request rejected");
        let mut response = (self.status, format!("{}\n", self.message)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(value) = self
            .challenge
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok())
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

impl From<tidings_hub::Error> for ApiError {
    fn from(error: tidings_hub::Error) -> ApiError {
        use tidings_hub::Error;
        let status = match &error {
            Error::InvalidUpdate(_) | Error::InvalidSelector(_) | Error::NoSelector => {
                StatusCode::BAD_REQUEST
            }
            Error::DuplicateId(_) => StatusCode::CONFLICT,
            // The log is down, slow or not reached yet, or the hub stops:
            // a later attempt may succeed.
            Error::Log(_)
            | Error::Unconfirmed(_)
            | Error::Timeout(_)
            | Error::NotReady(_)
            | Error::Closed => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        let retry = matches!(status, StatusCode::SERVICE_UNAVAILABLE).then_some(1);
        ApiError {
            status,
            message: error.to_string(),
            retry_after: retry,
            challenge: None,
        }
    }
}
