//! History on disk: a server restarted on the same data dir resumes every
//! client where it left off, losing and repeating nothing.

mod common;

use common::{TestHub, config};
use tidings_server::{Config, Storage};

fn on_disk(dir: &std::path::Path) -> Config {
    Config {
        storage: Storage::Redb,
        data_dir: dir.to_owned(),
        ..config()
    }
}

#[tokio::test]
async fn a_client_resumes_across_a_restart_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();

    let hub = TestHub::start(on_disk(dir.path())).await;
    let mut live = hub.subscribe("topic=*", &[]).await;
    let mut ids = Vec::new();
    for data in ["a", "b", "c", "d"] {
        ids.push(hub.publish(&[("topic", "log"), ("data", data)]).await);
    }
    // The client saw two updates before the hub went down.
    let seen = live.events(2).await;
    assert_eq!(seen[1].id, ids[1]);
    drop(live);
    hub.stop().await;

    let hub = TestHub::start(on_disk(dir.path())).await;
    let last_seen = seen[1].id.clone();
    let mut resumed = hub
        .subscribe("topic=*", &[("last-event-id", &last_seen)])
        .await;
    assert_eq!(resumed.header("last-event-id"), Some(last_seen.as_str()));
    assert_eq!(resumed.header("tidings-history-gap"), None);
    let e = hub.publish(&[("topic", "log"), ("data", "e")]).await;
    let events = resumed.events(3).await;
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.id.as_str(), e.data.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (ids[2].as_str(), "c"),
            (ids[3].as_str(), "d"),
            (e.as_str(), "e")
        ]
    );
    // The whole log survived, in order, and the new update follows it.
    let mut all = hub.subscribe("topic=*&lastEventID=earliest", &[]).await;
    assert_eq!(all.data(5).await, ["a", "b", "c", "d", "e"]);
    // A fresh subscriber starts after the newest stored update.
    let fresh = hub.subscribe("topic=*", &[]).await;
    assert_eq!(fresh.header("last-event-id"), Some(e.as_str()));
    // Ids stay unique across the restart.
    let reply = hub
        .publish_form(
            Some(&common::publisher_token()),
            &[("topic", "log"), ("id", &ids[0])],
        )
        .await;
    assert_eq!(reply.status, http::StatusCode::CONFLICT, "{}", reply.body);
    hub.stop().await;
}
