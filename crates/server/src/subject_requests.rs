//! Data-subject requests (`dpo`): `access` (GDPR Art. 15) exports everything held about a
//! learner as one JSON archive; `erasure` (Art. 17) removes the learner from every store and
//! reports what went. Each request is recorded when received and completed when answered, with
//! its one-month deadline (Art. 12(3)); the compliance report flags overdue ones.
//!
//! Where a learner's data lives, and what erasure does to each:
//! - the event log: their statements and any statement naming them, their interned actor row,
//!   the index rows of those statements (the writer thread, `storage/sqlite/writer.rs`), with
//!   deleted pages zeroed and the WAL emptied;
//! - the vault entries and re-identification records of those statements;
//! - the learner engine's state (`live.rs`);
//! - consents and their history, in storage and in memory;
//! - the audit chain keeps its entries (the chain would break otherwise): they name the learner
//!   by pseudonym only, and become the pseudonymous tombstone the erasure leaves;
//! - request records keep their kind and dates, no longer the learner's pseudonym.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Action, Caller};
use crate::learners::learner_view;
use crate::privacy::TenantState;
use crate::problem::{ApiError, Body, Problem, parse_json};
use crate::state::AppState;
use crate::storage::OutboxStore;
use crate::storage::log::for_each_tenant_statement;
use crate::storage::{
    AttachmentStore, AuditStore, DocumentStore, EventLog, PrivacyStore, StoreError, SubjectRequest,
    TenantId, now_us,
};

/// One month, as the deadline of a request.
const DEADLINE_US: i64 = 30 * 86_400_000_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_request, list_requests))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// `access` or `erasure`.
    #[schema(pattern = "^(access|erasure)$")]
    pub kind: String,
    /// The learner, as the platform knows them, or their pseudonym.
    pub learner: String,
}

/// Strings whose presence in a stored statement means it names the learner: their pseudonyms,
/// and (for tenants that keep raw identities) the raw id as an account name or e-mail address.
fn needles(privacy: &TenantState, id: &str) -> Vec<String> {
    privacy
        .identifiers(id)
        .into_iter()
        .flat_map(|i| {
            if crate::privacy::looks_like_pseudonym(&i) {
                vec![i]
            } else {
                vec![format!("\"{i}\""), format!("\"mailto:{i}\"")]
            }
        })
        .collect()
}

/// Every stored statement of the tenant that names the learner.
async fn statements_naming(
    state: &AppState,
    tenant: TenantId,
    needles: Vec<String>,
) -> Result<Vec<Value>, StoreError> {
    let mut out = Vec::new();
    for_each_tenant_statement(&*state.storage, tenant, |json| {
        if needles.iter().any(|n| json.contains(n.as_str()))
            && let Ok(v) = serde_json::from_str(json)
        {
            out.push(v);
        }
    })
    .await?;
    Ok(out)
}

async fn access(
    state: &AppState,
    caller: &Caller,
    privacy: &TenantState,
    id: &str,
) -> Result<Value, StoreError> {
    let identifiers = privacy.identifiers(id);
    let statements = statements_naming(state, caller.tenant, needles(privacy, id)).await?;
    let learner_state = state
        .hub
        .first_learner(caller.tenant, &identifiers)
        .await?
        // Their own data, cognitive data included.
        .map(|l| learner_view(&l, true));
    let mut consent_history = Vec::new();
    for learner in &identifiers {
        for (record, by_key, at_us) in state
            .storage
            .consent_history(caller.tenant, learner.clone())
            .await?
        {
            consent_history.push(json!({
                "record": serde_json::from_str::<Value>(&record).unwrap_or(Value::String(record)),
                "by_key": by_key, "at_us": at_us,
            }));
        }
    }
    // Every access recorded so far, including those still queued for the chain.
    state.audit.flush().await;
    let audit = state
        .storage
        .audit_entries_about(caller.tenant, identifiers.clone())
        .await?;
    Ok(json!({
        "format": "learnpulse-subject-access-v1",
        "learner": privacy.consent_key(id),
        "identifiers": identifiers,
        "statements": statements,
        "learner_state": learner_state,
        "consent": privacy.consent(id),
        "consent_history": consent_history,
        "audit_entries": audit,
    }))
}

async fn erase(
    state: &AppState,
    caller: &Caller,
    privacy: &TenantState,
    id: &str,
) -> Result<Value, StoreError> {
    let identifiers = privacy.identifiers(id);
    let actor_ifis: Vec<String> = identifiers
        .iter()
        .map(|i| {
            format!(
                "account:{}|{i}",
                learnpulse_privacy::pipeline::PSEUDONYM_HOME
            )
        })
        .collect();
    let erased = state
        .storage
        .erase_learner(caller.tenant, needles(privacy, id), actor_ifis.clone())
        .await?;
    // States in memory or kept (a learner not in memory is still counted).
    let mut learner_states = 0;
    for i in &identifiers {
        learner_states += usize::from(state.hub.learner(caller.tenant, i).await?.is_some());
    }
    // The newest snapshot and the kept states hold the erased states too: none may outlive
    // the erasure.
    crate::snapshot::erase(&state.storage, &state.hub, caller.tenant, &identifiers).await?;
    let consent_rows = state
        .storage
        .erase_consents(caller.tenant, identifiers.clone())
        .await?;
    privacy.forget_consents(&identifiers);
    state
        .privacy
        .forget_display_names(&state.storage, caller.tenant, &identifiers)
        .await?;
    // Every other process drops her too: its engines (which followed the log) and its copy of
    // the tenant's consents.
    if let Err(e) = state
        .storage
        .announce(crate::storage::Change::Erased(
            caller.tenant,
            identifiers.clone(),
        ))
        .await
    {
        tracing::warn!(error = %e, "cannot announce an erasure to other processes");
    }
    let webhook_messages = state
        .storage
        .forget_learners(caller.tenant, identifiers.clone())
        .await?;
    // The xAPI documents filed under her (state, agent profiles).
    let documents = state
        .storage
        .erase_documents(caller.tenant, identifiers.clone())
        .await?;
    let attachments = state
        .storage
        .erase_attachments(caller.tenant, actor_ifis)
        .await?;
    Ok(json!({
        "documents": documents,
        "attachments": attachments,
        "event_log": erased,
        "learner_states": learner_states,
        "consent_rows": consent_rows,
        "webhook_messages": webhook_messages,
        "audit_entries": "kept: they name the learner by pseudonym only (the tombstone)",
    }))
}

/// Answer a data-subject request now: `access` returns the archive, `erasure` what was removed.
#[utoipa::path(
    post, path = "/v1/compliance/requests", tag = "compliance",
    request_body = NewRequest,
    responses(
        (status = 200, description = "{request, archive} or {request, erased}", body = Object),
        (status = 400, description = "Invalid request; `field` names it", body = Problem),
        (status = 403, description = "Not a dpo", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn create_request(
    State(state): State<AppState>,
    caller: Caller,
    Body(bytes): Body,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::HandleSubjectRequests)?;
    let req: NewRequest = parse_json(&bytes)?;
    if !matches!(req.kind.as_str(), "access" | "erasure") {
        return Err(ApiError::bad_request("kind", "must be access or erasure"));
    }
    if req.learner.trim().is_empty() {
        return Err(ApiError::bad_request("learner", "must not be empty"));
    }
    let privacy = state.privacy.tenant(&state.storage, caller.tenant).await?;
    let learner = privacy.consent_key(&req.learner);
    let received = now_us();
    let id = state
        .storage
        .open_request(SubjectRequest {
            id: 0,
            tenant: caller.tenant,
            kind: req.kind.clone(),
            learner: learner.clone(),
            received_us: received,
            deadline_us: received + DEADLINE_US,
            completed_us: None,
            summary: None,
        })
        .await?;
    let (key, body) = if req.kind == "access" {
        let archive = access(&state, &caller, &privacy, &req.learner).await?;
        let summary = json!({"statements": archive["statements"].as_array().map_or(0, Vec::len)});
        ("archive", (archive, summary))
    } else {
        let erased = erase(&state, &caller, &privacy, &req.learner).await?;
        ("erased", (erased.clone(), erased))
    };
    let (answer, summary) = body;
    state
        .storage
        .complete_request(id, summary.to_string())
        .await?;
    if req.kind == "erasure" {
        let identifiers = privacy.identifiers(&req.learner);
        state
            .storage
            .unname_requests(caller.tenant, identifiers)
            .await?;
    }
    state.audit.access(
        &caller,
        &format!("subject.{}", req.kind),
        Some(learner.clone()),
        json!({"request": id, "summary": summary}),
    );
    let request = state
        .storage
        .requests(caller.tenant)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "request vanished"))?;
    Ok(Json(json!({"request": request, key: answer})))
}

/// The tenant's data-subject requests, newest first, with their deadlines.
#[utoipa::path(
    get, path = "/v1/compliance/requests", tag = "compliance",
    responses((status = 200, description = "Requests", body = [SubjectRequest])),
    security(("api_key" = []))
)]
async fn list_requests(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<SubjectRequest>>, ApiError> {
    caller.require(Action::HandleSubjectRequests)?;
    Ok(Json(state.storage.requests(caller.tenant).await?))
}
