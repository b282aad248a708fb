//! Authorization over real HTTP: every refusal with its status and a message
//! that names the problem, cookie publishing and its Origin check, token
//! expiry closing a stream, CORS, and the subscription (presence) API.

mod common;

use std::time::Duration;

use common::{
    PATHS, TestHub, config, encode, expired_token, mint_with, publisher_token, token, token_with,
};
use http::StatusCode;
use tidings_server::{Config, MintClaims};

const BOOK: &str = "https://example.com/books/1";

#[tokio::test]
async fn publish_refusals_say_which_problem() {
    let hub = TestHub::start(config()).await;
    let other_key = mint_with(
        "another-secret-that-is-long-enough-0123456789",
        MintClaims {
            publish: Some(vec!["*".into()]),
            ..MintClaims::default()
        },
    );
    let cases = [
        (None, StatusCode::UNAUTHORIZED, "no token"),
        (
            Some("not-a-jwt".to_owned()),
            StatusCode::UNAUTHORIZED,
            "malformed",
        ),
        (Some(other_key), StatusCode::UNAUTHORIZED, "signature"),
        (
            Some(expired_token(3600)),
            StatusCode::UNAUTHORIZED,
            "expired",
        ),
        (
            Some(token(None, Some(&["*"]))),
            StatusCode::FORBIDDEN,
            "mercure.publish",
        ),
        (
            Some(token(Some(&["https://example.com/authors/{id}"]), None)),
            StatusCode::FORBIDDEN,
            "do not allow topic",
        ),
    ];
    for (token, status, needle) in cases {
        let reply = hub
            .publish_form(token.as_deref(), &[("topic", BOOK), ("data", "x")])
            .await;
        assert_eq!(reply.status, status, "{needle}: {}", reply.body);
        assert!(
            reply.body.to_lowercase().contains(needle),
            "expected {needle:?} in {:?}",
            reply.body
        );
    }
    // Every topic must be allowed, alternates included.
    let books_only = token(Some(&["https://example.com/books/{id}"]), None);
    let reply = hub
        .publish_form(
            Some(&books_only),
            &[("topic", BOOK), ("topic", "https://example.com/authors/1")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(reply.body.contains("authors/1"), "{}", reply.body);
    // Several Authorization headers are ambiguous: RFC 6750's
    // invalid_request (400 since draft-08).
    let bearer = format!("Bearer {}", publisher_token());
    let reply = hub
        .connect()
        .await
        .post(
            "/.well-known/mercure",
            &[("authorization", &bearer), ("authorization", &bearer)],
            "topic=t",
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains("error=\"invalid_request\""),
        "{challenge}"
    );
    let reply = hub
        .publish_form(Some(&books_only), &[("topic", BOOK)])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // None of the refused ones was published: the history starts with it.
    assert_eq!(first_in_history(&hub).await, reply.body);
    hub.stop().await;
}

/// The id of the oldest update the hub holds, read by resuming from the
/// start of the history (publishes are answered once the log holds them,
/// before the tail delivers them, so the head may not have moved yet).
async fn first_in_history(hub: &TestHub) -> String {
    let all = format!("Bearer {}", token(None, Some(&["*"])));
    let mut sse = hub
        .subscribe("topic=*&lastEventID=earliest", &[("authorization", &all)])
        .await;
    tokio::time::timeout(Duration::from_secs(10), sse.event())
        .await
        .expect("the history replays")
        .id
}

#[tokio::test]
async fn publishing_with_a_cookie_needs_an_allowed_origin() {
    let hub = TestHub::start(Config {
        publish_origins: vec!["https://allowed.example".into()],
        ..config()
    })
    .await;
    let cookie = format!("mercureAuthorization={}", publisher_token());
    let publish = |origin: Option<&'static str>| {
        let cookie = cookie.clone();
        let hub = &hub;
        async move {
            let mut headers = vec![
                ("cookie", cookie.as_str()),
                ("content-type", "application/x-www-form-urlencoded"),
            ];
            if let Some(origin) = origin {
                headers.push(("origin", origin));
            }
            hub.connect()
                .await
                .post("/.well-known/mercure", &headers, "topic=t&data=by-cookie")
                .await
        }
    };
    let reply = publish(None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(reply.body.contains("Origin"), "{}", reply.body);
    let reply = publish(Some("https://evil.example")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(
        reply.body.contains("https://evil.example"),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("publish-origins"), "{}", reply.body);
    let reply = publish(Some("https://allowed.example")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(first_in_history(&hub).await, reply.body);
    // Without an Origin, the Referer's origin counts (draft-08).
    for (referer, status) in [
        ("https://allowed.example/page?x=1", StatusCode::OK),
        ("https://evil.example/page", StatusCode::FORBIDDEN),
    ] {
        let reply = hub
            .connect()
            .await
            .post(
                "/.well-known/mercure",
                &[
                    ("cookie", cookie.as_str()),
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("referer", referer),
                ],
                "topic=t&data=by-cookie",
            )
            .await;
        assert_eq!(reply.status, status, "{referer}: {}", reply.body);
    }
    // A Bearer token needs no Origin.
    let reply = hub
        .publish_form(Some(&publisher_token()), &[("topic", "t")])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    hub.stop().await;
}

#[tokio::test]
async fn subscribe_refusals_say_which_problem() {
    let closed = TestHub::start(Config {
        anonymous: Some(false),
        ..config()
    })
    .await;
    let open = TestHub::start(config()).await;
    let subscriber = format!("Bearer {}", token(None, Some(&["*"])));
    for path in PATHS {
        let mut refused = match path {
            common::Path::Lean => closed.try_subscribe("topic=t", &[]).await,
            common::Path::Routed => {
                let mut conn = closed.connect().await;
                conn.get("/healthz", &[]).await;
                conn.subscribe("/.well-known/mercure?topic=t", &[]).await
            }
        };
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{path:?}");
        let body = String::from_utf8(refused.chunk().await.unwrap().to_vec()).unwrap();
        assert!(body.contains("anonymous"), "{path:?}: {body}");
        assert!(body.contains("mercureAuthorization"), "{path:?}: {body}");
        let mut allowed = closed
            .subscribe_via(path, "topic=t", &[("authorization", &subscriber)])
            .await;
        closed
            .publish(&[("topic", "t"), ("data", "to the token holder")])
            .await;
        assert_eq!(allowed.data(1).await, ["to the token holder"]);

        // An invalid token is refused even where anonymous subscribers are
        // welcome: the client meant to authenticate.
        let other_key = format!(
            "Bearer {}",
            mint_with(
                "another-secret-that-is-long-enough-0123456789",
                MintClaims::default()
            )
        );
        let expired = format!("Bearer {}", expired_token(60));
        for (header, needle) in [
            ("Bearer not-a-jwt", "malformed"),
            ("Basic dXNlcjpwYXNz", "bearer"),
            (other_key.as_str(), "signature"),
            (expired.as_str(), "expired"),
        ] {
            let mut refused = match path {
                common::Path::Lean => {
                    open.try_subscribe("topic=t", &[("authorization", header)])
                        .await
                }
                common::Path::Routed => {
                    let mut conn = open.connect().await;
                    conn.get("/healthz", &[]).await;
                    conn.subscribe("/.well-known/mercure?topic=t", &[("authorization", header)])
                        .await
                }
            };
            // A token sent the wrong way is RFC 6750's invalid_request
            // (400, since draft-08); a token that fails its checks is
            // invalid_token (401). Both say so in WWW-Authenticate.
            let (status, code) = if needle == "bearer" {
                (StatusCode::BAD_REQUEST, "invalid_request")
            } else {
                (StatusCode::UNAUTHORIZED, "invalid_token")
            };
            assert_eq!(refused.status, status, "{needle} {path:?}");
            let challenge = refused.header("www-authenticate").unwrap_or_default();
            assert!(
                challenge.starts_with("Bearer ") && challenge.contains(code),
                "{needle} {path:?}: {challenge}"
            );
            let body = String::from_utf8(refused.chunk().await.unwrap().to_vec()).unwrap();
            assert!(
                body.to_lowercase().contains(needle),
                "{needle} {path:?}: {body}"
            );
        }
        let mut refused = open
            .try_subscribe("topic=t&authorization=garbage", &[])
            .await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        let body = String::from_utf8(refused.chunk().await.unwrap().to_vec()).unwrap();
        assert!(body.contains("malformed"), "{body}");
    }
    closed.stop().await;
    open.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_stream_ends_when_its_token_expires() {
    let hub = TestHub::start(config()).await;
    let expiring = format!(
        "Bearer {}",
        token_with(MintClaims {
            subscribe: Some(vec!["*".into()]),
            ttl: Some(Duration::from_secs(2)),
            ..MintClaims::default()
        })
    );
    // The paused clock runs from here: the hub's timer for the expiry is
    // set from the wall clock's distance to `exp`, then runs on this one.
    let started = tokio::time::Instant::now();
    let mut streams = Vec::new();
    for path in PATHS {
        streams.push(
            hub.subscribe_via(path, "topic=x", &[("authorization", &expiring)])
                .await,
        );
    }
    let mut lasting = hub.subscribe("topic=x", &[]).await;
    hub.publish(&[("topic", "x"), ("data", "while valid")])
        .await;
    for stream in &mut streams {
        assert_eq!(stream.data(1).await, ["while valid"]);
    }
    for stream in &mut streams {
        stream.end().await;
    }
    // `exp` is a whole second, between one and two from the start; the
    // streams end then, not before, not later.
    let elapsed = started.elapsed();
    assert!(
        elapsed > Duration::from_secs(1) && elapsed <= Duration::from_millis(2050),
        "{elapsed:?}"
    );
    // Streams without a token go on.
    hub.publish(&[("topic", "x"), ("data", "later")]).await;
    assert_eq!(lasting.data(2).await, ["while valid", "later"]);
    hub.stop().await;
}

#[tokio::test]
async fn cors_preflight_and_streams_for_configured_origins() {
    const ALLOWED: &str = "https://app.example";
    const DENIED: &str = "https://other.example";
    let hub = TestHub::start(Config {
        cors_origins: vec![ALLOWED.into()],
        ..config()
    })
    .await;

    let mut conn = hub.connect().await;
    let preflight = conn
        .request(
            "OPTIONS",
            "/.well-known/mercure",
            &[
                ("origin", ALLOWED),
                ("access-control-request-method", "GET"),
                (
                    "access-control-request-headers",
                    "authorization, last-event-id, cache-control",
                ),
            ],
            bytes::Bytes::new(),
        )
        .await;
    assert!(preflight.status.is_success(), "{preflight:?}");
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(ALLOWED)
    );
    assert_eq!(
        preflight.header("access-control-allow-credentials"),
        Some("true")
    );
    let allowed_headers = preflight
        .header("access-control-allow-headers")
        .unwrap()
        .to_lowercase();
    for name in ["authorization", "last-event-id", "cache-control"] {
        assert!(allowed_headers.contains(name), "{allowed_headers}");
    }
    let methods = preflight.header("access-control-allow-methods").unwrap();
    for method in ["GET", "POST"] {
        assert!(methods.contains(method), "{methods}");
    }

    let denied = conn
        .request(
            "OPTIONS",
            "/.well-known/mercure",
            &[("origin", DENIED), ("access-control-request-method", "GET")],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(denied.header("access-control-allow-origin"), None);

    for path in PATHS {
        let mut stream = hub
            .subscribe_via(path, "topic=c", &[("origin", ALLOWED)])
            .await;
        assert_eq!(
            stream.header("access-control-allow-origin"),
            Some(ALLOWED),
            "{path:?}"
        );
        assert_eq!(
            stream.header("access-control-allow-credentials"),
            Some("true"),
            "{path:?}"
        );
        let exposed = stream
            .header("access-control-expose-headers")
            .unwrap_or_default()
            .to_lowercase();
        assert!(exposed.contains("last-event-id"), "{path:?}: {exposed}");
        let other = hub
            .subscribe_via(path, "topic=c", &[("origin", DENIED)])
            .await;
        assert_eq!(
            other.header("access-control-allow-origin"),
            None,
            "{path:?}"
        );
        let none = hub.subscribe_via(path, "topic=c", &[]).await;
        assert_eq!(none.header("access-control-allow-origin"), None, "{path:?}");
        hub.publish(&[("topic", "c"), ("data", "cross-origin")])
            .await;
        assert_eq!(stream.data(1).await, ["cross-origin"]);
    }
    // Refusals on the lean path carry CORS headers too, so a page can read them.
    let refused = hub.try_subscribe("", &[("origin", ALLOWED)]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.header("access-control-allow-origin"), Some(ALLOWED));
    hub.stop().await;
}

#[tokio::test]
async fn the_subscription_api_lists_active_subscriptions_to_allowed_tokens() {
    let hub = TestHub::start(Config {
        subscriptions: true,
        ..config()
    })
    .await;
    let watcher = format!(
        "Bearer {}",
        token(
            None,
            Some(&["/.well-known/mercure/subscriptions{/topic}{/subscriber}"])
        )
    );
    let subscriber = format!(
        "Bearer {}",
        token_with(MintClaims {
            subscribe: Some(vec![BOOK.into()]),
            payload: Some(serde_json::json!({"user": "ann"})),
            ..MintClaims::default()
        })
    );
    let _stream = hub
        .subscribe(
            &format!("topic={}", encode(BOOK)),
            &[("authorization", &subscriber)],
        )
        .await;

    let mut conn = hub.connect().await;
    let reply = conn
        .get(
            "/.well-known/mercure/subscriptions",
            &[("authorization", &watcher)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("application/ld+json"),
        "Mercure answers JSON-LD"
    );
    let doc: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(doc["@context"], "https://mercure.rocks/");
    assert_eq!(doc["type"], "Subscriptions");
    assert_eq!(doc["id"], "/.well-known/mercure/subscriptions");
    let list = doc["subscriptions"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{doc}");
    let entry = &list[0];
    assert_eq!(entry["type"], "Subscription");
    assert_eq!(entry["topic"], BOOK);
    assert_eq!(entry["active"], true);
    assert_eq!(entry["payload"], serde_json::json!({"user": "ann"}));
    let subscriber_id = entry["subscriber"].as_str().unwrap().to_owned();
    assert!(subscriber_id.starts_with("urn:uuid:"), "{entry}");

    // The subscriptions to one topic.
    let by_topic = conn
        .get(
            &format!("/.well-known/mercure/subscriptions/{}", encode(BOOK)),
            &[("authorization", &watcher)],
        )
        .await;
    assert_eq!(by_topic.status, StatusCode::OK, "{}", by_topic.body);
    let by_topic: serde_json::Value = serde_json::from_str(&by_topic.body).unwrap();
    assert_eq!(
        by_topic["subscriptions"][0]["subscriber"],
        subscriber_id.as_str()
    );
    let elsewhere = conn
        .get(
            "/.well-known/mercure/subscriptions/elsewhere",
            &[("authorization", &watcher)],
        )
        .await;
    let elsewhere: serde_json::Value = serde_json::from_str(&elsewhere.body).unwrap();
    assert_eq!(elsewhere["subscriptions"], serde_json::json!([]));

    // One subscription by topic and subscriber.
    let one = conn
        .get(
            &format!(
                "/.well-known/mercure/subscriptions/{}/{}",
                encode(BOOK),
                encode(&subscriber_id)
            ),
            &[("authorization", &watcher)],
        )
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    let one: serde_json::Value = serde_json::from_str(&one.body).unwrap();
    assert_eq!(one["subscriber"], subscriber_id.as_str());

    // A token whose selectors do not cover the API, or none at all.
    let other = format!("Bearer {}", token(None, Some(&[BOOK])));
    let reply = conn
        .get(
            "/.well-known/mercure/subscriptions",
            &[("authorization", &other)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(reply.body.contains("mercure.subscribe"), "{}", reply.body);
    let reply = conn.get("/.well-known/mercure/subscriptions", &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    hub.stop().await;

    let off = TestHub::start(config()).await;
    let reply = off
        .connect()
        .await
        .get(
            "/.well-known/mercure/subscriptions",
            &[("authorization", &watcher)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
    assert!(reply.body.contains("subscriptions"), "{}", reply.body);
    off.stop().await;
}

#[tokio::test]
async fn presence_announces_subscriptions_to_allowed_subscribers() {
    let hub = TestHub::start(Config {
        subscriptions: true,
        ..config()
    })
    .await;
    let watcher = format!(
        "Bearer {}",
        token(
            None,
            Some(&["/.well-known/mercure/subscriptions{/topic}{/subscriber}"])
        )
    );
    let selector = encode("/.well-known/mercure/subscriptions{/topic}{/subscriber}");
    let mut watching = hub
        .subscribe(&format!("topic={selector}"), &[("authorization", &watcher)])
        .await;
    let mut anonymous = hub
        .subscribe(&format!("topic={selector}&topic=control"), &[])
        .await;
    let joined = hub.subscribe("topic=room", &[]).await;
    // The watcher hears of every subscription, its own and the anonymous
    // one first; then of "room" joining and leaving.
    let mut next_about_room = async || loop {
        let event = watching.event().await;
        assert_eq!(event.event_type, "Subscription");
        let doc: serde_json::Value = serde_json::from_str(&event.data).unwrap();
        if doc["topic"] == "room" {
            return doc;
        }
    };
    let doc = next_about_room().await;
    assert_eq!(doc["active"], true, "{doc}");
    assert!(
        doc["id"]
            .as_str()
            .unwrap()
            .starts_with("/.well-known/mercure/subscriptions/room/urn%3Auuid%3A"),
        "{doc}"
    );
    drop(joined);
    let doc = next_about_room().await;
    assert_eq!(doc["active"], false, "{doc}");
    // Announcements are private: an anonymous subscriber sees none of them,
    // only the control update published after them.
    hub.publish(&[("topic", "control"), ("data", "public")])
        .await;
    assert_eq!(anonymous.data(1).await, ["public"]);
    hub.stop().await;
}
