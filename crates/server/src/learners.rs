//! Reading learner state: `GET /v1/learners/{id}` and a group's overview (the live stream is
//! [`crate::stream`]).

use crate::problem::Path;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use learnpulse_core::LearnerState;

use crate::auth::{Action, Caller};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_learner))
        .routes(routes!(group_overview))
}

/// The current state of one learner: answers, mastery per skill, cognitive load and its reasons.
#[utoipa::path(
    get, path = "/v1/learners/{id}", tag = "learners",
    params(("id" = String, Path, description = "The learner id (native `learner_id`, or the xAPI account name / e-mail address)")),
    responses(
        (status = 200, description = "The learner's state", body = Object),
        (status = 404, description = "No events of this learner", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn get_learner(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (learner, cognitive) = visible_learner(&state, &caller, &id).await?;
    let mut view = learner_view(&learner, cognitive);
    let privacy = state.privacy.tenant(&state.storage, caller.tenant).await?;
    if let Some(name) = privacy.display_name(caller.role, &learner.learner) {
        view["display_name"] = name.into();
        state.audit.access(
            &caller,
            "learner.name.read",
            Some(learner.learner.clone()),
            serde_json::json!({}),
        );
    }
    Ok(Json(view))
}

/// The learner `id` (as the platform knows them, or their pseudonym) if the caller may see
/// them, with whether the caller may see cognitive data. Audited as `learner.read`, found or not.
pub async fn visible_learner(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(LearnerState, bool), ApiError> {
    caller.require(Action::ReadLearners)?;
    let privacy = state.privacy.tenant(&state.storage, caller.tenant).await?;
    let cognitive = privacy.sees_cognitive_data(caller.role);
    let learner = state
        .hub
        .first_learner(caller.tenant, &privacy.learner_keys(id))
        .await?;
    // The audit entry names the learner by pseudonym, found or not.
    let subject = learner
        .as_ref()
        .map_or_else(|| privacy.consent_key(id), |l| l.learner.clone());
    state.audit.access(
        caller,
        "learner.read",
        Some(subject),
        serde_json::json!({
            "found": learner.is_some(),
            "cognitive_data": cognitive,
            "groups": learner.as_ref().map(|l| &l.groups),
        }),
    );
    let learner = learner.ok_or_else(|| {
        ApiError::not_found(format!("no learner {id:?} in this tenant")).with_field("id")
    })?;
    if !caller.sees_any(learner.groups.iter()) {
        return Err(denied(state, caller, learner.learner.clone()));
    }
    if privacy.restricted(&learner.learner) {
        return Err(ApiError::forbidden(
            "processing of this learner's data is restricted (GDPR Art. 18)",
        ));
    }
    Ok((learner, cognitive))
}

/// A key scoped to groups asked for a learner or group outside them: refused, and audited (the
/// compliance rule `ferpa.outside_groups` reports such attempts).
pub(crate) fn denied(state: &AppState, caller: &Caller, subject: String) -> ApiError {
    state.audit.access(
        caller,
        "access.denied",
        Some(subject),
        serde_json::json!({"reason": "outside the key's groups", "groups": caller.groups}),
    );
    ApiError::forbidden("this key may only see the learners of its own groups")
}

/// A learner's state as a role may see it. Cognitive data (the load index, its signals, the
/// response-time baseline and the risk reasons, which name load signals) is sensitive: only the
/// roles in the tenant's `cognitive_data_roles` see it; the others get mastery, answers and the
/// risk score alone.
pub fn learner_view(learner: &LearnerState, cognitive: bool) -> Value {
    let mut view = serde_json::to_value(learner).expect("learner states serialise");
    if !cognitive && let Some(map) = view.as_object_mut() {
        map.remove("load");
        map.remove("response_time_baseline");
        if let Some(risk) = map.get_mut("risk").and_then(Value::as_object_mut) {
            risk.remove("reasons");
        }
        map.insert(
            "cognitive_data".into(),
            Value::String("withheld for this role".into()),
        );
    }
    view
}

/// One learner in a class overview.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LearnerRow {
    pub learner: String,
    /// The learner's name from the roster, for the roles in the policy's `display_name_roles`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// P(known) per skill.
    pub mastery: std::collections::BTreeMap<String, f64>,
    pub answers: u64,
    /// Share of correct answers so far.
    pub accuracy: f64,
    /// Cognitive data: absent for roles outside the tenant's `cognitive_data_roles`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_index: Option<f64>,
    /// Risk of struggle, 0 to 1.
    pub risk: f64,
    /// Why, strongest reason first (cognitive data: empty for roles that may not see it).
    pub risk_reasons: Vec<String>,
    pub mastered_skills: Vec<String>,
    pub wheel_spinning_skills: Vec<String>,
    pub last_event_ms: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupOverview {
    pub group: String,
    /// Most at risk first.
    pub learners: Vec<LearnerRow>,
}

/// A class at a glance: one row per learner seen in the group, most at risk first.
#[utoipa::path(
    get, path = "/v1/groups/{id}/overview", tag = "learners",
    params(("id" = String, Path, description = "The group (class) id")),
    responses(
        (status = 200, description = "One row per learner", body = GroupOverview),
        (status = 404, description = "No learner seen in this group", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn group_overview(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<GroupOverview>, ApiError> {
    Ok(Json(overview(&state, &caller, id).await?))
}

/// A class at a glance, as the caller may see it (audited as `group.read`).
pub async fn overview(
    state: &AppState,
    caller: &Caller,
    id: String,
) -> Result<GroupOverview, ApiError> {
    caller.require(Action::ReadLearners)?;
    if !caller.sees_any(std::iter::once(&id)) {
        return Err(denied(state, caller, id));
    }
    let privacy = state.privacy.tenant(&state.storage, caller.tenant).await?;
    let cognitive = privacy.sees_cognitive_data(caller.role);
    let mut learners: Vec<LearnerRow> = state
        .hub
        .group(caller.tenant, &id)
        .await?
        .into_iter()
        .filter(|l| !privacy.restricted(&l.learner))
        .map(|l| LearnerRow {
            accuracy: if l.answers == 0 {
                0.0
            } else {
                l.correct as f64 / l.answers as f64
            },
            answers: l.answers,
            load_level: cognitive.then(|| format!("{:?}", l.load.level).to_lowercase()),
            load_index: cognitive.then_some(l.load.index),
            risk: l.risk.score,
            risk_reasons: if cognitive {
                l.risk.reasons
            } else {
                Vec::new()
            },
            mastered_skills: l
                .skills
                .iter()
                .filter(|(_, s)| s.mastered)
                .map(|(k, _)| k.clone())
                .collect(),
            wheel_spinning_skills: l
                .skills
                .iter()
                .filter(|(_, s)| s.wheel_spinning)
                .map(|(k, _)| k.clone())
                .collect(),
            last_event_ms: l.last_event_ms,
            display_name: privacy
                .display_name(caller.role, &l.learner)
                .map(str::to_owned),
            mastery: l
                .skills
                .iter()
                .map(|(k, s)| (k.clone(), s.mastery))
                .collect(),
            learner: l.learner,
        })
        .collect();
    // Who was shown by name is part of the record of the read.
    let named: Vec<&str> = learners
        .iter()
        .filter(|l| l.display_name.is_some())
        .map(|l| l.learner.as_str())
        .collect();
    state.audit.access(
        caller,
        "group.read",
        Some(id.clone()),
        serde_json::json!({"learners": learners.len(), "cognitive_data": cognitive, "named": named}),
    );
    if learners.is_empty() {
        return Err(
            ApiError::not_found(format!("no learner seen in group {id:?}")).with_field("id"),
        );
    }
    learners.sort_by(|a, b| {
        b.risk
            .total_cmp(&a.risk)
            .then_with(|| a.learner.cmp(&b.learner))
    });
    Ok(GroupOverview {
        group: id,
        learners,
    })
}
