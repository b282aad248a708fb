//! The cluster on NATS JetStream under failure: three real `nats-server`s
//! (a JetStream cluster, the stream with three replicas) and three real
//! `tidings serve` nodes, with publishers through different nodes and
//! subscribers on every node that resume with `Last-Event-ID` wherever
//! their stream ends. Each test counts what was acknowledged against what
//! every subscriber received, prints the figures, and holds the bar:
//! nothing acknowledged lost, nothing delivered twice, one order.
//!
//! - the stream's leader killed (`kill -9`) mid-stream;
//! - a Tidings node killed;
//! - the leader frozen (`SIGSTOP`) past the election timeout, then thawed;
//! - the whole NATS cluster restarted: readiness red, then green;
//! - a full publish load with one server down (quorum kept: no refusal),
//!   then a second down (quorum lost: 503 with Retry-After, never a silent
//!   loss).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::harness::{
    Collector, NatsCluster, Node, Published, acked, assert_once, client, publish, publisher,
    publisher_task, wait_for,
};

/// One of these tests at a time: each runs three NATS servers and three
/// nodes, and several at once on a 2-core machine stretch elections and
/// catch-ups past the waits.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Three NATS servers, three nodes on their stream `stream`, each ready, and
/// a subscriber on each node with its stream open.
async fn scene(stream: &str) -> (NatsCluster, reqwest::Client, Vec<Node>, Vec<Collector>) {
    let nats = NatsCluster::start(3);
    let client = client();
    let nodes = nodes(&nats, stream, &client).await;
    let collectors = subscribers(&nodes);
    opened(&collectors).await;
    (nats, client, nodes, collectors)
}

/// Three nodes on the cluster's stream `stream`, each ready.
async fn nodes(nats: &NatsCluster, stream: &str, client: &reqwest::Client) -> Vec<Node> {
    let nodes: Vec<Node> = (0..3)
        .map(|_| Node::start_nats(nats, stream, &[]))
        .collect();
    for node in &nodes {
        node.wait_ready(client).await;
    }
    nodes
}

/// A subscriber on each node that resumes on the next one when its stream
/// ends.
fn subscribers(nodes: &[Node]) -> Vec<Collector> {
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    (0..urls.len())
        .map(|i| {
            let mut order = urls.clone();
            order.rotate_left(i);
            Collector::start(order, "topic=t", None)
        })
        .collect()
}

async fn opened(collectors: &[Collector]) {
    for collector in collectors {
        collector
            .wait("the stream opens", |c| c.keep_alives + c.comments.len() > 0)
            .await;
    }
}

/// The server the stream's leader runs on, as a node's readiness says.
async fn leader(node: &Node, client: &reqwest::Client) -> String {
    node.readyz_saying(client, "leader n")
        .await
        .as_deref()
        .and_then(leader_in)
        .unwrap_or_else(|| panic!("no leader in {}/readyz; log:\n{}", node.url, node.log()))
}

/// The leader a readiness text names (`… leader n1, …`).
fn leader_in(readyz: &str) -> Option<String> {
    readyz
        .split("leader ")
        .nth(1)
        .and_then(|rest| rest.split([',', ';', ' ']).next())
        .map(str::to_owned)
}

/// Publishers through every node: `count` updates each, one at a time.
fn publishers(
    client: &reqwest::Client,
    nodes: &[Node],
    count: usize,
) -> Vec<tokio::task::JoinHandle<Published>> {
    (0..3)
        .map(|i| {
            publisher_task(
                client.clone(),
                nodes[i % nodes.len()].url.clone(),
                "t",
                count,
            )
        })
        .collect()
}

/// Like [`publishers`], but each waits 100 ms after a refusal, as an
/// application honouring `Retry-After` would, so that an outage of a few
/// seconds does not use up its updates.
fn patient_publishers(
    client: &reqwest::Client,
    nodes: &[Node],
    count: usize,
) -> Vec<tokio::task::JoinHandle<Published>> {
    (0..3)
        .map(|i| {
            let (client, node) = (client.clone(), nodes[i % nodes.len()].url.clone());
            tokio::spawn(async move {
                let mut published = Published::default();
                for n in 0..count {
                    let started = Instant::now();
                    let data = n.to_string();
                    match publish(&client, &node, &[("topic", "t"), ("data", &data)]).await {
                        Ok((StatusCode::OK, id)) => published.acked.push(id),
                        other => {
                            let status = other.ok().map(|(status, _)| status);
                            published.refused.push((status, started.elapsed()));
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                published
            })
        })
        .collect()
}

/// Waits until every subscriber has read every `expected` update; checks
/// each read none twice and all read one order (what one read beyond
/// another, updates stored but not acknowledged, may differ in length).
/// What each read.
async fn deliver(expected: &HashSet<String>, collectors: Vec<Collector>) -> Vec<Vec<String>> {
    let mut orders = Vec::new();
    for collector in collectors {
        let got = collector.finish(expected).await;
        assert_once(&got.ids, "a subscriber");
        orders.push(got.ids);
    }
    let shortest = orders.iter().map(Vec::len).min().unwrap_or(0);
    for order in &orders {
        assert_eq!(
            order[..shortest],
            orders[0][..shortest],
            "every subscriber on every node saw one order"
        );
    }
    orders
}

/// Waits for every publisher, then for every subscriber to read every
/// acknowledged update; checks the bar and prints the figures.
async fn settle(
    what: &str,
    publishers: Vec<tokio::task::JoinHandle<Published>>,
    collectors: Vec<Collector>,
) -> (usize, usize) {
    let mut published = Vec::new();
    for publisher in publishers {
        published.push(publisher.await.unwrap());
    }
    let expected = acked(&published);
    let refused: usize = published.iter().map(|p| p.refused.len()).sum();
    let orders = deliver(&expected, collectors).await;
    let delivered: Vec<usize> = orders.iter().map(Vec::len).collect();
    println!(
        "{what}: {} acknowledged, {refused} refused (503, not acknowledged); delivered to each of {} subscribers: {delivered:?}; 0 acknowledged lost, 0 duplicated",
        expected.len(),
        orders.len()
    );
    (expected.len(), refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_leader_killed_mid_stream_loses_nothing_acknowledged() {
    let _serial = SERIAL.lock().await;
    let (mut nats, client, nodes, collectors) = scene("leader-kill").await;
    let publishers = patient_publishers(&client, &nodes, 600);
    collectors[0]
        .wait("a third of the updates arrive", |c| c.ids.len() >= 600)
        .await;
    let leader = leader(&nodes[0], &client).await;
    let killed_at = Instant::now();
    nats.kill(nats.index_of(&leader));
    // The first publish acknowledged after the kill, through any node.
    let recovered = wait_for(|| async {
        let (status, _) = publish(&client, &nodes[1].url, &[("topic", "t"), ("data", "probe")])
            .await
            .ok()?;
        (status == StatusCode::OK).then_some(killed_at.elapsed())
    })
    .await
    .expect("a publish is acknowledged again after the election");
    println!("leader {leader} killed: first publish acknowledged again after {recovered:?}");
    let (acknowledged, _) = settle("stream leader kill -9", publishers, collectors).await;
    assert!(
        acknowledged >= 1200,
        "most publishes went through: {acknowledged}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_s_subscribers_resume_on_another_exactly_once() {
    let _serial = SERIAL.lock().await;
    let (_nats, client, nodes, collectors) = scene("node-kill").await;
    // Publishers through the two nodes that stay.
    let publishers: Vec<_> = (0..3)
        .map(|i| publisher_task(client.clone(), nodes[1 + i % 2].url.clone(), "t", 600))
        .collect();
    collectors[1]
        .wait("a third of the updates arrive", |c| c.ids.len() >= 600)
        .await;
    let mut nodes = nodes.into_iter();
    nodes.next().unwrap().kill();
    let (acknowledged, refused) = settle("tidings node kill -9", publishers, collectors).await;
    assert_eq!(
        (acknowledged, refused),
        (1800, 0),
        "every publish acknowledged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_cut_off_past_the_election_timeout_then_back_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let (mut nats, client, nodes, collectors) = scene("freeze").await;
    let publishers = publishers(&client, &nodes, 500);
    collectors[2]
        .wait("a fifth of the updates arrive", |c| c.ids.len() >= 300)
        .await;
    let leader = leader(&nodes[0], &client).await;
    let frozen = nats.index_of(&leader);
    nats.freeze(frozen);
    // Longer than JetStream's election timeout (a few seconds): the others
    // elect a new leader while this one still thinks it leads.
    let others: Vec<&Node> = nodes.iter().collect();
    let elected = wait_for(|| async {
        for node in &others {
            let now = leader_now(node, &client).await?;
            if now != leader {
                return Some(now);
            }
        }
        None
    })
    .await
    .expect("another server leads while the leader is cut off");
    println!("leader {leader} frozen; {elected} elected");
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.thaw(frozen);
    settle(
        "stream leader SIGSTOP, then SIGCONT",
        publishers,
        collectors,
    )
    .await;
}

/// The leader a node's readiness names now, if it names one.
async fn leader_now(node: &Node, client: &reqwest::Client) -> Option<String> {
    let text = client
        .get(format!("{}/readyz", node.url))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    leader_in(&text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_nats_cluster_restarted_nodes_recover_and_nothing_acknowledged_is_lost() {
    let _serial = SERIAL.lock().await;
    let (mut nats, client, nodes, collectors) = scene("restart").await;
    let before = publishers(&client, &nodes, 100);
    let mut published = Vec::new();
    for publisher in before {
        published.push(publisher.await.unwrap());
    }
    for i in 0..3 {
        nats.kill(i);
    }
    for node in &nodes {
        assert!(
            node.readyz_saying(&client, "cannot").await.is_some()
                || node.readyz_saying(&client, "not ready").await.is_some(),
            "{} stays ready with no NATS server",
            node.url
        );
    }
    let (status, _) = publish(&client, &nodes[0].url, &[("topic", "t"), ("data", "down")])
        .await
        .unwrap();
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "refused while NATS is down"
    );
    for i in 0..3 {
        nats.restart(i);
    }
    for node in &nodes {
        node.wait_ready(&client).await;
    }
    let after = publishers(&client, &nodes, 100);
    for publisher in after {
        published.push(publisher.await.unwrap());
    }
    let expected = acked(&published);
    assert_eq!(
        expected.len(),
        600,
        "every publish while NATS was up was acknowledged"
    );
    let orders = deliver(&expected, collectors).await;
    assert!(
        orders.iter().all(|o| *o == orders[0]),
        "one order, the same length"
    );
    println!(
        "whole NATS cluster restarted: 600 acknowledged, delivered to each of 3 subscribers: {}; 0 acknowledged lost, 0 duplicated",
        orders[0].len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_down_refuses_nothing_and_a_lost_quorum_answers_503_retry_after() {
    let _serial = SERIAL.lock().await;
    let (mut nats, client, nodes, collectors) = scene("quorum").await;
    // One server down that does not lead the stream: the quorum holds, so
    // no publish of a full load may be refused.
    let leader = leader(&nodes[0], &client).await;
    let follower = (0..3).find(|&i| format!("n{i}") != leader).unwrap();
    nats.kill(follower);
    let load = publishers(&client, &nodes, 800);
    let mut published = Vec::new();
    for publisher in load {
        published.push(publisher.await.unwrap());
    }
    let refused: usize = published.iter().map(|p| p.refused.len()).sum();
    assert_eq!(
        refused, 0,
        "one server down, the quorum holds: nothing refused"
    );
    // A second server down: no quorum, and a publish says so.
    let second = (0..3)
        .find(|&i| i != follower && format!("n{i}") != leader)
        .unwrap();
    nats.kill(second);
    let reply = client
        .post(format!("{}/.well-known/mercure", nodes[0].url))
        .bearer_auth(publisher())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("topic=t&data=no+quorum")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reply.headers().contains_key("retry-after"),
        "503 with Retry-After"
    );
    let said = reply.text().await.unwrap();
    println!("quorum lost: 503 {said}");
    nats.restart(second);
    nats.restart(follower);
    for node in &nodes {
        node.wait_ready(&client).await;
    }
    let expected = acked(&published);
    assert_eq!(expected.len(), 2400);
    deliver(&expected, collectors).await;
    println!(
        "full load with one NATS server down: 2400 acknowledged, 0 refused; delivered to each of 3 subscribers; 0 acknowledged lost, 0 duplicated"
    );
}
