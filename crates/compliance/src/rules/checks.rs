//! One check per rule: the subjects a rule fails on and the evidence, or nothing when it holds.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::{DAY_US, Facts, HOUR_US};

fn param_u64(params: &Value, key: &str) -> u64 {
    params.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// One rule's check: the subjects it fails on and the evidence, or `None` when it holds.
pub(super) fn check(id: &str, f: &Facts, params: &Value) -> Option<(Vec<String>, String)> {
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
        "gdpr.export_without_need" => {
            let allowed: Vec<&str> = params
                .get("allowed_roles")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let role_of: HashMap<&str, &str> = f
                .keys
                .iter()
                .map(|k| (k.key_id.as_str(), k.role.as_str()))
                .collect();
            let mut s: Vec<String> = f
                .recent_access
                .iter()
                .filter(|a| matches!(a.action.as_str(), "statements.read" | "statements.query"))
                .filter(|a| {
                    role_of
                        .get(a.actor.as_str())
                        .is_some_and(|r| !allowed.contains(r))
                })
                .map(|a| a.actor.clone())
                .collect();
            s.sort();
            s.dedup();
            let n = s.len();
            some(
                s,
                format!("{n} keys read statements although their role is not among {allowed:?}"),
            )
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
            // Distinct learners each key read in the last hour, against its hourly mean over
            // the 23 hours before (its baseline).
            let limit = param_u64(params, "learners_per_hour") as usize;
            let factor = param_u64(params, "baseline_factor") as usize;
            let floor = param_u64(params, "baseline_min_learners") as usize;
            let mut last_hour: HashMap<&str, HashSet<&str>> = HashMap::new();
            let mut before: HashMap<&str, HashSet<(i64, &str)>> = HashMap::new();
            for a in &f.recent_access {
                let Some(s) = a.subject.as_deref().filter(|_| a.action == "learner.read") else {
                    continue;
                };
                if a.at_us >= f.now_us - HOUR_US {
                    last_hour.entry(&a.actor).or_default().insert(s);
                } else {
                    let hour = (f.now_us - a.at_us) / HOUR_US;
                    before.entry(&a.actor).or_default().insert((hour, s));
                }
            }
            let mut s: Vec<String> = last_hour
                .iter()
                .filter(|(key, learners)| {
                    let n = learners.len();
                    let baseline = before.get(*key).map_or(0.0, |b| b.len() as f64 / 23.0);
                    (limit > 0 && n >= limit)
                        || (factor > 0 && n >= floor && n as f64 > factor as f64 * baseline)
                })
                .map(|(k, _)| k.to_string())
                .collect();
            s.sort();
            let most = last_hour.values().map(HashSet::len).max().unwrap_or(0);
            some(
                s,
                format!(
                    "up to {most} distinct learners read by one key in the last hour (limit {limit}, or {factor}x the key's hourly baseline from {floor} learners)"
                ),
            )
        }
        "security.cross_group_reads" => {
            let limit = param_u64(params, "groups_per_hour") as usize;
            let mut per_key: HashMap<&str, HashSet<&str>> = HashMap::new();
            for a in f
                .recent_access
                .iter()
                .filter(|a| a.at_us >= f.now_us - HOUR_US)
            {
                let groups = per_key.entry(&a.actor).or_default();
                match a.action.as_str() {
                    "learner.read" => groups.extend(a.groups.iter().map(String::as_str)),
                    "group.read" => groups.extend(a.subject.as_deref()),
                    _ => {}
                }
            }
            let mut s: Vec<String> = per_key
                .iter()
                .filter(|(_, g)| limit > 0 && g.len() > limit)
                .map(|(k, _)| k.to_string())
                .collect();
            s.sort();
            let most = per_key.values().map(HashSet::len).max().unwrap_or(0);
            some(
                s,
                format!("one key read learners of {most} groups in the last hour (limit {limit})"),
            )
        }
        "security.off_hours_export" => {
            let from = param_u64(params, "from_hour_utc") as i64;
            let to = param_u64(params, "to_hour_utc") as i64;
            let mut s: Vec<String> = f
                .recent_access
                .iter()
                .filter(|a| {
                    let hour = a.at_us.div_euclid(HOUR_US).rem_euclid(24);
                    a.action.starts_with("statements.")
                        && a.action != "statements.write"
                        && hour >= from
                        && hour < to
                })
                .map(|a| a.actor.clone())
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
                .filter(|a| a.action == "access.denied")
                .map(|a| a.actor.clone())
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
            for a in &f.recent_access {
                if a.action == "vault.reidentify" {
                    *per_key.entry(&a.actor).or_default() += 1;
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
