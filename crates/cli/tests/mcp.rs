//! MCP end to end with a real client: the official Python SDK (`pip install mcp`, which
//! `.ci/run` installs) acts as an AI tutor holding a `tutor` key scoped to one class, over
//! streamable HTTP (`/mcp`) and over stdio (`learnpulse mcp`). It lists and calls every tool and
//! resource; the same calls about a learner or class outside its scope are refused; every call
//! is in the audit log.

mod common;

use std::path::Path;
use std::process::Command;

use common::start_server;
use serde_json::{Value, json};

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/tutor_client.py");

/// Ada (class-7b) answers four items wrong: an intervention; Bob works in class-8a. Returns a
/// tutor key scoped to class-7b.
async fn classroom(base: &str, admin: &str) -> String {
    let client = reqwest::Client::new();
    let mut events: Vec<Value> = (0..4)
        .map(|i| {
            json!({"learner_id": "ada", "item_id": format!("q{i}"), "skills": ["fractions"],
                        "outcome": "incorrect", "group_id": "class-7b"})
        })
        .collect();
    events.push(
        json!({"learner_id": "bob", "item_id": "q1", "skills": ["fractions"],
                       "outcome": "correct", "group_id": "class-8a"}),
    );
    let r = client
        .post(format!("{base}/v1/events"))
        .bearer_auth(admin)
        .json(&json!({"events": events}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A tutor sees only the learners it is assigned: its key must name their groups.
    let r = client
        .post(format!("{base}/v1/admin/keys"))
        .bearer_auth(admin)
        .json(&json!({"role": "tutor", "label": "AI tutor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "groups");
    let r = client
        .post(format!("{base}/v1/admin/keys"))
        .bearer_auth(admin)
        .json(&json!({"role": "tutor", "label": "AI tutor", "groups": ["class-7b"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Runs the Python client with `args`; returns its report.
async fn run_client(args: Vec<String>) -> Value {
    common::run_python(CLIENT, args).await
}

fn assert_report(report: &Value) {
    assert_eq!(
        report["tools"],
        json!([
            "explain_learner",
            "group_overview",
            "learner_state",
            "recommend_interventions",
            "record_tutor_action"
        ])
    );
    assert_eq!(
        report["resources"],
        json!(["learnpulse://policies", "learnpulse://skills"])
    );
    assert!(report["read"]["learnpulse://policies"]["policies"].is_array());
    assert!(report["read"]["learnpulse://skills"]["fallback"].is_object());

    let calls = &report["calls"];
    for (name, call) in calls.as_object().unwrap() {
        assert_eq!(call["is_error"], false, "{name}: {call}");
    }
    let state = &calls["learner_state"]["structured"];
    let pseudonym = state["learner"].as_str().unwrap();
    assert!(
        pseudonym.starts_with('p') && pseudonym != "ada",
        "the tutor sees a pseudonym: {pseudonym}"
    );
    assert_eq!(state["skills"]["fractions"]["attempts"], 4);
    let explanation = calls["explain_learner"]["structured"]["explanation"]
        .as_str()
        .unwrap();
    assert!(explanation.contains("fractions: mastery"), "{explanation}");
    let rows = calls["group_overview"]["structured"]["learners"]
        .as_array()
        .unwrap();
    assert_eq!(rows.len(), 1, "class-7b has Ada only");
    assert_eq!(rows[0]["learner"], pseudonym);
    let recommended = &calls["recommend_interventions"]["structured"];
    // Ada's four wrong answers: an easier item after the third (an error streak of three),
    // then, under high load, a hint after the fourth (newest first).
    let decided: Vec<&str> = recommended["latest_decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["intervention"].as_str().unwrap())
        .collect();
    assert_eq!(decided, ["hint", "easier_item"], "{recommended}");
    let recorded = &calls["record_tutor_action"]["structured"];
    assert_eq!(recorded["outcome"], "helped");
    assert!(recorded["recorded"].as_str().unwrap().len() == 36);

    for (name, refused) in report["refused"].as_object().unwrap() {
        assert_eq!(
            refused["is_error"], true,
            "{name} outside the scope: {refused}"
        );
        assert_eq!(refused["structured"]["status"], 403, "{name}: {refused}");
    }
}

/// The tutor's statements, oldest first (the one with a note, then the minimal one).
async fn tutored_statements(base: &str, admin: &str) -> Vec<Value> {
    let r = reqwest::Client::new()
        .get(format!(
            "{base}/xAPI/statements?verb=https://learnpulse.dev/xapi/verbs/tutored&ascending=true"
        ))
        .bearer_auth(admin)
        .header("X-Experience-API-Version", "1.0.3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["statements"].as_array().unwrap().clone()
}

/// `tutor_reports` of the effectiveness report.
async fn tutor_reports(base: &str, admin: &str) -> Vec<Value> {
    let r = reqwest::Client::new()
        .get(format!("{base}/v1/interventions/effectiveness"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    report["tutor_reports"].as_array().unwrap().clone()
}

/// Every MCP call, allowed or refused, is an audit entry.
fn audited_calls(dir: &Path) -> Vec<Value> {
    let file = dir.join("audit-export.json");
    let out = Command::new(env!("CARGO_BIN_EXE_learnpulse"))
        .args(["audit", "export", "--data-dir", dir.to_str().unwrap()])
        .arg("--output")
        .arg(&file)
        .env_remove("LEARNPULSE_MASTER_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let export: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    export["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "mcp.call")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_mcp_client_over_streamable_http() {
    let dir = tempfile::tempdir().unwrap();
    let (base, admin, stop, running) = start_server(dir.path()).await;
    let tutor = classroom(&base, &admin).await;

    // Without a key, /mcp answers 401 like the rest of the API.
    let r = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // With a key but under a Host the server was not configured for (DNS rebinding): refused.
    let r = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .bearer_auth(&tutor)
        .header("host", "attacker.example")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "{:?}", r.text().await);

    let report = run_client(
        [
            "http",
            &format!("{base}/mcp"),
            &tutor,
            "ada",
            "bob",
            "class-7b",
            "class-8a",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert_report(&report);
    let statements = tutored_statements(&base, &admin).await;
    assert_eq!(statements.len(), 2);
    // The tutor's note went through the privacy pipeline like any free text.
    let note = statements[0]["result"]["response"].as_str().unwrap();
    assert!(!note.contains("tutor@example.com"), "redacted: {note}");
    assert!(note.contains("walked through"));
    assert!(statements[1].get("result").is_none(), "no note, no result");
    let reported = tutor_reports(&base, &admin).await;
    assert_eq!(reported.len(), 2, "{reported:?}");
    assert_eq!(reported[0]["action"], "hint");
    assert_eq!(reported[0]["unknown"], 1);
    assert_eq!(reported[0]["helped_share"], Value::Null, "nothing judged");
    assert_eq!(reported[1]["action"], "worked_example");
    assert_eq!(
        (&reported[1]["reports"], &reported[1]["helped"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(reported[1]["helped_share"]["share"], 1.0);
    let _ = stop.send(());
    running.await.unwrap().unwrap();

    // The report is in the log: a restart rebuilds the tally by replay.
    let (base, _, stop, running) = start_server(dir.path()).await;
    assert_eq!(tutor_reports(&base, &admin).await, reported);
    let _ = stop.send(());
    running.await.unwrap().unwrap();

    let audited = audited_calls(dir.path());
    assert_eq!(audited.len(), 11, "six calls in scope, five refused");
    assert_eq!(
        audited
            .iter()
            .filter(|e| e["detail"]["status"] == 403)
            .count(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_mcp_client_over_stdio() {
    let dir = tempfile::tempdir().unwrap();
    let (base, admin, stop, running) = start_server(dir.path()).await;
    let tutor = classroom(&base, &admin).await;
    let _ = stop.send(());
    running.await.unwrap().unwrap();

    // The client launches `learnpulse mcp` on the same data directory.
    let report = run_client(vec![
        "stdio".into(),
        env!("CARGO_BIN_EXE_learnpulse").into(),
        dir.path().to_str().unwrap().into(),
        tutor,
        "ada".into(),
        "bob".into(),
        "class-7b".into(),
        "class-8a".into(),
    ])
    .await;
    assert_report(&report);
    assert_eq!(audited_calls(dir.path()).len(), 11);
}
