//! The body of a publish request, form-encoded per Mercure or JSON, read
//! into its fields. Nothing here depends on the rest of the server, so that
//! the fuzz target (`crates/server/fuzz`) builds this file alone.

use serde_json::Value;

fn invalid(message: impl Into<String>) -> BodyError {
    BodyError::Invalid(message.into())
}

/// Why a body cannot be read; the message says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Neither form-encoded nor JSON (415).
    UnsupportedType(String),
    /// Malformed (400).
    Invalid(String),
}

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

/// A publish body in the format its `Content-Type` names.
pub(crate) fn parse_body(content_type: &str, body: &[u8]) -> Result<PublishForm, BodyError> {
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/x-www-form-urlencoded" | "" => parse_form(body),
        "application/json" => parse_json(body),
        other => Err(BodyError::UnsupportedType(format!(
            "unsupported Content-Type {other:?}: send application/x-www-form-urlencoded or application/json"
        ))),
    }
}

fn parse_form(body: &[u8]) -> Result<PublishForm, BodyError> {
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

fn parse_retry(value: &str) -> Result<u64, BodyError> {
    value.parse().map_err(|_| {
        invalid(format!(
            "retry must be a whole number of milliseconds, got {value:?}"
        ))
    })
}

fn parse_json(body: &[u8]) -> Result<PublishForm, BodyError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("invalid JSON body: {e}")))?;
    let Value::Object(object) = value else {
        return Err(invalid(
            "the JSON body must be an object like {\"topic\": \"…\", \"data\": …}",
        ));
    };
    let text = |key: &str| -> Result<Option<String>, BodyError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("\"{key}\" must be a string"))),
        }
    };
    let topics = match object.get("topic") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(topic)) => vec![topic.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(topic) => Ok(topic.clone()),
                _ => Err(invalid("\"topic\" must be a string or an array of strings")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(invalid("\"topic\" must be a string or an array of strings"));
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
        Some(_) => return Err(invalid("\"private\" must be true or false")),
    };
    let retry = match object.get("retry") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| {
            invalid("\"retry\" must be a whole, non-negative number of milliseconds")
        })?),
        Some(Value::String(s)) => Some(parse_retry(s)?),
        Some(_) => {
            return Err(invalid("\"retry\" must be a number of milliseconds"));
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
        assert!(matches!(
            parse_form(b"topic=a&retry=soon"),
            Err(BodyError::Invalid(m)) if m.contains("retry")
        ));
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
            assert!(
                matches!(parse_json(bad), Err(BodyError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_content_type_picks_the_format_and_others_are_refused() {
        let form = parse_body(
            "application/x-www-form-urlencoded; charset=UTF-8",
            b"topic=a",
        )
        .unwrap();
        assert_eq!(form.topics, ["a"]);
        let json = parse_body("Application/JSON", br#"{"topic": "a"}"#).unwrap();
        assert_eq!(json.topics, ["a"]);
        assert_eq!(parse_body("", b"topic=a").unwrap().topics, ["a"]);
        assert!(matches!(
            parse_body("text/plain", b"topic=a"),
            Err(BodyError::UnsupportedType(m)) if m.contains("text/plain")
        ));
    }
}
