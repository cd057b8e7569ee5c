//! The compliance rules: pure checks of [`Facts`] the server gathers, each citing the provision
//! it serves, with a severity and a remediation.
//!
//! Rules are data: [`catalogue`] lists them with their default parameters; a tenant's
//! [`RuleOverride`]s switch rules off, change a severity or a parameter. [`evaluate`] applies the
//! checks; [`score`] turns the findings into the compliance score.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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
    /// The tenant's audit entries of the last day: (time, actor key, action, subject).
    pub recent_access: Vec<(i64, String, String, Option<String>)>,
    /// Times of failed authentications against the tenant's keys in the last day.
    pub failed_auth_us: Vec<i64>,
    /// Data-subject requests still open: (kind, request id, deadline).
    pub open_requests: Vec<(String, i64, i64)>,
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

/// Every rule learnpulse checks.
pub fn catalogue() -> Vec<RuleDef> {
    use Severity::*;
    vec![
        RuleDef {
            id: "coppa.parental_consent",
            title: "Data of an under-13 learner without verified parental consent",
            provision: "COPPA, 16 CFR 312.5(a)",
            severity: Critical,
            remediation: "Obtain and record verified parental consent, or erase the learner's data (erasure request).",
            params: json!({}),
        },
        RuleDef {
            id: "gdpr.withdrawn_consent",
            title: "Data still held of a learner who withdrew consent",
            provision: "GDPR Art. 7(3) and Art. 17(1)(b)",
            severity: High,
            remediation: "Erase the learner's data (erasure request) unless another lawful basis applies.",
            params: json!({}),
        },
        RuleDef {
            id: "gdpr.retention",
            title: "Events kept past the retention period",
            provision: "GDPR Art. 5(1)(e) (storage limitation)",
            severity: Medium,
            remediation: "Purge events older than the retention period.",
            params: json!({}),
        },
        RuleDef {
            id: "gdpr.unredacted_free_text",
            title: "Personal data in stored free text",
            provision: "GDPR Art. 5(1)(c) and Art. 25 (minimisation, privacy by design)",
            severity: High,
            remediation: "Turn on redact_free_text, add the names to the roster, and erase or redact the statements listed.",
            params: json!({}),
        },
        RuleDef {
            id: "gdpr.erasure_overdue",
            title: "An erasure request not completed in time",
            provision: "GDPR Art. 17(1) and Art. 12(3) (without undue delay, within one month)",
            severity: Critical,
            remediation: "Complete the erasure now (POST /v1/compliance/requests) and tell the learner.",
            params: json!({}),
        },
        RuleDef {
            id: "gdpr.access_overdue",
            title: "An access request not answered in time",
            provision: "GDPR Art. 15 and Art. 12(3)",
            severity: High,
            remediation: "Answer the access request now and tell the learner why it was late.",
            params: json!({}),
        },
        RuleDef {
            id: "gdpr.pseudonymisation_off",
            title: "Learner identities stored as received",
            provision: "GDPR Art. 25(1) and Art. 32(1)(a) (pseudonymisation)",
            severity: Medium,
            remediation: "Set keep_raw_identity to false unless a documented need requires raw identities.",
            params: json!({}),
        },
        RuleDef {
            id: "gdpr.redaction_off",
            title: "Free text stored without PII redaction",
            provision: "GDPR Art. 25(1) (data protection by design)",
            severity: Medium,
            remediation: "Set redact_free_text to true.",
            params: json!({}),
        },
        RuleDef {
            id: "gdpr.cognitive_data_roles",
            title: "Cognitive data visible to a role without need",
            provision: "GDPR Art. 5(1)(c) and Art. 9; FERPA 34 CFR 99.31(a)(1) (legitimate educational interest)",
            severity: Medium,
            remediation: "Limit cognitive_data_roles to the roles that act on it.",
            params: json!({"allowed": ["teacher", "tutor"]}),
        },
        RuleDef {
            id: "privacy.k_anonymity",
            title: "Analytics release cohorts smaller than the minimum",
            provision: "GDPR Recital 26; FERPA 34 CFR 99.31(b)(1) (de-identified data)",
            severity: Medium,
            remediation: "Raise k_anonymity to at least the minimum.",
            params: json!({"minimum": 5}),
        },
        RuleDef {
            id: "privacy.dp_budget_size",
            title: "A privacy budget too large to mean much",
            provision: "GDPR Art. 89(1) (safeguards for research)",
            severity: Low,
            remediation: "Lower dp_epsilon_per_analyst.",
            params: json!({"maximum_epsilon": 10.0}),
        },
        RuleDef {
            id: "privacy.dp_budget_exhausted",
            title: "An analyst has spent their privacy budget",
            provision: "GDPR Art. 89(1)",
            severity: Info,
            remediation: "Further queries are refused; a new budget needs a documented decision.",
            params: json!({}),
        },
        RuleDef {
            id: "security.unused_keys",
            title: "API keys unused for a long time",
            provision: "GDPR Art. 32(1)(b); FERPA 34 CFR 99.31(a)(1)(ii) (reasonable methods)",
            severity: Medium,
            remediation: "Revoke keys nobody uses.",
            params: json!({"days": 90}),
        },
        RuleDef {
            id: "security.admin_key_expiry",
            title: "Admin keys without an expiry",
            provision: "GDPR Art. 32(1)(b)",
            severity: Low,
            remediation: "Issue admin keys with expires_in_days and revoke the ones without.",
            params: json!({}),
        },
        RuleDef {
            id: "security.audit_chain",
            title: "The audit chain does not verify",
            provision: "GDPR Art. 5(2) and Art. 30 (accountability, records); FERPA 34 CFR 99.32 (record of disclosures)",
            severity: Critical,
            remediation: "Investigate the named entry as a possible breach; restore the log from a backup and notify the DPO.",
            params: json!({}),
        },
        RuleDef {
            id: "security.failed_auth_burst",
            title: "A burst of failed authentications",
            provision: "GDPR Art. 32(1)(d) and Art. 33 (breach detection)",
            severity: High,
            remediation: "Check the source; revoke exposed keys; rate-limit the client.",
            params: json!({"failures": 20, "window_minutes": 10}),
        },
        RuleDef {
            id: "security.mass_learner_reads",
            title: "A key read far more learners than usual",
            provision: "GDPR Art. 32 and Art. 33; FERPA 34 CFR 99.31 (disclosure limits)",
            severity: High,
            remediation: "Suspend the key and find out why it read so many learners.",
            params: json!({"learners_per_hour": 200}),
        },
        RuleDef {
            id: "security.off_hours_export",
            title: "Statements exported at night",
            provision: "GDPR Art. 32 (monitoring of processing)",
            severity: Low,
            remediation: "Confirm the export was expected.",
            params: json!({"from_hour_utc": 0, "to_hour_utc": 5}),
        },
        RuleDef {
            id: "ferpa.outside_groups",
            title: "A teacher or tutor tried to read learners outside their groups",
            provision: "FERPA 34 CFR 99.31(a)(1)(i)(A) (legitimate educational interest)",
            severity: High,
            remediation: "Ask why; the reads were refused, repeated attempts suggest a misused key.",
            params: json!({}),
        },
        RuleDef {
            id: "ferpa.unscoped_teacher_keys",
            title: "Teacher or tutor keys that see the whole tenant",
            provision: "FERPA 34 CFR 99.31(a)(1)(ii) (reasonable methods to limit access)",
            severity: Low,
            remediation: "Issue teacher and tutor keys with the groups they teach.",
            params: json!({}),
        },
        RuleDef {
            id: "ferpa.reidentification_burst",
            title: "Many re-identifications by one key",
            provision: "FERPA 34 CFR 99.31(b); GDPR Art. 32",
            severity: High,
            remediation: "Review the re-identifications and the need for each.",
            params: json!({"per_day": 10}),
        },
    ]
}

fn param_u64(params: &Value, key: &str) -> u64 {
    params.get(key).and_then(Value::as_u64).unwrap_or(0)
}

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

/// One rule's check: the subjects it fails on and the evidence, or `None` when it holds.
fn check(id: &str, f: &Facts, params: &Value) -> Option<(Vec<String>, String)> {
    let some = |subjects: Vec<String>, evidence: String| {
        (!subjects.is_empty()).then_some((subjects, evidence))
    };
    match id {
        "coppa.parental_consent" => {
            let s: Vec<String> = f
                .learners
                .iter()
                .filter(|l| {
                    l.holds_data && l.under_13 == Some(true) && !l.parental_consent_verified
                })
                .map(|l| l.pseudonym.clone())
                .collect();
            let n = s.len();
            some(
                s,
                format!("{n} under-13 learners have data held and no verified parental consent"),
            )
        }
        "gdpr.withdrawn_consent" => {
            let s: Vec<String> = f
                .learners
                .iter()
                .filter(|l| l.holds_data && l.gdpr_consent == Some(false))
                .map(|l| l.pseudonym.clone())
                .collect();
            let n = s.len();
            some(
                s,
                format!("{n} learners withdrew consent and their data is still held"),
            )
        }
        "gdpr.retention" => (f.events_past_retention > 0).then(|| {
            (
                vec!["event log".to_owned()],
                format!(
                    "{} events are older than the retention period of {} days",
                    f.events_past_retention,
                    f.policy.retention_days.unwrap_or(0)
                ),
            )
        }),
        "gdpr.unredacted_free_text" => {
            let s: Vec<String> = f.unredacted.iter().map(|(id, _)| id.clone()).collect();
            let kinds: HashSet<&str> = f
                .unredacted
                .iter()
                .flat_map(|(_, k)| k.iter().map(String::as_str))
                .collect();
            let mut kinds: Vec<&str> = kinds.into_iter().collect();
            kinds.sort();
            let n = s.len();
            some(
                s,
                format!(
                    "{n} recent statements hold {} in free text",
                    kinds.join(", ")
                ),
            )
        }
        "gdpr.erasure_overdue" | "gdpr.access_overdue" => {
            let kind = if id == "gdpr.erasure_overdue" {
                "erasure"
            } else {
                "access"
            };
            let s: Vec<String> = f
                .open_requests
                .iter()
                .filter(|(k, _, deadline)| k == kind && *deadline < f.now_us)
                .map(|(_, request, _)| format!("request {request}"))
                .collect();
            let n = s.len();
            some(s, format!("{n} {kind} requests are past their deadline"))
        }
        "gdpr.pseudonymisation_off" => f.policy.keep_raw_identity.then(|| {
            (
                vec!["policy".to_owned()],
                "keep_raw_identity is true".to_owned(),
            )
        }),
        "gdpr.redaction_off" => (!f.policy.redact_free_text).then(|| {
            (
                vec!["policy".to_owned()],
                "redact_free_text is false".to_owned(),
            )
        }),
        "gdpr.cognitive_data_roles" => {
            let allowed: Vec<&str> = params
                .get("allowed")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let s: Vec<String> = f
                .policy
                .cognitive_data_roles
                .iter()
                .filter(|r| !allowed.contains(&r.as_str()))
                .cloned()
                .collect();
            let listed = s.join(", ");
            some(s, format!("cognitive data is shown to: {listed}"))
        }
        "privacy.k_anonymity" => {
            let minimum = param_u64(params, "minimum") as u32;
            (f.policy.k_anonymity < minimum).then(|| {
                (
                    vec!["policy".to_owned()],
                    format!("k_anonymity is {}, under {minimum}", f.policy.k_anonymity),
                )
            })
        }
        "privacy.dp_budget_size" => {
            let max = params
                .get("maximum_epsilon")
                .and_then(Value::as_f64)
                .unwrap_or(f64::MAX);
            (f.policy.dp_epsilon_per_analyst > max).then(|| {
                (
                    vec!["policy".to_owned()],
                    format!(
                        "each analyst may spend ε = {}, over {max}",
                        f.policy.dp_epsilon_per_analyst
                    ),
                )
            })
        }
        "privacy.dp_budget_exhausted" => {
            let s: Vec<String> = f
                .dp_budgets
                .iter()
                .filter(|b| b.spent >= b.total - 1e-9)
                .map(|b| b.analyst.clone())
                .collect();
            let n = s.len();
            some(s, format!("{n} analysts have no budget left"))
        }
        "security.unused_keys" => {
            let cutoff = f.now_us - param_u64(params, "days") as i64 * DAY_US;
            let s: Vec<String> = f
                .keys
                .iter()
                .filter(|k| !k.revoked && k.created_us < cutoff)
                .filter(|k| k.last_used_us.is_none_or(|t| t < cutoff))
                .map(|k| k.key_id.clone())
                .collect();
            let n = s.len();
            some(
                s,
                format!(
                    "{n} live keys unused for {} days",
                    param_u64(params, "days")
                ),
            )
        }
        "security.admin_key_expiry" => {
            let s: Vec<String> = f
                .keys
                .iter()
                .filter(|k| !k.revoked && k.role == "admin" && k.expires_us.is_none())
                .map(|k| k.key_id.clone())
                .collect();
            let n = s.len();
            some(s, format!("{n} live admin keys never expire"))
        }
        "security.audit_chain" => f.audit_chain.as_ref().err().map(|(seq, reason)| {
            (
                vec![format!("entry {seq}")],
                format!("entry {seq}: {reason}"),
            )
        }),
        "security.failed_auth_burst" => {
            let window = param_u64(params, "window_minutes") as i64 * 60_000_000;
            let limit = param_u64(params, "failures") as usize;
            let mut times = f.failed_auth_us.clone();
            times.sort_unstable();
            let worst = (0..times.len())
                .map(|i| times[i..].partition_point(|t| *t < times[i] + window))
                .max()
                .unwrap_or(0);
            (limit > 0 && worst >= limit).then(|| {
                (
                    vec!["authentication".to_owned()],
                    format!(
                        "{worst} failed authentications within {} minutes",
                        window / 60_000_000
                    ),
                )
            })
        }
        "security.mass_learner_reads" => {
            let limit = param_u64(params, "learners_per_hour") as usize;
            let mut per_key: HashMap<&str, HashSet<&str>> = HashMap::new();
            for (at, actor, action, subject) in &f.recent_access {
                if action == "learner.read"
                    && *at >= f.now_us - HOUR_US
                    && let Some(s) = subject
                {
                    per_key.entry(actor).or_default().insert(s);
                }
            }
            let mut s: Vec<String> = per_key
                .iter()
                .filter(|(_, learners)| limit > 0 && learners.len() >= limit)
                .map(|(k, _)| k.to_string())
                .collect();
            s.sort();
            let most = per_key.values().map(HashSet::len).max().unwrap_or(0);
            some(
                s,
                format!(
                    "up to {most} distinct learners read by one key in the last hour (limit {limit})"
                ),
            )
        }
        "security.off_hours_export" => {
            let from = param_u64(params, "from_hour_utc") as i64;
            let to = param_u64(params, "to_hour_utc") as i64;
            let mut s: Vec<String> = f
                .recent_access
                .iter()
                .filter(|(at, _, action, _)| {
                    let hour = at.div_euclid(HOUR_US).rem_euclid(24);
                    action.starts_with("statements.")
                        && action != "statements.write"
                        && hour >= from
                        && hour < to
                })
                .map(|(_, actor, _, _)| actor.clone())
                .collect();
            s.sort();
            s.dedup();
            let n = s.len();
            some(
                s,
                format!("{n} keys read statements between {from:02}:00 and {to:02}:00 UTC"),
            )
        }
        "ferpa.outside_groups" => {
            let mut s: Vec<String> = f
                .recent_access
                .iter()
                .filter(|(_, _, action, _)| action == "access.denied")
                .map(|(_, actor, _, _)| actor.clone())
                .collect();
            let attempts = s.len();
            s.sort();
            s.dedup();
            let n = s.len();
            some(
                s,
                format!(
                    "{attempts} refused reads outside their groups by {n} keys in the last day"
                ),
            )
        }
        "ferpa.unscoped_teacher_keys" => {
            let s: Vec<String> = f
                .keys
                .iter()
                .filter(|k| !k.revoked && !k.scoped && (k.role == "teacher" || k.role == "tutor"))
                .map(|k| k.key_id.clone())
                .collect();
            let n = s.len();
            some(
                s,
                format!("{n} live teacher or tutor keys are not limited to groups"),
            )
        }
        "ferpa.reidentification_burst" => {
            let limit = param_u64(params, "per_day") as usize;
            let mut per_key: HashMap<&str, usize> = HashMap::new();
            for (_, actor, action, _) in &f.recent_access {
                if action == "vault.reidentify" {
                    *per_key.entry(actor).or_default() += 1;
                }
            }
            let mut s: Vec<String> = per_key
                .iter()
                .filter(|(_, n)| limit > 0 && **n > limit)
                .map(|(k, _)| k.to_string())
                .collect();
            s.sort();
            some(
                s,
                format!("more than {limit} re-identifications by one key in a day"),
            )
        }
        _ => None,
    }
}

/// The compliance score: 100 minus the weight of each failing rule's severity (critical 25,
/// high 10, medium 5, low 2, info 0), never below 0. A rule counts once however many subjects it
/// fails on, so the score says how many kinds of problem there are, and how grave.
pub fn score(findings: &[Finding]) -> f64 {
    (100.0 - findings.iter().map(|f| f.severity.weight()).sum::<f64>()).max(0.0)
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
