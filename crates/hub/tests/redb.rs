//! The on-disk history: restarts lose nothing, bad data dirs fail loudly.

mod common;

use std::time::Duration;

use common::{next_event, next_ids, strings};
use tidings_hub::{
    Appended, Error, Hub, HubConfig, Log, LogError, RedbLog, Retention, SubscribeRequest, Update,
};

fn open(dir: &std::path::Path, retention: Retention) -> Hub {
    Hub::new(RedbLog::open(dir, retention).unwrap(), HubConfig::default()).unwrap()
}

#[tokio::test]
async fn a_restart_loses_no_acknowledged_update() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path(), Retention::default());
    for i in 1..=10 {
        hub.publish(Update::new(format!("t{}", i % 2), format!("data {i}")).id(i.to_string()))
            .await
            .unwrap();
    }
    hub.shutdown().await;
    drop(hub);

    let hub = open(dir.path(), Retention::default());
    let live = hub.subscribe(SubscribeRequest::new(["t0"])).await.unwrap();
    assert_eq!(live.last_event_id(), "10", "the log continues where it was");
    let mut resumed = hub
        .subscribe(SubscribeRequest::new(["t0", "t1"]).last_event_id("7"))
        .await
        .unwrap();
    assert_eq!(next_ids(&mut resumed, 3).await, strings(&["8", "9", "10"]));
    hub.publish(Update::new("t1", "after restart").id("11"))
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut resumed).await,
        ("11".into(), "after restart".into())
    );
    // Ids stay unique across the restart.
    assert!(matches!(
        hub.publish(Update::new("t", "x").id("3")).await,
        Err(Error::DuplicateId(_))
    ));
    let mut all = hub
        .subscribe(SubscribeRequest::new(["t0", "t1"]).last_event_id("earliest"))
        .await
        .unwrap();
    let expected: Vec<String> = (1..=11).map(|i| i.to_string()).collect();
    assert_eq!(next_ids(&mut all, 11).await, expected);
}

#[tokio::test]
async fn retention_survives_restarts_and_positions_never_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention {
        max_count: Some(3),
        max_age: Some(Duration::from_secs(60)),
        max_bytes: None,
    };
    let hub = open(dir.path(), retention);
    for i in 1..=5 {
        hub.publish(Update::new("t", "x").id(i.to_string()))
            .await
            .unwrap();
    }
    hub.shutdown().await;
    drop(hub);
    let log = RedbLog::open(dir.path(), retention).unwrap();
    let stats = log.stats_now().unwrap();
    assert_eq!(
        (stats.count, stats.first_position, stats.last_position),
        (3, Some(3), 5)
    );
    // Everything older than a minute goes, but the log still knows its end.
    log.trim(u64::MAX / 2).await.unwrap();
    let stats = log.stats_now().unwrap();
    assert_eq!((stats.count, stats.bytes, stats.last_position), (0, 0, 5));
    let hub = Hub::new(log, HubConfig::default()).unwrap();
    hub.publish(Update::new("t", "x").id("6")).await.unwrap();
    let mut sub = hub
        .subscribe(SubscribeRequest::new(["t"]).last_event_id("earliest"))
        .await
        .unwrap();
    assert_eq!(next_event(&mut sub).await.0, "6");
}

#[test]
fn a_corrupted_database_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("history.redb"), vec![0x5a; 8192]).unwrap();
    let error = RedbLog::open(dir.path(), Retention::default()).unwrap_err();
    assert!(matches!(error, LogError::Open { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("history.redb"), "{message}");
}

#[test]
fn an_unusable_data_dir_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let error = RedbLog::open(&not_a_dir, Retention::default()).unwrap_err();
    assert!(error.to_string().contains("file"), "{error}");
}

#[tokio::test]
async fn a_second_hub_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = RedbLog::open(dir.path(), Retention::default()).unwrap();
    let error = RedbLog::open(dir.path(), Retention::default()).unwrap_err();
    assert!(matches!(error, LogError::Open { .. }), "{error:?}");
}

fn entries(ids: &[&str]) -> Vec<tidings_hub::Entry> {
    ids.iter()
        .map(|id| tidings_hub::Entry {
            position: 0,
            id: (*id).into(),
            topics: vec!["t".into()].into_boxed_slice(),
            private: false,
            published_at_ms: 1,
            frame: bytes::Bytes::from_static(b"data: x\n\n"),
        })
        .collect()
}

#[tokio::test]
async fn both_logs_assign_positions_refuse_duplicates_and_retain() {
    use tidings_hub::MemoryLog;
    let retention = Retention {
        max_count: Some(3),
        max_age: None,
        max_bytes: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let logs: Vec<Box<dyn Log>> = vec![
        Box::new(MemoryLog::new(retention)),
        Box::new(RedbLog::open(dir.path(), retention).unwrap()),
    ];
    for log in logs {
        let outcome = log.append(entries(&["1", "2", "2"])).await.unwrap();
        assert_eq!(
            outcome,
            [Appended::At(1), Appended::At(2), Appended::DuplicateId],
            "a duplicate within the batch, {log:?}"
        );
        let outcome = log.append(entries(&["3", "1", "4", "5"])).await.unwrap();
        assert_eq!(
            outcome,
            [
                Appended::At(3),
                Appended::DuplicateId,
                Appended::At(4),
                Appended::At(5)
            ],
            "a duplicate of a stored id, {log:?}"
        );
        let stats = log.stats().await.unwrap();
        assert_eq!(
            (stats.count, stats.first_position, stats.last_position),
            (3, Some(3), 5)
        );
        let found = log.locate("4").await.unwrap();
        assert_eq!(found.position, Some(4));
        let evicted = log.locate("1").await.unwrap();
        assert_eq!(
            (
                evicted.position,
                evicted.before_first(),
                evicted.last_position
            ),
            (None, 2, 5)
        );
        let page = log.read_after(3, 10).await.unwrap();
        let positions: Vec<u64> = page.iter().map(|e| e.position).collect();
        assert_eq!(positions, [4, 5]);
    }
}

#[tokio::test]
async fn regression_redb_age_eviction_runs_in_bounded_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention {
        max_count: None,
        max_age: Some(Duration::from_secs(60)),
        max_bytes: None,
    };
    let log = RedbLog::open(dir.path(), retention).unwrap();
    let total = RedbLog::EVICT_BATCH * 2 + 100;
    let ids: Vec<String> = (0..total).map(|i| i.to_string()).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    log.append(entries(&refs)).await.unwrap();
    // Everything is a day old: one call takes one bounded batch, not all.
    let day_later = 86_400_000;
    assert_eq!(log.trim(day_later).await.unwrap(), RedbLog::EVICT_BATCH);
    assert_eq!(log.stats_now().unwrap().count, total - RedbLog::EVICT_BATCH);
    assert_eq!(log.trim(day_later).await.unwrap(), RedbLog::EVICT_BATCH);
    assert_eq!(log.trim(day_later).await.unwrap(), 100);
    assert_eq!(
        log.trim(day_later).await.unwrap(),
        0,
        "done: the caller stops"
    );
    assert_eq!(log.stats_now().unwrap().count, 0);
}
