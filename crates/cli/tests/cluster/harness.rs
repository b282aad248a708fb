//! What the cluster tests share: real `tidings serve` processes on loopback
//! ports sharing a `redis-server` of the test's own, publishers, and
//! collectors that read event streams, reconnecting to another node with
//! `Last-Event-ID` when a stream ends.
//!
//! Every wait is bounded: a test waits for what it expects, with a deadline.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tidings_codec::{Decoder, Item};
use tidings_server::{Algorithm, KeyMaterial, MintClaims};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(crate) use crate::nats_server::NatsCluster;
pub(crate) use crate::redis_server::RedisServer;

/// The longest a test waits for any one thing it expects.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// The nodes' shared JWT key.
pub(crate) const SECRET: &str = "tidings-cluster-test-secret-0123456789";

/// A token for `publish` and `subscribe` selectors.
pub(crate) fn token(publish: &[&str], subscribe: &[&str]) -> String {
    let claims = MintClaims {
        publish: Some(publish.iter().map(|s| (*s).to_owned()).collect()),
        subscribe: Some(subscribe.iter().map(|s| (*s).to_owned()).collect()),
        payload: None,
        ttl: Some(Duration::from_secs(3600)),
        draft08: None,
    };
    tidings_server::mint(
        &KeyMaterial::Secret(SECRET.into()),
        Algorithm::HS256,
        &claims,
    )
    .unwrap()
}

/// A publisher's token for every topic.
pub(crate) fn publisher() -> String {
    token(&["*"], &[])
}

/// One `tidings serve` of a cluster.
pub(crate) struct Node {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// The node's id in the cluster, from its banner.
    pub(crate) id: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Node {
    /// Starts a node on `redis` with `prefix` and extra flags, and waits for
    /// its banner (not for readiness: see [`Node::wait_ready`]).
    pub(crate) fn start(redis: &RedisServer, prefix: &str, extra: &[&str]) -> Node {
        Node::start_on(&redis.url(), prefix, extra, &[])
    }

    /// Starts a node on the Redis at `url`, with extra flags and environment.
    pub(crate) fn start_on(url: &str, prefix: &str, extra: &[&str], env: &[(&str, &str)]) -> Node {
        Node::start_with(&["--redis", url, "--redis-prefix", prefix], extra, env)
    }

    /// Starts a node on a JetStream stream of `nats` with three replicas.
    pub(crate) fn start_nats(nats: &NatsCluster, stream: &str, extra: &[&str]) -> Node {
        let urls = nats.urls();
        let replicas = nats.len().min(3).to_string();
        Node::start_with(
            &[
                "--nats",
                &urls,
                "--nats-stream",
                stream,
                "--nats-replicas",
                &replicas,
            ],
            extra,
            &[],
        )
    }

    /// Starts a node with the engine's flags, extra flags and environment.
    pub(crate) fn start_with(engine: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serve.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("TIDINGS_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(engine)
            .args(["--jwt-key", SECRET, "--anonymous", "--keep-alive", "1s"])
            .args(["--publish-timeout", "2s"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("run tidings serve");
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines_tx.send(line);
            }
        });
        let (mut url, mut id) = (String::new(), String::new());
        let deadline = Instant::now() + WAIT;
        while url.is_empty() || id.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no banner from tidings serve; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
            if let Some(address) = line.strip_prefix("Tidings hub listening on ") {
                url = address.trim().to_owned();
            } else if let Some((_, node)) = line.split_once("this node ") {
                id = node.trim().to_owned();
            }
        }
        Node {
            child,
            url,
            id,
            log,
            _dir: dir,
        }
    }

    /// Waits until `/readyz` answers a text containing `says` (a cause of
    /// not being ready, say); `None` if it has not within the wait.
    pub(crate) async fn readyz_saying(
        &self,
        client: &reqwest::Client,
        says: &str,
    ) -> Option<String> {
        wait_for(|| async {
            let reply = client
                .get(format!("{}/readyz", self.url))
                .send()
                .await
                .ok()?;
            let text = reply.text().await.ok()?;
            text.contains(says).then_some(text)
        })
        .await
    }

    /// Waits until `/readyz` answers 200.
    pub(crate) async fn wait_ready(&self, client: &reqwest::Client) {
        let ready = wait_for(|| async {
            let reply = client
                .get(format!("{}/readyz", self.url))
                .send()
                .await
                .ok()?;
            (reply.status() == StatusCode::OK).then_some(())
        })
        .await;
        assert!(
            ready.is_some(),
            "{} is not ready; log:\n{}",
            self.url,
            self.log()
        );
    }

    /// What the node logged.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`: the node dies without a word.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `n` nodes and waits until each is ready.
pub(crate) async fn cluster(
    redis: &RedisServer,
    prefix: &str,
    n: usize,
    extra: &[&str],
    client: &reqwest::Client,
) -> Vec<Node> {
    let nodes: Vec<Node> = (0..n).map(|_| Node::start(redis, prefix, extra)).collect();
    for node in &nodes {
        node.wait_ready(client).await;
    }
    nodes
}

/// Calls `probe` until it answers `Some`, for at most [`WAIT`].
pub(crate) async fn wait_for<T, F, Fut>(mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if let Some(value) = probe().await {
            return Some(value);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .pool_max_idle_per_host(8)
        .build()
        .unwrap()
}

/// Publishes one update; the status and the body (the id on success).
pub(crate) async fn publish(
    client: &reqwest::Client,
    node: &str,
    fields: &[(&str, &str)],
) -> Result<(StatusCode, String), reqwest::Error> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let reply = client
        .post(format!("{node}/.well-known/mercure"))
        .bearer_auth(publisher())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    let status = reply.status();
    Ok((status, reply.text().await?))
}

/// What a publisher got: the ids acknowledged (200) and the refusals.
#[derive(Debug, Default)]
pub(crate) struct Published {
    pub(crate) acked: Vec<String>,
    pub(crate) refused: Vec<(Option<StatusCode>, Duration)>,
}

/// Publishes `count` updates on `topic` to `node`, one after the other.
pub(crate) fn publisher_task(
    client: reqwest::Client,
    node: String,
    topic: &'static str,
    count: usize,
) -> JoinHandle<Published> {
    tokio::spawn(async move {
        let mut published = Published::default();
        for i in 0..count {
            let started = Instant::now();
            match publish(
                &client,
                &node,
                &[("topic", topic), ("data", &i.to_string())],
            )
            .await
            {
                Ok((StatusCode::OK, id)) => published.acked.push(id),
                Ok((status, _)) => published.refused.push((Some(status), started.elapsed())),
                Err(_) => published.refused.push((None, started.elapsed())),
            }
        }
        published
    })
}

/// What a collector read.
#[derive(Debug, Default, Clone)]
pub(crate) struct Collected {
    /// Event ids in the order received, across reconnects.
    pub(crate) ids: Vec<String>,
    /// Their data, in the same order.
    pub(crate) data: Vec<String>,
    /// Times a stream ended and the collector reconnected.
    pub(crate) reconnects: usize,
    /// Responses that carried the history-gap header.
    pub(crate) gaps: usize,
    /// Comments other than the empty keep-alive.
    pub(crate) comments: Vec<String>,
    /// Empty keep-alive comments.
    pub(crate) keep_alives: usize,
}

/// Reads a stream, reconnecting round-robin over `nodes` with the last id
/// seen, until every id in the finishing set has been seen.
pub(crate) struct Collector {
    state: Arc<Mutex<Collected>>,
    until: watch::Sender<Option<Arc<HashSet<String>>>>,
    task: JoinHandle<()>,
}

impl Collector {
    pub(crate) fn start(nodes: Vec<String>, query: &str, token: Option<String>) -> Collector {
        let state = Arc::new(Mutex::new(Collected::default()));
        let (until, until_rx) = watch::channel(None);
        let task = tokio::spawn(collect(
            nodes,
            query.to_owned(),
            token,
            state.clone(),
            until_rx,
        ));
        Collector { state, until, task }
    }

    /// What has been read so far.
    pub(crate) fn now(&self) -> Collected {
        self.state.lock().unwrap().clone()
    }

    /// Waits until `probe` holds for what has been read.
    pub(crate) async fn wait(&self, what: &str, probe: impl Fn(&Collected) -> bool) {
        let met = wait_for(|| async { probe(&self.now()).then_some(()) }).await;
        assert!(
            met.is_some(),
            "{what}: not within {WAIT:?}; read {:?}",
            self.now()
        );
    }

    /// Waits until every id of `expected` is read, then stops.
    pub(crate) async fn finish(self, expected: &HashSet<String>) -> Collected {
        let _ = self.until.send(Some(Arc::new(expected.clone())));
        let done = tokio::time::timeout(WAIT, &mut { self.task }).await;
        let collected = self.state.lock().unwrap().clone();
        assert!(
            done.is_ok(),
            "not every acknowledged update arrived within {WAIT:?}: {} of {} read, missing e.g. {:?}",
            collected.ids.len(),
            expected.len(),
            expected.iter().find(|id| !collected.ids.contains(id))
        );
        collected
    }
}

async fn collect(
    nodes: Vec<String>,
    query: String,
    token: Option<String>,
    state: Arc<Mutex<Collected>>,
    until: watch::Receiver<Option<Arc<HashSet<String>>>>,
) {
    let client = reqwest::Client::new();
    let done = |state: &Mutex<Collected>| {
        let expected = until.borrow().clone();
        expected.is_some_and(|expected| {
            let state = state.lock().unwrap();
            let seen: HashSet<&String> = state.ids.iter().collect();
            expected.iter().all(|id| seen.contains(id))
        })
    };
    let mut node = 0;
    loop {
        let mut request = client
            .get(format!(
                "{}/.well-known/mercure?{query}",
                nodes[node % nodes.len()]
            ))
            .header("accept", "text/event-stream");
        if let Some(last) = state.lock().unwrap().ids.last() {
            request = request.header("last-event-id", last.as_str());
        }
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        if let Ok(mut response) = request.send().await
            && response.status() == StatusCode::OK
        {
            if response
                .headers()
                .contains_key(tidings_server::HISTORY_GAP_HEADER)
            {
                state.lock().unwrap().gaps += 1;
            }
            let mut decoder = Decoder::new();
            loop {
                let chunk = tokio::select! {
                    chunk = response.chunk() => chunk,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {
                        if done(&state) { return; }
                        continue;
                    }
                };
                let Ok(Some(chunk)) = chunk else { break };
                let mut read = state.lock().unwrap();
                for item in decoder.feed(&chunk) {
                    match item {
                        Item::Event(event) => {
                            read.ids.push(event.id);
                            read.data.push(event.data);
                        }
                        Item::Comment(text) if text.trim().is_empty() => read.keep_alives += 1,
                        Item::Comment(text) => read.comments.push(text),
                        _ => {}
                    }
                }
                drop(read);
                if done(&state) {
                    return;
                }
            }
        }
        if done(&state) {
            return;
        }
        // The stream ended or was refused: resume on the next node.
        state.lock().unwrap().reconnects += 1;
        node += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every acknowledged id of `published`.
pub(crate) fn acked(published: &[Published]) -> HashSet<String> {
    published
        .iter()
        .flat_map(|p| p.acked.iter().cloned())
        .collect()
}

/// Asserts `ids` has no id twice.
pub(crate) fn assert_once(ids: &[String], who: &str) {
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{who} received an update twice");
}
