//! Statements with attachments (`multipart/mixed`), signed statements, `attachments=true` and
//! `format=ids|canonical`, over HTTP, on every backend.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{TestApp, answered, problem};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const BOUNDARY: &str = "abcABC0123";

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A multipart/mixed body: the statements, then each (content type, bytes) as a part.
fn multipart(statements: &Value, parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body =
        format!("--{BOUNDARY}\r\nContent-Type: application/json\r\n\r\n{statements}\r\n")
            .into_bytes();
    for (content_type, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: binary\r\n\
X-Experience-API-Hash: {}\r\n\r\n",
                sha256(bytes)
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// `answered(who, item)` declaring one attachment of these bytes.
fn with_attachment(who: &str, item: &str, bytes: &[u8], usage: &str, content_type: &str) -> Value {
    let mut s = answered(who, item, true);
    s["attachments"] = json!([{
        "usageType": usage, "display": {"en-US": "essay"}, "contentType": content_type,
        "length": bytes.len(), "sha2": sha256(bytes)
    }]);
    s
}

async fn post(app: &TestApp, token: &str, content_type: &str, body: Vec<u8>) -> Response {
    app.xapi(Method::POST, "/xAPI/statements", token)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn attachments_are_kept_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let ingest = app.key(&app.admin, "ingest").await;
    let essay = b"My essay \x00\xff binary";
    let statement = with_attachment(
        "ada",
        "essay",
        essay,
        "http://example.org/essay",
        "text/plain",
    );
    let mixed = format!("multipart/mixed; boundary={BOUNDARY}");
    let r = post(
        &app,
        &ingest,
        &mixed,
        multipart(&statement, &[("text/plain", essay)]),
    )
    .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let ids: Vec<String> = r.json().await.unwrap();

    // Read back with the bytes.
    let r = app
        .xapi(
            Method::GET,
            &format!("/xAPI/statements?statementId={}&attachments=true", ids[0]),
            &ingest,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("multipart/mixed; boundary="),
        "{content_type}"
    );
    let body = r.bytes().await.unwrap();
    let hash = sha256(essay);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains(&format!("X-Experience-API-Hash: {hash}")),
        "{text}"
    );
    assert!(
        body.windows(essay.len()).any(|w| w == essay),
        "the bytes are served"
    );
    // Without attachments=true: JSON alone.
    let s = app
        .xapi_json(&format!("/xAPI/statements?statementId={}", ids[0]), &ingest)
        .await;
    assert_eq!(s["attachments"][0]["sha2"], hash.as_str());

    // A part nobody declares, a declared part missing, a wrong hash: 400, nothing stored.
    let plain = answered("bo", "q1", true);
    let r = post(
        &app,
        &ingest,
        &mixed,
        multipart(&plain, &[("text/plain", b"stray")]),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post(&app, &ingest, &mixed, multipart(&statement, &[])).await;
    assert_eq!(r.status(), 400);
    assert_eq!(problem(r).await["field"], "statement.attachments[0].sha2");
    let broken = String::from_utf8(multipart(
        &with_attachment("cy", "essay", b"abc", "http://u", "text/plain"),
        &[("text/plain", b"abc")],
    ))
    .unwrap()
    .replace("\r\nabc\r\n", "\r\nabd\r\n");
    assert_eq!(
        post(&app, &ingest, &mixed, broken.into_bytes())
            .await
            .status(),
        400
    );
    // The bytes of an attachment cannot come in a JSON request.
    let r = post(
        &app,
        &ingest,
        "application/json",
        statement.to_string().into_bytes(),
    )
    .await;
    assert_eq!(r.status(), 400);
    // Only JSON and multipart/mixed carry statements.
    for content_type in ["text/plain", "multipart/form-data; boundary=x"] {
        let r = post(&app, &ingest, content_type, plain.to_string().into_bytes()).await;
        assert_eq!(r.status(), 400, "{content_type}");
        assert_eq!(problem(r).await["field"], "Content-Type");
    }
    let page = app.xapi_json("/xAPI/statements", &ingest).await;
    assert_eq!(
        page["statements"].as_array().unwrap().len(),
        1,
        "nothing else was stored"
    );
    app.stop().await;
}

fn jws(alg: &str, payload: &Value) -> Vec<u8> {
    let enc = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{}",
        enc(json!({"alg": alg}).to_string().as_bytes()),
        enc(payload.to_string().as_bytes()),
        enc(b"an RSA signature")
    )
    .into_bytes()
}

async fn signed_statements_name_an_rsa_algorithm_and_their_statement() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let ingest = app.key(&app.admin, "ingest").await;
    let mixed = format!("multipart/mixed; boundary={BOUNDARY}");
    let signature = "http://adlnet.gov/expapi/attachments/signature";
    for (alg, payload_verb, status) in [
        ("RS256", "http://adlnet.gov/expapi/verbs/answered", 200),
        ("RS512", "http://adlnet.gov/expapi/verbs/answered", 200),
        ("HS256", "http://adlnet.gov/expapi/verbs/answered", 400),
        ("RS256", "http://adlnet.gov/expapi/verbs/failed", 400),
    ] {
        let original = answered("ada", "q1", true);
        let mut payload = original.clone();
        payload["verb"]["id"] = json!(payload_verb);
        let sig = jws(alg, &payload);
        let statement = with_attachment("ada", "q1", &sig, signature, "application/octet-stream");
        let r = post(
            &app,
            &ingest,
            &mixed,
            multipart(&statement, &[("application/octet-stream", &sig)]),
        )
        .await;
        assert_eq!(r.status(), status, "{alg} {payload_verb}");
    }
    app.stop().await;
}

async fn formats_reduce_what_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let ingest = app.key(&app.admin, "ingest").await;
    let mut s = answered("ada", "q1", true);
    s["verb"]["display"] = json!({"en-US": "answered", "fr-FR": "a répondu"});
    s["object"]["definition"] = json!({"name": {"en-US": "Question 1", "fr-FR": "Question un"}});
    let ids: Vec<String> = app.post_statements(&ingest, &s).await.json().await.unwrap();
    let path = format!("/xAPI/statements?statementId={}", ids[0]);
    let ids_only = app.xapi_json(&format!("{path}&format=ids"), &ingest).await;
    assert_eq!(
        ids_only["verb"],
        json!({"id": "http://adlnet.gov/expapi/verbs/answered"})
    );
    assert_eq!(
        ids_only["object"],
        json!({"id": "https://lms.example.edu/items/q1"})
    );
    let r = app
        .xapi(Method::GET, &format!("{path}&format=canonical"), &ingest)
        .header("Accept-Language", "fr-FR, en;q=0.5")
        .send()
        .await
        .unwrap();
    let canonical: Value = r.json().await.unwrap();
    assert_eq!(canonical["verb"]["display"], json!({"fr-FR": "a répondu"}));
    assert_eq!(
        canonical["object"]["definition"]["name"],
        json!({"fr-FR": "Question un"})
    );
    let exact = app.xapi_json(&path, &ingest).await;
    assert_eq!(exact["verb"]["display"]["en-US"], "answered");
    app.stop().await;
}

on_every_backend!(
    attachments_are_kept_and_served,
    signed_statements_name_an_rsa_algorithm_and_their_statement,
    formats_reduce_what_is_answered,
);
