//! Did an intervention help? Each decision is followed up over the learner's next
//! [`FOLLOW_UP_ANSWERS`] scored answers: how their accuracy compares with their accuracy before,
//! whether their load fell, or whether they quit (no event for [`QUIT_GAP_MS`]). Tallies per
//! policy give [`Effectiveness`] with 95 % confidence intervals, so that a tenant can see which
//! policies help. Pure: time comes from events.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::engine::LearnerState;
use crate::event::{LearningEvent, Outcome};
use crate::intervene::Decision;

/// Scored answers a follow-up waits for.
pub const FOLLOW_UP_ANSWERS: u32 = 5;
/// A pause this long after an intervention counts as quitting.
pub const QUIT_GAP_MS: i64 = 30 * 60_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FollowUp {
    policy: String,
    accuracy_before: f64,
    load_before: f64,
    last_seen_ms: i64,
    answers: u32,
    correct: u32,
    load_after: f64,
}

/// Sums per policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Tally {
    resolved: u64,
    /// Follow-ups that saw their answers (not quits): accuracy change sums.
    answered: u64,
    sum_change: f64,
    sum_change_sq: f64,
    load_fell: u64,
    quit: u64,
}

/// The follow-ups in progress and the tallies of one tenant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcomes {
    pending: HashMap<String, Vec<FollowUp>>,
    tallies: HashMap<String, Tally>,
}

/// A share with its 95 % Wilson interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Share {
    pub share: f64,
    pub ci95: [f64; 2],
}

/// A mean with its 95 % normal-approximation interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Mean {
    pub mean: f64,
    pub ci95: [f64; 2],
}

/// How one policy has done.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effectiveness {
    pub policy: String,
    /// Follow-ups complete.
    pub followed_up: u64,
    /// Follow-ups still waiting for answers.
    pub pending: u64,
    /// Accuracy over the next answers minus accuracy before (learners who went on).
    pub accuracy_change: Option<Mean>,
    /// Share of learners who went on whose load index fell.
    pub load_fell: Option<Share>,
    /// Share of all followed-up learners who quit.
    pub quit: Option<Share>,
}

/// How a tutor (human or AI) judged an action it took for a learner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TutorOutcome {
    Helped,
    NotHelped,
    Unknown,
}

impl TutorOutcome {
    pub fn parse(text: &str) -> Option<TutorOutcome> {
        match text {
            "helped" => Some(TutorOutcome::Helped),
            "not_helped" => Some(TutorOutcome::NotHelped),
            "unknown" => Some(TutorOutcome::Unknown),
            _ => None,
        }
    }
}

/// What tutors reported doing, per action, and how they judged it: the tutors' side of
/// effectiveness, beside the follow-ups the data gives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TutorReports {
    /// helped, not helped, unknown
    by_action: BTreeMap<String, [u64; 3]>,
}

/// One action's tutor reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TutorReportSummary {
    pub action: String,
    pub reports: u64,
    pub helped: u64,
    pub not_helped: u64,
    pub unknown: u64,
    /// Share judged helpful among the reports that judged (95 % Wilson interval).
    pub helped_share: Option<Share>,
}

impl TutorReports {
    pub fn record(&mut self, action: &str, outcome: TutorOutcome) {
        let counts = self.by_action.entry(action.to_owned()).or_default();
        counts[match outcome {
            TutorOutcome::Helped => 0,
            TutorOutcome::NotHelped => 1,
            TutorOutcome::Unknown => 2,
        }] += 1;
    }

    pub fn summary(&self) -> Vec<TutorReportSummary> {
        self.by_action
            .iter()
            .map(
                |(action, [helped, not_helped, unknown])| TutorReportSummary {
                    action: action.clone(),
                    reports: helped + not_helped + unknown,
                    helped: *helped,
                    not_helped: *not_helped,
                    unknown: *unknown,
                    helped_share: wilson(*helped, helped + not_helped),
                },
            )
            .collect()
    }
}

fn wilson(successes: u64, n: u64) -> Option<Share> {
    if n == 0 {
        return None;
    }
    let (n, p, z) = (n as f64, successes as f64 / n as f64, 1.96f64);
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
    Some(Share {
        share: p,
        ci95: [(centre - half).max(0.0), (centre + half).min(1.0)],
    })
}

impl Outcomes {
    /// Drops a learner's follow-ups in progress (erasure); the tallies are anonymous sums.
    pub fn forget(&mut self, learner: &str) {
        self.pending.remove(learner);
    }

    /// Starts following up a decision, with the learner's state when it was made.
    pub fn start(&mut self, decision: &Decision, state: &LearnerState) {
        let accuracy_before = if state.answers == 0 {
            0.0
        } else {
            state.correct as f64 / state.answers as f64
        };
        self.pending
            .entry(decision.learner.clone())
            .or_default()
            .push(FollowUp {
                policy: decision.policy.clone(),
                accuracy_before,
                load_before: state.load.index,
                last_seen_ms: decision.at_ms,
                answers: 0,
                correct: 0,
                load_after: state.load.index,
            });
    }

    /// Counts an event of a learner (after the engine has applied it) towards their open
    /// follow-ups, and closes those it completes. Call it before deciding on the same event.
    pub fn observe(&mut self, event: &LearningEvent, state: &LearnerState) {
        let Some(open) = self.pending.get_mut(&event.learner) else {
            return;
        };
        let mut done = Vec::new();
        open.retain_mut(|f| {
            if event.timestamp_ms - f.last_seen_ms >= QUIT_GAP_MS {
                done.push((f.clone(), true));
                return false;
            }
            f.last_seen_ms = event.timestamp_ms;
            if event.is_scored() {
                f.answers += 1;
                f.correct += u32::from(event.outcome == Outcome::Correct);
                f.load_after = state.load.index;
            }
            if f.answers >= FOLLOW_UP_ANSWERS {
                done.push((f.clone(), false));
                return false;
            }
            true
        });
        if open.is_empty() {
            self.pending.remove(&event.learner);
        }
        for (f, quit) in done {
            let t = self.tallies.entry(f.policy.clone()).or_default();
            t.resolved += 1;
            if quit {
                t.quit += 1;
            } else {
                let change = f.correct as f64 / f.answers as f64 - f.accuracy_before;
                t.answered += 1;
                t.sum_change += change;
                t.sum_change_sq += change * change;
                t.load_fell += u64::from(f.load_after < f.load_before);
            }
        }
    }

    /// Effectiveness of every policy that has fired, by policy id.
    pub fn effectiveness(&self) -> Vec<Effectiveness> {
        let mut pending: HashMap<&str, u64> = HashMap::new();
        for f in self.pending.values().flatten() {
            *pending.entry(f.policy.as_str()).or_default() += 1;
        }
        let mut policies: Vec<&str> = self
            .tallies
            .keys()
            .map(String::as_str)
            .chain(pending.keys().copied())
            .collect();
        policies.sort_unstable();
        policies.dedup();
        policies
            .into_iter()
            .map(|p| {
                let t = self.tallies.get(p).cloned().unwrap_or_default();
                let accuracy_change = (t.answered > 0).then(|| {
                    let n = t.answered as f64;
                    let mean = t.sum_change / n;
                    let var = if t.answered > 1 {
                        ((t.sum_change_sq - n * mean * mean) / (n - 1.0)).max(0.0)
                    } else {
                        0.0
                    };
                    let half = 1.96 * (var / n).sqrt();
                    Mean {
                        mean,
                        ci95: [mean - half, mean + half],
                    }
                });
                Effectiveness {
                    policy: p.to_owned(),
                    followed_up: t.resolved,
                    pending: pending.get(p).copied().unwrap_or(0),
                    accuracy_change,
                    load_fell: wilson(t.load_fell, t.answered),
                    quit: wilson(t.quit, t.resolved),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, EngineParams};
    use crate::intervene::{Memory, PolicySet, decide};

    const MINUTE: i64 = 60_000;

    fn answer(learner: &str, correct: bool, t: i64) -> LearningEvent {
        LearningEvent {
            response_time_ms: Some(9_000),
            ..LearningEvent::answer(learner, &format!("q{t}"), "fractions", correct, t)
        }
    }

    /// The hub's order: apply, observe, decide, start.
    fn run(events: &[LearningEvent]) -> Outcomes {
        let mut engine = Engine::new(EngineParams::default());
        let (set, mut memories, mut outcomes) = (
            PolicySet::default(),
            HashMap::<String, Memory>::new(),
            Outcomes::default(),
        );
        for e in events {
            let state = engine.apply(e).clone();
            outcomes.observe(e, &state);
            let memory = memories.entry(e.learner.clone()).or_default();
            if let Some(d) = decide(&set, &state, e, memory) {
                outcomes.start(&d, &state);
            }
        }
        outcomes
    }

    #[test]
    fn follow_ups_measure_improvement_and_quitting() {
        let mut events = Vec::new();
        // Ada: three wrong (an easier item fires), then five right.
        for i in 0..3 {
            events.push(answer("ada", false, i * MINUTE));
        }
        for i in 3..8 {
            events.push(answer("ada", true, i * MINUTE));
        }
        // Bo: three wrong, then nothing for an hour: quit.
        for i in 0..3 {
            events.push(answer("bo", false, i * MINUTE));
        }
        events.push(answer("bo", false, 90 * MINUTE));
        events.sort_by_key(|e| e.timestamp_ms);
        let report = run(&events).effectiveness();
        let easier = report
            .iter()
            .find(|r| r.policy == "error_streak_easier_item")
            .unwrap();
        assert_eq!(easier.followed_up, 2);
        let change = easier.accuracy_change.unwrap();
        assert!(
            (change.mean - 1.0).abs() < 1e-9,
            "0 % before, 100 % after: {change:?}"
        );
        let quit = easier.quit.unwrap();
        assert_eq!(quit.share, 0.5);
        assert!(quit.ci95[0] < 0.5 && quit.ci95[1] > 0.5);
    }

    #[test]
    fn tutor_reports_tally_per_action_and_judge_only_the_judged() {
        let mut reports = TutorReports::default();
        for outcome in ["helped", "helped", "not_helped", "unknown"] {
            reports.record("hint", TutorOutcome::parse(outcome).unwrap());
        }
        reports.record("worked_example", TutorOutcome::Unknown);
        let summary = reports.summary();
        assert_eq!(summary.len(), 2);
        let hint = &summary[0];
        assert_eq!((hint.reports, hint.helped, hint.unknown), (4, 2, 1));
        let share = hint.helped_share.unwrap();
        assert!(
            (share.share - 2.0 / 3.0).abs() < 1e-12,
            "unknown is not judged"
        );
        assert_eq!(summary[1].helped_share, None);
        assert_eq!(TutorOutcome::parse("maybe"), None);
    }

    #[test]
    fn wilson_intervals_are_sane() {
        let s = wilson(0, 10).unwrap();
        assert_eq!(s.ci95[0], 0.0);
        assert!(s.ci95[1] > 0.2 && s.ci95[1] < 0.35);
        let s = wilson(50, 100).unwrap();
        assert!((s.ci95[0] - 0.404).abs() < 0.01 && (s.ci95[1] - 0.596).abs() < 0.01);
        assert!(wilson(0, 0).is_none());
    }
}
