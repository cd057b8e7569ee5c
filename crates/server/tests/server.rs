//! Tenants, roles, native events, the live stream, restart and shutdown, observability.

mod common;

use std::time::Duration;

use common::{TestApp, answered, problem};
use serde_json::{Value, json};

async fn tenants_never_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let admin_b = app.tenant("school-b").await;
    let ingest_b = app.key(&admin_b, "ingest").await;
    let teacher_a = app.key(&app.admin, "teacher").await;

    let ids: Vec<String> = app
        .post_statements(&ingest_b, &answered("bea", "q1", true))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(app.get_statement(&ingest_b, &ids[0]).await.status(), 200);
    assert_eq!(
        app.get_statement(&app.admin, &ids[0]).await.status(),
        404,
        "tenant A cannot read B's statement"
    );
    let page: Value = app.xapi_json("/xAPI/statements", &app.admin).await;
    assert!(page["statements"].as_array().unwrap().is_empty());
    let r = app.get("/v1/learners/bea", &teacher_a).await;
    assert_eq!(r.status(), 404, "tenant A cannot see B's learner");

    // The same statement id may exist in two tenants without conflict.
    let mut same = answered("ada", "q1", true);
    same["id"] = json!(ids[0]);
    assert_eq!(app.post_statements(&app.admin, &same).await.status(), 200);
    let a: Value = app
        .get_statement(&app.admin, &ids[0])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        a["actor"]["account"]["name"],
        app.pseudonym(&app.admin, "ada").await,
        "the log holds the tenant's pseudonym, not the id"
    );

    // B's admin manages only B: it cannot create tenants, and its key list is B's alone.
    let r = app
        .client
        .post(app.url("/v1/admin/tenants"))
        .bearer_auth(&admin_b)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let keys: Vec<Value> = app.get_json("/v1/admin/keys", &admin_b).await;
    assert_eq!(keys.len(), 2);
    app.stop().await;
}

async fn roles_and_credentials_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let teacher = app.key(&app.admin, "teacher").await;
    let ingest = app.key(&app.admin, "ingest").await;
    let researcher = app.key(&app.admin, "researcher").await;

    let r = app
        .post_statements(&teacher, &answered("ada", "q1", true))
        .await;
    assert_eq!(r.status(), 403);
    problem(r).await;
    assert_eq!(
        app.post_statements(&ingest, &answered("ada", "q1", true))
            .await
            .status(),
        200
    );
    let r = app.get("/v1/learners/ada", &ingest).await;
    assert_eq!(r.status(), 403);
    let r = app.get("/v1/learners/ada", &researcher).await;
    assert_eq!(r.status(), 403);
    let r = app.get("/v1/learners/ada", &teacher).await;
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .post(app.url("/v1/admin/keys"))
        .bearer_auth(&ingest)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // No credentials, a wrong secret, a malformed header: 401 with a challenge.
    let r = app
        .client
        .get(app.url("/v1/learners/ada"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let key_id = teacher.split('.').next().unwrap();
    let r = app
        .client
        .get(app.url("/v1/learners/ada"))
        .bearer_auth(format!("{key_id}.wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .get(app.url("/v1/learners/ada"))
        .header("Authorization", "Bearer nodot")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // HTTP Basic works as the xAPI convention has it.
    let (id, secret) = teacher.split_once('.').unwrap();
    let r = app
        .client
        .get(app.url("/v1/learners/ada"))
        .basic_auth(id, Some(secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A revoked key stops working at once.
    let r = app
        .client
        .delete(app.url(&format!("/v1/admin/keys/{key_id}")))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app.get("/v1/learners/ada", &teacher).await;
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .post(app.url("/v1/admin/keys"))
        .bearer_auth(&app.admin)
        .json(&json!({"role": "wizard"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(problem(r).await["field"], "role");
    app.stop().await;
}

async fn native_events_update_the_learner_and_are_readable_as_xapi() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let events: Vec<Value> = (0..8)
        .map(|i| {
            json!({"learner_id": "s-42", "item_id": format!("q{i}"), "skills": ["algebra"],
                   "outcome": "correct", "response_time_ms": 6000 + i * 100, "group_id": "class-a",
                   "session_id": "sess-1", "timestamp": "2026-11-26T10:00:00Z"})
        })
        .collect();
    let r = app
        .client
        .post(app.url("/v1/events"))
        .bearer_auth(&app.admin)
        .json(&json!({"events": events}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let accepted: Value = r.json().await.unwrap();
    assert_eq!(accepted["accepted"], 8);

    let learner: Value = app.get_json("/v1/learners/s-42", &app.admin).await;
    assert_eq!(learner["answers"], 8);
    assert_eq!(learner["skills"]["algebra"]["attempts"], 8);
    assert_eq!(learner["skills"]["algebra"]["mastered"], true);
    assert_eq!(learner["groups"], json!(["class-a"]));
    assert!(
        learner["load"].is_null(),
        "admins do not see cognitive data by default"
    );

    let id = accepted["ids"][0].as_str().unwrap();
    let s: Value = app
        .get_statement(&app.admin, id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        s["actor"]["account"]["name"],
        app.pseudonym(&app.admin, "s-42").await
    );
    assert_eq!(s["verb"]["id"], "http://adlnet.gov/expapi/verbs/answered");

    for (event, field) in [
        (
            json!({"learner_id": "", "item_id": "q", "outcome": "correct"}),
            "events[0].learner_id",
        ),
        (
            json!({"learner_id": "x", "item_id": "q", "outcome": "maybe"}),
            "events[0].outcome",
        ),
        (
            json!({"learner_id": "x", "item_id": "q", "outcome": "none", "colour": 1}),
            "events[0]",
        ),
        (
            json!({"learner_id": "x", "item_id": "q", "outcome": "none", "timestamp": "noon"}),
            "events[0].timestamp",
        ),
    ] {
        let r = app
            .client
            .post(app.url("/v1/events"))
            .bearer_auth(&app.admin)
            .json(&json!({"events": [event]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{field}");
        let p = problem(r).await;
        assert!(p["field"].as_str().unwrap().starts_with(field), "{p}");
    }
    app.stop().await;
}

async fn the_stream_pushes_learner_updates() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let teacher = app.key(&app.admin, "teacher").await;
    let mut stream = app.get("/v1/stream?group=class-7b", &teacher).await;
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );

    // An event of another group, then one of ours.
    let mut other = answered("zed", "q1", true);
    other["context"]["extensions"]["https://learnpulse.dev/xapi/ext/group"] = json!("class-9");
    assert_eq!(app.post_statements(&app.admin, &other).await.status(), 200);
    assert_eq!(
        app.post_statements(&app.admin, &answered("ada", "q1", false))
            .await
            .status(),
        200
    );

    let text = common::next_sse_event(&mut stream).await;
    assert!(text.contains("event: learner"), "{text}");
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let update: Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        update["state"]["learner"],
        app.pseudonym(&teacher, "ada").await,
        "the other group's learner is filtered out"
    );
    assert!(
        update["state"]["load"]["level"].is_string(),
        "teachers see load"
    );
    assert_eq!(update["state"]["error_streak"], 1);
    drop(stream);
    app.stop().await;
}

async fn graceful_shutdown_finishes_in_flight_requests_and_restart_replays_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let admin = app.admin.clone();
    let teacher = app.key(&admin, "teacher").await;
    // An open stream must not hold shutdown up.
    let _stream = app.get("/v1/stream", &teacher).await;

    let mut in_flight = Vec::new();
    for i in 0..20 {
        let client = app.client.clone();
        let url = app.url("/xAPI/statements");
        let token = admin.clone();
        let batch: Vec<Value> = (0..50)
            .map(|j| answered(&format!("l{i}"), &format!("q{j}"), j % 2 == 0))
            .collect();
        in_flight.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .header("X-Experience-API-Version", "1.0.3")
                .json(&batch)
                .send()
                .await;
            (i, r.map(|r| r.status().as_u16()).unwrap_or(0))
        }));
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    tokio::time::timeout(Duration::from_secs(20), app.stop())
        .await
        .expect("shutdown completes with a stream open");
    let mut acknowledged = Vec::new();
    for r in in_flight {
        let (i, status) = r.await.unwrap();
        if status == 200 {
            acknowledged.push(i);
        }
    }

    let app = TestApp::start_with(common::config(dir.path()), Some(admin.clone())).await;
    let mut stored = 0;
    let mut next = "/xAPI/statements?limit=100".to_owned();
    while !next.is_empty() {
        let page: Value = app.xapi_json(&next, &admin).await;
        stored += page["statements"].as_array().unwrap().len();
        next = page["more"].as_str().unwrap().to_owned();
    }
    assert!(
        stored >= acknowledged.len() * 50,
        "acknowledged {} batches, found {stored} statements",
        acknowledged.len()
    );
    // The learner engine was rebuilt from the log: every acknowledged batch is in its learner.
    for i in acknowledged {
        let l: Value = app.get_json(&format!("/v1/learners/l{i}"), &admin).await;
        assert_eq!(l["answers"], 50, "{l}");
    }
    app.stop().await;
}

async fn restart_rebuilds_learner_state_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let admin = app.admin.clone();
    for i in 0..5 {
        let batch: Vec<Value> = (0..10)
            .map(|j| answered("ada", &format!("q{j}"), (i + j) % 3 != 0))
            .collect();
        assert_eq!(
            app.post_statements(&admin, &Value::Array(batch))
                .await
                .status(),
            200
        );
    }
    let before: Value = app.get_json("/v1/learners/ada", &admin).await;
    app.stop().await;
    let app = TestApp::start_with(common::config(dir.path()), Some(admin.clone())).await;
    let after: Value = app.get_json("/v1/learners/ada", &admin).await;
    assert_eq!(before, after);
    assert_eq!(after["answers"], 50);
    app.stop().await;
}

async fn health_metrics_and_openapi() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    // The only node leads every installation-wide duty (at once on SQLite; on PostgreSQL as
    // soon as it has taken their locks).
    let mut health = Value::Null;
    for _ in 0..100 {
        let r = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        health = r.json().await.unwrap();
        if health["leads"].as_array().unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(health["leads"], json!(["compliance", "snapshots"]));
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.post_statements(&app.admin, &answered("ada", "q1", true))
            .await
            .status(),
        200
    );

    let metrics = app.metrics_text().await;
    for name in [
        "learnpulse_http_requests_total",
        "learnpulse_http_request_duration_seconds_bucket",
        "learnpulse_statements_ingested_total",
        "learnpulse_commit_seconds_bucket",
        "learnpulse_commit_batch_statements_bucket",
        "learnpulse_learners_in_memory",
        "learnpulse_follower_lag_statements",
    ] {
        assert!(metrics.contains(name), "missing {name}");
    }
    // The data directory's disk, measured at the scrape.
    let gauge = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("missing {name}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert!(gauge("learnpulse_data_dir_free_bytes") > 0.0);
    let minimum = match common::backend() {
        // The database itself is there.
        common::Backend::Sqlite => 4096.0,
        // The master key is.
        common::Backend::Postgres => 0.0,
    };
    assert!(gauge("learnpulse_data_dir_size_bytes") > minimum);
    assert!(metrics.contains("route=\"/xAPI/statements\""));

    let spec: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = spec["paths"].as_object().unwrap();
    for (path, method) in [
        ("/xAPI/statements", "post"),
        ("/xAPI/statements", "put"),
        ("/xAPI/statements", "get"),
        ("/xAPI/about", "get"),
        ("/v1/events", "post"),
        ("/v1/learners/{id}", "get"),
        ("/v1/stream", "get"),
        ("/v1/groups/{id}/overview", "get"),
        ("/v1/admin/tenants", "post"),
        ("/v1/admin/keys", "get"),
        ("/v1/admin/keys/{key_id}", "delete"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is undocumented"
        );
    }
    app.stop().await;
}

async fn a_fitted_model_file_drives_mastery() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.json");
    let params = json!({"prior": 0.9, "learn": 0.2, "guess": 0.1, "slip": 0.05, "forget": 0.0});
    std::fs::write(
        &model,
        json!({"format": "learnpulse-skill-model", "version": 1, "kind": "bkt", "rows": 1,
               "skill_model": {"skills": {"fractions": params}, "fallback": params}})
        .to_string(),
    )
    .unwrap();
    let mut config = common::config(dir.path());
    config.model = Some(model);
    let app = TestApp::start_with(config, None).await;
    assert_eq!(
        app.post_statements(&app.admin, &answered("ada", "q1", true))
            .await
            .status(),
        200
    );
    let learner: Value = app.get_json("/v1/learners/ada", &app.admin).await;
    let mastery = learner["skills"]["fractions"]["mastery"].as_f64().unwrap();
    // With prior 0.9 one correct answer gives P(known) ≈ 0.99; textbook BKT would give ≈ 0.72.
    assert!(mastery > 0.98, "mastery {mastery}");
    app.stop().await;

    let mut broken = common::config(dir.path());
    broken.model = Some(dir.path().join("missing.json"));
    assert!(
        learnpulse_server::Server::start(broken).await.is_err(),
        "a missing model file stops the start"
    );
}

async fn the_group_overview_puts_the_struggling_learner_first() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let teacher = app.key(&app.admin, "teacher").await;
    let mut batch = Vec::new();
    for i in 0..12 {
        batch.push(answered("ada", &format!("q{i}"), true));
        batch.push(answered("bo", &format!("q{i}"), false));
    }
    let mut elsewhere = answered("cy", "q1", true);
    elsewhere["context"]["extensions"]["https://learnpulse.dev/xapi/ext/group"] = json!("class-9");
    batch.push(elsewhere);
    assert_eq!(
        app.post_statements(&app.admin, &Value::Array(batch))
            .await
            .status(),
        200
    );

    let overview: Value = app.get_json("/v1/groups/class-7b/overview", &teacher).await;
    let rows = overview["learners"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "cy works in another group");
    assert_eq!(rows[0]["learner"], app.pseudonym(&teacher, "bo").await);
    assert_eq!(rows[0]["wheel_spinning_skills"], json!(["fractions"]));
    assert!(rows[0]["risk"].as_f64().unwrap() > 0.5);
    assert!(
        rows[0]["risk_reasons"][0]
            .as_str()
            .unwrap()
            .contains("wheel-spinning")
    );
    assert_eq!(rows[1]["learner"], app.pseudonym(&teacher, "ada").await);
    assert_eq!(rows[1]["mastered_skills"], json!(["fractions"]));
    assert_eq!(rows[1]["risk"], 0.0);

    assert_eq!(
        app.get("/v1/groups/nobody/overview", &teacher)
            .await
            .status(),
        404
    );
    let ingest = app.key(&app.admin, "ingest").await;
    assert_eq!(
        app.get("/v1/groups/class-7b/overview", &ingest)
            .await
            .status(),
        403
    );
    app.stop().await;
}

on_every_backend!(
    tenants_never_see_each_other,
    roles_and_credentials_are_checked,
    native_events_update_the_learner_and_are_readable_as_xapi,
    the_stream_pushes_learner_updates,
    graceful_shutdown_finishes_in_flight_requests_and_restart_replays_the_log,
    restart_rebuilds_learner_state_exactly,
    health_metrics_and_openapi,
    a_fitted_model_file_drives_mastery,
    the_group_overview_puts_the_struggling_learner_first,
);
