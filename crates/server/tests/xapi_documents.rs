//! The xAPI document resources (state, agent profile, activity profile) and `/xAPI/activities`,
//! `/xAPI/agents`, over HTTP, on every backend.

mod common;

use common::{TestApp, answered, problem, urlencode};
use reqwest::{Method, Response};
use serde_json::{Value, json};

const ACTIVITY: &str = "http://www.example.com/activityId/hashset";

fn agent(name: &str) -> String {
    json!({"objectType": "Agent", "account": {"homePage": "http://www.example.com/agentId/1", "name": name}})
        .to_string()
}

fn state_path(agent: &str, extra: &str) -> String {
    format!(
        "/xAPI/activities/state?activityId={ACTIVITY}&agent={}{extra}",
        urlencode(agent)
    )
}

async fn send(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    version: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &str)>,
) -> Response {
    let mut r = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("X-Experience-API-Version", version);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    if let Some((content_type, body)) = body {
        r = r.header("Content-Type", content_type).body(body.to_owned());
    }
    r.send().await.unwrap()
}

async fn state_documents_round_trip_merge_list_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let ingest = app.key(&app.admin, "ingest").await;
    let ada = agent("ada");
    let one = state_path(&ada, "&stateId=one");

    let r = send(
        &app,
        &ingest,
        Method::POST,
        &one,
        "2.0.0",
        &[],
        Some(("application/json", r#"{"car":"Honda"}"#)),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["x-experience-api-version"], "2.0.0");
    let r = send(
        &app,
        &ingest,
        Method::POST,
        &one,
        "2.0.0",
        &[],
        Some(("application/json", r#"{"type":"Civic"}"#)),
    )
    .await;
    assert_eq!(r.status(), 204, "a JSON object merges into the stored one");
    let r = send(&app, &ingest, Method::GET, &one, "2.0.0", &[], None).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag.len(), 42, "a quoted SHA-1: {etag}");
    assert!(r.headers().contains_key("last-modified"));
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc, json!({"car": "Honda", "type": "Civic"}));

    // HEAD: the same headers, no body.
    let r = send(&app, &ingest, Method::HEAD, &one, "2.0.0", &[], None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert!(r.bytes().await.unwrap().is_empty());

    // A merge that cannot apply is refused and changes nothing.
    let r = send(
        &app,
        &ingest,
        Method::POST,
        &one,
        "2.0.0",
        &[],
        Some(("text/plain", "car")),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(problem(r).await["field"], "Content-Type");
    let r = send(&app, &ingest, Method::GET, &one, "2.0.0", &[], None).await;
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);

    // An opaque document is kept byte for byte with its type.
    let blob = state_path(
        &ada,
        "&stateId=blob&registration=ec531277-b57b-4c15-8d91-d292c5b2b8f7",
    );
    let r = send(
        &app,
        &ingest,
        Method::PUT,
        &blob,
        "1.0.3",
        &[],
        Some(("application/octet-stream", "/ asdf / undefined")),
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = send(&app, &ingest, Method::GET, &blob, "1.0.3", &[], None).await;
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.text().await.unwrap(), "/ asdf / undefined");

    // The list: ids of the scope, optionally changed since a time.
    let r = send(
        &app,
        &ingest,
        Method::GET,
        &state_path(&ada, ""),
        "2.0.0",
        &[],
        None,
    )
    .await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!(["one"]),
        "registrations are scopes of their own"
    );
    let r = send(
        &app,
        &ingest,
        Method::GET,
        &state_path(&ada, "&since=2999-01-01T00:00:00Z"),
        "2.0.0",
        &[],
        None,
    )
    .await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!([]));
    let r = send(
        &app,
        &ingest,
        Method::GET,
        &state_path(&ada, "&since=not%20a%20time"),
        "2.0.0",
        &[],
        None,
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(problem(r).await["field"], "since");

    // Another learner sees none of it.
    let r = send(
        &app,
        &ingest,
        Method::GET,
        &state_path(&agent("bo"), ""),
        "2.0.0",
        &[],
        None,
    )
    .await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!([]));

    // Delete without an id: every state of the activity and agent.
    let r = send(
        &app,
        &ingest,
        Method::DELETE,
        &state_path(&ada, ""),
        "2.0.0",
        &[],
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["x-experience-api-version"], "2.0.0");
    let r = send(&app, &ingest, Method::GET, &one, "2.0.0", &[], None).await;
    assert_eq!(r.status(), 404);
    app.stop().await;
}

async fn concurrency_rules_follow_the_requested_version() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let ingest = app.key(&app.admin, "ingest").await;
    let profile = format!("/xAPI/activities/profile?activityId={ACTIVITY}&profileId=p");
    let json_doc = Some(("application/json", r#"{"a":1}"#));

    // 1.0.3: a PUT of a profile must name a precondition.
    let r = send(&app, &ingest, Method::PUT, &profile, "1.0.3", &[], json_doc).await;
    assert_eq!(r.status(), 400);
    let r = send(
        &app,
        &ingest,
        Method::PUT,
        &profile,
        "1.0.3",
        &[("If-None-Match", "*")],
        json_doc,
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = send(
        &app,
        &ingest,
        Method::PUT,
        &profile,
        "1.0.3",
        &[("If-None-Match", "*")],
        json_doc,
    )
    .await;
    assert_eq!(r.status(), 412, "it exists now");
    let r = send(&app, &ingest, Method::PUT, &profile, "2.0.0", &[], json_doc).await;
    assert_eq!(r.status(), 409);
    assert!(!problem(r).await["detail"].as_str().unwrap().is_empty());
    let etag = send(&app, &ingest, Method::GET, &profile, "2.0.0", &[], None)
        .await
        .headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    for method in [Method::PUT, Method::POST, Method::DELETE] {
        let r = send(
            &app,
            &ingest,
            method,
            &profile,
            "2.0.0",
            &[("If-Match", "\"1234\"")],
            json_doc,
        )
        .await;
        assert_eq!(r.status(), 412);
    }
    let r = send(
        &app,
        &ingest,
        Method::PUT,
        &profile,
        "2.0.0",
        &[("If-Match", &etag)],
        Some(("application/json", r#"{"b":2}"#)),
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = send(&app, &ingest, Method::GET, &profile, "2.0.0", &[], None).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"b": 2}));

    // The state resource: exempt in 1.0.3, checked in 2.0.
    let state = state_path(&agent("ada"), "&stateId=s");
    for (version, status) in [("1.0.3", 204), ("1.0.3", 204), ("2.0.0", 409)] {
        let r = send(&app, &ingest, Method::PUT, &state, version, &[], json_doc).await;
        assert_eq!(
            r.status(),
            status,
            "PUT without a precondition in {version}"
        );
    }
    // A profile that never existed deletes fine.
    let r = send(
        &app,
        &ingest,
        Method::DELETE,
        &format!("/xAPI/activities/profile?activityId={ACTIVITY}&profileId=never"),
        "2.0.0",
        &[],
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    app.stop().await;
}

async fn parameters_are_checked_and_agents_pseudonymised() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let ingest = app.key(&app.admin, "ingest").await;
    let ada = agent("ada");
    for (path, field) in [
        (
            format!("/xAPI/activities/state?agent={}&stateId=s", urlencode(&ada)),
            "activityId",
        ),
        (
            format!("/xAPI/activities/state?activityId={ACTIVITY}&stateId=s"),
            "agent",
        ),
        (
            format!("/xAPI/activities/state?activityId={ACTIVITY}&agent=true&stateId=s"),
            "agent",
        ),
        (
            state_path(&ada, "&stateId=s&registration=true"),
            "registration",
        ),
        (state_path(&ada, "&stateId=s&color=red"), "color"),
        (
            format!(
                "/xAPI/agents/profile?agent={}",
                urlencode(r#"{"name":"no identifier"}"#)
            ),
            "agent",
        ),
    ] {
        let r = send(&app, &ingest, Method::GET, &path, "2.0.0", &[], None).await;
        assert_eq!(r.status(), 400, "{path}");
        assert_eq!(problem(r).await["field"], field, "{path}");
    }
    let r = send(
        &app,
        &ingest,
        Method::PUT,
        &state_path(&ada, ""),
        "2.0.0",
        &[],
        Some(("application/json", "{}")),
    )
    .await;
    assert_eq!(r.status(), 400, "a PUT needs its id");

    // Documents are filed under the agent as the log keeps it: the pseudonym, not the name.
    let profile = format!(
        "/xAPI/agents/profile?agent={}&profileId=prefs",
        urlencode(&ada)
    );
    let r = send(
        &app,
        &ingest,
        Method::POST,
        &profile,
        "2.0.0",
        &[],
        Some(("application/json", r#"{"theme":"dark"}"#)),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert!(
        common::tables_holding(dir.path(), "Rick").await.is_empty()
            && common::tables_holding(dir.path(), "\"ada\"")
                .await
                .is_empty(),
        "no raw identity is stored"
    );
    app.stop().await;
}

async fn an_erasure_deletes_the_learners_documents() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let ingest = app.key(&app.admin, "ingest").await;
    let dpo = app.key(&app.admin, "dpo").await;
    let ada = json!({"objectType": "Agent", "account": {"homePage": "https://lms.example.org", "name": "ada"}}).to_string();
    let profile = format!(
        "/xAPI/agents/profile?agent={}&profileId=prefs",
        urlencode(&ada)
    );
    let r = send(
        &app,
        &ingest,
        Method::POST,
        &profile,
        "2.0.0",
        &[],
        Some(("application/json", r#"{"theme":"dark"}"#)),
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = app
        .post_json(
            "/v1/compliance/requests",
            &dpo,
            &json!({"kind": "erasure", "learner": "ada"}),
        )
        .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let r = send(&app, &ingest, Method::GET, &profile, "2.0.0", &[], None).await;
    assert_eq!(r.status(), 404, "the erasure removed her agent profile");
    app.stop().await;
}

async fn documents_follow_the_learner_across_a_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let ada = agent("ada");
    let state = state_path(&ada, "&stateId=resume");
    let r = send(
        &app,
        &app.admin,
        Method::PUT,
        &state,
        "1.0.3",
        &[],
        Some(("application/octet-stream", "bookmark=7")),
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = app
        .client
        .post(app.url("/v1/privacy/keys/rotate"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Filed under her old pseudonym, found under the new one (and moved there).
    let r = send(&app, &app.admin, Method::GET, &state, "2.0.0", &[], None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "bookmark=7");
    let r = send(
        &app,
        &app.admin,
        Method::GET,
        &state_path(&ada, ""),
        "2.0.0",
        &[],
        None,
    )
    .await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!(["resume"]));
    app.stop().await;
}

async fn activities_and_agents_are_described() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let ingest = app.key(&app.admin, "ingest").await;
    let id = "https://lms.example.edu/items/q1";
    let mut first = answered("ada", "q1", true);
    first["object"]["definition"] = json!({"name": {"en-GB": "meeting", "en-US": "meeting"}});
    let mut second = answered("bo", "q1", true);
    second["object"]["definition"] = json!({"name": {"en-GB": "Meeting", "fr-FR": "réunion"}});
    assert_eq!(
        app.post_statements(&ingest, &json!([first, second]))
            .await
            .status(),
        200
    );
    let activity = app
        .xapi_json(&format!("/xAPI/activities?activityId={id}"), &ingest)
        .await;
    assert_eq!(activity["objectType"], "Activity");
    assert_eq!(
        activity["definition"]["name"],
        json!({"en-GB": "Meeting", "en-US": "meeting", "fr-FR": "réunion"})
    );
    let never = app
        .xapi_json(
            "/xAPI/activities?activityId=https://example.org/never",
            &ingest,
        )
        .await;
    assert_eq!(
        never,
        json!({"objectType": "Activity", "id": "https://example.org/never"})
    );

    let person = app
        .xapi_json(
            &format!(
                "/xAPI/agents?agent={}",
                urlencode(r#"{"name":"Ada","mbox":"mailto:ada@example.org"}"#)
            ),
            &ingest,
        )
        .await;
    assert_eq!(
        person,
        json!({"objectType": "Person", "name": ["Ada"], "mbox": ["mailto:ada@example.org"]})
    );
    let r = send(
        &app,
        &ingest,
        Method::GET,
        "/xAPI/agents",
        "2.0.0",
        &[],
        None,
    )
    .await;
    assert_eq!(r.status(), 400);
    app.stop().await;
}

on_every_backend!(
    state_documents_round_trip_merge_list_and_delete,
    concurrency_rules_follow_the_requested_version,
    parameters_are_checked_and_agents_pseudonymised,
    an_erasure_deletes_the_learners_documents,
    documents_follow_the_learner_across_a_key_rotation,
    activities_and_agents_are_described,
);
