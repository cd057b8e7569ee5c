//! What the engine predicts of a learner's next answer when a logistic model is fitted
//! (`kt fit --model logistic`): the [`Evidence`] the model reads, taken from the engine's
//! [`LearnerState`] exactly as `kt eval` takes it from its own history, so that the engine and
//! `kt eval` make the same prediction for the same history (a test replays a log through both).
//!
//! One difference is by design: an event with several skills counts once in the learner's
//! totals and recent answers, where an answer log lists it once per skill.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::LearnerState;
use crate::event::LearningEvent;
use crate::kt::logistic::{Evidence, NamedLogistic, with_outcome};

/// The part of a learner's record that only the logistic model reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecentAnswers {
    /// The latest outcomes, newest in bit 0 (1 = right), and how many (at most [`RECENT`](crate::kt::logistic::RECENT)).
    pub outcomes: u32,
    pub len: u32,
    /// The previous answer's (first) skill and whether it was right.
    pub previous: Option<(String, bool)>,
    /// Right and wrong answers per item; kept only when the model has item difficulties.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub items: BTreeMap<String, (u32, u32)>,
}

impl RecentAnswers {
    /// Folds in a scored answer.
    pub fn remember(
        &mut self,
        event: &LearningEvent,
        correct: bool,
        model: Option<&NamedLogistic>,
    ) {
        (self.outcomes, self.len) = with_outcome((self.outcomes, self.len), correct);
        if let Some(skill) = event.skills.last() {
            self.previous = Some((skill.clone(), correct));
        }
        if model.is_some_and(NamedLogistic::knows_items) {
            let entry = self.items.entry(event.item.clone()).or_default();
            if correct {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        }
    }
}

/// What `learner`'s record says before their next answer on `skill` (to `item`).
pub fn evidence(learner: Option<&LearnerState>, skill: &str, item: Option<&str>) -> Evidence {
    let Some(l) = learner else {
        return Evidence::default();
    };
    let on_skill = l.skills.get(skill).map_or((0, 0, 0), |s| {
        let last = if s.correct_streak > 0 {
            1
        } else if s.error_streak > 0 {
            -1
        } else {
            0
        };
        (s.correct, s.attempts - s.correct, last)
    });
    let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    Evidence {
        skill: on_skill,
        item: item
            .and_then(|i| l.recent.items.get(i))
            .copied()
            .unwrap_or((0, 0)),
        total: (count(l.correct), count(l.answers - l.correct)),
        previous: l.recent.previous.as_ref().map(|(s, ok)| (s == skill, *ok)),
        error_streak: l.error_streak,
        skill_gap: l
            .skills
            .get(skill)
            .map(|s| count(l.answers - s.answers_before_latest - 1)),
        recent: (l.recent.outcomes, l.recent.len),
    }
}
