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
