//! The internal event type.
//!
//! Both entry points of the server (xAPI statements and `POST /v1/events`) are parsed and
//! validated at the edge and mapped to a [`LearningEvent`]; nothing behind the edge sees a wire
//! type. Identities here are already the ones the server decided to keep (pseudonyms once the
//! privacy pipeline is in place).

use serde::{Deserialize, Serialize};

/// What the learner did with an item, as far as the learner model is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An answer judged correct.
    Correct,
    /// An answer judged incorrect.
    Incorrect,
    /// Activity without a judged answer (started, viewed, asked for a hint, completed without a
    /// success flag). It counts as time on task but not as an opportunity to show a skill.
    Unscored,
}

/// One learning event, whatever wire format it arrived in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearningEvent {
    /// The learner this event is about (the tenant-scoped learner key).
    pub learner: String,
    /// The class or group the learner was working in, when the platform says so.
    pub group: Option<String>,
    /// The platform's session (or xAPI registration) the event belongs to.
    pub session: Option<String>,
    /// The item (question, step, activity) the event is about.
    pub item: String,
    /// The skills (knowledge components) the item exercises. May be empty.
    pub skills: Vec<String>,
    pub outcome: Outcome,
    /// Time the learner took to respond, in milliseconds.
    pub response_time_ms: Option<u64>,
    /// Hints the learner used on this item before this event.
    pub hints_used: u32,
    /// Which attempt at the item this is (1 = first).
    pub attempt: u32,
    /// When it happened, in milliseconds since the Unix epoch, as the platform reported it.
    pub timestamp_ms: i64,
}

impl LearningEvent {
    /// A minimal scored answer; handy in tests and simulations.
    pub fn answer(
        learner: &str,
        item: &str,
        skill: &str,
        correct: bool,
        timestamp_ms: i64,
    ) -> Self {
        LearningEvent {
            learner: learner.to_owned(),
            group: None,
            session: None,
            item: item.to_owned(),
            skills: vec![skill.to_owned()],
            outcome: if correct {
                Outcome::Correct
            } else {
                Outcome::Incorrect
            },
            response_time_ms: None,
            hints_used: 0,
            attempt: 1,
            timestamp_ms,
        }
    }

    pub fn is_scored(&self) -> bool {
        self.outcome != Outcome::Unscored
    }
}
