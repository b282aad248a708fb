//! `tidings subscribe`: follow a stream in the terminal.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use tidings_client::{Error, EventSource, StreamItem};

/// Follow an event stream, printing each event; reconnects and resumes with
/// Last-Event-ID unless --no-reconnect.
///
/// Exit codes: 0 after --max-events events, at the end of the stream with
/// --no-reconnect, or when the server says stop (204); 1 when --timeout
/// passes before --max-events; 2 when the stream fails (wrong status or
/// content type, bad URL, connection lost with --no-reconnect).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The stream URL (with --topic: the hub's URL, e.g. http://127.0.0.1:3000/.well-known/mercure).
    url: String,
    /// A Mercure draft-07 topic or URI template to subscribe to (repeatable);
    /// added to the URL's query as topic=.
    #[arg(long)]
    topic: Vec<String>,
    /// A Mercure draft-08 exact topic (* for every topic) to subscribe to
    /// (repeatable); added as match=.
    #[arg(long = "match", value_name = "TOPIC")]
    match_exact: Vec<String>,
    /// A Mercure draft-08 URL pattern to subscribe to, like
    /// https://example.com/books/:id (repeatable); added as match_urlpattern=.
    #[arg(long, value_name = "PATTERN")]
    match_urlpattern: Vec<String>,
    /// Resume after this event id (`earliest` replays a Mercure hub's history).
    #[arg(long)]
    last_event_id: Option<String>,
    /// An extra request header, "Name: value" (repeatable).
    #[arg(long, short = 'H')]
    header: Vec<String>,
    /// A JWT, sent as Authorization: Bearer.
    #[arg(long, env = "TIDINGS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print JSON lines {"type","data","id"} instead of readable text.
    #[arg(long)]
    json: bool,
    /// Exit at the end of the stream instead of reconnecting.
    #[arg(long)]
    no_reconnect: bool,
    /// Exit 0 after this many events.
    #[arg(long)]
    max_events: Option<u64>,
    /// Give up after this many seconds.
    #[arg(long)]
    timeout: Option<f64>,
    /// Reconnect when nothing (not even a keep-alive) arrives for this many seconds.
    #[arg(long)]
    read_timeout: Option<f64>,
    #[command(flatten)]
    tls: crate::tls::TlsArgs,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(follow(args))
}

/// The URL with `name=value` selector parameters appended (`topic`,
/// `match`, `match_urlpattern`).
fn stream_url(url: &str, selectors: &[(&str, &[String])]) -> anyhow::Result<String> {
    let mut url = url::Url::parse(url).with_context(|| format!("invalid URL {url:?}"))?;
    if selectors.iter().any(|(_, values)| !values.is_empty()) {
        let mut query = url.query_pairs_mut();
        for (name, values) in selectors {
            for value in *values {
                query.append_pair(name, value);
            }
        }
    }
    Ok(url.into())
}

async fn follow(args: Args) -> anyhow::Result<ExitCode> {
    let url = stream_url(
        &args.url,
        &[
            ("topic", &args.topic),
            ("match", &args.match_exact),
            ("match_urlpattern", &args.match_urlpattern),
        ],
    )?;
    let mut builder = EventSource::builder(&url);
    for header in &args.header {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("--header {header:?} must look like \"Name: value\""))?;
        builder = builder.header(name.trim(), value.trim());
    }
    if let Some(token) = &args.token {
        builder = builder.header("Authorization", format!("Bearer {token}"));
    }
    if let Some(id) = &args.last_event_id {
        builder = builder.last_event_id(id);
    }
    if let Some(seconds) = args.read_timeout {
        builder = builder.read_timeout(seconds_arg(seconds, "--read-timeout")?);
    }
    for pem in args.tls.roots()? {
        builder = builder.root_certificate(pem);
    }
    builder = builder.danger_accept_invalid_certificates(args.tls.insecure());
    let mut source = builder.build().context("cannot start the stream")?;
    let deadline = args
        .timeout
        .map(|s| seconds_arg(s, "--timeout"))
        .transpose()?;
    let followed = follow_events(&mut source, &args);
    match deadline {
        Some(limit) => match tokio::time::timeout(limit, followed).await {
            Ok(outcome) => outcome,
            Err(_) => {
                eprintln!("tidings: timed out after {:?}", limit);
                Ok(if args.max_events.is_some() {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                })
            }
        },
        None => followed.await,
    }
}

async fn follow_events(source: &mut EventSource, args: &Args) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    let mut seen = 0u64;
    if args.max_events == Some(0) {
        return Ok(ExitCode::SUCCESS);
    }
    while let Some(item) = source.next().await {
        match item {
            Ok(StreamItem::Open { url }) => eprintln!("tidings: connected to {url}"),
            Ok(StreamItem::Event(event)) => {
                let line = if args.json {
                    serde_json::to_string(&JsonEvent {
                        event_type: &event.event_type,
                        data: &event.data,
                        id: &event.id,
                    })?
                } else {
                    readable(&event)
                };
                if writeln!(stdout, "{line}")
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    return Ok(ExitCode::SUCCESS); // The reader went away (`| head`).
                }
                seen += 1;
                if args.max_events.is_some_and(|max| seen >= max) {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Ok(StreamItem::Reconnecting { delay, error }) => {
                if args.no_reconnect {
                    source.close();
                    return Ok(match error {
                        Error::Ended => ExitCode::SUCCESS,
                        error => {
                            eprintln!("tidings: {:#}", anyhow::Error::from(error));
                            ExitCode::from(2)
                        }
                    });
                }
                eprintln!(
                    "tidings: {:#}; reconnecting in {delay:.1?} (last event id {:?})",
                    anyhow::Error::from(error),
                    source.last_event_id()
                );
            }
            Ok(StreamItem::EventDropped(error)) => eprintln!("tidings: {error}"),
            Ok(_) => {}
            Err(error) => {
                eprintln!("tidings: {:#}", anyhow::Error::from(error));
                return Ok(ExitCode::from(2));
            }
        }
    }
    // The server answered 204: stop.
    Ok(ExitCode::SUCCESS)
}

/// One `--json` line, fields in the order `tidings decode` prints them.
#[derive(serde::Serialize)]
struct JsonEvent<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    data: &'a str,
    id: &'a str,
}

fn readable(event: &tidings_client::MessageEvent) -> String {
    let mut out = String::new();
    if !event.id.is_empty() {
        out.push_str(&format!("id: {}\n", event.id));
    }
    if event.event_type != "message" {
        out.push_str(&format!("event: {}\n", event.event_type));
    }
    out.push_str(&event.data);
    out.push('\n');
    out
}

fn seconds_arg(seconds: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| anyhow::anyhow!("{flag} must be a positive number of seconds"))
}
