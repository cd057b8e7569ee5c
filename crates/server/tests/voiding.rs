//! Voiding retracts: a voided answer leaves its learner's state as if it never happened, live,
//! when the learner had left memory, and after a restart.

mod common;

use common::TestApp;
use serde_json::{Value, json};
use std::time::Duration;

/// Answers on one skill; `skip` leaves one out (the twin who never gave it).
fn answers(learner: &str, outcomes: &[bool], skip: Option<usize>) -> Vec<Value> {
    outcomes
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != skip)
        .map(|(i, correct)| {
            json!({"learner_id": learner, "item_id": format!("q{i}"), "skills": ["algebra"],
                   "outcome": if *correct { "correct" } else { "incorrect" },
                   "group_id": "class-a", "timestamp": format!("2026-11-26T10:0{i}:00Z")})
        })
        .collect()
}

/// Posts native events; returns their statement ids.
async fn post_events(app: &TestApp, events: Vec<Value>) -> Vec<String> {
    let r = app
        .post_json("/v1/events", &app.admin, &json!({"events": events}))
        .await;
    assert_eq!(r.status(), 200);
    let accepted: Value = r.json().await.unwrap();
    accepted["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect()
}

/// What the engine says about a learner, without the name (the twins differ in it).
async fn learner(app: &TestApp, id: &str) -> Value {
    let mut v: Value = app
        .get_json(&format!("/v1/learners/{id}"), &app.admin)
        .await;
    v.as_object_mut().unwrap().remove("learner");
    v
}

async fn a_voided_answer_leaves_the_learner_as_if_it_never_happened() {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut c = common::config(dir.path());
        // One learner in memory: ada leaves it before her answer is voided.
        c.cache.learners_in_memory = 1;
        c.snapshots.interval_secs = 1;
        c.snapshots.min_new_entries = 1;
        c
    };
    let app = TestApp::start_with(config(), None).await;
    let outcomes = [true, false, false, true, true, true, false, true];
    let voided = 2;
    let ids = post_events(&app, answers("ada", &outcomes, None)).await;
    post_events(&app, answers("bo", &outcomes, Some(voided))).await;
    let before = learner(&app, "ada").await;
    assert_eq!(before["answers"], 8);
    assert_ne!(before, learner(&app, "bo").await);
    // Let a snapshot keep both, so that ada can leave memory.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    post_events(&app, answers("cy", &outcomes[..1], None)).await;

    let voiding = json!({
        "actor": {"objectType": "Agent", "mbox": "mailto:teacher@school.example"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided", "display": {"en-US": "voided"}},
        "object": {"objectType": "StatementRef", "id": ids[voided]},
    });
    let r = app.post_statements(&app.admin, &voiding).await;
    assert_eq!(r.status(), 200);
    let after = learner(&app, "ada").await;
    assert_eq!(after["answers"], 7);
    assert_eq!(after["skills"]["algebra"]["attempts"], 7);
    assert_eq!(
        after,
        learner(&app, "bo").await,
        "ada is as if she never gave the voided answer"
    );

    // Answers after the voiding add to the rebuilt state, and a restart gets the same.
    let more = |who: &str| {
        json!([{"learner_id": who, "item_id": "q9", "skills": ["algebra"], "outcome": "incorrect",
                "group_id": "class-a", "timestamp": "2026-11-26T10:09:00Z"}])
    };
    post_events(&app, more("ada").as_array().unwrap().clone()).await;
    post_events(&app, more("bo").as_array().unwrap().clone()).await;
    let expected = learner(&app, "bo").await;
    assert_eq!(learner(&app, "ada").await, expected);
    let admin = app.admin.clone();
    app.stop().await;
    let app = TestApp::start_with(config(), Some(admin)).await;
    assert_eq!(learner(&app, "ada").await, expected);
    assert_eq!(learner(&app, "bo").await, expected);
    app.stop().await;
}

on_every_backend!(a_voided_answer_leaves_the_learner_as_if_it_never_happened);
