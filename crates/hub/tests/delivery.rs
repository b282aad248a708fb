//! Publish and subscribe: selectors, alternates, privacy, resumption.

mod common;

use std::time::Duration;

use common::{assert_nothing_ready, next_event, next_ids, strings};
use futures_util::StreamExt;
use tidings_hub::{Error, Hub, HubConfig, MemoryLog, Retention, SubscribeRequest, Update};

#[tokio::test]
async fn exact_and_wildcard_selectors() {
    let hub = Hub::in_memory();
    let mut exact = hub.subscribe(SubscribeRequest::new(["a"])).await.unwrap();
    let mut all = hub.subscribe(SubscribeRequest::new(["*"])).await.unwrap();
    hub.publish(Update::new("a", "1").id("1")).await.unwrap();
    hub.publish(Update::new("b", "2").id("2")).await.unwrap();
    assert_eq!(next_event(&mut exact).await, ("1".into(), "1".into()));
    assert_eq!(next_ids(&mut all, 2).await, strings(&["1", "2"]));
    assert_nothing_ready(&hub, &mut exact).await;
}

#[tokio::test]
async fn alternates_deliver_once() {
    let hub = Hub::in_memory();
    let mut alternate = hub.subscribe(SubscribeRequest::new(["alt"])).await.unwrap();
    let mut both = hub
        .subscribe(SubscribeRequest::new(["main", "alt", "*"]))
        .await
        .unwrap();
    hub.publish(Update::new("main", "x").alternate("alt").id("1"))
        .await
        .unwrap();
    hub.publish(Update::new("other", "y").id("2"))
        .await
        .unwrap();
    assert_eq!(next_event(&mut alternate).await.0, "1");
    assert_eq!(next_ids(&mut both, 2).await, strings(&["1", "2"]));
    assert_nothing_ready(&hub, &mut alternate).await;
    assert_nothing_ready(&hub, &mut both).await;
}

#[tokio::test]
async fn private_updates_reach_only_authorized_subscribers() {
    let hub = Hub::in_memory();
    let mut anonymous = hub.subscribe(SubscribeRequest::new(["t"])).await.unwrap();
    let mut authorized = hub
        .subscribe(SubscribeRequest::new(["t"]).authorized(["t"]))
        .await
        .unwrap();
    let mut elsewhere = hub
        .subscribe(SubscribeRequest::new(["t"]).authorized(["other"]))
        .await
        .unwrap();
    hub.publish(Update::new("t", "secret").id("p").private(true))
        .await
        .unwrap();
    hub.publish(Update::new("t", "public").id("q"))
        .await
        .unwrap();
    assert_eq!(next_ids(&mut authorized, 2).await, strings(&["p", "q"]));
    assert_eq!(next_event(&mut anonymous).await.0, "q");
    assert_eq!(next_event(&mut elsewhere).await.0, "q");
    // Replay applies the same rule.
    let mut replay = hub
        .subscribe(SubscribeRequest::new(["t"]).last_event_id("earliest"))
        .await
        .unwrap();
    assert_eq!(next_event(&mut replay).await.0, "q");
}

#[tokio::test]
async fn resume_after_id_earliest_and_unknown() {
    let hub = Hub::in_memory();
    for id in ["1", "2", "3"] {
        hub.publish(Update::new(if id == "2" { "b" } else { "a" }, id).id(id))
            .await
            .unwrap();
    }
    let mut after_1 = hub
        .subscribe(SubscribeRequest::new(["a", "b"]).last_event_id("1"))
        .await
        .unwrap();
    assert_eq!(after_1.last_event_id(), "1");
    assert!(!after_1.missed_history());
    assert_eq!(next_ids(&mut after_1, 2).await, strings(&["2", "3"]));

    // Resuming is across topics: the position is in one log.
    let mut only_a = hub
        .subscribe(SubscribeRequest::new(["a"]).last_event_id("2"))
        .await
        .unwrap();
    assert_eq!(next_event(&mut only_a).await.0, "3");

    let mut earliest = hub
        .subscribe(SubscribeRequest::new(["*"]).last_event_id("earliest"))
        .await
        .unwrap();
    assert_eq!(earliest.last_event_id(), "earliest");
    assert_eq!(next_ids(&mut earliest, 3).await, strings(&["1", "2", "3"]));

    let mut unknown = hub
        .subscribe(SubscribeRequest::new(["*"]).last_event_id("gone"))
        .await
        .unwrap();
    assert!(unknown.missed_history());
    assert_eq!(next_ids(&mut unknown, 3).await, strings(&["1", "2", "3"]));

    // A live subscription reports the last id before its first event.
    hub.caught_up().await.unwrap();
    let live = hub.subscribe(SubscribeRequest::new(["*"])).await.unwrap();
    assert_eq!(live.last_event_id(), "3");
    hub.publish(Update::new("a", "4").id("4")).await.unwrap();
    for sub in [&mut after_1, &mut earliest, &mut unknown] {
        assert_eq!(next_event(sub).await.0, "4");
    }
}

#[tokio::test]
async fn empty_hub_says_earliest() {
    let hub = Hub::in_memory();
    let sub = hub.subscribe(SubscribeRequest::new(["*"])).await.unwrap();
    assert_eq!(sub.last_event_id(), "earliest");
}

#[tokio::test]
async fn bad_input_is_refused_with_a_reason() {
    let hub = Hub::in_memory();
    hub.publish(Update::new("t", "x").id("same")).await.unwrap();
    assert!(matches!(
        hub.publish(Update::new("t", "y").id("same")).await,
        Err(Error::DuplicateId(id)) if id == "same"
    ));
    assert!(matches!(
        hub.publish(Update::new("t", "y").id("bad\nid")).await,
        Err(Error::InvalidUpdate(_))
    ));
    assert!(matches!(
        hub.subscribe(SubscribeRequest::new(Vec::<String>::new()))
            .await,
        Err(Error::NoSelector)
    ));
    // The refused updates are not in the log.
    let mut all = hub
        .subscribe(SubscribeRequest::new(["*"]).last_event_id("earliest"))
        .await
        .unwrap();
    assert_eq!(next_event(&mut all).await, ("same".into(), "x".into()));
    assert_nothing_ready(&hub, &mut all).await;
}

#[tokio::test]
async fn retention_by_count_and_bytes_evicts_the_oldest() {
    let retention = Retention {
        max_count: Some(3),
        max_age: None,
        max_bytes: None,
    };
    let hub = Hub::new(MemoryLog::new(retention), HubConfig::default()).unwrap();
    for i in 1..=5 {
        hub.publish(Update::new("t", "x").id(i.to_string()))
            .await
            .unwrap();
    }
    let mut sub = hub
        .subscribe(SubscribeRequest::new(["t"]).last_event_id("1"))
        .await
        .unwrap();
    assert!(sub.missed_history(), "id 1 was evicted");
    assert_eq!(next_ids(&mut sub, 3).await, strings(&["3", "4", "5"]));

    let by_bytes = Retention {
        max_count: None,
        max_age: None,
        max_bytes: Some(250),
    };
    let hub = Hub::new(MemoryLog::new(by_bytes), HubConfig::default()).unwrap();
    for i in 1..=5 {
        hub.publish(Update::new("t", "y".repeat(60)).id(i.to_string()))
            .await
            .unwrap();
    }
    let mut sub = hub
        .subscribe(SubscribeRequest::new(["t"]).last_event_id("earliest"))
        .await
        .unwrap();
    assert_eq!(next_ids(&mut sub, 2).await, strings(&["4", "5"]));
}

#[tokio::test(start_paused = true)]
async fn keep_alive_comments_on_idle_subscriptions_only() {
    let period = Duration::from_secs(30);
    let start = tokio::time::Instant::now();
    let config = HubConfig {
        keep_alive: period,
        ..HubConfig::default()
    };
    let hub = Hub::new(MemoryLog::new(Retention::default()), config).unwrap();
    let mut idle = hub
        .subscribe(SubscribeRequest::new(["idle"]))
        .await
        .unwrap();
    let mut busy = hub
        .subscribe(SubscribeRequest::new(["busy"]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    hub.publish(Update::new("busy", "x").id("1")).await.unwrap();
    assert_eq!(next_event(&mut busy).await.0, "1");
    // The first tick finds the idle one idle, the busy one not.
    assert_eq!(&idle.next().await.unwrap()[..], b":\n\n");
    assert_eq!(start.elapsed(), period);
    // The busy one got nothing since: the next tick comments on it.
    assert_eq!(&busy.next().await.unwrap()[..], b":\n\n");
    assert_eq!(start.elapsed(), 2 * period);
    assert_eq!(&idle.next().await.unwrap()[..], b":\n\n");
    assert_eq!(start.elapsed(), 2 * period);
}

#[tokio::test]
async fn frames_ready_together_are_taken_together() {
    let hub = Hub::in_memory();
    let mut sub = hub.subscribe(SubscribeRequest::new(["t"])).await.unwrap();
    for i in 0..5 {
        hub.publish(Update::new("t", "x").id(i.to_string()))
            .await
            .unwrap();
    }
    hub.caught_up().await.unwrap();
    let mut frames = Vec::new();
    let taken = std::future::poll_fn(|cx| sub.poll_frames(cx, &mut frames, 100)).await;
    assert_eq!(taken, 5);
    assert_eq!(frames.len(), 5);
}

#[tokio::test]
async fn shutdown_ends_streams_after_queued_frames() {
    let hub = Hub::in_memory();
    let mut sub = hub.subscribe(SubscribeRequest::new(["t"])).await.unwrap();
    hub.publish(Update::new("t", "last").id("z")).await.unwrap();
    hub.shutdown().await;
    assert_eq!(next_event(&mut sub).await.0, "z");
    assert!(sub.next().await.is_none());
    assert!(matches!(
        hub.publish(Update::new("t", "x")).await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        hub.subscribe(SubscribeRequest::new(["t"])).await,
        Err(Error::Closed)
    ));
}

#[tokio::test]
async fn uri_template_selectors() {
    let hub = Hub::in_memory();
    let mut books = hub
        .subscribe(SubscribeRequest::new(["https://example.com/books/{id}"]))
        .await
        .unwrap();
    let mut same_template = hub
        .subscribe(SubscribeRequest::new(["https://example.com/books/{id}"]))
        .await
        .unwrap();
    let mut search = hub
        .subscribe(SubscribeRequest::new([
            "https://example.com/search{?q,lang}",
            "https://example.com/{+path}",
        ]))
        .await
        .unwrap();
    hub.publish(Update::new("https://example.com/books/1", "a").id("1"))
        .await
        .unwrap();
    hub.publish(Update::new("https://example.com/books/1/reviews", "b").id("2"))
        .await
        .unwrap();
    hub.publish(Update::new("https://example.com/authors/1", "c").id("3"))
        .await
        .unwrap();
    hub.publish(Update::new("https://example.com/search?q=rust&lang=en", "d").id("4"))
        .await
        .unwrap();
    hub.publish(Update::new("https://other.example/books/1", "e").id("5"))
        .await
        .unwrap();
    assert_eq!(next_event(&mut books).await.0, "1");
    assert_eq!(next_event(&mut same_template).await.0, "1");
    // `{+path}` matches every topic under the host, once each.
    assert_eq!(
        next_ids(&mut search, 4).await,
        strings(&["1", "2", "3", "4"])
    );
    for sub in [&mut books, &mut same_template, &mut search] {
        assert_nothing_ready(&hub, sub).await;
    }
}

#[tokio::test]
async fn regression_resume_without_an_in_memory_tail_reads_the_store() {
    let config = HubConfig {
        recent: 0,
        subscriber_queue: 0,
        ..HubConfig::default()
    };
    let hub = Hub::new(MemoryLog::new(Retention::default()), config).unwrap();
    for id in ["1", "2", "3"] {
        hub.publish(Update::new("t", id).id(id)).await.unwrap();
    }
    let mut resumed = hub
        .subscribe(SubscribeRequest::new(["t"]).last_event_id("1"))
        .await
        .unwrap();
    assert_eq!(next_ids(&mut resumed, 2).await, strings(&["2", "3"]));
    hub.publish(Update::new("t", "4").id("4")).await.unwrap();
    assert_eq!(next_event(&mut resumed).await.0, "4");
}

#[tokio::test(start_paused = true)]
async fn a_subscription_nobody_polls_delays_the_others_once_at_most() {
    let hub = Hub::in_memory();
    let _unpolled = hub.subscribe(SubscribeRequest::new(["t"])).await.unwrap();
    let mut read = hub.subscribe(SubscribeRequest::new(["t"])).await.unwrap();
    let start = tokio::time::Instant::now();
    for i in 0..100 {
        let id = i.to_string();
        hub.publish(Update::new("t", "x").id(id.clone()))
            .await
            .unwrap();
        assert_eq!(next_event(&mut read).await.0, id);
    }
    // The fan-out waits (5 ms at most) for the subscribers it woke before
    // the next batch; one that never runs counts for one batch only.
    let waited = start.elapsed();
    assert!(waited <= Duration::from_millis(5), "{waited:?}");
}

#[tokio::test]
async fn templates_match_by_their_literal_prefix_whatever_their_number() {
    let hub = Hub::in_memory();
    // A thousand distinct templates, one subscriber each, and a few whose
    // prefix is empty, longer than a topic, or shared.
    let mut users = Vec::new();
    for n in 0..1000 {
        users.push(
            hub.subscribe(SubscribeRequest::new([format!(
                "https://example.com/users/{n}/{{doc}}"
            )]))
            .await
            .unwrap(),
        );
    }
    let mut any_scheme = hub
        .subscribe(SubscribeRequest::new([
            "{scheme}://example.com/users/7/notes",
        ]))
        .await
        .unwrap();
    let mut all = hub.subscribe(SubscribeRequest::new(["*"])).await.unwrap();
    let mut long = hub
        .subscribe(SubscribeRequest::new([
            "https://example.com/users/7/notes/and/much/more/{x}",
        ]))
        .await
        .unwrap();
    let mut accented = hub
        .subscribe(SubscribeRequest::new(["https://example.com/é/{x}"]))
        .await
        .unwrap();
    hub.publish(Update::new("https://example.com/users/7/notes", "a").id("1"))
        .await
        .unwrap();
    hub.publish(Update::new("https://example.com/é/1", "b").id("2"))
        .await
        .unwrap();
    hub.publish(Update::new("https://example.com/users/70/notes", "c").id("3"))
        .await
        .unwrap();
    assert_eq!(next_ids(&mut users[7], 1).await, strings(&["1"]));
    assert_eq!(next_ids(&mut users[70], 1).await, strings(&["3"]));
    assert_eq!(next_ids(&mut any_scheme, 1).await, strings(&["1"]));
    assert_eq!(next_ids(&mut all, 3).await, strings(&["1", "2", "3"]));
    assert_eq!(next_ids(&mut accented, 1).await, strings(&["2"]));
    for (n, user) in users.iter_mut().enumerate() {
        if n != 7 && n != 70 {
            assert_nothing_ready(&hub, user).await;
        }
    }
    assert_nothing_ready(&hub, &mut long).await;
    assert_nothing_ready(&hub, &mut users[7]).await;
    // Gone, they leave nothing behind: the same prefix again works.
    drop(users);
    let mut again = hub
        .subscribe(SubscribeRequest::new(["https://example.com/users/7/{doc}"]))
        .await
        .unwrap();
    hub.publish(Update::new("https://example.com/users/7/x", "d").id("4"))
        .await
        .unwrap();
    assert_eq!(next_ids(&mut again, 1).await, strings(&["4"]));
}
