//! The hub on real `nats-server`s with JetStream (started by the test on
//! free ports): several nodes in one process share one stream, one order
//! and one history; duplicate ids are refused for as long as history holds
//! them; a 3-server cluster keeps publishing when the stream's leader dies.
//! The failure tests with real `tidings serve` processes are the CLI's
//! (`crates/cli/tests/cluster/nats.rs`).

#[path = "support/nats_server.rs"]
mod nats_server;

mod common;

use std::time::Duration;

use common::cluster::{self, entry};
use common::{WAIT, next_ids};
use nats_server::NatsCluster;
use tidings_hub::{
    Appended, Error, Hub, HubConfig, Log, NatsLog, NatsOptions, Retention, SubscribeRequest, Update,
};

fn options(servers: &NatsCluster, stream: &str, replicas: usize) -> NatsOptions {
    NatsOptions {
        servers: servers.url_list(),
        stream: stream.into(),
        replicas,
        timeout: Duration::from_secs(2),
        block: Duration::from_millis(500),
        ..NatsOptions::default()
    }
}

fn node_with(options: NatsOptions, config: HubConfig) -> Hub {
    let log = NatsLog::new(options).unwrap();
    let presence = log.presence();
    Hub::with_presence(log, presence, config).unwrap()
}

fn node(servers: &NatsCluster, stream: &str, replicas: usize) -> Hub {
    let config = HubConfig {
        publish_timeout: Duration::from_secs(5),
        ..HubConfig::default()
    };
    node_with(options(servers, stream, replicas), config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_one_order_and_resume_anywhere() {
    let servers = NatsCluster::single();
    let (a, b) = (node(&servers, "order", 1), node(&servers, "order", 1));
    cluster::one_order_and_resume_anywhere(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_assigns_dense_positions_refuses_duplicates_while_held_and_trims() {
    let servers = NatsCluster::single();
    let mut options = options(&servers, "append", 1);
    options.retention = Retention {
        max_count: Some(100),
        max_age: None,
        max_bytes: None,
    };
    let log = NatsLog::new(options).unwrap();
    cluster::dense_positions_duplicates_and_trim(&log).await;
    let located = log.locate("u250").await.unwrap();
    assert_eq!(located.position, Some(250));
    // u10 left history with the stream's limit: its id is free again, as
    // on Redis; u290 is still held, long after any de-duplication window
    // would matter.
    assert_eq!(log.locate("u10").await.unwrap().position, None);
    let again = log.append(vec![entry("u10"), entry("u290")]).await.unwrap();
    assert_eq!(again, [Appended::At(299), Appended::DuplicateId]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_publish_whose_answer_was_lost_is_its_own_not_a_duplicate() {
    // What `settle` does after a lost answer: the stream refuses the retry
    // (the id is held) and the nonce tells that it is this node's own. Two
    // logs on one stream play "the first attempt" and "another publisher".
    let servers = NatsCluster::single();
    let log = NatsLog::new(options(&servers, "retry", 1)).unwrap();
    log.open().await.unwrap();
    let other = NatsLog::new(options(&servers, "retry", 1)).unwrap();
    assert_eq!(
        other.append(vec![entry("taken")]).await.unwrap(),
        [Appended::At(1)]
    );
    assert_eq!(
        log.append(vec![entry("taken")]).await.unwrap(),
        [Appended::DuplicateId],
        "another publisher's update with the id is a duplicate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_lists_every_node_and_hears_them_leave() {
    let servers = NatsCluster::single();
    let config = HubConfig {
        presence: true,
        ..HubConfig::default()
    };
    let mut short = options(&servers, "presence", 1);
    short.node_timeout = Duration::from_secs(1);
    let a = node_with(short.clone(), config.clone());
    let b = node_with(short, config);
    cluster::presence_spans_nodes(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_s_subscriptions_are_announced_inactive_once() {
    let servers = NatsCluster::single();
    let config = HubConfig {
        presence: true,
        ..HubConfig::default()
    };
    let mut short = options(&servers, "reap", 1);
    short.node_timeout = Duration::from_secs(1);
    let a = node_with(short.clone(), config.clone());
    let c = node_with(short.clone(), config.clone());
    let mut watcher = cluster::subscription_watcher(&a).await;
    // A node in a runtime of its own, dropped whole: it stops without a
    // word, as a killed process does.
    let (runtime, dead, held) = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (dead, held) = runtime.block_on(async {
            let dead = node_with(short, config);
            let mut request = SubscribeRequest::new(["books"]);
            request.subscriber = Some("urn:uuid:on-dead".into());
            let held = dead.subscribe(request).await.unwrap();
            (dead, held)
        });
        (runtime, dead, held)
    })
    .join()
    .unwrap();
    cluster::until_listed(&a, "urn:uuid:on-dead", true).await;
    std::mem::forget(held);
    std::mem::forget(dead);
    runtime.shutdown_background();
    // Once, by A or C; three seconds more for a second announcement that
    // must not come.
    let announced =
        cluster::inactive_announcements(&mut watcher, "urn:uuid:on-dead", Duration::from_secs(3))
            .await;
    assert_eq!(announced, 1, "announced inactive once, by A or C");
    cluster::until_listed(&a, "urn:uuid:on-dead", false).await;
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_keep_publishing_when_the_stream_leader_dies() {
    let mut servers = NatsCluster::start(3);
    let hub = node(&servers, "ha", 3);
    let mut sub = hub.subscribe(SubscribeRequest::new(["t"])).await.unwrap();
    let mut acked = Vec::new();
    for i in 0..20 {
        acked.push(
            hub.publish(Update::new("t", i.to_string()))
                .await
                .unwrap()
                .to_string(),
        );
    }
    let log = NatsLog::new(options(&servers, "ha", 3)).unwrap();
    let status = log.status().await.unwrap();
    let quorum = status.quorum.unwrap();
    let leader = quorum
        .split("leader ")
        .nth(1)
        .and_then(|rest| rest.split([',', ';']).next())
        .unwrap()
        .to_owned();
    assert!(quorum.contains("3 of 3 current"), "{quorum}");
    servers.kill(servers.index_of(&leader));
    // Publishing goes on after the election; a publish that finds no
    // leader is refused, never lost silently.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut after = 0;
    while after < 20 && tokio::time::Instant::now() < deadline {
        match hub
            .publish(Update::new("t", format!("after {after}")))
            .await
        {
            Ok(id) => {
                acked.push(id.to_string());
                after += 1;
            }
            Err(Error::Unconfirmed(_) | Error::Timeout(_) | Error::Log(_)) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(after, 20, "publishing resumed after the leader's death");
    let got = next_ids(&mut sub, acked.len()).await;
    let unique: std::collections::HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "nothing twice");
    for id in &acked {
        assert!(got.contains(id), "{id} acknowledged and delivered");
    }
}
