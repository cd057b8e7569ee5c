//! The dashboard in a real browser: `tests/browser/dashboard.py` (Playwright for Python driving
//! Debian's `chromium`, with axe-core from npm; `.ci/run` installs all three) against a server
//! started here with a roster, two classes and a struggling learner. Screenshots of every page
//! are kept under `target/dashboard-screenshots/` (the README shows them).

mod common;

use std::path::PathBuf;

use common::{issue_key as key, post_events, start_server, target_dir};
use serde_json::{Value, json};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/dashboard.py");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teacher_follows_the_class_live_in_a_browser() {
    let axe = std::env::var_os("AXE_CORE")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("npm/node_modules/axe-core/axe.min.js"));
    assert!(
        axe.exists(),
        "axe-core is missing at {}: npm install --no-save --prefix target/npm axe-core (as .ci/run does)",
        axe.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let (base, admin, stop, running) = start_server(dir.path()).await;
    let r = reqwest::Client::new()
        .put(format!("{base}/v1/privacy/roster"))
        .bearer_auth(&admin)
        .json(&json!({"learners": {"ada": "Ada Lovelace", "bo": "Bo Diddley", "cy": "Cy Young"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let event = |who: &str, item: usize, outcome: &str, group: &str| {
        json!({"learner_id": who, "item_id": format!("q{item}"), "skills": ["fractions"],
               "outcome": outcome, "group_id": group, "response_time_ms": 12000})
    };
    let mut events: Vec<Value> = (0..4)
        .map(|i| event("ada", i, "incorrect", "class-7b"))
        .collect();
    events.extend((0..3).map(|i| event("bo", i, "correct", "class-7b")));
    events.extend((0..3).map(|i| event("cy", i, "correct", "class-8a")));
    post_events(&base, &admin, &events).await;

    let teacher = key(
        &base,
        &admin,
        json!({"role": "teacher", "groups": ["class-7b"]}),
    )
    .await;
    let other = key(
        &base,
        &admin,
        json!({"role": "teacher", "groups": ["class-8a"]}),
    )
    .await;
    let researcher = key(&base, &admin, json!({"role": "researcher"})).await;
    let ingest = key(&base, &admin, json!({"role": "ingest"})).await;
    let dpo = key(&base, &admin, json!({"role": "dpo"})).await;
    let shots = target_dir().join("dashboard-screenshots");
    let args: Vec<String> = vec![
        "--url".into(),
        base.clone(),
        "--teacher".into(),
        teacher,
        "--other-teacher".into(),
        other,
        "--researcher".into(),
        researcher,
        "--ingest".into(),
        ingest,
        "--dpo".into(),
        dpo,
        "--admin".into(),
        admin.clone(),
        "--axe".into(),
        axe.display().to_string(),
        "--shots".into(),
        shots.display().to_string(),
    ];
    let report = common::run_python(SCRIPT, args).await;
    assert_eq!(report["checks"].as_array().unwrap().len(), 10, "{report}");
    for page in [
        "sign-in",
        "class",
        "learner",
        "interventions",
        "compliance",
        "operations",
    ] {
        assert!(
            report["accessibility"][page].is_array(),
            "{page} was checked"
        );
        assert!(shots.join(format!("{page}.png")).exists());
    }
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}
