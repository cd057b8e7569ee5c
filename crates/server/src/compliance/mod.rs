//! Compliance monitoring: gathers [`Facts`] about a tenant from storage, the learner engine, the
//! privacy registry and the audit chain, runs the pure rules (`learnpulse_compliance::rules`) and
//! reports: `GET /v1/compliance/report` (JSON, or a readable page with `?format=html`) and the
//! tenant's rule overrides, `GET`/`PUT /v1/compliance/rules`.

pub mod incidents;

use std::collections::BTreeMap;

use crate::problem::Query;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use learnpulse_compliance::audit;
use learnpulse_compliance::rules::{
    self, BudgetFacts, Facts, Finding, KeyFacts, LearnerFacts, PolicyFacts, RuleOverride,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Action, Caller};
use crate::problem::{ApiError, Body, Problem, parse_json};
use crate::state::AppState;
use crate::storage::{
    AccountStore, AuditStore, EventLog, PrivacyStore, StatementQuery, StoreError, TenantId, now_us,
};

const DAY_US: i64 = 86_400_000_000;
/// Recent statements whose free text is re-scanned for PII that got through.
const FREE_TEXT_SAMPLE: usize = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(report))
        .routes(routes!(get_rules, put_rules))
        .merge(incidents::router())
}

async fn overrides(
    state: &AppState,
    tenant: TenantId,
) -> Result<BTreeMap<String, RuleOverride>, StoreError> {
    Ok(match state.storage.rule_overrides(tenant).await? {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| StoreError::Internal(format!("stored rule overrides: {e}")))?,
        None => BTreeMap::new(),
    })
}

/// How often the whole chain is checked again from the start; in between, each check covers
/// what was appended since the last one.
const FULL_CHECK_US: i64 = 3_600_000_000;

/// The last verified entry, and when the whole chain was last checked.
#[derive(Debug, Default)]
pub struct ChainCheck {
    verified: Option<audit::ChainState>,
    last_full_us: i64,
}

/// The audit chain checked against this server's key: `Ok(entries)` or the first break.
async fn verify_chain(
    state: &AppState,
    check: &mut ChainCheck,
) -> Result<Result<u64, (u64, String)>, StoreError> {
    // A chain shorter than, or different from, the head remembered outside the database.
    if let Some((seq, why)) = &state.audit.rollback {
        return Ok(Err((*seq, why.clone())));
    }
    let now = now_us();
    let start = if now - check.last_full_us >= FULL_CHECK_US {
        None
    } else {
        check.verified.take()
    };
    let entries = crate::storage::audit::entries_after(
        &*state.storage,
        start.as_ref().map_or(0, |s| s.seq),
        None,
    )
    .await?;
    let checkpoints = state.storage.audit_checkpoints().await?;
    let result = audit::verify_from(
        start.as_ref(),
        &entries,
        &checkpoints,
        &state.audit.verifying_key,
    );
    Ok(match result {
        Ok(v) => {
            check.verified = (v.entries > 0).then_some(v.state);
            if start.is_none() {
                check.last_full_us = now;
            }
            Ok(v.entries)
        }
        Err(b) => {
            // Start from scratch next time.
            *check = ChainCheck::default();
            Err((b.seq, b.reason))
        }
    })
}

/// Everything the rules look at, for one tenant, now.
pub async fn gather(
    state: &AppState,
    tenant: TenantId,
    check: &mut ChainCheck,
) -> Result<Facts, StoreError> {
    // What has been queued for the audit chain is part of the facts.
    state.audit.flush().await;
    let now = now_us();
    let privacy = state.privacy.tenant(&state.storage, tenant).await?;
    let p = &privacy.policy;
    let consents = privacy.consents();
    let holding = state
        .hub
        .holding(tenant, consents.iter().map(|(p, _)| p.clone()).collect())
        .await?;
    let learners = consents
        .into_iter()
        .map(|(pseudonym, r)| LearnerFacts {
            holds_data: holding.contains(&pseudonym),
            pseudonym,
            under_13: r.under_13,
            parental_consent_verified: r.parental_consent_verified,
            gdpr_consent: r.gdpr_consent,
        })
        .collect();
    let events_past_retention = match p.retention_days {
        Some(days) => {
            state
                .storage
                .count_stored_before(
                    tenant,
                    now.saturating_sub(i64::from(days).saturating_mul(DAY_US)),
                )
                .await?
        }
        None => 0,
    };
    // Re-scan the free text of the latest statements: what the pipeline let through (policy
    // off, or recognisers improved since) shows here.
    let latest = state
        .storage
        .query(
            tenant,
            StatementQuery {
                limit: FREE_TEXT_SAMPLE,
                ..Default::default()
            },
        )
        .await?;
    let mut unredacted = Vec::new();
    for json in &latest.statements {
        let Ok(mut statement) = serde_json::from_str::<Value>(json) else {
            continue;
        };
        let mut kinds: Vec<String> = Vec::new();
        learnpulse_privacy::pipeline::for_each_free_text(&mut statement, &mut |text| {
            for c in learnpulse_privacy::find(text, None) {
                if c.score >= 0.5 && !kinds.iter().any(|k| k == c.kind) {
                    kinds.push(c.kind.to_owned());
                }
            }
            None
        });
        if !kinds.is_empty() {
            let id = statement["id"].as_str().unwrap_or_default().to_owned();
            unredacted.push((id, kinds));
        }
    }
    let keys = state
        .storage
        .keys(tenant)
        .await?
        .into_iter()
        .map(|k| KeyFacts {
            key_id: k.key_id,
            role: k.role.as_str().to_owned(),
            created_us: k.created_us,
            last_used_us: k.last_used_us,
            expires_us: k.expires_us,
            revoked: k.revoked_us.is_some(),
            scoped: k.groups.is_some(),
        })
        .collect();
    let dp_budgets = state
        .storage
        .dp_spent(tenant)
        .await?
        .into_iter()
        .map(|(analyst, spent)| BudgetFacts {
            analyst,
            spent,
            total: p.dp_epsilon_per_analyst,
        })
        .collect();
    let mut recent_access = Vec::new();
    let mut failed_auth_us = Vec::new();
    for e in state
        .storage
        .audit_entries_since(tenant, now - DAY_US)
        .await?
    {
        if e.event.action == "auth.failed" {
            failed_auth_us.push(e.event.at_us);
        }
        let groups = e.event.detail["groups"]
            .as_array()
            .map(|g| {
                g.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        recent_access.push(rules::Access {
            at_us: e.event.at_us,
            actor: e.event.actor,
            action: e.event.action,
            subject: e.event.subject,
            groups,
        });
    }
    let open_requests = state
        .storage
        .requests(tenant)
        .await?
        .into_iter()
        .filter(|r| r.completed_us.is_none())
        .map(|r| (r.kind, r.id, r.deadline_us))
        .collect();
    Ok(Facts {
        now_us: now,
        open_requests,
        policy: PolicyFacts {
            keep_raw_identity: p.keep_raw_identity,
            redact_free_text: p.redact_free_text,
            cognitive_data_roles: p.cognitive_data_roles.clone(),
            k_anonymity: p.k_anonymity,
            dp_epsilon_per_analyst: p.dp_epsilon_per_analyst,
            retention_days: p.retention_days,
        },
        learners,
        events_past_retention,
        unredacted,
        keys,
        audit_chain: verify_chain(state, check).await?,
        dp_budgets,
        recent_access,
        failed_auth_us,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleStatus {
    pub id: String,
    pub title: String,
    pub provision: String,
    #[schema(value_type = String)]
    pub severity: rules::Severity,
    pub enabled: bool,
    /// `pass`, `fail` or `off`.
    pub status: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub tenant: TenantId,
    pub generated_at: String,
    /// 0 to 100; see `score_formula`.
    pub score: f64,
    pub score_formula: String,
    #[schema(value_type = Vec<Object>)]
    pub findings: Vec<Finding>,
    pub rules: Vec<RuleStatus>,
    /// Incidents open now (a rule failing since `opened_us`), with their remediation.
    pub incidents: Vec<crate::storage::Incident>,
    /// Audit chain, retention, consents, analytics: the state the rules looked at, summarised.
    #[schema(value_type = Object)]
    pub state: Value,
}

pub async fn build_report(state: &AppState, tenant: TenantId) -> Result<Report, StoreError> {
    // One evaluation at a time: the monitor and a report request must not both open an
    // incident for the same rule.
    let mut check = state.chain_check.lock().await;
    let facts = gather(state, tenant, &mut check).await?;
    let overrides = overrides(state, tenant).await?;
    let findings = rules::evaluate(&facts, &overrides);
    let open_incidents = incidents::sync(state, tenant, &findings, &overrides).await?;
    let rules = rules::catalogue()
        .into_iter()
        .map(|def| {
            let o = overrides.get(def.id);
            let enabled = o.and_then(|o| o.enabled) != Some(false);
            let failed = findings.iter().any(|f| f.rule == def.id);
            RuleStatus {
                id: def.id.into(),
                title: def.title.into(),
                provision: def.provision.into(),
                severity: o.and_then(|o| o.severity).unwrap_or(def.severity),
                enabled,
                status: match (enabled, failed) {
                    (false, _) => "off",
                    (true, true) => "fail",
                    (true, false) => "pass",
                }
                .into(),
            }
        })
        .collect();
    let summary = json!({
        "audit_chain": match &facts.audit_chain {
            Ok(n) => json!({"verified": true, "entries": n}),
            Err((seq, reason)) => json!({"verified": false, "first_broken_entry": seq, "reason": reason}),
        },
        "retention": {"retention_days": facts.policy.retention_days, "events_past_retention": facts.events_past_retention},
        "consents": {
            "learners_with_records": facts.learners.len(),
            "under_13": facts.learners.iter().filter(|l| l.under_13 == Some(true)).count(),
            "withdrawn": facts.learners.iter().filter(|l| l.gdpr_consent == Some(false)).count(),
        },
        "free_text_rescanned": FREE_TEXT_SAMPLE,
        "keys": facts.keys.iter().filter(|k| !k.revoked).count(),
        "analysts": facts.dp_budgets.len(),
        "audit_events_last_day": facts.recent_access.len(),
        "open_data_subject_requests": facts.open_requests.iter().map(|(kind, id, deadline)| json!({"id": id, "kind": kind, "deadline_us": deadline})).collect::<Vec<_>>(),
        "data_subject_requests_last_day": facts.recent_access.iter().filter(|a| a.action.starts_with("subject.")).count(),
    });
    Ok(Report {
        tenant,
        generated_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        score: rules::score(&findings),
        score_formula: "100 minus, for each failing rule once, its severity's weight: critical 25, high 10, medium 5, low 2, info 0; never below 0".into(),
        findings,
        rules,
        incidents: open_incidents,
        state: summary,
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ReportFormat {
    /// `json` (default) or `html`.
    #[param(pattern = "^(json|html)$")]
    format: Option<String>,
}

/// The compliance report: rule status, findings with evidence and remediation, and the score.
#[utoipa::path(
    get, path = "/v1/compliance/report", tag = "compliance",
    params(ReportFormat),
    responses(
        (status = 200, description = "The report (JSON, or HTML with format=html)", content(
            (Report = "application/json"),
            (String = "text/html"),
        )),
        (status = 403, description = "Not a dpo or admin", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Query(format): Query<ReportFormat>,
) -> Result<Response, ApiError> {
    caller.require(Action::ReadCompliance)?;
    let html = match format.format.as_deref() {
        None | Some("json") => false,
        Some("html") => true,
        Some(_) => return Err(ApiError::bad_request("format", "must be json or html")),
    };
    let report = build_report(&state, caller.tenant).await?;
    state.audit.access(
        &caller,
        "compliance.report",
        None,
        json!({"score": report.score, "findings": report.findings.len()}),
    );
    Ok(if html {
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            render_html(&report),
        )
            .into_response()
    } else {
        Json(report).into_response()
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The report as one self-contained page.
pub fn render_html(r: &Report) -> String {
    let mut rows = String::new();
    for f in &r.findings {
        rows.push_str(&format!(
            "<tr class=\"{sev:?}\"><td>{sev:?}</td><td><b>{}</b><br><small>{}</small></td><td>{}</td><td>{}<br><small>{}</small></td><td>{}</td></tr>",
            escape(&f.title),
            escape(&f.rule),
            escape(&f.provision),
            escape(&f.evidence),
            escape(&f.subjects.join(", ")),
            escape(&f.remediation),
            sev = f.severity,
        ));
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=5>No findings.</td></tr>");
    }
    let mut rules = String::new();
    for rule in &r.rules {
        rules.push_str(&format!(
            "<tr><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{:?}</td></tr>",
            rule.status,
            rule.status,
            escape(&rule.title),
            escape(&rule.provision),
            rule.severity
        ));
    }
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>learnpulse compliance report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}}
table{{border-collapse:collapse;width:100%;margin:1rem 0}}td,th{{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}}
.score{{font-size:3rem;font-weight:bold}}.Critical td:first-child,.fail{{color:#b00020;font-weight:bold}}.High td:first-child{{color:#d35400}}
.Medium td:first-child{{color:#b7950b}}.pass{{color:#1e8449}}.off{{color:#888}}pre{{background:#f6f6f6;padding:1rem}}</style></head>
<body><h1>Compliance report</h1><p>Tenant {tenant}, generated {at}.</p>
<p class="score">{score:.0} / 100</p><p><small>{formula}</small></p>
<h2>Findings</h2><table><tr><th>severity</th><th>rule</th><th>provision</th><th>evidence</th><th>remediation</th></tr>{rows}</table>
<h2>Rules</h2><table><tr><th>status</th><th>rule</th><th>provision</th><th>severity</th></tr>{rules}</table>
<h2>State</h2><pre>{state}</pre></body></html>"#,
        tenant = r.tenant,
        at = escape(&r.generated_at),
        score = r.score,
        formula = escape(&r.score_formula),
        state = escape(&serde_json::to_string_pretty(&r.state).unwrap_or_default()),
    )
}

/// The tenant's rule overrides, and the catalogue they apply to.
#[utoipa::path(
    get, path = "/v1/compliance/rules", tag = "compliance",
    responses((status = 200, description = "{catalogue, overrides}", body = Object)),
    security(("api_key" = []))
)]
async fn get_rules(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Action::ReadCompliance)?;
    let overrides = overrides(&state, caller.tenant).await?;
    Ok(Json(
        json!({"catalogue": rules::catalogue(), "overrides": overrides}),
    ))
}

/// Replace the tenant's rule overrides: `{"rule.id": {"enabled": false, "severity": "high",
/// "params": {...}}}`.
#[utoipa::path(
    put, path = "/v1/compliance/rules", tag = "compliance",
    request_body(content = Object, description = "rule id → override"),
    responses(
        (status = 200, description = "The overrides now in force", body = Object),
        (status = 400, description = "Unknown rule or invalid override; `field` names it", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn put_rules(
    State(state): State<AppState>,
    caller: Caller,
    Body(bytes): Body,
) -> Result<Json<BTreeMap<String, RuleOverride>>, ApiError> {
    caller.require(Action::ManagePrivacy)?;
    let overrides: BTreeMap<String, RuleOverride> = parse_json(&bytes)?;
    let catalogue = rules::catalogue();
    for (id, o) in &overrides {
        let Some(def) = catalogue.iter().find(|d| d.id == id) else {
            return Err(ApiError::bad_request(id.clone(), "is not a rule"));
        };
        if let Some(action) = o
            .actions
            .iter()
            .find(|a| !incidents::ACTIONS.contains(&a.as_str()))
        {
            return Err(ApiError::bad_request(
                format!("{id}.actions"),
                format!("{action:?} is not one of {:?}", incidents::ACTIONS),
            ));
        }
        if let Some(key) = o
            .params
            .keys()
            .find(|k| def.params.get(k.as_str()).is_none())
        {
            return Err(ApiError::bad_request(
                format!("{id}.params.{key}"),
                "is not a parameter of this rule",
            ));
        }
    }
    state
        .storage
        .set_rule_overrides(
            caller.tenant,
            serde_json::to_string(&overrides).expect("serialises"),
        )
        .await?;
    state.audit.access(
        &caller,
        "compliance.rules.change",
        None,
        serde_json::to_value(&overrides).unwrap_or_default(),
    );
    Ok(Json(overrides))
}
