//! Fuzzes the publish body parser (form-encoded per Mercure, or JSON): it
//! must never panic, must answer 400 or 415 (never a 5xx) for what it
//! refuses, and what it accepts must read back the same when written again.
//!
//! The first input byte picks the Content-Type; the rest is the body.

#![no_main]

// The parser's own file, which depends on nothing else of the server: so
// this target builds in seconds rather than building the whole server.
#[path = "../../src/publish/body.rs"]
#[allow(dead_code, unreachable_pub)]
mod body;

use body::{BodyError, PublishForm as PublishFields, parse_body};
use libfuzzer_sys::fuzz_target;

/// The parser's answer, as the hub would send it: the fields, or the status
/// and the message.
fn parse_publish_body(content_type: &str, body: &[u8]) -> Result<PublishFields, (u16, String)> {
    parse_body(content_type, body).map_err(|error| match error {
        BodyError::UnsupportedType(message) => (415, message),
        BodyError::Invalid(message) => (400, message),
    })
}

const TYPES: [&str; 5] = [
    "application/x-www-form-urlencoded",
    "application/json",
    "application/json; charset=utf-8",
    "",
    "text/plain",
];

/// The fields written as a form, as a publisher would send them.
fn as_form(fields: &PublishFields) -> Vec<u8> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for topic in &fields.topics {
        form.append_pair("topic", topic);
    }
    if let Some(data) = &fields.data {
        form.append_pair("data", data);
    }
    if let Some(id) = &fields.id {
        form.append_pair("id", id);
    }
    if let Some(event_type) = &fields.event_type {
        form.append_pair("type", event_type);
    }
    if fields.private {
        form.append_pair("private", "on");
    }
    if let Some(retry) = fields.retry {
        form.append_pair("retry", &retry.to_string());
    }
    form.finish().into_bytes()
}

/// The fields written as JSON.
fn as_json(fields: &PublishFields) -> Vec<u8> {
    serde_json::json!({
        "topic": fields.topics,
        "data": fields.data,
        "id": fields.id,
        "type": fields.event_type,
        "private": fields.private,
        "retry": fields.retry,
    })
    .to_string()
    .into_bytes()
}

fuzz_target!(|input: &[u8]| {
    let Some((&pick, body)) = input.split_first() else {
        return;
    };
    let content_type = TYPES[usize::from(pick) % TYPES.len()];
    match parse_publish_body(content_type, body) {
        Ok(fields) => {
            // Whatever was accepted, written again either way, reads back the
            // same: nothing is lost or changed between the two formats.
            let form =
                parse_publish_body(TYPES[0], &as_form(&fields)).expect("its own form parses");
            assert_eq!(form, fields, "form round trip");
            let json =
                parse_publish_body(TYPES[1], &as_json(&fields)).expect("its own JSON parses");
            assert_eq!(json, fields, "JSON round trip");
        }
        Err((status, message)) => {
            assert!(status == 400 || status == 415, "{status}: {message}");
            assert!(!message.is_empty());
        }
    }
});
