use serde_json::json;

use super::*;

const NOW: i64 = 1_800_000_000_000_000;

/// A tenant that keeps every rule.
fn compliant() -> Facts {
    Facts {
        now_us: NOW,
        policy: PolicyFacts {
            keep_raw_identity: false,
            redact_free_text: true,
            cognitive_data_roles: vec!["teacher".into(), "tutor".into()],
            k_anonymity: 5,
            dp_epsilon_per_analyst: 10.0,
            retention_days: Some(365),
        },
        learners: vec![
            LearnerFacts {
                pseudonym: "p1_kid".into(),
                holds_data: true,
                under_13: Some(true),
                parental_consent_verified: true,
                gdpr_consent: Some(true),
            },
            LearnerFacts {
                pseudonym: "p1_left".into(),
                holds_data: false,
                gdpr_consent: Some(false),
                ..Default::default()
            },
        ],
        events_past_retention: 0,
        unredacted: vec![],
        keys: vec![KeyFacts {
            key_id: "lpk_admin".into(),
            role: "admin".into(),
            created_us: NOW - 200 * DAY_US,
            last_used_us: Some(NOW - DAY_US),
            expires_us: Some(NOW + 30 * DAY_US),
            revoked: false,
            scoped: false,
        }],
        audit_chain: Ok(1_000),
        dp_budgets: vec![BudgetFacts {
            analyst: "lpk_r".into(),
            spent: 2.0,
            total: 10.0,
        }],
        // A teacher reading a few learners of two classes, as they do every hour; one
        // re-identification.
        recent_access: (0..24 * 5)
            .map(|i| Access {
                groups: vec![format!("class-{}", i % 2)],
                ..Access::new(
                    NOW - 60_000_000 - (i / 5) * HOUR_US,
                    "lpk_teacher",
                    "learner.read",
                    Some(&format!("p1_{}", i % 5)),
                )
            })
            .chain([Access::new(
                NOW - HOUR_US,
                "lpk_dpo",
                "vault.reidentify",
                None,
            )])
            .collect(),
        failed_auth_us: vec![NOW - 5 * HOUR_US, NOW - HOUR_US],
        // Received yesterday, due in a month.
        open_requests: vec![("erasure".into(), 1, NOW + 29 * DAY_US)],
    }
}

fn fired(f: &Facts) -> Vec<String> {
    evaluate(f, &BTreeMap::new())
        .into_iter()
        .map(|x| x.rule)
        .collect()
}

/// Turns a compliant tenant into one that breaks a rule.
type Breaker = fn(&mut Facts);

/// For every rule in the catalogue, a case built to break it.
fn breakers() -> Vec<(&'static str, Breaker)> {
    vec![
        ("coppa.parental_consent", |f| {
            f.learners[0].parental_consent_verified = false
        }),
        ("gdpr.withdrawn_consent", |f| {
            f.learners[1].holds_data = true
        }),
        ("gdpr.retention", |f| f.events_past_retention = 12),
        ("gdpr.unredacted_free_text", |f| {
            f.unredacted = vec![("0190-id".into(), vec!["EMAIL_ADDRESS".into()])]
        }),
        ("gdpr.erasure_overdue", |f| {
            f.open_requests[0].2 = NOW - DAY_US
        }),
        ("gdpr.access_overdue", |f| {
            f.open_requests.push(("access".into(), 2, NOW - 1))
        }),
        ("gdpr.export_without_need", |f| {
            // A researcher's key reading statements (an allowed admin read alongside).
            f.keys.push(KeyFacts {
                key_id: "lpk_ingest".into(),
                role: "researcher".into(),
                created_us: NOW,
                last_used_us: Some(NOW),
                expires_us: Some(NOW + DAY_US),
                revoked: false,
                scoped: false,
            });
            f.recent_access
                .push(Access::new(NOW, "lpk_ingest", "statements.query", None));
            f.recent_access
                .push(Access::new(NOW, "lpk_admin", "statements.query", None));
        }),
        ("gdpr.pseudonymisation_off", |f| {
            f.policy.keep_raw_identity = true
        }),
        ("gdpr.redaction_off", |f| f.policy.redact_free_text = false),
        ("gdpr.cognitive_data_roles", |f| {
            f.policy.cognitive_data_roles.push("researcher".into())
        }),
        ("privacy.k_anonymity", |f| f.policy.k_anonymity = 2),
        ("privacy.dp_budget_size", |f| {
            f.policy.dp_epsilon_per_analyst = 50.0
        }),
        ("privacy.dp_budget_exhausted", |f| {
            f.dp_budgets[0].spent = 10.0
        }),
        ("security.unused_keys", |f| {
            f.keys[0].last_used_us = Some(NOW - 120 * DAY_US)
        }),
        ("security.admin_key_expiry", |f| f.keys[0].expires_us = None),
        ("security.audit_chain", |f| {
            f.audit_chain = Err((17, "its content does not match its hash".into()))
        }),
        ("security.failed_auth_burst", |f| {
            f.failed_auth_us = (0..25).map(|i| NOW - 1_000_000 * i).collect()
        }),
        ("security.mass_learner_reads", |f| {
            // The teacher, who reads 5 learners an hour, reads 30 (6x the baseline, under the
            // absolute limit of 200).
            for i in 0..30 {
                f.recent_access.push(Access::new(
                    NOW - 1_000,
                    "lpk_teacher",
                    "learner.read",
                    Some(&format!("p1_new{i}")),
                ));
            }
        }),
        ("security.cross_group_reads", |f| {
            for g in 0..6 {
                f.recent_access.push(Access::new(
                    NOW - 1_000,
                    "lpk_teacher",
                    "group.read",
                    Some(&format!("class-{g}")),
                ));
            }
        }),
        ("security.off_hours_export", |f| {
            // 03:00 UTC on the day of NOW.
            let three_am = NOW - NOW.rem_euclid(24 * HOUR_US) + 3 * HOUR_US;
            f.recent_access
                .push(Access::new(three_am, "lpk_i", "statements.query", None))
        }),
        ("ferpa.outside_groups", |f| {
            f.recent_access
                .push(Access::new(NOW, "lpk_t", "access.denied", Some("p1_x")))
        }),
        ("ferpa.unscoped_teacher_keys", |f| {
            f.keys.push(KeyFacts {
                key_id: "lpk_t".into(),
                role: "teacher".into(),
                created_us: NOW,
                last_used_us: Some(NOW),
                expires_us: None,
                revoked: false,
                scoped: false,
            })
        }),
        ("ferpa.reidentification_burst", |f| {
            for _ in 0..11 {
                f.recent_access
                    .push(Access::new(NOW, "lpk_dpo", "vault.reidentify", None));
            }
        }),
    ]
}

#[test]
fn a_compliant_tenant_has_no_findings_and_scores_100() {
    let f = compliant();
    assert!(fired(&f).is_empty(), "{:?}", fired(&f));
    assert_eq!(score(&evaluate(&f, &BTreeMap::new())), 100.0);
}

#[test]
fn every_rule_fires_on_the_case_built_to_break_it_and_only_then() {
    let catalogue = catalogue();
    assert!(catalogue.len() >= 15);
    let breakers = breakers();
    for def in &catalogue {
        assert!(
            breakers.iter().any(|(id, _)| *id == def.id),
            "{} has no breaking case",
            def.id
        );
        assert!(!def.provision.is_empty() && !def.remediation.is_empty());
    }
    for (id, breaks) in breakers {
        let mut f = compliant();
        breaks(&mut f);
        assert_eq!(fired(&f), vec![id.to_owned()], "breaking {id}");
    }
}

#[test]
fn overrides_disable_rules_change_severity_and_parameters() {
    let mut f = compliant();
    f.policy.k_anonymity = 4;
    f.events_past_retention = 1;
    let mut overrides = BTreeMap::new();
    overrides.insert(
        "gdpr.retention".to_owned(),
        RuleOverride {
            enabled: Some(false),
            ..Default::default()
        },
    );
    overrides.insert(
        "privacy.k_anonymity".to_owned(),
        RuleOverride {
            severity: Some(Severity::High),
            ..Default::default()
        },
    );
    let findings = evaluate(&f, &overrides);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].severity, Severity::High);
    assert_eq!(score(&findings), 90.0);
    // A lower minimum makes k = 4 acceptable.
    let mut params = serde_json::Map::new();
    params.insert("minimum".into(), json!(3));
    overrides.insert(
        "privacy.k_anonymity".to_owned(),
        RuleOverride {
            params,
            ..Default::default()
        },
    );
    assert!(evaluate(&f, &overrides).is_empty());
}

#[test]
fn the_score_counts_each_failing_rule_once_by_severity() {
    let mut f = compliant();
    for l in &mut f.learners {
        l.holds_data = true;
        l.under_13 = Some(true);
        l.parental_consent_verified = false;
    }
    let findings = evaluate(&f, &BTreeMap::new());
    // coppa (critical, 2 learners, counted once) + withdrawn consent (high).
    assert_eq!(findings[0].count, 2);
    assert_eq!(score(&findings), 100.0 - 25.0 - 10.0);
}
