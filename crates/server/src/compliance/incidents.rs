//! Incidents and remediation, and the monitor that evaluates every tenant on a schedule.
//!
//! A rule that starts failing opens an incident (with the finding's evidence); when it passes
//! again the incident closes. When an incident opens, the remediation actions configured for its
//! rule run (`actions` in the tenant's rule overrides), each recorded in the incident and in the
//! audit chain:
//! - `notify_dpo`: send the incident as a signed, retried webhook (`compliance.incident`) to
//!   every receiver of the tenant that takes those events (`/v1/webhooks`, `delivery/`);
//! - `suspend_keys`: the API keys the finding names stop working (their expiry is set to now);
//!   reversible with `POST /v1/compliance/incidents/{id}/reverse`, which restores the expiry;
//! - `quarantine_learners`: the learners the finding names get their processing restricted
//!   (GDPR Art. 18: new events refused, state not shown); reversible, which restores their
//!   consent records as they were;
//! - `purge_retention`: delete the events past the retention period at once (not reversible:
//!   the law requires the deletion).
//!
//! The monitor also enforces retention: every run, each tenant's events older than its
//! `retention_days` are purged. Learner states derived from purged events are not recomputed
//! until the next start (replay), so the engine's summaries can outlive the events for a while.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::problem::{Path, Query};
use axum::Json;
use axum::extract::State;
use learnpulse_compliance::rules::{Finding, RuleOverride};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Action, Caller};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::storage::SnapshotStore;
use crate::storage::{AccountStore, AuditStore, EventLog, Incident, StoreError, TenantId, now_us};

/// The remediation actions a rule override may name.
pub const ACTIONS: [&str; 4] = [
    "notify_dpo",
    "suspend_keys",
    "quarantine_learners",
    "purge_retention",
];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_incidents))
        .routes(routes!(reverse))
}

/// Deletes the tenant's events past its retention period; audited when anything went.
pub async fn enforce_retention(state: &AppState, tenant: TenantId) -> Result<u64, StoreError> {
    let privacy = state.privacy.tenant(&state.storage, tenant).await?;
    let Some(days) = privacy.policy.retention_days else {
        return Ok(0);
    };
    // `Policy::check` bounds the days, so the product fits; a stored policy from before that
    // bound saturates to "keep everything" rather than wrap to a cut-off in the future.
    let before = now_us().saturating_sub(i64::from(days).saturating_mul(86_400_000_000));
    let purged = state.storage.purge_before(tenant, before).await?;
    if purged.statements > 0 {
        // Snapshots hold what the purged events taught the engines: the next start replays
        // what is left instead.
        state.storage.delete_snapshots().await?;
        state.audit.record(
            tenant,
            "system",
            "retention.purge",
            None,
            json!({"retention_days": days, "purged": purged}),
        );
    }
    Ok(purged.statements)
}

/// Opens incidents for rules that started failing (running their remediation) and closes those
/// whose rule passes again. Returns the open incidents.
pub async fn sync(
    state: &AppState,
    tenant: TenantId,
    findings: &[Finding],
    overrides: &BTreeMap<String, RuleOverride>,
) -> Result<Vec<Incident>, StoreError> {
    let open = state.storage.incidents(tenant, true).await?;
    for incident in &open {
        if !findings.iter().any(|f| f.rule == incident.rule) {
            state.storage.close_incident(incident.id).await?;
            state.audit.record(
                tenant,
                "system",
                "incident.close",
                Some(incident.rule.clone()),
                json!({"incident": incident.id}),
            );
        }
    }
    for f in findings {
        if open.iter().any(|i| i.rule == f.rule) {
            continue;
        }
        let incident = Incident {
            id: 0,
            tenant,
            rule: f.rule.clone(),
            severity: serde_json::to_value(f.severity)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            opened_us: now_us(),
            closed_us: None,
            evidence: f.evidence.clone(),
            subjects: f.subjects.clone(),
            actions: json!([]),
        };
        let id = state.storage.open_incident(incident.clone()).await?;
        state.audit.record(
            tenant,
            "system",
            "incident.open",
            Some(f.rule.clone()),
            json!({"incident": id, "severity": incident.severity, "evidence": f.evidence}),
        );
        let actions = overrides
            .get(&f.rule)
            .map(|o| o.actions.clone())
            .unwrap_or_default();
        if !actions.is_empty() {
            let done = remediate(state, tenant, id, &incident, &actions).await;
            state.storage.set_incident_actions(id, done).await?;
        }
    }
    state.storage.incidents(tenant, true).await
}

/// Runs the actions; returns what each did.
async fn remediate(
    state: &AppState,
    tenant: TenantId,
    id: i64,
    incident: &Incident,
    actions: &[String],
) -> Value {
    let mut done = Vec::new();
    for action in actions {
        let outcome = match action.as_str() {
            "notify_dpo" => {
                let data = json!({"id": id, "rule": incident.rule, "severity": incident.severity,
                    "evidence": incident.evidence, "subjects": incident.subjects, "tenant": tenant});
                let queued = state.webhooks.enqueue_incident(tenant, id, data).await;
                match queued {
                    Ok(0) => {
                        json!({"action": action, "done": false, "why": "no webhook receiver of this tenant takes compliance.incident events"})
                    }
                    Ok(n) => json!({"action": action, "done": true, "receivers": n}),
                    Err(e) => json!({"action": action, "done": false, "why": e.to_string()}),
                }
            }
            "suspend_keys" => {
                let mut suspended = Vec::new();
                let keys = state.storage.keys(tenant).await.unwrap_or_default();
                for key in keys
                    .iter()
                    .filter(|k| incident.subjects.contains(&k.key_id))
                {
                    let ok = state
                        .storage
                        .set_key_expiry(tenant, &key.key_id, Some(now_us()))
                        .await
                        .unwrap_or(false);
                    if ok {
                        state.key_changed(&key.key_id).await;
                        suspended.push(
                            json!({"key": key.key_id, "previous_expires_us": key.expires_us}),
                        );
                    }
                }
                json!({"action": action, "done": !suspended.is_empty(), "keys": suspended, "reversed": false})
            }
            "quarantine_learners" => {
                let mut quarantined = Vec::new();
                if let Ok(privacy) = state.privacy.tenant(&state.storage, tenant).await {
                    for learner in incident
                        .subjects
                        .iter()
                        .filter(|s| crate::privacy::looks_like_pseudonym(s))
                    {
                        let previous = privacy.consent(learner);
                        let mut record = previous.clone().unwrap_or_default();
                        record.processing_restricted = true;
                        let set = state
                            .privacy
                            .set_consent(
                                &state.storage,
                                tenant,
                                learner.clone(),
                                record,
                                "system".into(),
                            )
                            .await;
                        if set.is_ok() {
                            quarantined.push(json!({"learner": learner, "previous": previous}));
                        }
                    }
                }
                json!({"action": action, "done": !quarantined.is_empty(), "learners": quarantined, "reversed": false})
            }
            "purge_retention" => match enforce_retention(state, tenant).await {
                Ok(n) => json!({"action": action, "done": true, "purged_statements": n}),
                Err(e) => json!({"action": action, "done": false, "why": e.to_string()}),
            },
            other => json!({"action": other, "done": false, "why": "unknown action"}),
        };
        state.audit.record(
            tenant,
            "system",
            &format!("remediation.{action}"),
            Some(incident.rule.clone()),
            json!({"incident": id, "outcome": outcome}),
        );
        done.push(outcome);
    }
    Value::Array(done)
}

/// Evaluates every tenant every `interval`, and soon after new events (at most once per
/// `debounce`): retention first, then the rules (which open and close incidents). Ends when the
/// server shuts down.
pub async fn monitor(
    state: AppState,
    interval: Duration,
    debounce: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut last_run = tokio::time::Instant::now();
    loop {
        let triggered = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            _ = state.compliance_trigger.notified() => true,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        if triggered {
            tokio::select! {
                _ = tokio::time::sleep_until(last_run + debounce) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
        last_run = tokio::time::Instant::now();
        let tenants = match state.storage.tenants().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "compliance monitor: cannot list tenants");
                continue;
            }
        };
        for tenant in tenants {
            if let Err(e) = enforce_retention(&state, tenant.id).await {
                tracing::warn!(tenant = tenant.id, error = %e, "retention purge failed");
            }
            match super::build_report(&state, tenant.id).await {
                Ok(report) => {
                    metrics::gauge!("learnpulse_compliance_score", "tenant" => tenant.id.to_string())
                        .set(report.score);
                }
                Err(e) => {
                    tracing::warn!(tenant = tenant.id, error = %e, "compliance evaluation failed")
                }
            }
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct IncidentFilter {
    /// Only open incidents.
    open: Option<bool>,
}

/// The tenant's incidents, newest first.
#[utoipa::path(
    get, path = "/v1/compliance/incidents", tag = "compliance",
    params(IncidentFilter),
    responses((status = 200, description = "Incidents", body = [Incident])),
    security(("api_key" = []))
)]
async fn list_incidents(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<IncidentFilter>,
) -> Result<Json<Vec<Incident>>, ApiError> {
    caller.require(Action::ReadCompliance)?;
    Ok(Json(
        state
            .storage
            .incidents(caller.tenant, filter.open.unwrap_or(false))
            .await?,
    ))
}

/// Undo an incident's reversible remediation: suspended keys get their expiry back.
#[utoipa::path(
    post, path = "/v1/compliance/incidents/{id}/reverse", tag = "compliance",
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The incident after reversal", body = Incident),
        (status = 404, description = "No such incident", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn reverse(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Incident>, ApiError> {
    caller.require(Action::ManagePrivacy)?;
    let find = |incidents: Vec<Incident>| incidents.into_iter().find(|i| i.id == id);
    let incident = find(state.storage.incidents(caller.tenant, false).await?)
        .ok_or_else(|| ApiError::not_found(format!("no incident {id}")).with_field("id"))?;
    let mut actions = incident.actions.clone();
    for outcome in actions.as_array_mut().into_iter().flatten() {
        if outcome["reversed"] != false {
            continue;
        }
        for key in outcome["keys"].as_array().cloned().unwrap_or_default() {
            let key_id = key["key"].as_str().unwrap_or_default();
            state
                .storage
                .set_key_expiry(caller.tenant, key_id, key["previous_expires_us"].as_i64())
                .await?;
            state.key_changed(key_id).await;
        }
        for learner in outcome["learners"].as_array().cloned().unwrap_or_default() {
            let record = serde_json::from_value(learner["previous"].clone())
                .ok()
                .flatten()
                .unwrap_or_default();
            state
                .privacy
                .set_consent(
                    &state.storage,
                    caller.tenant,
                    learner["learner"].as_str().unwrap_or_default().to_owned(),
                    record,
                    caller.key_id.clone(),
                )
                .await?;
        }
        outcome["reversed"] = json!(true);
    }
    state
        .storage
        .set_incident_actions(id, actions.clone())
        .await?;
    state.audit.access(
        &caller,
        "remediation.reverse",
        Some(incident.rule.clone()),
        json!({"incident": id}),
    );
    Ok(Json(
        find(state.storage.incidents(caller.tenant, false).await?)
            .ok_or_else(|| ApiError::not_found(format!("no incident {id}")))?,
    ))
}
