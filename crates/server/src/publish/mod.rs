//! `POST /.well-known/mercure`: publishing, form-encoded per Mercure or JSON.

mod body;

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tidings_hub::{Selector, Update};

pub(crate) use self::body::{BodyError, parse_body, parse_form_strict};
use crate::auth::TokenSource;
use crate::error::ApiError;
use crate::state::SharedState;

pub(crate) async fn publish(
    State(state): State<SharedState>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    // Authorize before reading the body: an anonymous flood costs nothing.
    let token =
        crate::auth::token_from_request(&headers, query.as_deref(), &state.config.cookie_name)
            .map_err(|e| state.token_error(&e))?
            .ok_or_else(|| {
                ApiError::unauthorized(format!(
                    "{}; publishing always needs a token that grants publish",
                    state.auth.missing()
                ))
                .bearer_challenge(None, &state.metadata_url())
            })?;
    let claims = state
        .auth
        .verify_publisher(&token.value)
        .map_err(|e| state.token_error(&e))?;
    if token.source == TokenSource::Cookie {
        check_cookie_origin(&headers, &state.config.publish_origins)?;
    }
    let limit = state.config.max_body;
    let bytes = to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("publish body larger than the limit of {limit} bytes (max-body)"),
        )
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    let form = parse_body(content_type, &bytes).map_err(|error| match error {
        BodyError::UnsupportedType(message) => {
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
        }
        BodyError::Invalid(message) => ApiError::bad_request(message),
    })?;
    if form.topics.is_empty() {
        return Err(ApiError::bad_request(
            "missing topic: publish needs at least one topic field",
        ));
    }
    if form.topics.len() > state.config.max_topics {
        return Err(ApiError::bad_request(format!(
            "too many topics: {} given, at most {} allowed",
            form.topics.len(),
            state.config.max_topics
        )));
    }
    for topic in &form.topics {
        check_topic(topic, &state.public_url)?;
    }
    let allowed: Vec<Selector> = claims
        .publish_matchers()
        .iter()
        .filter_map(|m| state.hub.matcher(m).ok())
        .collect();
    if let Some(topic) = form
        .topics
        .iter()
        .find(|t| !allowed.iter().any(|s| s.matches(t)))
    {
        return Err(state.insufficient_scope(if claims.grants.is_some() {
            format!("the token's authorization_details grant no publish on topic {topic:?}")
        } else {
            format!("the token's mercure.publish selectors do not allow topic {topic:?}")
        }));
    }
    check_fields(&form)?;
    let mut update =
        Update::with_topics(form.topics, form.data.unwrap_or_default()).private(form.private);
    if let Some(id) = form.id {
        update = update.id(id);
    }
    if let Some(event_type) = form.event_type {
        update = update.event_type(event_type);
    }
    if let Some(retry) = form.retry {
        update = update.retry(Duration::from_millis(retry));
    }
    let id = state.hub.publish(update).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        id.to_string(),
    )
        .into_response())
}

/// A topic draft-08 refuses (400): control or format characters, `*` (a
/// selector, not a topic), or a place in the hub's reserved namespace.
fn check_topic(topic: &str, hub_url: &url::Url) -> Result<(), ApiError> {
    if crate::text::has_control_or_format(topic) {
        return Err(ApiError::bad_request(format!(
            "topic {topic:?} holds a control or format character"
        )));
    }
    if topic == tidings_hub::WILDCARD {
        return Err(ApiError::bad_request(
            "topic \"*\" is a selector, not a topic: publish to a topic of its own",
        ));
    }
    // Mercure reserves the hub's own namespace: presence events on
    // /.well-known/mercure/subscriptions/… come from the hub only, so a
    // forged one could announce subscribers that do not exist.
    if is_reserved_topic(topic, hub_url) {
        return Err(ApiError::bad_request(format!(
            "topic {topic:?} is in the hub's reserved namespace {}",
            hub_url.path()
        )));
    }
    Ok(())
}

/// Whether a topic is at or below the hub's path once resolved against the
/// hub's URL as WHATWG URL parsing does (dot segments removed, `%2e` read as
/// a dot) and with unreserved characters percent-decoded: on any host, since
/// the hub cannot know every name it is reached by. `/.well-known/%6Dercure/x`
/// and `/a/../.well-known/mercure/x` are reserved.
fn is_reserved_topic(topic: &str, hub_url: &url::Url) -> bool {
    const RESERVED: &str = "/.well-known/mercure";
    let under = |path: &str, root: &str| {
        path.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    let Ok(url) = url::Url::options().base_url(Some(hub_url)).parse(topic) else {
        // Not a URL even against the hub's: read the text as a path.
        return under(topic, RESERVED);
    };
    let path = decode_unreserved(url.path());
    under(&path, &decode_unreserved(hub_url.path())) || under(&path, RESERVED)
}

/// `%XX` escapes of unreserved characters (`A-Za-z0-9-._~`) decoded, the
/// others kept: they name the same resource (RFC 3986, section 6.2.2.2).
fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let byte = (high * 16 + low) as u8;
                if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                    out.push(byte);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Fields draft-08 refuses (400): an `id` or `type` with control or format
/// characters, and the `type` `mercure`, which names the hub's own
/// subscription events.
fn check_fields(form: &body::PublishForm) -> Result<(), ApiError> {
    for (name, value) in [("id", &form.id), ("type", &form.event_type)] {
        if value
            .as_deref()
            .is_some_and(crate::text::has_control_or_format)
        {
            return Err(ApiError::bad_request(format!(
                "{name} holds a control or format character"
            )));
        }
    }
    if form.event_type.as_deref() == Some("mercure") {
        return Err(ApiError::bad_request(
            "type \"mercure\" is reserved for the hub's subscription events",
        ));
    }
    Ok(())
}

/// Publishing with a cookie is a cross-site request risk: only origins listed
/// in `publish-origins` may do it.
fn check_cookie_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    // The Origin header, else the origin of the Referer (Mercure draft-08:
    // "Origin or Referer"; some requests carry only the latter).
    let referer_origin = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null");
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .or(referer_origin.as_deref());
    match origin {
        Some(origin) if allowed.iter().any(|a| a == "*" || a == origin) => Ok(()),
        Some(origin) => Err(ApiError::forbidden(format!(
            "origin {origin:?} may not publish with a cookie: add it to publish-origins"
        ))),
        None => Err(ApiError::forbidden(
            "publishing with a cookie needs an Origin (or Referer) header from an origin listed in publish-origins",
        )),
    }
}
