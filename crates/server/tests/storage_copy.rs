//! `storage copy`: an installation built over HTTP on the embedded SQLite moves to PostgreSQL
//! whole (every table, row for row), a server on the copy answers as the original did with the
//! same keys and master key, and a copy back to SQLite equals the original.

mod common;

use std::path::Path;

use common::{TestApp, answered};
use learnpulse_server::privacy::seal::Sealer;
use learnpulse_server::storage::transfer::{Cell, TABLES, Table, key_of};
use learnpulse_server::storage::{Location, Storage, TransferStore};
use learnpulse_server::transfer::{CopyError, CopyReport, copy};
use serde_json::{Value, json};

/// Every row of `table`, in key order.
async fn rows(storage: &Storage, table: &'static Table) -> Vec<Vec<Cell>> {
    let mut all: Vec<Vec<Cell>> = Vec::new();
    loop {
        let after = all.last().map(|row| key_of(table, row));
        let page = storage.export_rows(table, after, 7).await.unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

async fn open(location: Location, data_dir: &Path) -> Storage {
    let config = common::config(data_dir);
    learnpulse_server::storage::open_at(&location, &config)
        .await
        .unwrap()
}

/// A SQLite installation with something in every kind of table: statements with PII in the
/// vault, consents, a second tenant, a researcher's DP release, a webhook receiver with
/// messages owed, the audit chain. Returns the admin token and the statements as served.
async fn build(dir: &Path) -> (String, Value) {
    let app = TestApp::start(dir).await;
    let admin = app.admin.clone();
    app.put_json("/v1/privacy/policy", &admin, &json!({"vault": true}))
        .await;
    app.put_json(
        "/v1/learners/kid/consent",
        &admin,
        &json!({"under_13": true, "parental_consent_verified": true}),
    )
    .await;
    let r = app
        .post_json(
            "/v1/webhooks",
            &admin,
            // Nothing listens on port 9: the messages stay owed.
            &json!({"name": "lms", "endpoints": [{"url": "http://127.0.0.1:9/hook"}]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let mut batch: Vec<Value> = (0..30)
        .map(|i| answered(&format!("l{}", i % 3), &format!("q{i}"), false))
        .collect();
    let mut pii = answered("kid", "q1", true);
    pii["result"]["response"] = json!("mail me at kid@school.example");
    batch.push(pii);
    let r = app.post_statements(&admin, &Value::Array(batch)).await;
    assert_eq!(r.status(), 200);
    let ids: Vec<String> = r.json().await.unwrap();
    // A StatementRef, so that its target is copied too.
    let comment = json!({
        "actor": {"account": {"homePage": "https://lms.example.edu", "name": "teacher"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/commented"},
        "object": {"objectType": "StatementRef", "id": ids[0]}
    });
    assert_eq!(app.post_statements(&admin, &comment).await.status(), 200);
    let r = app
        .client
        .put(app.url(&format!(
            "/xAPI/activities/state?activityId=https://lms.example.edu/items/q1&stateId=resume&agent={}",
            common::urlencode(r#"{"account":{"homePage":"https://lms.example.edu","name":"l1"}}"#)
        )))
        .bearer_auth(&admin)
        .header("X-Experience-API-Version", "2.0.0")
        .header("Content-Type", "application/octet-stream")
        .body(vec![0u8, 1, 2, 255])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    app.tenant("district-2").await;
    let researcher = app.key(&admin, "researcher").await;
    let r = app
        .post_json(
            "/v1/analytics/count",
            &researcher,
            &json!({"measure": "learners", "by": "group", "epsilon": 0.5,
                    "max_cells_per_learner": 1, "cells": ["class-7b"]}),
        )
        .await;
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let served = app.xapi_json("/xAPI/statements?limit=100", &admin).await;
    app.stop().await;
    (admin, served)
}

/// The SQLite installation in `dir` copied into this test's PostgreSQL database: both stores,
/// the database's URL, the master key and what the copy reported.
async fn copy_to_postgres(dir: &Path) -> (Storage, Storage, String, Sealer, CopyReport) {
    let master = Sealer::master(dir).unwrap();
    let sqlite = open(Location::Sqlite(dir.into()), dir).await;
    let url = common::postgres_url(dir);
    let postgres = open(Location::Postgres(url.clone()), dir).await;
    let report = copy(&sqlite, &postgres, &master, &mut |_, _, _| {})
        .await
        .unwrap();
    (sqlite, postgres, url, master, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_moves_to_postgres_whole_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, served) = build(dir.path()).await;
    let (sqlite, postgres, url, master, report) = copy_to_postgres(dir.path()).await;
    for table in [
        "tenants",
        "api_keys",
        "statements",
        "vault",
        "consents",
        "dp_ledger",
        "audit_log",
        "server_secrets",
        "webhook_receivers",
        "webhook_messages",
        "documents",
    ] {
        assert!(report.rows(table) > 0, "{table} copied nothing");
    }
    assert_eq!(report.rows("statements"), 32);
    assert!(report.audit_entries_verified > 0);
    for table in TABLES {
        assert_eq!(
            rows(&sqlite, table).await,
            rows(&postgres, table).await,
            "{}",
            table.name
        );
    }

    // Into a store that is not empty: refused, nothing merged.
    match copy(&sqlite, &postgres, &master, &mut |_, _, _| {}).await {
        Err(CopyError::TargetNotEmpty { table, .. }) => assert_eq!(table, "tenants"),
        other => panic!("{other:?}"),
    }

    // Back to a fresh directory: equal to the original, table by table.
    let back_dir = tempfile::tempdir().unwrap();
    let back = open(Location::Sqlite(back_dir.path().into()), back_dir.path()).await;
    copy(&postgres, &back, &master, &mut |_, _, _| {})
        .await
        .unwrap();
    for table in TABLES {
        assert_eq!(
            rows(&sqlite, table).await,
            rows(&back, table).await,
            "{}",
            table.name
        );
    }
    for storage in [sqlite, postgres, back] {
        storage.shutdown().await;
    }

    // A server on the copy: the same key, statements, learner and an intact audit chain; new
    // rows continue after the copied ones.
    let mut config = common::config(dir.path());
    config.storage.url = Some(url);
    let app = TestApp::start_with(config, Some(admin.clone())).await;
    assert_eq!(
        app.xapi_json("/xAPI/statements?limit=100", &admin).await,
        served
    );
    let learner: Value = app.get_json("/v1/learners/l1", &admin).await;
    assert_eq!(learner["answers"], 10);
    let report: Value = app.get_json("/v1/compliance/report", &admin).await;
    assert_eq!(report["state"]["audit_chain"]["verified"], true);
    app.tenant("district-3").await;
    assert_eq!(
        app.post_statements(&admin, &answered("l1", "q99", true))
            .await
            .status(),
        200
    );
    let learner: Value = app.get_json("/v1/learners/l1", &admin).await;
    assert_eq!(learner["answers"], 11);
    app.stop().await;
}

/// Rows from before the log kept the followers' input get it during the copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_rows_get_their_live_input_on_the_way() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, _) = build(dir.path()).await;
    let db = learnpulse_server::storage::sqlite::log_path(dir.path());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let emptied = conn
        .execute("UPDATE statements SET live = NULL WHERE seq <= 10", [])
        .unwrap();
    assert_eq!(emptied, 10);
    drop(conn);

    let (sqlite, postgres, url, _, report) = copy_to_postgres(dir.path()).await;
    assert_eq!(report.filled_live_inputs, 10);
    sqlite.shutdown().await;
    postgres.shutdown().await;

    // Without snapshots the PostgreSQL server replays the log: the filled-in inputs count.
    let mut config = common::config(dir.path());
    config.storage.url = Some(url);
    config.snapshots.enabled = false;
    let app = TestApp::start_with(config, Some(admin.clone())).await;
    let learner: Value = app.get_json("/v1/learners/l1", &admin).await;
    assert_eq!(learner["answers"], 10);
    app.stop().await;
}
