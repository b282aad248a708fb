//! Defects found by trying to break the hub, each pinned by a test named
//! after what broke.

mod common;

use std::time::Duration;

use common::{TestHub, config, publisher_token, raw};
use http::StatusCode;
use tidings_server::Config;

#[tokio::test]
async fn regression_earliest_is_refused_as_an_update_id() {
    let hub = TestHub::start(config()).await;
    let reply = hub
        .publish_form(
            Some(&publisher_token()),
            &[("topic", "t"), ("data", "x"), ("id", "earliest")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(reply.body.contains("reserved"), "{}", reply.body);
    hub.stop().await;
}

#[tokio::test]
async fn regression_a_topic_in_the_hub_namespace_is_refused_even_with_publish_star() {
    let hub = TestHub::start(config()).await;
    for topic in [
        "/.well-known/mercure/subscriptions/t/urn:uuid:forged",
        "/.well-known/mercure",
        "https://example.com/.well-known/mercure/subscriptions/t/x",
        "http://hub.example:3000/.well-known/mercure?topic=x",
        // Draft-08: after resolution, dot segments and unreserved escapes.
        "/.well-known/%6Dercure/x",
        "/a/../.well-known/mercure/x",
        "https://example.com/a/%2e%2e/.well-known/mercure",
        "mercure/subscriptions/x",
    ] {
        let reply = hub
            .publish_form(
                Some(&publisher_token()),
                &[("topic", "ok"), ("topic", topic)],
            )
            .await;
        // 400 since draft-08 (403 before).
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{topic}: {}",
            reply.body
        );
        assert!(reply.body.contains("reserved"), "{}", reply.body);
    }
    // Near misses are ordinary topics.
    for topic in [
        "/.well-known/mercurey",
        "https://example.com/well-known/mercure",
        "/.well-known/%2Fmercure",
        "urn:uuid:x",
    ] {
        hub.publish(&[("topic", topic), ("data", "x")]).await;
    }
    hub.stop().await;
}

#[tokio::test]
async fn regression_head_on_the_hyper_path_of_the_mercure_endpoint_subscribes_no_one() {
    let hub = TestHub::start(Config {
        subscriptions: true,
        ..config()
    })
    .await;
    let token = common::token(None, Some(&["*"]));
    let auth = format!("Bearer {token}");
    let mut watcher = hub.subscribe("topic=*", &[("authorization", &auth)]).await;
    assert!(watcher.event().await.data.contains("\"active\":true"));
    let mut conn = hub.connect().await;
    assert_eq!(conn.get("/healthz", &[]).await.status, StatusCode::OK);
    let probe = conn
        .request(
            "HEAD",
            "/.well-known/mercure?topic=c",
            &[("authorization", &auth)],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(probe.status, StatusCode::OK);
    assert_eq!(probe.header("content-type"), Some("text/event-stream"));
    assert!(probe.body.is_empty());
    assert_eq!(hub.hub.local_subscriptions().len(), 1, "only the watcher");
    let control = hub.publish(&[("topic", "c"), ("data", "control")]).await;
    assert_eq!(
        watcher.event().await.id,
        control,
        "no join or leave came first"
    );
    hub.stop().await;
}

#[tokio::test]
async fn regression_cors_is_the_same_on_the_lean_and_the_routed_path() {
    let hub = TestHub::start(Config {
        cors_origins: vec!["https://app.example".into()],
        ..config()
    })
    .await;
    let origin = [("origin", "https://app.example")];
    let lean = hub.subscribe("topic=t", &origin).await;
    let routed = hub.subscribe_routed("topic=t", &origin).await;
    for (path, headers) in [("lean", &lean.headers), ("routed", &routed.headers)] {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(
            get("access-control-allow-origin"),
            Some("https://app.example"),
            "{path}"
        );
        assert_eq!(
            get("access-control-allow-credentials"),
            Some("true"),
            "{path}"
        );
        assert_eq!(
            get("access-control-expose-headers"),
            Some(
                "last-event-id, mercure-last-event-id, link, www-authenticate, tidings-history-gap"
            ),
            "{path}"
        );
    }
    // A preflight from the origin is answered; one from elsewhere is not.
    let mut conn = hub.connect().await;
    let preflight = [
        ("origin", "https://app.example"),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "authorization"),
    ];
    let allowed = conn
        .request(
            "OPTIONS",
            "/.well-known/mercure",
            &preflight,
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(allowed.status, StatusCode::NO_CONTENT);
    assert!(
        allowed
            .header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert!(
        allowed
            .header("access-control-allow-headers")
            .unwrap()
            .contains("authorization")
    );
    let stranger = [
        ("origin", "https://evil.example"),
        ("access-control-request-method", "POST"),
    ];
    let refused = conn
        .request(
            "OPTIONS",
            "/.well-known/mercure",
            &stranger,
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(refused.header("access-control-allow-origin"), None);
    hub.stop().await;
}

#[tokio::test(start_paused = true)]
async fn regression_shutdown_does_not_wait_for_a_request_head_still_coming() {
    // On the paused clock: if shutdown waited for the head, the clock would
    // run on to the header-read timeout.
    let hub = TestHub::start(Config {
        header_read_timeout: Duration::from_secs(120),
        ..config()
    })
    .await;
    let _half = raw(
        hub.addr,
        b"GET /.well-known/mercure?topic=t HTTP/1.1\r\nHost: x\r\n",
    )
    .await;
    let _nothing = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    // Let the server take both connections in.
    assert_eq!(hub.get("/healthz").await.status, StatusCode::OK);
    let started = tokio::time::Instant::now();
    hub.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "shutdown waited {:?} for requests that had not started",
        started.elapsed()
    );
}

#[tokio::test]
async fn regression_metrics_can_be_kept_off_the_public_listener() {
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    let hub = TestHub::start_with(
        Config {
            metrics_listen: Some(metrics_addr),
            ..config()
        },
        Some(metrics),
    )
    .await;
    hub.publish(&[("topic", "t"), ("data", "x")]).await;
    let public = hub.get("/metrics").await;
    assert_eq!(public.status, StatusCode::NOT_FOUND);
    assert!(public.body.contains("metrics-listen"), "{}", public.body);
    let mut private = common::Conn::open(metrics_addr).await;
    let scraped = private.get("/metrics", &[]).await;
    assert_eq!(scraped.status, StatusCode::OK);
    assert!(
        scraped.body.contains("tidings_updates_published_total"),
        "{}",
        scraped.body
    );
    assert_eq!(
        private.get("/healthz", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    hub.stop().await;
}
