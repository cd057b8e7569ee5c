//! `learnpulse storage copy` and `learnpulse migrate` from the command line: a stopped server's
//! data directory moves to PostgreSQL, the copy's audit chain verifies there with the existing
//! `audit verify`, and a second copy into the same database is refused.

use std::process::{Command, Output};

use serde_json::{Value, json};

mod common;
use common::start_server;

fn learnpulse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_learnpulse"))
        .args(args)
        .env_remove("LEARNPULSE_MASTER_KEY")
        .env_remove("LEARNPULSE_STORAGE")
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_data_directory_moves_to_postgres_and_verifies_there() {
    let dir = tempfile::tempdir().unwrap();
    let (base, token, stop, running) = start_server(dir.path()).await;
    let events: Vec<Value> = (0..8)
        .map(|i| {
            json!({"learner_id": "ada@school.example", "item_id": format!("q{i}"),
                        "skills": ["ratios"], "outcome": "correct"})
        })
        .collect();
    common::post_events(&base, &token, &events).await;
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();

    let data = dir.path().to_str().unwrap();
    let url = common::postgres_url(dir.path());
    let out = learnpulse(&["storage", "copy", "--from", data, "--to", &url]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("copied"), "{stdout}");
    assert!(stdout.contains("log head 8"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("statements"),
        "per-table progress: {stderr}"
    );

    // The existing chain check, pointed at the copy.
    let out = learnpulse(&["audit", "verify", "--data-dir", data, "--storage", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["entries"].as_u64().unwrap() > 0, "{report}");

    let out = learnpulse(&["migrate", "--data-dir", data, "--storage", &url]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("event log"),
        "lists the migrations: {stdout}"
    );

    let out = learnpulse(&["storage", "copy", "--from", data, "--to", &url]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not empty"), "{stderr}");

    let empty = tempfile::tempdir().unwrap();
    let out = learnpulse(&[
        "storage",
        "copy",
        "--from",
        empty.path().to_str().unwrap(),
        "--to",
        &url,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no learnpulse data"));
}
