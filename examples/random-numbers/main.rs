//! Live random numbers: the classic SSE demo, on the hub library.
//!
//! ```sh
//! cargo run -p tidings-examples --example random-numbers    # then open http://127.0.0.1:3000/
//! ```
//!
//! Every second the server publishes `{"timestamp": …, "value": …}` on the
//! topic `numbers`; the page shows each one as it comes.
//!
//! The express version in the tutorials writes the stream by hand, and has
//! to get each of these right itself:
//!
//! - the headers (`Content-Type: text/event-stream`, `Cache-Control:
//!   no-cache`, `Connection: keep-alive`) and flushing them at once;
//! - the framing: `data: ${JSON.stringify(x)}\n\n`, and a data value with a
//!   newline silently breaks it;
//! - a `setInterval` per connection, cleared in `req.on('close')`, or it
//!   leaks a timer and writes to a closed socket for ever;
//! - a list of open responses to fan out to, kept in step with closes;
//! - keep-alive comments so proxies do not cut an idle stream;
//! - and no resume: a browser that reconnects sends `Last-Event-ID`, which
//!   the handler ignores, so whatever came meanwhile is lost.
//!
//! Here the hub does all of that: one publish per second whatever the number
//! of pages, events encoded once, streams ended and cleaned up by the hub,
//! keep-alives, and history, so a page that reconnects gets what it missed.
//! `LISTEN=127.0.0.1:0` picks a free port.

#[path = "../serve.rs"]
mod serve;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use tidings_hub::{Hub, Update};
use tidings_server::{Config, Server, Storage};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::new(Config {
        storage: Storage::Memory,
        ..Config::default()
    })?;
    let hub = server.hub().clone();
    tokio::spawn(numbers(hub.clone()));

    let app = Router::new()
        .route("/", get(|| async { Html(include_str!("page.html")) }))
        .merge(server.router());
    serve::serve(app, hub).await
}

/// One random number a second, as JSON, for every page at once.
async fn numbers(hub: Hub) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    // After a stall, carry on a second apart rather than catch up in a burst.
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let value: f64 = rand::random();
        let data = serde_json::json!({ "timestamp": timestamp, "value": value });
        if hub
            .publish(Update::new("numbers", data.to_string()))
            .await
            .is_err()
        {
            return;
        }
    }
}
