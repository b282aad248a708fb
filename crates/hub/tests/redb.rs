//! The on-disk history: restarts lose nothing, bad data dirs fail loudly.

mod common;

use std::time::Duration;

use common::{next_event, next_ids, strings};
use tidings_hub::{
    Error, Hub, HubConfig, RedbStore, Retention, Store, StoreError, SubscribeRequest, Update,
};

fn open(dir: &std::path::Path, retention: Retention) -> Hub {
    Hub::new(
        RedbStore::open(dir, retention).unwrap(),
        HubConfig::default(),
    )
    .unwrap()
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
    let store = RedbStore::open(dir.path(), retention).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.count, stats.first_position, stats.last_position),
        (3, Some(3), 5)
    );
    // Everything older than a minute goes, but the log still knows its end.
    store.evict_expired(u64::MAX / 2).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!((stats.count, stats.bytes, stats.last_position), (0, 0, 5));
    let hub = Hub::new(store, HubConfig::default()).unwrap();
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
    let error = RedbStore::open(dir.path(), Retention::default()).unwrap_err();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("history.redb"), "{message}");
}

#[test]
fn an_unusable_data_dir_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let error = RedbStore::open(&not_a_dir, Retention::default()).unwrap_err();
    assert!(error.to_string().contains("file"), "{error}");
}

#[tokio::test]
async fn a_second_hub_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = RedbStore::open(dir.path(), Retention::default()).unwrap();
    let error = RedbStore::open(dir.path(), Retention::default()).unwrap_err();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
}

#[test]
fn append_reports_what_stats_reports() {
    use std::sync::Arc;
    use tidings_hub::{Entry, MemoryStore};
    let retention = Retention {
        max_count: Some(3),
        max_age: None,
        max_bytes: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<Box<dyn Store>> = vec![
        Box::new(MemoryStore::new(retention)),
        Box::new(RedbStore::open(dir.path(), retention).unwrap()),
    ];
    for store in stores {
        for batch in [1u64..=2, 3..=5] {
            let entries: Vec<Arc<Entry>> = batch
                .map(|position| {
                    Arc::new(Entry {
                        position,
                        id: position.to_string().into(),
                        topics: vec!["t".into()].into_boxed_slice(),
                        private: false,
                        published_at_ms: 1,
                        frame: bytes::Bytes::from_static(b"data: x\n\n"),
                    })
                })
                .collect();
            let appended = store.append(&entries).unwrap();
            assert_eq!(appended, store.stats().unwrap(), "{store:?}");
        }
        let stats = store.stats().unwrap();
        assert_eq!(
            (stats.count, stats.first_position, stats.last_position),
            (3, Some(3), 5)
        );
    }
}
