//! Every bound answers with its code: body size, topics, connections in
//! total and per IP, slow request heads, malformed requests; and a stalled
//! subscriber never delays the others.

mod common;

use std::time::{Duration, Instant};

use common::{PATHS, Path, TestHub, WAIT, config, publisher_token, raw, read_head, read_to_end};
use http::StatusCode;
use tidings_server::Config;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

#[tokio::test]
async fn body_size_and_topic_count_limits() {
    let hub = TestHub::start(Config {
        max_body: 1024,
        max_topics: 3,
        ..config()
    })
    .await;
    let big = "x".repeat(2000);
    let reply = hub
        .publish_form(Some(&publisher_token()), &[("topic", "t"), ("data", &big)])
        .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    assert!(reply.body.contains("1024"), "{}", reply.body);
    let bearer = format!("Bearer {}", publisher_token());
    let json = format!(r#"{{"topic": "t", "data": "{big}"}}"#);
    let reply = hub
        .connect()
        .await
        .post(
            "/.well-known/mercure",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            json,
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    // At the limit is fine.
    let fits = "x".repeat(1024 - "topic=t&data=".len());
    let reply = hub
        .publish_form(Some(&publisher_token()), &[("topic", "t"), ("data", &fits)])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    let four = [
        ("topic", "a"),
        ("topic", "b"),
        ("topic", "c"),
        ("topic", "d"),
    ];
    let reply = hub.publish_form(Some(&publisher_token()), &four).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(reply.body.contains("too many topics"), "{}", reply.body);
    let reply = hub.publish_form(Some(&publisher_token()), &four[..3]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    for path in PATHS {
        for (query, needle) in [
            ("topic=a&topic=b&topic=c&topic=d", "too many topic"),
            ("", "missing topic"),
            ("lastEventID=earliest", "missing topic"),
            ("topic=", "empty topic"),
        ] {
            let mut conn = hub.connect().await;
            if path == Path::Routed {
                conn.get("/healthz", &[]).await;
            }
            let mut refused = conn
                .subscribe(&format!("/.well-known/mercure?{query}"), &[])
                .await;
            assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{query} {path:?}");
            let body = String::from_utf8(refused.chunk().await.unwrap().to_vec()).unwrap();
            assert!(body.contains(needle), "{query} {path:?}: {body}");
        }
        let ok = hub
            .subscribe_via(path, "topic=a&topic=b&topic=c", &[])
            .await;
        assert_eq!(ok.status, StatusCode::OK);
    }
    hub.stop().await;
}

#[tokio::test]
async fn connections_over_the_limits_get_429_or_503_with_retry_after() {
    let per_ip = TestHub::start(Config {
        max_connections_per_ip: 2,
        ..config()
    })
    .await;
    let first = per_ip.subscribe("topic=t", &[]).await;
    let _second = per_ip.subscribe("topic=t", &[]).await;
    // Refused at accept, before the request is read.
    let mut third = tokio::net::TcpStream::connect(per_ip.addr).await.unwrap();
    let head = read_head(&mut third).await;
    assert_eq!(head.status, 429);
    assert!(head.header("retry-after").is_some(), "{head:?}");
    let body = String::from_utf8_lossy(&head.rest).into_owned()
        + &String::from_utf8_lossy(&read_to_end(&mut third).await);
    assert!(body.contains("too many connections"), "{body}");
    // A client that sends its request at once still reads the answer.
    let mut fourth = raw(
        per_ip.addr,
        b"GET /.well-known/mercure?topic=t HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(read_head(&mut fourth).await.status, 429);
    // Closing a connection frees its place.
    drop(first);
    timeout(WAIT, async {
        loop {
            if per_ip.try_subscribe("topic=t", &[]).await.status == StatusCode::OK {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a place frees up once a subscriber leaves");
    per_ip.stop().await;

    let total = TestHub::start(Config {
        max_connections: 2,
        ..config()
    })
    .await;
    let _a = total.subscribe("topic=t", &[]).await;
    let _b = total.subscribe_routed("topic=t", &[]).await;
    // A third subscriber is refused, on either path.
    assert_eq!(total.try_subscribe("topic=t", &[]).await.status, 503);
    let mut routed = total.connect().await;
    assert_eq!(routed.get("/healthz", &[]).await.status, StatusCode::OK);
    let refused = routed.get("/.well-known/mercure?topic=t", &[]).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.body.contains("subscribers"), "{}", refused.body);
    // Connections beyond the reserve kept for other requests are refused at
    // accept, before the request is read.
    let mut held = Vec::new();
    for _ in 0..16 {
        held.push(tokio::net::TcpStream::connect(total.addr).await.unwrap());
    }
    let head = read_head(held.last_mut().unwrap()).await;
    assert_eq!(head.status, 503);
    assert!(head.header("retry-after").is_some(), "{head:?}");
    total.stop().await;
}

#[tokio::test]
async fn regression_publishers_get_through_when_subscribers_fill_the_hub() {
    let hub = TestHub::start(Config {
        max_connections: 2,
        ..config()
    })
    .await;
    let mut a = hub.subscribe("topic=t", &[]).await;
    let _b = hub.subscribe("topic=t", &[]).await;
    assert_eq!(hub.try_subscribe("topic=t", &[]).await.status, 503);
    // Not 503: the limit is for subscribers.
    let id = hub.publish(&[("topic", "t"), ("data", "still here")]).await;
    assert_eq!(a.event().await.id, id);
    assert_eq!(hub.get("/healthz").await.status, StatusCode::OK);
    hub.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stalls_inside_its_request_head_is_disconnected() {
    // On the paused clock, under the helpers' wait (the same clock).
    let limit = Duration::from_secs(5);
    let hub = TestHub::start(Config {
        header_read_timeout: limit,
        ..config()
    })
    .await;
    let within_limit = |started: tokio::time::Instant| {
        let took = started.elapsed();
        assert!(
            took >= limit && took < limit + Duration::from_millis(100),
            "{took:?}"
        );
    };
    // Streams are not requests in progress: the timeout leaves them alone.
    let mut lean = hub.subscribe("topic=t", &[]).await;
    let mut routed = hub.subscribe_routed("topic=t", &[]).await;
    let started = tokio::time::Instant::now();
    // Half a request head on a fresh connection.
    let mut half = raw(
        hub.addr,
        b"GET /.well-known/mercure?topic=t HTTP/1.1\r\nHost: x\r\n",
    )
    .await;
    // Nothing at all.
    let mut silent = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    for stream in [&mut half, &mut silent] {
        let head = read_head(stream).await;
        assert_eq!(head.status, 408);
        read_to_end(stream).await;
    }
    within_limit(started);

    // Half a second request on a kept-alive connection.
    let mut kept = raw(hub.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let head = read_head(&mut kept).await;
    assert_eq!(head.status, 200);
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let rest = read_to_end(&mut kept).await;
    assert!(!String::from_utf8_lossy(&rest).contains("ok\n"), "{rest:?}");
    within_limit(started);
    hub.publish(&[("topic", "t"), ("data", "still here")]).await;
    assert_eq!(lean.data(1).await, ["still here"]);
    assert_eq!(routed.data(1).await, ["still here"]);
    hub.stop().await;
}

#[tokio::test]
async fn malformed_and_oversized_request_heads_are_refused() {
    let hub = TestHub::start(config()).await;
    for request in [
        &b"NOT A REQUEST\r\n\r\n"[..],
        b"\x01\x02 garbage\r\n\r\n",
        b"GET /.well-known/mercure?topic=t HTTP/1.1\r\nBad Header\r\n\r\n",
    ] {
        let mut stream = raw(hub.addr, request).await;
        let head = read_head(&mut stream).await;
        assert_eq!(head.status, 400, "{:?}", String::from_utf8_lossy(request));
        let body = String::from_utf8_lossy(&head.rest).into_owned()
            + &String::from_utf8_lossy(&read_to_end(&mut stream).await);
        assert!(body.contains("malformed"), "{body}");
    }
    let long = format!(
        "GET /.well-known/mercure?topic=t HTTP/1.1\r\nX-Long: {}\r\n\r\n",
        "y".repeat(20_000)
    );
    let mut stream = raw(hub.addr, long.as_bytes()).await;
    assert_eq!(read_head(&mut stream).await.status, 431);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_does_not_delay_the_others() {
    const UPDATES: usize = 2000;
    let hub = TestHub::start(config()).await;

    // A subscriber with a small receive buffer whose body is never read.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(hub.addr).await.unwrap();
    let mut stalled = common::Conn::over(hub.addr, stream)
        .await
        .subscribe("/.well-known/mercure?topic=load", &[])
        .await;
    assert_eq!(stalled.status, StatusCode::OK);

    let mut normal = hub.subscribe("topic=load", &[]).await;
    let reader = tokio::spawn(async move {
        let mut received = Vec::with_capacity(UPDATES);
        for _ in 0..UPDATES {
            received.push(normal.event().await.data);
        }
        received
    });

    let padding = "x".repeat(4096);
    let expected: Vec<String> = (0..UPDATES).map(|i| format!("{i:05}-{padding}")).collect();
    let started = Instant::now();
    let mut conn = hub.connect().await;
    let bearer = format!("Bearer {}", publisher_token());
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    for data in &expected {
        let body = format!("topic=load&data={data}");
        let reply = conn.post("/.well-known/mercure", &headers, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let received = timeout(WAIT, reader)
        .await
        .expect("the reading subscriber gets every update in time")
        .unwrap();
    assert!(
        received == expected,
        "the reading subscriber's updates are out of order or altered"
    );
    let took = started.elapsed();

    // The stalled subscriber fell behind (its socket filled up) ...
    let metrics = hub.get("/metrics").await.body;
    let slow = common::metric(&metrics, "tidings_slow_subscribers_total");
    assert!(
        slow >= 1.0,
        "the stalled subscriber never lagged ({took:?}):\n{metrics}"
    );
    // ... and still gets everything, in order, once it reads: it catches up
    // from history.
    let caught_up = timeout(WAIT, async {
        let mut all = Vec::with_capacity(UPDATES);
        for _ in 0..UPDATES {
            all.push(stalled.event().await.data);
        }
        all
    })
    .await
    .expect("the stalled subscriber catches up");
    assert!(
        caught_up == expected,
        "the stalled subscriber's updates are out of order"
    );
    hub.stop().await;
}
