//! The first cognitive-load signal.
//!
//! Cognitive load cannot be observed directly; what a tutoring platform sees are its traces:
//! answers that take much longer than this learner usually needs, runs of errors, hints, and
//! answers given too fast to have been read (rapid guesses, a sign of disengagement rather than
//! effort). Each trace is a [`LoadReason`] with its weight and contribution, so that a teacher can
//! read *why* a learner is flagged. The knowledge-tracing issue grounds the weights in data; these
//! first weights follow the published effects: on ASSISTments 2009 P(correct) falls from 0.80
//! after a correct answer to 0.60, 0.49, 0.39, 0.30, 0.24 after 1-5 consecutive errors.

use serde::{Deserialize, Serialize};

/// Coarse level of the load index, in words a teacher uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadLevel {
    /// The work asks little of the learner.
    Low,
    /// The learner is working hard and coping: the zone where learning happens.
    Productive,
    /// Signs of strain: slow answers, errors or hints piling up.
    High,
    /// Several strong signs at once: the learner is likely stuck or overwhelmed.
    Overloaded,
}

impl LoadLevel {
    pub fn from_index(index: f64) -> Self {
        match index {
            i if i < 0.15 => LoadLevel::Low,
            i if i < 0.40 => LoadLevel::Productive,
            i if i < 0.65 => LoadLevel::High,
            _ => LoadLevel::Overloaded,
        }
    }
}

/// The signals the load index is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadSignal {
    SlowResponse,
    ErrorStreak,
    Hints,
    RapidGuess,
}

/// One contributing signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReason {
    pub signal: LoadSignal,
    /// The raw value of the signal (a z-score, a count, ...).
    pub value: f64,
    /// The signal's weight in the index.
    pub weight: f64,
    /// What it added to the instantaneous index (`weight * normalised value`).
    pub contribution: f64,
    /// The reason in plain words.
    pub explanation: String,
}

/// The load part of a learner's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadState {
    /// Smoothed load index in [0, 1].
    pub index: f64,
    pub level: LoadLevel,
    /// The signals behind the latest update, strongest first. Empty when nothing contributes.
    pub reasons: Vec<LoadReason>,
    /// Whether the latest answer was a rapid guess (NT10, Wise & Ma 2012).
    pub rapid_guess: bool,
}

impl Default for LoadState {
    fn default() -> Self {
        LoadState {
            index: 0.0,
            level: LoadLevel::Low,
            reasons: Vec::new(),
            rapid_guess: false,
        }
    }
}

/// What the load model sees of one event, already put against the learner's and item's norms.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadObservation {
    /// z-score of ln(response time) against the learner's own baseline, when there is one.
    pub response_time_z: Option<f64>,
    /// Consecutive incorrect answers up to and including this event.
    pub error_streak: u32,
    /// Hints used on this item.
    pub hints_used: u32,
    /// The answer came faster than the item's NT10 threshold.
    pub rapid_guess: bool,
}

const W_SLOW: f64 = 0.35;
const W_STREAK: f64 = 0.40;
const W_HINTS: f64 = 0.15;
const W_RAPID: f64 = 0.10;
/// Weight of the newest observation in the smoothed index (an exponential moving average), so
/// that one slow answer does not flip the level but three in a row do.
const SMOOTHING: f64 = 0.5;

impl LoadState {
    /// Fold one observation into the load state. Pure: the same observations in the same order
    /// always give the same state.
    pub fn observe(&mut self, obs: &LoadObservation) {
        let mut reasons = Vec::new();
        if let Some(z) = obs.response_time_z.filter(|z| *z > 0.5) {
            let normalised = (z.min(3.0)) / 3.0;
            reasons.push(LoadReason {
                signal: LoadSignal::SlowResponse,
                value: z,
                weight: W_SLOW,
                contribution: W_SLOW * normalised,
                explanation: format!(
                    "answered {:.1} standard deviations slower than this learner usually does",
                    z
                ),
            });
        }
        if obs.error_streak > 0 {
            let normalised = f64::from(obs.error_streak.min(5)) / 5.0;
            reasons.push(LoadReason {
                signal: LoadSignal::ErrorStreak,
                value: f64::from(obs.error_streak),
                weight: W_STREAK,
                contribution: W_STREAK * normalised,
                explanation: format!("{} wrong answer(s) in a row", obs.error_streak),
            });
        }
        if obs.hints_used > 0 {
            let normalised = f64::from(obs.hints_used.min(3)) / 3.0;
            reasons.push(LoadReason {
                signal: LoadSignal::Hints,
                value: f64::from(obs.hints_used),
                weight: W_HINTS,
                contribution: W_HINTS * normalised,
                explanation: format!("needed {} hint(s) on this item", obs.hints_used),
            });
        }
        if obs.rapid_guess {
            reasons.push(LoadReason {
                signal: LoadSignal::RapidGuess,
                value: 1.0,
                weight: W_RAPID,
                contribution: W_RAPID,
                explanation: "answered too fast to have read the item (a rapid guess)".to_owned(),
            });
        }
        let instantaneous: f64 = reasons.iter().map(|r| r.contribution).sum::<f64>().min(1.0);
        reasons.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
        self.index = (1.0 - SMOOTHING) * self.index + SMOOTHING * instantaneous;
        self.level = LoadLevel::from_index(self.index);
        self.reasons = reasons;
        self.rapid_guess = obs.rapid_guess;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calm_answers_keep_load_low() {
        let mut s = LoadState::default();
        for _ in 0..5 {
            s.observe(&LoadObservation {
                response_time_z: Some(0.0),
                ..Default::default()
            });
        }
        assert_eq!(s.level, LoadLevel::Low);
        assert!(s.reasons.is_empty());
    }

    #[test]
    fn slow_errors_with_hints_overload_and_say_why() {
        let mut s = LoadState::default();
        for streak in 1..=5 {
            s.observe(&LoadObservation {
                response_time_z: Some(2.5),
                error_streak: streak,
                hints_used: 2,
                rapid_guess: false,
            });
        }
        assert_eq!(s.level, LoadLevel::Overloaded);
        assert_eq!(s.reasons[0].signal, LoadSignal::ErrorStreak);
        assert!(
            s.reasons
                .iter()
                .any(|r| r.signal == LoadSignal::SlowResponse)
        );
    }

    #[test]
    fn one_slow_answer_does_not_flip_to_overloaded() {
        let mut s = LoadState::default();
        s.observe(&LoadObservation {
            response_time_z: Some(3.0),
            ..Default::default()
        });
        assert!(s.level < LoadLevel::High);
    }
}
