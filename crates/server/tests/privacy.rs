//! The privacy pipeline at ingest, black-box: what reaches the log, consent gates, the vault,
//! key rotation and who sees cognitive data.

mod common;

use common::{TestApp, answered, problem};
use serde_json::{Value, json};

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn with_text(who: &str, text: &str) -> Value {
    let mut s = answered(who, "q1", false);
    s["actor"] =
        json!({"objectType": "Agent", "name": "Ada Lovelace", "mbox": format!("mailto:{who}")});
    s["result"]["response"] = json!(text);
    s
}

async fn raw_identities_and_free_text_pii_never_reach_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let s = with_text(
        "ada.lovelace@school.example",
        "I think Ada Lovelace is wrong; call me on +44 20 7946 0958",
    );
    let r = app.post_statements(&app.admin, &s).await;
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()[0]
        .as_str()
        .unwrap()
        .to_owned();

    let stored: Value = app
        .get_statement(&app.admin, &id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        stored["result"]["response"],
        "I think <PERSON_1> is wrong; call me on <PHONE_1>"
    );
    assert_eq!(
        stored["actor"]["account"]["homePage"],
        "https://learnpulse.dev/pseudonym"
    );
    assert!(stored["actor"].get("name").is_none());

    // The learner is still found by the id the platform knows.
    let learner: Value = app
        .get_json("/v1/learners/ada.lovelace@school.example", &app.admin)
        .await;
    assert_eq!(learner["answers"], 1);

    app.stop().await;
    let raw = common::raw_store(dir.path()).await;
    for secret in ["ada.lovelace@school.example", "Lovelace", "7946 0958"] {
        assert!(!contains(&raw, secret), "{secret} is in the store");
    }
}

/// xAPI 2.0 context agents and context groups (also in a SubStatement) are pseudonymised like
/// the actor: neither their mailboxes nor their names reach the store or a reader.
async fn context_agents_and_groups_are_pseudonymised_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let agent = |who: &str, name: &str| json!({"objectType": "Agent", "name": name, "mbox": format!("mailto:{who}@home.example")});
    let context = json!({
        "contextAgents": [{"objectType": "contextAgent", "agent": agent("tutor.kowalska", "Zofia Kowalska")}],
        "contextGroups": [{"objectType": "contextGroup",
                           "group": {"objectType": "Group", "name": "study group",
                                     "member": [agent("peer.nurlanov", "Aibek Nurlanov")]}}]
    });
    let statement = json!({
        "actor": agent("ada.lovelace", "Ada Lovelace"),
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
        "object": {"objectType": "SubStatement",
                   "actor": agent("bo.berg", "Bo Berg"),
                   "verb": {"id": "http://adlnet.gov/expapi/verbs/mentored"},
                   "object": {"objectType": "Activity", "id": "https://lms.example.edu/items/1"},
                   "context": context.clone()},
        "context": context,
    });
    let r = app
        .client
        .post(app.url("/xAPI/statements"))
        .bearer_auth(&app.admin)
        .header("X-Experience-API-Version", "2.0.0")
        .json(&statement)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let id = r.json::<Value>().await.unwrap()[0]
        .as_str()
        .unwrap()
        .to_owned();
    let stored: Value = app
        .get_statement(&app.admin, &id)
        .await
        .json()
        .await
        .unwrap();
    let text = stored.to_string();
    let raw = [
        "tutor.kowalska",
        "Kowalska",
        "peer.nurlanov",
        "Nurlanov",
        "bo.berg",
        "Bo Berg",
    ];
    for secret in raw {
        assert!(!text.contains(secret), "{secret} is served: {text}");
    }
    assert_eq!(
        stored["context"]["contextAgents"][0]["agent"]["account"]["homePage"],
        "https://learnpulse.dev/pseudonym"
    );
    app.stop().await;
    let store = common::raw_store(dir.path()).await;
    for secret in raw {
        assert!(!contains(&store, secret), "{secret} is in the store");
    }
}

async fn pseudonyms_survive_a_restart_and_differ_between_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let before = app.pseudonym(&app.admin, "ada").await;
    let other = app.tenant("other-school").await;
    assert_ne!(app.pseudonym(&other, "ada").await, before);
    let admin = app.admin.clone();
    app.stop().await;
    let app = TestApp::start_with(common::config(dir.path()), Some(admin)).await;
    assert_eq!(app.pseudonym(&app.admin, "ada").await, before);
    app.stop().await;
}

async fn consent_gates_refuse_naming_the_consent_or_reduce() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let r = app
        .put_json(
            "/v1/learners/kid/consent",
            &app.admin,
            &json!({"under_13": true}),
        )
        .await;
    assert_eq!(r.status(), 200);

    // COPPA: under 13 without verified parental consent is refused, naming the consent.
    let batch = json!([answered("ada", "q1", true), answered("kid", "q1", true)]);
    let r = app.post_statements(&app.admin, &batch).await;
    assert_eq!(r.status(), 403);
    let p = problem(r).await;
    assert_eq!(p["field"], "statements[1].actor");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("coppa_parental_consent"),
        "{p}"
    );
    // The batch is atomic: ada's statement was not stored either.
    assert_eq!(app.get("/v1/learners/ada", &app.admin).await.status(), 404);

    // Reduce instead: stored without identity, outside any learner profile, and counted.
    let r = app
        .put_json(
            "/v1/privacy/policy",
            &app.admin,
            &json!({"on_missing_consent": "reduce"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app.post_statements(&app.admin, &batch).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["learnpulse-reduced"], "1");
    let ids: Value = r.json().await.unwrap();
    let reduced: Value = app
        .get_statement(&app.admin, ids[1].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        reduced["actor"]["account"]["homePage"],
        "https://learnpulse.dev/anonymous"
    );
    assert_eq!(
        reduced["context"]["extensions"]["https://learnpulse.dev/xapi/privacy"]["missing_consent"],
        json!(["coppa_parental_consent"])
    );
    assert_eq!(app.get("/v1/learners/kid", &app.admin).await.status(), 404);
    assert_eq!(app.get("/v1/learners/ada", &app.admin).await.status(), 200);

    // Verified parental consent lifts the gate.
    app.put_json(
        "/v1/learners/kid/consent",
        &app.admin,
        &json!({"under_13": true, "parental_consent_verified": true}),
    )
    .await;
    let r = app
        .post_statements(&app.admin, &answered("kid", "q2", true))
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("learnpulse-reduced").is_none());
    assert_eq!(app.get("/v1/learners/kid", &app.admin).await.status(), 200);

    // GDPR: a withdrawal stops processing whatever the basis; under the consent basis a learner
    // without a record is refused.
    app.put_json(
        "/v1/privacy/policy",
        &app.admin,
        &json!({"lawful_basis": "consent"}),
    )
    .await;
    let r = app
        .post_statements(&app.admin, &answered("newcomer", "q1", true))
        .await;
    assert_eq!(r.status(), 403);
    assert!(
        problem(r).await["detail"]
            .as_str()
            .unwrap()
            .contains("missing consent gdpr_consent:")
    );
    app.put_json(
        "/v1/learners/newcomer/consent",
        &app.admin,
        &json!({"gdpr_consent": false}),
    )
    .await;
    let r = app
        .post_statements(&app.admin, &answered("newcomer", "q1", true))
        .await;
    assert!(
        problem(r).await["detail"]
            .as_str()
            .unwrap()
            .contains("gdpr_consent_withdrawn")
    );

    // Bad policies and records name the field.
    let r = app
        .put_json(
            "/v1/privacy/policy",
            &app.admin,
            &json!({"drop_fields": ["/verb"]}),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(problem(r).await["field"], "drop_fields[0]");
    let r = app
        .put_json(
            "/v1/learners/x/consent",
            &app.admin,
            &json!({"under_13": "yes"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(problem(r).await["field"], "under_13");
    app.stop().await;
}

async fn a_dpo_reidentifies_from_the_vault_and_nobody_else_can() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    app.put_json("/v1/privacy/policy", &app.admin, &json!({"vault": true}))
        .await;
    let r = app
        .put_json(
            "/v1/privacy/roster",
            &app.admin,
            &json!({"names": ["Gijsbrecht van Hecke"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let s = with_text(
        "g@school.example",
        "gijsbrecht helped me, mail g@school.example",
    );
    let ids: Value = app
        .post_statements(&app.admin, &s)
        .await
        .json()
        .await
        .unwrap();
    let id = ids[0].as_str().unwrap();
    let stored: Value = app
        .get_statement(&app.admin, id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        stored["result"]["response"], "<PERSON_1> helped me, mail <EMAIL_1>",
        "the roster finds a lower-case name no gazetteer knows"
    );

    let dpo = app.key(&app.admin, "dpo").await;
    let r = app
        .get(&format!("/v1/vault/{id}/PERSON_1"), &app.admin)
        .await;
    assert_eq!(r.status(), 403, "admins cannot re-identify");
    let found: Value = app
        .get_json(&format!("/v1/vault/{id}/PERSON_1"), &dpo)
        .await;
    assert_eq!(found["original"], "gijsbrecht");
    let found: Value = app
        .get_json(&format!("/v1/vault/{id}/%3CEMAIL_1%3E"), &dpo)
        .await;
    assert_eq!(found["original"], "g@school.example");
    assert_eq!(
        app.get(&format!("/v1/vault/{id}/PERSON_2"), &dpo)
            .await
            .status(),
        404
    );
    app.stop().await;
    // The vault and the roster are sealed: neither the name nor the address is in the files.
    let raw = common::raw_store(dir.path()).await;
    assert!(!contains(&raw, "g@school.example"));
    assert!(!contains(&raw, "Hecke"));
}

async fn key_rotation_keeps_one_history_per_learner() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    for item in ["q1", "q2"] {
        app.post_statements(&app.admin, &answered("ada", item, true))
            .await;
    }
    let old = app.pseudonym(&app.admin, "ada").await;
    let r = app
        .client
        .post(app.url("/v1/privacy/keys/rotate"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["pseudonym_key_version"], 2);
    let new = app.pseudonym(&app.admin, "ada").await;
    assert_ne!(old, new);
    app.post_statements(&app.admin, &answered("ada", "q3", true))
        .await;
    let learner: Value = app.get_json("/v1/learners/ada", &app.admin).await;
    assert_eq!(learner["learner"], new.as_str());
    assert_eq!(
        learner["answers"], 3,
        "the history under the old key came along"
    );

    // And after a restart, replay rebuilds the same single history.
    let admin = app.admin.clone();
    app.stop().await;
    let app = TestApp::start_with(common::config(dir.path()), Some(admin)).await;
    let learner: Value = app.get_json("/v1/learners/ada", &app.admin).await;
    assert_eq!(learner["answers"], 3);
    assert_eq!(
        app.get(&format!("/v1/learners/{old}"), &app.admin)
            .await
            .status(),
        404
    );
    app.stop().await;
}

async fn cognitive_data_is_shown_only_to_the_roles_that_need_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    app.post_statements(&app.admin, &answered("ada", "q1", false))
        .await;
    let teacher = app.key(&app.admin, "teacher").await;
    let dpo = app.key(&app.admin, "dpo").await;
    let seen: Value = app.get_json("/v1/learners/ada", &teacher).await;
    assert!(seen["load"]["level"].is_string());
    let seen: Value = app.get_json("/v1/learners/ada", &dpo).await;
    assert!(seen["load"].is_null());
    assert!(seen["risk"]["reasons"].is_null());
    assert_eq!(seen["answers"], 1, "the rest is there");

    app.put_json(
        "/v1/privacy/policy",
        &app.admin,
        &json!({"cognitive_data_roles": ["tutor"]}),
    )
    .await;
    let seen: Value = app.get_json("/v1/learners/ada", &teacher).await;
    assert!(seen["load"].is_null());
    let overview: Value = app.get_json("/v1/groups/class-7b/overview", &teacher).await;
    assert!(overview["learners"][0].get("load_level").is_none());
    let r = app
        .put_json(
            "/v1/privacy/policy",
            &app.admin,
            &json!({"cognitive_data_roles": ["wizard"]}),
        )
        .await;
    assert_eq!(problem(r).await["field"], "cognitive_data_roles");
    app.stop().await;
}

on_every_backend!(
    raw_identities_and_free_text_pii_never_reach_the_store,
    context_agents_and_groups_are_pseudonymised_everywhere,
    pseudonyms_survive_a_restart_and_differ_between_tenants,
    consent_gates_refuse_naming_the_consent_or_reduce,
    a_dpo_reidentifies_from_the_vault_and_nobody_else_can,
    key_rotation_keeps_one_history_per_learner,
    cognitive_data_is_shown_only_to_the_roles_that_need_it,
);
