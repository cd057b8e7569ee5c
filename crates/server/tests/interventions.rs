//! Interventions, black-box: decisions from the built-in and a tenant's own policies, on the
//! list and on the live stream, and across a restart.

mod common;

use std::time::Duration;

use common::{TestApp, answered, problem};
use serde_json::{Value, json};

fn wrong(who: &str, i: usize) -> Value {
    let mut s = answered(who, &format!("q{i}"), false);
    s["timestamp"] = json!(format!("2026-11-26T09:{:02}:00Z", i));
    s
}

async fn struggling_learners_get_interventions_listed_and_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let teacher = app.key(&app.admin, "teacher").await;
    let mut stream = app.get("/v1/stream?learner=ada", &teacher).await;
    assert_eq!(stream.status(), 200);

    let batch: Vec<Value> = (0..4).map(|i| wrong("ada", i)).collect();
    assert_eq!(
        app.post_statements(&app.admin, &Value::Array(batch))
            .await
            .status(),
        200
    );

    // The stream carries the decision right after the learner update that caused it.
    let mut text = String::new();
    while !text.contains("event: intervention") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("an intervention within 10 s")
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let data = text
        .split("event: intervention")
        .nth(1)
        .and_then(|rest| rest.lines().find_map(|l| l.strip_prefix("data: ")))
        .unwrap();
    let decision: Value = serde_json::from_str(data).unwrap();
    assert_eq!(decision["intervention"], "easier_item");
    assert_eq!(decision["policy"], "error_streak_easier_item");
    assert!(
        decision["reasons"][0]
            .as_str()
            .unwrap()
            .contains("wrong answers in a row"),
        "teachers see why: {decision}"
    );

    let listed: Vec<Value> = app
        .get_json("/v1/interventions?learner=ada", &teacher)
        .await;
    // Newest first: after the fourth wrong answer the load is high, and a hint follows.
    let policies: Vec<&str> = listed
        .iter()
        .map(|d| d["policy"].as_str().unwrap())
        .collect();
    assert_eq!(policies, ["high_load_hint", "error_streak_easier_item"]);
    assert_eq!(listed[1]["learner"], app.pseudonym(&teacher, "ada").await);
    // Right answers follow: the easier item is followed up as an improvement.
    let batch: Vec<Value> = (4..9)
        .map(|i| {
            let mut s = answered("ada", &format!("q{i}"), true);
            s["timestamp"] = json!(format!("2026-11-26T09:{:02}:00Z", i));
            s
        })
        .collect();
    app.post_statements(&app.admin, &Value::Array(batch)).await;
    let report: Value = app
        .get_json("/v1/interventions/effectiveness", &teacher)
        .await;
    let easier = report["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"] == "error_streak_easier_item")
        .unwrap_or_else(|| panic!("{report}"))
        .clone();
    assert_eq!(easier["followed_up"], 1);
    // It fired on the third wrong answer; the five answers after it are one wrong and four
    // right: 80 % against 0 % before.
    assert_eq!(easier["accuracy_change"]["mean"], 0.8, "{easier}");
    assert_eq!(easier["quit"]["share"], 0.0);
    // A dpo does not see cognitive data, so not the reasons either.
    let dpo = app.key(&app.admin, "dpo").await;
    let listed: Vec<Value> = app.get_json("/v1/interventions", &dpo).await;
    assert!(listed.iter().all(|d| d["reasons"] == json!([])));
    app.stop().await;
}

async fn a_tenant_sets_its_own_policies_in_toml_and_they_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let toml = r#"
max_per_learner_per_hour = 2

[[policies]]
id = "any_wrong_answer"
when = [{ if = "incorrect" }]
then = "hint"
priority = 1
message = "Here is a hint."
"#;
    let r = app.put_policies(&app.admin, toml).await;
    assert_eq!(r.status(), 200);
    let batch: Vec<Value> = (0..5).map(|i| wrong("bo", i)).collect();
    app.post_statements(&app.admin, &Value::Array(batch)).await;
    let listed: Vec<Value> = app.get_json("/v1/interventions", &app.admin).await;
    assert_eq!(listed.len(), 2, "the hourly limit of 2: {listed:?}");
    assert!(listed.iter().all(|d| d["intervention"] == "hint"));

    let r = app
        .put_policies(
            &app.admin,
            "max_per_learner_per_hour = 2\n[[policies]]\nid = \"x\"\nwhen = [{ if = \"full_moon\" }]\nthen = \"hint\"\npriority = 1\nmessage = \"\"\n",
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(
        problem(r).await["detail"]
            .as_str()
            .unwrap()
            .contains("full_moon")
    );

    let admin = app.admin.clone();
    app.stop().await;
    let app = TestApp::start_with(common::config(dir.path()), Some(admin)).await;
    let policies: Value = app.get_json("/v1/interventions/policies", &app.admin).await;
    assert_eq!(policies["policies"][0]["id"], "any_wrong_answer");
    let listed: Vec<Value> = app.get_json("/v1/interventions", &app.admin).await;
    assert_eq!(listed.len(), 2, "replay rebuilds the same decisions");
    app.stop().await;
}

async fn a_stream_resumed_with_last_event_id_gets_the_interventions_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let teacher = app.key(&app.admin, "teacher").await;
    let batch: Vec<Value> = (0..4).map(|i| wrong("cy", i)).collect();
    app.post_statements(&app.admin, &Value::Array(batch)).await;
    let listed: Vec<Value> = app.get_json("/v1/interventions", &teacher).await;
    let missed_seq = listed[0]["seq"].as_i64().unwrap();

    // A dashboard that saw everything up to just before that decision reconnects.
    let mut stream = app
        .client
        .get(app.url("/v1/stream?group=class-7b"))
        .bearer_auth(&teacher)
        .header("Last-Event-ID", (missed_seq - 1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("the backlog at once")
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.contains("event: intervention"), "{text}");
    assert!(text.contains(&format!("id: {missed_seq}")), "{text}");

    let r = app
        .client
        .get(app.url("/v1/stream"))
        .bearer_auth(&teacher)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await["field"], "Last-Event-ID");
    app.stop().await;
}

async fn the_probe_times_every_intervention_to_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let report = learnpulse_bench::probe::run(learnpulse_bench::probe::ProbeConfig {
        url: app.base.clone(),
        stream_url: None,
        token: app.admin.clone(),
        rounds: 5,
    })
    .await
    .unwrap();
    assert_eq!(report.received, 5, "{report:?}");
    assert!(report.send_to_stream_ms_p50 > 0.0 && report.send_to_stream_ms_p99 < 2_000.0);
    app.stop().await;
}

on_every_backend!(
    struggling_learners_get_interventions_listed_and_streamed,
    a_tenant_sets_its_own_policies_in_toml_and_they_survive_a_restart,
    a_stream_resumed_with_last_event_id_gets_the_interventions_it_missed,
    the_probe_times_every_intervention_to_the_stream,
);
