//! The compliance report, black-box: rules fire on what a tenant really does, and stay quiet
//! otherwise.

mod common;

use common::{TestApp, answered, problem};
use serde_json::{Value, json};

async fn put(app: &TestApp, path: &str, token: &str, body: &Value) -> reqwest::Response {
    app.client
        .put(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

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

#[tokio::test]
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
    put(
        &app,
        "/v1/learners/kid/consent",
        &app.admin,
        &json!({"under_13": true}),
    )
    .await;
    // Free text stored unredacted because the policy says so, and retention of zero days.
    put(
        &app,
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
    put(
        &app,
        "/v1/learners/kid/consent",
        &app.admin,
        &json!({"under_13": true, "parental_consent_verified": true}),
    )
    .await;
    put(&app, "/v1/privacy/policy", &app.admin, &json!({})).await;
    let rules = fired(&report(&app, &dpo).await);
    assert!(!rules.contains(&"coppa.parental_consent".to_owned()));
    assert!(!rules.contains(&"gdpr.redaction_off".to_owned()));
    assert!(!rules.contains(&"gdpr.retention".to_owned()));

    // A burst of failed logins against one of the tenant's keys, with the threshold lowered.
    let r = put(
        &app,
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
    let r = put(
        &app,
        "/v1/compliance/rules",
        &dpo,
        &json!({"no.such.rule": {"enabled": false}}),
    )
    .await;
    assert_eq!(problem(r).await["field"], "no.such.rule");
    let r = put(
        &app,
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

#[tokio::test]
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

#[tokio::test]
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
