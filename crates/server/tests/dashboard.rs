//! The dashboard's server side, black-box: its pages and their headers, sign-in by key and by
//! one-time link, session cookies (CSRF, sign-out, revoked keys), display names for the teacher
//! of record only, teachers' answers to interventions (kept in the log) and a learner's
//! timeline. The browser itself is driven in `crates/cli/tests/dashboard_browser.rs`.

mod common;

use common::{TestApp, answered};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

/// A client that neither follows redirects nor keeps cookies: every header is visible.
fn bare() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The session cookie a sign-in response set (`name=value`).
fn session_of(r: &reqwest::Response) -> String {
    let set = r
        .headers()
        .get(SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    set.split(';').next().unwrap().to_owned()
}

async fn sign_in_with_key(app: &TestApp, key: &str) -> reqwest::Response {
    bare()
        .post(app.url("/ui/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={}", key.replace('.', "%2E")))
        .send()
        .await
        .unwrap()
}

/// Ada and Bo work in class-7b (Ada answers four wrong: an intervention), Cy in class-8a.
async fn classroom(app: &TestApp) {
    let mut batch = Vec::new();
    for (who, group, correct) in [
        ("ada", "class-7b", false),
        ("bo", "class-7b", true),
        ("cy", "class-8a", true),
    ] {
        for i in 0..4 {
            let mut s = answered(who, &format!("q{i}"), correct);
            s["timestamp"] = json!(format!("2026-11-26T10:{i:02}:00Z"));
            s["context"]["extensions"]["https://learnpulse.dev/xapi/ext/group"] = json!(group);
            batch.push(s);
        }
    }
    let r = app.post_statements(&app.admin, &Value::Array(batch)).await;
    assert_eq!(r.status(), 200);
}

async fn scoped_key(app: &TestApp, role: &str, groups: &[&str]) -> String {
    let r = app
        .post_json(
            "/v1/admin/keys",
            &app.admin,
            &json!({"role": role, "groups": groups}),
        )
        .await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn pages_are_served_with_a_strict_policy_and_sessions_act_as_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let r = bare().get(app.url("/")).send().await.unwrap();
    assert_eq!(r.headers()[LOCATION], "/ui/");
    for (path, kind) in [
        ("/ui/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
        ("/ui/sign-in", "text/html"),
    ] {
        let r = bare().get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    }

    // A wrong key is refused back to the form; no cookie.
    let r = sign_in_with_key(&app, "lpk_0.nope").await;
    assert_eq!(r.headers()[LOCATION], "/ui/sign-in#refused");
    assert!(r.headers().get(SET_COOKIE).is_none());

    classroom(&app).await;
    let teacher = scoped_key(&app, "teacher", &["class-7b"]).await;
    let r = sign_in_with_key(&app, &teacher).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/ui/");
    let cookie = session_of(&r);
    let get = |path: &str| bare().get(app.url(path)).header(COOKIE, &cookie).send();
    let me: Value = get("/ui/session").await.unwrap().json().await.unwrap();
    assert_eq!(me["role"], "teacher");
    assert_eq!(me["groups"], json!(["class-7b"]));
    let csrf = me["csrf"].as_str().unwrap().to_owned();
    // The session reads what the key may read, and nothing more.
    assert_eq!(
        get("/v1/groups/class-7b/overview").await.unwrap().status(),
        200
    );
    assert_eq!(
        get("/v1/groups/class-8a/overview").await.unwrap().status(),
        403
    );
    assert_eq!(get("/v1/compliance/report").await.unwrap().status(), 403);

    // A change needs the CSRF token.
    let decisions: Vec<Value> = get("/v1/interventions")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seq = decisions[0]["seq"].as_i64().unwrap();
    let respond = |token: Option<&str>| {
        let mut req = bare()
            .post(app.url(&format!("/v1/interventions/{seq}/response")))
            .header(COOKIE, &cookie)
            .json(&json!({"response": "acknowledged"}));
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        req.send()
    };
    assert_eq!(respond(None).await.unwrap().status(), 403);
    assert_eq!(respond(Some("forged")).await.unwrap().status(), 403);
    assert_eq!(respond(Some(&csrf)).await.unwrap().status(), 200);

    // Signing out ends the session.
    let r = bare()
        .post(app.url("/ui/sign-out"))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        r.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(get("/ui/session").await.unwrap().status(), 401);

    // A revoked key ends its sessions at once.
    let r = sign_in_with_key(&app, &teacher).await;
    let cookie = session_of(&r);
    app.revoke(&teacher).await;
    let r = bare()
        .get(app.url("/ui/session"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A forged cookie is nobody.
    let r = bare()
        .get(app.url("/ui/session"))
        .header(COOKIE, "lp_session=AAAA")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}

async fn a_sign_in_link_works_once() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let teacher = scoped_key(&app, "teacher", &["class-7b"]).await;
    let r = app
        .post_json("/v1/sign-in-links", &teacher, &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let link: Value = r.json().await.unwrap();
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with("/ui/sign-in?link="));
    let r = bare().get(app.url(url)).send().await.unwrap();
    assert_eq!(r.headers()[LOCATION], "/ui/");
    let cookie = session_of(&r);
    let me: Value = bare()
        .get(app.url("/ui/session"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "teacher");
    let again = bare().get(app.url(url)).send().await.unwrap();
    assert_eq!(again.headers()[LOCATION], "/ui/sign-in#expired");
    assert!(again.headers().get(SET_COOKIE).is_none());
    app.stop().await;
}

async fn display_names_are_for_the_teacher_of_record_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    classroom(&app).await;
    let r = app
        .put_json(
            "/v1/privacy/roster",
            &app.admin,
            &json!({"names": ["Dora Nyberg"], "learners": {"ada": "Ada Lovelace", "bo": "Bo Diddley"}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let accepted: Value = r.json().await.unwrap();
    assert_eq!(accepted, json!({"names": 3, "learners": 2}));
    let teacher = scoped_key(&app, "teacher", &["class-7b"]).await;
    let tutor = scoped_key(&app, "tutor", &["class-7b"]).await;
    let names = |overview: &Value| -> Vec<Option<String>> {
        overview["learners"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["display_name"].as_str().map(str::to_owned))
            .collect()
    };
    let seen: Value = app.get_json("/v1/groups/class-7b/overview", &teacher).await;
    let mut shown = names(&seen);
    shown.sort();
    assert_eq!(
        shown,
        vec![
            Some("Ada Lovelace".to_owned()),
            Some("Bo Diddley".to_owned())
        ]
    );
    let ada: Value = app.get_json("/v1/learners/ada", &teacher).await;
    assert_eq!(ada["display_name"], "Ada Lovelace");
    let feed: Vec<Value> = app
        .get_json("/v1/interventions?group=class-7b", &teacher)
        .await;
    assert!(
        feed.iter().any(|d| d["display_name"] == "Ada Lovelace"),
        "{feed:?}"
    );
    // A tutor, the admin and a researcher see pseudonyms only (or nothing).
    let seen: Value = app.get_json("/v1/groups/class-7b/overview", &tutor).await;
    assert!(names(&seen).iter().all(Option::is_none));
    let seen: Value = app
        .get_json("/v1/groups/class-7b/overview", &app.admin)
        .await;
    assert!(names(&seen).iter().all(Option::is_none));
    let researcher = app.key(&app.admin, "researcher").await;
    assert_eq!(
        app.get("/v1/groups/class-7b/overview", &researcher)
            .await
            .status(),
        403
    );
    // The policy decides who sees names.
    let r = app
        .put_json(
            "/v1/privacy/policy",
            &app.admin,
            &json!({"display_name_roles": ["wizard"]}),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["field"],
        "display_name_roles"
    );
    // Every read that showed names says whom it named.
    let storage = common::storage(dir.path()).await;
    let tenant = storage.tenants().await.unwrap()[0].id;
    use learnpulse_server::storage::{AccountStore, AuditStore};
    app.get("/v1/groups/class-7b/overview", &teacher).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ada_p = app.pseudonym(&app.admin, "ada").await;
    let entries = storage
        .audit_entries_about(tenant, vec![ada_p.clone()])
        .await
        .unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.event.action == "learner.name.read"),
        "{entries:?}"
    );
    storage.shutdown().await;

    // An erasure takes the name out of the roster too.
    let dpo = app.key(&app.admin, "dpo").await;
    let r = app
        .post_json(
            "/v1/compliance/requests",
            &dpo,
            &json!({"kind": "erasure", "learner": "ada"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post_statements(&app.admin, &answered("ada", "q9", true))
        .await;
    assert_eq!(r.status(), 200);
    let ada: Value = app.get_json("/v1/learners/ada", &teacher).await;
    assert!(ada.get("display_name").is_none(), "{ada}");
    app.stop().await;
}

async fn teachers_answers_are_kept_in_the_log_and_the_timeline_replays_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    classroom(&app).await;
    let teacher = scoped_key(&app, "teacher", &["class-7b"]).await;
    let other = scoped_key(&app, "teacher", &["class-8a"]).await;
    let ada = app.pseudonym(&app.admin, "ada").await;
    let of_ada = |feed: &[Value]| -> Value {
        feed.iter()
            .find(|d| d["learner"] == ada.as_str())
            .cloned()
            .expect("a decision about Ada")
    };
    let feed: Vec<Value> = app.get_json("/v1/interventions", &teacher).await;
    let seq = of_ada(&feed)["seq"].as_i64().unwrap();
    assert_eq!(of_ada(&feed)["teacher_response"], Value::Null);
    let path = format!("/v1/interventions/{seq}/response");
    let r = app
        .post_json(&path, &teacher, &json!({"response": "shrugged"}))
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "response");
    let r = app
        .post_json(&path, &other, &json!({"response": "dismissed"}))
        .await;
    assert_eq!(r.status(), 404, "another class's teacher cannot see it");
    let r = app
        .post_json(
            &path,
            &teacher,
            &json!({"response": "went_over", "note": "talked it through with her"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let feed: Vec<Value> = app.get_json("/v1/interventions", &teacher).await;
    assert_eq!(of_ada(&feed)["teacher_response"], "went_over");
    let policy = of_ada(&feed)["policy"].as_str().unwrap().to_owned();
    let effect: Value = app
        .get_json("/v1/interventions/effectiveness", &teacher)
        .await;
    assert_eq!(effect["teacher_responses"][&policy]["went_over"], 1);

    // The timeline: one point per answer, ending where the live state is.
    let timeline: Value = app.get_json("/v1/learners/ada/timeline", &teacher).await;
    let state: Value = app.get_json("/v1/learners/ada", &teacher).await;
    let points = timeline["points"].as_array().unwrap();
    assert_eq!(points.len() as u64, state["answers"].as_u64().unwrap());
    for (skill, s) in state["skills"].as_object().unwrap() {
        let last = points
            .iter()
            .rev()
            .find_map(|p| p["mastery"][skill].as_f64())
            .unwrap();
        assert!(
            (last - s["mastery"].as_f64().unwrap()).abs() < 1e-9,
            "{skill}"
        );
    }
    assert!(points.iter().all(|p| p["correct"] == false));
    assert!(points[0]["load_index"].is_number(), "a teacher sees load");
    let decided = timeline["interventions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["seq"] == seq)
        .expect("the decision answered");
    assert_eq!(decided["teacher_response"], "went_over");
    assert!(decided["followed_by"]["answers"].is_u64());

    // The answer is in the log: a restart (full replay) still has it.
    let admin = app.admin.clone();
    app.stop().await;
    let mut config = common::config(dir.path());
    config.snapshots.enabled = false;
    let app = TestApp::start_with(config, Some(admin)).await;
    let feed: Vec<Value> = app.get_json("/v1/interventions", &teacher).await;
    assert_eq!(of_ada(&feed)["teacher_response"], "went_over");
    app.stop().await;
}

on_every_backend!(
    pages_are_served_with_a_strict_policy_and_sessions_act_as_their_key,
    a_sign_in_link_works_once,
    display_names_are_for_the_teacher_of_record_and_audited,
    teachers_answers_are_kept_in_the_log_and_the_timeline_replays_it,
);
