//! The dashboard: web pages for teachers, data-protection officers and operators, at `/ui/`.
//!
//! The pages are static files compiled into the binary (`assets/`: one HTML page, one script,
//! one stylesheet; no framework, no build step, nothing fetched from elsewhere). The script reads
//! the same JSON API every other client reads, authenticated by the session cookie
//! ([`crate::session`]), so a page can show nothing its key could not fetch with `curl`: roles,
//! groups, cognitive-data and display-name rules are the API's. Live parts follow the SSE stream
//! (`/v1/stream`), which the browser resumes with `Last-Event-ID` after a drop.
//!
//! Routes here: the pages and their assets, sign-in (a key typed into a form, or a one-time link),
//! sign-out, `GET /ui/session` (who is signed in, and the CSRF token the script repeats), and the
//! documented `POST /v1/sign-in-links`.

use crate::problem::Query;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::problem::ApiError;
use crate::session::{COOKIE, SESSION_US};
use crate::state::AppState;

const INDEX: &str = include_str!("assets/index.html");
const SIGN_IN: &str = include_str!("assets/sign-in.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// Everything the pages may load: their own origin only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The pages and their assets (undocumented in OpenAPI: they are not API).
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(|| async { page(INDEX) }))
        .route(
            "/ui/app.js",
            get(|| async { asset(SCRIPT, "text/javascript") }),
        )
        .route("/ui/app.css", get(|| async { asset(STYLE, "text/css") }))
        .route("/ui/sign-in", get(sign_in_page).post(sign_in))
        .route("/ui/sign-out", post(sign_out))
        .route("/ui/session", get(session))
}

/// The documented part: sign-in links for a platform to hand its users.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_link))
}

fn secured(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A sign-in link's token is in the URL: never pass it on.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn page(html: &'static str) -> Response {
    secured(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    secured(([(header::CONTENT_TYPE, kind)], body).into_response())
}

/// `Set-Cookie` for a session value (empty with age 0: sign-out). `Secure` when the request came
/// over HTTPS through a proxy that says so.
fn session_cookie(value: &str, max_age_s: i64, headers: &HeaderMap) -> HeaderValue {
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let secure = if https { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .expect("cookie values are base64url")
}

/// Starts a session for a verified caller and sends the browser to the dashboard.
fn signed_in(state: &AppState, caller: &Caller, headers: &HeaderMap, how: &str) -> Response {
    let (_, value) = state.sessions.start(&caller.key_id);
    state
        .audit
        .access(caller, "session.start", None, json!({"by": how}));
    let mut response = Redirect::to("/ui/").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&value, SESSION_US / 1_000_000, headers),
    );
    secured(response)
}

#[derive(Deserialize)]
struct LinkQuery {
    link: Option<String>,
}

/// The sign-in form, or (with `?link=`) a one-time link exchanged for a session.
async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LinkQuery>,
) -> Response {
    let Some(token) = query.link else {
        return page(SIGN_IN);
    };
    let caller = match state.sessions.redeem(&token) {
        Some(key_id) => crate::auth::verify(&state, &key_id, None).await.ok(),
        None => None,
    };
    match caller {
        Some(caller) => signed_in(&state, &caller, &headers, "link"),
        None => secured(Redirect::to("/ui/sign-in#expired").into_response()),
    }
}

#[derive(Deserialize)]
struct SignInForm {
    key: String,
}

/// The sign-in form's post: the key as a bearer token.
async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SignInForm>,
) -> Response {
    let bearer = format!("Bearer {}", form.key.trim());
    match crate::auth::authenticate(&state, Some(&bearer)).await {
        Ok(caller) => signed_in(&state, &caller, &headers, "key"),
        Err(_) => secured(Redirect::to("/ui/sign-in#refused").into_response()),
    }
}

/// Ends the session (the page posts here with its CSRF token).
async fn sign_out(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> Response {
    let value = crate::session::from_headers(&headers);
    if let Some(session) = value.and_then(|v| state.sessions.open(v)) {
        state.sessions.end(&session);
    }
    state.audit.access(&caller, "session.end", None, json!({}));
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0, &headers));
    secured(response)
}

/// Who is signed in, what the policy lets them see, and the CSRF token for changes.
async fn session(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = crate::session::from_headers(&headers)
        .and_then(|v| state.sessions.open(v))
        .ok_or_else(|| ApiError::unauthorized("no browser session: sign in at /ui/sign-in"))?;
    let privacy = state.privacy.tenant(&state.storage, caller.tenant).await?;
    let groups: Vec<String> = match &caller.groups {
        Some(g) => g.clone(),
        None => state.hub.group_names(caller.tenant),
    };
    let body: Value = json!({
        "key_id": caller.key_id,
        "role": caller.role.as_str(),
        "tenant": caller.tenant,
        "groups": groups,
        "scoped": caller.groups.is_some(),
        "cognitive_data": privacy.sees_cognitive_data(caller.role),
        "display_names": privacy.policy.display_name_roles.iter().any(|r| r == caller.role.as_str()),
        "csrf": session.csrf,
        "expires_us": session.expires_us,
    });
    Ok(secured(Json(body).into_response()))
}

/// A one-time link that signs the caller's own key in to the dashboard, valid for 15 minutes.
/// A platform calls it with a teacher's key and sends the teacher to `url`.
#[utoipa::path(
    post, path = "/v1/sign-in-links", tag = "dashboard",
    responses((status = 200, description = "{url, expires_us}", body = Object)),
    security(("api_key" = []))
)]
async fn create_link(State(state): State<AppState>, caller: Caller) -> Json<Value> {
    let (token, expires_us) = state.sessions.link(&caller.key_id);
    state.audit.access(&caller, "session.link", None, json!({}));
    Json(json!({"url": format!("/ui/sign-in?link={token}"), "expires_us": expires_us}))
}
