//! Publishing and subscribing over real HTTP: selectors, alternates, body
//! formats, private updates, resuming, the response headers, and both ways a
//! subscription is served (the lean path on a fresh connection, the axum
//! route on a kept-alive one).

mod common;

use common::{PATHS, Path, TestHub, WAIT, config, encode, publisher_token, read_head, token};
use http::StatusCode;
use tidings_codec::{Decoder, Item};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn each_selector_kind_receives_what_it_matches() {
    let hub = TestHub::start(config()).await;
    for path in PATHS {
        let mut exact = hub
            .subscribe_via(
                path,
                &format!("topic={}", encode("https://example.com/books/1")),
                &[],
            )
            .await;
        let mut all = hub.subscribe_via(path, "topic=*", &[]).await;
        let mut template = hub
            .subscribe_via(
                path,
                &format!("topic={}", encode("https://example.com/books/{id}")),
                &[],
            )
            .await;
        for (topic, data) in [
            ("https://example.com/books/1", "book 1"),
            ("https://example.com/books/2", "book 2"),
            ("https://example.com/books/1/reviews", "reviews of 1"),
            ("https://example.com/authors/1", "author 1"),
            ("https://example.com/books/1", "book 1 again"),
        ] {
            hub.publish(&[("topic", topic), ("data", data)]).await;
        }
        assert_eq!(exact.data(2).await, ["book 1", "book 1 again"], "{path:?}");
        assert_eq!(
            template.data(3).await,
            ["book 1", "book 2", "book 1 again"],
            "{path:?}"
        );
        assert_eq!(
            all.data(5).await,
            [
                "book 1",
                "book 2",
                "reviews of 1",
                "author 1",
                "book 1 again"
            ],
            "{path:?}"
        );
    }
    hub.stop().await;
}

#[tokio::test]
async fn an_update_with_alternate_topics_reaches_each_subscriber_once() {
    let hub = TestHub::start(config()).await;
    let mut of_b = hub.subscribe("topic=B", &[]).await;
    let mut of_both = hub.subscribe("topic=A&topic=B", &[]).await;
    let mut of_c = hub.subscribe("topic=C", &[]).await;
    hub.publish(&[("topic", "A"), ("topic", "B"), ("data", "on A and B")])
        .await;
    hub.publish(&[("topic", "B"), ("topic", "C"), ("data", "after")])
        .await;
    // The second event being "after" shows the first was not sent twice.
    assert_eq!(of_b.data(2).await, ["on A and B", "after"]);
    assert_eq!(of_both.data(2).await, ["on A and B", "after"]);
    assert_eq!(of_c.data(1).await, ["after"]);
    hub.stop().await;
}

#[tokio::test]
async fn form_and_json_bodies_publish_and_the_answer_is_the_id() {
    let hub = TestHub::start(config()).await;
    let mut stream = hub.subscribe("topic=*", &[]).await;
    let bearer = format!("Bearer {}", publisher_token());

    // Form: the id is generated.
    let reply = hub
        .publish_form(
            Some(&publisher_token()),
            &[("topic", "t"), ("data", "line 1\nline 2")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/plain"),
        "{:?}",
        reply.headers
    );
    let generated = reply.body.clone();
    let uuid = generated
        .strip_prefix("urn:uuid:")
        .unwrap_or_else(|| panic!("generated id {generated:?} is not a urn:uuid:"));
    assert_eq!(uuid.len(), 36, "{generated}");
    let event = stream.event().await;
    assert_eq!(
        (
            event.id.as_str(),
            event.event_type.as_str(),
            event.data.as_str()
        ),
        (generated.as_str(), "message", "line 1\nline 2")
    );

    // Form with id, type and retry.
    let reply = hub
        .publish_form(
            Some(&publisher_token()),
            &[
                ("topic", "t"),
                ("data", "typed"),
                ("id", "form-1"),
                ("type", "greeting"),
                ("retry", "1500"),
            ],
        )
        .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "form-1")
    );
    let mut retry = None;
    let event = loop {
        match stream.item().await.expect("an event") {
            Item::Retry(delay) => retry = Some(delay),
            Item::Event(event) => break event,
            _ => {}
        }
    };
    assert_eq!(
        (
            event.id.as_str(),
            event.event_type.as_str(),
            event.data.as_str()
        ),
        ("form-1", "greeting", "typed")
    );
    assert_eq!(retry, Some(std::time::Duration::from_millis(1500)));

    // JSON: an object `data` is sent as its JSON text.
    let mut conn = hub.connect().await;
    let reply = conn
        .post(
            "/.well-known/mercure",
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer),
            ],
            r#"{"topic": ["t", "u"], "data": {"n": 1, "s": "x"}, "id": "json-1", "type": "j"}"#,
        )
        .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "json-1")
    );
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let event = stream.event().await;
    assert_eq!(
        (
            event.id.as_str(),
            event.event_type.as_str(),
            event.data.as_str()
        ),
        ("json-1", "j", r#"{"n":1,"s":"x"}"#)
    );

    // JSON with string data and no id: generated.
    let reply = conn
        .post(
            "/.well-known/mercure",
            &[
                ("content-type", "application/json; charset=utf-8"),
                ("authorization", &bearer),
            ],
            r#"{"topic": "t", "data": "plain"}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body.starts_with("urn:uuid:"), "{}", reply.body);
    let event = stream.event().await;
    assert_eq!((event.id, event.data), (reply.body, "plain".to_owned()));

    // Malformed bodies and ids are 400s that say what is wrong.
    for (content_type, body, needle) in [
        ("application/json", "{", "JSON"),
        ("application/json", r#"{"topic": 1}"#, "topic"),
        (
            "application/x-www-form-urlencoded",
            "data=no-topic",
            "topic",
        ),
        ("application/x-www-form-urlencoded", "topic=t&id=%23x", "#"),
        (
            "application/x-www-form-urlencoded",
            "topic=t&id=a%0Ab",
            "id",
        ),
        (
            "application/x-www-form-urlencoded",
            "topic=t&retry=soon",
            "retry",
        ),
    ] {
        let reply = conn
            .post(
                "/.well-known/mercure",
                &[("content-type", content_type), ("authorization", &bearer)],
                body,
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.body
        );
        assert!(reply.body.contains(needle), "{body}: {}", reply.body);
    }
    // A duplicate id is refused rather than published twice.
    let reply = hub
        .publish_form(
            Some(&publisher_token()),
            &[("topic", "t"), ("id", "form-1")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    let reply = conn
        .post(
            "/.well-known/mercure",
            &[("content-type", "text/csv"), ("authorization", &bearer)],
            "topic,t",
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Nothing of the refused requests reached the stream.
    hub.publish(&[("topic", "t"), ("data", "last")]).await;
    assert_eq!(stream.event().await.data, "last");
    hub.stop().await;
}

#[tokio::test]
async fn private_updates_reach_only_subscribers_whose_token_matches() {
    let hub = TestHub::start(config()).await;
    let allowed = token(None, Some(&["https://example.com/private/{id}"]));
    let other = token(None, Some(&["https://example.com/other"]));
    let cookie = format!("mercureAuthorization={allowed}");
    let bearer = format!("Bearer {allowed}");
    let other_bearer = format!("Bearer {other}");
    let topic = format!("topic={}", encode("https://example.com/private/{id}"));
    for path in PATHS {
        let mut by_header = hub
            .subscribe_via(path, &topic, &[("authorization", &bearer)])
            .await;
        let mut by_query = hub
            .subscribe_via(path, &format!("{topic}&authorization={allowed}"), &[])
            .await;
        let mut by_cookie = hub
            .subscribe_via(
                path,
                &topic,
                &[("cookie", &format!("theme=dark; {cookie}"))],
            )
            .await;
        let mut anonymous = hub.subscribe_via(path, &topic, &[]).await;
        let mut not_matching = hub
            .subscribe_via(path, &topic, &[("authorization", &other_bearer)])
            .await;
        hub.publish(&[
            ("topic", "https://example.com/private/1"),
            ("data", "secret"),
            ("private", "on"),
        ])
        .await;
        hub.publish(&[
            ("topic", "https://example.com/private/1"),
            ("data", "public"),
        ])
        .await;
        for (name, stream) in [
            ("header", &mut by_header),
            ("query", &mut by_query),
            ("cookie", &mut by_cookie),
        ] {
            assert_eq!(
                stream.data(2).await,
                ["secret", "public"],
                "{name} {path:?}"
            );
        }
        // The public update comes first: the private one was not sent.
        assert_eq!(anonymous.data(1).await, ["public"], "{path:?}");
        assert_eq!(not_matching.data(1).await, ["public"], "{path:?}");
    }
    // A JSON body marks an update private with `"private": true`.
    let reply = hub
        .connect()
        .await
        .post(
            "/.well-known/mercure",
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {}", publisher_token())),
            ],
            r#"{"topic": "https://example.com/private/2", "data": "json secret", "private": true}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    hub.publish(&[("topic", "https://example.com/private/2"), ("data", "last")])
        .await;
    // History replays private updates only to those allowed to see them.
    for path in PATHS {
        let replay = format!("{topic}&lastEventID=earliest");
        let mut allowed = hub
            .subscribe_via(path, &replay, &[("authorization", &bearer)])
            .await;
        assert_eq!(
            allowed.data(6).await,
            [
                "secret",
                "public",
                "secret",
                "public",
                "json secret",
                "last"
            ],
            "{path:?}"
        );
        let mut anonymous = hub.subscribe_via(path, &replay, &[]).await;
        assert_eq!(
            anonymous.data(3).await,
            ["public", "public", "last"],
            "{path:?}"
        );
        let mut not_matching = hub
            .subscribe_via(path, &replay, &[("authorization", &other_bearer)])
            .await;
        assert_eq!(
            not_matching.data(3).await,
            ["public", "public", "last"],
            "{path:?}"
        );
    }
    hub.stop().await;
}

#[tokio::test(start_paused = true)]
async fn idle_streams_get_keep_alive_comments() {
    // Under the wait of the helpers, which is on the same (paused) clock.
    let period = std::time::Duration::from_secs(3);
    let hub = TestHub::start(tidings_server::Config {
        keep_alive: period,
        ..config()
    })
    .await;
    for path in PATHS {
        let mut stream = hub.subscribe_via(path, "topic=quiet", &[]).await;
        // The opening comment, then a keep-alive within one period, and
        // one at every period after it.
        assert!(matches!(stream.item().await, Some(Item::Comment(_))));
        let mut last = None;
        for _ in 0..3 {
            match stream.item().await {
                Some(Item::Comment(_)) => {}
                other => panic!("expected a comment on {path:?}, got {other:?}"),
            }
            let now = tokio::time::Instant::now();
            if let Some(last) = last {
                assert_eq!(now - last, period, "{path:?}");
            }
            last = Some(now);
        }
        hub.publish(&[("topic", "quiet"), ("data", "awake")]).await;
        assert_eq!(stream.data(1).await, ["awake"], "{path:?}");
    }
    hub.stop().await;
}

#[tokio::test]
async fn resume_with_header_query_earliest_and_unknown_ids() {
    let hub = TestHub::start(config()).await;
    for path in PATHS {
        let fresh = hub.subscribe_via(path, "topic=r", &[]).await;
        assert_eq!(fresh.header("last-event-id"), Some("earliest"), "{path:?}");
    }
    let mut ids = Vec::new();
    for data in ["1", "2", "3"] {
        ids.push(hub.publish(&[("topic", "r"), ("data", data)]).await);
    }
    hub.publish(&[("topic", "elsewhere"), ("data", "not r")])
        .await;
    let last = hub.publish(&[("topic", "r"), ("data", "4")]).await;
    let mut open = Vec::new();
    for path in PATHS {
        let fresh = hub.subscribe_via(path, "topic=r", &[]).await;
        assert_eq!(
            fresh.header("last-event-id"),
            Some(last.as_str()),
            "{path:?}"
        );

        let mut by_header = hub
            .subscribe_via(path, "topic=r", &[("last-event-id", &ids[0])])
            .await;
        assert_eq!(by_header.header("last-event-id"), Some(ids[0].as_str()));
        assert_eq!(by_header.data(3).await, ["2", "3", "4"], "{path:?}");

        let mut by_query = hub
            .subscribe_via(
                path,
                &format!("topic=r&lastEventID={}", encode(&ids[0])),
                &[],
            )
            .await;
        assert_eq!(by_query.header("last-event-id"), Some(ids[0].as_str()));
        let events = by_query.events(3).await;
        let got: Vec<_> = events
            .iter()
            .map(|e| (e.id.as_str(), e.data.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (ids[1].as_str(), "2"),
                (ids[2].as_str(), "3"),
                (last.as_str(), "4")
            ],
            "{path:?}"
        );

        // A browser reconnects to the same URL with a newer id in the header.
        let mut both = hub
            .subscribe_via(
                path,
                &format!("topic=r&lastEventID={}", encode(&ids[0])),
                &[("last-event-id", &ids[1])],
            )
            .await;
        assert_eq!(both.header("last-event-id"), Some(ids[1].as_str()));
        assert_eq!(both.data(2).await, ["3", "4"], "{path:?}");

        let mut earliest = hub
            .subscribe_via(path, "topic=r&lastEventID=earliest", &[])
            .await;
        assert_eq!(earliest.header("last-event-id"), Some("earliest"));
        assert_eq!(earliest.header("tidings-history-gap"), None);
        assert_eq!(earliest.data(4).await, ["1", "2", "3", "4"], "{path:?}");

        let mut unknown = hub
            .subscribe_via(path, "topic=r", &[("last-event-id", "never-published")])
            .await;
        assert_eq!(
            unknown.header("tidings-history-gap"),
            Some("true"),
            "{path:?}"
        );
        assert_eq!(unknown.data(4).await, ["1", "2", "3", "4"], "{path:?}");
        assert_eq!(by_header.header("tidings-history-gap"), None);

        open.extend([fresh, by_header, by_query, both, earliest, unknown]);
    }
    // Each stream replayed exactly what it should: the next event is new.
    hub.publish(&[("topic", "r"), ("data", "5")]).await;
    for stream in &mut open {
        assert_eq!(stream.data(1).await, ["5"]);
    }
    hub.stop().await;
}

#[tokio::test]
async fn stream_headers_and_a_first_comment_come_before_any_update() {
    let hub = TestHub::start(config()).await;
    for path in PATHS {
        for endpoint in ["/.well-known/mercure", "/events"] {
            let mut conn = hub.connect().await;
            if path == Path::Routed {
                assert_eq!(conn.get("/healthz", &[]).await.status, StatusCode::OK);
            }
            let mut stream = conn
                .subscribe(
                    &format!("{endpoint}?topic=h"),
                    &[("accept", "text/event-stream")],
                )
                .await;
            let what = format!("{endpoint} {path:?}");
            assert_eq!(stream.status, StatusCode::OK, "{what}");
            assert_eq!(
                stream.header("content-type"),
                Some("text/event-stream"),
                "{what}"
            );
            assert_eq!(
                stream.header("cache-control"),
                Some("private, no-cache, no-store, must-revalidate, max-age=0"),
                "{what}"
            );
            assert_eq!(stream.header("x-accel-buffering"), Some("no"), "{what}");
            assert_eq!(stream.header("content-encoding"), None, "{what}");
            // Nothing is published yet: the first bytes are a comment.
            let first = stream.chunk().await.expect("a first chunk");
            assert!(first.starts_with(b":"), "{what}: {first:?}");
            hub.publish(&[("topic", "h"), ("data", endpoint)]).await;
            assert_eq!(stream.data(1).await, [endpoint], "{what}");
        }
    }
    hub.stop().await;
}

#[tokio::test]
async fn the_lean_path_frames_chunks_answers_head_and_speaks_http_1_0() {
    let hub = TestHub::start(config()).await;

    // HTTP/1.1: chunked, the first chunk is the comment.
    let mut chunked = common::raw(
        hub.addr,
        b"GET /.well-known/mercure?topic=c HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    let head = read_head(&mut chunked).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    let mut body = head.rest;
    while body.len() < 8 {
        use tokio::io::AsyncReadExt;
        tokio::time::timeout(WAIT, chunked.read_buf(&mut body))
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(&body[..8], b"3\r\n:\n\n\r\n");

    // HTTP/1.0: no chunking, the connection closes at the end.
    let mut plain = common::raw(
        hub.addr,
        b"GET /.well-known/mercure?topic=c HTTP/1.0\r\nHost: x\r\n\r\n",
    )
    .await;
    let head = read_head(&mut plain).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), None);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    let mut rest = head.rest;

    // HEAD: the headers, no body.
    let mut head_only = common::raw(
        hub.addr,
        b"HEAD /.well-known/mercure?topic=c HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    let head = read_head(&mut head_only).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("last-event-id"), Some("earliest"));
    assert!(head.rest.is_empty());
    assert!(common::read_to_end(&mut head_only).await.is_empty());
    // HEAD on a kept-alive connection, through the axum route.
    let mut conn = hub.connect().await;
    assert_eq!(conn.get("/healthz", &[]).await.status, StatusCode::OK);
    let reply = conn
        .request("HEAD", "/events?topic=c", &[], bytes::Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert!(reply.body.is_empty());
    assert_eq!(conn.get("/healthz", &[]).await.body, "ok\n");

    hub.publish(&[("topic", "c"), ("data", "over 1.0"), ("id", "c1")])
        .await;
    hub.stop().await;
    // The server ended the HTTP/1.0 stream by closing it.
    rest.extend(common::read_to_end(&mut plain).await);
    let mut decoder = Decoder::new();
    let items: Vec<Item> = decoder.feed(&rest).collect();
    assert_eq!(
        items.first(),
        Some(&Item::Comment(String::new())),
        "{items:?}"
    );
    let events: Vec<_> = items
        .iter()
        .filter_map(|item| match item {
            Item::Event(e) => Some((e.id.as_str(), e.data.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(events, [("c1", "over 1.0")]);
    drop(chunked);
}

#[tokio::test]
async fn a_subscription_on_a_kept_alive_connection_receives_updates() {
    let hub = TestHub::start(config()).await;
    // First request on a raw socket, HTTP/1.1 keep-alive.
    let mut socket = common::raw(
        hub.addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
    )
    .await;
    let head = read_head(&mut socket).await;
    assert_eq!(head.status, 200);
    let len: usize = head.header("content-length").unwrap().parse().unwrap();
    let mut body = head.rest;
    while body.len() < len {
        use tokio::io::AsyncReadExt;
        tokio::time::timeout(WAIT, socket.read_buf(&mut body))
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(body, b"ok\n");
    // Then the subscription, on the same socket.
    let mut stream = common::Conn::over(hub.addr, socket)
        .await
        .subscribe("/.well-known/mercure?topic=kept", &[])
        .await;
    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    for data in ["one", "two"] {
        hub.publish(&[("topic", "kept"), ("data", data)]).await;
    }
    assert_eq!(stream.data(2).await, ["one", "two"]);

    // Pipelined: both requests in one write, so the lean path hands the
    // connection to hyper.
    let mut pipelined = common::raw(
        hub.addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /events?topic=piped HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    let head = read_head(&mut pipelined).await;
    assert_eq!(head.status, 200);
    let mut seen = head.rest;
    hub.publish(&[("topic", "piped"), ("data", "through hyper")])
        .await;
    tokio::time::timeout(WAIT, async {
        use tokio::io::AsyncReadExt;
        while !String::from_utf8_lossy(&seen).contains("data: through hyper") {
            let n = pipelined.read_buf(&mut seen).await.unwrap();
            assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&seen));
        }
    })
    .await
    .expect("the pipelined subscription receives the update");
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("text/event-stream"), "{text}");
    hub.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let hub = TestHub::start(config()).await;
    let health = hub.get("/healthz").await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "ok\n")
    );
    let ready = hub.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    hub.publish(&[("topic", "m"), ("data", "counted")]).await;
    let metrics = hub.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.body.contains("tidings_updates_published_total"),
        "{}",
        metrics.body
    );
    let missing = hub.get("/no-such-page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.body.contains("/.well-known/mercure"),
        "{}",
        missing.body
    );
    let mut conn = hub.connect().await;
    let reply = conn
        .request("DELETE", "/.well-known/mercure", &[], bytes::Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    hub.stop().await;
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let hub = TestHub::start(config()).await;
    let mut lean = hub.subscribe("topic=s", &[]).await;
    let mut routed = hub.subscribe_routed("topic=s", &[]).await;
    hub.publish(&[("topic", "s"), ("data", "before")]).await;
    assert_eq!(lean.data(1).await, ["before"]);
    assert_eq!(routed.data(1).await, ["before"]);
    let mut raw = common::raw(
        hub.addr,
        b"GET /.well-known/mercure?topic=s HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(read_head(&mut raw).await.status, 200);
    hub.stop().await;
    lean.end().await;
    routed.end().await;
    // The lean path closes its chunked body properly before the socket.
    let rest = common::read_to_end(&mut raw).await;
    assert!(
        rest.ends_with(b"0\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&rest)
    );
    let _ = raw.shutdown().await;
}

#[tokio::test]
async fn http2_with_prior_knowledge_publishes_and_subscribes_on_one_connection() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let hub = TestHub::start(config()).await;
    let stream = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let url = |path: &str| format!("http://{}{path}", hub.addr);
    let subscribe = http::Request::get(url("/.well-known/mercure?topic=h2"))
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = tokio::time::timeout(WAIT, sender.send_request(subscribe))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();

    // Publish on the same connection, a second stream.
    let publish = http::Request::post(url("/.well-known/mercure"))
        .header("authorization", format!("Bearer {}", publisher_token()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(bytes::Bytes::from("topic=h2&data=multiplexed")))
        .unwrap();
    let reply = tokio::time::timeout(WAIT, sender.send_request(publish))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);

    let mut decoder = Decoder::new();
    let event = tokio::time::timeout(WAIT, async {
        loop {
            let frame = body.frame().await.expect("the stream goes on").unwrap();
            if let Ok(data) = frame.into_data() {
                let _ = decoder.feed(&data);
            }
            while let Some(item) = decoder.next_item() {
                if let Item::Event(event) = item {
                    return event;
                }
            }
        }
    })
    .await
    .expect("the update arrives over HTTP/2");
    assert_eq!(event.data, "multiplexed");
    drop(body);
    hub.stop().await;
}

#[tokio::test]
async fn a_wildcard_cors_origin_lets_any_origin_read_without_credentials() {
    let hub = TestHub::start(tidings_server::Config {
        cors_origins: vec!["*".into()],
        ..config()
    })
    .await;
    for path in PATHS {
        let stream = hub
            .subscribe_via(path, "topic=w", &[("origin", "https://any.example")])
            .await;
        // Mercure draft-08: a credentialed answer needs an origin listed by
        // name; `*` is never an origin reflected with credentials.
        assert_eq!(
            stream.header("access-control-allow-origin"),
            Some("*"),
            "{path:?}"
        );
        assert_eq!(
            stream.header("access-control-allow-credentials"),
            None,
            "{path:?}"
        );
    }
    hub.stop().await;
}

#[tokio::test]
async fn regression_head_probes_neither_subscribe_nor_announce() {
    let hub = TestHub::start(tidings_server::Config {
        subscriptions: true,
        anonymous: Some(false),
        ..common::config()
    })
    .await;
    let token = common::token(None, Some(&["*"]));
    let auth = format!("Bearer {token}");
    // A presence watcher: it would see a join and a leave for any real
    // subscription.
    let mut watcher = hub.subscribe("topic=*", &[("authorization", &auth)]).await;
    let joined_self = watcher.event().await;
    assert!(
        joined_self.data.contains("\"active\":true"),
        "{joined_self:?}"
    );

    let raw = format!(
        "HEAD /.well-known/mercure?topic=c HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n"
    );
    let mut lean = common::raw(hub.addr, raw.as_bytes()).await;
    assert_eq!(read_head(&mut lean).await.status, 200);
    let mut conn = hub.connect().await;
    assert_eq!(conn.get("/healthz", &[]).await.status, StatusCode::OK);
    let routed = conn
        .request(
            "HEAD",
            "/events?topic=c",
            &[("authorization", &auth)],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(routed.status, StatusCode::OK);
    assert_eq!(
        routed.header("last-event-id").map(|v| v.is_empty()),
        Some(false)
    );
    // The same checks as a GET: no token, no stream.
    let refused = conn
        .request("HEAD", "/events?topic=c", &[], bytes::Bytes::new())
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    assert_eq!(
        hub.hub.local_subscriptions().len(),
        1,
        "only the watcher is subscribed"
    );
    let control = hub.publish(&[("topic", "c"), ("data", "control")]).await;
    assert_eq!(
        watcher.event().await.id,
        control,
        "no presence update came before the control"
    );
    hub.stop().await;
}

#[tokio::test]
async fn the_browser_client_is_served_with_an_etag_and_revalidates() {
    let hub = TestHub::start(config()).await;
    let reply = hub.get("/tidings.js").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(reply.header("cache-control"), Some("public, max-age=300"));
    assert!(reply.body.contains("export class EventSource"));
    let etag = reply.header("etag").unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let mut conn = hub.connect().await;
    let again = conn.get("/tidings.js", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    assert!(again.body.is_empty());
    let other = conn
        .get("/tidings.js", &[("if-none-match", "\"something-else\"")])
        .await;
    assert_eq!(other.status, StatusCode::OK);
    hub.stop().await;
}
