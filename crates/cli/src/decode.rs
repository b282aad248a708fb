//! `tidings decode`: a captured `text/event-stream` in, JSON lines out.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use tidings_codec::{Decoder, Finish, Item};

/// Decode a captured event stream into one JSON object per line.
///
/// Each dispatched event prints as {"type":…,"data":…,"id":…}, where id is the
/// last event id at dispatch. Invalid UTF-8 is decoded lossily, as a browser does.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The captured stream; standard input when absent or `-`.
    file: Option<PathBuf>,
    /// Also print comments as {"comment":…} and accepted retry values as {"retry":N}, in stream order.
    #[arg(long)]
    all: bool,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Line<'a> {
    Event {
        #[serde(rename = "type")]
        event_type: &'a str,
        data: &'a str,
        id: &'a str,
    },
    Comment {
        comment: &'a str,
    },
    Retry {
        retry: u128,
    },
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (mut input, name): (Box<dyn Read>, String) = match &args.file {
        Some(path) if path.as_os_str() != "-" => {
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            (Box::new(file), path.display().to_string())
        }
        _ => (Box::new(io::stdin().lock()), "standard input".to_owned()),
    };
    let stdout = io::stdout().lock();
    let mut out = BufWriter::new(stdout);
    let mut decoder = Decoder::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {name}")),
        };
        for item in decoder.feed(&buf[..n]) {
            print_item(&mut out, &item, args.all)?;
        }
        // Flush per read so `curl -N … | tidings decode` shows events as they come.
        flush(&mut out)?;
    }
    if decoder.finish() == Finish::DiscardedIncompleteEvent {
        eprintln!(
            "tidings: {name} ended inside an event (no closing blank line); it was discarded"
        );
    }
    flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

fn print_item(out: &mut impl Write, item: &Item, all: bool) -> anyhow::Result<()> {
    let line = match item {
        Item::Event(event) => Line::Event {
            event_type: &event.event_type,
            data: &event.data,
            id: &event.id,
        },
        Item::Comment(comment) if all => Line::Comment { comment },
        Item::Retry(retry) if all => Line::Retry {
            retry: retry.as_millis(),
        },
        Item::Error(error) => {
            eprintln!("tidings: {error}");
            return Ok(());
        }
        _ => return Ok(()),
    };
    let mut json = serde_json::to_vec(&line)?;
    json.push(b'\n');
    quiet_on_broken_pipe(out.write_all(&json))
}

fn flush(out: &mut impl Write) -> anyhow::Result<()> {
    quiet_on_broken_pipe(out.flush())
}

/// A reader that went away (`| head`) ends the program quietly, as Unix tools do.
fn quiet_on_broken_pipe(result: io::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => other.context("cannot write to standard output"),
    }
}
