//! Risk of struggle: one number a teacher can sort a class by, with the reasons behind it.
//!
//! The score combines independent signs of trouble on the skill the learner is working on, as
//! the probability that at least one of them is real: 1 - Π (1 - contribution). Each contribution
//! is bounded, so no single sign can claim certainty on its own.

use serde::{Deserialize, Serialize};

use crate::engine::SkillState;
use crate::load::LoadState;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Risk {
    /// 0 (no sign of trouble) to 1.
    pub score: f64,
    /// The signs behind the score, strongest first, in plain words.
    pub reasons: Vec<String>,
}

impl Risk {
    /// Assesses risk from the learner's load and their state on the current skill.
    pub fn assess(load: &LoadState, current: Option<(&str, &SkillState)>) -> Risk {
        let mut signs: Vec<(f64, String)> = Vec::new();
        if let Some((name, skill)) = current {
            if skill.wheel_spinning {
                signs.push((
                    0.6,
                    format!(
                        "has practised {name} {} times without mastering it (wheel-spinning)",
                        skill.attempts
                    ),
                ));
            }
            if skill.attempts >= 3 && skill.p_correct_next < 0.5 {
                signs.push((
                    0.8 * (0.5 - skill.p_correct_next),
                    format!(
                        "is likely to get the next {name} item wrong (P(correct) {:.0} %)",
                        skill.p_correct_next * 100.0
                    ),
                ));
            }
        }
        if load.index >= 0.4 {
            signs.push((
                0.6 * load.index,
                format!("shows {:?} cognitive load", load.level).to_lowercase(),
            ));
        }
        if load.rapid_guess {
            signs.push((0.2, "answered too fast to have read the item".to_owned()));
        }
        signs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let score = 1.0 - signs.iter().map(|(c, _)| 1.0 - c).product::<f64>();
        Risk {
            score,
            reasons: signs.into_iter().map(|(_, r)| r).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::LoadLevel;

    fn skill(attempts: u32, p: f64, wheel_spinning: bool) -> SkillState {
        SkillState {
            attempts,
            correct: 0,
            log_odds_known: 0.0,
            mastery: 0.3,
            p_correct_next: p,
            mastered: false,
            mastered_after: None,
            wheel_spinning,
            wheel_spin_risk: None,
            correct_streak: 0,
            error_streak: 0,
            answers_before_latest: 0,
        }
    }

    #[test]
    fn no_signs_no_risk() {
        let r = Risk::assess(
            &LoadState::default(),
            Some(("fractions", &skill(2, 0.8, false))),
        );
        assert_eq!(r.score, 0.0);
        assert!(r.reasons.is_empty());
    }

    #[test]
    fn wheel_spinning_under_load_is_high_risk_and_says_why() {
        let load = LoadState {
            index: 0.7,
            level: LoadLevel::Overloaded,
            reasons: vec![],
            rapid_guess: false,
        };
        let r = Risk::assess(&load, Some(("fractions", &skill(12, 0.3, true))));
        assert!(r.score > 0.75, "{r:?}");
        assert!(r.reasons[0].contains("wheel-spinning"));
        assert_eq!(r.reasons.len(), 3);
    }
}
