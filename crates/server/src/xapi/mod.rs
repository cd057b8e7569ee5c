//! The xAPI edge: `/xAPI/statements`, `/xAPI/about` and the document resources ([`documents`])
//! (xAPI 1.0.3 and 2.0.0).
//!
//! Requests are validated ([`validate`]), completed ([`prepare`]) and appended to the log as
//! one atomic batch; the learner engine sees them through the log's commit hook, mapped by
//! [`mapping`]. No type from this module travels further than [`crate::storage::NewStatement`].

pub mod alternate;
pub mod attachments;
pub mod documents;
pub mod format;
pub mod mapping;
pub mod multipart;
pub mod prepare;
pub mod validate;

use std::collections::{HashMap, HashSet};

use crate::problem::Query;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{Action, Caller};
use crate::problem::{ApiError, Body, Problem};
use crate::state::AppState;
use crate::storage::{EventLog, NewStatement, StatementQuery};
use learnpulse_privacy::pipeline::Refused;
use prepare::Authority;

pub const VERSION_HEADER: HeaderName = HeaderName::from_static("x-experience-api-version");
const CONSISTENT_THROUGH: HeaderName =
    HeaderName::from_static("x-experience-api-consistent-through");

/// The xAPI version a request negotiated (`1.0.3` or `2.0.0`).
#[derive(Debug, Clone, Copy)]
pub struct XapiVersion(pub &'static str);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_statements, put_statements, get_statements))
        .routes(routes!(about))
        .merge(documents::router())
        .route_layer(axum::middleware::from_fn(version_header))
}

/// The version a response names when the request named none it could use
/// (`[xapi] default_version`), put in each request's extensions by the app.
#[derive(Debug, Clone, Copy)]
pub struct DefaultVersion(pub &'static str);

/// Requires `X-Experience-API-Version` (except on `/about`) and sends it on every response.
/// A request without credentials is let through to be refused with 401 first: who asks comes
/// before how.
pub async fn version_header(mut request: Request, next: Next) -> Response {
    use axum::http::Method;
    // A method the resource does not serve gets its 405 from the router, whatever the header
    // says.
    if !serves(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let fallback = request
        .extensions()
        .get::<DefaultVersion>()
        .map_or("2.0.0", |d| d.0);
    let is_about = request.uri().path().ends_with("/about");
    let anonymous = !request.headers().contains_key(header::AUTHORIZATION)
        && crate::session::from_headers(request.headers()).is_none();
    if anonymous && !is_about {
        request.extensions_mut().insert(XapiVersion(fallback));
        return with_version(next.run(request).await, fallback);
    }
    let requested = request
        .headers()
        .get(&VERSION_HEADER)
        .map(|v| v.to_str().unwrap_or("?").trim().to_owned());
    let version = match requested.as_deref() {
        Some(v) if v == "1.0" || v.starts_with("1.0.") => "1.0.3",
        Some(v) if v == "2.0" || v.starts_with("2.0.") => "2.0.0",
        None if is_about => fallback,
        Some(other) => {
            return with_version(
                ApiError::bad_request(
                    "X-Experience-API-Version",
                    format!("unsupported xAPI version {other:?}; use 1.0.3 or 2.0.0"),
                )
                .into_response(),
                fallback,
            );
        }
        None => {
            return with_version(
                ApiError::bad_request(
                    "X-Experience-API-Version",
                    "the X-Experience-API-Version header is required",
                )
                .into_response(),
                fallback,
            );
        }
    };
    request.extensions_mut().insert(XapiVersion(version));
    let reads_statements = matches!(*request.method(), Method::GET | Method::HEAD)
        && request.uri().path().ends_with("/statements");
    let mut response = next.run(request).await;
    // Every answer to a statement read says how current it is, a 400 or 404 included.
    if reads_statements
        && !response.headers().contains_key(&CONSISTENT_THROUGH)
        && let Ok(v) = HeaderValue::from_str(&now_rfc3339())
    {
        response.headers_mut().insert(CONSISTENT_THROUGH, v);
    }
    with_version(response, version)
}

/// Does the xAPI resource at `path` serve `method`? (Keep in step with the routes.)
fn serves(method: &axum::http::Method, path: &str) -> bool {
    use axum::http::Method;
    let documents = [
        "/activities/state",
        "/activities/profile",
        "/agents/profile",
    ];
    match *method {
        Method::GET | Method::HEAD => true,
        Method::PUT | Method::POST => {
            path.ends_with("/statements") || documents.iter().any(|d| path.ends_with(d))
        }
        Method::DELETE => documents.iter().any(|d| path.ends_with(d)),
        _ => false,
    }
}

fn with_version(mut response: Response, version: &'static str) -> Response {
    response
        .headers_mut()
        .insert(VERSION_HEADER, HeaderValue::from_static(version));
    response
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The statements of one request, validated, protected and completed.
pub struct PreparedBatch {
    pub statements: Vec<NewStatement>,
    /// How many were reduced by the consent gate (stored without identity or free text).
    pub reduced: usize,
}

impl PreparedBatch {
    /// The statement ids, in request order.
    pub fn ids(&self) -> Vec<String> {
        self.statements.iter().map(|s| s.id.to_string()).collect()
    }
}

/// Response header counting the statements of a request that the consent gate reduced.
pub const REDUCED_HEADER: HeaderName = HeaderName::from_static("learnpulse-reduced");

/// Validates, protects (the privacy pipeline: consent gate, pseudonyms, redaction, minimisation)
/// and completes the statements of one request; rejects duplicate ids in the batch. Nothing
/// identifying that the pipeline removes gets past this function.
pub async fn prepare_batch(
    state: &AppState,
    caller: &Caller,
    version: XapiVersion,
    statements: Vec<Value>,
    path: impl Fn(usize) -> String,
) -> Result<PreparedBatch, ApiError> {
    if statements.len() > state.config.limits.max_batch {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} statements in one request; the limit is {} (limits.max_batch)",
                statements.len(),
                state.config.limits.max_batch
            ),
        ));
    }
    let privacy = state.privacy.tenant(&state.storage, caller.tenant).await?;
    let now = now_rfc3339();
    let stored_version = if version.0 == "2.0.0" {
        "2.0.0"
    } else {
        "1.0.0"
    };
    let authority = Authority {
        key_id: &caller.key_id,
        version: stored_version,
        now: &now,
    };
    let mut seen = HashSet::with_capacity(statements.len());
    let mut out = Vec::with_capacity(statements.len());
    let mut reduced = 0;
    let mut protecting = std::time::Duration::ZERO;
    for (i, mut statement) in statements.into_iter().enumerate() {
        let p = path(i);
        validate::statement(&statement, &p)
            .map_err(|e| ApiError::bad_request(e.field, e.detail))?;
        let started = std::time::Instant::now();
        let protected = privacy.protect(&mut statement);
        protecting += started.elapsed();
        let protected = protected.map_err(|Refused(missing)| {
            ApiError::forbidden(format!(
                "missing consent {}: {}",
                missing.name(),
                missing.explain()
            ))
            .with_field(format!("{p}.actor"))
        })?;
        reduced += usize::from(!protected.reduced.is_empty());
        let mut prepared = prepare::prepare(statement, &authority);
        prepared.vault = privacy.seal_for_vault(prepared.id, &protected);
        if !seen.insert(prepared.id) {
            return Err(ApiError::bad_request(
                format!("{p}.id"),
                "the same statement id appears twice in one batch",
            ));
        }
        out.push(prepared);
    }
    // The privacy pipeline's time per statement (the dashboard's operator view and alerts).
    if !out.is_empty() {
        metrics::histogram!("learnpulse_privacy_pipeline_seconds")
            .record(protecting.as_secs_f64() / out.len() as f64);
    }
    if reduced > 0 {
        metrics::counter!("learnpulse_statements_reduced_total").increment(reduced as u64);
    }
    Ok(PreparedBatch {
        statements: out,
        reduced,
    })
}

/// Validates, protects and completes statements made from native events; a failure names the
/// event.
pub async fn prepare_batch_native(
    state: &AppState,
    caller: &Caller,
    version: XapiVersion,
    statements: Vec<Value>,
) -> Result<PreparedBatch, ApiError> {
    prepare_batch(state, caller, version, statements, |i| {
        format!("events[{i}]")
    })
    .await
}

/// Adds the reduced-count header when the consent gate reduced anything.
pub fn with_reduced(mut response: Response, reduced: usize) -> Response {
    if reduced > 0 {
        response
            .headers_mut()
            .insert(REDUCED_HEADER, HeaderValue::from(reduced));
    }
    response
}

/// Appends a prepared batch; shared by the xAPI and native entry points.
pub async fn append(
    state: &AppState,
    caller: &Caller,
    statements: Vec<NewStatement>,
) -> Result<(), ApiError> {
    let n = statements.len() as u64;
    let appended = match state.storage.append(caller.tenant, statements).await {
        Ok(appended) => {
            if state.write_failure.read().unwrap().is_some() {
                tracing::info!("appends succeed again");
                *state.write_failure.write().unwrap() = None;
            }
            appended
        }
        Err(e) => {
            // A storage that cannot be reached shows in readiness anyway; this is for one that
            // answers but refuses writes (a read-only or full disk, a broken file).
            if matches!(e, crate::storage::StoreError::Internal(_)) {
                tracing::error!(error = %e, "an append failed; not ready until one succeeds");
                *state.write_failure.write().unwrap() =
                    Some((e.to_string(), std::time::Instant::now()));
            }
            return Err(e.into());
        }
    };
    // Acknowledged means applied too: a read after this answer sees the events.
    state.hub.wait_applied(appended.through_seq).await;
    state
        .audit
        .access(caller, "statements.write", None, json!({"count": n}));
    metrics::counter!("learnpulse_statements_ingested_total").increment(n);
    Ok(())
}

/// A statement the server writes about a learner on a caller's behalf (a tutor's action, a
/// teacher's answer to a decision).
pub struct AboutLearner<'a> {
    /// The learner's pseudonym: the actor.
    pub learner: &'a str,
    /// The verb's id and its display word.
    pub verb: (&'a str, &'a str),
    pub object_id: String,
    /// The context extensions.
    pub extensions: Value,
    /// Free text, stored as the response (redacted like any other).
    pub note: Option<String>,
}

/// Writes `about` through the same pipeline and append as a posted statement; `field` names
/// where a problem with it came from. Returns its id.
pub async fn record_about_learner(
    state: &AppState,
    caller: &Caller,
    about: AboutLearner<'_>,
    field: &str,
) -> Result<String, ApiError> {
    let AboutLearner {
        learner,
        verb,
        object_id,
        extensions,
        note,
    } = about;
    let mut statement = json!({
        "actor": {"objectType": "Agent", "account": {
            "homePage": learnpulse_privacy::pipeline::PSEUDONYM_HOME, "name": learner}},
        "verb": {"id": verb.0, "display": {"en-US": verb.1}},
        "object": {"objectType": "Activity", "id": object_id},
        "context": {"extensions": extensions},
    });
    if let Some(note) = note {
        statement["result"] = json!({"response": note});
    }
    let prepared = prepare_batch(state, caller, XapiVersion("2.0.0"), vec![statement], |_| {
        field.to_owned()
    })
    .await?;
    let id = prepared.ids()[0].clone();
    append(state, caller, prepared.statements).await?;
    Ok(id)
}

fn content_type(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"))
}

/// The attachment parts each statement declares (see [`attachments::match_parts`]); the
/// statements are validated first, so that a malformed one is refused for what it is.
fn attached(
    statements: &[Value],
    path: impl Fn(usize) -> String,
    parts: HashMap<String, crate::storage::attachments::Attachment>,
) -> Result<Vec<(usize, crate::storage::attachments::Attachment)>, ApiError> {
    if parts.is_empty() && !statements.iter().any(|s| s.get("attachments").is_some()) {
        return Ok(Vec::new());
    }
    for (i, s) in statements.iter().enumerate() {
        validate::statement(s, &path(i)).map_err(|e| ApiError::bad_request(e.field, e.detail))?;
    }
    attachments::match_parts(statements, path, parts)
}

/// Stores the attachments of a prepared batch under each statement's actor, before the
/// statements are appended (a statement never names bytes that are not kept).
async fn keep_attachments(
    state: &AppState,
    caller: &Caller,
    prepared: &PreparedBatch,
    matched: Vec<(usize, crate::storage::attachments::Attachment)>,
) -> Result<(), ApiError> {
    use crate::storage::AttachmentStore;
    let mut by_actor: HashMap<&str, Vec<crate::storage::attachments::Attachment>> = HashMap::new();
    for (i, a) in matched {
        by_actor
            .entry(prepared.statements[i].actor.as_str())
            .or_default()
            .push(a);
    }
    for (actor, list) in by_actor {
        state
            .storage
            .save_attachments(caller.tenant, actor.to_owned(), list)
            .await?;
    }
    Ok(())
}

fn parse_body(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("body", format!("not valid JSON: {e}")))
}

/// Store one statement or an array of statements.
#[utoipa::path(
    post, path = "/xAPI/statements", tag = "xAPI",
    params(("X-Experience-API-Version" = String, Header, description = "1.0.3 or 2.0.0")),
    request_body(content = Object, description = "A statement or an array of statements (application/json); with attachments, multipart/mixed: the statements, then one part per attachment named by its SHA-256 in X-Experience-API-Hash"),
    responses(
        (status = 200, description = "The ids of the stored statements, in order", body = [String]),
        (status = 400, description = "Invalid statement; `field` names it", body = Problem),
        (status = 403, description = "A learner lacks a consent the policy needs; `detail` names it", body = Problem),
        (status = 409, description = "An id is taken by a different statement", body = Problem),
        (status = 413, description = "Body or batch too large", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn post_statements(
    State(state): State<AppState>,
    Extension(version): Extension<XapiVersion>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    Body(bytes): Body,
) -> Result<Response, ApiError> {
    caller.require(Action::WriteStatements)?;
    // POST /statements has no parameters; one the LRS does not know is refused (xAPI
    // Communication 3.2).
    if let Some(unknown) = params.keys().next() {
        return Err(ApiError::bad_request(
            unknown.clone(),
            "is not a parameter of POST /statements",
        ));
    }
    let received = attachments::receive(content_type(&headers), &bytes)?;
    let (statements, is_batch) = match parse_body(&received.json)? {
        Value::Array(items) => (items, true),
        single @ Value::Object(_) => (vec![single], false),
        _ => {
            return Err(ApiError::bad_request(
                "body",
                "must be a statement object or an array of statements",
            ));
        }
    };
    let path = |i: usize| {
        if is_batch {
            format!("statements[{i}]")
        } else {
            "statement".to_owned()
        }
    };
    let matched = attached(&statements, path, received.parts)?;
    let prepared = prepare_batch(&state, &caller, version, statements, path).await?;
    let ids = prepared.ids();
    keep_attachments(&state, &caller, &prepared, matched).await?;
    append(&state, &caller, prepared.statements).await?;
    Ok(with_reduced(Json(ids).into_response(), prepared.reduced))
}

/// Store one statement under the id given in `statementId`.
#[utoipa::path(
    put, path = "/xAPI/statements", tag = "xAPI",
    params(("statementId" = uuid::Uuid, Query, description = "The statement's id (UUID)"), ("X-Experience-API-Version" = String, Header, description = "1.0.3 or 2.0.0")),
    request_body(content = Object, description = "One statement (application/json, or multipart/mixed with its attachments)"),
    responses(
        (status = 204, description = "Stored (or already stored identically)"),
        (status = 400, description = "Invalid statement or parameters", body = Problem),
        (status = 409, description = "The id is taken by a different statement", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn put_statements(
    State(state): State<AppState>,
    Extension(version): Extension<XapiVersion>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    Body(bytes): Body,
) -> Result<Response, ApiError> {
    caller.require(Action::WriteStatements)?;
    if let Some(unknown) = params.keys().find(|k| k.as_str() != "statementId") {
        return Err(ApiError::bad_request(
            unknown.clone(),
            "is not a parameter of PUT /statements",
        ));
    }
    let id = params
        .get("statementId")
        .ok_or_else(|| ApiError::bad_request("statementId", "is required for PUT"))?;
    if !validate::is_uuid(id) {
        return Err(ApiError::bad_request("statementId", "must be a UUID"));
    }
    let received = attachments::receive(content_type(&headers), &bytes)?;
    let mut statement = parse_body(&received.json)?;
    let Some(map) = statement.as_object_mut() else {
        return Err(ApiError::bad_request(
            "body",
            "must be one statement object",
        ));
    };
    match map.get("id").and_then(Value::as_str) {
        Some(body_id) if !body_id.eq_ignore_ascii_case(id) => {
            return Err(ApiError::bad_request(
                "statement.id",
                "differs from the statementId parameter",
            ));
        }
        _ => {
            map.insert("id".into(), json!(id.to_ascii_lowercase()));
        }
    }
    let statements = vec![statement];
    let path = |_| "statement".to_owned();
    let matched = attached(&statements, path, received.parts)?;
    let prepared = prepare_batch(&state, &caller, version, statements, path).await?;
    keep_attachments(&state, &caller, &prepared, matched).await?;
    append(&state, &caller, prepared.statements).await?;
    Ok(with_reduced(
        StatusCode::NO_CONTENT.into_response(),
        prepared.reduced,
    ))
}

const QUERY_PARAMS: [&str; 15] = [
    "statementId",
    "voidedStatementId",
    "agent",
    "verb",
    "activity",
    "registration",
    "related_activities",
    "related_agents",
    "since",
    "until",
    "limit",
    "format",
    "attachments",
    "ascending",
    "cursor",
];

fn bool_param(params: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match params.get(name).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::bad_request(name, "must be true or false")),
    }
}

fn time_param(params: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    params
        .get(name)
        .map(|s| {
            validate::parse_timestamp(s)
                .map(|t| (t.unix_timestamp_nanos() / 1_000) as i64)
                .ok_or_else(|| {
                    ApiError::bad_request(name, "must be an ISO 8601 timestamp with a time zone")
                })
        })
        .transpose()
}

/// A stored statement's JSON in the requested format.
fn formatted(format: &format::Format, json: String) -> String {
    if *format == format::Format::Exact {
        return json;
    }
    match serde_json::from_str::<Value>(&json) {
        Ok(mut v) => {
            format.apply(&mut v);
            v.to_string()
        }
        Err(_) => json,
    }
}

/// A statement or a page of them (`X-Experience-API-Consistent-Through` is added by
/// [`version_header`]).
fn statement_response(json: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

/// One statement, with `Last-Modified` at its `stored` time.
fn single_statement_response(json: String) -> Response {
    let stored = serde_json::from_str::<Value>(&json).ok().and_then(|v| {
        v.get("stored")
            .and_then(Value::as_str)
            .and_then(validate::parse_timestamp)
    });
    let mut response = statement_response(json);
    if let Some(t) = stored
        && let Ok(v) = HeaderValue::from_str(&documents::http_date(
            (t.unix_timestamp_nanos() / 1_000) as i64,
        ))
    {
        response.headers_mut().insert(header::LAST_MODIFIED, v);
    }
    response
}

/// Read one statement by id, or query statements.
#[utoipa::path(
    get, path = "/xAPI/statements", tag = "xAPI",
    params(
        ("X-Experience-API-Version" = String, Header, description = "1.0.3 or 2.0.0"),
        ("statementId" = Option<String>, Query, description = "One statement by id"),
        ("voidedStatementId" = Option<String>, Query, description = "One voided statement by id"),
        ("agent" = Option<String>, Query, description = "JSON Agent or Group: statements whose actor or object it is"),
        ("related_agents" = Option<bool>, Query, description = "The agent anywhere in the statement: authority, instructor, team, context agents and groups, SubStatements"),
        ("verb" = Option<String>, Query, description = "Verb IRI"),
        ("activity" = Option<String>, Query, description = "Object activity IRI"),
        ("related_activities" = Option<bool>, Query, description = "The activity anywhere in the statement: context activities, SubStatements"),
        ("registration" = Option<String>, Query, description = "Registration UUID"),
        ("since" = Option<String>, Query, description = "Stored strictly after (ISO 8601)"),
        ("until" = Option<String>, Query, description = "Stored at or before (ISO 8601)"),
        ("limit" = Option<usize>, Query, description = "Page size (0 = server maximum)"),
        ("ascending" = Option<bool>, Query, description = "Oldest first"),
        ("cursor" = Option<i64>, Query, description = "Paging cursor from a `more` link"),
    ),
    responses(
        (status = 200, description = "A statement, or `{statements, more}`", body = Object),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 404, description = "No such statement", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn get_statements(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(Action::ReadStatements)?;
    if let Some(unknown) = params.keys().find(|k| !QUERY_PARAMS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            unknown.clone(),
            "is not a parameter of GET /statements",
        ));
    }
    let with_attachments = bool_param(&params, "attachments")?;
    let format = format::Format::parse(
        params.get("format").map(String::as_str),
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
    .ok_or_else(|| ApiError::bad_request("format", "must be exact, ids or canonical"))?;
    let single = [("statementId", false), ("voidedStatementId", true)]
        .into_iter()
        .find(|(k, _)| params.contains_key(*k));
    if let Some((name, voided)) = single {
        if let Some(other) = params
            .keys()
            .find(|k| !matches!(k.as_str(), "format" | "attachments") && k.as_str() != name)
        {
            return Err(ApiError::bad_request(
                other.clone(),
                format!("cannot be combined with {name}"),
            ));
        }
        let id = Uuid::parse_str(&params[name])
            .map_err(|_| ApiError::bad_request(name, "must be a UUID"))?;
        state.audit.access(
            &caller,
            "statements.read",
            Some(id.to_string()),
            json!({"voided": voided}),
        );
        return match state.storage.statement(caller.tenant, id, voided).await? {
            Some(json) => {
                let json = formatted(&format, json);
                if with_attachments {
                    return attachments_response(&state, &caller, json, |v| vec![v]).await;
                }
                Ok(single_statement_response(json))
            }
            None => Err(ApiError::not_found(format!("no statement {id}")).with_field(name)),
        };
    }

    let max = state.config.limits.max_query_limit;
    let limit = match params.get("limit") {
        None => max,
        Some(s) => match s.parse::<usize>() {
            Ok(0) => max,
            Ok(n) => n.min(max),
            Err(_) => {
                return Err(ApiError::bad_request(
                    "limit",
                    "must be a non-negative integer",
                ));
            }
        },
    };
    let agent = match params.get("agent") {
        None => None,
        Some(text) => {
            let v: Value = serde_json::from_str(text)
                .map_err(|_| ApiError::bad_request("agent", "must be a JSON Agent or Group"))?;
            validate::agent_or_group(&v, "agent")
                .map_err(|e| ApiError::bad_request(e.field, e.detail))?;
            let privacy = state.privacy.tenant(&state.storage, caller.tenant).await?;
            Some(mapping::actor_ifi(&privacy.stored_agent(&v)))
        }
    };
    for name in ["verb", "activity"] {
        if params.get(name).is_some_and(|v| !validate::is_iri(v)) {
            return Err(ApiError::bad_request(name, "must be an IRI"));
        }
    }
    let registration = params
        .get("registration")
        .map(|r| {
            Uuid::parse_str(r).map_err(|_| ApiError::bad_request("registration", "must be a UUID"))
        })
        .transpose()?;
    let cursor = params
        .get("cursor")
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::bad_request("cursor", "is not a cursor this server issued"))
        })
        .transpose()?;
    let query = StatementQuery {
        agent,
        related_agents: bool_param(&params, "related_agents")?,
        verb: params.get("verb").cloned(),
        activity: params.get("activity").cloned(),
        related_activities: bool_param(&params, "related_activities")?,
        registration,
        since_us: time_param(&params, "since")?,
        until_us: time_param(&params, "until")?,
        limit,
        ascending: bool_param(&params, "ascending")?,
        cursor,
    };
    // The audit names the agent by pseudonym only; a raw identity (a tenant that keeps them) is
    // not copied.
    let audited_agent = query.agent.as_deref().map(|ifi| {
        ifi.strip_prefix(&format!(
            "account:{}|",
            learnpulse_privacy::pipeline::PSEUDONYM_HOME
        ))
        .unwrap_or("(a raw identity)")
    });
    let audited = json!({"agent": audited_agent, "verb": query.verb, "activity": query.activity,
                         "related_agents": query.related_agents,
                         "related_activities": query.related_activities});
    let page = state.storage.query(caller.tenant, query).await?;
    state.audit.access(
        &caller,
        "statements.query",
        None,
        json!({"filters": audited, "returned": page.statements.len()}),
    );
    let more = match page.next_cursor {
        Some(c) => {
            let mut pairs: Vec<(&String, &String)> = params
                .iter()
                .filter(|(k, _)| k.as_str() != "cursor")
                .collect();
            pairs.sort();
            let mut url = String::from("/xAPI/statements?");
            for (k, v) in pairs {
                url.push_str(&format!("{}={}&", urlencode(k), urlencode(v)));
            }
            url.push_str(&format!("cursor={c}"));
            url
        }
        None => String::new(),
    };
    let mut body =
        String::with_capacity(page.statements.iter().map(String::len).sum::<usize>() + 64);
    body.push_str("{\"statements\":[");
    let statements: Vec<String> = page
        .statements
        .into_iter()
        .map(|s| formatted(&format, s))
        .collect();
    body.push_str(&statements.join(","));
    body.push_str("],\"more\":");
    body.push_str(&Value::String(more).to_string());
    body.push('}');
    if with_attachments {
        return attachments_response(&state, &caller, body, |mut v| {
            match v["statements"].take() {
                Value::Array(items) => items,
                _ => Vec::new(),
            }
        })
        .await;
    }
    Ok(statement_response(body))
}

/// The `attachments=true` answer: `multipart/mixed` with the JSON, then the bytes of every
/// attachment its statements (found by `statements`) declare and the LRS keeps.
async fn attachments_response(
    state: &AppState,
    caller: &Caller,
    json: String,
    statements: impl FnOnce(Value) -> Vec<Value>,
) -> Result<Response, ApiError> {
    use crate::storage::AttachmentStore;
    let parsed = serde_json::from_str::<Value>(&json).unwrap_or(Value::Null);
    let hashes = attachments::declared_hashes(&statements(parsed));
    let found = if hashes.is_empty() {
        Vec::new()
    } else {
        state.storage.attachments(caller.tenant, hashes).await?
    };
    let (content_type, body) = attachments::multipart_answer(json, found);
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Versions and extensions of this LRS. Needs no credentials.
#[utoipa::path(
    get, path = "/xAPI/about", tag = "xAPI",
    responses((status = 200, description = "Supported xAPI versions", body = Object))
)]
async fn about() -> Json<Value> {
    Json(json!({
        "version": ["1.0.3", "2.0.0"],
        "extensions": {"https://learnpulse.dev/xapi/about/server": {"name": "learnpulse", "version": env!("CARGO_PKG_VERSION")}}
    }))
}
