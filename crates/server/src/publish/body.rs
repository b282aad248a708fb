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

/// A form (`application/x-www-form-urlencoded`) decoded strictly: `+` is a
/// space and `%XX` a byte, and every name and value must then be UTF-8.
/// `form_urlencoded::parse` replaces invalid bytes with U+FFFD, which would
/// turn a malformed topic or selector into a different one instead of a
/// refusal (Mercure draft-08: forms are UTF-8). Used for subscribe queries
/// too.
pub(crate) fn parse_form_strict(input: &[u8]) -> Result<Vec<(String, String)>, String> {
    let decode = |part: &[u8]| -> Result<String, String> {
        let plus: Vec<u8> = part
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        let bytes: Vec<u8> = percent_encoding::percent_decode(&plus).collect();
        String::from_utf8(bytes).map_err(|_| {
            format!(
                "{:?} is not UTF-8 once percent-decoded",
                String::from_utf8_lossy(part)
            )
        })
    };
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

fn parse_form(body: &[u8]) -> Result<PublishForm, BodyError> {
    let mut form = PublishForm::default();
    let pairs = parse_form_strict(body).map_err(|e| invalid(format!("malformed form: {e}")))?;
    for (key, value) in pairs {
        match &*key {
            "topic" => form.topics.push(value),
            "data" => form.data = Some(value),
            "id" => form.id = Some(value),
            "type" => form.event_type = Some(value),
            // Mercure: the field's presence makes the update private.
            "private" => form.private = true,
            "retry" => form.retry = Some(parse_retry(&value)?),
            _ => {}
        }
    }
    Ok(form)
}

fn parse_retry(value: &str) -> Result<u64, BodyError> {
    // Digits only: `u64::from_str` would also take a leading `+`.
    let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| value.parse().ok()).flatten().ok_or_else(|| {
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
    fn forms_decode_strictly() {
        assert_eq!(
            parse_form_strict(b"match=a+b&match_urlpattern=%2Fx%2F%3Aid&flag&=v").unwrap(),
            [
                ("match".into(), "a b".into()),
                ("match_urlpattern".into(), "/x/:id".into()),
                ("flag".into(), String::new()),
                (String::new(), "v".into()),
            ]
        );
        assert_eq!(
            parse_form_strict(b"match=%C3%A9").unwrap(),
            [("match".into(), "é".into())]
        );
        assert!(parse_form_strict(b"match=%FF").is_err());
        assert!(parse_form_strict(b"match=%C3").is_err());
    }

    #[test]
    fn retry_takes_digits_only_and_forms_must_be_utf8() {
        assert_eq!(parse_body("", b"topic=a&retry=15").unwrap().retry, Some(15));
        for bad in [
            &b"topic=a&retry=+5"[..],
            b"topic=a&retry=-1",
            b"topic=a&retry=",
            b"topic=%FF",
        ] {
            assert!(
                parse_body("", bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

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
