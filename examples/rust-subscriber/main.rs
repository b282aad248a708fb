//! A Rust program that follows a topic and never loses its place, even
//! across its own restarts.
//!
//! ```sh
//! cargo run -p tidings-examples --example rust-subscriber -- http://127.0.0.1:3000/.well-known/mercure demo
//! ```
//!
//! Arguments: the hub's URL and a topic (default `demo`); `--state FILE`
//! (default `./last-event-id`) is where the id of the last event printed is
//! kept. Each event is printed as one line, `ID<TAB>TYPE<TAB>DATA` (newlines
//! in the data as `\n`). `tidings-client` reconnects and resumes by itself
//! while the program runs; the saved id makes a restart resume too: the hub
//! replays what was published while the program was down. A token, if the
//! hub wants one, comes from `TIDINGS_TOKEN`.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use tidings_client::{EventSource, StreamItem};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut state = PathBuf::from("last-event-id");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--state" => state = args.next().ok_or("--state needs a file")?.into(),
            _ => positional.push(arg),
        }
    }
    let hub = positional
        .first()
        .ok_or("usage: rust-subscriber HUB_URL [TOPIC] [--state FILE]")?;
    let topic = positional.get(1).map_or("demo", String::as_str);

    let mut url = tidings_client::Url::parse(hub).map_err(|e| format!("{hub}: {e}"))?;
    url.query_pairs_mut().append_pair("topic", topic);
    let mut builder = EventSource::builder(url.as_str());
    // Where the last run stopped, if it ran before.
    if let Some(id) = read_state(&state)? {
        eprintln!("resuming after {id}");
        builder = builder.last_event_id(id);
    }
    if let Ok(token) = std::env::var("TIDINGS_TOKEN") {
        builder = builder.header("Authorization", format!("Bearer {token}"));
    }
    let mut events = builder.build()?;

    loop {
        let item = tokio::select! {
            item = events.next() => item,
            _ = tokio::signal::ctrl_c() => break,
        };
        match item {
            Some(Ok(StreamItem::Open { url })) => eprintln!("connected to {url}"),
            Some(Ok(StreamItem::Event(event))) => {
                let data = event.data.replace('\n', "\\n");
                println!("{}\t{}\t{data}", event.id, event.event_type);
                // Saved after printing: a crash in between prints an event
                // twice on restart, never skips one.
                write_state(&state, &event.id)?;
            }
            Some(Ok(StreamItem::Reconnecting { delay, error })) => {
                eprintln!("{error}; reconnecting in {delay:?}");
            }
            Some(Ok(_)) => {}
            // A refusal (a bad token, say): reconnecting would not help.
            Some(Err(error)) => return Err(error.into()),
            None => break,
        }
    }
    Ok(())
}

fn read_state(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(id) if !id.trim().is_empty() => Ok(Some(id.trim().to_owned())),
        Ok(_) => Ok(None),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Writes the id to a temporary file and renames it over the old one, so the
/// file always holds a whole id, whenever the program is stopped.
fn write_state(path: &Path, id: &str) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, format!("{id}\n"))?;
    std::fs::rename(&temporary, path)
}
