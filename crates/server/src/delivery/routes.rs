//! `/v1/webhooks`: a tenant's webhook receivers. A receiver has one or more endpoints (URLs with
//! weights), one signing secret (rotatable with a grace period), a batch size, and a filter on
//! intervention kinds. Its messages can be listed by state, and dead letters replayed.

use std::sync::Arc;

use crate::problem::{Path, Query};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::outbox::{Receiver, ReceiverSpec};
use super::{Webhooks, now_ms};
use crate::auth::{Action, Caller};
use crate::problem::{ApiError, Body, Problem};
use crate::state::AppState;
use crate::storage::OutboxStore;
use crate::storage::outbox::Endpoint;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, delete))
        .routes(routes!(rotate_secret))
        .routes(routes!(messages))
        .routes(routes!(replay))
}

/// An outbox failure as a 500 (logged).
fn failed(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "webhook outbox error");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "outbox error; see the server log",
    )
}

async fn view(webhooks: &Webhooks, r: &Receiver) -> Result<Value, ApiError> {
    let now = now_ms();
    let endpoints: Vec<Value> = r
        .endpoints
        .iter()
        .map(|e| json!({"id": e.id, "url": e.url, "weight": e.weight, "circuit": webhooks.circuit(e.id)}))
        .collect();
    Ok(json!({
        "id": r.id,
        "name": r.name,
        "max_batch": r.max_batch,
        "events": r.events,
        "kinds": r.kinds,
        "cognitive_data": r.cognitive_data,
        "endpoints": endpoints,
        "secrets_live": r.live_secrets(now).len(),
        "created_ms": r.created_ms,
        "messages": webhooks.outbox.store().counts(r.id).await.map_err(failed)?,
    }))
}

fn found(webhooks: &Webhooks, caller: &Caller, id: i64) -> Result<Arc<Receiver>, ApiError> {
    webhooks
        .outbox
        .receiver(caller.tenant, id)
        .ok_or_else(|| ApiError::not_found(format!("no webhook receiver {id} in this tenant")))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewReceiver {
    /// A name unique in the tenant.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    name: String,
    /// Where to deliver; several endpoints share the traffic by weight and cover for each
    /// other while a circuit is open. At least one needs a weight above 0.
    #[schema(min_items = 1, max_items = 16)]
    endpoints: Vec<Endpoint>,
    /// Event types to send: `intervention.decided` (default), `compliance.incident` (the
    /// `notify_dpo` remediation).
    #[serde(default)]
    events: Option<Vec<String>>,
    /// Messages per request (default 1: one message per request, no batching).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    max_batch: Option<usize>,
    /// Intervention kinds to send (`teacher_alert`, ...); empty or absent: every kind.
    #[serde(default)]
    kinds: Vec<String>,
    /// Send each decision's reasons (they name cognitive-load signals). Default false.
    #[serde(default)]
    cognitive_data: bool,
}

/// Register a webhook receiver. The answer carries its signing secret (`whsec_...`), shown this
/// once; later it can only be rotated.
#[utoipa::path(
    post, path = "/v1/webhooks", tag = "webhooks",
    request_body = NewReceiver,
    responses(
        (status = 201, description = "Created, with the secret", body = Object),
        (status = 400, description = "Invalid receiver", body = Problem),
        (status = 409, description = "The name is taken", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(bytes): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Action::ManageWebhooks)?;
    let new: NewReceiver = crate::problem::parse_json(&bytes)?;
    if new.name.trim().is_empty() || new.name.chars().count() > 100 {
        return Err(ApiError::bad_request("name", "must be 1 to 100 characters"));
    }
    if new.endpoints.is_empty() || new.endpoints.len() > 16 {
        return Err(ApiError::bad_request(
            "endpoints",
            "must list 1 to 16 endpoints",
        ));
    }
    for (i, e) in new.endpoints.iter().enumerate() {
        let ok = reqwest::Url::parse(&e.url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !ok {
            return Err(ApiError::bad_request(
                format!("endpoints[{i}].url"),
                "must be an http(s) URL",
            ));
        }
        if e.weight > 1_000 {
            return Err(ApiError::bad_request(
                format!("endpoints[{i}].weight"),
                "must be 0 to 1000",
            ));
        }
    }
    if new.endpoints.iter().all(|e| e.weight == 0) {
        return Err(ApiError::bad_request(
            "endpoints",
            "at least one endpoint needs a weight above 0",
        ));
    }
    let max_batch = new.max_batch.unwrap_or(1);
    if !(1..=1_000).contains(&max_batch) {
        return Err(ApiError::bad_request("max_batch", "must be 1 to 1000"));
    }
    let events = new
        .events
        .clone()
        .unwrap_or_else(|| vec![super::EVENT_DECISION.to_owned()]);
    if events.is_empty() {
        return Err(ApiError::bad_request(
            "events",
            "name at least one event type",
        ));
    }
    if let Some((i, e)) = events
        .iter()
        .enumerate()
        .find(|(_, e)| !super::EVENT_TYPES.contains(&e.as_str()))
    {
        return Err(ApiError::bad_request(
            format!("events[{i}]"),
            format!(
                "'{e}' is not an event type; one of {}",
                super::EVENT_TYPES.join(", ")
            ),
        ));
    }
    let known = learnpulse_core::intervene::Intervention::ALL.map(|i| i.as_str());
    if let Some((i, k)) = new
        .kinds
        .iter()
        .enumerate()
        .find(|(_, k)| !known.contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(
            format!("kinds[{i}]"),
            format!(
                "'{k}' is not an intervention kind; one of {}",
                known.join(", ")
            ),
        ));
    }
    let tenant = caller.tenant;
    let spec = ReceiverSpec {
        name: new.name.trim().to_owned(),
        max_batch,
        events,
        kinds: new.kinds,
        cognitive_data: new.cognitive_data,
        endpoints: new.endpoints,
    };
    let webhooks = &state.webhooks;
    let r = webhooks
        .outbox
        .create_receiver(tenant, spec, now_ms())
        .await
        .map_err(failed)?
        .ok_or_else(|| {
            ApiError::new(StatusCode::CONFLICT, "a receiver of this name exists").with_field("name")
        })?;
    let mut created = view(webhooks, &r).await?;
    created["secret"] = r.secrets[0].secret.clone().into();
    state.audit.access(
        &caller,
        "webhooks.create",
        None,
        json!({"receiver": created["id"], "endpoints": created["endpoints"]}),
    );
    Ok((StatusCode::CREATED, Json(created)))
}

/// The tenant's webhook receivers with their endpoints' circuit states and message counts.
#[utoipa::path(
    get, path = "/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "Receivers", body = [Object])),
    security(("api_key" = []))
)]
async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Action::ManageWebhooks)?;
    let tenant = caller.tenant;
    let mut list = Vec::new();
    for r in state.webhooks.outbox.receivers(tenant) {
        list.push(view(&state.webhooks, &r).await?);
    }
    Ok(Json(Value::Array(list)))
}

/// One receiver.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path, description = "Receiver id")),
    responses(
        (status = 200, description = "The receiver", body = Object),
        (status = 404, description = "No such receiver", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::ManageWebhooks)?;
    let r = found(&state.webhooks, &caller, id)?;
    Ok(Json(view(&state.webhooks, &r).await?))
}

/// Delete a receiver, its endpoints and every message owed to it.
#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path, description = "Receiver id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such receiver", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    caller.require(Action::ManageWebhooks)?;
    let tenant = caller.tenant;
    let deleted = state
        .webhooks
        .outbox
        .delete_receiver(tenant, id)
        .await
        .map_err(failed)?;
    if !deleted {
        return Err(ApiError::not_found(format!(
            "no webhook receiver {id} in this tenant"
        )));
    }
    state
        .audit
        .access(&caller, "webhooks.delete", None, json!({"receiver": id}));
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Rotation {
    /// How long the previous secret stays valid (seconds, default 86400): until then every
    /// message is signed under both, so receivers can switch without losing one.
    #[schema(maximum = 2592000)]
    grace_secs: Option<u64>,
}

/// Rotate the receiver's signing secret. Answers the new secret, shown this once.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/secret/rotate", tag = "webhooks",
    params(("id" = i64, Path, description = "Receiver id")),
    request_body = Option<Rotation>,
    responses(
        (status = 200, description = "The new secret", body = Object),
        (status = 404, description = "No such receiver", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(bytes): Body,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::ManageWebhooks)?;
    let rotation: Rotation = crate::problem::parse_json_or_default(&bytes)?;
    let grace_secs = rotation.grace_secs.unwrap_or(86_400);
    if grace_secs > 30 * 86_400 {
        return Err(ApiError::bad_request(
            "grace_secs",
            "at most 30 days (2592000)",
        ));
    }
    let (tenant, now) = (caller.tenant, now_ms());
    let until = now + grace_secs as i64 * 1_000;
    let secret = state
        .webhooks
        .outbox
        .rotate_secret(tenant, id, now, until)
        .await
        .map_err(failed)?
        .ok_or_else(|| ApiError::not_found(format!("no webhook receiver {id} in this tenant")))?;
    state.audit.access(
        &caller,
        "webhooks.secret.rotate",
        None,
        json!({"receiver": id, "grace_secs": grace_secs}),
    );
    Ok(Json(
        json!({"secret": secret, "previous_valid_until_ms": until}),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct MessageFilter {
    /// `pending`, `delivered` or `dead` (default `dead`: the dead-letter list).
    #[param(pattern = "^(pending|delivered|dead)$")]
    state: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    #[param(minimum = 0, maximum = 1000)]
    limit: Option<usize>,
}

/// A receiver's messages in one state, newest first: `?state=dead` is the dead-letter list.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/messages", tag = "webhooks",
    params(("id" = i64, Path, description = "Receiver id"), MessageFilter),
    responses(
        (status = 200, description = "Messages", body = [Object]),
        (status = 400, description = "Unknown state", body = Problem),
        (status = 404, description = "No such receiver", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn messages(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(filter): Query<MessageFilter>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::ManageWebhooks)?;
    found(&state.webhooks, &caller, id)?;
    let which = filter.state.unwrap_or_else(|| "dead".into());
    let limit = filter.limit.unwrap_or(100);
    if limit > 1_000 {
        return Err(ApiError::bad_request("limit", "at most 1000"));
    }
    let code = crate::storage::outbox::state_code(&which)
        .ok_or_else(|| ApiError::bad_request("state", "one of pending, delivered, dead"))?;
    let list = state
        .webhooks
        .outbox
        .store()
        .messages(id, code, limit)
        .await
        .map_err(failed)?;
    Ok(Json(
        serde_json::to_value(list).expect("messages serialise"),
    ))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Replay {
    /// The dead letters to replay; absent: all of the receiver's.
    ids: Option<Vec<String>>,
}

/// Replay dead letters: they become pending and due now, with their attempts reset.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/messages/replay", tag = "webhooks",
    params(("id" = i64, Path, description = "Receiver id")),
    request_body = Option<Replay>,
    responses(
        (status = 200, description = "How many were replayed", body = Object),
        (status = 404, description = "No such receiver", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(bytes): Body,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::ManageWebhooks)?;
    let replay: Replay = crate::problem::parse_json_or_default(&bytes)?;
    found(&state.webhooks, &caller, id)?;
    let n = state
        .webhooks
        .outbox
        .store()
        .replay_dead(id, replay.ids, now_ms())
        .await
        .map_err(failed)?;
    state.webhooks.wake();
    state.audit.access(
        &caller,
        "webhooks.replay",
        None,
        json!({"receiver": id, "replayed": n}),
    );
    Ok(Json(json!({"replayed": n})))
}
