//! Mercure draft-08 subscriptions beside draft-07 ones, on one hub at once:
//! `match`, `match_exact` and `match_urlpattern` (the checklist's examples),
//! their refusals, `last_event_id` and `Mercure-Last-Event-ID`.
//!
//! "Does not receive" is checked by order: the non-matching updates are
//! published first, then one that matches; the stream's next event must be
//! that one.

mod common;

use common::{PATHS, TestHub, config, encode, publisher_token};
use http::StatusCode;

/// The hub's public URL in these tests: relative patterns and topics
/// resolve against it.
const HUB_URL: &str = "https://hub.example.com/.well-known/mercure";

async fn hub() -> TestHub {
    TestHub::start(tidings_server::Config {
        public_url: Some(HUB_URL.into()),
        ..config()
    })
    .await
}

/// Publishes each topic (data = the topic), then `marker`.
async fn publish_all(hub: &TestHub, topics: &[&str], marker: &str) {
    for topic in topics.iter().chain([&marker]) {
        hub.publish(&[("topic", topic), ("data", topic)]).await;
    }
}

#[tokio::test]
async fn url_patterns_match_as_the_checklist_says() {
    let hub = hub().await;
    // (pattern, topics it matches, topics it does not match)
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "https://example.com/books/:id",
            &[
                "https://example.com/books/1",
                "https://example.com/books/1?x=y#f",
                "https://EXAMPLE.com/books/1",
            ],
            &[
                "https://example.com/books/1/2",
                "https://example.com/books/",
                "https://example.com/Books/1",
                "http://example.com/books/1",
                "https://example.com:8443/books/1",
            ],
        ),
        (
            "https://example.com/users/42/*",
            &["https://example.com/users/42/books/1"],
            &["https://example.com/users/43/books/1"],
        ),
        (
            "/books/:id",
            &["/books/1", "https://hub.example.com/books/1"],
            &["https://example.com/books/1", "/books/1/2"],
        ),
    ];
    for path in PATHS {
        for &(pattern, yes, no) in cases {
            let query = format!("match_urlpattern={}", encode(pattern));
            let mut sse = hub.subscribe_via(path, &query, &[]).await;
            // A marker per case, which the pattern matches.
            let marker = yes[0];
            publish_all(&hub, no, marker).await;
            assert_eq!(sse.data(1).await, [marker], "{pattern} ({path:?})");
            for topic in &yes[1..] {
                publish_all(&hub, &[], topic).await;
                assert_eq!(sse.data(1).await, [*topic], "{pattern} ({path:?})");
            }
        }
    }
    hub.stop().await;
}

#[tokio::test]
async fn draft_07_and_draft_08_subscribers_on_one_hub_each_get_their_draft() {
    let hub = hub().await;
    let template = "https://example.com/books/{id}";
    // Draft-07: a URI template. Draft-08: the same text is an exact topic.
    let mut old = hub
        .subscribe(&format!("topic={}", encode(template)), &[])
        .await;
    let mut exact = hub
        .subscribe(&format!("match={}", encode(template)), &[])
        .await;
    let mut exact_too = hub
        .subscribe(&format!("match_exact={}", encode(template)), &[])
        .await;
    publish_all(&hub, &["https://example.com/books/1"], template).await;
    assert_eq!(old.data(2).await, ["https://example.com/books/1", template]);
    assert_eq!(exact.data(1).await, [template]);
    assert_eq!(exact_too.data(1).await, [template]);
    // `*` matches every topic under any matcher type.
    let mut all = hub.subscribe("match=*", &[]).await;
    let mut all_patterns = hub.subscribe("match_urlpattern=*", &[]).await;
    publish_all(&hub, &["urn:x"], "a b").await;
    assert_eq!(all.data(2).await, ["urn:x", "a b"]);
    assert_eq!(all_patterns.data(2).await, ["urn:x", "a b"]);
    hub.stop().await;
}

#[tokio::test]
async fn matchers_mix_with_each_other_and_with_topic_and_deliver_each_update_once() {
    let hub = hub().await;
    let query = format!(
        "topic={}&match={}&match_urlpattern={}&match=urn:a",
        encode("https://example.com/t/{x}"),
        encode("https://example.com/t/1"),
        encode("https://example.com/t/:x"),
    );
    let mut sse = hub.subscribe(&query, &[]).await;
    publish_all(
        &hub,
        &["https://example.com/t/1", "urn:a", "urn:b"],
        "https://example.com/t/2",
    )
    .await;
    assert_eq!(
        sse.data(3).await,
        [
            "https://example.com/t/1",
            "urn:a",
            "https://example.com/t/2"
        ]
    );
    hub.stop().await;
}

#[tokio::test]
async fn bad_matchers_are_refused_with_400() {
    let hub = hub().await;
    let long = format!("match={}", "a".repeat(4097));
    let many = vec!["match=x"; 65].join("&");
    for query in [
        "Match=x",
        "match_URLPattern=x",
        "matches=1",
        "MATCH_exact=x",
        "",
        "match=",
        "match_urlpattern=https%3A%2F%2Fe.com%2F(",
        "match=a%00b",
        "match=a%0Ab",
        "match=%E2%80%8Bx",
        "match_urlpattern=%E2%80%AEx",
        "match=%FF",
        long.as_str(),
        many.as_str(),
    ] {
        let sse = hub.try_subscribe(query, &[]).await;
        assert_eq!(sse.status, StatusCode::BAD_REQUEST, "?{query:.60}");
    }
    // The same refusals on HEAD (a probe).
    let mut conn = hub.connect().await;
    let reply = conn
        .request(
            "HEAD",
            "/.well-known/mercure?match_URLPattern=x",
            &[],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    // At the caps: accepted.
    let at_cap = format!("match={}", "a".repeat(4096));
    assert_eq!(hub.try_subscribe(&at_cap, &[]).await.status, StatusCode::OK);
    hub.stop().await;
}

#[tokio::test]
async fn last_event_id_resumes_and_mercure_last_event_id_answers() {
    let hub = hub().await;
    let first = hub.publish(&[("topic", "urn:r"), ("data", "one")]).await;
    let second = hub.publish(&[("topic", "urn:r"), ("data", "two")]).await;
    // Draft-08's parameter, draft-07's, and the header (which wins).
    for query in [
        format!("match=urn:r&last_event_id={}", encode(&first)),
        format!("match=urn:r&lastEventID={}", encode(&first)),
        "match=urn:r&last_event_id=nonsense".to_owned(),
    ] {
        let headers: &[(&str, &str)] = if query.ends_with("nonsense") {
            &[("last-event-id", &first)]
        } else {
            &[]
        };
        let mut sse = hub.subscribe(&query, headers).await;
        assert_eq!(sse.header("mercure-last-event-id"), Some(first.as_str()));
        assert_eq!(sse.header("last-event-id"), Some(first.as_str()));
        assert_eq!(sse.data(1).await, ["two"], "{query}");
    }
    // Without a resume point: the newest id, under both names.
    let sse = hub.subscribe("match=urn:r", &[]).await;
    assert_eq!(sse.header("mercure-last-event-id"), Some(second.as_str()));
    assert_eq!(sse.header("last-event-id"), Some(second.as_str()));
    // `earliest` replays all.
    let mut sse = hub
        .subscribe("match=urn:r&last_event_id=earliest", &[])
        .await;
    assert_eq!(sse.data(2).await, ["one", "two"]);
    hub.stop().await;
}

/// A pattern whose `(regex)` group would take exponential time on a
/// backtracking engine, against a long topic: the linear-time engine
/// answers (a backtracking one would not within the test's wait).
#[tokio::test]
async fn a_hostile_pattern_on_a_long_topic_costs_linear_time() {
    let hub = hub().await;
    let pattern = "https://example.com/((?:a+)+b)";
    let mut sse = hub
        .subscribe(&format!("match_urlpattern={}", encode(pattern)), &[])
        .await;
    let hostile = format!("https://example.com/{}c", "a".repeat(4000));
    publish_all(&hub, &[&hostile], "https://example.com/aab").await;
    assert_eq!(sse.data(1).await, ["https://example.com/aab"]);
    hub.stop().await;
}

#[tokio::test]
async fn publishes_draft_08_refuses_are_400_and_success_is_plain_text() {
    let hub = hub().await;
    let token = publisher_token();
    for fields in [
        &[("topic", "*"), ("data", "x")][..],
        &[("topic", "a\u{0}b")],
        &[("topic", "a\u{200b}b")],
        &[("topic", "ok"), ("id", "x\ny")],
        &[("topic", "ok"), ("id", "\u{feff}x")],
        &[("topic", "ok"), ("id", "#x")],
        &[("topic", "ok"), ("id", "earliest")],
        &[("topic", "ok"), ("type", "mercure")],
        &[("topic", "ok"), ("type", "a\u{202e}")],
        &[("topic", "ok"), ("retry", "+5")],
        &[("topic", "ok"), ("retry", "5ms")],
        &[("data", "no topic")],
    ] {
        let reply = hub.publish_form(Some(&token), fields).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{fields:?}: {}",
            reply.body
        );
    }
    // A form that is not UTF-8.
    let mut conn = hub.connect().await;
    let bearer = format!("Bearer {token}");
    let reply = conn
        .post(
            "/.well-known/mercure",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &bearer),
            ],
            "topic=%FF&data=x",
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    // Success: exactly 200, text/plain; charset=utf-8, the id as the body.
    let reply = hub
        .publish_form(
            Some(&token),
            &[("topic", "ok"), ("id", "my-id"), ("private", "false")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(reply.body, "my-id");
    // `private=false` still makes it private: an anonymous subscriber
    // replaying from the start does not see it.
    hub.publish(&[("topic", "ok"), ("data", "public")]).await;
    let mut sse = hub.subscribe("match=ok&last_event_id=earliest", &[]).await;
    assert_eq!(sse.data(1).await, ["public"]);
    hub.stop().await;
}

/// The issuer the draft-08 auth tests' hub trusts.
const ISSUER: &str = "https://issuer.example";

/// A hub that trusts [`ISSUER`]'s draft-08 tokens.
fn strict_config() -> tidings_server::Config {
    tidings_server::Config {
        public_url: Some(HUB_URL.into()),
        jwt_issuer: vec![ISSUER.into()],
        ..config()
    }
}

async fn strict_hub() -> TestHub {
    TestHub::start(strict_config()).await
}

/// A token signed with the tests' secret: `header` and `claims` as given.
fn sign(header: serde_json::Value, claims: serde_json::Value) -> String {
    use base64::Engine as _;
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let input = format!("{}.{}", b64(&header), b64(&claims));
    let key = jsonwebtoken::EncodingKey::from_secret(common::SECRET.as_bytes());
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap();
    format!("{input}.{signature}")
}

fn at_jwt() -> serde_json::Value {
    serde_json::json!({"alg": "HS256", "typ": "at+jwt"})
}

/// Draft-08 claims granting `actions` on `topics` (`[match, match_type]`).
fn details(actions: &[&str], topics: &[(&str, &str)]) -> serde_json::Value {
    let topics: Vec<_> = topics
        .iter()
        .map(|(m, t)| serde_json::json!({"match": m, "match_type": t}))
        .collect();
    serde_json::json!({
        "iss": ISSUER,
        "aud": HUB_URL,
        "exp": 4_102_444_800u64,
        "authorization_details": [{
            "type": "https://mercure.rocks/authorization-detail",
            "actions": actions,
            "topics": topics,
        }],
    })
}

/// Publishes with `token`; the reply.
async fn publish_with(hub: &TestHub, token: &str, topic: &str) -> common::Reply {
    hub.publish_form(Some(token), &[("topic", topic), ("data", topic)])
        .await
}

#[tokio::test]
async fn draft_08_tokens_are_checked_as_rfc_9068_access_tokens() {
    let hub = strict_hub().await;
    let grant = details(
        &["publish"],
        &[
            ("urn:x", "exact"),
            ("https://example.com/books/:id", "urlpattern"),
        ],
    );
    let good = sign(at_jwt(), grant.clone());
    for topic in ["urn:x", "https://example.com/books/1"] {
        let reply = publish_with(&hub, &good, topic).await;
        assert_eq!(reply.status, StatusCode::OK, "{topic}: {}", reply.body);
    }
    // Not granted: 403 insufficient_scope.
    let reply = publish_with(&hub, &good, "urn:y").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(
        reply
            .header("www-authenticate")
            .unwrap_or_default()
            .contains("error=\"insufficient_scope\""),
        "{:?}",
        reply.headers
    );
    // Each RFC 9068 check, and each malformed Mercure detail: 401 invalid_token.
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = grant.clone();
        f(&mut claims);
        sign(at_jwt(), claims)
    };
    let refused = [
        (
            "untrusted iss",
            with(&|c| c["iss"] = "https://evil.example".into()),
        ),
        (
            "no iss",
            with(&|c| {
                c.as_object_mut().unwrap().remove("iss");
            }),
        ),
        (
            "other aud",
            with(&|c| c["aud"] = "https://other.example/.well-known/mercure".into()),
        ),
        (
            "no aud",
            with(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
        ),
        (
            "no exp",
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        ("expired", with(&|c| c["exp"] = 1_000.into())),
        (
            "bare-string topic",
            with(&|c| c["authorization_details"][0]["topics"] = serde_json::json!(["urn:x"])),
        ),
        (
            "no match",
            with(&|c| {
                c["authorization_details"][0]["topics"] =
                    serde_json::json!([{"match_type": "exact"}])
            }),
        ),
        (
            "empty topics",
            with(&|c| c["authorization_details"][0]["topics"] = serde_json::json!([])),
        ),
        (
            "empty actions",
            with(&|c| c["authorization_details"][0]["actions"] = serde_json::json!([])),
        ),
        (
            "odd match_type",
            with(&|c| c["authorization_details"][0]["topics"][0]["match_type"] = "regex".into()),
        ),
        (
            "bad pattern",
            with(&|c| {
                c["authorization_details"][0]["topics"][1]["match"] = "https://e.com/(".into()
            }),
        ),
        (
            "non-string action",
            with(&|c| c["authorization_details"][0]["actions"] = serde_json::json!([1])),
        ),
        (
            "details without typ",
            sign(serde_json::json!({"alg": "HS256"}), grant.clone()),
        ),
        (
            "a key in the header",
            sign(
                serde_json::json!({"alg": "HS256", "typ": "at+jwt", "jwk": {"kty": "oct"}}),
                grant.clone(),
            ),
        ),
    ];
    for (why, token) in &refused {
        let reply = publish_with(&hub, token, "urn:x").await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{why}: {}",
            reply.body
        );
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{why}: {challenge}"
        );
        assert!(
            challenge.contains("resource_metadata=\"https://hub.example.com/.well-known/oauth-protected-resource/.well-known/mercure\""),
            "{why}: {challenge}"
        );
    }
    // `typ` in any case, and an array `aud`, are fine; other detail types are ignored.
    let mut claims = grant.clone();
    claims["aud"] = serde_json::json!(["https://other.example", HUB_URL]);
    claims["authorization_details"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "https://example.com/other", "anything": 1}));
    let token = sign(
        serde_json::json!({"alg": "HS256", "typ": "Application/AT+JWT"}),
        claims,
    );
    assert_eq!(
        publish_with(&hub, &token, "urn:x").await.status,
        StatusCode::OK
    );
    // A mercure claim beside the details never widens them.
    let mut claims = grant;
    claims["mercure"] = serde_json::json!({"publish": ["*"]});
    let token = sign(at_jwt(), claims);
    assert_eq!(
        publish_with(&hub, &token, "urn:y").await.status,
        StatusCode::FORBIDDEN
    );
    // A draft-07 token works beside them, with neither iss nor aud.
    assert_eq!(
        hub.publish_form(Some(&publisher_token()), &[("topic", "urn:y")])
            .await
            .status,
        StatusCode::OK
    );
    hub.stop().await;
}

#[tokio::test]
async fn a_hub_that_trusts_no_issuer_refuses_draft_08_tokens() {
    let hub = hub().await;
    let token = sign(at_jwt(), details(&["publish"], &[("*", "exact")]));
    let reply = publish_with(&hub, &token, "urn:x").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert!(reply.body.contains("--jwt-issuer"), "{}", reply.body);
    hub.stop().await;
}

#[tokio::test]
async fn draft_08_subscribe_grants_deliver_private_updates_by_header_and_cookie() {
    let hub = strict_hub().await;
    let token = sign(
        at_jwt(),
        details(
            &["subscribe"],
            &[("https://example.com/p/:id", "urlpattern")],
        ),
    );
    let bearer = format!("Bearer {token}");
    let cookie = format!("__Secure-mercure_access_token={token}");
    let mut by_header = hub
        .subscribe(
            "match_urlpattern=https%3A%2F%2Fexample.com%2Fp%2F*",
            &[("authorization", &bearer)],
        )
        .await;
    let mut by_cookie = hub
        .subscribe(
            "match_urlpattern=https%3A%2F%2Fexample.com%2Fp%2F*",
            &[("cookie", &cookie)],
        )
        .await;
    let mut anonymous = hub
        .subscribe("match_urlpattern=https%3A%2F%2Fexample.com%2Fp%2F*", &[])
        .await;
    let publisher = publisher_token();
    for (topic, private) in [
        ("https://example.com/p/1", true),
        ("https://example.com/p/2", false),
    ] {
        let mut fields = vec![("topic", topic), ("data", topic)];
        if private {
            fields.push(("private", "on"));
        }
        let reply = hub.publish_form(Some(&publisher), &fields).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    assert_eq!(
        by_header.data(2).await,
        ["https://example.com/p/1", "https://example.com/p/2"]
    );
    assert_eq!(
        by_cookie.data(2).await,
        ["https://example.com/p/1", "https://example.com/p/2"]
    );
    assert_eq!(anonymous.data(1).await, ["https://example.com/p/2"]);
    // A bad token is refused even though anonymous subscribers are allowed.
    let bad = format!(
        "Bearer {}",
        sign(at_jwt(), serde_json::json!({"iss": ISSUER}))
    );
    let refused = hub
        .try_subscribe("match=x", &[("authorization", &bad)])
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    // RFC 6750's access_token parameter is refused: 400 invalid_request.
    let refused = hub
        .try_subscribe(&format!("match=x&access_token={token}"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused
            .header("www-authenticate")
            .unwrap_or_default()
            .contains("invalid_request")
    );
    hub.stop().await;
}

#[tokio::test]
async fn publishing_without_a_token_gets_a_challenge_and_the_metadata_describes_the_hub() {
    let hub = strict_hub().await;
    let reply = hub.publish_form(None, &[("topic", "urn:x")]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(
            "Bearer resource_metadata=\"https://hub.example.com/.well-known/oauth-protected-resource/.well-known/mercure\""
        )
    );
    let reply = hub
        .get("/.well-known/oauth-protected-resource/.well-known/mercure")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let metadata: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(metadata["resource"], HUB_URL);
    assert_eq!(
        metadata["authorization_servers"],
        serde_json::json!([ISSUER])
    );
    assert_eq!(
        metadata["authorization_details_types_supported"],
        serde_json::json!(["https://mercure.rocks/authorization-detail"])
    );
    assert_eq!(
        metadata["bearer_methods_supported"],
        serde_json::json!(["header"])
    );
    assert_eq!(metadata["mercure_cookie"], "__Secure-mercure_access_token");
    assert_eq!(
        metadata["mercure_matcher_types_supported"],
        serde_json::json!(["exact", "urlpattern"])
    );
    assert_eq!(metadata["mercure_subscriptions"], false);
    hub.stop().await;
}

#[tokio::test]
async fn minted_draft_08_tokens_are_accepted() {
    let hub = strict_hub().await;
    let token = tidings_server::mint(
        &tidings_server::KeyMaterial::Secret(common::SECRET.into()),
        tidings_server::Algorithm::HS256,
        &tidings_server::MintClaims {
            publish: Some(vec!["urn:m".into()]),
            subscribe: None,
            payload: None,
            ttl: None,
            draft08: Some(tidings_server::Draft08Claims {
                issuer: ISSUER.into(),
                audience: HUB_URL.into(),
                publish_urlpatterns: vec!["https://example.com/m/:id".into()],
                subscribe_urlpatterns: Vec::new(),
            }),
        },
    )
    .unwrap();
    for topic in ["urn:m", "https://example.com/m/1"] {
        assert_eq!(
            publish_with(&hub, &token, topic).await.status,
            StatusCode::OK,
            "{topic}"
        );
    }
    assert_eq!(
        publish_with(&hub, &token, "urn:n").await.status,
        StatusCode::FORBIDDEN
    );
    hub.stop().await;
}

#[tokio::test]
async fn subscription_events_and_the_api_speak_each_subscribers_draft() {
    let hub = TestHub::start(tidings_server::Config {
        subscriptions: true,
        ..strict_config()
    })
    .await;
    let watcher = sign(
        at_jwt(),
        details(
            &["subscribe"],
            &[("/.well-known/mercure/subscriptions{/*}?", "urlpattern")],
        ),
    );
    let bearer = format!("Bearer {watcher}");
    let mut events = hub
        .subscribe(
            &format!(
                "match_urlpattern={}",
                encode("/.well-known/mercure/subscriptions{/*}?")
            ),
            &[("authorization", &bearer)],
        )
        .await;
    // The watcher sees its own subscription announced first.
    let own: serde_json::Value = serde_json::from_str(&events.event().await.data).unwrap();
    assert_eq!(own["match"], "/.well-known/mercure/subscriptions{/*}?");
    // A draft-08 subscriber: a `mercure` event, plain JSON, draft-08's topic.
    let _new = hub
        .subscribe(
            &format!("match_urlpattern={}", encode("https://example.com/:id")),
            &[],
        )
        .await;
    let event = events.event().await;
    assert_eq!(event.event_type, "mercure");
    let doc: serde_json::Value = serde_json::from_str(&event.data).unwrap();
    let subscriber = doc["subscriber"].as_str().unwrap().to_owned();
    let topic = format!(
        "/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2F%3Aid/{}",
        encode(&subscriber).replace('+', "%20")
    );
    assert_eq!(
        doc,
        serde_json::json!({
            "id": topic,
            "type": "subscription",
            "match": "https://example.com/:id",
            "match_type": "urlpattern",
            "subscriber": subscriber,
            "active": true,
        })
    );
    // A draft-07 subscriber beside it: draft-07's event, as before.
    let _old = hub.subscribe("topic=urn%3Aold", &[]).await;
    let event = events.event().await;
    assert_eq!(event.event_type, "Subscription");
    let old: serde_json::Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(old["topic"], "urn:old");
    assert_eq!(old["type"], "Subscription");

    // The API: one subscription in draft-08's shape, the cursor in Link.
    let mut conn = hub.connect().await;
    let one = conn.get(&topic, &[("authorization", &bearer)]).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(one.header("content-type"), Some("application/json"));
    let link = one.header("link").unwrap_or_default().to_owned();
    assert!(
        link.starts_with(&format!("<{HUB_URL}>; rel=\"mercure\"; last-event-id=\""))
            && link.ends_with("type=\"mercure\"; content-type=\"application/json\""),
        "{link}"
    );
    let one: serde_json::Value = serde_json::from_str(&one.body).unwrap();
    assert_eq!(one["match_type"], "urlpattern");
    assert!(one.get("@context").is_none());
    // By matcher: the list, plain JSON.
    let by_match = conn
        .get(
            "/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2F%3Aid",
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(by_match.status, StatusCode::OK, "{}", by_match.body);
    let by_match: serde_json::Value = serde_json::from_str(&by_match.body).unwrap();
    assert_eq!(by_match["type"], "subscriptions");
    assert_eq!(by_match["subscriptions"].as_array().unwrap().len(), 1);
    // Everything: JSON-LD by default (draft-07 clients), plain JSON when asked.
    let all = conn
        .get(
            "/.well-known/mercure/subscriptions",
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(all.header("content-type"), Some("application/ld+json"));
    let all = conn
        .get(
            "/.well-known/mercure/subscriptions",
            &[("authorization", &bearer), ("accept", "application/json")],
        )
        .await;
    assert_eq!(all.header("content-type"), Some("application/json"));
    let all: serde_json::Value = serde_json::from_str(&all.body).unwrap();
    let kinds: Vec<_> = all["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        kinds.contains(&"subscription".to_owned()) && kinds.contains(&"Subscription".to_owned()),
        "{kinds:?}"
    );
    // Missing: 404; no grant on the path: 403.
    let missing = conn
        .get(
            "/.well-known/mercure/subscriptions/exact/urn%3Anone/urn%3Auuid%3Ax",
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let other = format!(
        "Bearer {}",
        sign(at_jwt(), details(&["subscribe"], &[("urn:x", "exact")]))
    );
    let refused = conn.get(&topic, &[("authorization", &other)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    hub.stop().await;
}

#[tokio::test]
async fn a_query_request_subscribes_with_the_union_of_its_body_and_url() {
    let hub = hub().await;
    let first = hub.publish(&[("topic", "urn:q1"), ("data", "one")]).await;
    hub.publish(&[("topic", "urn:q1"), ("data", "two")]).await;
    let conn = hub.connect().await;
    let mut conn = conn;
    let response = conn
        .send(
            "QUERY",
            &format!(
                "/.well-known/mercure?match=urn%3Aq2&last_event_id={}",
                encode(&first)
            ),
            &[("content-type", "application/x-www-form-urlencoded")],
            "match=urn%3Aq1&last_event_id=earliest",
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get("mercure-last-event-id").unwrap(),
        first.as_str(),
        "the URL's last_event_id wins over the body's"
    );
    drop(response);
    // The stream itself: both selectors, resumed after `first`.
    let mut conn = hub.connect().await;
    let path = format!(
        "/.well-known/mercure?match=urn%3Aq2&last_event_id={}",
        encode(&first)
    );
    let mut sse = {
        let response = conn
            .send(
                "QUERY",
                &path,
                &[("content-type", "application/x-www-form-urlencoded")],
                "match=urn%3Aq1",
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        common::Sse::from_response(response, conn)
    };
    hub.publish(&[("topic", "urn:q2"), ("data", "three")]).await;
    assert_eq!(sse.data(2).await, ["two", "three"]);
    // Over the cap: 413; not a form: 415.
    let mut conn = hub.connect().await;
    let big = format!("match={}", "a".repeat(1 << 20));
    let reply = conn
        .request(
            "QUERY",
            "/.well-known/mercure",
            &[("content-type", "application/x-www-form-urlencoded")],
            big,
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    let mut conn = hub.connect().await;
    let reply = conn
        .request(
            "QUERY",
            "/.well-known/mercure",
            &[("content-type", "application/json")],
            "{}",
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Other methods: still 405.
    let mut conn = hub.connect().await;
    let reply = conn.request("PUT", "/.well-known/mercure", &[], "").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    hub.stop().await;
}

#[tokio::test]
async fn grants_are_capped_and_the_payload_is_the_first_matching_details() {
    let hub = TestHub::start(tidings_server::Config {
        subscriptions: true,
        ..strict_config()
    })
    .await;
    // 101 details (or 101 topics over them): the whole token is refused.
    // (Small entries of another type count too, and keep the token under
    // the request head's 16 KiB.)
    let mut claims = details(&["publish"], &[("urn:x", "exact")]);
    claims["authorization_details"]
        .as_array_mut()
        .unwrap()
        .extend(vec![serde_json::json!({"type": "x"}); 100]);
    let reply = publish_with(&hub, &sign(at_jwt(), claims), "urn:x").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    let topics: Vec<(&str, &str)> = vec![("x", "exact"); 101];
    let reply = publish_with(
        &hub,
        &sign(at_jwt(), details(&["publish"], &topics)),
        "urn:x",
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    // At the caps: accepted.
    let mut topics: Vec<(&str, &str)> = vec![("x", "exact"); 99];
    topics.push(("urn:x", "exact"));
    let reply = publish_with(
        &hub,
        &sign(at_jwt(), details(&["publish"], &topics)),
        "urn:x",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // A token not valid yet (nbf): refused.
    let mut early = details(&["publish"], &[("urn:x", "exact")]);
    early["nbf"] = 4_000_000_000u64.into();
    assert_eq!(
        publish_with(&hub, &sign(at_jwt(), early), "urn:x")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // The payload: the first subscribe detail whose topics match the
    // subscription's matcher string.
    let detail = |topic: (&str, &str), payload: serde_json::Value| {
        serde_json::json!({
            "type": "https://mercure.rocks/authorization-detail",
            "actions": ["subscribe"],
            "topics": [{"match": topic.0, "match_type": topic.1}],
            "payload": payload,
        })
    };
    let mut claims = details(
        &["subscribe"],
        &[("/.well-known/mercure/subscriptions{/*}?", "urlpattern")],
    );
    claims["authorization_details"]
        .as_array_mut()
        .unwrap()
        .extend([
            detail(("urn:other", "exact"), serde_json::json!({"n": 1})),
            detail(
                ("https://example.com/:id", "urlpattern"),
                serde_json::json!({"n": 2}),
            ),
            detail(("*", "exact"), serde_json::json!({"n": 3})),
        ]);
    let bearer = format!("Bearer {}", sign(at_jwt(), claims));
    let _held = hub
        .subscribe(
            &format!("match={}", encode("https://example.com/7")),
            &[("authorization", &bearer)],
        )
        .await;
    let mut conn = hub.connect().await;
    let list = conn
        .get(
            "/.well-known/mercure/subscriptions/exact/https%3A%2F%2Fexample.com%2F7",
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let list: serde_json::Value = serde_json::from_str(&list.body).unwrap();
    assert_eq!(
        list["subscriptions"][0]["payload"],
        serde_json::json!({"n": 2})
    );
    hub.stop().await;
}
