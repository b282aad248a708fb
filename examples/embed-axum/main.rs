//! The hub inside your own axum app: the event-emitter pattern.
//!
//! ```sh
//! cargo run -p tidings-examples --example embed-axum    # then open http://127.0.0.1:3000/
//! ```
//!
//! The app keeps its own routes (`/` and `POST /shout`) and merges in the
//! hub's (`/.well-known/mercure` to subscribe, `/tidings.js`). Any part of the
//! program publishes with `Hub::publish`, like emitting an event: here a
//! request handler and a background task. Every open page receives both,
//! and a page that reconnects gets what it missed. `LISTEN=127.0.0.1:0` picks
//! a free port.

use std::time::Duration;

use axum::Router;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::{get, post};
use tidings_hub::{Hub, Update};
use tidings_server::{Config, Server, Storage};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // History in memory. With no JWT key this is development mode: pages may
    // subscribe without a token. Set `jwt_key` (and `anonymous`) for
    // production, as for `tidings serve`.
    let server = Server::new(Config {
        storage: Storage::Memory,
        ..Config::default()
    })?;
    let hub = server.hub().clone();
    tokio::spawn(clock(hub.clone()));

    let app = Router::new()
        .route("/", get(|| async { Html(include_str!("page.html")) }))
        .route("/shout", post(shout))
        .with_state(hub.clone())
        .merge(server.router());

    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::signal::ctrl_c().await.ok();
            // Ends the open streams, so that the graceful shutdown that waits
            // for them can finish; browsers reconnect and resume elsewhere.
            hub.shutdown().await;
        })
        .await?;
    Ok(())
}

#[derive(serde::Deserialize)]
struct Shout {
    text: String,
}

/// Publishing from a request handler: the answer waits until the update is
/// in the hub's log, so a `200` means every subscriber will get it.
async fn shout(State(hub): State<Hub>, Form(shout): Form<Shout>) -> (StatusCode, String) {
    let text = shout.text.trim();
    if text.is_empty() || text.len() > 280 {
        return (
            StatusCode::BAD_REQUEST,
            "say something, in 280 bytes or less\n".into(),
        );
    }
    match hub
        .publish(Update::new("shouts", text).event_type("shout"))
        .await
    {
        Ok(id) => (StatusCode::OK, format!("{id}\n")),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n")),
    }
}

/// Publishing from a background task: the time, every two seconds.
async fn clock(hub: Hub) {
    let mut every = tokio::time::interval(Duration::from_secs(2));
    loop {
        every.tick().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let update = Update::new("clock", now.as_secs().to_string()).event_type("tick");
        if hub.publish(update).await.is_err() {
            return; // the hub is shutting down
        }
    }
}
