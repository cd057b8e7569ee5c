//! Webhooks, black-box: a real receiver on a local port checks every delivery with the
//! Standard Webhooks reference library (`standardwebhooks`, an implementation independent of
//! ours); endpoints fail and recover; the server restarts with deliveries pending.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use common::{TestApp, answered, problem};
use serde_json::{Value, json};

/// What the test receiver saw.
#[derive(Default)]
struct Seen {
    /// (endpoint path, webhook-id, body) of every verified request.
    requests: Mutex<Vec<(String, String, Value)>>,
    /// Requests whose signature did not verify under the secret(s) the test set.
    forged: AtomicUsize,
    /// Every request, verified or not, failed or not.
    attempts: AtomicUsize,
    /// While set, the receiver answers 500.
    failing: AtomicBool,
    /// The secrets a request must verify under (each of them).
    secrets: Mutex<Vec<String>>,
}

impl Seen {
    /// Message ids delivered (the ids inside batches, the webhook-id of single messages).
    fn message_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for (_, id, body) in self.requests.lock().unwrap().iter() {
            match body {
                Value::Array(items) => {
                    ids.extend(items.iter().map(|m| m["id"].as_str().unwrap().to_owned()))
                }
                _ => ids.push(id.clone()),
            }
        }
        ids.sort();
        ids
    }
}

async fn receive(
    State(seen): State<Arc<Seen>>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    seen.attempts.fetch_add(1, Ordering::SeqCst);
    if seen.failing.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let secrets = seen.secrets.lock().unwrap().clone();
    let verified = !secrets.is_empty()
        && secrets.iter().all(|s| {
            standardwebhooks::Webhook::new(s)
                .unwrap()
                .verify(&body, &headers)
                .is_ok()
        });
    if !verified {
        seen.forged.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    let id = headers["webhook-id"].to_str().unwrap().to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap();
    seen.requests.lock().unwrap().push((endpoint, id, body));
    StatusCode::NO_CONTENT
}

/// Starts the receiver on `port` (0: any); returns its base URL.
async fn start_receiver(seen: Arc<Seen>, port: u16) -> String {
    let app = axum::Router::new()
        .route("/hooks/{endpoint}", axum::routing::post(receive))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// A port on which nothing listens (yet).
async fn free_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// `n` learners each answer three items wrong: one `easier_item` decision each (an error
/// streak of three; the load is not yet high).
async fn struggle(app: &TestApp, n: usize, tag: &str) {
    let batch: Vec<Value> = (0..n)
        .flat_map(|l| {
            (0..3).map(move |i| {
                let mut s = answered(&format!("{tag}-{l}"), &format!("q{i}"), false);
                s["timestamp"] = json!(format!("2026-11-26T10:{:02}:00Z", i));
                s
            })
        })
        .collect();
    let r = app.post_statements(&app.admin, &Value::Array(batch)).await;
    assert_eq!(r.status(), 200);
}

async fn create(app: &TestApp, body: Value) -> Value {
    let r = app.post_json("/v1/webhooks", &app.admin, &body).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    r.json().await.unwrap()
}

/// A receiver with one endpoint at `url`.
async fn create_at(app: &TestApp, name: &str, url: &str) -> Value {
    create(app, json!({"name": name, "endpoints": [{"url": url}]})).await
}

/// Polls `check` until it holds (10 s at most).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within 10 s: {what}");
}

fn fast_retries(config: &mut learnpulse_server::Config) {
    config.webhooks.retry_schedule_secs = vec![0.05; 30];
    config.webhooks.breaker_failures = 2;
    config.webhooks.breaker_open_secs = 0.3;
    config.webhooks.timeout_secs = 2.0;
}

/// A failing receiver and a server (fast retries, then `tune`) with one receiver `name` on it.
async fn against_a_failing_receiver(
    dir: &std::path::Path,
    name: &str,
    tune: impl FnOnce(&mut learnpulse_server::Config),
) -> (Arc<Seen>, TestApp, Value) {
    let seen = Arc::new(Seen::default());
    seen.failing.store(true, Ordering::SeqCst);
    let base = start_receiver(seen.clone(), 0).await;
    let mut config = common::config(dir);
    fast_retries(&mut config);
    tune(&mut config);
    let app = TestApp::start_with(config, None).await;
    let r = create_at(&app, name, &format!("{base}/hooks/x")).await;
    *seen.secrets.lock().unwrap() = vec![r["secret"].as_str().unwrap().to_owned()];
    (seen, app, r)
}

async fn deliveries_verify_under_the_reference_library_batch_route_and_rotate() {
    let seen = Arc::new(Seen::default());
    let base = start_receiver(seen.clone(), 0).await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;

    // Bad input is refused with the field named.
    for (body, field) in [
        (
            json!({"name": "x", "endpoints": [{"url": "ftp://nowhere"}]}),
            "endpoints[0].url",
        ),
        (json!({"name": "x", "endpoints": []}), "endpoints"),
        (
            json!({"name": "x", "endpoints": [{"url": "http://a.test/"}], "kinds": ["nap"]}),
            "kinds[0]",
        ),
        (
            json!({"name": "x", "endpoints": [{"url": "http://a.test/"}], "events": ["gossip"]}),
            "events[0]",
        ),
        (
            json!({"name": "x", "endpoints": [{"url": "http://a.test/"}], "max_batch": 0}),
            "max_batch",
        ),
    ] {
        let r = app.post_json("/v1/webhooks", &app.admin, &body).await;
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(problem(r).await["field"], field, "{body}");
    }
    let teacher = app.key(&app.admin, "teacher").await;
    assert_eq!(app.get("/v1/webhooks", &teacher).await.status(), 403);

    // One receiver on two endpoints sharing the traffic.
    let lms = create(
        &app,
        json!({"name": "lms", "endpoints": [
            {"url": format!("{base}/hooks/a"), "weight": 1},
            {"url": format!("{base}/hooks/b"), "weight": 1}]}),
    )
    .await;
    let secret = lms["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    *seen.secrets.lock().unwrap() = vec![secret.clone()];

    // Single messages first: 30 decisions, to the two endpoints of `lms`.
    struggle(&app, 30, "ada").await;
    eventually("30 messages delivered", async || {
        seen.message_ids().len() == 30
    })
    .await;
    assert_eq!(
        seen.forged.load(Ordering::SeqCst),
        0,
        "every signature verifies"
    );
    let by_endpoint = |path: &str| {
        seen.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _, _)| p == path)
            .count()
    };
    assert!(
        by_endpoint("a") > 0 && by_endpoint("b") > 0,
        "equal weights share the traffic: a {}, b {}",
        by_endpoint("a"),
        by_endpoint("b")
    );
    let (_, _, first) = seen.requests.lock().unwrap()[0].clone();
    assert_eq!(first["type"], "intervention.decided");
    assert_eq!(first["data"]["intervention"], "easier_item");
    assert_eq!(
        first["data"]["reasons"],
        json!([]),
        "reasons are cognitive data, not sent unless asked"
    );
    assert!(
        first["data"]["learner"].as_str().unwrap().len() > 20,
        "pseudonymised"
    );
    // The receiver answered; the dispatcher records the delivery just after.
    let listing = format!("/v1/webhooks/{}", lms["id"]);
    eventually("30 messages recorded as delivered", async || {
        let listed: Value = app.get_json(&listing, &app.admin).await;
        listed["messages"]["delivered"] == 30
    })
    .await;
    let listed: Value = app.get_json(&listing, &app.admin).await;
    assert!(listed.get("secret").is_none(), "the secret is shown once");

    // Rotation: during the grace period every message verifies under the old and the new secret.
    let r = app
        .post_json(
            &format!("/v1/webhooks/{}/secret/rotate", lms["id"]),
            &app.admin,
            &json!({"grace_secs": 3600}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().await.unwrap();
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    *seen.secrets.lock().unwrap() = vec![secret.clone(), new_secret.clone()];
    struggle(&app, 5, "bea").await;
    eventually("5 more delivered, signed under both secrets", async || {
        seen.message_ids().len() == 35
    })
    .await;
    assert_eq!(seen.forged.load(Ordering::SeqCst), 0);

    // A batching receiver gets arrays whose items carry their own ids.
    let batched = create(
        &app,
        json!({"name": "batched", "max_batch": 50, "kinds": ["teacher_alert", "easier_item"],
               "endpoints": [{"url": format!("{base}/hooks/batch")}]}),
    )
    .await;
    let r = app
        .client
        .delete(app.url(&format!("/v1/webhooks/{}", lms["id"])))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    *seen.secrets.lock().unwrap() = vec![batched["secret"].as_str().unwrap().to_owned()];
    struggle(&app, 40, "cy").await;
    eventually("40 batched messages", async || {
        seen.message_ids().len() == 75
    })
    .await;
    let batches = by_endpoint("batch");
    assert!(
        batches < 40,
        "40 messages came in {batches} requests: batched"
    );
    assert_eq!(seen.forged.load(Ordering::SeqCst), 0);
    app.stop().await;
}

async fn circuit(app: &TestApp, receiver: &Value) -> String {
    let r: Value = app
        .get_json(&format!("/v1/webhooks/{}", receiver["id"]), &app.admin)
        .await;
    r["endpoints"][0]["circuit"].as_str().unwrap().to_owned()
}

async fn a_failing_endpoint_opens_its_circuit_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (seen, app, r) = against_a_failing_receiver(dir.path(), "flaky", |_| {}).await;
    struggle(&app, 6, "dan").await;

    eventually("the circuit opens", async || {
        circuit(&app, &r).await == "open"
    })
    .await;
    let metrics = app.metrics_text().await;
    assert!(metrics.contains("learnpulse_webhook_circuit_open"));
    assert!(metrics.contains("outcome=\"failed\""));
    eventually("the pending gauge shows the six held back", async || {
        app.metrics_text()
            .await
            .contains("learnpulse_webhook_pending 6")
    })
    .await;
    let while_open = seen.attempts.load(Ordering::SeqCst);
    assert!(
        while_open < 6 * 30,
        "the open circuit holds messages back instead of spending their retries"
    );

    seen.failing.store(false, Ordering::SeqCst);
    eventually("all six delivered after recovery", async || {
        seen.message_ids().len() == 6
    })
    .await;
    eventually("the circuit closes", async || {
        circuit(&app, &r).await == "closed"
    })
    .await;
    // The receiver has them all; the dispatcher records each as delivered once its attempt
    // settles.
    let path = format!("/v1/webhooks/{}/messages?state=delivered", r["id"]);
    eventually("all six recorded as delivered", async || {
        app.get_json::<Vec<Value>>(&path, &app.admin).await.len() == 6
    })
    .await;
    let delivered: Vec<Value> = app.get_json(&path, &app.admin).await;
    assert!(delivered.iter().any(|m| m["attempts"].as_u64() > Some(1)));
    app.stop().await;
}

async fn dead_letters_are_listed_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (seen, app, r) = against_a_failing_receiver(dir.path(), "down", |config| {
        config.webhooks.retry_schedule_secs = vec![0.02]; // two attempts, then dead
        config.webhooks.breaker_failures = 100;
    })
    .await;
    struggle(&app, 3, "eve").await;
    let dead_path = format!("/v1/webhooks/{}/messages?state=dead", r["id"]);
    eventually("three dead letters", async || {
        app.get_json::<Vec<Value>>(&dead_path, &app.admin)
            .await
            .len()
            == 3
    })
    .await;
    let dead: Vec<Value> = app.get_json(&dead_path, &app.admin).await;
    assert_eq!(dead[0]["attempts"], 2);
    assert_eq!(dead[0]["last_status"], 500);

    seen.failing.store(false, Ordering::SeqCst);
    let one = dead[0]["id"].as_str().unwrap();
    let replay = format!("/v1/webhooks/{}/messages/replay", r["id"]);
    let answer: Value = app
        .post_json(&replay, &app.admin, &json!({"ids": [one]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["replayed"], 1);
    eventually("the replayed one arrives", async || {
        seen.message_ids() == vec![one.to_owned()]
    })
    .await;
    let answer: Value = app
        .post_json(&replay, &app.admin, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["replayed"], 2);
    eventually("the rest arrive", async || seen.message_ids().len() == 3).await;
    app.stop().await;
}

async fn pending_deliveries_survive_a_restart() {
    let port = free_port().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    fast_retries(&mut config);
    config.webhooks.retry_schedule_secs = vec![0.1; 1_000];
    let app = TestApp::start_with(config.clone(), None).await;
    let admin = app.admin.clone();
    let r = create_at(&app, "later", &format!("http://127.0.0.1:{port}/hooks/x")).await;
    struggle(&app, 12, "fay").await;
    let pending = format!("/v1/webhooks/{}/messages?state=pending", r["id"]);
    eventually("twelve pending, tried at least once", async || {
        let list: Vec<Value> = app.get_json(&pending, &app.admin).await;
        list.len() == 12 && list.iter().all(|m| m["attempts"].as_u64() >= Some(1))
    })
    .await;
    let expected: Vec<String> = {
        let mut ids: Vec<String> = app
            .get_json::<Vec<Value>>(&pending, &app.admin)
            .await
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    app.stop().await;

    // The receiver comes up while the server is down; the restarted server delivers them all.
    let seen = Arc::new(Seen::default());
    *seen.secrets.lock().unwrap() = vec![r["secret"].as_str().unwrap().to_owned()];
    start_receiver(seen.clone(), port).await;
    let app = TestApp::start_with(config.clone(), Some(admin.clone())).await;
    eventually("all twelve delivered after the restart", async || {
        seen.message_ids().len() == 12
    })
    .await;
    assert_eq!(seen.message_ids(), expected, "none lost, none doubled");
    app.stop().await;

    // A crash can also lose the outbox's last transaction (it is written after the events
    // commit). Simulate the worst case, an outbox that never saw these decisions: the restart
    // re-derives them from the event log, past the watermark.
    common::tamper(
        &config.data_dir,
        "learnpulse.outbox.db",
        "DELETE FROM messages; UPDATE watermark SET seq = 0;",
        "DELETE FROM webhook_messages; UPDATE webhook_watermark SET seq = 0;",
    )
    .await;
    seen.requests.lock().unwrap().clear();
    let app = TestApp::start_with(config, Some(admin)).await;
    eventually(
        "the lost messages are re-derived and delivered",
        async || seen.message_ids().len() == 12,
    )
    .await;
    assert_eq!(seen.message_ids(), expected, "the same message ids");
    app.stop().await;
}

async fn cooldowns_and_the_hourly_limit_hold_under_a_concurrent_burst() {
    let seen = Arc::new(Seen::default());
    let base = start_receiver(seen.clone(), 0).await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let policies = r#"
max_per_learner_per_hour = 3

[[policies]]
id = "wrong"
when = [{ if = "incorrect" }]
then = "hint"
priority = 1
cooldown_secs = 60
message = "A hint."

[[policies]]
id = "streak"
when = [{ if = "error_streak_at_least", count = 2 }]
then = "easier_item"
priority = 2
cooldown_secs = 600
message = "An easier one."
"#;
    assert_eq!(app.put_policies(&app.admin, policies).await.status(), 200);
    let r = create_at(&app, "burst", &format!("{base}/hooks/x")).await;
    *seen.secrets.lock().unwrap() = vec![r["secret"].as_str().unwrap().to_owned()];

    // 200 wrong answers of one learner, 15 s apart in event time (50 minutes), posted one
    // statement per request by 8 concurrent clients: the log sees them in no particular order.
    let posts = (0..8).map(|client| {
        let (http, url, admin) = (
            app.client.clone(),
            app.url("/xAPI/statements"),
            app.admin.clone(),
        );
        tokio::spawn(async move {
            for i in (client..200).step_by(8) {
                let mut s = answered("gus", &format!("q{i}"), false);
                let (minute, second) = (i * 15 / 60, i * 15 % 60);
                s["timestamp"] = json!(format!("2026-11-26T11:{minute:02}:{second:02}Z"));
                let r = http
                    .post(&url)
                    .bearer_auth(&admin)
                    .header("X-Experience-API-Version", "1.0.3")
                    .json(&s)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        })
    });
    for post in posts.collect::<Vec<_>>() {
        post.await.unwrap();
    }

    let decisions: Vec<Value> = app
        .get_json("/v1/interventions?learner=gus", &app.admin)
        .await;
    assert_eq!(decisions.len(), 3, "the hourly limit: {decisions:#?}");
    for (i, a) in decisions.iter().enumerate() {
        for b in &decisions[i + 1..] {
            if a["policy"] == b["policy"] {
                let gap = (a["at_ms"].as_i64().unwrap() - b["at_ms"].as_i64().unwrap()).abs();
                let cooldown = if a["policy"] == "wrong" {
                    60_000
                } else {
                    600_000
                };
                assert!(gap >= cooldown, "cooldown held: {a} / {b}");
            }
        }
    }
    eventually("the three decisions delivered", async || {
        seen.message_ids().len() == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(seen.message_ids().len(), 3, "each delivered once");
    app.stop().await;
}

async fn the_throughput_probe_counts_every_message() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    for (max_batch, backlog) in [(1, false), (20, true)] {
        let report = learnpulse_bench::webhook_probe::run(
            learnpulse_bench::webhook_probe::WebhookProbeConfig {
                url: app.base.clone(),
                token: app.admin.clone(),
                learners: 60,
                max_batch,
                backlog,
            },
        )
        .await
        .unwrap();
        assert_eq!(report.messages_received, 60, "{report:?}");
        if max_batch > 1 {
            assert!(report.requests_received < 60, "batched: {report:?}");
        }
        assert!(report.messages_per_second > 0.0);
    }
    let left: Vec<Value> = app.get_json("/v1/webhooks", &app.admin).await;
    assert!(left.is_empty(), "the probe removes its receiver");
    app.stop().await;
}

async fn an_erasure_removes_the_learners_undelivered_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    fast_retries(&mut config);
    config.webhooks.retry_schedule_secs = vec![60.0];
    let app = TestApp::start_with(config, None).await;
    let port = free_port().await;
    let r = create_at(&app, "down", &format!("http://127.0.0.1:{port}/hooks/x")).await;
    struggle(&app, 2, "hal").await;
    let pending = format!("/v1/webhooks/{}/messages?state=pending", r["id"]);
    eventually("two messages waiting", async || {
        app.get_json::<Vec<Value>>(&pending, &app.admin).await.len() == 2
    })
    .await;
    let dpo = app.key(&app.admin, "dpo").await;
    let r = app
        .post_json(
            "/v1/compliance/requests",
            &dpo,
            &json!({"kind": "erasure", "learner": "hal-0"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["erased"]["webhook_messages"], 1, "{answer}");
    let left: Vec<Value> = app.get_json(&pending, &app.admin).await;
    assert_eq!(left.len(), 1, "the other learner's message stays");
    assert_eq!(
        left[0]["payload"]["data"]["learner"],
        app.pseudonym(&app.admin, "hal-1").await
    );
    app.stop().await;
}

on_every_backend!(
    deliveries_verify_under_the_reference_library_batch_route_and_rotate,
    a_failing_endpoint_opens_its_circuit_and_recovers,
    dead_letters_are_listed_and_replayed,
    pending_deliveries_survive_a_restart,
    cooldowns_and_the_hourly_limit_hold_under_a_concurrent_burst,
    the_throughput_probe_counts_every_message,
    an_erasure_removes_the_learners_undelivered_messages,
);
