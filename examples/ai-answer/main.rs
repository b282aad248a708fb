//! A streamed AI answer, resumable: the pattern chat apps need.
//!
//! ```sh
//! cargo run -p tidings-examples --example ai-answer    # then open http://127.0.0.1:3000/
//! ```
//!
//! `POST /answers` (a form with `question`) starts an answer and tells its
//! topic, `/answers/{id}`. A generator (simulated and deterministic, where a
//! language model would be) publishes the answer token by token as `token`
//! events, then a `done` event. Every token is kept in the hub's history, so:
//!
//! - a reload in the middle resumes after the last token the tab showed
//!   (`Last-Event-ID`, saved in `sessionStorage` with the text), and the
//!   answer reads exactly once, nothing lost or doubled;
//! - a second tab on the same answer replays it from its first token and
//!   then follows it live, so both show the same text;
//! - the generator never waits for a reader: it runs once, whoever watches.
//!
//! `LISTEN=127.0.0.1:0` picks a free port.

#[path = "../serve.rs"]
mod serve;

use std::time::Duration;

use axum::Router;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::json;
use tidings_hub::{Hub, Update};
use tidings_server::{Config, Server, Storage};

/// The pause between tokens, as a model takes to write them.
const TOKEN_DELAY: Duration = Duration::from_millis(100);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::new(Config {
        storage: Storage::Memory,
        ..Config::default()
    })?;
    let hub = server.hub().clone();
    let app = Router::new()
        .route("/", get(|| async { Html(include_str!("page.html")) }))
        .route("/answers", post(ask))
        .with_state(hub.clone())
        .merge(server.router());
    serve::serve(app, hub).await
}

#[derive(serde::Deserialize)]
struct Question {
    question: String,
}

/// Starts an answer and says which topic it streams to.
async fn ask(State(hub): State<Hub>, Form(Question { question }): Form<Question>) -> Response {
    let question = question.trim().to_owned();
    if question.is_empty() || question.len() > 500 {
        let message = "ask a question of 1 to 500 bytes\n";
        return (StatusCode::BAD_REQUEST, message).into_response();
    }
    let id = uuid::Uuid::now_v7().to_string();
    let topic = format!("/answers/{id}");
    tokio::spawn(generate(hub, topic.clone(), question));
    (
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "topic": topic })),
    )
        .into_response()
}

/// Streams the answer: one `token` event per token, then `done`.
async fn generate(hub: Hub, topic: String, question: String) {
    let tokens = answer(&question);
    for token in &tokens {
        tokio::time::sleep(TOKEN_DELAY).await;
        let update = Update::new(&topic, token.as_str()).event_type("token");
        if hub.publish(update).await.is_err() {
            return; // shutting down
        }
    }
    let done = json!({ "tokens": tokens.len() });
    let _ = hub
        .publish(Update::new(&topic, done.to_string()).event_type("done"))
        .await;
}

/// The "model": the same question always gets the same answer, split into
/// tokens that carry their leading space (as a tokenizer's do).
fn answer(question: &str) -> Vec<String> {
    let text = format!(
        "You asked: \u{201c}{question}\u{201d}. Here is a simulated answer, streamed one token \
         at a time the way a language model writes it. Each token is an update on this \
         answer's own topic, kept in the hub's history.\nReload the page now: it resumes \
         after the last token it showed, so nothing is lost and nothing is doubled. Open the \
         same link in a second tab: it replays the answer from the start, then follows it \
         live. Every reader sees the same text."
    );
    let mut tokens = Vec::new();
    for (i, word) in text.split(' ').enumerate() {
        tokens.push(if i == 0 {
            word.to_owned()
        } else {
            format!(" {word}")
        });
    }
    tokens
}
