//! `POST /.well-known/mercure`: publishing, form-encoded per Mercure or JSON.

mod body;

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tidings_hub::{Selector, Update};

pub(crate) use self::body::{BodyError, parse_body};
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
            .map_err(|e| ApiError::unauthorized(e.to_string()))?
            .ok_or_else(|| {
                ApiError::unauthorized(format!(
                    "{}; publishing always needs a token with a mercure.publish claim",
                    state.auth.missing()
                ))
            })?;
    let claims = state
        .auth
        .verify_publisher(&token.value)
        .map_err(|e| ApiError::unauthorized(e.to_string()))?;
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
    // Mercure reserves the hub's own namespace: presence events on
    // /.well-known/mercure/subscriptions/… come from the hub only, so a
    // forged one could announce subscribers that do not exist.
    if let Some(topic) = form.topics.iter().find(|t| is_reserved_topic(t)) {
        return Err(ApiError::forbidden(format!(
            "topic {topic:?} is in the hub's reserved namespace /.well-known/mercure"
        )));
    }
    let allowed: Vec<Selector> = claims
        .publish
        .unwrap_or_default()
        .iter()
        .map(|s| state.hub.selector(s))
        .collect();
    if let Some(topic) = form
        .topics
        .iter()
        .find(|t| !allowed.iter().any(|s| s.matches(t)))
    {
        return Err(ApiError::forbidden(format!(
            "the token's mercure.publish selectors do not allow topic {topic:?}"
        )));
    }
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

/// Whether a topic is inside `/.well-known/mercure`, as a path or as the path
/// of an absolute URL (any host: the hub cannot know every name it is
/// reached by).
fn is_reserved_topic(topic: &str) -> bool {
    const RESERVED: &str = "/.well-known/mercure";
    let path = match topic.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => topic,
    };
    path == RESERVED
        || path
            .strip_prefix(RESERVED)
            .is_some_and(|rest| rest.starts_with(['/', '?', '#']))
}

/// Publishing with a cookie is a cross-site request risk: only origins listed
/// in `publish-origins` may do it.
fn check_cookie_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match origin {
        Some(origin) if allowed.iter().any(|a| a == "*" || a == origin) => Ok(()),
        Some(origin) => Err(ApiError::forbidden(format!(
            "origin {origin:?} may not publish with a cookie: add it to publish-origins"
        ))),
        None => Err(ApiError::forbidden(
            "publishing with a cookie needs an Origin header from an origin listed in publish-origins",
        )),
    }
}
