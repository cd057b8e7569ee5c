//! Data-subject requests, black-box: access gathers everything held about a learner; erasure
//! leaves no trace of them in any store (checked in the raw database files on SQLite, every row on PostgreSQL, and every cache),
//! only the audit chain's pseudonymous tombstone.

mod common;

use common::{TestApp, answered, problem};
use learnpulse_server::storage::{AccountStore, AuditStore};
use serde_json::{Value, json};

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn request(app: &TestApp, dpo: &str, kind: &str, learner: &str) -> Value {
    let r = app
        .client
        .post(app.url("/v1/compliance/requests"))
        .bearer_auth(dpo)
        .json(&json!({"kind": kind, "learner": learner}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn access_gathers_everything_and_erasure_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    app.client
        .put(app.url("/v1/privacy/policy"))
        .bearer_auth(&app.admin)
        .json(&json!({"vault": true}))
        .send()
        .await
        .unwrap();
    let dpo = app.key(&app.admin, "dpo").await;
    let ada = app.pseudonym(&app.admin, "ada").await;

    // Ada's answers, one with free text (its e-mail address goes to the vault); Bo's review of
    // Ada, which names her; Cy's answer, which must survive.
    let mut batch = vec![
        answered("ada", "q1", true),
        answered("ada", "q2", false),
        answered("ada", "q3", true),
    ];
    batch[1]["result"]["response"] = json!("teal-unique-marker, write to ada.private@home.example");
    let mut review = answered("bo", "review-7", true);
    review["object"] = json!({"objectType": "Agent", "account": {"homePage": "https://lms.example.edu", "name": "ada"}});
    batch.push(review);
    batch.push(answered("cy", "q1", true));
    let ids: Vec<String> = app
        .post_statements(&app.admin, &Value::Array(batch))
        .await
        .json()
        .await
        .unwrap();
    app.client
        .put(app.url("/v1/learners/ada/consent"))
        .bearer_auth(&app.admin)
        .json(&json!({"gdpr_consent": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(app.get("/v1/learners/ada", &app.admin).await.status(), 200);
    let found: Value = app
        .get_json(&format!("/v1/vault/{}/EMAIL_1", ids[1]), &dpo)
        .await;
    assert_eq!(found["original"], "ada.private@home.example");

    // Access: her statements (and Bo's review of her), her state, her consents, the audit.
    let answer = request(&app, &dpo, "access", "ada").await;
    let archive = &answer["archive"];
    assert_eq!(archive["learner"], ada.as_str());
    assert_eq!(archive["statements"].as_array().unwrap().len(), 4);
    assert_eq!(archive["learner_state"]["answers"], 3);
    assert!(
        archive["learner_state"]["load"].is_object(),
        "her own cognitive data too"
    );
    assert_eq!(archive["consent"]["gdpr_consent"], true);
    assert_eq!(archive["consent_history"].as_array().unwrap().len(), 1);
    assert!(
        archive["audit_entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "learner.read")
    );
    assert!(answer["request"]["completed_us"].is_i64());

    // Erasure.
    let answer = request(&app, &dpo, "erasure", "ada").await;
    let erased = &answer["erased"];
    assert_eq!(erased["event_log"]["statements"], 4, "{erased}");
    assert_eq!(erased["event_log"]["vault_entries"], 1);
    assert_eq!(erased["event_log"]["actors"], 1);
    assert_eq!(erased["learner_states"], 1);
    assert_eq!(erased["consent_rows"], 2);

    // Gone from every API...
    assert_eq!(app.get("/v1/learners/ada", &app.admin).await.status(), 404);
    for id in &ids[..4] {
        assert_eq!(app.get_statement(&app.admin, id).await.status(), 404);
    }
    let r = app.get("/v1/learners/ada/consent", &app.admin).await;
    assert_eq!(r.status(), 404);
    let agent = r#"{"account":{"homePage":"https://lms.example.edu","name":"ada"}}"#;
    let page = app
        .xapi_json(
            &format!(
                "/xAPI/statements?agent={}",
                agent
                    .replace('"', "%22")
                    .replace('{', "%7B")
                    .replace('}', "%7D")
                    .replace(':', "%3A")
                    .replace('/', "%2F")
                    .replace(',', "%2C")
            ),
            &app.admin,
        )
        .await;
    assert_eq!(page["statements"].as_array().unwrap().len(), 0);
    // ...while everyone else's data stays.
    assert_eq!(app.get_statement(&app.admin, &ids[4]).await.status(), 200);
    assert_eq!(app.get("/v1/learners/cy", &app.admin).await.status(), 200);
    let requests: Value = app.get_json("/v1/compliance/requests", &dpo).await;
    assert_eq!(requests.as_array().unwrap().len(), 2);
    let r = app
        .client
        .post(app.url("/v1/compliance/requests"))
        .bearer_auth(&app.admin)
        .json(&json!({"kind": "erasure", "learner": "cy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "only a dpo answers requests");
    let r = app
        .client
        .post(app.url("/v1/compliance/requests"))
        .bearer_auth(&dpo)
        .json(&json!({"kind": "forget", "learner": "cy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await["field"], "kind");

    let admin = app.admin.clone();
    app.stop().await;

    // The store: no statement text, address, actor identifier, JSON name or statement id of
    // hers is anywhere.
    let raw = common::raw_store(dir.path()).await;
    let ifi = format!("account:https://learnpulse.dev/pseudonym|{ada}");
    let name = format!("\"name\":\"{ada}\"");
    for needle in [
        "teal-unique-marker",
        "ada.private@home.example",
        ifi.as_str(),
        name.as_str(),
    ] {
        assert!(!holds(&raw, needle.as_bytes()), "{needle} is still stored");
    }
    for id in &ids[..4] {
        let uuid = uuid::Uuid::parse_str(id).unwrap();
        assert!(
            !holds(&raw, uuid.as_bytes()),
            "statement {id} is still stored"
        );
        // As text, only the audit chain still has it (what was done with it, not what it said).
        let holding = common::tables_holding(dir.path(), id).await;
        assert!(
            holding.iter().all(|t| t.starts_with("audit_")),
            "{holding:?} still hold statement {id}"
        );
    }
    // The pseudonym itself survives only in the audit chain (the tombstone).
    let holding = common::tables_holding(dir.path(), &ada).await;
    assert!(
        holding.iter().all(|t| t.starts_with("audit_")),
        "{holding:?} still name her"
    );
    assert!(holding.contains(&"audit_log".to_owned()));
    let storage = common::storage(dir.path()).await;
    let tenant = storage.tenants().await.unwrap()[0].id;
    let about = storage
        .audit_entries_about(tenant, vec![ada.clone()])
        .await
        .unwrap();
    let tombstones = about
        .iter()
        .filter(|e| e.event.action == "subject.erasure")
        .count();
    assert_eq!(tombstones, 1);
    storage.shutdown().await;
    drop(storage);

    // A restart replays the log: she does not come back.
    let app = TestApp::start_with(common::config(dir.path()), Some(admin)).await;
    assert_eq!(app.get("/v1/learners/ada", &app.admin).await.status(), 404);
    assert_eq!(app.get("/v1/learners/cy", &app.admin).await.status(), 200);
    app.stop().await;
}

/// Every file under `dir`, recursively (the databases, their WALs, snapshots, model files).
fn every_file(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(every_file(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            // (A WAL may vanish as the stopped server's last connection closes.)
            files.push((path.display().to_string(), bytes));
        }
    }
    files
}

/// The end-to-end erasure: a learner with a distinctive account name, her name and e-mail in
/// free text, interventions decided about her and webhook messages about her waiting for a
/// receiver that is down. After the erasure and a restart, no file of the data directory (and
/// no row of the PostgreSQL database) holds her account name, e-mail or name; her pseudonym
/// survives only as the audit tombstone, and no API lists her interventions.
async fn erasure_leaves_nothing_of_interventions_webhooks_or_free_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    // The receiver below is down: its messages wait, retried only after a minute.
    config.webhooks.retry_schedule_secs = vec![60.0];
    let app = TestApp::start_with(config.clone(), None).await;
    app.put_json("/v1/privacy/policy", &app.admin, &json!({"vault": true}))
        .await;
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = down.local_addr().unwrap().port();
    drop(down);
    let r = app
        .post_json(
            "/v1/webhooks",
            &app.admin,
            &json!({"name": "down", "endpoints": [{"url": format!("http://127.0.0.1:{port}/hooks")}]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let receiver: Value = r.json().await.unwrap();
    let raw_id = "ada-lovelace-4417";
    let ada = app.pseudonym(&app.admin, raw_id).await;
    let cy = app.pseudonym(&app.admin, "cy-2").await;

    // Both struggle (four wrong answers each), which decides an intervention for each.
    let mut batch = Vec::new();
    for who in [raw_id, "cy-2"] {
        for i in 0..4 {
            let mut s = answered(who, &format!("q{i}"), false);
            s["timestamp"] = json!(format!("2026-11-26T10:{i:02}:00Z"));
            batch.push(s);
        }
    }
    batch[1]["result"]["response"] =
        json!("Ada Lovelace here: I give up, mail me at ada.lovelace@home.example");
    let r = app.post_statements(&app.admin, &Value::Array(batch)).await;
    assert_eq!(r.status(), 200);
    let pending = format!("/v1/webhooks/{}/messages?state=pending", receiver["id"]);
    let mut waiting = 0;
    for _ in 0..200 {
        waiting = app.get_json::<Vec<Value>>(&pending, &app.admin).await.len();
        if waiting >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(waiting >= 2, "messages about both wait for the receiver");
    let about = |list: &[Value], who: &str| list.iter().filter(|d| d["learner"] == who).count();
    let decided: Vec<Value> = app.get_json("/v1/interventions", &app.admin).await;
    assert!(
        about(&decided, &ada) >= 1 && about(&decided, &cy) >= 1,
        "{decided:?}"
    );

    // The scan below can see what it looks for: before the erasure the store holds her
    // answer's words and her pseudonym outside the audit chain.
    let before = common::raw_store(dir.path()).await;
    assert!(holds(&before, b"I give up"));
    assert!(
        common::tables_holding(dir.path(), &ada)
            .await
            .iter()
            .any(|t| !t.starts_with("audit_"))
    );

    let dpo = app.key(&app.admin, "dpo").await;
    let answer = request(&app, &dpo, "erasure", raw_id).await;
    assert!(
        answer["erased"]["webhook_messages"].as_u64().unwrap() >= 1,
        "{answer}"
    );
    assert_eq!(answer["erased"]["event_log"]["statements"], 4, "{answer}");
    let decided: Vec<Value> = app.get_json("/v1/interventions", &app.admin).await;
    assert_eq!(about(&decided, &ada), 0, "her interventions are gone");
    assert!(about(&decided, &cy) >= 1, "his stay");
    let left: Vec<Value> = app.get_json(&pending, &app.admin).await;
    assert!(!left.is_empty());
    assert!(
        left.iter()
            .all(|m| m["payload"]["data"]["learner"] != ada.as_str())
    );
    // Even if the process died now, the outbox's files (its WAL included) would not name her.
    for (file, bytes) in every_file(dir.path()) {
        if file.contains("outbox") {
            assert!(!holds(&bytes, ada.as_bytes()), "{file} still names her");
        }
    }
    let admin = app.admin.clone();
    app.stop().await;

    // A restart follows the log and loads the snapshot: she does not come back.
    let app = TestApp::start_with(config, Some(admin)).await;
    let decided: Vec<Value> = app.get_json("/v1/interventions", &app.admin).await;
    assert_eq!(about(&decided, &ada), 0, "{decided:?}");
    assert!(about(&decided, &cy) >= 1);
    assert_eq!(
        app.get(&format!("/v1/learners/{raw_id}"), &app.admin)
            .await
            .status(),
        404
    );
    app.stop().await;

    // Every byte of every file (and, on PostgreSQL, every row).
    let mut stores = every_file(dir.path());
    stores.push(("store".into(), common::raw_store(dir.path()).await));
    for (file, bytes) in &stores {
        for needle in [raw_id, "ada.lovelace@home.example", "Lovelace", "I give up"] {
            assert!(
                !holds(bytes, needle.as_bytes()),
                "{file} still holds {needle}"
            );
        }
        // Only the database with the audit chain may hold the pseudonym (the tombstone).
        if !file.ends_with("learnpulse.db")
            && !file.ends_with("learnpulse.db-wal")
            && file != "store"
        {
            assert!(
                !holds(bytes, ada.as_bytes()),
                "{file} still names her pseudonym"
            );
        }
    }
    let holding = common::tables_holding(dir.path(), &ada).await;
    assert!(
        holding.iter().all(|t| t.starts_with("audit_")),
        "{holding:?} still name her"
    );
}

on_every_backend!(
    access_gathers_everything_and_erasure_leaves_no_trace,
    erasure_leaves_nothing_of_interventions_webhooks_or_free_text,
);
