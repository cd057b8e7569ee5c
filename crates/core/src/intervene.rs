//! Interventions: policies that turn a learner's state after an event into an action (a hint, a
//! worked example, a break, a teacher alert, ...), with priorities, cooldowns and a per-learner
//! rate limit. Pure like the rest of the core: time is the event's, so replaying the log gives
//! the same decisions.
//!
//! A [`PolicySet`] is data (serde: tenants write it in TOML). [`decide`] checks every policy's
//! conditions against the state, drops those in cooldown, and returns the highest-priority one
//! with the reasons it fired, or nothing when the learner has had enough interventions this hour.
//!
//! The built-in set follows the evidence in the product brief: wheel-spinning calls for a change
//! of strategy (a teacher, a prerequisite), not more of the same; rapid guessing for slowing down
//! with help on offer; overload for a worked example; fatigue for a break.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::engine::LearnerState;
use crate::event::{LearningEvent, Outcome};
use crate::load::{LoadLevel, LoadSignal};

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intervention {
    Hint,
    WorkedExample,
    EasierItem,
    PrerequisiteReview,
    BreakSuggestion,
    SlowDown,
    Encouragement,
    TeacherAlert,
    TutorHandoff,
}

impl Intervention {
    pub const ALL: [Intervention; 9] = [
        Intervention::Hint,
        Intervention::WorkedExample,
        Intervention::EasierItem,
        Intervention::PrerequisiteReview,
        Intervention::BreakSuggestion,
        Intervention::SlowDown,
        Intervention::Encouragement,
        Intervention::TeacherAlert,
        Intervention::TutorHandoff,
    ];

    /// The name used in JSON and TOML (`worked_example`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Intervention::Hint => "hint",
            Intervention::WorkedExample => "worked_example",
            Intervention::EasierItem => "easier_item",
            Intervention::PrerequisiteReview => "prerequisite_review",
            Intervention::BreakSuggestion => "break_suggestion",
            Intervention::SlowDown => "slow_down",
            Intervention::Encouragement => "encouragement",
            Intervention::TeacherAlert => "teacher_alert",
            Intervention::TutorHandoff => "tutor_handoff",
        }
    }
}

/// A condition on the learner's state after the event. All of a policy's conditions must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "if", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// The event's skill is wheel-spinning (ten opportunities without mastery).
    WheelSpinning,
    /// The early predictor says practice on the event's skill will end in wheel-spinning.
    WheelSpinRiskAtLeast {
        value: f64,
    },
    /// The answer was a rapid guess.
    RapidGuess,
    LoadAtLeast {
        level: LoadLevel,
    },
    /// One of the load signals contributed to the latest update.
    Signal {
        signal: LoadSignal,
    },
    ErrorStreakAtLeast {
        count: u32,
    },
    RiskAtLeast {
        value: f64,
    },
    /// The event's skill reached mastery with this very event.
    JustMastered,
    /// The answer was wrong.
    Incorrect,
}

/// One policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub id: String,
    pub when: Vec<Condition>,
    pub then: Intervention,
    /// Higher wins when several policies fire on one event.
    pub priority: u32,
    /// Seconds before this policy may fire again for the same learner.
    #[serde(default)]
    pub cooldown_secs: u64,
    /// What to tell the learner, teacher or tutor.
    pub message: String,
}

/// A tenant's policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySet {
    /// Most interventions one learner gets in any hour (0: no limit).
    pub max_per_learner_per_hour: u32,
    pub policies: Vec<Policy>,
}

impl Default for PolicySet {
    fn default() -> Self {
        use Condition::*;
        use Intervention::*;
        let policy =
            |id: &str, when: Vec<Condition>, then, priority, cooldown_secs, message: &str| Policy {
                id: id.into(),
                when,
                then,
                priority,
                cooldown_secs,
                message: message.into(),
            };
        PolicySet {
            max_per_learner_per_hour: 6,
            policies: vec![
                policy(
                    "wheel_spinning_teacher_alert",
                    vec![WheelSpinning],
                    TeacherAlert,
                    100,
                    1_800,
                    "Practice is not working on this skill: change the approach (a worked example, a prerequisite, a conversation) rather than more of the same.",
                ),
                policy(
                    "overload_worked_example",
                    vec![LoadAtLeast {
                        level: LoadLevel::Overloaded,
                    }],
                    WorkedExample,
                    90,
                    600,
                    "Show a worked example before the next problem.",
                ),
                policy(
                    "high_risk_tutor_handoff",
                    vec![RiskAtLeast { value: 0.8 }],
                    TutorHandoff,
                    85,
                    1_800,
                    "Hand over to a tutor: the learner is struggling on several counts.",
                ),
                policy(
                    "wheel_spin_risk_prerequisite",
                    vec![WheelSpinRiskAtLeast { value: 0.7 }],
                    PrerequisiteReview,
                    80,
                    900,
                    "Review the prerequisite before more practice on this skill.",
                ),
                policy(
                    "fatigue_break",
                    vec![Signal {
                        signal: LoadSignal::Fatigue,
                    }],
                    BreakSuggestion,
                    75,
                    1_800,
                    "Suggest a short break.",
                ),
                policy(
                    "rapid_guess_slow_down",
                    vec![RapidGuess],
                    SlowDown,
                    70,
                    300,
                    "That answer came too fast to be read: slow down, and ask for a hint if stuck.",
                ),
                policy(
                    "help_abuse_slow_down",
                    vec![Signal {
                        signal: LoadSignal::HelpAbuse,
                    }],
                    SlowDown,
                    65,
                    300,
                    "Read each hint before asking for the next.",
                ),
                policy(
                    "high_load_hint",
                    vec![
                        LoadAtLeast {
                            level: LoadLevel::High,
                        },
                        Incorrect,
                    ],
                    Hint,
                    60,
                    300,
                    "Offer a hint on the next step.",
                ),
                policy(
                    "error_streak_easier_item",
                    vec![ErrorStreakAtLeast { count: 3 }],
                    EasierItem,
                    50,
                    300,
                    "Step back to an easier item.",
                ),
                policy(
                    "mastery_encouragement",
                    vec![JustMastered],
                    Encouragement,
                    10,
                    0,
                    "Skill mastered: say so.",
                ),
            ],
        }
    }
}

impl PolicySet {
    /// Checks a set; an error names the policy and what is wrong.
    pub fn check(&self) -> Result<(), String> {
        let mut ids = std::collections::HashSet::new();
        for p in &self.policies {
            if p.id.is_empty() || !ids.insert(&p.id) {
                return Err(format!(
                    "policy ids must be unique and non-empty ({:?})",
                    p.id
                ));
            }
            if p.when.is_empty() {
                return Err(format!("policy {:?} has no condition", p.id));
            }
        }
        Ok(())
    }
}

/// What the engine remembers of one learner's interventions: when each policy last fired, and
/// the times of the last hour's interventions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    last_fired: HashMap<String, i64>,
    recent: VecDeque<i64>,
}

/// A decision: which policy fired, what to do, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub policy: String,
    pub intervention: Intervention,
    pub priority: u32,
    pub message: String,
    pub learner: String,
    /// The skill the decision is about, when the event had one.
    pub skill: Option<String>,
    /// The event's time.
    pub at_ms: i64,
    /// Why each condition held, in plain words.
    pub reasons: Vec<String>,
}

/// Whether `condition` holds, and why.
fn holds(condition: &Condition, state: &LearnerState, event: &LearningEvent) -> Option<String> {
    let skill = event
        .skills
        .first()
        .and_then(|s| state.skills.get(s).map(|st| (s, st)));
    let signal_present = |signal: LoadSignal| state.load.reasons.iter().any(|r| r.signal == signal);
    match condition {
        Condition::WheelSpinning => skill.filter(|(_, s)| s.wheel_spinning).map(|(name, s)| {
            format!(
                "wheel-spinning on {name}: {} opportunities without mastery",
                s.attempts
            )
        }),
        Condition::WheelSpinRiskAtLeast { value } => skill.and_then(|(name, s)| {
            s.wheel_spin_risk
                .filter(|r| r >= value && !s.mastered)
                .map(|r| format!("predicted wheel-spinning on {name}: {:.0} %", r * 100.0))
        }),
        Condition::RapidGuess => state
            .load
            .rapid_guess
            .then(|| "the answer was a rapid guess".to_owned()),
        Condition::LoadAtLeast { level } => (state.load.level >= *level).then(|| {
            let signals: Vec<String> = state
                .load
                .reasons
                .iter()
                .map(|r| format!("{:?}", r.signal))
                .collect();
            format!(
                "load {:?} ({:.2}): {}",
                state.load.level,
                state.load.index,
                signals.join(", ")
            )
        }),
        Condition::Signal { signal } => {
            signal_present(*signal).then(|| format!("load signal {signal:?}"))
        }
        Condition::ErrorStreakAtLeast { count } => (state.error_streak >= *count)
            .then(|| format!("{} wrong answers in a row", state.error_streak)),
        Condition::RiskAtLeast { value } => (state.risk.score >= *value).then(|| {
            format!(
                "risk {:.2}: {}",
                state.risk.score,
                state.risk.reasons.join("; ")
            )
        }),
        Condition::JustMastered => skill
            .filter(|(_, s)| s.mastered && s.mastered_after == Some(s.attempts))
            .map(|(name, s)| format!("{name} mastered after {} opportunities", s.attempts)),
        Condition::Incorrect => {
            (event.outcome == Outcome::Incorrect).then(|| "the answer was wrong".to_owned())
        }
    }
}

/// Decides on the intervention for `state` after `event`, if any, and remembers it.
pub fn decide(
    set: &PolicySet,
    state: &LearnerState,
    event: &LearningEvent,
    memory: &mut Memory,
) -> Option<Decision> {
    const HOUR_MS: i64 = 3_600_000;
    let now = event.timestamp_ms;
    while memory.recent.front().is_some_and(|t| *t <= now - HOUR_MS) {
        memory.recent.pop_front();
    }
    if set.max_per_learner_per_hour > 0
        && memory.recent.len() >= set.max_per_learner_per_hour as usize
    {
        return None;
    }
    let mut best: Option<(&Policy, Vec<String>)> = None;
    for policy in &set.policies {
        if best
            .as_ref()
            .is_some_and(|(b, _)| b.priority >= policy.priority)
        {
            continue;
        }
        let cooling = memory
            .last_fired
            .get(&policy.id)
            .is_some_and(|t| now - t < policy.cooldown_secs as i64 * 1_000);
        if cooling {
            continue;
        }
        let reasons: Option<Vec<String>> =
            policy.when.iter().map(|c| holds(c, state, event)).collect();
        if let Some(reasons) = reasons {
            best = Some((policy, reasons));
        }
    }
    let (policy, reasons) = best?;
    memory.last_fired.insert(policy.id.clone(), now);
    memory.recent.push_back(now);
    Some(Decision {
        policy: policy.id.clone(),
        intervention: policy.then,
        priority: policy.priority,
        message: policy.message.clone(),
        learner: state.learner.clone(),
        skill: event.skills.first().cloned(),
        at_ms: now,
        reasons,
    })
}

#[cfg(test)]
#[path = "intervene_tests.rs"]
mod tests;
