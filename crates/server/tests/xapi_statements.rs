//! The xAPI statements resource, over HTTP.

mod common;

use common::{TestApp, answered, problem, urlencode};
use reqwest::Method;
use serde_json::{Value, json};

async fn post_put_get_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let ingest = app.key(&app.admin, "ingest").await;

    let r = app
        .post_statements(&ingest, &answered("ada", "q1", true))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-experience-api-version"], "1.0.3");
    let ids: Vec<String> = r.json().await.unwrap();
    assert_eq!(ids.len(), 1);

    let r = app.get_statement(&ingest, &ids[0]).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()
            .contains_key("x-experience-api-consistent-through")
    );
    let s: Value = r.json().await.unwrap();
    assert_eq!(s["id"], ids[0]);
    assert_eq!(
        s["actor"]["account"]["name"],
        app.pseudonym(&app.admin, "ada").await,
        "the privacy pipeline stores the tenant's pseudonym"
    );
    assert!(s["stored"].is_string(), "stored is set by the server");
    assert_eq!(
        s["timestamp"], "2026-11-26T09:30:00Z",
        "a client timestamp is kept"
    );
    assert_eq!(
        s["authority"]["account"]["name"],
        ingest.split('.').next().unwrap()
    );
    assert_eq!(s["version"], "1.0.0");

    let id = "6a0c3a9e-3f0e-4d57-9a39-0d2f6a7bd111";
    let mut body = answered("bo", "q2", false);
    body.as_object_mut().unwrap().remove("timestamp");
    let r = app
        .xapi(
            Method::PUT,
            &format!("/xAPI/statements?statementId={id}"),
            &ingest,
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let s: Value = app.get_statement(&ingest, id).await.json().await.unwrap();
    assert_eq!(s["id"], id);
    assert!(
        s["timestamp"].is_string(),
        "a missing timestamp is filled in"
    );

    let r = app
        .xapi(Method::PUT, "/xAPI/statements", &ingest)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(problem(r).await["field"], "statementId");
    app.stop().await;
}

async fn conflicting_ids_give_409_and_identical_reposts_are_no_ops() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let id = "0b9f5a0e-1111-4d57-9a39-0d2f6a7bd111";
    let mut statement = answered("ada", "q1", true);
    statement["id"] = json!(id);
    assert_eq!(
        app.post_statements(&app.admin, &statement).await.status(),
        200
    );
    // The same statement again, with its keys in another order: a no-op.
    let reordered: Value = serde_json::from_str(&{
        let mut m: Vec<(String, Value)> =
            statement.as_object().unwrap().clone().into_iter().collect();
        m.reverse();
        let map: serde_json::Map<String, Value> = m.into_iter().collect();
        Value::Object(map).to_string()
    })
    .unwrap();
    assert_eq!(
        app.post_statements(&app.admin, &reordered).await.status(),
        200
    );
    let r = app
        .xapi(
            Method::PUT,
            &format!("/xAPI/statements?statementId={id}"),
            &app.admin,
        )
        .json(&statement)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // What the comparison rules ignore: the verb's display, the activity's definition, a
    // duration past hundredths, the same instant in another zone.
    let mut equivalent = statement.clone();
    equivalent["verb"]["display"] = json!({"fr-FR": "a répondu"});
    equivalent["object"]["definition"] = json!({"name": {"en": "Question 1"}});
    equivalent["result"]["duration"] = json!("PT9.5012S");
    equivalent["timestamp"] = json!("2026-11-26T10:30:00+01:00");
    assert_eq!(
        app.post_statements(&app.admin, &equivalent).await.status(),
        200,
        "an equivalent statement is a no-op"
    );

    let mut different = statement.clone();
    different["result"]["success"] = json!(false);
    let r = app.post_statements(&app.admin, &different).await;
    assert_eq!(r.status(), 409);
    let p = problem(r).await;
    assert_eq!(p["status"], 409);
    assert!(p["detail"].as_str().unwrap().contains(id));

    let s: Value = app
        .get_statement(&app.admin, id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        s["result"]["success"], true,
        "the stored statement is unchanged"
    );
    app.stop().await;
}

async fn batches_are_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let taken = "0b9f5a0e-2222-4d57-9a39-0d2f6a7bd111";
    let mut first = answered("ada", "q1", true);
    first["id"] = json!(taken);
    assert_eq!(app.post_statements(&app.admin, &first).await.status(), 200);

    // A new statement plus a conflicting one: nothing of the batch is stored.
    let fresh = "0b9f5a0e-3333-4d57-9a39-0d2f6a7bd111";
    let mut new_one = answered("bo", "q1", true);
    new_one["id"] = json!(fresh);
    let mut conflicting = answered("cy", "q9", false);
    conflicting["id"] = json!(taken);
    let r = app
        .post_statements(&app.admin, &json!([new_one, conflicting]))
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(app.get_statement(&app.admin, fresh).await.status(), 404);

    // A valid statement plus an invalid one: 400 naming the invalid one, nothing stored.
    let mut invalid = answered("cy", "q2", true);
    invalid["actor"]["account"]
        .as_object_mut()
        .unwrap()
        .remove("homePage");
    let r = app
        .post_statements(&app.admin, &json!([new_one, invalid]))
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        problem(r).await["field"],
        "statements[1].actor.account.homePage"
    );
    assert_eq!(app.get_statement(&app.admin, fresh).await.status(), 404);

    // Duplicate ids inside one batch.
    let r = app
        .post_statements(&app.admin, &json!([new_one, new_one]))
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(problem(r).await["field"], "statements[1].id");

    // The learner state saw none of the rejected events.
    let r = app.get("/v1/learners/bo", &app.admin).await;
    assert_eq!(r.status(), 404);
    app.stop().await;
}

async fn version_header_rules() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let r = app
        .client
        .post(app.url("/xAPI/statements"))
        .bearer_auth(&app.admin)
        .json(&answered("a", "q", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().contains_key("x-experience-api-version"));
    assert_eq!(problem(r).await["field"], "X-Experience-API-Version");

    let r = app
        .client
        .get(app.url("/xAPI/statements"))
        .bearer_auth(&app.admin)
        .header("X-Experience-API-Version", "0.95")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let r = app
        .client
        .get(app.url("/xAPI/statements"))
        .bearer_auth(&app.admin)
        .header("X-Experience-API-Version", "2.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-experience-api-version"], "2.0.0");

    // /about needs neither the header nor credentials.
    let r = app.client.get(app.url("/xAPI/about")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-experience-api-version"));
    let about: Value = r.json().await.unwrap();
    assert!(
        about["version"]
            .as_array()
            .unwrap()
            .contains(&json!("2.0.0"))
    );
    app.stop().await;
}

async fn queries_filter_and_page_with_more() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let batch: Vec<Value> = (0..30)
        .map(|i| {
            answered(
                if i % 3 == 0 { "ada" } else { "bo" },
                &format!("q{}", i % 4),
                i % 2 == 0,
            )
        })
        .collect();
    let r = app.post_statements(&app.admin, &Value::Array(batch)).await;
    assert_eq!(r.status(), 200);
    let ids: Vec<String> = r.json().await.unwrap();

    let agent = r#"{"account":{"homePage":"https://lms.example.edu","name":"ada"}}"#;
    let url = format!("/xAPI/statements?agent={}", urlencode(agent));
    let page: Value = app.xapi_json(&url, &app.admin).await;
    assert_eq!(
        page["statements"]
            .as_array()
            .unwrap_or_else(|| panic!("{page}"))
            .len(),
        10
    );
    let ada = app.pseudonym(&app.admin, "ada").await;
    assert!(
        page["statements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["actor"]["account"]["name"] == ada.as_str())
    );

    let url = format!(
        "/xAPI/statements?activity={}",
        urlencode("https://lms.example.edu/items/q1")
    );
    let page: Value = app.xapi_json(&url, &app.admin).await;
    assert_eq!(page["statements"].as_array().unwrap().len(), 8);

    let url = format!(
        "/xAPI/statements?verb={}",
        urlencode("http://adlnet.gov/expapi/verbs/experienced")
    );
    let page: Value = app.xapi_json(&url, &app.admin).await;
    assert_eq!(page["statements"].as_array().unwrap().len(), 0);
    assert_eq!(page["more"], "");

    // Paging: 30 statements, 7 a page, ascending: ids come back in order, each once.
    let mut seen = Vec::new();
    let mut next = "/xAPI/statements?limit=7&ascending=true".to_owned();
    while !next.is_empty() {
        let page: Value = app.xapi_json(&next, &app.admin).await;
        seen.extend(
            page["statements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned()),
        );
        next = page["more"].as_str().unwrap().to_owned();
    }
    assert_eq!(seen, ids);

    // Descending by default, and since/until bound by `stored`.
    let page: Value = app.xapi_json("/xAPI/statements?limit=1", &app.admin).await;
    let newest = &page["statements"][0];
    assert_eq!(newest["id"], ids[29].as_str());
    let url = format!(
        "/xAPI/statements?since={}",
        urlencode(newest["stored"].as_str().unwrap())
    );
    let page: Value = app.xapi_json(&url, &app.admin).await;
    assert_eq!(page["statements"].as_array().unwrap().len(), 0);
    let url = format!(
        "/xAPI/statements?until={}",
        urlencode(newest["stored"].as_str().unwrap())
    );
    let page: Value = app.xapi_json(&url, &app.admin).await;
    assert_eq!(page["statements"].as_array().unwrap().len(), 30);

    for bad in [
        "limit=-1",
        "since=yesterday",
        "agent=notjson",
        "bogus=1",
        "statementId=nope",
        "ascending=maybe",
    ] {
        let r = app
            .xapi(Method::GET, &format!("/xAPI/statements?{bad}"), &app.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(
            problem(r).await["field"],
            bad.split('=').next().unwrap(),
            "{bad}"
        );
    }
    app.stop().await;
}

async fn voided_statements_leave_queries_but_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let ids: Vec<String> = app
        .post_statements(&app.admin, &answered("ada", "q1", true))
        .await
        .json()
        .await
        .unwrap();
    let void = json!({
        "actor": {"mbox": "mailto:teacher@example.edu"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided", "display": {"en-US": "voided"}},
        "object": {"objectType": "StatementRef", "id": ids[0]}
    });
    assert_eq!(app.post_statements(&app.admin, &void).await.status(), 200);
    assert_eq!(app.get_statement(&app.admin, &ids[0]).await.status(), 404);
    let r = app
        .xapi(
            Method::GET,
            &format!("/xAPI/statements?voidedStatementId={}", ids[0]),
            &app.admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = app.xapi_json("/xAPI/statements", &app.admin).await;
    let listed: Vec<&str> = page["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(!listed.contains(&ids[0].as_str()));
    assert_eq!(listed.len(), 1, "the voiding statement itself is listed");
    app.stop().await;
}

/// xAPI Communication 2.1.3: a filtered query also returns the statements that target a
/// matching statement through a StatementRef (recursively, voided targets included); since,
/// until, limit and paging apply to the returned statements.
async fn filtered_queries_return_statements_that_target_a_match() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let post = |body: Value| {
        let app = &app;
        async move {
            let r = app.post_statements(&app.admin, &body).await;
            assert_eq!(r.status(), 200);
            r.json::<Vec<String>>().await.unwrap().remove(0)
        }
    };
    let reference = |actor: &str, verb: &str, target: &str| {
        json!({
            "actor": {"account": {"homePage": "https://lms.example.edu", "name": actor}},
            "verb": {"id": verb},
            "object": {"objectType": "StatementRef", "id": target}
        })
    };
    let answered_by_ada = post(answered("ada", "q1", true)).await;
    let by_bo = post(answered("bo", "q2", true)).await;
    let voiding = post(reference(
        "teacher",
        "http://adlnet.gov/expapi/verbs/voided",
        &answered_by_ada,
    ))
    .await;
    let commented = post(reference(
        "bo",
        "http://adlnet.gov/expapi/verbs/commented",
        &answered_by_ada,
    ))
    .await;
    let liked_comment = post(reference(
        "cy",
        "http://activitystrea.ms/schema/1.0/like",
        &commented,
    ))
    .await;
    let about_bo = post(reference(
        "cy",
        "http://adlnet.gov/expapi/verbs/commented",
        &by_bo,
    ))
    .await;

    let ids = |page: &Value| -> Vec<String> {
        page["statements"]
            .as_array()
            .unwrap_or_else(|| panic!("{page}"))
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let agent = urlencode(r#"{"account":{"homePage":"https://lms.example.edu","name":"ada"}}"#);
    let page: Value = app
        .xapi_json(&format!("/xAPI/statements?agent={agent}"), &app.admin)
        .await;
    assert_eq!(
        ids(&page),
        [liked_comment.as_str(), commented.as_str(), voiding.as_str()],
        "newest first; the voided statement itself is not returned"
    );
    let url = format!(
        "/xAPI/statements?activity={}&ascending=true",
        urlencode("https://lms.example.edu/items/q2")
    );
    let page: Value = app.xapi_json(&url, &app.admin).await;
    assert_eq!(ids(&page), [by_bo.as_str(), about_bo.as_str()]);

    // One statement a page: every one once, in order, through `more`.
    let mut seen = Vec::new();
    let mut next = format!("/xAPI/statements?agent={agent}&limit=1");
    while !next.is_empty() {
        let page: Value = app.xapi_json(&next, &app.admin).await;
        seen.extend(ids(&page));
        next = page["more"].as_str().unwrap().to_owned();
    }
    assert_eq!(
        seen,
        [liked_comment.as_str(), commented.as_str(), voiding.as_str()]
    );

    // The window applies to the statement returned, not to the one it targets.
    let stored = app.get_statement(&app.admin, &commented).await;
    let stored: Value = stored.json().await.unwrap();
    let since = urlencode(stored["stored"].as_str().unwrap());
    let page: Value = app
        .xapi_json(
            &format!("/xAPI/statements?agent={agent}&since={since}"),
            &app.admin,
        )
        .await;
    assert_eq!(ids(&page), [liked_comment.as_str()]);
    let page: Value = app
        .xapi_json(
            &format!("/xAPI/statements?agent={agent}&until={since}"),
            &app.admin,
        )
        .await;
    assert_eq!(ids(&page), [commented.as_str(), voiding.as_str()]);
    app.stop().await;
}

/// xAPI Communication 2.1.3: `agent` matches the actor or the object; with `related_agents`,
/// any agent the statement names; `activity` matches the object; with `related_activities`,
/// any activity it names (context activities, SubStatements).
async fn agent_and_activity_filters_reach_related_places() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let person = |name: &str| json!({"mbox": format!("mailto:{name}@example.edu")});
    let post = |body: Value| {
        let app = &app;
        async move {
            let r = app.post_statements(&app.admin, &body).await;
            assert_eq!(r.status(), 200, "{body}");
            r.json::<Vec<String>>().await.unwrap().remove(0)
        }
    };
    let course = "https://lms.example.edu/courses/algebra";
    let answered_in_course = post(json!({
        "actor": person("ada"),
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
        "object": {"id": "https://lms.example.edu/items/q1"},
        "context": {"instructor": person("teacher"),
                    "contextActivities": {"grouping": [{"id": course}]}}
    }))
    .await;
    let greeted_ada = post(json!({
        "actor": person("bo"),
        "verb": {"id": "http://example.edu/verbs/greeted"},
        "object": {"objectType": "Agent", "mbox": "mailto:ada@example.edu"}
    }))
    .await;
    let planned = post(json!({
        "actor": person("cy"),
        "verb": {"id": "http://example.edu/verbs/planned"},
        "object": {"objectType": "SubStatement", "actor": person("ada"),
                   "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
                   "object": {"id": "https://lms.example.edu/items/q9"}}
    }))
    .await;
    let in_a_team = post(json!({
        "actor": person("bo"),
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attended"},
        "object": {"id": "https://lms.example.edu/meetings/1"},
        "context": {"team": {"objectType": "Group", "mbox": "mailto:team@example.edu"}}
    }))
    .await;

    let ids = |url: String| {
        let app = &app;
        async move {
            let mut seen = Vec::new();
            let mut next = url;
            // One a page, to page through merged index ranges.
            next.push_str("&limit=1");
            while !next.is_empty() {
                let page: Value = app.xapi_json(&next, &app.admin).await;
                seen.extend(
                    page["statements"]
                        .as_array()
                        .unwrap_or_else(|| panic!("{page}"))
                        .iter()
                        .map(|s| s["id"].as_str().unwrap().to_owned()),
                );
                next = page["more"].as_str().unwrap().to_owned();
            }
            seen
        }
    };
    let agent = |name: &str| urlencode(&person(name).to_string());
    assert_eq!(
        ids(format!("/xAPI/statements?agent={}", agent("ada"))).await,
        [greeted_ada.clone(), answered_in_course.clone()],
        "the actor or the object"
    );
    assert_eq!(
        ids(format!(
            "/xAPI/statements?agent={}&related_agents=true",
            agent("ada")
        ))
        .await,
        [planned.clone(), greeted_ada, answered_in_course.clone()]
    );
    assert!(
        ids(format!("/xAPI/statements?agent={}", agent("teacher")))
            .await
            .is_empty()
    );
    assert_eq!(
        ids(format!(
            "/xAPI/statements?agent={}&related_agents=true",
            agent("teacher")
        ))
        .await,
        std::slice::from_ref(&answered_in_course)
    );
    let team = urlencode(r#"{"objectType":"Group","mbox":"mailto:team@example.edu"}"#);
    assert_eq!(
        ids(format!("/xAPI/statements?agent={team}&related_agents=true")).await,
        [in_a_team]
    );
    assert!(
        ids(format!("/xAPI/statements?activity={}", urlencode(course)))
            .await
            .is_empty()
    );
    assert_eq!(
        ids(format!(
            "/xAPI/statements?activity={}&related_activities=true",
            urlencode(course)
        ))
        .await,
        [answered_in_course]
    );
    assert_eq!(
        ids(format!(
            "/xAPI/statements?activity={}&related_activities=true",
            urlencode("https://lms.example.edu/items/q9")
        ))
        .await,
        [planned]
    );
    let r = app
        .xapi(
            Method::GET,
            "/xAPI/statements?related_agents=yes",
            &app.admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(problem(r).await["field"], "related_agents");
    app.stop().await;
}

async fn bad_input_gets_problems_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let r = app
        .xapi(Method::POST, "/xAPI/statements", &app.admin)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(problem(r).await["field"], "body");

    let too_many: Vec<Value> = (0..201)
        .map(|i| answered("ada", &format!("q{i}"), true))
        .collect();
    let r = app
        .post_statements(&app.admin, &Value::Array(too_many))
        .await;
    assert_eq!(r.status(), 413);
    problem(r).await;

    let huge = "x".repeat(300 * 1024);
    let mut big = answered("ada", "q1", true);
    big["result"]["response"] = json!(huge);
    let r = app.post_statements(&app.admin, &big).await;
    assert_eq!(r.status(), 413);
    problem(r).await;

    let page: Value = app.xapi_json("/xAPI/statements", &app.admin).await;
    assert_eq!(
        page["statements"].as_array().unwrap().len(),
        0,
        "nothing was stored by bad requests"
    );
    app.stop().await;
}

/// xAPI 1.0.3's alternate request syntax: a POST carrying the method, headers and body of
/// another request in a form.
async fn the_alternate_request_syntax_stands_for_its_request() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let id = "7a0c3a9e-3f0e-4d57-9a39-0d2f6a7bd222";
    let form = |pairs: &[(&str, &str)]| {
        let mut f = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            f.append_pair(k, v);
        }
        f.finish()
    };
    let statement = answered("ada", "q1", true).to_string();
    let bearer = format!("Bearer {}", app.admin);
    let send = |query: &'static str, body: String| {
        app.client
            .post(app.url(&format!("/xAPI/statements?{query}")))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    // Credentials and version in the form, no headers at all.
    let r = send(
        "method=PUT",
        form(&[
            ("statementId", id),
            ("content", &statement),
            ("X-Experience-API-Version", "1.0.3"),
            ("Authorization", &bearer),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    let r = send(
        "method=GET",
        form(&[
            ("statementId", id),
            ("X-Experience-API-Version", "1.0.3"),
            ("Authorization", &bearer),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["id"], id);
    // Parameters belong in the form; xAPI 2.0 dropped the syntax.
    let r = send(
        "method=GET&limit=1",
        form(&[
            ("X-Experience-API-Version", "1.0.3"),
            ("Authorization", &bearer),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let r = app
        .client
        .post(app.url("/xAPI/statements?method=GET"))
        .bearer_auth(&app.admin)
        .header("X-Experience-API-Version", "2.0.0")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&[("limit", "1")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "xAPI 2.0 has no alternate syntax");
    assert_eq!(problem(r).await["field"], "method");
    app.stop().await;
}

on_every_backend!(
    the_alternate_request_syntax_stands_for_its_request,
    post_put_get_round_trip,
    conflicting_ids_give_409_and_identical_reposts_are_no_ops,
    batches_are_atomic,
    version_header_rules,
    queries_filter_and_page_with_more,
    voided_statements_leave_queries_but_stay_readable,
    filtered_queries_return_statements_that_target_a_match,
    agent_and_activity_filters_reach_related_places,
    bad_input_gets_problems_and_changes_nothing,
);
