//! The cluster under failure: real `tidings serve` processes sharing a real
//! `redis-server` that each test starts on a free port with its own temp dir
//! (never the machine's Redis). Nothing here mocks Redis.
//!
//! - three nodes, one order;
//! - a node killed during 10 000 updates;
//! - Redis stopped, and frozen;
//! - Redis restarted empty (a new epoch);
//! - trimming past a `Last-Event-ID`;
//! - private updates across nodes;
//! - presence across nodes, and a killed node's subscriptions;
//! - the tail's connection killed;
//! - Mercure draft-08 matchers, tokens and presence across nodes.

#[path = "../../../hub/tests/support/redis_server.rs"]
mod redis_server;

#[path = "../../../hub/tests/support/nats_server.rs"]
mod nats_server;

mod harness;
mod nats;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use harness::{
    Collector, Node, RedisServer, acked, assert_once, client, cluster, publish, publisher_task,
    token, wait_for,
};
use reqwest::StatusCode;

/// Waits until every collector's stream is open: the hub sends a first
/// comment as soon as the subscription is registered.
async fn opened(collectors: &[&Collector]) {
    for collector in collectors {
        collector
            .wait("the stream opens", |c| c.keep_alives + c.comments.len() > 0)
            .await;
    }
}

fn urls(nodes: &[Node]) -> Vec<String> {
    nodes.iter().map(|n| n.url.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_deliver_every_update_once_in_one_order() {
    let redis = RedisServer::start(false);
    let client = client();
    let nodes = cluster(&redis, "one-order", 3, &[], &client).await;
    let mut collectors = Vec::new();
    for url in urls(&nodes) {
        for query in ["topic=t", "topic=*"] {
            collectors.push(Collector::start(vec![url.clone()], query, None));
        }
    }
    opened(&collectors.iter().collect::<Vec<_>>()).await;
    let publishers: Vec<_> = (0..4)
        .map(|i| publisher_task(client.clone(), nodes[i % 3].url.clone(), "t", 250))
        .collect();
    let mut published = Vec::new();
    for publisher in publishers {
        published.push(publisher.await.unwrap());
    }
    let expected = acked(&published);
    assert_eq!(expected.len(), 1000, "every publish was acknowledged");
    let mut orders = Vec::new();
    for collector in collectors {
        let got = collector.finish(&expected).await;
        assert_once(&got.ids, "a subscriber");
        assert_eq!(got.ids.len(), 1000);
        assert_eq!(got.reconnects, 0);
        orders.push(got.ids);
    }
    assert!(
        orders.iter().all(|o| *o == orders[0]),
        "every subscriber on every node saw one order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_s_subscribers_resume_elsewhere_and_miss_nothing() {
    let redis = RedisServer::start(false);
    let client = client();
    let nodes = cluster(&redis, "kill-9", 3, &[], &client).await;
    let all = urls(&nodes);
    // Three subscribers on the node that will die; they resume on the next.
    let victims: Vec<Collector> = (0..3)
        .map(|_| Collector::start(all.clone(), "topic=t", None))
        .collect();
    let reference = Collector::start(vec![all[2].clone()], "topic=t", None);
    opened(&victims.iter().chain([&reference]).collect::<Vec<_>>()).await;
    let publishers: Vec<_> = (0..4)
        .map(|i| publisher_task(client.clone(), all[1 + i % 2].clone(), "t", 2500))
        .collect();
    reference
        .wait("a fifth of the updates arrive", |c| c.ids.len() >= 2000)
        .await;
    let mut nodes = nodes.into_iter();
    nodes.next().unwrap().kill();
    let mut published = Vec::new();
    for publisher in publishers {
        published.push(publisher.await.unwrap());
    }
    let expected = acked(&published);
    assert_eq!(expected.len(), 10_000);
    let order = reference.finish(&expected).await.ids;
    assert_once(&order, "the reference subscriber");
    for victim in victims {
        let got = victim.finish(&expected).await;
        assert!(got.reconnects >= 1, "the stream ended with its node");
        assert_once(&got.ids, "a resumed subscriber");
        assert_eq!(got.ids, order, "in the shared order, nothing missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_or_frozen_refuses_publishes_and_streams_catch_up() {
    let mut redis = RedisServer::start(true);
    let client = client();
    let nodes = cluster(&redis, "outage", 2, &[], &client).await;
    let collectors: Vec<Collector> = urls(&nodes)
        .into_iter()
        .map(|url| Collector::start(vec![url], "topic=t", None))
        .collect();
    opened(&collectors.iter().collect::<Vec<_>>()).await;
    let mut acked_ids = Vec::new();
    let mut publish_some = async |n: usize| {
        for i in 0..n {
            let (status, id) =
                publish(&client, &nodes[i % 2].url, &[("topic", "t"), ("data", "x")])
                    .await
                    .unwrap();
            assert_eq!(status, StatusCode::OK, "{id}");
            acked_ids.push(id);
        }
    };
    publish_some(20).await;
    for outage in ["stopped", "frozen"] {
        if outage == "stopped" {
            redis.stop();
        } else {
            redis.pause();
        }
        let keep_alives: Vec<usize> = collectors.iter().map(|c| c.now().keep_alives).collect();
        for node in &nodes {
            let started = Instant::now();
            let (status, body) = publish(&client, &node.url, &[("topic", "t"), ("data", "lost?")])
                .await
                .unwrap();
            assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "Redis {outage}: {body}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(4),
                "Redis {outage}: answered after {:?} (publish timeout 2s)",
                started.elapsed()
            );
            let ready = client
                .get(format!("{}/readyz", node.url))
                .send()
                .await
                .unwrap();
            assert_eq!(
                ready.status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "Redis {outage}"
            );
        }
        for (collector, before) in collectors.iter().zip(keep_alives) {
            collector
                .wait("keep-alives go on while Redis is away", |c| {
                    c.keep_alives > before
                })
                .await;
        }
        if outage == "stopped" {
            redis.restart();
        } else {
            redis.resume();
        }
        for node in &nodes {
            node.wait_ready(&client).await;
        }
        publish_some(20).await;
    }
    let expected: HashSet<String> = acked_ids.iter().cloned().collect();
    let mut orders = Vec::new();
    for collector in collectors {
        let got = collector.finish(&expected).await;
        assert_eq!(
            got.reconnects, 0,
            "the stream stayed open through both outages"
        );
        assert_once(&got.ids, "a subscriber");
        // A refused publish may still have reached a frozen Redis; every
        // acknowledged one arrived (finish checked), in one order.
        orders.push(got.ids);
    }
    assert_eq!(orders[0], orders[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_is_a_new_epoch_and_a_resume_is_told_the_gap() {
    let mut redis = RedisServer::start(false);
    let client = client();
    let nodes = cluster(&redis, "epoch", 2, &[], &client).await;
    let collector = Collector::start(vec![nodes[0].url.clone()], "topic=t", None);
    opened(&[&collector]).await;
    for _ in 0..3 {
        publish(
            &client,
            &nodes[1].url,
            &[("topic", "t"), ("data", "before")],
        )
        .await
        .unwrap();
    }
    collector.wait("three updates", |c| c.ids.len() == 3).await;
    redis.restart();
    let stored = wait_for(|| async {
        let reply = publish(
            &client,
            &nodes[1].url,
            &[("topic", "t"), ("data", "after"), ("id", "after")],
        )
        .await
        .ok()?;
        (reply.0 == StatusCode::OK).then_some(())
    })
    .await;
    assert!(stored.is_some(), "publishing works again on the new epoch");
    let got = collector.finish(&HashSet::from(["after".to_owned()])).await;
    assert!(
        got.comments.iter().any(|c| c.contains("recreated")),
        "the stream ended saying why: {:?}",
        got.comments
    );
    assert!(got.reconnects >= 1);
    assert_eq!(got.gaps, 1, "the resume was answered with the gap header");
    assert_eq!(got.ids.last().map(String::as_str), Some("after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimming_past_a_last_event_id_answers_the_gap_then_what_history_holds() {
    let redis = RedisServer::start(false);
    let client = client();
    let nodes = cluster(&redis, "trim", 2, &["--history-max-count", "10"], &client).await;
    let mut ids = Vec::new();
    for i in 0..55 {
        let (status, id) = publish(&client, &nodes[i % 2].url, &[("topic", "t"), ("data", "x")])
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        ids.push(id);
    }
    let query = format!("topic=t&lastEventID={}", ids[0]);
    let resumed = Collector::start(vec![nodes[1].url.clone()], &query, None);
    let held: Vec<String> = ids[45..].to_vec();
    let got = resumed.finish(&held.iter().cloned().collect()).await;
    assert_eq!(got.gaps, 1, "the gap header");
    assert_eq!(got.ids, held, "then exactly what history holds, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_update_never_reaches_an_unauthorized_subscriber_on_another_node() {
    let redis = RedisServer::start(false);
    let client = client();
    let nodes = cluster(&redis, "private", 3, &[], &client).await;
    let anonymous = Collector::start(vec![nodes[1].url.clone()], "topic=*", None);
    let other_topic = Collector::start(
        vec![nodes[1].url.clone()],
        "topic=*",
        Some(token(&[], &["elsewhere"])),
    );
    let allowed = Collector::start(
        vec![nodes[2].url.clone()],
        "topic=*",
        Some(token(&[], &["secret"])),
    );
    opened(&[&anonymous, &other_topic, &allowed]).await;
    let (status, _) = publish(
        &client,
        &nodes[0].url,
        &[
            ("topic", "secret"),
            ("data", "hidden"),
            ("private", "on"),
            ("id", "p1"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::OK);
    publish(
        &client,
        &nodes[0].url,
        &[("topic", "open"), ("data", "shown"), ("id", "o1")],
    )
    .await
    .unwrap();
    let both: HashSet<String> = ["p1", "o1"].map(String::from).into();
    let public: HashSet<String> = ["o1".to_owned()].into();
    assert_eq!(allowed.finish(&both).await.ids, ["p1", "o1"]);
    assert_eq!(anonymous.finish(&public).await.ids, ["o1"], "live");
    assert_eq!(
        other_topic.finish(&public).await.ids,
        ["o1"],
        "live, other selectors"
    );
    for node in &nodes {
        let replay = Collector::start(vec![node.url.clone()], "topic=*&lastEventID=earliest", None);
        assert_eq!(
            replay.finish(&public).await.ids,
            ["o1"],
            "by replay on {}",
            node.url
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_spans_the_cluster_and_a_killed_node_s_subscriptions_end_once() {
    let redis = RedisServer::start(false);
    let client = client();
    let flags = ["--subscriptions", "--redis-node-timeout", "2s"];
    let nodes = cluster(&redis, "presence", 3, &flags, &client).await;
    let watcher = Collector::start(
        vec![nodes[0].url.clone()],
        "topic=%2F.well-known%2Fmercure%2Fsubscriptions%2F%7Btopic%7D%2F%7Bsubscriber%7D",
        Some(token(&[], &["*"])),
    );
    let on_victim: Vec<Collector> = ["books", "news"]
        .iter()
        .map(|t| Collector::start(vec![nodes[2].url.clone()], &format!("topic={t}"), None))
        .collect();
    let on_survivor = Collector::start(vec![nodes[1].url.clone()], "topic=films", None);
    opened(&[&watcher, &on_victim[0], &on_victim[1], &on_survivor]).await;
    let listing = |node: String| {
        let client = client.clone();
        async move {
            let reply = client
                .get(format!("{node}/.well-known/mercure/subscriptions"))
                .bearer_auth(token(&[], &["*"]))
                .send()
                .await
                .ok()?;
            let doc: serde_json::Value = serde_json::from_str(&reply.text().await.ok()?).ok()?;
            let subscriptions = doc["subscriptions"].as_array()?.clone();
            Some(
                subscriptions
                    .iter()
                    .map(|s| {
                        (
                            s["topic"].as_str().unwrap_or("").to_owned(),
                            s["subscriber"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        }
    };
    let victims: Vec<String> = wait_for(|| async {
        let list = listing(nodes[0].url.clone()).await?;
        let topics: HashSet<&str> = list.iter().map(|(t, _)| t.as_str()).collect();
        let all = ["books", "news", "films"]
            .iter()
            .all(|t| topics.contains(t));
        all.then(|| {
            list.iter()
                .filter(|(t, _)| t == "books" || t == "news")
                .map(|(_, s)| s.clone())
                .collect()
        })
    })
    .await
    .expect("node 0 lists the subscriptions of every node");
    assert_eq!(victims.len(), 2);
    let victim_id = nodes[2].id.clone();
    let mut nodes = nodes;
    nodes.pop().unwrap().kill();
    let inactive = |c: &harness::Collected, who: &str| {
        c.data
            .iter()
            .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .filter(|d| d["subscriber"] == who && d["active"] == false)
            .count()
    };
    watcher
        .wait(
            "the killed node's subscriptions are announced inactive",
            |c| victims.iter().all(|v| inactive(c, v) >= 1),
        )
        .await;
    // Claimed for good: no node can announce them again.
    let claimed = wait_for(|| async {
        let listed = redis.command(&["ZSCORE", "{presence}:nodes", &victim_id]);
        let kept = redis.command(&["EXISTS", &format!("{{presence}}:presence:{victim_id}")]);
        (listed.as_deref() == Some("$-1") && kept.as_deref() == Some(":0")).then_some(())
    })
    .await;
    assert!(claimed.is_some(), "the dead node is gone from Redis");
    // A later announcement, through the same log, comes after any other.
    let sentinel = Collector::start(vec![nodes[1].url.clone()], "topic=sentinel", None);
    opened(&[&sentinel]).await;
    watcher
        .wait("the sentinel's announcement", |c| {
            c.data.iter().any(|d| d.contains("\"sentinel\""))
        })
        .await;
    let seen = watcher.now();
    for victim in &victims {
        assert_eq!(
            inactive(&seen, victim),
            1,
            "announced inactive exactly once: {victim}"
        );
    }
    let left = listing(nodes[0].url.clone()).await.unwrap();
    assert!(left.iter().all(|(_, s)| !victims.contains(s)), "{left:?}");
    assert!(left.iter().any(|(t, _)| t == "films"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_tail_connection_reconnects_from_its_cursor_and_loses_nothing() {
    let redis = RedisServer::start(false);
    let client = client();
    let nodes = cluster(&redis, "tail", 2, &[], &client).await;
    let collector = Collector::start(vec![nodes[0].url.clone()], "topic=t", None);
    opened(&[&collector]).await;
    let publisher = publisher_task(client.clone(), nodes[1].url.clone(), "t", 2000);
    collector.wait("some updates", |c| c.ids.len() >= 300).await;
    let name = format!("tidings-tail-{}", nodes[0].id);
    assert_eq!(
        redis.kill_clients_named(&name),
        1,
        "{}",
        redis.client_list()
    );
    let published = publisher.await.unwrap();
    assert!(published.refused.is_empty(), "{:?}", published.refused);
    let expected: HashSet<String> = published.acked.iter().cloned().collect();
    let got = collector.finish(&expected).await;
    assert_eq!(got.reconnects, 0, "the subscriber never noticed");
    assert_eq!(got.ids, published.acked, "every update once, in order");
    let log = nodes[0].log();
    assert!(log.contains("the tail lost the log"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tidings_bench_spreads_subscribers_and_publishers_over_the_nodes() {
    let redis = RedisServer::start(false);
    let client = client();
    let nodes = cluster(&redis, "bench", 2, &[], &client).await;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"));
    command.arg("bench");
    for node in &nodes {
        command.arg(format!("{}/.well-known/mercure?topic=bench", node.url));
    }
    for node in &nodes {
        command
            .arg("--publish-url")
            .arg(format!("{}/.well-known/mercure", node.url));
    }
    let output = command
        .args([
            "-n",
            "10",
            "--topic",
            "bench",
            "--updates",
            "40",
            "--rate",
            "400",
        ])
        .args([
            "--publishers",
            "2",
            "--json",
            "--token",
            &harness::publisher(),
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
    assert!(output.status.success(), "{report}");
    assert_eq!(report["deliveries"], 400, "{report}");
    assert_eq!(report["lost"], 0);
    // Both nodes had subscribers (5 each) and took publishes.
    for node in &nodes {
        let metrics = client
            .get(format!("{}/metrics", node.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let counter = |name: &str| {
            metrics
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().last())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        assert!(
            counter("tidings_updates_published_total") > 0.0,
            "{metrics}"
        );
        assert_eq!(counter("tidings_deliveries_total"), 200.0, "{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_while_redis_is_down_is_ready_once_redis_comes() {
    let mut redis = RedisServer::start(true);
    redis.stop();
    let client = client();
    let node = Node::start(&redis, "late", &[]);
    let ready = client
        .get(format!("{}/readyz", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let why = ready.text().await.unwrap();
    assert!(why.contains("not been reached"), "{why}");
    let (status, body) = publish(&client, &node.url, &[("topic", "t"), ("data", "x")])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    redis.restart();
    node.wait_ready(&client).await;
    let subscriber = Collector::start(vec![node.url.clone()], "topic=t", None);
    opened(&[&subscriber]).await;
    let (status, id) = publish(&client, &node.url, &[("topic", "t"), ("data", "x")])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{id}");
    assert_eq!(
        subscriber.finish(&HashSet::from([id.clone()])).await.ids,
        [id]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_password_in_the_url_verifies_the_server_certificate() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let (ca_file, cert_file, key_file) = (
        dir.path().join("ca.pem"),
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
    );
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let redis = RedisServer::start_with(redis_server::Settings {
        password: Some("s3cret".into()),
        tls: Some((cert_file, key_file)),
        ..redis_server::Settings::default()
    });
    let port = redis.tls_port.unwrap();
    let client = client();
    // The server's certificate is checked against the trusted roots, here
    // the test's CA (rustls-native-certs reads SSL_CERT_FILE).
    let trust = [("SSL_CERT_FILE", ca_file.to_str().unwrap())];
    let url = format!("rediss://:s3cret@localhost:{port}/0");
    let node = Node::start_on(&url, "tls", &[], &trust);
    node.wait_ready(&client).await;
    let banner_url = node.log();
    assert!(
        !banner_url.contains("s3cret"),
        "the password is never logged"
    );
    let (status, id) = publish(&client, &node.url, &[("topic", "t"), ("data", "x")])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{id}");
    assert_eq!(redis.command(&["XLEN", "{tls}:log"]).as_deref(), Some(":1"));
    // A wrong password, or an untrusted certificate: not ready, saying why.
    for (bad_url, env, says) in [
        (
            format!("rediss://:wrong@localhost:{port}/0"),
            &trust[..],
            "refused the credentials",
        ),
        (url.clone(), &[][..], "certificate"),
    ] {
        let node = Node::start_on(&bad_url, "tls", &[], env);
        let why = node.readyz_saying(&client, says).await;
        assert!(
            why.is_some(),
            "readyz names the cause ({says}); log:\n{}",
            node.log()
        );
        assert!(
            !why.unwrap().contains("wrong"),
            "no password in the message"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_private_ca_and_a_client_certificate_from_files() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    // Each certificate names itself: OpenSSL, which checks the client's,
    // takes one whose subject is its issuer's for self-signed.
    let params = |name: &str| {
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params
    };
    let mut ca_params = params("Tidings test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let write = |name: &str, pem: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    let signed = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = params(name).signed_by(&key, &ca).unwrap();
        (
            write(&format!("{name}.pem"), cert.pem()),
            write(&format!("{name}-key.pem"), key.serialize_pem()),
        )
    };
    let ca_file = write("ca.pem", ca.pem());
    let server = signed("localhost");
    let (client_cert, client_key) = signed("tidings-node");
    // Redis as it runs by default with TLS: every client shows a
    // certificate signed by the CA.
    let redis = RedisServer::start_with(redis_server::Settings {
        tls: Some(server),
        client_ca: Some(ca_file.clone()),
        ..redis_server::Settings::default()
    });
    let url = format!("rediss://localhost:{}/0", redis.tls_port.unwrap());
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let (ca_arg, cert_arg, key_arg) = (path(&ca_file), path(&client_cert), path(&client_key));
    let client = client();
    // Trusting the CA from the file alone (no SSL_CERT_FILE), with the
    // client certificate: ready, and publishes are in the log.
    let flags = [
        "--redis-ca-file",
        &ca_arg,
        "--redis-cert-file",
        &cert_arg,
        "--redis-key-file",
        &key_arg,
    ];
    let node = Node::start_on(&url, "mtls", &flags, &[]);
    node.wait_ready(&client).await;
    let (status, id) = publish(&client, &node.url, &[("topic", "t"), ("data", "x")])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{id}");
    assert_eq!(
        redis.command(&["XLEN", "{mtls}:log"]).as_deref(),
        Some(":1")
    );
    // Without the client certificate Redis refuses the node: not ready,
    // saying why.
    let node = Node::start_on(&url, "mtls", &flags[..2], &[]);
    let why = node.readyz_saying(&client, "CertificateRequired").await;
    assert!(
        why.is_some(),
        "readyz names the cause; log:\n{}",
        node.log()
    );
}

/// A draft-08 token for the cluster's public URL, signed with the cluster's key.
fn draft08_token(publish: &[&str], subscribe_patterns: &[&str]) -> String {
    tidings_server::mint(
        &tidings_server::KeyMaterial::Secret(harness::SECRET.into()),
        tidings_server::Algorithm::HS256,
        &tidings_server::MintClaims {
            publish: (!publish.is_empty())
                .then(|| publish.iter().map(|s| (*s).to_owned()).collect()),
            subscribe: None,
            payload: None,
            ttl: Some(Duration::from_secs(600)),
            draft08: Some(tidings_server::Draft08Claims {
                issuer: "https://issuer.example".into(),
                audience: "https://hub.example.com/.well-known/mercure".into(),
                publish_urlpatterns: Vec::new(),
                subscribe_urlpatterns: subscribe_patterns.iter().map(|s| (*s).to_owned()).collect(),
            }),
        },
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft_08_matchers_tokens_and_presence_work_across_the_cluster() {
    let redis = RedisServer::start(false);
    let client = client();
    // Behind one public URL, as a load balancer would put them.
    let flags = [
        "--subscriptions",
        "--jwt-issuer",
        "https://issuer.example",
        "--public-url",
        "https://hub.example.com/.well-known/mercure",
    ];
    let nodes = cluster(&redis, "draft08", 3, &flags, &client).await;
    let pattern = "match_urlpattern=https%3A%2F%2Fexample.com%2Fbooks%2F%3Aid";
    let anonymous = Collector::start(vec![nodes[1].url.clone()], pattern, None);
    let private = Collector::start(
        vec![nodes[2].url.clone()],
        pattern,
        Some(draft08_token(&[], &["https://example.com/books/*"])),
    );
    opened(&[&anonymous, &private]).await;
    let publisher = draft08_token(
        &[
            "https://example.com/books/1",
            "https://example.com/books/2",
            "urn:x",
        ],
        &[],
    );
    for (topic, id, private_update) in [
        ("urn:x", "x", false),
        ("https://example.com/books/1", "b1", true),
        ("https://example.com/books/2", "b2", false),
    ] {
        let mut form = vec![("topic", topic), ("data", id), ("id", id)];
        if private_update {
            form.push(("private", "on"));
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&form)
            .finish();
        let reply = client
            .post(format!("{}/.well-known/mercure", nodes[0].url))
            .bearer_auth(&publisher)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK, "{topic}");
    }
    let both: HashSet<String> = ["b1", "b2"].map(String::from).into();
    let public: HashSet<String> = ["b2".to_owned()].into();
    assert_eq!(private.finish(&both).await.ids, ["b1", "b2"]);
    assert_eq!(anonymous.finish(&public).await.ids, ["b2"]);

    // Presence in draft-08's shape, listed from another node than the subscriber's.
    let _held = Collector::start(vec![nodes[2].url.clone()], pattern, None);
    let watcher = draft08_token(&[], &["/.well-known/mercure/subscriptions{/*}?"]);
    let listed = wait_for(|| async {
        let reply = client
            .get(format!(
                "{}/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2Fbooks%2F%3Aid",
                nodes[0].url
            ))
            .bearer_auth(&watcher)
            .send()
            .await
            .ok()?;
        let doc: serde_json::Value = serde_json::from_str(&reply.text().await.ok()?).ok()?;
        let list = doc["subscriptions"].as_array()?.clone();
        (!list.is_empty()).then_some(list)
    })
    .await
    .expect("node 0 lists the draft-08 subscription held on node 2");
    assert_eq!(listed[0]["match_type"], "urlpattern");
    assert_eq!(listed[0]["type"], "subscription");
}
