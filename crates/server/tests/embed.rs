//! The hub's routes merged into an application's own axum router
//! (`Server::router`), served by the application's `axum::serve`.

mod common;

use axum::Router;
use axum::routing::get;
use common::{Conn, WAIT, config, publisher_token};
use http::StatusCode;
use tidings_hub::Update;
use tidings_server::Server;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_routes_merge_into_an_app_with_its_own_page_and_fallback() {
    let server = Server::new(config()).unwrap();
    let hub = server.hub().clone();
    let app = Router::new()
        .route("/", get(|| async { "the app's own page" }))
        .merge(server.router())
        .fallback(|| async { (StatusCode::NOT_FOUND, "the app's own 404") });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stopping = hub.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
                stopping.shutdown().await;
            })
            .await
    });

    let mut conn = Conn::open(addr).await;
    assert_eq!(conn.get("/", &[]).await.body, "the app's own page");
    let missing = conn.get("/nothing", &[]).await;
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (StatusCode::NOT_FOUND, "the app's own 404")
    );
    assert_eq!(conn.get("/tidings.js", &[]).await.status, StatusCode::OK);

    // Subscribers of the mounted endpoint get what the app publishes in
    // process and what a publisher posts with a token.
    let mut stream = Conn::open(addr)
        .await
        .subscribe("/.well-known/mercure?topic=news", &[])
        .await;
    assert_eq!(stream.status, StatusCode::OK);
    hub.publish(Update::new("news", "from the app"))
        .await
        .unwrap();
    let bearer = format!("Bearer {}", publisher_token());
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let posted = conn
        .post("/.well-known/mercure", &headers, "topic=news&data=posted")
        .await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.body);
    assert_eq!(stream.data(2).await, ["from the app", "posted"]);
    // The auth of the config applies: no token, no publish.
    let refused = conn
        .post("/.well-known/mercure", &headers[1..], "topic=news&data=x")
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    // The hub's shutdown ends the open stream, so the graceful shutdown
    // that waits for it finishes.
    drop(conn);
    stop.send(()).unwrap();
    timeout(WAIT, stream.end()).await.expect("the stream ends");
    timeout(WAIT, served)
        .await
        .expect("the app stops")
        .unwrap()
        .unwrap();
}
