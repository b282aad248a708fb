//! The demo page and its token endpoint.

mod common;

use axum::http::StatusCode;
use common::TestHub;
use tidings_server::{Config, Storage};

#[tokio::test]
async fn the_page_is_served_from_the_binary() {
    let hub = TestHub::start(common::config()).await;
    let reply = hub.get("/").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(reply.body.contains("<title>") && reply.body.contains("EventSource"));
    assert!(
        !reply.body.contains("://cdn"),
        "the page must not load anything from elsewhere"
    );
    hub.stop().await;
}

#[tokio::test]
async fn demo_tokens_only_in_development_mode() {
    // A configured key: no token, but a 200 the page can read without a
    // console error, and a reason.
    let hub = TestHub::start(common::config()).await;
    let reply = hub.get("/demo/token").await;
    assert_eq!(reply.status, StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["token"], serde_json::Value::Null);
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("development mode")
    );
    hub.stop().await;

    // Development mode: a short-lived token that publishes.
    let dev = Config {
        jwt_key: None,
        storage: Storage::Memory,
        ..Config::default()
    };
    let hub = TestHub::start(dev).await;
    let reply = hub.get("/demo/token").await;
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["expiresIn"], 900);
    let token = body["token"].as_str().unwrap();
    let published = hub
        .publish_form(Some(token), &[("topic", "demo"), ("data", "x")])
        .await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.body);
    hub.stop().await;
}
