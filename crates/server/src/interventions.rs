//! Interventions over HTTP: a tenant's policies (`GET`/`PUT /v1/interventions/policies`, TOML
//! or JSON) and the latest decisions (`GET /v1/interventions`). Deciding happens in the commit
//! hook (`live.rs`, with the pure `learnpulse_core::intervene`); decisions reach dashboards on
//! the SSE stream as `intervention` events.

use crate::problem::{Path, Query};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use learnpulse_core::intervene::PolicySet;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Action, Caller};
use crate::problem::{ApiError, Body, Problem};
use crate::state::AppState;
use crate::storage::{AccountStore, Storage, StoreError, TenantId};
use crate::views::intervention_view;

/// The tenant setting the policies are stored under (as JSON; they arrive as TOML or JSON).
const SETTING: &str = "intervention_policies";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_policies, put_policies))
        .routes(routes!(list))
        .routes(routes!(respond))
        .routes(routes!(effectiveness))
}

/// Loads every tenant's stored policies into the hub (before the log is replayed, so that
/// replayed decisions are the ones the live server made).
pub async fn load_all(storage: &Storage, hub: &crate::live::LearnerHub) -> Result<(), StoreError> {
    for tenant in storage.tenants().await? {
        load_tenant(storage, hub, tenant.id).await?;
    }
    Ok(())
}

/// Loads one tenant's stored policies into the hub (after another process changed them).
pub async fn load_tenant(
    storage: &Storage,
    hub: &crate::live::LearnerHub,
    tenant: TenantId,
) -> Result<(), StoreError> {
    if let Some(text) = storage.tenant_setting(tenant, SETTING).await? {
        match serde_json::from_str::<PolicySet>(&text) {
            Ok(set) => hub.set_policies(tenant, set),
            Err(e) => {
                tracing::error!(tenant, error = %e, "stored intervention policies do not parse; using the built-in ones")
            }
        }
    }
    Ok(())
}

fn parse(headers: &HeaderMap, bytes: &[u8]) -> Result<PolicySet, ApiError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| ApiError::bad_request("body", "must be UTF-8"))?;
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let set: PolicySet = if json {
        crate::problem::parse_json(bytes)?
    } else {
        toml::from_str(text).map_err(|e| {
            ApiError::bad_request("body", format!("not a policy set in TOML: {}", e.message()))
        })?
    };
    set.check()
        .map_err(|e| ApiError::bad_request("policies", e))?;
    Ok(set)
}

/// The tenant's intervention policies (the built-in set until one is stored).
#[utoipa::path(
    get, path = "/v1/interventions/policies", tag = "interventions",
    responses((status = 200, description = "The policy set", body = Object)),
    security(("api_key" = []))
)]
async fn get_policies(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::ReadLearners)?;
    Ok(Json(
        serde_json::to_value(&*state.hub.policies(caller.tenant)).expect("policies serialise"),
    ))
}

/// Replace the tenant's intervention policies: TOML (or JSON with `Content-Type:
/// application/json`) with `max_per_learner_per_hour` and `[[policies]]` of `id`, `when`
/// (conditions), `then`, `priority`, `cooldown_secs`, `message`.
#[utoipa::path(
    put, path = "/v1/interventions/policies", tag = "interventions",
    request_body(description = "The policy set, in TOML or as JSON", content(
        (String = "application/toml"),
        (Object = "application/json"),
    )),
    responses(
        (status = 200, description = "The policies now in force", body = Object),
        (status = 400, description = "Invalid policy set", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn put_policies(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(bytes): Body,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::ManageKeys)?;
    let set = parse(&headers, &bytes)?;
    let text = serde_json::to_string(&set).expect("policies serialise");
    state
        .storage
        .set_tenant_setting(caller.tenant, SETTING, text)
        .await?;
    state.hub.set_policies(caller.tenant, set.clone());
    if let Err(e) = state
        .storage
        .announce(crate::storage::Change::Policies(caller.tenant))
        .await
    {
        tracing::warn!(error = %e, "cannot announce a policy change to other processes");
    }
    state.audit.access(
        &caller,
        "interventions.policies.change",
        None,
        json!({"policies": set.policies.len()}),
    );
    Ok(Json(
        serde_json::to_value(&set).expect("policies serialise"),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListFilter {
    /// One learner (as the platform knows them, or their pseudonym).
    learner: Option<String>,
    /// Only learners seen working in this group (class).
    group: Option<String>,
    /// At most this many, newest first (default 100, at most 10,000).
    #[param(minimum = 0, maximum = 10000)]
    limit: Option<usize>,
}

/// The latest intervention decisions, newest first, with the policy that fired and why.
#[utoipa::path(
    get, path = "/v1/interventions", tag = "interventions",
    params(ListFilter),
    responses((status = 200, description = "Decisions", body = [Object])),
    security(("api_key" = []))
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<ListFilter>,
) -> Result<Json<Vec<Value>>, ApiError> {
    caller.require(Action::ReadLearners)?;
    let tenant: TenantId = caller.tenant;
    let privacy = state.privacy.tenant(&state.storage, tenant).await?;
    let cognitive = privacy.sees_cognitive_data(caller.role);
    let learners = filter
        .learner
        .as_deref()
        .map(|id| privacy.learner_keys(id))
        .unwrap_or_default();
    let limit = filter.limit.unwrap_or(100);
    if limit > 10_000 {
        return Err(ApiError::bad_request("limit", "at most 10000"));
    }
    let decisions = state
        .hub
        .recent_interventions(tenant, &learners, usize::MAX)
        .into_iter()
        // A key scoped to groups sees its groups' learners only.
        .filter(|(_, d, _)| {
            let groups = state.hub.groups_of(tenant, &d.learner);
            caller.sees_any(groups.iter())
                && filter.group.as_ref().is_none_or(|g| groups.contains(g))
        })
        .take(limit)
        .map(|(seq, d, response)| {
            let mut view = intervention_view(seq, &d, cognitive);
            view["teacher_response"] = response.into();
            if let Some(name) = privacy.display_name(caller.role, &d.learner) {
                view["display_name"] = name.into();
            }
            view
        })
        .collect::<Vec<Value>>();
    state.audit.access(
        &caller,
        "interventions.read",
        learners.first().cloned(),
        json!({"limit": limit}),
    );
    Ok(Json(decisions))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// `acknowledged`, `went_over` (the teacher went over it with the learner) or `dismissed`.
    #[schema(pattern = "^(acknowledged|went_over|dismissed)$")]
    response: String,
    /// A note; free text, redacted like every other.
    note: Option<String>,
}

/// A teacher's answer to a decision, recorded in the log as a `responded` statement (so it
/// survives restarts and reaches every node) and shown with the decision from then on.
#[utoipa::path(
    post, path = "/v1/interventions/{seq}/response", tag = "interventions",
    params(("seq" = i64, Path, description = "The decision's sequence number (`seq`)")),
    request_body = Response,
    responses(
        (status = 200, description = "Recorded", body = Object),
        (status = 400, description = "Invalid request; `field` names it", body = Problem),
        (status = 404, description = "No such decision among the recent ones", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn respond(
    State(state): State<AppState>,
    caller: Caller,
    Path(seq): Path<i64>,
    Body(bytes): Body,
) -> Result<Json<Value>, ApiError> {
    use crate::xapi::mapping::{DECISION_PREFIX, TEACHER_RESPONSES, VERB_RESPONDED};
    caller.require(Action::RecordTutorActions)?;
    let body: Response = crate::problem::parse_json(&bytes)?;
    if !TEACHER_RESPONSES.contains(&body.response.as_str()) {
        return Err(ApiError::bad_request(
            "response",
            format!("one of {}", TEACHER_RESPONSES.join(", ")),
        ));
    }
    let decision = state
        .hub
        .recent_interventions(caller.tenant, &[], usize::MAX)
        .into_iter()
        .find(|(s, _, _)| *s == seq)
        .filter(|(_, d, _)| caller.sees_any(state.hub.groups_of(caller.tenant, &d.learner).iter()))
        .ok_or_else(|| {
            ApiError::not_found(format!("no recent decision {seq} this key may see"))
                .with_field("seq")
        })?;
    let learner = decision.1.learner;
    let id = crate::xapi::record_about_learner(
        &state,
        &caller,
        crate::xapi::AboutLearner {
            learner: &learner,
            verb: (VERB_RESPONDED, "responded"),
            object_id: format!("{DECISION_PREFIX}{seq}"),
            extensions: json!({"https://learnpulse.dev/xapi/ext/teacher-response": body.response}),
            note: body.note,
        },
        "body",
    )
    .await?;
    Ok(Json(
        json!({"recorded": id, "decision": seq, "learner": learner, "response": body.response}),
    ))
}

/// Which policies help: per policy, its decisions followed up over the learner's next
/// answers (accuracy change with a 95 % interval, share whose load fell, share who quit); per
/// action, what tutors reported through MCP (`record_tutor_action`) and how they judged it; and
/// per policy, how teachers answered its recent decisions on the dashboard.
#[utoipa::path(
    get, path = "/v1/interventions/effectiveness", tag = "interventions",
    responses((status = 200, description = "Per policy", body = Object)),
    security(("api_key" = []))
)]
async fn effectiveness(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::ReadLearners)?;
    Ok(Json(json!({
        "follow_up": {
            "answers": learnpulse_core::outcome::FOLLOW_UP_ANSWERS,
            "quit_after_minutes": learnpulse_core::outcome::QUIT_GAP_MS / 60_000,
        },
        "policies": state.hub.effectiveness(caller.tenant),
        "tutor_reports": state.hub.tutor_reports(caller.tenant),
        "teacher_responses": state.hub.teacher_responses(caller.tenant),
    })))
}
