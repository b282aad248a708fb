//! Finding the token a request carries: `Authorization` header, `authorization` query parameter or cookie.

use std::fmt;

use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE};

use super::AuthError;
use super::error::quote;

/// A token found in a request. `Debug` shows only its length: tokens are credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The compact JWT.
    pub value: String,
    /// Where it came from; a cookie used to publish needs an `Origin` check (CSRF).
    pub source: TokenSource,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field(
                "value",
                &format_args!("<{} bytes redacted>", self.value.len()),
            )
            .field("source", &self.source)
            .finish()
    }
}

/// Where a request carried its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenSource {
    /// `Authorization: Bearer <jwt>`.
    Header,
    /// The `authorization` query parameter (for `EventSource`, which cannot set headers).
    Query,
    /// The configured cookie; browsers send it on their own, hence the CSRF check on publish.
    Cookie,
}

/// Finds the token in a request, in Mercure's order: `Authorization: Bearer` header, then the
/// `authorization` query parameter (draft-07), then the `__Secure-mercure_access_token` cookie
/// (draft-08), then the `cookie_name` cookie (draft-07). The first place that has one wins;
/// later places are not looked at.
///
/// `query` is the URI query string (with or without a leading `?`).
///
/// # Errors
///
/// [`AuthError::Presentation`] for a request that clearly meant to send a token but sent it wrongly: a
/// non-Bearer or empty `Authorization` header, several `Authorization` headers or `authorization`
/// parameters, an empty `authorization` parameter, a non-UTF-8 cookie value. An empty cookie counts as
/// absent, because browsers send cookies the page did not choose to send.
pub fn token_from_request(
    headers: &HeaderMap,
    query: Option<&str>,
    cookie_name: &str,
) -> Result<Option<Token>, AuthError> {
    let found = if let Some(value) = token_from_header(headers)? {
        Some((value, TokenSource::Header))
    } else if let Some(value) = query.map(token_from_query).transpose()?.flatten() {
        Some((value, TokenSource::Query))
    } else if let Some(value) = token_from_cookie(headers, DRAFT_08_COOKIE)? {
        Some((value, TokenSource::Cookie))
    } else {
        token_from_cookie(headers, cookie_name)?.map(|value| (value, TokenSource::Cookie))
    };
    Ok(found.map(|(value, source)| Token { value, source }))
}

/// The cookie Mercure draft-08 names (`Secure`, `HttpOnly`, `SameSite=Strict` when set); read before
/// the configured draft-07 one.
pub const DRAFT_08_COOKIE: &str = "__Secure-mercure_access_token";

fn presentation(message: &str) -> AuthError {
    AuthError::Presentation(message.to_owned())
}

fn token_from_header(headers: &HeaderMap) -> Result<Option<String>, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    // Two headers could each be checked by a different layer; refuse the ambiguity, as Mercure does.
    if values.next().is_some() {
        return Err(presentation(
            "several Authorization headers: send exactly one",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| {
            presentation(
                "the Authorization header has non-ASCII bytes; send `Authorization: Bearer <jwt>`",
            )
        })?
        .trim();
    if value.is_empty() {
        return Err(presentation(
            "the Authorization header is empty; send `Authorization: Bearer <jwt>`",
        ));
    }
    let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Quote only the scheme: what follows it is someone's credential.
        return Err(AuthError::Presentation(format!(
            "the Authorization header uses the `{}` scheme; send `Authorization: Bearer <jwt>`",
            quote(scheme)
        )));
    }
    let token = rest.trim();
    if token.is_empty() {
        return Err(presentation(
            "the Authorization header says Bearer but carries no token",
        ));
    }
    Ok(Some(token.to_owned()))
}

fn token_from_query(query: &str) -> Result<Option<String>, AuthError> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut found = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name == "access_token" {
            // RFC 6750's query parameter: Mercure draft-08 refuses it (tokens in URLs end up in logs).
            return Err(presentation(
                "the access_token query parameter is not accepted: send `Authorization: Bearer <jwt>` or the __Secure-mercure_access_token cookie",
            ));
        }
        if name == "authorization" {
            if found.is_some() {
                return Err(presentation(
                    "several authorization query parameters: send exactly one",
                ));
            }
            found = Some(value.into_owned());
        }
    }
    match found {
        Some(value) if value.trim().is_empty() => {
            Err(presentation("the authorization query parameter is empty"))
        }
        found => Ok(found.map(|v| v.trim().to_owned())),
    }
}

fn token_from_cookie(headers: &HeaderMap, cookie_name: &str) -> Result<Option<String>, AuthError> {
    // HTTP/2 may split cookies over several `Cookie` headers, so read them all. Bytes, not `to_str`, so one
    // odd cookie of another application cannot hide ours.
    let pairs = headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b';'));
    for pair in pairs {
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        if pair[..eq].trim_ascii() != cookie_name.as_bytes() {
            continue;
        }
        let mut value = pair[eq + 1..].trim_ascii();
        // RFC 6265 allows a cookie value in double quotes.
        if let Some(inner) = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
        {
            value = inner;
        }
        if value.is_empty() {
            continue;
        }
        let value = std::str::from_utf8(value).map_err(|_| {
            AuthError::Presentation(format!("the `{cookie_name}` cookie is not UTF-8"))
        })?;
        return Ok(Some(value.to_owned()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::DEFAULT_COOKIE_NAME;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn extraction_order_is_header_then_query_then_cookie() {
        let all = headers(&[
            ("authorization", "Bearer from-header"),
            ("cookie", "mercureAuthorization=from-cookie"),
        ]);
        let query = Some("topic=x&authorization=from-query");
        let token = token_from_request(&all, query, DEFAULT_COOKIE_NAME)
            .unwrap()
            .unwrap();
        assert_eq!(
            (token.value.as_str(), token.source),
            ("from-header", TokenSource::Header)
        );

        let cookie_only = headers(&[("cookie", "mercureAuthorization=from-cookie")]);
        let token = token_from_request(&cookie_only, query, DEFAULT_COOKIE_NAME)
            .unwrap()
            .unwrap();
        assert_eq!(
            (token.value.as_str(), token.source),
            ("from-query", TokenSource::Query)
        );

        let token = token_from_request(&cookie_only, Some("topic=x"), DEFAULT_COOKIE_NAME)
            .unwrap()
            .unwrap();
        assert_eq!(
            (token.value.as_str(), token.source),
            ("from-cookie", TokenSource::Cookie)
        );

        assert_eq!(
            token_from_request(&HeaderMap::new(), Some("topic=x"), DEFAULT_COOKIE_NAME),
            Ok(None)
        );
        assert_eq!(
            token_from_request(&HeaderMap::new(), None, DEFAULT_COOKIE_NAME),
            Ok(None)
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_the_token_trimmed() {
        for value in ["Bearer abc", "bearer abc", "BEARER   abc  ", "Bearer\tabc"] {
            let token = token_from_request(&headers(&[("authorization", value)]), None, "c")
                .unwrap()
                .unwrap();
            assert_eq!(token.value, "abc", "{value:?}");
        }
    }

    #[test]
    fn bad_authorization_headers_are_malformed_without_echoing_credentials() {
        let cases = [
            ("Basic dXNlcjpwYXNzd29yZA==", "uses the `Basic` scheme"),
            ("Bearer", "carries no token"),
            ("Bearer   ", "carries no token"),
            ("", "is empty"),
            (
                "eyJhbGciOiJIUzI1NiJ9.e30.sig",
                "uses the `eyJhbGciOiJIUzI1NiJ9.e30.sig` scheme",
            ),
        ];
        for (value, expected) in cases {
            let err =
                token_from_request(&headers(&[("authorization", value)]), None, "c").unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains(expected) && !message.contains("dXNlcjpw"),
                "{value:?}: {message}"
            );
        }
        let twice = headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]);
        assert!(
            matches!(token_from_request(&twice, None, "c"), Err(AuthError::Presentation(m)) if m.contains("several"))
        );
    }

    #[test]
    fn query_parameter_is_decoded_and_must_be_single_and_non_empty() {
        let token =
            token_from_request(&HeaderMap::new(), Some("?a=1&authorization=x%2Ey.z&b"), "c")
                .unwrap();
        assert_eq!(token.unwrap().value, "x.y.z");
        for query in ["authorization=", "authorization=a&authorization=b"] {
            assert!(matches!(
                token_from_request(&HeaderMap::new(), Some(query), "c"),
                Err(AuthError::Presentation(_))
            ));
        }
        // The name is case-sensitive, as in Mercure.
        assert_eq!(
            token_from_request(&HeaderMap::new(), Some("Authorization=x"), "c"),
            Ok(None)
        );
    }

    #[test]
    fn cookie_is_found_among_others_with_odd_spacing() {
        let cases = [
            ("a=b; mercureAuthorization=tok; c=d", "tok"),
            ("a=b;mercureAuthorization=tok;c=d", "tok"),
            ("  mercureAuthorization =  tok  ;", "tok"),
            (
                "xmercureAuthorization=no; mercureAuthorizationx=no; mercureAuthorization=tok",
                "tok",
            ),
            ("flag; a==b; mercureAuthorization=\"tok\"", "tok"),
            ("mercureAuthorization=; mercureAuthorization=tok", "tok"),
        ];
        for (cookie, expected) in cases {
            let token =
                token_from_request(&headers(&[("cookie", cookie)]), None, DEFAULT_COOKIE_NAME)
                    .unwrap();
            assert_eq!(
                token.map(|t| t.value),
                Some(expected.to_owned()),
                "{cookie:?}"
            );
        }
        let split = headers(&[
            ("cookie", "a=b"),
            ("cookie", "sess=1; mercureAuthorization=tok"),
        ]);
        let token = token_from_request(&split, None, DEFAULT_COOKIE_NAME)
            .unwrap()
            .unwrap();
        assert_eq!(
            (token.value.as_str(), token.source),
            ("tok", TokenSource::Cookie)
        );
        for cookie in [
            "a=b; c=d",
            "mercureAuthorization=",
            "mercureAuthorization",
            "mercureauthorization=x",
        ] {
            let found =
                token_from_request(&headers(&[("cookie", cookie)]), None, DEFAULT_COOKIE_NAME)
                    .unwrap();
            assert_eq!(found, None, "{cookie:?}");
        }
    }
}
