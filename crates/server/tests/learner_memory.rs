//! Learners leave memory and come back exact: a node holding at most two learners (beyond those
//! changed since the last snapshot) gives every learner, group and prediction the same state as
//! a node that holds them all, while the events keep coming, after restarts, and through an
//! erasure of a learner that is not in memory.

mod common;

use std::time::Duration;

use common::{TestApp, answered};
use learnpulse_server::storage::SnapshotStore;
use serde_json::Value;

const LEARNERS: [&str; 8] = ["ada", "bo", "cy", "di", "ed", "flo", "gus", "hal"];

/// Round `round` of answers: every learner answers two items, right or wrong by a fixed
/// pattern, some with a fast response (the item norms and load signals see it too).
fn round(round: usize) -> Value {
    let mut batch = Vec::new();
    for (i, who) in LEARNERS.iter().enumerate() {
        for item in 0..2 {
            let mut s = answered(
                who,
                &format!("q{}", (round + item) % 5),
                !(round + i + item).is_multiple_of(3),
            );
            if (round + i).is_multiple_of(4) {
                s["result"]["duration"] = Value::from("PT1.2S");
            }
            batch.push(s);
        }
    }
    Value::Array(batch)
}

async fn feed(app: &TestApp, rounds: std::ops::Range<usize>) {
    for r in rounds {
        let response = app.post_statements(&app.admin, &round(r)).await;
        assert_eq!(response.status(), 200);
    }
}

/// The admin sees cognitive data too (load and its signals follow the item norms, which every
/// learner's events feed).
async fn show_cognitive_data(app: &TestApp) {
    let r = app
        .put_json(
            "/v1/privacy/policy",
            &app.admin,
            &serde_json::json!({"cognitive_data_roles": ["admin", "teacher"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
}

/// Removes the pseudonym (each installation has keys of its own) from what a client reads.
fn without_pseudonym(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("learner");
    }
    v
}

/// Everything a client can read about the learners, as JSON, pseudonyms aside.
async fn everything(app: &TestApp) -> Vec<Value> {
    let mut seen = Vec::new();
    for who in LEARNERS {
        let learner: Value = app
            .get_json(&format!("/v1/learners/{who}"), &app.admin)
            .await;
        assert!(learner["load"].is_object(), "{learner}");
        seen.push(without_pseudonym(learner));
    }
    let group: Value = app
        .get_json("/v1/groups/class-7b/overview", &app.admin)
        .await;
    let mut rows: Vec<Value> = group["learners"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(without_pseudonym)
        .collect();
    rows.sort_by_key(|r| r.to_string());
    seen.extend(rows);
    seen
}

async fn held(app: &TestApp) -> u64 {
    let health: Value = app.get_json("/healthz", &app.admin).await;
    health["learners_in_memory"].as_u64().unwrap()
}

/// Waits until the node holds at most `n` learners (a snapshot has kept the others).
async fn until_held_at_most(app: &TestApp, n: u64) {
    for _ in 0..100 {
        if held(app).await <= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("still {} learners in memory", held(app).await);
}

async fn learners_leave_memory_and_come_back_exact() {
    let (small_dir, full_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let small_config = || {
        let mut c = common::config(small_dir.path());
        c.cache.learners_in_memory = 2;
        c.snapshots.interval_secs = 1;
        c.snapshots.min_new_entries = 1;
        c
    };
    let small = TestApp::start_with(small_config(), None).await;
    let mut full = TestApp::start(full_dir.path()).await;
    show_cognitive_data(&small).await;
    show_cognitive_data(&full).await;

    feed(&small, 0..3).await;
    feed(&full, 0..3).await;
    assert_eq!(
        held(&small).await,
        8,
        "changed since the last snapshot: all held"
    );
    until_held_at_most(&small, 2).await;
    // Events for learners not in memory: each is loaded first, then changed.
    feed(&small, 3..6).await;
    feed(&full, 3..6).await;
    until_held_at_most(&small, 2).await;
    let expected = everything(&full).await;
    assert_eq!(everything(&small).await, expected);
    assert!(
        held(&small).await <= 2,
        "reads do not keep more than the capacity"
    );

    // Restarts: from the snapshot, learners are loaded as needed; the tail is applied to them.
    let admin = small.admin.clone();
    small.stop().await;
    let small = TestApp::start_with(small_config(), Some(admin.clone())).await;
    assert_eq!(
        held(&small).await,
        0,
        "nothing is loaded before it is needed"
    );
    feed(&small, 6..8).await;
    let full_admin = full.admin.clone();
    feed(&full, 6..8).await;
    full.stop().await;
    full = TestApp::start_with(common::config(full_dir.path()), Some(full_admin)).await;
    assert_eq!(everything(&small).await, everything(&full).await);

    // The erasure of a learner that is not in memory leaves nothing of her behind.
    until_held_at_most(&small, 2).await;
    let gone = small.pseudonym(&small.admin, "ada").await;
    let dpo = small.key(&small.admin, "dpo").await;
    let erased = small
        .post_json(
            "/v1/compliance/requests",
            &dpo,
            &serde_json::json!({"kind": "erasure", "learner": "ada"}),
        )
        .await;
    assert_eq!(erased.status(), 200);
    let body: Value = erased.json().await.unwrap();
    assert_eq!(body["erased"]["learner_states"], 1, "{body}");
    assert_eq!(
        small.get("/v1/learners/ada", &small.admin).await.status(),
        404
    );
    small.stop().await;
    let holding = common::tables_holding(small_dir.path(), &gone).await;
    // Only the audit chain names her still (the erasure's tombstone): no kept state, no
    // snapshot.
    assert!(
        holding.iter().all(|t| t.starts_with("audit_")),
        "{gone} is still in {holding:?}"
    );
    // The same, read through the storage (bytes, whatever the backend stores them as).
    let storage = common::storage(small_dir.path()).await;
    assert!(
        storage
            .kept_learners(1, vec![gone.clone()])
            .await
            .unwrap()
            .is_empty()
    );
    let snapshots = storage.latest_snapshots().await.unwrap();
    assert!(
        !snapshots.is_empty(),
        "the snapshot is scrubbed, not dropped"
    );
    for s in snapshots {
        let text = String::from_utf8_lossy(&s.body);
        assert!(!text.contains(&gone), "the snapshot still names {gone}");
    }
    storage.shutdown().await;
    full.stop().await;
}

on_every_backend!(learners_leave_memory_and_come_back_exact);
