//! What the client sends, and how it treats each kind of answer.

use std::time::Duration;

use tidings_client::{Error, EventSource, StreamItem};

use crate::server::{
    SSE_HEAD, Server, Step, next, next_or_end, no_content, run_to_end, send, sse, status,
};

/// A client that reconnects quickly: tests must run in seconds.
fn quick(url: String) -> EventSource {
    EventSource::builder(url)
        .retry(Duration::from_millis(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_line_ending_and_chunking_gives_the_same_items() {
    let expected = [
        "open /events",
        "comment \"hi\"",
        "event greet id=\"1\" \"a\\nb\"",
        "event message id=\"1\" \"c\"",
        "reconnecting: the server ended the stream",
    ];
    for newline in ["\n", "\r\n", "\r"] {
        let body = [
            ": hi",
            "id: 1",
            "event: greet",
            "data: a",
            "data: b",
            "",
            "data: c",
            "",
            "",
        ]
        .join(newline);
        let whole = vec![send(SSE_HEAD), send(&body)];
        let bytewise = std::iter::once(send(SSE_HEAD))
            .chain(body.bytes().map(|b| send([b])))
            .collect::<Vec<_>>();
        for (chunking, steps) in [("whole", whole), ("byte by byte", bytewise)] {
            let mut server = Server::start(
                move |n, _| {
                    if n == 0 { steps.clone() } else { no_content() }
                },
            )
            .await;
            let (items, fatal) = run_to_end(&mut quick(server.url("/events"))).await;
            assert_eq!(items, expected, "line end {newline:?}, chunks {chunking}");
            assert!(fatal.is_none());
            assert_eq!(server.request().await.target, "/events");
            assert_eq!(
                server.request().await.target,
                "/events",
                "reconnected after EOF"
            );
        }
    }
}

#[tokio::test]
async fn a_leading_bom_is_stripped_on_every_connection() {
    let server = Server::start(|n, _| match n {
        0 => sse("\u{FEFF}data: one\n\n"),
        // The BOM split across chunks, on a reconnection: stripped again.
        1 => vec![
            send(SSE_HEAD),
            send(b"\xEF\xBB"),
            send(b"\xBFdata: two\n\n"),
        ],
        _ => no_content(),
    })
    .await;
    let (items, _) = run_to_end(&mut quick(server.url("/"))).await;
    let events: Vec<_> = items.iter().filter(|i| i.starts_with("event")).collect();
    assert_eq!(
        events,
        [
            "event message id=\"\" \"one\"",
            "event message id=\"\" \"two\""
        ]
    );
}

#[tokio::test]
async fn comments_are_surfaced_as_items() {
    let server = Server::start(|_, _| {
        vec![
            send(SSE_HEAD),
            send(":\n: keep-alive\n:  two spaces\n"),
            Step::HoldUntilClientCloses,
        ]
    })
    .await;
    let mut events = quick(server.url("/"));
    assert!(matches!(next(&mut events).await, StreamItem::Open { .. }));
    for expected in ["", "keep-alive", " two spaces"] {
        match next(&mut events).await {
            StreamItem::Comment(text) => assert_eq!(text, expected),
            other => panic!("expected a comment, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn requests_ask_for_an_uncached_event_stream() {
    let mut server = Server::start(|_, _| no_content()).await;
    let (items, fatal) = run_to_end(&mut quick(server.url("/events?topic=a"))).await;
    assert!(items.is_empty() && fatal.is_none());
    let request = server.request().await;
    assert_eq!(request.method, "GET");
    assert_eq!(request.target, "/events?topic=a");
    assert_eq!(request.header("accept"), Some("text/event-stream"));
    assert_eq!(request.header("cache-control"), Some("no-cache"));
    assert_eq!(
        request.header("last-event-id"),
        None,
        "no id yet, no header"
    );
    assert!(
        request
            .header("user-agent")
            .unwrap()
            .starts_with("tidings-client/")
    );
    assert!(request.body.is_empty());
}

#[tokio::test]
async fn a_status_other_than_200_fails_at_once_without_retry() {
    for (line, code) in [
        ("404 Not Found", 404),
        ("500 Internal Server Error", 500),
        ("503 Service Unavailable", 503),
        ("201 Created", 201),
    ] {
        let server = Server::start(move |_, _| status(line, "Retry-After: 0\r\n")).await;
        let mut events = quick(server.url("/events"));
        let (items, fatal) = run_to_end(&mut events).await;
        assert!(items.is_empty(), "{line}: {items:?}");
        match fatal {
            Some(error @ Error::Status { .. }) => {
                assert!(error.is_fatal() && !error.is_retryable());
                let Error::Status {
                    status,
                    url,
                    message,
                } = error
                else {
                    unreachable!()
                };
                assert_eq!(status.as_u16(), code);
                assert_eq!(url.path(), "/events");
                assert_eq!(message, None, "an empty body says nothing");
            }
            other => panic!("{line}: expected a status error, got {other:?}"),
        }
        assert!(events.is_closed());
        assert_eq!(server.connections(), 1, "{line} must not be retried");
    }
}

#[tokio::test]
async fn a_content_type_other_than_event_stream_fails_without_retry() {
    for (header, expected) in [
        ("Content-Type: text/plain\r\n", Some("text/plain")),
        (
            "Content-Type: application/json; charset=utf-8\r\n",
            Some("application/json; charset=utf-8"),
        ),
        ("", None),
    ] {
        let server = Server::start(move |_, _| {
            let head = format!("HTTP/1.1 200 OK\r\n{header}Connection: close\r\n\r\n");
            vec![send(head + "data: never seen\n\n")]
        })
        .await;
        let (items, fatal) = run_to_end(&mut quick(server.url("/"))).await;
        assert!(items.is_empty(), "{items:?}");
        match fatal {
            Some(Error::ContentType { content_type, .. }) => {
                assert_eq!(content_type.as_deref(), expected);
            }
            other => panic!("expected a content type error, got {other:?}"),
        }
        assert_eq!(server.connections(), 1, "{header:?} must not be retried");
    }
}

#[tokio::test]
async fn content_type_parameters_and_case_are_ignored() {
    let server = Server::start(|n, _| {
        if n > 0 {
            return no_content();
        }
        vec![send(
            "HTTP/1.1 200 OK\r\ncontent-type: Text/Event-Stream ; charset=utf-8\r\n\
             Connection: close\r\n\r\ndata: ok\n\n",
        )]
    })
    .await;
    let (items, fatal) = run_to_end(&mut quick(server.url("/"))).await;
    assert!(fatal.is_none());
    assert_eq!(items[..2], ["open /", "event message id=\"\" \"ok\""]);
}

#[tokio::test]
async fn no_content_ends_the_stream_without_retry() {
    let server = Server::start(|_, _| no_content()).await;
    let mut events = quick(server.url("/"));
    assert!(
        next_or_end(&mut events).await.is_none(),
        "204 ends the stream"
    );
    assert!(events.is_closed());
    assert!(
        next_or_end(&mut events).await.is_none(),
        "and it stays ended"
    );
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn oversized_events_are_reported_and_skipped() {
    let server = Server::start(|n, _| {
        if n == 0 {
            sse("data: 0123456789\n\ndata: ok\n\n")
        } else {
            no_content()
        }
    })
    .await;
    let mut events = EventSource::builder(server.url("/"))
        .limits(tidings_client::DecoderConfig::default().max_event_len(8))
        .retry(Duration::from_millis(10))
        .build()
        .unwrap();
    let (items, _) = run_to_end(&mut events).await;
    assert!(items[1].starts_with("dropped "), "{items:?}");
    assert_eq!(items[2], "event message id=\"\" \"ok\"");
}

#[test]
fn bad_settings_are_reported_by_build() {
    let url_error = |url: &str| EventSource::new(url).unwrap_err();
    assert!(matches!(url_error("not a url"), Error::InvalidUrl { .. }));
    assert!(matches!(url_error("/relative"), Error::InvalidUrl { .. }));
    let ftp = url_error("ftp://example.com/");
    assert!(matches!(ftp, Error::InvalidUrl { .. }));
    assert!(ftp.to_string().contains("ftp"), "{ftp}");
    let header = EventSource::builder("http://example.com/")
        .header("bad name", "x")
        .build()
        .unwrap_err();
    assert!(matches!(header, Error::InvalidHeader { ref name, .. } if name == "bad name"));
    let value = EventSource::builder("http://example.com/")
        .header("x-ok", "line\nbreak")
        .build()
        .unwrap_err();
    assert!(matches!(value, Error::InvalidHeader { .. }));
}

#[tokio::test]
async fn a_refusal_carries_the_servers_reason() {
    let server = Server::start(|_, _| {
        vec![send(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 24\r\nConnection: close\r\n\r\nmissing topic parameter\n",
        )]
    })
    .await;
    let mut events = quick(server.url("/events"));
    let (_, fatal) = run_to_end(&mut events).await;
    let error = fatal.expect("a fatal error");
    assert!(
        matches!(&error, Error::Status { message: Some(m), .. } if m == "missing topic parameter"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("400 Bad Request: missing topic parameter"),
        "{error}"
    );
    assert_eq!(server.connections(), 1);
}
