//! Engine snapshots: a restart from a snapshot plus the log's tail gives exactly the state a
//! full replay gives; a corrupt snapshot falls back to the full replay.

mod common;

use common::{TestApp, answered};
use learnpulse_server::storage::SnapshotStore;
use serde_json::Value;

async fn post(app: &TestApp, token: &str, rounds: std::ops::Range<usize>) {
    for i in rounds {
        let batch: Vec<Value> = (0..10)
            .map(|j| {
                answered(
                    if j % 2 == 0 { "ada" } else { "bo" },
                    &format!("q{j}"),
                    (i + j) % 3 != 0,
                )
            })
            .collect();
        assert_eq!(
            app.post_statements(token, &Value::Array(batch))
                .await
                .status(),
            200
        );
    }
}

async fn states(app: &TestApp, token: &str) -> (Value, Value) {
    (
        app.get_json("/v1/learners/ada", token).await,
        app.get_json("/v1/learners/bo", token).await,
    )
}

async fn snapshot_and_tail_equal_a_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let admin = app.admin.clone();
    post(&app, &admin, 0..4).await;
    app.stop().await; // saves a snapshot
    let storage = common::storage(dir.path()).await;
    let saved = storage.latest_snapshots().await.unwrap();
    assert!(!saved.is_empty(), "a stop saves a snapshot");
    storage.shutdown().await;
    drop(storage);

    // From the snapshot, then a tail.
    let app = TestApp::start_with(common::config(dir.path()), Some(admin.clone())).await;
    post(&app, &admin, 4..7).await;
    let from_snapshot = states(&app, &admin).await;
    assert_eq!(from_snapshot.0["answers"], 35);
    app.stop().await;

    // The whole log, no snapshot.
    let mut config = common::config(dir.path());
    config.snapshots.enabled = false;
    let app = TestApp::start_with(config.clone(), Some(admin.clone())).await;
    assert_eq!(states(&app, &admin).await, from_snapshot);
    app.stop().await;

    // A corrupt snapshot is not used: the full replay gives the same state.
    let storage = common::storage(dir.path()).await;
    let mut snaps = storage.latest_snapshots().await.unwrap();
    for s in &mut snaps {
        let last = s.body.len() - 2;
        s.body[last] ^= 0x55;
    }
    storage.save_snapshots(snaps, Vec::new()).await.unwrap();
    storage.shutdown().await;
    drop(storage);
    let app = TestApp::start_with(common::config(dir.path()), Some(admin.clone())).await;
    assert_eq!(states(&app, &admin).await, from_snapshot);
    app.stop().await;
}

on_every_backend!(snapshot_and_tail_equal_a_full_replay);
