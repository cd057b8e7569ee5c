//! The SQLite log and its deferred indexes: queries are complete whether a statement is already
//! indexed or still in the log's tail, and a lost index file is rebuilt from the log.

use std::time::{Duration, Instant};

use learnpulse_server::storage::sqlite::SqliteOptions;
use learnpulse_server::storage::{
    Durability, EventLog, NewStatement, SqliteStorage, StatementQuery,
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

fn options(dir: &std::path::Path) -> SqliteOptions {
    SqliteOptions {
        path: dir.join("learnpulse.db"),
        durability: Durability::Process,
        max_batch_statements: 1_000,
    }
}

fn open(dir: &std::path::Path) -> SqliteStorage {
    let store = SqliteStorage::open(&options(dir)).unwrap();
    store.start(Box::new(|_| {})).unwrap();
    store
}

async fn wait_indexed(store: &SqliteStorage, at_least: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.indexed_through() < at_least {
        assert!(Instant::now() < deadline, "the indexer did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ids of every statement matching `q`, newest first, following the cursor across pages.
async fn ids(store: &SqliteStorage, mut q: StatementQuery) -> Vec<String> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_queries_span_the_index_and_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
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
    store.shutdown();

    // A lost index file is rebuilt from the log, and answers stay the same meanwhile.
    std::fs::remove_file(dir.path().join("learnpulse.index.db")).unwrap();
    let _ = std::fs::remove_file(dir.path().join("learnpulse.index.db-wal"));
    let _ = std::fs::remove_file(dir.path().join("learnpulse.index.db-shm"));
    let store = open(dir.path());
    assert_eq!(ids(&store, by_agent("ada")).await, expected_ada);
    wait_indexed(&store, 70).await;
    assert_eq!(ids(&store, by_agent("ada")).await, expected_ada);
    assert_eq!(ids(&store, by_registration()).await, expected_reg);
    store.shutdown();
}
