//! `POST /.well-known/mercure`: publishing, form-encoded per Mercure or JSON.

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tidings_hub::{Selector, Update};

use crate::auth::TokenSource;
use crate::error::ApiError;
use crate::state::SharedState;

/// The fields of a publish request, from either body format.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct PublishForm {
    pub(crate) topics: Vec<String>,
    pub(crate) data: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) event_type: Option<String>,
    pub(crate) private: bool,
    pub(crate) retry: Option<u64>,
}

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
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let form = match media_type.as_str() {
        "application/x-www-form-urlencoded" | "" => parse_form(&bytes)?,
        "application/json" => parse_json(&bytes)?,
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "unsupported Content-Type {other:?}: send application/x-www-form-urlencoded or application/json"
                ),
            ));
        }
    };
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
        .map(|s| Selector::parse(s))
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

fn parse_form(body: &[u8]) -> Result<PublishForm, ApiError> {
    let mut form = PublishForm::default();
    for (key, value) in form_urlencoded::parse(body) {
        match &*key {
            "topic" => form.topics.push(value.into_owned()),
            "data" => form.data = Some(value.into_owned()),
            "id" => form.id = Some(value.into_owned()),
            "type" => form.event_type = Some(value.into_owned()),
            // Mercure: the field's presence makes the update private.
            "private" => form.private = true,
            "retry" => form.retry = Some(parse_retry(&value)?),
            _ => {}
        }
    }
    Ok(form)
}

fn parse_retry(value: &str) -> Result<u64, ApiError> {
    value.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "retry must be a whole number of milliseconds, got {value:?}"
        ))
    })
}

fn parse_json(body: &[u8]) -> Result<PublishForm, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let Value::Object(object) = value else {
        return Err(ApiError::bad_request(
            "the JSON body must be an object like {\"topic\": \"…\", \"data\": …}",
        ));
    };
    let text = |key: &str| -> Result<Option<String>, ApiError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::bad_request(format!("\"{key}\" must be a string"))),
        }
    };
    let topics = match object.get("topic") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(topic)) => vec![topic.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(topic) => Ok(topic.clone()),
                _ => Err(ApiError::bad_request(
                    "\"topic\" must be a string or an array of strings",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "\"topic\" must be a string or an array of strings",
            ));
        }
    };
    let data = match object.get("data") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        // Anything else is sent as its JSON text.
        Some(other) => Some(other.to_string()),
    };
    let private = match object.get("private") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad_request("\"private\" must be true or false")),
    };
    let retry = match object.get("retry") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| {
            ApiError::bad_request("\"retry\" must be a whole, non-negative number of milliseconds")
        })?),
        Some(Value::String(s)) => Some(parse_retry(s)?),
        Some(_) => {
            return Err(ApiError::bad_request(
                "\"retry\" must be a number of milliseconds",
            ));
        }
    };
    Ok(PublishForm {
        topics,
        data,
        id: text("id")?,
        event_type: text("type")?,
        private,
        retry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_per_mercure() {
        let form =
            parse_form(b"topic=a&topic=b%2Fc&data=x%0Ay&private=on&id=1&type=t&retry=10&other=z")
                .unwrap();
        assert_eq!(
            form,
            PublishForm {
                topics: vec!["a".into(), "b/c".into()],
                data: Some("x\ny".into()),
                id: Some("1".into()),
                event_type: Some("t".into()),
                private: true,
                retry: Some(10),
            }
        );
        assert!(
            parse_form(b"topic=a&retry=soon")
                .unwrap_err()
                .message
                .contains("retry")
        );
    }

    #[test]
    fn json_body_with_non_string_data() {
        let form =
            parse_json(br#"{"topic": ["a", "b"], "data": {"n": 1}, "private": true, "retry": 5}"#)
                .unwrap();
        assert_eq!(form.topics, ["a", "b"]);
        assert_eq!(form.data.as_deref(), Some(r#"{"n":1}"#));
        assert!(form.private);
        assert_eq!(form.retry, Some(5));
        let single = parse_json(br#"{"topic": "a", "data": "text"}"#).unwrap();
        assert_eq!(
            (single.topics.len(), single.data.as_deref()),
            (1, Some("text"))
        );
        for bad in [
            &b"[1]"[..],
            b"{",
            br#"{"topic": 1}"#,
            br#"{"topic": "a", "private": "yes"}"#,
            br#"{"topic":"a","retry":-1}"#,
        ] {
            assert_eq!(parse_json(bad).unwrap_err().status, StatusCode::BAD_REQUEST);
        }
    }
}
