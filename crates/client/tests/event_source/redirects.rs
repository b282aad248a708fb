//! Redirects: followed, limited, and refused when they lead nowhere.

use std::time::Duration;

use tidings_client::{Error, EventSource, Method};

use crate::server::{Server, no_content, run_to_end, sse, status};

fn redirect(code: u16, location: &str) -> Vec<crate::server::Step> {
    let line = match code {
        301 => "301 Moved Permanently",
        302 => "302 Found",
        303 => "303 See Other",
        307 => "307 Temporary Redirect",
        308 => "308 Permanent Redirect",
        _ => unreachable!(),
    };
    status(line, &format!("Location: {location}\r\n"))
}

#[tokio::test]
async fn every_redirect_status_is_followed_and_reconnection_starts_over() {
    let mut server = Server::start(|n, request| match request.target.as_str() {
        "/a" => redirect(301, "/b"),
        "/b" => redirect(302, "/c"),
        "/c" => redirect(303, "/d"),
        "/d" => redirect(307, "/e"),
        "/e" => redirect(308, "/stream"),
        "/stream" if n < 6 => sse("data: here\n\n"),
        _ => no_content(),
    })
    .await;
    // Five hops allowed: the count must start again on each connection.
    let mut events = EventSource::builder(server.url("/a"))
        .max_redirects(5)
        .retry(Duration::from_millis(10))
        .build()
        .unwrap();
    let (items, fatal) = run_to_end(&mut events).await;
    assert!(fatal.is_none(), "{fatal:?}");
    assert_eq!(
        items,
        [
            "open /stream",
            "event message id=\"\" \"here\"",
            "reconnecting: the server ended the stream",
        ]
    );
    let mut targets = Vec::new();
    for _ in 0..12 {
        targets.push(server.request().await.target);
    }
    let hops = ["/a", "/b", "/c", "/d", "/e", "/stream"];
    assert_eq!(targets[..6], hops, "the first connection");
    assert_eq!(
        targets[6..],
        hops,
        "the reconnection starts from the original URL"
    );
}

#[tokio::test]
async fn a_post_body_survives_307_and_308_but_303_turns_it_into_a_get() {
    let mut server = Server::start(|_, request| match request.target.as_str() {
        "/subscribe" => redirect(307, "/again"),
        "/again" => redirect(308, "/see-other"),
        "/see-other" => redirect(303, "/stream"),
        _ => no_content(),
    })
    .await;
    let mut events = EventSource::builder(server.url("/subscribe"))
        .method(Method::POST)
        .header("content-type", "application/json")
        .body(r#"{"topics":["a"]}"#)
        .build()
        .unwrap();
    let (_, fatal) = run_to_end(&mut events).await;
    assert!(fatal.is_none());
    for target in ["/subscribe", "/again", "/see-other"] {
        let request = server.request().await;
        assert_eq!(
            (request.method.as_str(), request.target.as_str()),
            ("POST", target)
        );
        assert_eq!(request.body, br#"{"topics":["a"]}"#);
    }
    let last = server.request().await;
    assert_eq!(
        (last.method.as_str(), last.target.as_str()),
        ("GET", "/stream")
    );
    assert!(last.body.is_empty());
}

/// A chain `/r0 -> /r1 -> /r2 -> /r3 -> /stream`: four redirects.
async fn chain_of_four() -> Server {
    Server::start(|_, request| match request.target.as_str() {
        "/r0" => redirect(302, "/r1"),
        "/r1" => redirect(302, "/r2"),
        "/r2" => redirect(302, "/r3"),
        "/r3" => redirect(302, "/stream"),
        _ => no_content(),
    })
    .await
}

#[tokio::test]
async fn too_many_redirects_fail_without_retry() {
    let server = chain_of_four().await;
    let mut events = EventSource::builder(server.url("/r0"))
        .max_redirects(3)
        .build()
        .unwrap();
    let (items, fatal) = run_to_end(&mut events).await;
    assert!(items.is_empty());
    assert!(
        matches!(fatal, Some(Error::TooManyRedirects { limit: 3 })),
        "{fatal:?}"
    );
    assert_eq!(
        server.connections(),
        4,
        "r0..r3 requested once each, then nothing"
    );
}

#[tokio::test]
async fn redirects_up_to_the_limit_are_followed() {
    let mut server = chain_of_four().await;
    let mut events = EventSource::builder(server.url("/r0"))
        .max_redirects(4)
        .build()
        .unwrap();
    let (_, fatal) = run_to_end(&mut events).await;
    assert!(fatal.is_none(), "{fatal:?}");
    for _ in 0..4 {
        server.request().await;
    }
    assert_eq!(server.request().await.target, "/stream");
}

#[tokio::test]
async fn zero_redirects_allowed_means_none_followed() {
    let server = chain_of_four().await;
    let mut events = EventSource::builder(server.url("/r0"))
        .max_redirects(0)
        .build()
        .unwrap();
    let (_, fatal) = run_to_end(&mut events).await;
    assert!(matches!(fatal, Some(Error::TooManyRedirects { limit: 0 })));
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_redirect_without_location_fails_without_retry() {
    for (line, headers) in [
        ("302 Found", ""),
        ("301 Moved Permanently", ""),
        ("307 Temporary Redirect", "Location: http://[::1\r\n"),
    ] {
        let server = Server::start(move |_, _| status(line, headers)).await;
        let mut events = EventSource::builder(server.url("/moved"))
            .retry(Duration::from_millis(10))
            .build()
            .unwrap();
        let (items, fatal) = run_to_end(&mut events).await;
        assert!(items.is_empty());
        match fatal {
            Some(error @ Error::InvalidRedirect { .. }) => {
                let text = error.to_string();
                assert!(
                    text.contains(&line[..3]) && text.contains("/moved"),
                    "{text}"
                );
            }
            other => panic!("{line} {headers:?}: expected InvalidRedirect, got {other:?}"),
        }
        assert_eq!(
            server.connections(),
            1,
            "{line} {headers:?} must not be retried"
        );
    }
}

#[tokio::test]
async fn a_redirect_to_another_scheme_is_refused() {
    let server = Server::start(|_, _| redirect(302, "ftp://example.com/feed")).await;
    let mut events = EventSource::new(server.url("/")).unwrap();
    let (_, fatal) = run_to_end(&mut events).await;
    assert!(
        matches!(fatal, Some(Error::InvalidRedirect { .. })),
        "{fatal:?}"
    );
    assert_eq!(server.connections(), 1);
}
