//! The storage contract, one suite run against every backend (`sqlite::…`, `postgres::…`):
//! filtered queries, per-request atomicity, conflicts, log order under concurrent writers,
//! followers' reads, snapshots, accounts. Plus, for SQLite, its deferred index file.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use learnpulse_server::storage::{
    AccountStore, EventLog, KeptLearner, NewStatement, Snapshot, SnapshotStore, StatementQuery,
    Storage, StoreError,
};
use learnpulse_server::xapi::prepare::{Authority, prepare};
use serde_json::{Value, json};

const REGISTRATION: &str = "9b6a8c2e-54a1-4f43-9a0f-2f3b8a1d7c10";

fn statement(learner: &str, item: usize, registered: bool) -> NewStatement {
    let mut s = json!({
        "actor": {"account": {"homePage": "https://lms.example.edu", "name": learner}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
        "object": {"id": format!("https://lms.example.edu/items/{item}")},
        "result": {"success": true}
    });
    if registered {
        s["context"] = json!({"registration": REGISTRATION});
    }
    prepare(
        s,
        &Authority {
            key_id: "lpk_test",
            version: "1.0.0",
            now: "2026-11-26T09:30:00Z",
        },
    )
}

async fn open(dir: &std::path::Path) -> Storage {
    common::storage(dir).await
}

/// SQLite's indexer has caught up (other backends index on commit).
async fn wait_indexed(store: &Storage, at_least: i64) {
    let Storage::Sqlite(sqlite) = store else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while sqlite.indexed_through() < at_least {
        assert!(Instant::now() < deadline, "the indexer did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ids of every statement matching `q`, newest first, following the cursor across pages.
async fn ids(store: &Storage, mut q: StatementQuery) -> Vec<String> {
    q.limit = 7;
    let mut out = Vec::new();
    loop {
        let page = store.query(1, q.clone()).await.unwrap();
        for s in &page.statements {
            let v: Value = serde_json::from_str(s).unwrap();
            out.push(v["id"].as_str().unwrap().to_owned());
        }
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
}

fn by_agent(name: &str) -> StatementQuery {
    StatementQuery {
        agent: Some(format!("account:https://lms.example.edu|{name}")),
        ..Default::default()
    }
}

fn by_activity(item: usize) -> StatementQuery {
    StatementQuery {
        activity: Some(format!("https://lms.example.edu/items/{item}")),
        ..Default::default()
    }
}

fn by_registration() -> StatementQuery {
    StatementQuery {
        registration: Some(REGISTRATION.parse().unwrap()),
        ..Default::default()
    }
}

async fn filtered_queries_span_the_index_and_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    // First batch: indexed before the query.
    let first: Vec<NewStatement> = (0..40)
        .map(|i| statement(if i % 2 == 0 { "ada" } else { "bo" }, i % 5, i % 4 == 0))
        .collect();
    let mut expected_ada: Vec<String> = first
        .iter()
        .filter(|s| s.actor.ends_with("|ada"))
        .map(|s| s.id.to_string())
        .collect();
    let mut expected_item3: Vec<String> = first
        .iter()
        .filter(|s| s.activity.as_deref() == Some("https://lms.example.edu/items/3"))
        .map(|s| s.id.to_string())
        .collect();
    let mut expected_reg: Vec<String> = first
        .iter()
        .filter(|s| s.registration.is_some())
        .map(|s| s.id.to_string())
        .collect();
    store.append(1, first).await.unwrap();
    wait_indexed(&store, 40).await;

    // Second batch: queried at once, before the indexer can have reached all of it.
    let second: Vec<NewStatement> = (0..30)
        .map(|i| statement(if i % 3 == 0 { "ada" } else { "cy" }, i % 5, i % 3 == 0))
        .collect();
    expected_ada.extend(
        second
            .iter()
            .filter(|s| s.actor.ends_with("|ada"))
            .map(|s| s.id.to_string()),
    );
    expected_item3.extend(
        second
            .iter()
            .filter(|s| s.activity.as_deref() == Some("https://lms.example.edu/items/3"))
            .map(|s| s.id.to_string()),
    );
    expected_reg.extend(
        second
            .iter()
            .filter(|s| s.registration.is_some())
            .map(|s| s.id.to_string()),
    );
    store.append(1, second).await.unwrap();
    for v in [&mut expected_ada, &mut expected_item3, &mut expected_reg] {
        v.reverse(); // newest first
    }

    for _ in 0..2 {
        assert_eq!(ids(&store, by_agent("ada")).await, expected_ada);
        let oldest_first = StatementQuery {
            ascending: true,
            ..by_agent("ada")
        };
        let mut ascending = ids(&store, oldest_first).await;
        ascending.reverse();
        assert_eq!(ascending, expected_ada);
        assert_eq!(ids(&store, by_activity(3)).await, expected_item3);
        assert_eq!(ids(&store, by_registration()).await, expected_reg);
        let both = StatementQuery {
            activity: by_activity(3).activity,
            ..by_agent("ada")
        };
        let both_ids = ids(&store, both).await;
        assert!(
            both_ids
                .iter()
                .all(|id| expected_ada.contains(id) && expected_item3.contains(id))
        );
        // Again once everything is indexed: the same answers.
        wait_indexed(&store, 70).await;
    }
    store.shutdown().await;
}

/// `n` statements, alternately Ada's and Bo's, every fourth one with the registration; with
/// the ids a query by Ada and one by the registration return, newest first.
fn ada_bo_and_registered(n: usize) -> (Vec<NewStatement>, Vec<String>, Vec<String>) {
    let batch: Vec<NewStatement> = (0..n)
        .map(|i| statement(if i % 2 == 0 { "ada" } else { "bo" }, i % 5, i % 4 == 0))
        .collect();
    let newest_first = |keep: &dyn Fn(&NewStatement) -> bool| -> Vec<String> {
        batch
            .iter()
            .rev()
            .filter(|s| keep(s))
            .map(|s| s.id.to_string())
            .collect()
    };
    let ada = newest_first(&|s| s.actor.ends_with("|ada"));
    let registered = newest_first(&|s| s.registration.is_some());
    (batch, ada, registered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_sqlite_index_file_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let (batch, expected_ada, expected_reg) = ada_bo_and_registered(50);
    store.append(1, batch).await.unwrap();
    wait_indexed(&store, 50).await;
    store.shutdown().await;
    drop(store);
    std::fs::remove_file(dir.path().join("learnpulse.index.db")).unwrap();
    let _ = std::fs::remove_file(dir.path().join("learnpulse.index.db-wal"));
    let _ = std::fs::remove_file(dir.path().join("learnpulse.index.db-shm"));
    let store = open(dir.path()).await;
    assert_eq!(
        ids(&store, by_agent("ada")).await,
        expected_ada,
        "answers stay the same meanwhile"
    );
    wait_indexed(&store, 50).await;
    assert_eq!(ids(&store, by_agent("ada")).await, expected_ada);
    assert_eq!(ids(&store, by_registration()).await, expected_reg);
    store.shutdown().await;
    drop(store);

    // A corrupt header (the first page overwritten): the store still opens, sets the file
    // aside and rebuilds it from the log.
    let index = dir.path().join("learnpulse.index.db");
    let mut bytes = std::fs::read(&index).unwrap();
    bytes[..100].fill(0x5a);
    std::fs::write(&index, &bytes).unwrap();
    let _ = std::fs::remove_file(dir.path().join("learnpulse.index.db-wal"));
    let store = open(dir.path()).await;
    assert_eq!(ids(&store, by_agent("ada")).await, expected_ada);
    wait_indexed(&store, 50).await;
    assert_eq!(ids(&store, by_registration()).await, expected_reg);
    store.shutdown().await;
}

/// A store from before StatementRef targets and related keys were recorded: at the first start
/// of this version they are filled in from the stored JSON (and SQLite's index file is made
/// again), so filtered queries find the statements that reference a match and those that
/// name the agent elsewhere.
async fn an_upgrade_fills_in_targets_and_related_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let authority = Authority {
        key_id: "lpk_test",
        version: "1.0.0",
        now: "2026-11-26T09:30:00Z",
    };
    let answer = statement("ada", 1, false);
    let comment = prepare(
        json!({
            "actor": {"account": {"homePage": "https://lms.example.edu", "name": "bo"}},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/commented"},
            "object": {"objectType": "StatementRef", "id": answer.id.to_string()}
        }),
        &authority,
    );
    let taught = prepare(
        json!({
            "actor": {"account": {"homePage": "https://lms.example.edu", "name": "bo"}},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/attended"},
            "object": {"id": "https://lms.example.edu/items/7"},
            "context": {"instructor": {"account": {"homePage": "https://lms.example.edu", "name": "ada"}}}
        }),
        &authority,
    );
    assert_eq!(comment.target, Some(answer.id));
    let referencing = vec![comment.id.to_string(), answer.id.to_string()];
    let related = vec![
        taught.id.to_string(),
        comment.id.to_string(),
        answer.id.to_string(),
    ];
    store
        .append(1, vec![answer, comment, taught])
        .await
        .unwrap();
    wait_indexed(&store, 3).await;
    let by_related_agent = || StatementQuery {
        related_agents: true,
        ..by_agent("ada")
    };
    assert_eq!(ids(&store, by_agent("ada")).await, referencing);
    assert_eq!(ids(&store, by_related_agent()).await, related);
    store.shutdown().await;
    drop(store);

    // Back to the older layout (with an index file of that layout).
    if common::backend() == common::Backend::Postgres {
        let client = common::postgres_client(dir.path()).await;
        client
            .batch_execute(
                "ALTER TABLE statements DROP COLUMN target, DROP COLUMN related; \
                 DELETE FROM learnpulse_migrations WHERE version >= 7;",
            )
            .await
            .unwrap();
    } else {
        let conn = rusqlite::Connection::open(dir.path().join("learnpulse.db")).unwrap();
        conn.execute_batch(
            "DROP INDEX statements_targeting; ALTER TABLE statements DROP COLUMN target; \
             DROP INDEX statements_unkeyed; ALTER TABLE statements DROP COLUMN related;",
        )
        .unwrap();
        let index = rusqlite::Connection::open(dir.path().join("learnpulse.index.db")).unwrap();
        index.execute_batch("DROP TABLE by_related").unwrap();
    }

    let store = open(dir.path()).await;
    assert_eq!(ids(&store, by_agent("ada")).await, referencing);
    wait_indexed(&store, 3).await;
    assert_eq!(ids(&store, by_agent("ada")).await, referencing);
    assert_eq!(ids(&store, by_related_agent()).await, related);
    store.shutdown().await;
}

/// What a running SQLite store does when something happens to its index file under it: every
/// query keeps answering with the right rows (from the log alone while the file is replaced),
/// the indexer makes a new file, and statements appended afterwards are indexed in it.
async fn index_damaged_while_running(damage: impl FnOnce(&std::path::Path)) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let Storage::Sqlite(sqlite) = &store else {
        unreachable!("the index file is SQLite's")
    };
    let (batch, expected_ada, expected_reg) = ada_bo_and_registered(60);
    store.append(1, batch).await.unwrap();
    wait_indexed(&store, 60).await;
    assert_eq!(sqlite.index_rebuilds(), 0);

    damage(&dir.path().join("learnpulse.index.db"));

    // Many queries at once, so that the pool opens connections that read the file afresh.
    let store = Arc::new(store);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut readers = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            readers.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    (true, ids(&store, by_agent("ada")).await)
                } else {
                    (false, ids(&store, by_registration()).await)
                }
            }));
        }
        for reader in readers {
            let (agent, got) = reader.await.unwrap();
            let expected = if agent { &expected_ada } else { &expected_reg };
            assert_eq!(
                &got, expected,
                "answers stay right while the index is damaged"
            );
        }
        let Storage::Sqlite(sqlite) = &*store else {
            unreachable!()
        };
        if sqlite.index_rebuilds() >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the damaged index was never rebuilt"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The new file is written from the log, and keeps up with what comes next.
    let more: Vec<NewStatement> = (0..10).map(|i| statement("ada", i, false)).collect();
    let mut newer: Vec<String> = more.iter().map(|s| s.id.to_string()).collect();
    newer.reverse();
    store.append(1, more).await.unwrap();
    wait_indexed(&store, 70).await;
    newer.extend(expected_ada);
    assert_eq!(ids(&store, by_agent("ada")).await, newer);
    assert_eq!(ids(&store, by_registration()).await, expected_reg);
    assert_eq!(
        rows_by_actor(&dir.path().join("learnpulse.index.db")),
        70,
        "every statement is in the new index by actor"
    );
    store.shutdown().await;
}

/// Rows in the index file's by-actor table, read by a connection of the test's own.
fn rows_by_actor(path: &std::path::Path) -> i64 {
    let index = rusqlite::Connection::open(path).unwrap();
    index
        .query_row("SELECT count(*) FROM by_actor", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_file_deleted_while_running_is_rebuilt() {
    index_damaged_while_running(|index| {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", index.display()));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_file_overwritten_while_running_is_rebuilt() {
    // In place (the same file, as a stray write or a bad disk would do), header included.
    index_damaged_while_running(|index| overwrite(index, 0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_file_with_corrupt_pages_while_running_is_rebuilt() {
    // Every page but the file header: the header check passes, reads of the pages fail.
    index_damaged_while_running(|index| overwrite(index, 100)).await;
}

/// Overwrites `path` from byte `from` to its end with garbage, in place.
fn overwrite(path: &std::path::Path, from: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let len = file.metadata().unwrap().len();
    file.seek(SeekFrom::Start(from)).unwrap();
    file.write_all(&vec![0x5a; (len - from) as usize]).unwrap();
    file.sync_all().unwrap();
}

/// When PostgreSQL drops every connection (a restart, a failover), appends fail with
/// `Unavailable` rather than hang, and the writer and the pool reconnect by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_that_drop_are_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::BACKEND
        .scope(common::Backend::Postgres, open(dir.path()))
        .await;
    store
        .append(1, vec![statement("ada", 1, false)])
        .await
        .unwrap();
    let admin = common::postgres_client(dir.path()).await;
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(killed.len() >= 2, "the writer's and the pool's connections");
    let mut failures = 0;
    let appended = loop {
        match store.append(1, vec![statement("ada", 2, false)]).await {
            Ok(appended) => break appended,
            Err(StoreError::Unavailable(_)) if failures < 3 => failures += 1,
            Err(e) => panic!("after {failures} failures: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(appended.through_seq, 2);
    assert_eq!(store.count_statements(Some(1)).await.unwrap(), 2);
    store.shutdown().await;
}

/// A request with a conflicting statement stores nothing, and does not take down the requests
/// committed with it; identical re-posts are no-ops that followers never see.
async fn appends_are_atomic_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()).await);
    let first = statement("ada", 1, false);
    let appended = store.append(1, vec![first.clone()]).await.unwrap();
    assert!(appended.through_seq > 0);
    assert_eq!(
        store
            .append(1, vec![first.clone()])
            .await
            .unwrap()
            .through_seq,
        0,
        "same statement: no-op"
    );
    let mut changed = first.clone();
    changed.fingerprint = [9; 16];
    let good = statement("bo", 2, false);
    let (conflicting, other) = tokio::join!(
        store.append(1, vec![statement("cy", 3, false), changed]),
        store.append(1, vec![good.clone()]),
    );
    assert!(matches!(conflicting, Err(StoreError::Conflict(id)) if id == first.id));
    assert!(other.is_ok());
    assert_eq!(
        store.count_statements(Some(1)).await.unwrap(),
        2,
        "ada's and bo's only"
    );
    assert!(store.statement(1, good.id, false).await.unwrap().is_some());
    assert!(
        store.statement(2, good.id, false).await.unwrap().is_none(),
        "tenant-scoped"
    );
    let log = store.read_log(0, 100).await.unwrap();
    assert_eq!(log.len(), 2);
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(store.head().await.unwrap(), log[1].seq);
    store.shutdown().await;
}

/// Many concurrent writers: a follower that reads past its watermark as soon as the head moves
/// never skips a statement (sequence numbers are commit order), and sees each once.
async fn followers_never_skip_a_row_under_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()).await);
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    let batch = (0..4)
                        .map(|j| statement(&format!("w{w}"), i * 4 + j, false))
                        .collect();
                    store.append(1, batch).await.unwrap();
                }
            })
        })
        .collect();
    let mut committed = store.committed();
    let mut seen = Vec::new();
    let mut watermark = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < 800 {
        assert!(
            Instant::now() < deadline,
            "the follower saw {} of 800",
            seen.len()
        );
        let page = store.read_log(watermark, 50).await.unwrap();
        if page.is_empty() {
            let _ = tokio::time::timeout(Duration::from_millis(200), committed.changed()).await;
            continue;
        }
        for e in &page {
            assert!(e.seq > watermark);
            watermark = e.seq;
            seen.push(e.seq);
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    // Nothing committed later may sit below what the follower has passed.
    let all: Vec<i64> = store
        .read_log(0, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(all, seen, "the follower saw the whole log, in order, once");
    store.shutdown().await;
}

async fn snapshots_replace_each_other_as_a_set() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    assert!(store.latest_snapshots().await.unwrap().is_empty());
    let snap = |tenant, covers_seq| Snapshot {
        tenant,
        covers_seq,
        body: vec![tenant as u8; 40],
        created_us: 1,
    };
    let kept = |learner: &str, covers_seq| KeptLearner {
        tenant: 1,
        learner: learner.into(),
        covers_seq,
        body: format!("{learner}@{covers_seq}").into_bytes(),
    };
    let kept_of = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    assert_eq!(store.latest_snapshot_covers().await.unwrap(), 0);
    store
        .save_snapshots(
            vec![snap(1, 10), snap(2, 10)],
            vec![kept("ada", 10), kept("bo", 10)],
        )
        .await
        .unwrap();
    store
        .save_snapshots(vec![snap(1, 20)], vec![kept("ada", 20)])
        .await
        .unwrap();
    assert_eq!(store.latest_snapshots().await.unwrap(), vec![snap(1, 20)]);
    assert_eq!(store.latest_snapshot_covers().await.unwrap(), 20);
    // Kept states outlive the set they came with; an older copy never replaces a newer one.
    store
        .save_snapshots(vec![snap(1, 15)], vec![kept("ada", 15)])
        .await
        .unwrap();
    let mut found = store
        .kept_learners(1, kept_of(&["ada", "bo", "cy"]))
        .await
        .unwrap();
    found.sort_by(|a, b| a.learner.cmp(&b.learner));
    assert_eq!(found, vec![kept("ada", 20), kept("bo", 10)]);
    assert!(
        store
            .kept_learners(2, kept_of(&["ada"]))
            .await
            .unwrap()
            .is_empty()
    );
    // An erasure scrubs the tenant's snapshot and the learner's kept state.
    let scrubbed = Snapshot {
        body: vec![9; 40],
        ..snap(1, 15)
    };
    store
        .scrub_snapshot(Some(scrubbed.clone()), 1, kept_of(&["ada"]))
        .await
        .unwrap();
    assert_eq!(store.latest_snapshots().await.unwrap(), vec![scrubbed]);
    let left = store
        .kept_learners(1, kept_of(&["ada", "bo"]))
        .await
        .unwrap();
    assert_eq!(left, vec![kept("bo", 10)]);
    store.delete_snapshots().await.unwrap();
    assert!(store.latest_snapshots().await.unwrap().is_empty());
    store.shutdown().await;
}

async fn tenants_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let t = store.create_tenant("district-9").await.unwrap();
    assert!(
        store.create_tenant("district-9").await.is_err(),
        "names are unique"
    );
    assert!(store.tenants().await.unwrap().iter().any(|x| x.id == t.id));
    assert_eq!(store.tenant_setting(t.id, "x").await.unwrap(), None);
    store
        .set_tenant_setting(t.id, "x", "1".into())
        .await
        .unwrap();
    store
        .set_tenant_setting(t.id, "x", "2".into())
        .await
        .unwrap();
    assert_eq!(
        store.tenant_setting(t.id, "x").await.unwrap().as_deref(),
        Some("2")
    );
    store.shutdown().await;
}

on_every_backend!(
    an_upgrade_fills_in_targets_and_related_keys,
    filtered_queries_span_the_index_and_the_tail,
    appends_are_atomic_per_request,
    followers_never_skip_a_row_under_concurrent_writers,
    snapshots_replace_each_other_as_a_set,
    tenants_and_settings,
);
