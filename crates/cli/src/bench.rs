//! `tidings bench`: load-test any SSE server.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tidings_bench::{BenchConfig, Publish, PublishFormat};

/// Load-test an SSE server: open N subscribers to URL, publish updates at a
/// steady rate, and report deliveries/s, publish→receive latency, loss and
/// (with --server-pid) the server's memory per idle subscriber.
///
/// Example against a local hub:
///   tidings bench 'http://127.0.0.1:3000/.well-known/mercure?topic=bench' \
///     --publish-url http://127.0.0.1:3000/.well-known/mercure --topic bench --token $TOKEN
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The subscription URL (http://…, the full query included); `{n}` in it
    /// becomes each subscriber's number, e.g. `?topic=user/{n}` for a topic each.
    /// Several URLs (the nodes of a cluster) are taken in turn.
    #[arg(required = true, num_args = 1..)]
    url: Vec<String>,
    /// Subscribers to open.
    #[arg(long, short = 'n', default_value_t = 100)]
    subscribers: usize,
    /// Where to POST updates; without it only idle connections are measured.
    /// Repeat it to spread publishing connections over several nodes.
    #[arg(long)]
    publish_url: Vec<String>,
    /// Publish as Mercure form fields on this topic (otherwise the data is the raw body).
    /// `{n}` in it (or in the publish URL) sends update i to topic i % subscribers.
    #[arg(long)]
    topic: Option<String>,
    /// Publish to Pushpin's publish API (`POST …/publish/`) on this channel.
    #[arg(long, conflicts_with = "topic")]
    grip_channel: Option<String>,
    /// A resume storm: publish --updates (and one more), then reconnect every
    /// subscriber at once with the Last-Event-ID of that one more, and time
    /// until all have caught up.
    #[arg(long)]
    storm: bool,
    /// Subscribers connecting at once.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// Bearer token for publishing.
    #[arg(long, env = "TIDINGS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Updates to publish.
    #[arg(long, default_value_t = 1000)]
    updates: usize,
    /// Updates per second.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Bytes of padding in each update.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// The server's process ids, comma-separated, to measure its memory (summed).
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Concurrent publishing connections sharing the updates and the rate.
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Seconds to wait for the last deliveries.
    #[arg(long, default_value_t = 10)]
    drain_timeout: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args
        .url
        .iter()
        .chain(&args.publish_url)
        .any(|u| u.starts_with("https://"))
    {
        eprintln!("tidings bench: https:// certificates are not checked (a loopback benchmark)");
    }
    let mut config = BenchConfig::new(&args.url[0])?;
    for url in &args.url[1..] {
        config.also_subscribe(url)?;
    }
    config.subscribers = args.subscribers;
    config.updates = args.updates;
    config.rate = args.rate;
    config.payload = args.payload;
    config.server_pids = args.server_pid;
    config.publishers = args.publishers;
    config.drain_timeout = Duration::from_secs(args.drain_timeout);
    config.connect_concurrency = args.connect_concurrency;
    if let Some(url) = args.publish_url.first() {
        let format = match (args.topic, args.grip_channel) {
            (Some(topic), _) => PublishFormat::Mercure { topic },
            (None, Some(channel)) => PublishFormat::Grip { channel },
            (None, None) => PublishFormat::Raw,
        };
        let mut publish = Publish::new(url, format)?;
        for url in &args.publish_url[1..] {
            publish = publish.also(url)?;
        }
        if let Some(token) = &args.token {
            publish = publish.token(token);
        }
        config.publish = Some(publish);
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    if args.storm {
        let report = runtime.block_on(tidings_bench::run_storm(&config))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!("subscribers          {}", report.subscribers);
            println!("each resumed behind  {} updates", report.behind);
            println!(
                "deliveries           {} of {} ({} lost)",
                report.deliveries, report.expected_deliveries, report.lost
            );
            println!("all caught up in     {:.3} s", report.seconds);
        }
        return Ok(if report.lost == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let report = runtime.block_on(tidings_bench::run(&config))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("subscribers          {}", report.subscribers);
        if let Some(per) = report.server_bytes_per_idle_subscriber {
            println!("server memory        {:.0} bytes per idle subscriber", per);
        }
        println!("published            {}", report.published);
        println!(
            "deliveries           {} of {} ({} lost)",
            report.deliveries, report.expected_deliveries, report.lost
        );
        println!("deliveries/s         {:.0}", report.deliveries_per_sec);
        let l = &report.latency_us;
        println!(
            "latency µs           p50 {} p90 {} p99 {} p99.9 {} max {}",
            l.p50, l.p90, l.p99, l.p999, l.max
        );
    }
    Ok(if report.lost == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
