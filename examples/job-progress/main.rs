//! Progress of a long job, resumable: a reload in the middle loses no step.
//!
//! ```sh
//! cargo run -p tidings-examples --example job-progress    # then open http://127.0.0.1:3000/
//! ```
//!
//! `POST /jobs` starts a job and answers its id at once; the job reports on a
//! topic of its own, `/jobs/{id}`: a `progress` event per step, then a
//! `done` event with the result. The page shows a progress bar and the
//! steps. It keeps the id of the last event it showed in `sessionStorage`,
//! so a reload (or a page opened later) resumes from there with
//! `Last-Event-ID`: the hub's history replays what came meanwhile, once.
//! `LISTEN=127.0.0.1:0` picks a free port.

#[path = "../serve.rs"]
mod serve;

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, Json};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tidings_hub::{Hub, Update};
use tidings_server::{Config, Server, Storage};

/// Steps in a job, and how long each takes.
const STEPS: u32 = 10;
const STEP: Duration = Duration::from_millis(600);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::new(Config {
        storage: Storage::Memory,
        ..Config::default()
    })?;
    let hub = server.hub().clone();
    let app = Router::new()
        .route("/", get(|| async { Html(include_str!("page.html")) }))
        .route("/jobs", post(start))
        .with_state(hub.clone())
        .merge(server.router());
    serve::serve(app, hub).await
}

/// Starts a job in the background and answers where to follow it.
async fn start(State(hub): State<Hub>) -> (StatusCode, Json<Value>) {
    let id = uuid::Uuid::now_v7().to_string();
    let topic = format!("/jobs/{id}");
    tokio::spawn(run(hub, topic.clone()));
    (
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "topic": topic })),
    )
}

/// The job: some work per step, a `progress` event after each, the result
/// last. Each publish returns once the update is in the history, so a page
/// that subscribes later, or comes back after a reload, still gets it.
async fn run(hub: Hub, topic: String) {
    let mut records = 0u64;
    for step in 1..=STEPS {
        tokio::time::sleep(STEP).await; // the "work"
        records += u64::from(step) * 100;
        let progress = json!({
            "step": step,
            "steps": STEPS,
            "percent": step * 100 / STEPS,
            "message": format!("chunk {step} of {STEPS}: {records} records so far"),
        });
        let update = Update::new(&topic, progress.to_string()).event_type("progress");
        if hub.publish(update).await.is_err() {
            return; // shutting down
        }
    }
    let done = json!({ "result": format!("{records} records imported") });
    let _ = hub
        .publish(Update::new(&topic, done.to_string()).event_type("done"))
        .await;
}
