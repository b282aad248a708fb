//! CORS: which origins may read streams and call the hub from a browser.

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The CORS layer for the axum routes (including preflight requests).
pub(crate) fn layer(origins: &[String]) -> CorsLayer {
    let allow_origin = if origins.iter().any(|o| o == "*") {
        // `*` cannot be combined with credentials, which EventSource with
        // `withCredentials` needs: echo the request's origin instead.
        AllowOrigin::mirror_request()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CACHE_CONTROL,
            HeaderName::from_static("last-event-id"),
            header::CONTENT_TYPE,
        ])
        .expose_headers([
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("tidings-history-gap"),
        ])
}

/// The CORS response headers for a subscription answered outside axum, as
/// raw header lines ending in CRLF.
pub(crate) fn header_lines(origins: &[String], origin: Option<&str>) -> String {
    let Some(origin) = origin else {
        return String::new();
    };
    let allowed = origins.iter().any(|o| o == "*" || o == origin);
    if !allowed || origin.bytes().any(|b| b.is_ascii_control()) {
        return String::from("Vary: Origin\r\n");
    }
    format!(
        "Access-Control-Allow-Origin: {origin}\r\nAccess-Control-Allow-Credentials: true\r\nAccess-Control-Expose-Headers: last-event-id, tidings-history-gap\r\nVary: Origin\r\n"
    )
}
