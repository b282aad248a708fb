//! Reading and parsing a request head, before hyper or the lean path takes over.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::io::AsyncRead;

use crate::error::ApiError;

/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// What the lean path needs from a request head.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) query: Option<String>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(super) minor_version: u8,
    pub(super) headers: HeaderMap,
    pub(super) len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Get,
    Head,
    Other,
}

/// Reads until a whole request head is in `buf`. `Ok(None)`: the client
/// closed first, or sent an HTTP/2 preface (left for hyper).
pub(super) async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<Option<Head>, ApiError> {
    use tokio::io::AsyncReadExt;
    loop {
        if buf.starts_with(HTTP2_PREFACE) {
            return Ok(None);
        }
        if let Some(head) = parse_head(buf)? {
            return Ok(Some(head));
        }
        if buf.len() >= MAX_HEAD {
            return Err(ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!("request head larger than {MAX_HEAD} bytes"),
            ));
        }
        buf.reserve(if buf.is_empty() { 1024 } else { buf.len() });
        let limit = MAX_HEAD - buf.len();
        let n = (&mut *stream)
            .take(limit as u64)
            .read_buf(buf)
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot read the request: {e}")))?;
        if n == 0 {
            return Ok(None);
        }
    }
}

/// Parses a request head. The header array lives only in this synchronous
/// function, so it never grows the connection's task.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, ApiError> {
    let mut raw = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut raw);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(len)) => len,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "more than 64 request headers",
            ));
        }
        Err(error) => {
            return Err(ApiError::bad_request(format!(
                "malformed HTTP request: {error}"
            )));
        }
    };
    let target = request.path.unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (target, None),
    };
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for header in request.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| ApiError::bad_request(format!("invalid header name {:?}", header.name)))?;
        let value = HeaderValue::from_bytes(header.value).map_err(|_| {
            ApiError::bad_request(format!("invalid value of header {}", header.name))
        })?;
        headers.append(name, value);
    }
    let method = match request.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        _ => Method::Other,
    };
    Ok(Some(Head {
        method,
        path: path.to_owned(),
        query,
        minor_version: request.version.unwrap_or(1),
        headers,
        len,
    }))
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads_and_refuses_garbage() {
        let head =
            parse_head(b"GET /events?topic=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 5\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(
            (head.path.as_str(), head.query.as_deref()),
            ("/events", Some("topic=a"))
        );
        assert_eq!(head.headers["last-event-id"], "5");
        assert!(
            parse_head(b"GET /events HTTP/1.1\r\nHost")
                .unwrap()
                .is_none()
        );
        assert_eq!(
            parse_head(b"\x00\x01 garbage\r\n\r\n").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        let many: String = (0..70).map(|i| format!("X-{i}: y\r\n")).collect();
        let request = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            parse_head(request.as_bytes()).unwrap_err().status,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }
}
