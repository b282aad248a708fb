//! HTTPS: HTTP/2 and HTTP/1.1 by ALPN, each subscription path over TLS, the
//! limits per HTTP/2 stream, and connections that stall before any request.

mod common;

use std::time::Duration;

use common::{TestHub, WAIT, config, publisher_token};
use reqwest::{StatusCode, Version};
use tidings_codec::{Decoder, Item};
use tidings_server::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

fn https() -> Config {
    Config {
        tls_self_signed: true,
        ..config()
    }
}

/// A client that trusts the hub's development certificate.
fn client(http1: bool) -> reqwest::Client {
    let builder = reqwest::Client::builder().danger_accept_invalid_certs(true);
    let builder = if http1 { builder.http1_only() } else { builder };
    builder.build().unwrap()
}

/// Reads events from a streaming response until `n` have come.
async fn events(response: &mut reqwest::Response, n: usize) -> Vec<String> {
    let mut decoder = Decoder::new();
    let mut data = Vec::new();
    timeout(WAIT, async {
        while data.len() < n {
            let chunk = response.chunk().await.unwrap().expect("the stream goes on");
            for item in decoder.feed(&chunk) {
                if let Item::Event(event) = item {
                    data.push(event.data);
                }
            }
        }
    })
    .await
    .expect("the events arrive within the wait");
    data
}

async fn publish(client: &reqwest::Client, hub: &TestHub, data: &str) -> Version {
    let reply = client
        .post(format!("https://{}/.well-known/mercure", hub.addr))
        .bearer_auth(publisher_token())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("topic=t&data={data}"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    reply.version()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_http2_and_http_1_1_by_alpn_and_both_stream() {
    let hub = TestHub::start(https()).await;
    let url = format!("https://{}/.well-known/mercure?topic=t", hub.addr);
    let h2 = client(false);
    let mut over_h2 = h2.get(&url).send().await.unwrap();
    assert_eq!(over_h2.version(), Version::HTTP_2);
    assert_eq!(over_h2.status(), StatusCode::OK);
    assert_eq!(
        over_h2.headers()["content-type"],
        "text/event-stream",
        "{:?}",
        over_h2.headers()
    );
    let h1 = client(true);
    let mut over_h1 = h1.get(&url).send().await.unwrap();
    assert_eq!(over_h1.version(), Version::HTTP_11);
    assert_eq!(over_h1.headers()["transfer-encoding"], "chunked");
    assert_eq!(publish(&h2, &hub, "one").await, Version::HTTP_2);
    assert_eq!(publish(&h1, &hub, "two").await, Version::HTTP_11);
    assert_eq!(events(&mut over_h2, 2).await, ["one", "two"]);
    assert_eq!(events(&mut over_h1, 2).await, ["one", "two"]);
    // Plain HTTP on the TLS port is not served.
    let mut plain = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = timeout(WAIT, plain.read_to_end(&mut answer)).await.unwrap();
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_http2_stream_counts_against_the_per_ip_limit() {
    let hub = TestHub::start(Config {
        max_connections_per_ip: 4,
        ..https()
    })
    .await;
    let h2 = client(false);
    let url = format!("https://{}/.well-known/mercure?topic=t", hub.addr);
    // One connection (the first place), then one place per stream.
    let mut open = Vec::new();
    let refused = loop {
        let response = h2.get(&url).send().await.unwrap();
        assert_eq!(response.version(), Version::HTTP_2);
        if response.status() != StatusCode::OK {
            break response;
        }
        open.push(response);
        assert!(open.len() < 10, "streams are not limited");
    };
    assert_eq!(open.len(), 3, "the connection and three streams fill the 4");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    // A stream that ends frees its place.
    open.pop();
    let again = timeout(WAIT, async {
        loop {
            let response = h2.get(&url).send().await.unwrap();
            if response.status() == StatusCode::OK {
                return response;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the place is freed");
    drop(again);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_http2_stream_does_not_delay_the_other_streams_of_its_connection() {
    const UPDATES: usize = 2000;
    let hub = TestHub::start(https()).await;
    // One connection for both streams; a stream may hold 64 KiB unread, the
    // connection far more, so the stalled stream cannot stall its sibling.
    let h2 = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .http2_adaptive_window(false)
        .http2_initial_stream_window_size(64 * 1024)
        .http2_initial_connection_window_size(64 * 1024 * 1024)
        .build()
        .unwrap();
    let url = format!("https://{}/.well-known/mercure?topic=t", hub.addr);
    let mut stalled = h2.get(&url).send().await.unwrap();
    let mut reading = h2.get(&url).send().await.unwrap();
    assert_eq!(stalled.version(), Version::HTTP_2);
    assert_eq!(reading.status(), StatusCode::OK);
    let padding = "x".repeat(4096);
    let expected: Vec<String> = (0..UPDATES).map(|i| format!("{i:05}-{padding}")).collect();
    let reader = tokio::spawn(async move { events(&mut reading, UPDATES).await });
    let publisher = client(true);
    for data in &expected {
        publish(&publisher, &hub, data).await;
    }
    let received = timeout(WAIT, reader).await.unwrap().unwrap();
    assert!(received == expected, "the reading stream's updates differ");
    // The stalled stream fell behind the hub's queue ...
    let metrics = publisher
        .get(format!("https://{}/metrics", hub.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let slow = common::metric(&metrics, "tidings_slow_subscribers_total");
    assert!(slow >= 1.0, "the stalled stream never lagged:\n{metrics}");
    // ... and, once read, catches up from history with everything in order.
    assert!(events(&mut stalled, UPDATES).await == expected);
    hub.stop().await;
}

/// Reads until the server closes the connection; panics if it does not
/// within the wait. Returns how long that took.
async fn closed_by_server(mut stream: tokio::net::TcpStream) -> Duration {
    let started = tokio::time::Instant::now();
    let mut sink = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut sink))
        .await
        .expect("the server closes the connection within the wait")
        .ok();
    started.elapsed()
}

#[tokio::test(start_paused = true)]
async fn regression_an_http2_preface_and_then_nothing_does_not_hold_a_connection() {
    // On the paused clock, under the helpers' wait (the same clock).
    let limit = Duration::from_secs(5);
    // Closed at the limit, or a GOAWAY's grace (1 s) after it.
    let at_the_limit = |took: Duration| {
        assert!(
            took >= limit && took <= limit + Duration::from_millis(1100),
            "{took:?}"
        );
    };
    let quick = Config {
        header_read_timeout: limit,
        max_connections_per_ip: 3,
        ..config()
    };
    let hub = TestHub::start(quick.clone()).await;
    // The whole preface, then nothing; part of it, then nothing.
    for sent in [
        &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..],
        b"PRI * HTTP/2.0\r\n",
    ] {
        let stalled = common::raw(hub.addr, sent).await;
        at_the_limit(closed_by_server(stalled).await);
    }
    // Closed, they gave their places back: more than the per-IP limit of
    // them, one after another, still get through.
    for _ in 0..4 {
        let stalled = common::raw(hub.addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
        at_the_limit(closed_by_server(stalled).await);
    }
    assert_eq!(hub.get("/healthz").await.status, http::StatusCode::OK);
    hub.stop().await;
    // Over TLS: a handshake never finished.
    let hub = TestHub::start(Config {
        tls_self_signed: true,
        ..quick
    })
    .await;
    for _ in 0..4 {
        let silent = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
        at_the_limit(closed_by_server(silent).await);
    }
    hub.stop().await;
}
