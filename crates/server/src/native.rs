//! The native event API, `POST /v1/events`: a compact batch format for platforms that do not
//! speak xAPI. Each event is turned into an xAPI statement ([`crate::xapi::mapping::native_statement`])
//! and then takes exactly the path of an xAPI statement.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Action, Caller};
use crate::problem::{ApiError, Body, Problem, parse_json};
use crate::state::AppState;
use crate::xapi::mapping::{NativeFields, native_statement};
use crate::xapi::{XapiVersion, append, prepare_batch_native};

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NativeOutcome {
    Correct,
    Incorrect,
    /// No judged answer (viewed, started, asked for a hint).
    None,
}

/// One learning event.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NativeEvent {
    /// Optional client-chosen id (UUID) that makes retries idempotent.
    pub event_id: Option<uuid::Uuid>,
    /// The platform's id of the learner (not blank, at most 512 characters).
    #[schema(min_length = 1, max_length = 512, pattern = "\\S")]
    pub learner_id: String,
    /// The item (question, step) the event is about (not blank, at most 512 characters).
    #[schema(min_length = 1, max_length = 512, pattern = "\\S")]
    pub item_id: String,
    /// Skills (knowledge components) the item exercises.
    #[serde(default)]
    pub skills: Vec<String>,
    pub outcome: NativeOutcome,
    /// Milliseconds the learner took to respond (at most a day).
    #[schema(maximum = 86400000)]
    pub response_time_ms: Option<u64>,
    #[serde(default)]
    pub hints_used: u32,
    /// 1 for the first attempt at the item.
    #[serde(default = "first_attempt")]
    #[schema(minimum = 1)]
    pub attempt: u32,
    /// Free text the learner wrote (an answer, a message).
    pub text: Option<String>,
    pub session_id: Option<String>,
    /// The class or group the learner is working in.
    pub group_id: Option<String>,
    /// RFC 3339 time of the event; the server's time when absent.
    #[schema(format = DateTime)]
    pub timestamp: Option<String>,
}

/// A response time beyond a day is a clock or client error, not a learner's.
const MAX_RESPONSE_TIME_MS: u64 = 86_400_000;

fn first_attempt() -> u32 {
    1
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    pub events: Vec<NativeEvent>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub accepted: usize,
    /// Events stored reduced (without identity or free text) because the learner lacks a
    /// consent the tenant's policy needs; see `on_missing_consent`.
    pub reduced: usize,
    /// Statement id of each event, in order.
    pub ids: Vec<String>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_events))
}

fn check(e: &NativeEvent, i: usize) -> Result<(), ApiError> {
    let field = |name: &str| format!("events[{i}].{name}");
    for (name, value) in [("learner_id", &e.learner_id), ("item_id", &e.item_id)] {
        if value.trim().is_empty() || value.chars().count() > 512 {
            return Err(ApiError::bad_request(
                field(name),
                "must be a non-blank string of at most 512 characters",
            ));
        }
    }
    if e.response_time_ms
        .is_some_and(|ms| ms > MAX_RESPONSE_TIME_MS)
    {
        return Err(ApiError::bad_request(
            field("response_time_ms"),
            "at most a day (86400000)",
        ));
    }
    if e.attempt == 0 {
        return Err(ApiError::bad_request(field("attempt"), "starts at 1"));
    }
    if let Some(t) = &e.timestamp
        && crate::xapi::validate::parse_timestamp(t).is_none()
    {
        return Err(ApiError::bad_request(
            field("timestamp"),
            "must be an RFC 3339 timestamp with a time zone",
        ));
    }
    if let Some(s) = e.skills.iter().find(|s| s.trim().is_empty()) {
        return Err(ApiError::bad_request(
            field("skills"),
            format!("skill names cannot be empty ({s:?})"),
        ));
    }
    Ok(())
}

/// Ingest a batch of native learning events. The batch is atomic.
#[utoipa::path(
    post, path = "/v1/events", tag = "native",
    request_body = EventBatch,
    responses(
        (status = 200, description = "All events stored", body = Accepted),
        (status = 400, description = "Invalid event; `field` names it", body = Problem),
        (status = 403, description = "A learner lacks a consent the policy needs; `detail` names it", body = Problem),
        (status = 409, description = "An event_id was reused for a different event", body = Problem),
        (status = 413, description = "Body or batch too large", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn post_events(
    State(state): State<AppState>,
    caller: Caller,
    Body(bytes): Body,
) -> Result<Json<Accepted>, ApiError> {
    caller.require(Action::WriteStatements)?;
    let statements = statements_of(&bytes)?;
    let prepared = prepare_batch_native(&state, &caller, XapiVersion("2.0.0"), statements).await?;
    let ids = prepared.ids();
    append(&state, &caller, prepared.statements).await?;
    Ok(Json(Accepted {
        accepted: ids.len(),
        reduced: prepared.reduced,
        ids,
    }))
}

/// The edge's pure part: a request body of native events, parsed and checked, as the xAPI
/// statements they stand for (a problem naming the first bad field otherwise). Every statement
/// it returns is valid xAPI (the parsers' fuzz target holds it to that).
pub fn statements_of(body: &[u8]) -> Result<Vec<serde_json::Value>, ApiError> {
    let batch: EventBatch = parse_json(body)?;
    let mut statements = Vec::with_capacity(batch.events.len());
    for (i, e) in batch.events.iter().enumerate() {
        check(e, i)?;
        let mut statement = native_statement(&NativeFields {
            learner: &e.learner_id,
            item: &e.item_id,
            skills: &e.skills,
            correct: match e.outcome {
                NativeOutcome::Correct => Some(true),
                NativeOutcome::Incorrect => Some(false),
                NativeOutcome::None => None,
            },
            response_time_ms: e.response_time_ms,
            hints_used: e.hints_used,
            attempt: e.attempt,
            text: e.text.as_deref(),
            session: e.session_id.as_deref(),
            group: e.group_id.as_deref(),
            timestamp: e.timestamp.as_deref(),
        });
        if let Some(id) = e.event_id {
            statement["id"] = serde_json::json!(id.to_string());
        }
        statements.push(statement);
    }
    Ok(statements)
}
