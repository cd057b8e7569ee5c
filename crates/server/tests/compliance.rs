//! The compliance report, black-box: rules fire on what a tenant really does, and stay quiet
//! otherwise.

mod common;

use common::{TestApp, answered, problem};
use serde_json::{Value, json};

async fn report(app: &TestApp, token: &str) -> Value {
    app.get_json("/v1/compliance/report", token).await
}

/// A key of `role` limited to `groups`.
async fn scoped_key(app: &TestApp, role: &str, groups: &[&str]) -> String {
    let r = app
        .client
        .post(app.url("/v1/admin/keys"))
        .bearer_auth(&app.admin)
        .json(&json!({"role": role, "groups": groups}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn fired(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_owned())
        .collect()
}

async fn rules_fire_on_what_the_tenant_does() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let dpo = app.key(&app.admin, "dpo").await;
    let teacher = scoped_key(&app, "teacher", &["class-7b"]).await;
    assert_eq!(
        app.get("/v1/compliance/report", &teacher).await.status(),
        403
    );

    // A fresh tenant: only the bootstrap admin key, which never expires.
    let r = report(&app, &dpo).await;
    assert_eq!(fired(&r), vec!["security.admin_key_expiry"], "{r}");
    assert_eq!(r["score"], 98.0);
    assert!(r["rules"].as_array().unwrap().len() >= 15);
    assert_eq!(r["state"]["audit_chain"]["verified"], true);

    // An under-13 learner whose data is held without verified parental consent.
    app.post_statements(&app.admin, &answered("kid", "q1", true))
        .await;
    app.put_json(
        "/v1/learners/kid/consent",
        &app.admin,
        &json!({"under_13": true}),
    )
    .await;
    // Free text stored unredacted because the policy says so, and retention of zero days.
    app.put_json(
        "/v1/privacy/policy",
        &app.admin,
        &json!({"redact_free_text": false, "retention_days": 0}),
    )
    .await;
    let mut s = answered("ada", "q2", false);
    s["result"]["response"] = json!("ask me at ada.l@school.example");
    assert_eq!(app.post_statements(&app.admin, &s).await.status(), 200);

    let r = report(&app, &dpo).await;
    let rules = fired(&r);
    for rule in [
        "coppa.parental_consent",
        "gdpr.unredacted_free_text",
        "gdpr.redaction_off",
        "gdpr.retention",
        "security.admin_key_expiry",
    ] {
        assert!(rules.contains(&rule.to_owned()), "{rule} in {rules:?}");
    }
    let coppa = &r["findings"][0];
    assert_eq!(coppa["rule"], "coppa.parental_consent", "critical first");
    assert_eq!(coppa["subjects"][0], app.pseudonym(&app.admin, "kid").await);
    assert!(coppa["provision"].as_str().unwrap().contains("312.5"));
    assert!(r["score"].as_f64().unwrap() < 98.0 - 25.0);

    // Fixing them clears them.
    app.put_json(
        "/v1/learners/kid/consent",
        &app.admin,
        &json!({"under_13": true, "parental_consent_verified": true}),
    )
    .await;
    app.put_json("/v1/privacy/policy", &app.admin, &json!({}))
        .await;
    let rules = fired(&report(&app, &dpo).await);
    assert!(!rules.contains(&"coppa.parental_consent".to_owned()));
    assert!(!rules.contains(&"gdpr.redaction_off".to_owned()));
    assert!(!rules.contains(&"gdpr.retention".to_owned()));

    // A burst of failed logins against one of the tenant's keys, with the threshold lowered.
    let r = app
        .put_json(
            "/v1/compliance/rules",
            &dpo,
            &json!({"security.failed_auth_burst": {"params": {"failures": 5}}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let key_id = teacher.split('.').next().unwrap();
    for _ in 0..6 {
        let r = app
            .get("/v1/learners/kid", &format!("{key_id}.wrong-secret"))
            .await;
        assert_eq!(r.status(), 401);
    }
    let r = report(&app, &dpo).await;
    assert!(
        fired(&r).contains(&"security.failed_auth_burst".to_owned()),
        "{r}"
    );

    // Overrides are checked.
    let r = app
        .put_json(
            "/v1/compliance/rules",
            &dpo,
            &json!({"no.such.rule": {"enabled": false}}),
        )
        .await;
    assert_eq!(problem(r).await["field"], "no.such.rule");
    let r = app
        .put_json(
            "/v1/compliance/rules",
            &dpo,
            &json!({"security.unused_keys": {"params": {"weeks": 3}}}),
        )
        .await;
    assert_eq!(
        problem(r).await["field"],
        "security.unused_keys.params.weeks"
    );

    // The readable page.
    let page = app.get("/v1/compliance/report?format=html", &dpo).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Compliance report") && html.contains("A burst of failed authentications")
    );
    app.stop().await;
}

async fn keys_can_expire_and_expired_keys_stop_working() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let r = app
        .client
        .post(app.url("/v1/admin/keys"))
        .bearer_auth(&app.admin)
        .json(&json!({"role": "admin", "expires_in_days": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let key: Value = r.json().await.unwrap();
    assert!(key["expires_us"].is_i64());
    let r = app
        .get("/v1/admin/keys", key["token"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), 401, "a key that expired is refused");
    let keys: Value = app.get_json("/v1/admin/keys", &app.admin).await;
    let bootstrap = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["expires_us"].is_null() && k["role"] == "admin")
        .unwrap();
    assert!(
        bootstrap["last_used_us"].is_i64(),
        "use is recorded: {bootstrap}"
    );
    app.stop().await;
}

async fn a_teacher_cannot_read_outside_their_groups() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let mut other = answered("zed", "q1", true);
    other["context"]["extensions"]["https://learnpulse.dev/xapi/ext/group"] = json!("class-9");
    let batch = json!([answered("ada", "q1", true), other]);
    assert_eq!(app.post_statements(&app.admin, &batch).await.status(), 200);
    let teacher = scoped_key(&app, "teacher", &["class-7b"]).await;

    assert_eq!(app.get("/v1/learners/ada", &teacher).await.status(), 200);
    assert_eq!(app.get("/v1/learners/zed", &teacher).await.status(), 403);
    assert_eq!(
        app.get("/v1/groups/class-9/overview", &teacher)
            .await
            .status(),
        403
    );
    assert_eq!(
        app.get("/v1/stream?group=class-9", &teacher).await.status(),
        403
    );
    let overview: Value = app.get_json("/v1/groups/class-7b/overview", &teacher).await;
    assert_eq!(overview["learners"].as_array().unwrap().len(), 1);
    // An unscoped key still sees both; admins cannot scope admin keys.
    assert_eq!(app.get("/v1/learners/zed", &app.admin).await.status(), 200);
    let r = app
        .client
        .post(app.url("/v1/admin/keys"))
        .bearer_auth(&app.admin)
        .json(&json!({"role": "admin", "groups": ["class-9"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await["field"], "groups");

    // The refused attempts are a compliance finding naming the key.
    let dpo = app.key(&app.admin, "dpo").await;
    let r = report(&app, &dpo).await;
    let finding = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "ferpa.outside_groups")
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(finding["subjects"][0], teacher.split('.').next().unwrap());
    app.stop().await;
}

/// A webhook receiver: every JSON body posted to it.
async fn webhook() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// The report's incident of `rule` (it must have one).
async fn incident_of(app: &TestApp, dpo: &str, rule: &str) -> Value {
    let r = report(app, dpo).await;
    r["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["rule"] == rule)
        .unwrap_or_else(|| panic!("{r}"))
        .clone()
}

/// `POST /v1/compliance/incidents/{id}/reverse`.
async fn reverse(app: &TestApp, dpo: &str, incident: &Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!(
            "/v1/compliance/incidents/{}/reverse",
            incident["id"]
        )))
        .bearer_auth(dpo)
        .send()
        .await
        .unwrap()
}

async fn incidents_open_remediate_reverse_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let (url, received) = webhook().await;
    let app = TestApp::start(dir.path()).await;
    // The DPO's system takes incidents as signed webhooks.
    let r = app
        .post_json(
            "/v1/webhooks",
            &app.admin,
            &json!({"name": "dpo", "events": ["compliance.incident"], "endpoints": [{"url": url}]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let dpo = app.key(&app.admin, "dpo").await;
    let teacher = app.key(&app.admin, "teacher").await;
    let batch: Vec<Value> = ["a", "b", "c"]
        .iter()
        .map(|l| answered(l, "q1", true))
        .collect();
    app.post_statements(&app.admin, &Value::Array(batch)).await;
    let r = app.put_json("/v1/compliance/rules",
        &dpo,
        &json!({
            "security.mass_learner_reads": {"params": {"learners_per_hour": 3}, "actions": ["suspend_keys", "notify_dpo"]},
            "gdpr.retention": {"actions": ["purge_retention"]},
        }),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = app
        .put_json(
            "/v1/compliance/rules",
            &dpo,
            &json!({"gdpr.retention": {"actions": ["shred"]}}),
        )
        .await;
    assert_eq!(
        problem(r).await["field"],
        "gdpr.retention.actions",
        "a refused override changes nothing"
    );

    // The teacher's key reads three learners in an hour: an incident, the key suspended, the
    // DPO notified.
    for l in ["a", "b", "c"] {
        assert_eq!(
            app.get(&format!("/v1/learners/{l}"), &teacher)
                .await
                .status(),
            200
        );
    }
    let incident = incident_of(&app, &dpo, "security.mass_learner_reads").await;
    assert_eq!(incident["actions"][0]["action"], "suspend_keys");
    assert_eq!(incident["actions"][0]["done"], true);
    assert_eq!(incident["actions"][1]["action"], "notify_dpo");
    assert_eq!(incident["actions"][1]["receivers"], 1);
    assert_eq!(app.get("/v1/learners/a", &teacher).await.status(), 401);
    for _ in 0..200 {
        if !received.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    {
        let posted = received.lock().unwrap();
        assert_eq!(posted.len(), 1, "delivered once");
        assert_eq!(posted[0]["type"], "compliance.incident");
        assert_eq!(posted[0]["data"]["rule"], "security.mass_learner_reads");
    }
    // Reversible: the key works again.
    let r = reverse(&app, &dpo, &incident).await;
    assert_eq!(r.status(), 200);
    let reversed: Value = r.json().await.unwrap();
    assert_eq!(reversed["actions"][0]["reversed"], true);
    assert_eq!(app.get("/v1/learners/a", &teacher).await.status(), 200);

    // Retention of zero days: the purge runs as the incident opens, and the incident closes
    // at the next evaluation.
    app.put_json(
        "/v1/privacy/policy",
        &app.admin,
        &json!({"retention_days": 0}),
    )
    .await;
    let purge = incident_of(&app, &dpo, "gdpr.retention").await;
    assert_eq!(purge["actions"][0]["purged_statements"], 3);
    let page = app.xapi_json("/xAPI/statements", &app.admin).await;
    assert_eq!(page["statements"].as_array().unwrap().len(), 0);
    report(&app, &dpo).await;
    let all: Value = app.get_json("/v1/compliance/incidents", &dpo).await;
    let closed = all
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == purge["id"])
        .unwrap();
    assert!(closed["closed_us"].is_i64(), "{closed}");
    app.stop().await;
}

async fn quarantine_restricts_a_learner_until_reversed() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let dpo = app.key(&app.admin, "dpo").await;
    app.post_statements(&app.admin, &answered("kid", "q1", true))
        .await;
    app.put_json(
        "/v1/compliance/rules",
        &dpo,
        &json!({"coppa.parental_consent": {"actions": ["quarantine_learners"]}}),
    )
    .await;
    app.put_json(
        "/v1/learners/kid/consent",
        &app.admin,
        &json!({"under_13": true}),
    )
    .await;
    let incident = incident_of(&app, &dpo, "coppa.parental_consent").await;
    assert_eq!(incident["actions"][0]["done"], true);
    // Restricted: state withheld, new events refused naming the restriction, and the class
    // overview leaves the learner out.
    assert_eq!(app.get("/v1/learners/kid", &app.admin).await.status(), 403);
    let r = app
        .post_statements(&app.admin, &answered("kid", "q2", true))
        .await;
    assert_eq!(r.status(), 403);
    assert!(
        problem(r).await["detail"]
            .as_str()
            .unwrap()
            .contains("processing_restricted")
    );
    let r = app.get("/v1/groups/class-7b/overview", &app.admin).await;
    assert_eq!(r.status(), 404, "nobody left to show");
    // Reversal restores the consent record as it was (under 13, no parental consent yet).
    let r = reverse(&app, &dpo, &incident).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.get("/v1/learners/kid", &app.admin).await.status(), 200);
    let consent: Value = app.get_json("/v1/learners/kid/consent", &app.admin).await;
    assert_eq!(consent["record"]["processing_restricted"], false);
    assert_eq!(consent["record"]["under_13"], true);
    app.stop().await;
}

async fn new_events_trigger_an_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.compliance.interval_secs = 3_600;
    config.compliance.event_debounce_secs = 0;
    let app = TestApp::start_with(config, None).await;
    let dpo = app.key(&app.admin, "dpo").await;
    app.post_statements(&app.admin, &answered("kid", "q1", true))
        .await;
    app.put_json(
        "/v1/learners/kid/consent",
        &app.admin,
        &json!({"under_13": true}),
    )
    .await;
    // Someone else's answer: the commit wakes the monitor, which finds the COPPA problem
    // without anyone asking for a report.
    app.post_statements(&app.admin, &answered("ada", "q1", true))
        .await;
    let mut found = false;
    for _ in 0..100 {
        let incidents: Value = app.get_json("/v1/compliance/incidents", &dpo).await;
        if incidents
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["rule"] == "coppa.parental_consent")
        {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(found, "no incident within 10 s of the event");
    app.stop().await;
}

on_every_backend!(
    rules_fire_on_what_the_tenant_does,
    keys_can_expire_and_expired_keys_stop_working,
    a_teacher_cannot_read_outside_their_groups,
    incidents_open_remediate_reverse_and_close,
    quarantine_restricts_a_learner_until_reversed,
    new_events_trigger_an_evaluation,
);
