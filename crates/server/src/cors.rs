//! CORS: which origins may read streams and call the hub from a browser.
//!
//! One implementation for both paths: the lean subscribe path writes its
//! response head itself and takes the headers as lines, the axum routes take
//! them from the middleware (which also answers preflight requests). A CORS
//! layer (tower-http's) only works as a layer, so the two paths would each
//! have kept their own rules, and drifted.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::SharedState;

const ALLOW_METHODS: &str = "GET, HEAD, POST, QUERY, OPTIONS";
const ALLOW_HEADERS: &str = "authorization, cache-control, last-event-id, content-type";
const EXPOSE_HEADERS: &str =
    "last-event-id, mercure-last-event-id, link, www-authenticate, tidings-history-gap";
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "600";

/// The CORS headers of an answer to a request from `origin`: an origin
/// listed by name is echoed back with credentials (which `EventSource` with
/// `withCredentials` needs); `*` in the list lets any other origin read
/// without credentials (`Access-Control-Allow-Origin: *`), never an origin
/// reflected with credentials (Mercure draft-08: a credentialed answer needs
/// an explicit allowlist); otherwise only `Vary`.
pub(crate) fn response_headers(
    origins: &[String],
    origin: Option<&str>,
) -> Vec<(&'static str, String)> {
    let Some(origin) = origin else {
        return Vec::new();
    };
    let vary = ("vary", "Origin".to_owned());
    if origin.bytes().any(|b| b.is_ascii_control()) {
        return vec![vary];
    }
    if !origins.iter().any(|o| o == origin) {
        if origins.iter().any(|o| o == "*") {
            return vec![
                ("access-control-allow-origin", "*".to_owned()),
                ("access-control-expose-headers", EXPOSE_HEADERS.to_owned()),
                vary,
            ];
        }
        return vec![vary];
    }
    vec![
        ("access-control-allow-origin", origin.to_owned()),
        ("access-control-allow-credentials", "true".to_owned()),
        ("access-control-expose-headers", EXPOSE_HEADERS.to_owned()),
        vary,
    ]
}

/// [`response_headers`] as raw header lines ending in CRLF.
pub(crate) fn header_lines(origins: &[String], origin: Option<&str>) -> String {
    response_headers(origins, origin)
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect()
}

/// Answers preflight requests, and adds the CORS headers to every other
/// answer of the axum routes.
pub(crate) async fn middleware(
    State(state): State<SharedState>,
    request: Request,
    next: Next,
) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let origins = &state.config.cors_origins;
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let allowed = response_headers(origins, origin.as_deref()).len() > 1;
        if allowed {
            let headers = response.headers_mut();
            insert(headers, "access-control-allow-methods", ALLOW_METHODS);
            insert(headers, "access-control-allow-headers", ALLOW_HEADERS);
            insert(headers, "access-control-max-age", MAX_AGE);
        }
        response
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    for (name, value) in response_headers(origins, origin.as_deref()) {
        if name == "vary" {
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        } else {
            insert(headers, name, &value);
        }
    }
    response
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_origins_are_echoed_and_never_a_wildcard() {
        let listed = ["https://a.example".to_owned()];
        let lines = header_lines(&listed, Some("https://a.example"));
        assert!(lines.contains("access-control-allow-origin: https://a.example\r\n"));
        assert!(lines.contains("access-control-allow-credentials: true\r\n"));
        assert_eq!(
            header_lines(&listed, Some("https://b.example")),
            "vary: Origin\r\n"
        );
        assert_eq!(header_lines(&listed, None), "");
        // `*`: any origin may read, without credentials; an origin listed
        // by name beside it keeps them.
        let any = ["*".to_owned(), "https://a.example".to_owned()];
        let lines = header_lines(&any, Some("https://b.example"));
        assert!(lines.contains("allow-origin: *\r\n"), "{lines}");
        assert!(!lines.contains("credentials"), "{lines}");
        let lines = header_lines(&any, Some("https://a.example"));
        assert!(
            lines.contains("allow-origin: https://a.example\r\n"),
            "{lines}"
        );
        assert!(lines.contains("allow-credentials: true\r\n"), "{lines}");
        assert_eq!(
            header_lines(&any, Some("https://x\r\ninjected: 1")),
            "vary: Origin\r\n"
        );
    }
}
