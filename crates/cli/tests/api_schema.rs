//! The API against its own OpenAPI document: schemathesis (`.ci/run` and the README's test
//! command install it in `target/venv-schemathesis`) generates requests from `/openapi.json`,
//! valid and invalid, for every operation, with a key of every role, and checks every answer:
//! no server error, only documented status codes and content types, bodies that match their
//! schemas, invalid requests refused and valid ones accepted (except where
//! `tests/api/schemathesis.toml` says why a schema cannot say everything).

mod common;

use std::path::PathBuf;

use common::{issue_key, post_events, start_server, target_dir};
use serde_json::json;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/schemathesis.toml");

fn schemathesis() -> PathBuf {
    let path = std::env::var_os("SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("venv-schemathesis/bin/schemathesis"));
    assert!(
        path.exists(),
        "schemathesis is missing at {}: scripts/test-tools.sh installs it (as .ci/run does)",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_its_document_says_for_every_role() {
    let schemathesis = schemathesis();
    let dir = tempfile::tempdir().unwrap();
    let (base, admin, stop, running) = start_server(dir.path()).await;
    let client = reqwest::Client::new();

    // Something to find: learners with answers in a class, a consent, a webhook receiver.
    let event = |who: &str, item: usize, outcome: &str| {
        json!({"learner_id": who, "item_id": format!("q{item}"), "skills": ["fractions"],
               "outcome": outcome, "group_id": "class-7b", "response_time_ms": 9000,
               "text": "I asked Ada Lovelace"})
    };
    let events: Vec<_> = (0..6)
        .map(|i| event(if i % 2 == 0 { "ada" } else { "bo" }, i, "incorrect"))
        .collect();
    post_events(&base, &admin, &events).await;
    let r = client
        .put(format!("{base}/v1/learners/ada/consent"))
        .bearer_auth(&admin)
        .json(&json!({"gdpr_consent": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!("{base}/v1/webhooks"))
        .bearer_auth(&admin)
        .json(&json!({"name": "lms", "endpoints": [{"url": "http://127.0.0.1:9/hook"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Every role; the admin last, whose run may change the policy or delete the receiver.
    let mut roles = Vec::new();
    for (role, groups) in [
        ("ingest", None),
        ("teacher", Some(vec!["class-7b"])),
        ("tutor", Some(vec!["class-7b"])),
        ("researcher", None),
        ("dpo", None),
    ] {
        let mut body = json!({"role": role});
        if let Some(groups) = groups {
            body["groups"] = json!(groups);
        }
        roles.push((role, issue_key(&base, &admin, body).await));
    }
    roles.push(("admin", admin.clone()));

    let mut failed = Vec::new();
    for (role, token) in &roles {
        let args = [
            "--config-file".to_owned(),
            CONFIG.to_owned(),
            "--no-color".to_owned(),
            "run".to_owned(),
            format!("{base}/openapi.json"),
            "--header".to_owned(),
            format!("Authorization: Bearer {token}"),
            "--max-examples".to_owned(),
            "15".to_owned(),
            "--seed".to_owned(),
            "20261206".to_owned(),
            "--workers".to_owned(),
            "1".to_owned(),
            "--request-timeout".to_owned(),
            "20".to_owned(),
        ];
        let program = schemathesis.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(program)
                .args(&args)
                .output()
                .expect("schemathesis runs")
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let summary = stdout
            .lines()
            .rev()
            .find(|l| l.contains(" in ") && l.starts_with('='))
            .unwrap_or("(no summary)")
            .to_owned();
        eprintln!("{role}: {summary}");
        if !out.status.success() {
            eprintln!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
            failed.push(*role);
        }
    }
    let _ = stop.send(());
    running.await.unwrap().unwrap();
    assert!(
        failed.is_empty(),
        "schemathesis found answers that differ from the document with the keys of {failed:?} (above)"
    );
}
