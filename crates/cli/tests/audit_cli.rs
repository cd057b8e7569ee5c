//! The audit chain end to end: a real server records accesses, `learnpulse audit verify` checks
//! the stored chain, and every kind of tampering with the database file is caught and located.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

mod common;
use common::start_server;

fn learnpulse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_learnpulse"))
        .args(args)
        .env_remove("LEARNPULSE_MASTER_KEY")
        .output()
        .unwrap()
}

fn verify(dir: &Path) -> (bool, Value) {
    let out = learnpulse(&["audit", "verify", "--data-dir", dir.to_str().unwrap()]);
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), report)
}

/// A copy of a stopped server's data directory, to tamper with.
fn copy(dir: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    to
}

fn sql(dir: &Path, statement: &str) {
    let conn = rusqlite::Connection::open(dir.join("learnpulse.db")).unwrap();
    conn.execute_batch(statement).unwrap();
}

/// Runs a server on `dir`, makes it record a dozen audited actions, stops it.
async fn audited_activity(dir: &Path) {
    let (base, token, stop, running) = start_server(dir).await;
    let client = reqwest::Client::new();
    let events: Vec<Value> = (0..6)
        .map(|i| json!({"learner_id": "ada@school.example", "item_id": format!("q{i}"), "skills": ["ratios"], "outcome": "correct"}))
        .collect();
    common::post_events(&base, &token, &events).await;
    for _ in 0..5 {
        let r = client
            .get(format!("{base}/v1/learners/ada@school.example"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = client
        .put(format!("{base}/v1/learners/ada@school.example/consent"))
        .bearer_auth(&token)
        .json(&json!({"gdpr_consent": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_chain_verifies_and_every_tampering_is_located() {
    let dir = tempfile::tempdir().unwrap();
    audited_activity(dir.path()).await;

    // An admin action from the command line joins the same chain.
    let out = learnpulse(&[
        "admin",
        "create-key",
        "--tenant",
        "1",
        "--role",
        "teacher",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (ok, report) = verify(dir.path());
    assert!(ok, "{report}");
    let entries = report["entries"].as_u64().unwrap();
    assert!(entries >= 8, "{report}");
    assert_eq!(
        report["signed_through"],
        entries - 1,
        "shutdown signed the head; the command's entry came after"
    );

    // Entries name learners by pseudonym only.
    let conn = rusqlite::Connection::open(dir.path().join("learnpulse.db")).unwrap();
    let texts: Vec<String> = conn
        .prepare("SELECT action || ' ' || coalesce(subject, '') || ' ' || detail FROM audit_log")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        texts.iter().any(|t| t.starts_with("learner.read p1_")),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t.starts_with("consent.change p1_")));
    assert!(texts.iter().any(|t| t.starts_with("key.create lpk_")));
    assert!(texts.iter().all(|t| !t.contains("ada@")), "{texts:?}");
    drop(conn);

    // A server started on the directory signs what the command left unsigned, without waiting
    // for new entries of that tenant.
    let signed = copy(dir.path());
    {
        let mut config = common::config(signed.path());
        config.audit.checkpoint_interval_secs = 1;
        let (_base, _token, stop, running) = common::start_server_with(config).await;
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        stop.send(()).unwrap();
        running.await.unwrap().unwrap();
    }
    let (ok, report) = verify(signed.path());
    assert!(ok, "{report}");
    assert_eq!(
        report["signed_through"], report["entries"],
        "everything is signed now: {report}"
    );

    // Changing an entry.
    let d = copy(dir.path());
    sql(
        d.path(),
        "UPDATE audit_log SET detail = '{\"found\":false}' WHERE seq = 3",
    );
    let (ok, report) = verify(d.path());
    assert!(!ok);
    assert_eq!(report["seq"], 3, "{report}");

    // Deleting one.
    let d = copy(dir.path());
    sql(d.path(), "DELETE FROM audit_log WHERE seq = 4");
    let (ok, report) = verify(d.path());
    assert!(!ok);
    assert_eq!(report["seq"], 4, "{report}");

    // Reordering two (swapping everything but their positions).
    let d = copy(dir.path());
    sql(
        d.path(),
        "UPDATE audit_log SET seq = -2 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3; \
         UPDATE audit_log SET seq = 3 WHERE seq = -2;",
    );
    let (ok, report) = verify(d.path());
    assert!(!ok);
    assert_eq!(report["seq"], 2, "{report}");

    // Cutting the tail: the chain that is left is consistent, the signed checkpoint is not.
    let d = copy(dir.path());
    sql(
        d.path(),
        &format!("DELETE FROM audit_log WHERE seq >= {}", entries - 1),
    );
    let (ok, report) = verify(d.path());
    assert!(!ok, "{report}");

    // An export verifies on its own, and an edited export does not.
    let export = dir.path().join("audit.json");
    let out = learnpulse(&[
        "audit",
        "export",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--output",
        export.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let out = learnpulse(&["audit", "verify", "--file", export.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    doc["entries"][1]["actor"] = json!("lpk_somebody_else");
    std::fs::write(&export, doc.to_string()).unwrap();
    let out = learnpulse(&["audit", "verify", "--file", export.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken at entry 2"));
}

fn verify_tenant(dir: &Path, tenant: i64) -> (bool, Value) {
    let out = learnpulse(&[
        "audit",
        "verify",
        "--tenant",
        &tenant.to_string(),
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), report)
}

#[tokio::test]
async fn each_tenant_has_a_chain_that_checks_and_exports_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (base, admin, stop, running) = start_server(dir.path()).await;
    let client = reqwest::Client::new();
    let (second_id, second) = common::create_tenant(&base, &admin, "district-2").await;
    // Both tenants' accesses, interleaved in the one sequence.
    for token in [&admin, &second, &admin, &second] {
        common::post_events(&base, token, &[json!({"learner_id": "ada", "item_id": "q1", "skills": ["ratios"], "outcome": "correct"})]).await;
        let r = client
            .get(format!("{base}/v1/learners/ada"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();

    let (ok, whole) = verify(dir.path());
    assert!(ok, "{whole}");
    let (ok, first) = verify_tenant(dir.path(), 1);
    assert!(ok, "{first}");
    let (ok, other) = verify_tenant(dir.path(), second_id);
    assert!(ok, "{other}");
    assert!(other["entries"].as_u64().unwrap() >= 2, "{other}");
    assert_eq!(
        first["entries"].as_u64().unwrap() + other["entries"].as_u64().unwrap(),
        whole["entries"].as_u64().unwrap(),
        "the two chains make up the installation's entries"
    );
    assert_eq!(
        other["checkpoints"], 1,
        "shutdown signed the tenant's head: {other}"
    );

    // A one-tenant export holds that tenant's chain and checkpoints only, and checks alone.
    let export = dir.path().join("tenant.json");
    let out = learnpulse(&[
        "audit",
        "export",
        "--tenant",
        &second_id.to_string(),
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--output",
        export.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    let tenants_in = |list: &str| -> Vec<i64> {
        doc[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["tenant"].as_i64().unwrap())
            .collect()
    };
    assert!(
        tenants_in("entries").iter().all(|t| *t == second_id),
        "{doc}"
    );
    assert!(
        tenants_in("checkpoints").iter().all(|t| *t == second_id),
        "{doc}"
    );
    let out = learnpulse(&["audit", "verify", "--file", export.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An entry of tenant 1 deleted: the installation's check and tenant 1's fail, the other
    // tenant's chain still holds.
    let d = copy(dir.path());
    sql(
        d.path(),
        "DELETE FROM audit_log WHERE seq = (SELECT min(seq) FROM audit_log WHERE tenant_id = 1)",
    );
    assert!(!verify(d.path()).0);
    assert!(!verify_tenant(d.path(), 1).0);
    assert!(verify_tenant(d.path(), second_id).0);
}

#[tokio::test]
async fn the_compliance_report_command_fetches_json_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let (base, token, stop, running) = start_server(dir.path()).await;
    let page = dir.path().join("report.html");
    let (b, t, p) = (base.clone(), token.clone(), page.clone());
    let (json_out, html_out) = tokio::task::spawn_blocking(move || {
        let json_out = learnpulse(&["compliance", "report", "--url", &b, "--key", &t]);
        let html_out = learnpulse(&[
            "compliance",
            "report",
            "--url",
            &b,
            "--key",
            &t,
            "--format",
            "html",
            "--output",
            p.to_str().unwrap(),
        ]);
        (json_out, html_out)
    })
    .await
    .unwrap();
    assert!(
        json_out.status.success(),
        "{}",
        String::from_utf8_lossy(&json_out.stderr)
    );
    let report: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert!(report["score"].as_f64().is_some());
    assert!(html_out.status.success());
    assert!(
        std::fs::read_to_string(&page)
            .unwrap()
            .contains("<h1>Compliance report</h1>")
    );
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}

fn verify_with_witness(dir: &Path, witness: &Path) -> (bool, String) {
    let out = learnpulse(&[
        "audit",
        "verify",
        "--data-dir",
        dir.to_str().unwrap(),
        "--witness",
        witness.to_str().unwrap(),
    ]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_outside_the_database_catches_a_wipe_or_a_cut_back_chain() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let witness = elsewhere.path().join("audit-witness.jsonl");
    let mut config = common::config(dir.path());
    config.audit.witness = Some(witness.clone());
    config.audit.checkpoint_interval_secs = 1;
    let (base, token, stop, running) = common::start_server_with(config).await;
    let events: Vec<Value> = (0..4)
        .map(|i| json!({"learner_id": "ada", "item_id": format!("q{i}"), "outcome": "correct"}))
        .collect();
    common::post_events(&base, &token, &events).await;
    // The timer signs what waits, and publishes it, without a shutdown or 256 entries.
    let mut published = 0;
    for _ in 0..60 {
        published = std::fs::read_to_string(&witness)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if published > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        published > 0,
        "a checkpoint reached the witness while running"
    );
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let r = client
            .get(format!("{base}/v1/learners/ada"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();

    let (ok, why) = verify_with_witness(dir.path(), &witness);
    assert!(ok, "{why}");

    // Cut back, with the database's own checkpoints cut back too: the database alone cannot
    // tell, the witness can.
    let d = copy(dir.path());
    sql(
        d.path(),
        "DELETE FROM audit_log WHERE seq > (SELECT max(seq) - 2 FROM audit_log); \
         DELETE FROM audit_checkpoints WHERE seq > (SELECT max(seq) FROM audit_log);",
    );
    assert!(verify(d.path()).0, "consistent without the witness");
    let (ok, why) = verify_with_witness(d.path(), &witness);
    assert!(!ok);
    assert!(why.contains("cut back"), "{why}");

    // Wiped.
    let d = copy(dir.path());
    sql(
        d.path(),
        "DELETE FROM audit_log; DELETE FROM audit_checkpoints;",
    );
    assert!(verify(d.path()).0, "an empty chain is consistent");
    assert!(!verify_with_witness(d.path(), &witness).0);

    // One entry changed and the database's checkpoint of it removed: the witness still has it.
    let d = copy(dir.path());
    sql(
        d.path(),
        "UPDATE audit_log SET hash = zeroblob(32) WHERE seq = 1; DELETE FROM audit_checkpoints;",
    );
    assert!(!verify_with_witness(d.path(), &witness).0);
}
