//! Opening a subscription: query, resume point, authorization, and the
//! response headers. Shared by the lean connection path and the axum route.

use axum::http::{HeaderMap, StatusCode, header};
use tidings_hub::{Matcher, SubscribeRequest, Subscription};

use crate::auth::Claims;
use crate::error::ApiError;
use crate::state::AppState;

/// Response header set when the requested `Last-Event-ID` is no longer in
/// history, so the stream starts at the oldest update held.
pub const HISTORY_GAP_HEADER: &str = "Tidings-History-Gap";

/// An open subscription and when its token expires.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) subscription: Subscription,
    /// `exp` of the subscriber's token (Unix seconds): the stream ends then.
    pub(crate) expires_at: Option<u64>,
    /// The subscription's place in the connection limits.
    pub(crate) slot: crate::limits::SubscriberSlot,
    /// An HTTP/2 stream's place in its client's per-IP count.
    pub(crate) stream: Option<crate::limits::StreamSlot>,
}

/// The most bytes of one draft-08 matcher (the Mercure hub's cap).
pub(crate) const MAX_MATCHER_LEN: usize = tidings_hub::MAX_URL_PATTERN_LEN;

/// What a subscribe query asks for.
#[derive(Debug, Default)]
pub(crate) struct Query {
    /// `topic` (draft-07), `match` / `match_exact` / `match_urlpattern`
    /// (draft-08), in the order given.
    pub(crate) selectors: Vec<Matcher>,
    /// `last_event_id` (draft-08) or `lastEventID` (draft-07).
    pub(crate) last_event_id: Option<String>,
}

/// The selectors and resume point of a subscribe query string. Both drafts
/// at once: `topic` and the `match*` parameters mix, an update matching any
/// is delivered.
pub(crate) fn parse_query(query: Option<&str>, max_topics: usize) -> Result<Query, ApiError> {
    let pairs = crate::publish::parse_form_strict(query.unwrap_or("").as_bytes())
        .map_err(|e| ApiError::bad_request(format!("malformed query: {e}")))?;
    let mut parsed = Query::default();
    for (key, value) in pairs {
        match key.as_str() {
            "topic" => {
                if value.is_empty() {
                    return Err(ApiError::bad_request(
                        "empty topic parameter: give a topic, a URI template, or *",
                    ));
                }
                parsed.selectors.push(Matcher::topic(value));
            }
            "match" | "match_exact" | "match_urlpattern" => {
                check_matcher(&key, &value)?;
                parsed.selectors.push(if key == "match_urlpattern" {
                    Matcher::url_pattern(value)
                } else {
                    Matcher::exact(value)
                });
            }
            "last_event_id" | "lastEventID" => parsed.last_event_id = Some(value),
            _ if key.len() >= 5 && key.as_bytes()[..5].eq_ignore_ascii_case(b"match") => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {key:?}: names starting with \"match\" are reserved; use match, match_exact or match_urlpattern (lower case)"
                )));
            }
            _ => {}
        }
    }
    if parsed.selectors.is_empty() {
        return Err(ApiError::bad_request(
            "missing topic parameter: subscribe with ?match=<topic> or ?match_urlpattern=<URL pattern> (draft-08), or ?topic=<topic or URI template> (draft-07), each repeatable; * for every topic",
        ));
    }
    if parsed.selectors.len() > max_topics {
        return Err(ApiError::bad_request(format!(
            "too many topic selectors (topic and match parameters): {} given, at most {max_topics} allowed",
            parsed.selectors.len()
        )));
    }
    Ok(parsed)
}

/// A draft-08 matcher's value: not empty, not too long, no control or
/// format characters.
fn check_matcher(key: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(ApiError::bad_request(format!(
            "empty {key} parameter: give a topic, a URL pattern, or *"
        )));
    }
    if value.len() > MAX_MATCHER_LEN {
        return Err(ApiError::bad_request(format!(
            "{key} longer than {MAX_MATCHER_LEN} bytes"
        )));
    }
    if crate::text::has_control_or_format(value) {
        return Err(ApiError::bad_request(format!(
            "{key} holds a control or format character"
        )));
    }
    Ok(())
}

/// A URL pattern that does not compile is the client's error (400). The
/// hub's selector cache keeps what compiled, so subscribing after this
/// check looks the patterns up rather than compiling them again.
fn check_selectors(state: &AppState, parsed: &Query) -> Result<(), ApiError> {
    for selector in &parsed.selectors {
        state.hub.matcher(selector).map_err(ApiError::from)?;
    }
    Ok(())
}

/// Authorizes and opens a subscription for a request.
/// `stream_of`: the client's address when the subscription is an HTTP/2
/// stream, which counts against its per-IP limit.
pub(crate) async fn open(
    state: &std::sync::Arc<AppState>,
    headers: &HeaderMap,
    query: Option<&str>,
    stream_of: Option<std::net::IpAddr>,
) -> Result<Opened, ApiError> {
    let parsed = parse_query(query, state.config.max_topics)?;
    // Before the subscription counts against any limit.
    check_selectors(state, &parsed)?;
    let last_event_id = requested_last_event_id(headers, parsed.last_event_id);
    let claims = subscriber_claims(state, headers, query)?;
    let mut request = SubscribeRequest::new(parsed.selectors);
    request.last_event_id = last_event_id;
    let mut expires_at = None;
    if let Some(claims) = claims {
        request.authorized = claims.subscribe_matchers();
        request.payload = match &claims.grants {
            Some(grants) => draft08_payload(state, grants, &request.selectors),
            None => claims.payload,
        };
        expires_at = claims.expires_at;
    }
    let stream = stream_of
        .map(|ip| crate::limits::ConnectionLimits::stream(state, ip))
        .transpose()?;
    let slot = crate::limits::ConnectionLimits::subscribe(state)?;
    let subscription = state.hub.subscribe(request).await?;
    Ok(Opened {
        subscription,
        expires_at,
        slot,
        stream,
    })
}

/// A draft-08 token's payload for a subscription: that of the first
/// subscribe detail whose topics match one of the subscription's matcher
/// strings.
fn draft08_payload(
    state: &AppState,
    grants: &crate::auth::Grants,
    selectors: &[Matcher],
) -> Option<serde_json::Value> {
    grants
        .payloads
        .iter()
        .find(|(topics, _)| {
            topics.iter().any(|topic| {
                state
                    .hub
                    .matcher(topic)
                    .is_ok_and(|t| selectors.iter().any(|s| t.matches(&s.value)))
            })
        })
        .map(|(_, payload)| payload.clone())
}

/// What a `HEAD` answers: the same checks and the headers a `GET` would get,
/// without registering a subscription, so that a probe neither costs a
/// subscription nor announces one to presence watchers. `Last-Event-ID` is
/// the requested id, else the newest update's.
pub(crate) fn probe(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Vec<(&'static str, String)>, ApiError> {
    let parsed = parse_query(query, state.config.max_topics)?;
    check_selectors(state, &parsed)?;
    subscriber_claims(state, headers, query)?;
    let last_event_id = requested_last_event_id(headers, parsed.last_event_id)
        .unwrap_or_else(|| state.hub.last_event_id());
    Ok(stream_headers(&last_event_id, false))
}

/// The header wins: a browser's EventSource reconnects to the same URL
/// (with its original lastEventID) but sends the newest id in the header.
fn requested_last_event_id(headers: &HeaderMap, from_query: Option<String>) -> Option<String> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .or(from_query.filter(|v| !v.is_empty()))
}

/// The subscriber's claims: `None` for an allowed anonymous subscriber.
pub(crate) fn subscriber_claims(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<Claims>, ApiError> {
    let token = crate::auth::token_from_request(headers, query, &state.config.cookie_name)
        .map_err(|e| state.token_error(&e))?;
    match token {
        // A bad token is refused even where anonymous subscribers are
        // allowed: the client meant to authenticate.
        Some(token) => state
            .auth
            .verify_subscriber(&token.value)
            .map(Some)
            .map_err(|e| state.token_error(&e)),
        None if state.config.allows_anonymous() => Ok(None),
        None => Err(ApiError::unauthorized(format!(
            "{}; this hub does not allow anonymous subscribers",
            state.auth.missing()
        ))
        .bearer_challenge(None, &state.metadata_url())),
    }
}

/// The headers of a subscription's response, besides CORS.
pub(crate) fn response_headers(subscription: &Subscription) -> Vec<(&'static str, String)> {
    stream_headers(subscription.last_event_id(), subscription.missed_history())
}

fn stream_headers(last_event_id: &str, missed_history: bool) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        (
            header::CONTENT_TYPE.as_str(),
            "text/event-stream".to_owned(),
        ),
        (
            header::CACHE_CONTROL.as_str(),
            "private, no-cache, no-store, must-revalidate, max-age=0".to_owned(),
        ),
        ("x-accel-buffering", "no".to_owned()),
        ("last-event-id", sanitize_header(last_event_id)),
        // Draft-08's name for it; draft-07 clients read the one above.
        ("mercure-last-event-id", sanitize_header(last_event_id)),
    ];
    if missed_history {
        headers.push((HISTORY_GAP_HEADER, "true".to_owned()));
    }
    headers
}

/// Header values cannot carry control characters; ids are validated on
/// publish, but an id read back from an old store is not trusted blindly.
fn sanitize_header(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// 405 for methods other than GET/HEAD/POST on the hub endpoint.
pub(crate) fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "use GET to subscribe or POST to publish",
    )
}
