use super::*;
use crate::engine::{Engine, EngineParams};

const MINUTE: i64 = 60_000;

fn answer(learner: &str, skill: &str, correct: bool, t: i64) -> LearningEvent {
    LearningEvent {
        response_time_ms: Some(9_000),
        ..LearningEvent::answer(learner, &format!("item-{t}"), skill, correct, t)
    }
}

/// Feeds events through an engine and the default policies; returns every decision.
fn run(events: &[LearningEvent], set: &PolicySet) -> Vec<Decision> {
    let mut engine = Engine::new(EngineParams::default());
    let mut memory = Memory::default();
    let mut out = Vec::new();
    for e in events {
        let state = engine.apply(e).clone();
        out.extend(decide(set, &state, e, &mut memory));
    }
    out
}

#[test]
fn a_struggling_learner_gets_an_easier_item_then_a_teacher_alert_not_more_of_the_same() {
    let events: Vec<LearningEvent> = (0..12)
        .map(|i| answer("ada", "fractions", i % 4 == 0, i * 2 * MINUTE))
        .collect();
    let decisions = run(&events, &PolicySet::default());
    let kinds: Vec<Intervention> = decisions.iter().map(|d| d.intervention).collect();
    assert!(kinds.contains(&Intervention::EasierItem), "{decisions:#?}");
    let alert = decisions
        .iter()
        .find(|d| d.intervention == Intervention::TeacherAlert)
        .expect("wheel-spinning reaches the teacher");
    assert!(alert.reasons[0].contains("wheel-spinning on fractions"));
    assert_eq!(alert.skill.as_deref(), Some("fractions"));
    assert_eq!(
        decisions
            .iter()
            .filter(|d| d.policy == "wheel_spinning_teacher_alert")
            .count(),
        1,
        "the alert's cooldown holds"
    );
}

#[test]
fn mastery_is_encouraged_once() {
    let events: Vec<LearningEvent> = (0..10)
        .map(|i| answer("bo", "ratios", true, i * MINUTE))
        .collect();
    let decisions = run(&events, &PolicySet::default());
    assert_eq!(decisions.len(), 1, "{decisions:#?}");
    assert_eq!(decisions[0].intervention, Intervention::Encouragement);
    assert!(decisions[0].reasons[0].starts_with("ratios mastered after"));
}

#[test]
fn cooldowns_and_the_hourly_limit_hold_under_a_burst() {
    let set = PolicySet {
        max_per_learner_per_hour: 3,
        policies: vec![
            Policy {
                id: "wrong".into(),
                when: vec![Condition::Incorrect],
                then: Intervention::Hint,
                priority: 1,
                cooldown_secs: 60,
                message: "hint".into(),
            },
            Policy {
                id: "streak".into(),
                when: vec![Condition::ErrorStreakAtLeast { count: 2 }],
                then: Intervention::EasierItem,
                priority: 2,
                cooldown_secs: 600,
                message: "easier".into(),
            },
        ],
    };
    // 200 wrong answers, one a second.
    let events: Vec<LearningEvent> = (0..200)
        .map(|i| answer("cy", "algebra", false, i * 1_000))
        .collect();
    let decisions = run(&events, &set);
    assert_eq!(decisions.len(), 3, "the hourly limit: {decisions:#?}");
    for pair in decisions.windows(2) {
        if pair[0].policy == pair[1].policy {
            assert!(pair[1].at_ms - pair[0].at_ms >= 60_000, "cooldown");
        }
    }
    assert_eq!(decisions[0].policy, "wrong", "the first wrong answer");
    assert_eq!(
        decisions[1].policy, "streak",
        "higher priority once it holds"
    );
    // An hour on, interventions resume.
    let later: Vec<LearningEvent> = (0..200)
        .map(|i| answer("cy", "algebra", false, i * 1_000))
        .chain((0..5).map(|i| answer("cy", "algebra", false, 2 * 3_600_000 + i * 1_000)))
        .collect();
    assert!(run(&later, &set).len() > 3);
}

#[test]
fn policy_sets_are_data_and_are_checked() {
    let text = serde_json::to_string(&PolicySet::default()).unwrap();
    let back: PolicySet = serde_json::from_str(&text).unwrap();
    assert_eq!(back, PolicySet::default());
    let set: PolicySet = serde_json::from_str(
        r#"{"max_per_learner_per_hour": 2, "policies": [
            {"id": "guess", "when": [{"if": "rapid_guess"}, {"if": "load_at_least", "level": "high"}],
             "then": "slow_down", "priority": 5, "cooldown_secs": 120, "message": "Slow down."}]}"#,
    )
    .unwrap();
    assert!(set.check().is_ok());
    assert!(
        serde_json::from_str::<PolicySet>(
            r#"{"max_per_learner_per_hour": 2, "policies": [{"id": "x", "when": [{"if": "moon_phase"}], "then": "hint", "priority": 1, "message": ""}]}"#
        )
        .is_err()
    );
    let mut dup = set.clone();
    dup.policies.push(set.policies[0].clone());
    assert!(dup.check().is_err());
}

#[test]
fn intervention_names_match_their_serialisation() {
    for i in Intervention::ALL {
        assert_eq!(serde_json::to_value(i).unwrap(), i.as_str());
    }
}
