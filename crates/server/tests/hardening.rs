//! Hostile input, black-box: every malformed path or query parameter is a problem document
//! naming it; differential-privacy parameters OpenDP cannot use are refused with 400; a key
//! scoped to groups cannot follow a learner outside them; `/metrics` can be closed to all but
//! its scraper and admins.

mod common;

use std::time::Duration;

use common::{TestApp, answered, problem};
use serde_json::{Value, json};

async fn malformed_parameters_are_problems_that_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let r = app.get("/v1/webhooks/not-a-number", &app.admin).await;
    assert_eq!(r.status(), 400);
    assert_eq!(problem(r).await["field"], "path");
    let r = app.get("/v1/interventions?limit=many", &app.admin).await;
    assert_eq!(r.status(), 400);
    assert_eq!(problem(r).await["field"], "limit");
    let r = app.get("/v1/interventions?color=blue", &app.admin).await;
    assert_eq!(r.status(), 400);
    let body = problem(r).await;
    assert!(body["detail"].as_str().unwrap().contains("color"), "{body}");
    let r = app
        .get("/v1/compliance/incidents?open=perhaps", &app.admin)
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(problem(r).await["field"], "open");
    app.stop().await;
}

async fn privacy_parameters_opendp_cannot_use_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let r = app
        .post_statements(&app.admin, &answered("ada", "q1", true))
        .await;
    assert_eq!(r.status(), 200);
    let researcher = app.key(&app.admin, "researcher").await;
    for (query, field) in [
        (
            json!({"measure": "learners", "epsilon": 2.2e-308}),
            "epsilon",
        ),
        (json!({"measure": "learners", "epsilon": 1e-9}), "epsilon"),
        (json!({"measure": "learners", "epsilon": 1e300}), "epsilon"),
        (
            json!({"measure": "correct", "epsilon": 1.0, "max_per_learner": 4_000_000_000u64}),
            "max_per_learner",
        ),
        (
            json!({"measure": "correct", "epsilon": 1.0, "max_cells_per_learner": 1_000_000}),
            "max_cells_per_learner",
        ),
    ] {
        let r = app
            .post_json("/v1/analytics/count", &researcher, &query)
            .await;
        assert_eq!(r.status(), 400, "{query}");
        assert_eq!(problem(r).await["field"], field, "{query}");
    }
    // Nothing was spent on the refusals.
    let budget: Value = app.get_json("/v1/analytics/budget", &researcher).await;
    assert_eq!(budget["spent"], 0.0, "{budget}");
    app.stop().await;
}

async fn a_scoped_key_cannot_follow_a_learner_outside_its_groups() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let mut other = answered("cy", "q1", true);
    other["context"]["extensions"]["https://learnpulse.dev/xapi/ext/group"] = json!("class-8a");
    let batch = json!([answered("ada", "q1", true), other]);
    assert_eq!(app.post_statements(&app.admin, &batch).await.status(), 200);
    let r = app
        .post_json(
            "/v1/admin/keys",
            &app.admin,
            &json!({"role": "teacher", "groups": ["class-7b"]}),
        )
        .await;
    let teacher = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for learner in ["cy", "nobody-seen-yet"] {
        let r = app
            .get(&format!("/v1/stream?learner={learner}"), &teacher)
            .await;
        assert_eq!(r.status(), 403, "{learner}");
    }
    let r = app.get("/v1/stream?learner=ada", &teacher).await;
    assert_eq!(r.status(), 200);
    drop(r);
    app.stop().await;
}

async fn metrics_can_be_closed_to_all_but_the_scraper_and_admins() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.metrics.token = Some("scrape-secret".into());
    let app = TestApp::start_with(config, None).await;
    let metrics = |auth: Option<String>| {
        let mut req = app.client.get(app.url("/metrics"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    assert_eq!(metrics(None).await.unwrap().status(), 401);
    assert_eq!(
        metrics(Some("Bearer wrong-secret".into()))
            .await
            .unwrap()
            .status(),
        401
    );
    let r = metrics(Some("Bearer scrape-secret".into())).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("learnpulse_"));
    let admin = format!("Bearer {}", app.admin);
    assert_eq!(metrics(Some(admin)).await.unwrap().status(), 200);
    let teacher = format!("Bearer {}", app.key(&app.admin, "teacher").await);
    assert_eq!(metrics(Some(teacher)).await.unwrap().status(), 403);
    app.stop().await;
}

/// Reads what the server sends on `stream` until it closes it (or `wait` passes).
async fn read_until_closed(stream: &mut tokio::net::TcpStream, wait: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let closed = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    closed
        .ok()
        .map(|()| String::from_utf8_lossy(&got).into_owned())
}

async fn connections_past_the_limit_are_refused_and_idle_ones_closed() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.limits.max_connections = 8;
    config.limits.header_read_timeout_secs = 1;
    let app = TestApp::start_with(config, None).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Eight idle sockets hold every slot: a ninth is answered 503 and closed at once.
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut ninth = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let answer = read_until_closed(&mut ninth, Duration::from_secs(5))
        .await
        .expect("the ninth is closed");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("application/problem+json") && answer.contains("retry-after: 1"));
    // The idle ones are closed after the header-read timeout, which frees the slots.
    for socket in &mut idle {
        let closed = read_until_closed(socket, Duration::from_secs(5)).await;
        assert!(closed.is_some(), "an idle connection stays open");
    }
    // So is a slowloris client that never finishes its headers...
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut slow, Duration::from_secs(5))
            .await
            .is_some()
    );
    // ...and a kept-alive connection that goes quiet after its first request.
    let mut kept = tokio::net::TcpStream::connect(&addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut kept, Duration::from_secs(5))
        .await
        .expect("closed once idle");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(app.get("/healthz", &app.admin).await.status(), 200);
    let metrics = app.metrics_text().await;
    assert!(metrics.contains("learnpulse_connections_refused_total"));
    app.stop().await;
}

async fn a_key_past_its_rate_is_told_when_to_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.limits.requests_per_second_per_key = 5;
    let app = TestApp::start_with(config, None).await;
    let other = app.key(&app.admin, "teacher").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..20 {
        let r = app.get("/v1/interventions", &app.admin).await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 && limited.is_none() {
            limited = Some((
                r.headers()["retry-after"].to_str().unwrap().to_owned(),
                problem(r).await,
            ));
        }
    }
    assert!(statuses.iter().take(10).all(|s| *s == 200), "{statuses:?}");
    let (retry_after, body) = limited.expect("some requests were refused");
    assert!(retry_after.parse::<u64>().unwrap() >= 1);
    assert_eq!(body["status"], 429);
    // Another key has its own allowance.
    assert_eq!(app.get("/v1/interventions", &other).await.status(), 200);
    app.stop().await;
}

async fn auditing_fails_closed_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let r = app
        .post_statements(&app.admin, &answered("ada", "q1", true))
        .await;
    assert_eq!(r.status(), 200);
    let ready = async || {
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    // The audit table goes away under the server: the next audited read is the last one done.
    common::tamper(
        dir.path(),
        "learnpulse.db",
        "ALTER TABLE audit_log RENAME TO audit_log_away",
        "ALTER TABLE audit_log RENAME TO audit_log_away",
    )
    .await;
    assert_eq!(app.get("/v1/learners/ada", &app.admin).await.status(), 200);
    let mut status = Value::Null;
    for _ in 0..100 {
        status = ready().await;
        if status["status"] == "audit log failing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status["status"], "audit log failing", "{status}");
    assert!(status["reason"].is_string());
    let r = app.get("/v1/learners/ada", &app.admin).await;
    assert_eq!(r.status(), 503, "audited work is refused");
    assert!(
        problem(r).await["detail"]
            .as_str()
            .unwrap()
            .contains("audit")
    );
    assert!(
        app.metrics_text()
            .await
            .contains("learnpulse_audit_failing 1")
    );

    // The table is back: the kept entries are written and work resumes.
    common::tamper(
        dir.path(),
        "learnpulse.db",
        "ALTER TABLE audit_log_away RENAME TO audit_log",
        "ALTER TABLE audit_log_away RENAME TO audit_log",
    )
    .await;
    for _ in 0..200 {
        if ready().await["status"] == "ready" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ready().await["status"], "ready");
    assert_eq!(app.get("/v1/learners/ada", &app.admin).await.status(), 200);
    app.stop().await;
    let storage = common::storage(dir.path()).await;
    let entries = learnpulse_server::storage::audit::entries_after(&storage, 0, None)
        .await
        .unwrap();
    let reads = entries
        .iter()
        .filter(|e| e.event.action == "learner.read")
        .count();
    assert_eq!(reads, 2, "the read during the outage was kept and written");
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    learnpulse_compliance::audit::verify(&entries, &[], &key).expect("no hole in the chain");
    storage.shutdown().await;
}

async fn readiness_reports_failing_writes_until_one_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    assert_eq!(
        app.post_statements(&app.admin, &answered("ada", "q1", true))
            .await
            .status(),
        200
    );
    let ready = async || {
        let r = app.client.get(app.url("/readyz")).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(ready().await.0, 200);
    // The log's table cannot take rows (as a read-only disk or a full one would refuse them).
    common::tamper(
        dir.path(),
        "learnpulse.db",
        "ALTER TABLE statements RENAME TO statements_away",
        "ALTER TABLE statements RENAME TO statements_away",
    )
    .await;
    let r = app
        .post_statements(&app.admin, &answered("ada", "q2", true))
        .await;
    assert!(r.status().is_server_error(), "{}", r.status());
    let (code, body) = ready().await;
    assert_eq!(code, 503);
    // Reads of the log fail here too on SQLite (the table is gone); a read-only disk would
    // leave them working, and the failed append alone makes the server unready.
    assert!(
        ["writes failing", "storage unavailable"].contains(&body["status"].as_str().unwrap()),
        "{body}"
    );
    assert!(
        body["reason"].as_str().unwrap().contains("statements"),
        "{body}"
    );
    common::tamper(
        dir.path(),
        "learnpulse.db",
        "ALTER TABLE statements_away RENAME TO statements",
        "ALTER TABLE statements_away RENAME TO statements",
    )
    .await;
    assert_eq!(
        app.post_statements(&app.admin, &answered("ada", "q3", true))
            .await
            .status(),
        200
    );
    assert_eq!(ready().await.0, 200);
    app.stop().await;
}

async fn a_chain_cut_back_with_its_checkpoints_is_caught_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    for i in 0..3 {
        let s = answered("ada", &format!("q{i}"), true);
        assert_eq!(app.post_statements(&app.admin, &s).await.status(), 200);
        assert_eq!(app.get("/v1/learners/ada", &app.admin).await.status(), 200);
    }
    let admin = app.admin.clone();
    app.stop().await;
    let chain = async |app: &TestApp| -> Value {
        let report: Value = app.get_json("/v1/compliance/report", &app.admin).await;
        report["state"]["audit_chain"].clone()
    };
    // A plain restart: the remembered head is in the chain.
    let app = TestApp::start_with(common::config(dir.path()), Some(admin.clone())).await;
    assert_eq!(chain(&app).await["verified"], true);
    app.stop().await;
    // Cut back, checkpoints and all: consistent in itself, shorter than remembered.
    let cut = "DELETE FROM audit_log WHERE seq > (SELECT max(seq) - 3 FROM audit_log); \
               DELETE FROM audit_checkpoints WHERE seq > (SELECT max(seq) FROM audit_log);";
    common::tamper(dir.path(), "learnpulse.db", cut, cut).await;
    let app = TestApp::start_with(common::config(dir.path()), Some(admin)).await;
    let state = chain(&app).await;
    assert_eq!(state["verified"], false, "{state}");
    assert!(
        state["reason"].as_str().unwrap().contains("cut back"),
        "{state}"
    );
    app.stop().await;
}

on_every_backend!(
    a_chain_cut_back_with_its_checkpoints_is_caught_at_start,
    readiness_reports_failing_writes_until_one_succeeds,
    auditing_fails_closed_and_catches_up,
    connections_past_the_limit_are_refused_and_idle_ones_closed,
    a_key_past_its_rate_is_told_when_to_come_back,
    malformed_parameters_are_problems_that_name_them,
    privacy_parameters_opendp_cannot_use_are_refused,
    a_scoped_key_cannot_follow_a_learner_outside_its_groups,
    metrics_can_be_closed_to_all_but_the_scraper_and_admins,
);
