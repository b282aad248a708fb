//! The hub on a real `redis-server` (started by the test on a free port):
//! several nodes in one process share one log, one order and one history.

#[path = "support/redis_server.rs"]
mod redis_server;

mod common;

use std::time::Duration;

use common::{WAIT, cluster, next_event, next_ids, strings};
use futures_util::StreamExt;
use redis_server::RedisServer;
use tidings_hub::{
    Error, Hub, HubConfig, RedisLog, RedisOptions, Retention, SubscribeRequest, Update,
};

fn options(server: &RedisServer, prefix: &str) -> RedisOptions {
    RedisOptions {
        url: server.url(),
        prefix: prefix.into(),
        timeout: Duration::from_secs(1),
        block: Duration::from_millis(500),
        ..RedisOptions::default()
    }
}

fn node_with(options: RedisOptions, config: HubConfig) -> Hub {
    let log = RedisLog::new(options).unwrap();
    let presence = log.presence();
    Hub::with_presence(log, presence, config).unwrap()
}

/// The comment frame that ends a stream reset under its node, once it has
/// come and the stream has ended after it.
async fn last_words(sub: &mut tidings_hub::Subscription) -> String {
    let last = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("the stream ends within the wait")
        .expect("a last frame says why");
    let text = String::from_utf8_lossy(&last).into_owned();
    assert!(text.starts_with(": "), "a comment: {text}");
    assert!(sub.next().await.is_none(), "then the stream ends");
    text
}

fn node(server: &RedisServer, prefix: &str) -> Hub {
    let config = HubConfig {
        publish_timeout: Duration::from_secs(2),
        ..HubConfig::default()
    };
    node_with(options(server, prefix), config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_one_order_and_resume_anywhere() {
    let server = RedisServer::start(false);
    let (a, b) = (node(&server, "order"), node(&server, "order"));
    cluster::one_order_and_resume_anywhere(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_update_reaches_only_authorized_subscribers_on_every_node() {
    let server = RedisServer::start(false);
    let (a, b) = (node(&server, "private"), node(&server, "private"));
    let mut anonymous = b.subscribe(SubscribeRequest::new(["*"])).await.unwrap();
    let mut allowed = b
        .subscribe(SubscribeRequest::new(["*"]).authorized(["secret"]))
        .await
        .unwrap();
    a.publish(Update::new("secret", "hidden").id("p1").private(true))
        .await
        .unwrap();
    a.publish(Update::new("open", "shown").id("o1"))
        .await
        .unwrap();
    assert_eq!(next_ids(&mut allowed, 2).await, strings(&["p1", "o1"]));
    assert_eq!(next_event(&mut anonymous).await.0, "o1");
    let mut replay = b
        .subscribe(SubscribeRequest::new(["*"]).last_event_id("earliest"))
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut replay).await.0,
        "o1",
        "not by replay either"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimming_past_a_resume_point_is_told_then_history_follows() {
    let server = RedisServer::start(false);
    let mut options = options(&server, "trim");
    options.retention = Retention {
        max_count: Some(5),
        max_age: None,
        max_bytes: None,
    };
    let hub = node_with(options, HubConfig::default());
    for i in 1..=20 {
        hub.publish(Update::new("t", "x").id(i.to_string()))
            .await
            .unwrap();
    }
    assert_eq!(
        server.command(&["XLEN", "{trim}:log"]).as_deref(),
        Some(":5")
    );
    assert_eq!(
        server.command(&["HLEN", "{trim}:ids"]).as_deref(),
        Some(":5")
    );
    let mut resumed = hub
        .subscribe(SubscribeRequest::new(["t"]).last_event_id("2"))
        .await
        .unwrap();
    assert!(resumed.missed_history());
    assert_eq!(
        next_ids(&mut resumed, 5).await,
        strings(&["16", "17", "18", "19", "20"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_log_ends_streams_with_a_reason_and_resumes_tell_the_gap() {
    let server = RedisServer::start(false);
    let hub = node(&server, "epoch");
    let mut sub = hub.subscribe(SubscribeRequest::new(["t"])).await.unwrap();
    hub.publish(Update::new("t", "before").id("old"))
        .await
        .unwrap();
    assert_eq!(next_event(&mut sub).await.0, "old");
    assert_eq!(server.command(&["FLUSHALL"]).as_deref(), Some("+OK"));
    // The next publish finds no epoch, starts a new one, and is stored.
    hub.publish(Update::new("t", "after").id("new"))
        .await
        .unwrap();
    let text = last_words(&mut sub).await;
    assert!(
        text.starts_with(": ") && text.contains("recreated"),
        "{text}"
    );
    let mut resumed = hub
        .subscribe(SubscribeRequest::new(["t"]).last_event_id("old"))
        .await
        .unwrap();
    assert!(resumed.missed_history(), "the resume is told of the gap");
    assert_eq!(next_event(&mut resumed).await.0, "new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_refuses_publishes_in_bounded_time_and_streams_survive() {
    let mut server = RedisServer::start(true);
    let hub = node(&server, "down");
    let mut sub = hub.subscribe(SubscribeRequest::new(["t"])).await.unwrap();
    hub.publish(Update::new("t", "1").id("1")).await.unwrap();
    server.pause();
    let started = tokio::time::Instant::now();
    let refused = hub.publish(Update::new("t", "2").id("2")).await;
    assert!(
        matches!(refused, Err(Error::Timeout(_) | Error::Unconfirmed(_))),
        "{refused:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        hub.ready().await.is_err(),
        "not ready while Redis is frozen"
    );
    server.resume();
    // Once Redis is back, publishing works again and the stream goes on.
    let id = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(id) = hub.publish(Update::new("t", "3").id("3")).await {
                return id;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(id.as_str(), "3");
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("3") {
        seen.push(next_event(&mut sub).await.0);
    }
    // "2" was refused but may have reached Redis before it froze.
    assert!(seen == ["1", "3"] || seen == ["1", "2", "3"], "{seen:?}");
    tokio::time::timeout(WAIT, async {
        while hub.ready().await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("ready again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_lists_every_node_and_hears_them_leave() {
    let server = RedisServer::start(false);
    let config = HubConfig {
        presence: true,
        ..HubConfig::default()
    };
    let mut short = options(&server, "presence");
    short.node_timeout = Duration::from_secs(1);
    let a = node_with(short.clone(), config.clone());
    let b = node_with(short, config);
    cluster::presence_spans_nodes(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_goes_back_in_time_ends_streams_with_a_reason() {
    let server = RedisServer::start(false);
    let hub = node(&server, "rewind");
    let mut sub = hub.subscribe(SubscribeRequest::new(["t"])).await.unwrap();
    for i in 1..=5 {
        hub.publish(Update::new("t", "x").id(i.to_string()))
            .await
            .unwrap();
    }
    assert_eq!(
        next_ids(&mut sub, 5).await,
        strings(&["1", "2", "3", "4", "5"])
    );
    // What a failover to a replica two updates behind looks like: the same
    // epoch, the newest two entries gone.
    for command in [
        &["XDEL", "{rewind}:log", "4-0", "5-0"][..],
        &["HDEL", "{rewind}:ids", "4", "5"],
        &["HSET", "{rewind}:meta", "last", "3"],
        &["XSETID", "{rewind}:log", "3-0"],
    ] {
        let reply = server.command(command);
        assert!(
            reply
                .as_deref()
                .is_some_and(|r| r.starts_with(':') || r == "+OK"),
            "{command:?}: {reply:?}"
        );
    }
    let text = last_words(&mut sub).await;
    assert!(text.contains("went back"), "{text}");
    hub.publish(Update::new("t", "x").id("after"))
        .await
        .unwrap();
    let mut resumed = hub
        .subscribe(SubscribeRequest::new(["t"]).last_event_id("5"))
        .await
        .unwrap();
    assert!(
        resumed.missed_history(),
        "a lost id is answered with the gap"
    );
    assert_eq!(
        next_ids(&mut resumed, 4).await,
        strings(&["1", "2", "3", "after"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_that_grew_past_the_cursor_is_found_by_its_ids() {
    let server = RedisServer::start(false);
    let hub = node(&server, "regrown");
    let mut sub = hub.subscribe(SubscribeRequest::new(["t"])).await.unwrap();
    for i in 1..=5 {
        hub.publish(Update::new("t", "x").id(i.to_string()))
            .await
            .unwrap();
    }
    assert_eq!(next_ids(&mut sub, 5).await.len(), 5);
    // At once, as a new primary that lacked 4 and 5 and took three other
    // updates before this node looked: positions 4..=6, other ids.
    let regrow = r#"
        redis.call('XDEL', KEYS[1], '4-0', '5-0')
        redis.call('HDEL', KEYS[2], '4', '5')
        redis.call('XSETID', KEYS[1], '3-0')
        for i, id in ipairs({'n4', 'n5', 'n6'}) do
            local frame = 'id: ' .. id .. '\ndata: new\n\n'
            redis.call('XADD', KEYS[1], (3 + i) .. '-0', 'id', id, 't', '1', 'n', '40',
                'p', '0', 'topics', '["t"]', 'frame', frame)
            redis.call('HSET', KEYS[2], id, 3 + i)
        end
        redis.call('HSET', KEYS[3], 'last', 6)
        return 1"#;
    let reply = server.command(&[
        "EVAL",
        regrow,
        "3",
        "{regrown}:log",
        "{regrown}:ids",
        "{regrown}:meta",
    ]);
    assert_eq!(reply.as_deref(), Some(":1"));
    let text = last_words(&mut sub).await;
    assert!(text.contains("went back from update 5 to 3"), "{text}");
    // The node goes on from where the histories part: a new subscriber from
    // the start sees the new primary's history, and the lost id is a gap.
    let mut resumed = hub
        .subscribe(SubscribeRequest::new(["t"]).last_event_id("5"))
        .await
        .unwrap();
    assert!(resumed.missed_history());
    assert_eq!(
        next_ids(&mut resumed, 6).await,
        strings(&["1", "2", "3", "n4", "n5", "n6"])
    );
    hub.caught_up().await.unwrap();
    assert_eq!(
        hub.last_event_id(),
        "n6",
        "the tail delivered the new history"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_no_node_can_read_is_skipped_with_a_reason_not_a_stall() {
    let server = RedisServer::start(false);
    let hub = node(&server, "foreign");
    hub.publish(Update::new("t", "x").id("1")).await.unwrap();
    let mut sub = hub.subscribe(SubscribeRequest::new(["t"])).await.unwrap();
    // Another program writes into the log: a position, but no update.
    for command in [
        &["XADD", "{foreign}:log", "2-0", "junk", "1"][..],
        &["HSET", "{foreign}:meta", "last", "2"],
    ] {
        assert!(server.command(command).is_some());
    }
    let text = last_words(&mut sub).await;
    assert!(text.contains("update 2 in Redis cannot be read"), "{text}");
    // Publishing and fan-out go on after it.
    let mut after = hub.subscribe(SubscribeRequest::new(["t"])).await.unwrap();
    hub.publish(Update::new("t", "x").id("3")).await.unwrap();
    assert_eq!(next_event(&mut after).await.0, "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_log_assigns_dense_positions_refuses_duplicates_and_trims() {
    let server = RedisServer::start(false);
    let mut options = options(&server, "append");
    options.retention = Retention {
        max_count: Some(100),
        max_age: None,
        max_bytes: None,
    };
    let log = RedisLog::new(options).unwrap();
    // Several script calls for the batch, the repeats within and across.
    cluster::dense_positions_duplicates_and_trim(&log).await;
    assert_eq!(
        server.command(&["HLEN", "{append}:ids"]).as_deref(),
        Some(":100")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_replicas_answers_only_what_a_replica_holds_and_unconfirmed_otherwise() {
    let primary = RedisServer::start(false);
    let mut replica = RedisServer::start(false);
    replica
        .command(&["REPLICAOF", "127.0.0.1", &primary.port.to_string()])
        .expect("the replica follows the primary");
    tokio::time::timeout(WAIT, async {
        while !replica
            .command(&["INFO", "replication"])
            .is_some_and(|info| info.contains("master_link_status:up"))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the replica syncs");
    let mut options = options(&primary, "wait");
    options.min_replicas = 1;
    let config = HubConfig {
        publish_timeout: Duration::from_secs(2),
        ..HubConfig::default()
    };
    let hub = Hub::new(RedisLog::new(options).unwrap(), config).unwrap();
    // Answered once the replica has it: it is then on the replica.
    let id = hub
        .publish(Update::new("t", "kept").id("w1"))
        .await
        .unwrap();
    assert_eq!(id.as_str(), "w1");
    assert_eq!(
        replica.command(&["HEXISTS", "{wait}:ids", "w1"]).as_deref(),
        Some(":1"),
        "the replica holds what was acknowledged"
    );
    assert!(hub.ready().await.is_ok());
    // The replica gone: stored on the primary, but not confirmed.
    replica.pause();
    let refused = hub.publish(Update::new("t", "alone").id("w2")).await;
    assert!(matches!(refused, Err(Error::Unconfirmed(_))), "{refused:?}");
    assert!(refused.unwrap_err().to_string().contains("replicas"));
    replica.resume();
}
