//! The privacy API: the tenant's policy, roster and keys (`admin`, `dpo`), learners' consents
//! (the platform as it collects them), and re-identification from the vault (`dpo` only).

use crate::problem::Path;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use learnpulse_privacy::pipeline::{ConsentRecord, Policy};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{Action, Caller};
use crate::problem::{ApiError, Body, Problem, parse_json};
use crate::state::AppState;
use crate::storage::PrivacyStore;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_policy, put_policy))
        .routes(routes!(put_roster))
        .routes(routes!(rotate_key))
        .routes(routes!(pseudonyms))
        .routes(routes!(get_consent, put_consent))
        .routes(routes!(reidentify))
}

/// The tenant's privacy policy (defaults filled in).
#[utoipa::path(
    get, path = "/v1/privacy/policy", tag = "privacy",
    responses((status = 200, description = "The policy", body = Object)),
    security(("api_key" = []))
)]
async fn get_policy(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Policy>, ApiError> {
    caller.require(Action::ManagePrivacy)?;
    let tenant = state.privacy.tenant(&state.storage, caller.tenant).await?;
    Ok(Json(tenant.policy.clone()))
}

/// Replace the tenant's privacy policy. Absent fields take their defaults; unknown fields are an
/// error. Applies to events received from now on.
#[utoipa::path(
    put, path = "/v1/privacy/policy", tag = "privacy",
    request_body = learnpulse_privacy::pipeline::Policy,
    responses(
        (status = 200, description = "The policy now in force", body = Object),
        (status = 400, description = "Invalid policy; `field` names it", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn put_policy(
    State(state): State<AppState>,
    caller: Caller,
    Body(bytes): Body,
) -> Result<Json<Policy>, ApiError> {
    caller.require(Action::ManagePrivacy)?;
    let policy: Policy = parse_json(&bytes)?;
    policy
        .check()
        .map_err(|(field, detail)| ApiError::bad_request(field, detail))?;
    for (field, roles) in [
        ("cognitive_data_roles", &policy.cognitive_data_roles),
        ("display_name_roles", &policy.display_name_roles),
    ] {
        if let Some(role) = roles
            .iter()
            .find(|r| crate::storage::Role::parse(r).is_none())
        {
            return Err(ApiError::bad_request(
                field,
                format!("{role:?} is not a role"),
            ));
        }
    }
    let tenant = state
        .privacy
        .set_policy(&state.storage, caller.tenant, &policy)
        .await?;
    tracing::info!(tenant = caller.tenant, key = %caller.key_id, "privacy policy changed");
    state.audit.access(
        &caller,
        "privacy.policy.change",
        None,
        serde_json::to_value(&tenant.policy).unwrap_or_default(),
    );
    Ok(Json(tenant.policy.clone()))
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RosterBody {
    /// Full names of the tenant's learners and staff, one per entry, found in free text.
    #[serde(default)]
    pub names: Vec<String>,
    /// Learners' display names by the id the platform knows them by: shown to the roles in
    /// the policy's `display_name_roles` (the teacher of record) and found in free text too.
    #[serde(default)]
    pub learners: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RosterAccepted {
    /// Names found in free text (the listed names and the learners' display names).
    pub names: usize,
    /// Learners with a display name.
    pub learners: usize,
}

/// Replace the tenant's roster: names found in any case and context in free text. Stored sealed.
#[utoipa::path(
    put, path = "/v1/privacy/roster", tag = "privacy",
    request_body = RosterBody,
    responses((status = 200, description = "Roster size", body = RosterAccepted)),
    security(("api_key" = []))
)]
async fn put_roster(
    State(state): State<AppState>,
    caller: Caller,
    Body(bytes): Body,
) -> Result<Json<RosterAccepted>, ApiError> {
    if caller.require(Action::ManagePrivacy).is_err() {
        caller.require(Action::RecordConsent)?;
    }
    let body: RosterBody = parse_json(&bytes)?;
    let tenant = state
        .privacy
        .set_roster(&state.storage, caller.tenant, &body)
        .await?;
    state.audit.access(
        &caller,
        "privacy.roster.change",
        None,
        serde_json::json!({"names": tenant.roster_size, "learners": tenant.display_names.learners()}),
    );
    Ok(Json(RosterAccepted {
        names: tenant.roster_size,
        learners: tenant.display_names.learners(),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rotated {
    /// The new current pseudonym key version. Older keys are kept so that learners' histories
    /// stay whole: each learner is re-linked the next time they are seen.
    pub pseudonym_key_version: u32,
}

/// Rotate the tenant's pseudonym key.
#[utoipa::path(
    post, path = "/v1/privacy/keys/rotate", tag = "privacy",
    responses((status = 200, description = "The new key version", body = Rotated)),
    security(("api_key" = []))
)]
async fn rotate_key(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Rotated>, ApiError> {
    caller.require(Action::ManagePrivacy)?;
    let version = state.privacy.rotate(&state.storage, caller.tenant).await?;
    tracing::info!(tenant = caller.tenant, key = %caller.key_id, version, "pseudonym key rotated");
    state.audit.access(
        &caller,
        "privacy.key.rotate",
        None,
        serde_json::json!({"version": version}),
    );
    Ok(Json(Rotated {
        pseudonym_key_version: version,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PseudonymRequest {
    /// Learner ids as the platform knows them (account names or e-mail addresses).
    pub ids: Vec<String>,
}

/// The current pseudonym of each id the caller already knows, so that a platform or a teacher's
/// dashboard can put names to the rows learnpulse returns. The reverse is never offered: without
/// the id, a pseudonym cannot be traced back.
#[utoipa::path(
    post, path = "/v1/privacy/pseudonyms", tag = "privacy",
    request_body = PseudonymRequest,
    responses((status = 200, description = "id → pseudonym", body = Object)),
    security(("api_key" = []))
)]
async fn pseudonyms(
    State(state): State<AppState>,
    caller: Caller,
    Body(bytes): Body,
) -> Result<Json<std::collections::BTreeMap<String, String>>, ApiError> {
    if caller.require(Action::ReadLearners).is_err() {
        caller.require(Action::RecordConsent)?;
    }
    let body: PseudonymRequest = parse_json(&bytes)?;
    if body.ids.len() > 10_000 {
        return Err(ApiError::bad_request(
            "ids",
            "at most 10000 ids per request",
        ));
    }
    let tenant = state.privacy.tenant(&state.storage, caller.tenant).await?;
    state.audit.access(
        &caller,
        "privacy.pseudonyms.lookup",
        None,
        serde_json::json!({"ids": body.ids.len()}),
    );
    Ok(Json(
        body.ids
            .into_iter()
            .map(|id| {
                let p = tenant.pseudonymiser.pseudonym(&id);
                (id, p)
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsentView {
    /// The pseudonym the record is kept under.
    pub learner: String,
    #[schema(value_type = Object)]
    pub record: ConsentRecord,
}

/// A learner's consents and age, as recorded.
#[utoipa::path(
    get, path = "/v1/learners/{id}/consent", tag = "privacy",
    params(("id" = String, Path, description = "The learner id as the platform knows it, or its pseudonym")),
    responses(
        (status = 200, description = "The record", body = ConsentView),
        (status = 404, description = "Nothing recorded", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn get_consent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConsentView>, ApiError> {
    caller.require(Action::RecordConsent)?;
    let tenant = state.privacy.tenant(&state.storage, caller.tenant).await?;
    state.audit.access(
        &caller,
        "consent.read",
        Some(tenant.consent_key(&id)),
        serde_json::json!({}),
    );
    let record = tenant.consent(&id).ok_or_else(|| {
        ApiError::not_found("no consent recorded for this learner").with_field("id")
    })?;
    Ok(Json(ConsentView {
        learner: tenant.consent_key(&id),
        record,
    }))
}

/// Record a learner's consents and age: `gdpr_consent` (true given, false withdrawn),
/// `under_13`, `parental_consent_verified`, `directory_opt_out`. Replaces the record; every
/// change is kept. Applies to events received from now on.
#[utoipa::path(
    put, path = "/v1/learners/{id}/consent", tag = "privacy",
    params(("id" = String, Path, description = "The learner id as the platform knows it, or its pseudonym")),
    request_body = learnpulse_privacy::pipeline::ConsentRecord,
    responses(
        (status = 200, description = "Recorded", body = ConsentView),
        (status = 400, description = "Invalid record; `field` names it", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn put_consent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(bytes): Body,
) -> Result<Json<ConsentView>, ApiError> {
    caller.require(Action::RecordConsent)?;
    let record: ConsentRecord = parse_json(&bytes)?;
    let tenant = state.privacy.tenant(&state.storage, caller.tenant).await?;
    let learner = tenant.consent_key(&id);
    state
        .privacy
        .set_consent(
            &state.storage,
            caller.tenant,
            learner.clone(),
            record.clone(),
            caller.key_id.clone(),
        )
        .await?;
    tracing::info!(tenant = caller.tenant, key = %caller.key_id, learner = %learner, "consent recorded");
    state.audit.access(
        &caller,
        "consent.change",
        Some(learner.clone()),
        serde_json::to_value(&record).unwrap_or_default(),
    );
    Ok(Json(ConsentView { learner, record }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Reidentified {
    pub statement: String,
    pub placeholder: String,
    pub original: String,
}

/// What a placeholder of a stored statement replaced. `dpo` only; every call is recorded.
#[utoipa::path(
    get, path = "/v1/vault/{statement}/{placeholder}", tag = "privacy",
    params(
        ("statement" = uuid::Uuid, Path, description = "Statement id"),
        ("placeholder" = String, Path, description = "PERSON_1, EMAIL_2, ... (with or without the angle brackets)"),
    ),
    responses(
        (status = 200, description = "The original value", body = Reidentified),
        (status = 404, description = "No such statement or placeholder in the vault", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn reidentify(
    State(state): State<AppState>,
    caller: Caller,
    Path((statement, placeholder)): Path<(String, String)>,
) -> Result<Json<Reidentified>, ApiError> {
    caller.require(Action::Reidentify)?;
    let id = Uuid::parse_str(&statement)
        .map_err(|_| ApiError::bad_request("statement", "must be a UUID"))?;
    let placeholder = format!(
        "<{}>",
        placeholder.trim_start_matches('<').trim_end_matches('>')
    );
    let tenant = state.privacy.tenant(&state.storage, caller.tenant).await?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("the vault holds no {placeholder} for statement {id}"),
        )
        .with_field("placeholder")
    };
    let sealed = state
        .storage
        .vault_entry(caller.tenant, id)
        .await?
        .ok_or_else(not_found)?;
    let replaced = tenant.open_vault(id, &sealed).ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the vault entry does not open with this tenant's key",
        )
    })?;
    let original = replaced
        .into_iter()
        .find(|r| r.placeholder == placeholder)
        .ok_or_else(not_found)?
        .original;
    state
        .storage
        .record_reidentification(
            caller.tenant,
            id,
            placeholder.clone(),
            caller.key_id.clone(),
        )
        .await?;
    tracing::warn!(tenant = caller.tenant, key = %caller.key_id, statement = %id, placeholder = %placeholder, "re-identification");
    state.audit.access(
        &caller,
        "vault.reidentify",
        Some(id.to_string()),
        serde_json::json!({"placeholder": placeholder}),
    );
    Ok(Json(Reidentified {
        statement: id.to_string(),
        placeholder,
        original,
    }))
}
