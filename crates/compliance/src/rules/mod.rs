//! The compliance rules: pure checks of [`Facts`] the server gathers, each citing the provision
//! it serves, with a severity and a remediation.
//!
//! Rules are data: [`catalogue`] lists them with their default parameters; a tenant's
//! [`RuleOverride`]s switch rules off, change a severity or a parameter. [`evaluate`] applies the
//! checks; [`score`] turns the findings into the compliance score.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Points a failing rule takes off the score of 100.
    pub fn weight(self) -> f64 {
        match self {
            Severity::Info => 0.0,
            Severity::Low => 2.0,
            Severity::Medium => 5.0,
            Severity::High => 10.0,
            Severity::Critical => 25.0,
        }
    }
}

/// One rule as the catalogue defines it.
#[derive(Debug, Clone, Serialize)]
pub struct RuleDef {
    pub id: &'static str,
    pub title: &'static str,
    /// The provision the rule serves.
    pub provision: &'static str,
    pub severity: Severity,
    pub remediation: &'static str,
    /// Default parameters; overrides replace individual keys.
    pub params: Value,
}

/// A tenant's change to one rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleOverride {
    pub enabled: Option<bool>,
    pub severity: Option<Severity>,
    pub params: serde_json::Map<String, Value>,
    /// Remediation to run when the rule starts failing (the server knows the actions).
    pub actions: Vec<String>,
}

/// What the server knows, at one moment, about one tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Facts {
    pub now_us: i64,
    pub policy: PolicyFacts,
    pub learners: Vec<LearnerFacts>,
    /// Stored events older than the retention period (0 when none is set).
    pub events_past_retention: u64,
    /// PII found in the free text of recently stored statements: (statement id, types).
    pub unredacted: Vec<(String, Vec<String>)>,
    pub keys: Vec<KeyFacts>,
    /// `Err((first broken entry, reason))` when the audit chain does not verify.
    pub audit_chain: Result<u64, (u64, String)>,
    pub dp_budgets: Vec<BudgetFacts>,
    /// The tenant's audit entries of the last day.
    pub recent_access: Vec<Access>,
    /// Times of failed authentications against the tenant's keys in the last day.
    pub failed_auth_us: Vec<i64>,
    /// Data-subject requests still open: (kind, request id, deadline).
    pub open_requests: Vec<(String, i64, i64)>,
}

/// One audit entry, as the rules look at it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Access {
    pub at_us: i64,
    /// The key (or `system`, `cli`).
    pub actor: String,
    pub action: String,
    pub subject: Option<String>,
    /// The groups (classes) of what was read, when the entry says.
    pub groups: Vec<String>,
}

impl Access {
    pub fn new(at_us: i64, actor: &str, action: &str, subject: Option<&str>) -> Access {
        Access {
            at_us,
            actor: actor.into(),
            action: action.into(),
            subject: subject.map(str::to_owned),
            groups: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PolicyFacts {
    pub keep_raw_identity: bool,
    pub redact_free_text: bool,
    pub cognitive_data_roles: Vec<String>,
    pub k_anonymity: u32,
    pub dp_epsilon_per_analyst: f64,
    pub retention_days: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LearnerFacts {
    pub pseudonym: String,
    /// learnpulse holds identifiable (pseudonymous) data of this learner.
    pub holds_data: bool,
    pub under_13: Option<bool>,
    pub parental_consent_verified: bool,
    pub gdpr_consent: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyFacts {
    pub key_id: String,
    pub role: String,
    pub created_us: i64,
    pub last_used_us: Option<i64>,
    pub expires_us: Option<i64>,
    pub revoked: bool,
    /// Limited to some groups (classes).
    pub scoped: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BudgetFacts {
    pub analyst: String,
    pub spent: f64,
    pub total: f64,
}

/// A rule that does not hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub rule: String,
    pub title: String,
    pub provision: String,
    pub severity: Severity,
    /// What it concerns: learner pseudonyms, key ids, statement ids (at most 20 listed).
    pub subjects: Vec<String>,
    /// How many subjects in all.
    pub count: usize,
    pub evidence: String,
    pub remediation: String,
}

const DAY_US: i64 = 86_400_000_000;
const HOUR_US: i64 = 3_600_000_000;

mod catalogue;
mod checks;

pub use catalogue::catalogue;
use checks::check;

fn finding(def: &RuleDef, severity: Severity, subjects: Vec<String>, evidence: String) -> Finding {
    Finding {
        rule: def.id.into(),
        title: def.title.into(),
        provision: def.provision.into(),
        severity,
        count: subjects.len(),
        subjects: subjects.into_iter().take(20).collect(),
        evidence,
        remediation: def.remediation.into(),
    }
}

/// Runs every enabled rule; one finding per failing rule.
pub fn evaluate(facts: &Facts, overrides: &BTreeMap<String, RuleOverride>) -> Vec<Finding> {
    let mut out = Vec::new();
    for def in catalogue() {
        let o = overrides.get(def.id).cloned().unwrap_or_default();
        if o.enabled == Some(false) {
            continue;
        }
        let mut params = def.params.clone();
        if let Some(map) = params.as_object_mut() {
            map.extend(o.params.clone());
        }
        let severity = o.severity.unwrap_or(def.severity);
        let failed: Option<(Vec<String>, String)> = check(def.id, facts, &params);
        if let Some((subjects, evidence)) = failed {
            out.push(finding(&def, severity, subjects, evidence));
        }
    }
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.rule.cmp(&b.rule)));
    out
}

/// The compliance score: 100 minus the weight of each failing rule's severity (critical 25,
/// high 10, medium 5, low 2, info 0), never below 0. A rule counts once however many subjects it
/// fails on, so the score says how many kinds of problem there are, and how grave.
pub fn score(findings: &[Finding]) -> f64 {
    (100.0 - findings.iter().map(|f| f.severity.weight()).sum::<f64>()).max(0.0)
}

#[cfg(test)]
mod tests;
