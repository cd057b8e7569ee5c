//! Several nodes on one PostgreSQL database: what is ingested at one node is live at the
//! others; each duty is led by one node at a time, with another taking over when it stops; a
//! key revoked or a consent withdrawn at one node is enforced at the others within a second.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestApp, answered};
use serde_json::Value;

/// A second node on the same database (and the same data directory: on PostgreSQL it holds
/// only the master key, which every node needs).
async fn nodes(dir: &std::path::Path) -> (TestApp, TestApp) {
    let a = TestApp::start(dir).await;
    let b = TestApp::start_with(common::config(dir), Some(a.admin.clone())).await;
    (a, b)
}

/// Whether a node leads `duty`, as its `/healthz` says (the nodes of this test share one
/// process, hence one metrics registry: the `learnpulse_duty_leader` gauge cannot tell them
/// apart here).
async fn leads(app: &TestApp, duty: &str) -> bool {
    let health: Value = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    health["leads"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d == duty)
}

async fn an_event_at_one_node_is_live_at_another() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = nodes(dir.path()).await;
    let teacher = a.key(&a.admin, "teacher").await;
    let mut stream = b.get("/v1/stream?group=class-7b", &teacher).await;
    assert_eq!(stream.status(), 200);

    assert_eq!(
        a.post_statements(&a.admin, &answered("ada", "q1", false))
            .await
            .status(),
        200
    );
    let text = common::next_sse_event(&mut stream).await;
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let update: Value = serde_json::from_str(data).unwrap();
    assert_eq!(update["state"]["error_streak"], 1);
    let learner: Value = b.get_json("/v1/learners/ada", &teacher).await;
    assert_eq!(learner["answers"], 1);
    drop(stream);
    a.stop().await;
    b.stop().await;
}

async fn each_duty_has_one_leader_and_another_node_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = nodes(dir.path()).await;
    for duty in ["compliance", "snapshots"] {
        let deadline = Instant::now() + Duration::from_secs(10);
        let held = loop {
            let held = (leads(&a, duty).await, leads(&b, duty).await);
            if held.0 || held.1 || Instant::now() > deadline {
                break held;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(held.0 != held.1, "{duty}: exactly one leader, not {held:?}");
    }
    // Whoever leads the compliance duty stops; the other takes over within seconds.
    let (leader, other) = if leads(&a, "compliance").await {
        (a, b)
    } else {
        (b, a)
    };
    let stopped = Instant::now();
    leader.stop().await;
    while !leads(&other, "compliance").await {
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "no takeover within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    other.stop().await;
}

/// Polls `check` every 20 ms; how long it took to hold (panics after 5 s).
async fn within(what: &str, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not within 5 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

async fn a_revoked_key_and_a_withdrawn_consent_are_enforced_at_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = nodes(dir.path()).await;
    let teacher = a.key(&a.admin, "teacher").await;
    assert_eq!(
        b.get("/v1/learners/nobody", &teacher).await.status(),
        404,
        "B knows the key (and has it cached now)"
    );
    a.revoke(&teacher).await;
    let took = within("B refuses the revoked key", async || {
        b.get("/v1/learners/nobody", &teacher).await.status() == 401
    })
    .await;
    assert!(took < Duration::from_secs(1), "took {took:?}");

    // Verified parental consent at A lets B accept the child's events; withdrawn at A, B
    // refuses them.
    let consent = |verified: bool| serde_json::json!({"under_13": true, "parental_consent_verified": verified});
    assert_eq!(
        a.put_json("/v1/learners/kid/consent", &a.admin, &consent(true))
            .await
            .status(),
        200
    );
    assert_eq!(
        b.post_statements(&b.admin, &answered("kid", "q1", true))
            .await
            .status(),
        200
    );
    assert_eq!(
        a.put_json("/v1/learners/kid/consent", &a.admin, &consent(false))
            .await
            .status(),
        200
    );
    let took = within("B enforces the withdrawal", async || {
        b.post_statements(&b.admin, &answered("kid", "q2", true))
            .await
            .status()
            == 403
    })
    .await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
    a.stop().await;
    b.stop().await;
}

async fn nodes_starting_together_bootstrap_once_and_create_one_first_key() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = tokio::join!(
        learnpulse_server::Server::start(common::config(dir.path())),
        learnpulse_server::Server::start(common::config(dir.path())),
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let keys: Vec<String> = [&x, &y]
        .iter()
        .filter_map(|s| s.bootstrap_key().map(|k| k.token.clone()))
        .collect();
    assert_eq!(keys.len(), 1, "one first admin key");
    drop((x, y));

    // Two nodes meet a tenant for the first time at once: one pseudonym key, the same
    // pseudonyms at both.
    let a = TestApp::start_with(common::config(dir.path()), Some(keys[0].clone())).await;
    let b = TestApp::start_with(common::config(dir.path()), Some(keys[0].clone())).await;
    let (at_a, at_b) = tokio::join!(a.pseudonym(&a.admin, "ada"), b.pseudonym(&b.admin, "ada"));
    assert_eq!(at_a, at_b);
    a.stop().await;
    b.stop().await;
}

/// A dashboard whose node died reconnects to another with `Last-Event-ID`: that node decided
/// the same interventions from the same log, under the same ids, and sends what was missed.
async fn a_stream_resumes_at_another_node() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = nodes(dir.path()).await;
    let teacher = a.key(&a.admin, "teacher").await;
    let batch: Vec<Value> = (0..4)
        .map(|i| {
            let mut s = answered("cy", &format!("q{i}"), false);
            s["timestamp"] = serde_json::json!(format!("2026-11-26T09:{i:02}:00Z"));
            s
        })
        .collect();
    assert_eq!(
        a.post_statements(&a.admin, &Value::Array(batch))
            .await
            .status(),
        200
    );
    let at_a: Vec<Value> = a.get_json("/v1/interventions", &teacher).await;
    let missed = at_a[0]["seq"].as_i64().unwrap();
    within("B has decided it too", async || {
        b.get_json::<Vec<Value>>("/v1/interventions", &teacher)
            .await
            == at_a
    })
    .await;
    let mut stream = b
        .client
        .get(b.url("/v1/stream?group=class-7b"))
        .bearer_auth(&teacher)
        .header("Last-Event-ID", (missed - 1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let text = common::next_sse_event(&mut stream).await;
    assert!(text.contains("event: intervention"), "{text}");
    assert!(text.contains(&format!("id: {missed}")), "{text}");
    drop(stream);
    a.stop().await;
    b.stop().await;
}

/// `bench interventions --stream-url`: events posted at A, their interventions timed on B's
/// stream.
async fn the_probe_times_events_from_one_node_to_another_nodes_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = nodes(dir.path()).await;
    let report = learnpulse_bench::probe::run(learnpulse_bench::probe::ProbeConfig {
        url: a.base.clone(),
        stream_url: Some(b.base.clone()),
        token: a.admin.clone(),
        rounds: 5,
    })
    .await
    .unwrap();
    assert_eq!(report.received, 5, "{report:?}");
    a.stop().await;
    b.stop().await;
}

/// PostgreSQL stops taking connections to the database (as when it is down): ingest answers 503
/// with `Retry-After`, `/readyz` says why, and both recover by themselves when it is back.
async fn a_database_that_goes_away_gives_503_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    assert_eq!(
        app.post_statements(&app.admin, &answered("ada", "q1", true))
            .await
            .status(),
        200
    );
    let db = common::postgres_url(dir.path())
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let (admin, connection) = tokio_postgres::connect(
        &format!("{}/postgres", common::POSTGRES),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{db}\" WITH ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}';"
        ))
        .await
        .unwrap();
    within("/readyz says the storage is unavailable", async || {
        let r = app.client.get(app.url("/readyz")).send().await.unwrap();
        r.status() == 503 && r.json::<Value>().await.unwrap()["status"] == "storage unavailable"
    })
    .await;
    within("ingest answers 503 with Retry-After", async || {
        let r = app
            .post_statements(&app.admin, &answered("ada", "q2", true))
            .await;
        r.status() == 503 && r.headers().get("retry-after").is_some()
    })
    .await;

    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{db}\" WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();
    within("ready again", async || {
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
    })
    .await;
    within("ingest again", async || {
        app.post_statements(&app.admin, &answered("ada", "q3", true))
            .await
            .status()
            == 200
    })
    .await;
    let learner: Value = app.get_json("/v1/learners/ada", &app.admin).await;
    assert!(learner["answers"].as_u64().unwrap() >= 2, "{learner}");
    app.stop().await;
}

/// Two nodes that hold two learners each, sharing Redis as L2: the snapshot one node saves lets
/// both drop learners, and every learner reads the same at both, whoever took its events.
async fn learners_leave_memory_at_every_node_and_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut c = common::config(dir.path());
        c.cache.learners_in_memory = 2;
        c.cache.url = Some("redis://127.0.0.1:6379".into());
        c.snapshots.interval_secs = 1;
        c.snapshots.min_new_entries = 1;
        c
    };
    let a = TestApp::start_with(config(), None).await;
    let b = TestApp::start_with(config(), Some(a.admin.clone())).await;
    let learners: Vec<String> = (0..8).map(|i| format!("mem-{i}")).collect();
    let held = async |app: &TestApp| {
        let h: Value = app.get_json("/healthz", &app.admin).await;
        h["learners_in_memory"].as_u64().unwrap()
    };
    for round in 0..4 {
        let node = if round % 2 == 0 { &a } else { &b };
        let batch: Vec<Value> = learners
            .iter()
            .map(|l| answered(l, &format!("q{round}"), round != 1))
            .collect();
        assert_eq!(
            node.post_statements(&node.admin, &Value::Array(batch))
                .await
                .status(),
            200
        );
        // The leader's snapshot, announced, lets both nodes drop all but two.
        within("both nodes drop learners", async || {
            held(&a).await <= 2 && held(&b).await <= 2
        })
        .await;
    }
    for l in &learners {
        let path = format!("/v1/learners/{l}");
        let at_a: Value = a.get_json(&path, &a.admin).await;
        let at_b: Value = b.get_json(&path, &b.admin).await;
        assert_eq!(at_a["answers"], 4, "{at_a}");
        assert_eq!(at_a, at_b);
    }
    a.stop().await;
    b.stop().await;
}

/// These need several processes on one database: PostgreSQL only.
macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                common::BACKEND.scope(Backend::Postgres, super::$name()).await
            }
        )*
    };
}

mod postgres {
    use super::*;
    on_postgres!(
        an_event_at_one_node_is_live_at_another,
        each_duty_has_one_leader_and_another_node_takes_over,
        a_revoked_key_and_a_withdrawn_consent_are_enforced_at_every_node,
        nodes_starting_together_bootstrap_once_and_create_one_first_key,
        a_database_that_goes_away_gives_503_and_comes_back,
        learners_leave_memory_at_every_node_and_read_the_same,
        a_stream_resumes_at_another_node,
        the_probe_times_events_from_one_node_to_another_nodes_stream,
    );
}
