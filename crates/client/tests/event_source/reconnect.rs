//! Reconnection: delays, backoff, resuming, timeouts, and stopping.

use std::time::Duration;

use tidings_client::{Error, EventSource, Method, StreamItem};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::time::timeout;

use crate::server::{
    SSE_HEAD, Server, Step, WAIT, next, next_or_end, no_content, run_to_end, send, sse,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The delay and error of the next `Reconnecting`, skipping the items of the
/// connection that just ended.
async fn next_reconnect(events: &mut EventSource) -> (Duration, Error) {
    loop {
        match next(events).await {
            StreamItem::Reconnecting { delay, error } => return (delay, error),
            StreamItem::Open { .. } | StreamItem::Comment(_) | StreamItem::Event(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_retry_field_sets_the_reported_delay() {
    let server = Server::start(|n, _| {
        if n == 0 {
            sse("retry: 37\ndata: a\n\n")
        } else {
            no_content()
        }
    })
    .await;
    let mut events = EventSource::new(server.url("/")).unwrap(); // default retry: 3 s
    assert!(matches!(next(&mut events).await, StreamItem::Open { .. }));
    assert!(matches!(next(&mut events).await, StreamItem::Retry(d) if d == ms(37)));
    assert!(matches!(next(&mut events).await, StreamItem::Event(_)));
    match next(&mut events).await {
        StreamItem::Reconnecting { delay, error } => {
            assert_eq!(delay, ms(37), "the server's retry, exactly");
            assert!(matches!(error, Error::Ended), "{error}");
        }
        other => panic!("expected Reconnecting, got {other:?}"),
    }
    assert!(
        next_or_end(&mut events).await.is_none(),
        "the 204 on reconnection"
    );
    assert_eq!(server.connections(), 2);
}

#[tokio::test(start_paused = true)]
async fn backoff_grows_on_repeated_failures_is_capped_and_resets() {
    // Connections 0-2 are closed before any answer (network errors), 3-5
    // answer 200 and end at once (no event: failures too), 6 delivers an
    // event (healthy) and 7 fails again.
    let server = Server::start(|n, _| match n {
        0..=2 => Vec::new(),
        3..=5 | 7 => sse(": nothing\n"),
        6 => sse("data: finally\n\n"),
        _ => no_content(),
    })
    .await;
    let mut server = server;
    let mut events = EventSource::builder(server.url("/"))
        .retry(ms(1000))
        .max_retry(ms(5000))
        .build()
        .unwrap();
    // Equal jitter: failure n waits within [c/2, c] for c = min(1 s * 2^n, 5 s).
    let bounds = [
        (1000, 2000),
        (2000, 4000),
        (2500, 5000),
        (2500, 5000),
        (2500, 5000),
        (2500, 5000),
    ];
    let mut delays = Vec::new();
    for (n, (low, high)) in bounds.into_iter().enumerate() {
        let (delay, error) = next_reconnect(&mut events).await;
        delays.push(delay);
        assert!(
            (ms(low)..=ms(high)).contains(&delay),
            "failure {}: {delay:?}",
            n + 1
        );
        if n < 3 {
            assert!(matches!(error, Error::Network(_)), "{error}");
        } else {
            assert!(matches!(error, Error::Ended), "{error}");
        }
    }
    let (delay, _) = next_reconnect(&mut events).await;
    assert_eq!(
        delay,
        ms(1000),
        "a stream that delivered an event resets the backoff"
    );
    delays.push(delay);
    let (delay, _) = next_reconnect(&mut events).await;
    assert!(
        (ms(1000)..=ms(2000)).contains(&delay),
        "counting from one again: {delay:?}"
    );
    delays.push(delay);
    assert!(next_or_end(&mut events).await.is_none());
    // The client waited what it reported, between every two connections.
    let mut previous = server.request().await.at;
    for (n, delay) in delays.into_iter().enumerate() {
        let at = server.request().await.at;
        let waited = at - previous;
        assert!(
            waited >= delay && waited < delay + ms(50),
            "before connection {}: waited {waited:?} for {delay:?}",
            n + 1
        );
        previous = at;
    }
}

#[tokio::test]
async fn a_refused_connection_is_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener); // nobody listens there now
    let mut events = EventSource::builder(url).retry(ms(10)).build().unwrap();
    for _ in 0..3 {
        let (_, error) = next_reconnect(&mut events).await;
        assert!(matches!(error, Error::Network(_)), "{error}");
        assert!(error.is_retryable() && !error.is_fatal());
    }
}

#[tokio::test]
async fn last_event_id_is_resent_and_an_empty_id_clears_it() {
    let mut server = Server::start(|n, _| match n {
        0 => sse("id: 7\ndata: a\n\n"),
        1 => sse("id:\ndata: b\n\n"),
        _ => no_content(),
    })
    .await;
    let mut events = EventSource::builder(server.url("/"))
        .last_event_id("start")
        .retry(ms(10))
        .build()
        .unwrap();
    assert_eq!(events.last_event_id(), "start");
    let (items, _) = run_to_end(&mut events).await;
    let got: Vec<_> = items.iter().filter(|i| i.starts_with("event")).collect();
    assert_eq!(
        got,
        [
            "event message id=\"7\" \"a\"",
            "event message id=\"\" \"b\""
        ]
    );
    assert_eq!(events.last_event_id(), "");
    let sent: Vec<_> = [
        server.request().await,
        server.request().await,
        server.request().await,
    ]
    .iter()
    .map(|r| r.header("last-event-id").map(str::to_owned))
    .collect();
    assert_eq!(
        sent,
        [Some("start".to_owned()), Some("7".to_owned()), None],
        "initial id, then the server's, then none after the empty id"
    );
}

#[tokio::test]
async fn method_headers_and_body_are_resent_on_every_reconnection() {
    let mut server = Server::start(|n, _| {
        if n < 2 {
            sse("data: x\n\n")
        } else {
            no_content()
        }
    })
    .await;
    let report = Method::from_bytes(b"REPORT").unwrap();
    let mut events = EventSource::builder(server.url("/feed"))
        .method(report)
        .header("Authorization", "Bearer secret")
        .header("X-Topic", "a")
        .header("X-Topic", "b")
        .header("Cache-Control", "max-age=0")
        .body("<query/>")
        .retry(ms(10))
        .build()
        .unwrap();
    let (items, fatal) = run_to_end(&mut events).await;
    assert!(fatal.is_none());
    assert_eq!(items.iter().filter(|i| i.starts_with("event")).count(), 2);
    for n in 0..3 {
        let request = server.request().await;
        assert_eq!(request.method, "REPORT", "request {n}");
        assert_eq!(request.target, "/feed");
        assert_eq!(request.header("authorization"), Some("Bearer secret"));
        assert_eq!(request.header_all("x-topic"), ["a", "b"]);
        assert_eq!(
            request.header_all("cache-control"),
            ["max-age=0"],
            "the caller's replaces ours"
        );
        assert_eq!(request.header("accept"), Some("text/event-stream"));
        assert_eq!(request.body, b"<query/>", "request {n}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_dropped_after_the_read_timeout() {
    let mut server = Server::start(|n, _| match n {
        0 => vec![
            send(format!("{SSE_HEAD}id: 1\ndata: a\n\n")),
            Step::HoldUntilClientCloses,
        ],
        _ => no_content(),
    })
    .await;
    let mut events = EventSource::builder(server.url("/"))
        .read_timeout(ms(5000))
        .retry(ms(10))
        .build()
        .unwrap();
    assert!(matches!(next(&mut events).await, StreamItem::Open { .. }));
    assert!(matches!(next(&mut events).await, StreamItem::Event(_)));
    let last_read = tokio::time::Instant::now();
    let (delay, error) = next_reconnect(&mut events).await;
    assert!(
        matches!(error, Error::ReadTimeout(t) if t == ms(5000)),
        "{error}"
    );
    let silent = last_read.elapsed();
    assert!(
        silent >= ms(5000) && silent < ms(5050),
        "timed out after {silent:?}"
    );
    assert_eq!(delay, ms(10), "the stream delivered an event: healthy");
    assert_eq!(server.client_closed().await, 0, "the client hung up");
    assert!(
        next_or_end(&mut events).await.is_none(),
        "the 204 on reconnection"
    );
    server.request().await;
    assert_eq!(server.request().await.header("last-event-id"), Some("1"));
}

#[tokio::test(start_paused = true)]
async fn the_read_timeout_covers_a_server_that_never_answers() {
    let mut server = Server::start(|n, _| match n {
        0 => vec![Step::HoldUntilClientCloses],
        _ => no_content(),
    })
    .await;
    let started = tokio::time::Instant::now();
    let mut events = EventSource::builder(server.url("/"))
        .read_timeout(ms(5000))
        .retry(ms(10))
        .build()
        .unwrap();
    let (_, error) = next_reconnect(&mut events).await;
    assert!(matches!(error, Error::ReadTimeout(_)), "{error}");
    let waited = started.elapsed();
    assert!(
        waited >= ms(5000) && waited < ms(5050),
        "timed out after {waited:?}"
    );
    assert_eq!(server.client_closed().await, 0);
    assert!(next_or_end(&mut events).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn keep_alive_comments_hold_off_the_read_timeout() {
    // Twelve comments 3 s apart span 36 s, far more than the 4 s timeout;
    // each one resets it, so the connection must survive to the event.
    let server = Server::start(|n, _| {
        if n > 0 {
            return no_content();
        }
        let mut steps = vec![send(SSE_HEAD)];
        for _ in 0..12 {
            steps.extend([Step::Pause(ms(3000)), send(": ping\n")]);
        }
        steps.push(send("data: survived\n\n"));
        steps
    })
    .await;
    let mut events = EventSource::builder(server.url("/"))
        .read_timeout(ms(4000))
        .retry(ms(10))
        .build()
        .unwrap();
    let (items, _) = run_to_end(&mut events).await;
    let mut expected = vec!["open /".to_owned()];
    expected.extend(std::iter::repeat_n("comment \"ping\"".to_owned(), 12));
    expected.push("event message id=\"\" \"survived\"".to_owned());
    expected.push("reconnecting: the server ended the stream".to_owned());
    assert_eq!(items, expected);
}

#[tokio::test]
async fn a_half_received_event_is_discarded_across_a_reconnect() {
    let mut server = Server::start(|n, _| match n {
        0 => sse("id: 1\ndata: whole\n\nid: 2\ndata: half"),
        1 => sse("data: next\n\n"),
        _ => no_content(),
    })
    .await;
    let mut events = EventSource::builder(server.url("/"))
        .retry(ms(10))
        .build()
        .unwrap();
    let (items, _) = run_to_end(&mut events).await;
    let got: Vec<_> = items.iter().filter(|i| i.starts_with("event")).collect();
    assert_eq!(
        got,
        [
            "event message id=\"1\" \"whole\"",
            "event message id=\"1\" \"next\""
        ],
        "\"half\" and its id 2 were dropped"
    );
    server.request().await;
    assert_eq!(server.request().await.header("last-event-id"), Some("1"));
}

#[tokio::test]
async fn close_hangs_up_and_ends_the_stream() {
    let mut server = Server::start(|_, _| {
        vec![
            send(format!("{SSE_HEAD}data: a\n\ndata: b\n\n")),
            Step::HoldUntilClientCloses,
        ]
    })
    .await;
    let mut events = EventSource::new(server.url("/")).unwrap();
    assert!(matches!(next(&mut events).await, StreamItem::Open { .. }));
    assert!(matches!(next(&mut events).await, StreamItem::Event(_)));
    events.close();
    assert!(events.is_closed());
    assert!(
        next_or_end(&mut events).await.is_none(),
        "queued \"b\" dropped too"
    );
    assert_eq!(server.client_closed().await, 0);
    assert_eq!(server.connections(), 1);
}

#[tokio::test(start_paused = true)]
async fn closing_while_waiting_to_reconnect_stops_reconnecting() {
    let mut server = Server::start(|_, _| sse("data: a\n\n")).await;
    let mut events = EventSource::builder(server.url("/"))
        .retry(ms(1000))
        .build()
        .unwrap();
    let (delay, _) = next_reconnect(&mut events).await;
    events.close();
    assert!(next_or_end(&mut events).await.is_none());
    server.request().await;
    // A reconnection would come after `delay`; allow ten times that: none may.
    assert!(server.request_within(delay * 10).await.is_none());
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn https_urls_speak_tls() {
    // A plain TCP listener: the client's first bytes must be a TLS handshake
    // record (0x16, version 3.x), which proves the rustls path is wired.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/", listener.local_addr().unwrap());
    let mut events = EventSource::builder(url).retry(ms(10)).build().unwrap();
    let hello = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = [0u8; 2];
        socket.read_exact(&mut head).await.unwrap();
        head // dropping the socket fails the handshake
    });
    let (_, error) = next_reconnect(&mut events).await;
    assert!(matches!(error, Error::Network(_)), "{error}");
    let head = timeout(WAIT, hello).await.unwrap().unwrap();
    assert_eq!(head, [0x16, 0x03], "a TLS handshake record");
}
