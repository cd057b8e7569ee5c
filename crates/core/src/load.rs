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
    /// Another attempt at an item already tried.
    Revisit,
    /// Hints taken faster than they can be read (Aleven's help abuse).
    HelpAbuse,
    /// Back after a long pause (off-task time).
    Idle,
    /// Long time on task in one sitting.
    Fatigue,
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
    /// z-score of ln(response time) against the learner's own baseline and the item's norm
    /// (their mean when both are known), when there is one.
    pub response_time_z: Option<f64>,
    /// Consecutive incorrect answers up to and including this event.
    pub error_streak: u32,
    /// Hints used on this item.
    pub hints_used: u32,
    /// The answer came faster than the item's NT10 threshold.
    pub rapid_guess: bool,
    /// Which attempt at the item this is (1 = first).
    pub attempt: u32,
    /// Hints were used and the answer still came in under half the item's usual time.
    pub help_abuse: bool,
    /// Minutes since the learner's previous event, when it was a long pause (5 to 30 minutes).
    pub idle_minutes: Option<f64>,
    /// Minutes since the current sitting began (a pause over 30 minutes starts a new one).
    pub session_minutes: f64,
}

const W_SLOW: f64 = 0.35;
const W_STREAK: f64 = 0.40;
const W_HINTS: f64 = 0.15;
const W_RAPID: f64 = 0.10;
const W_REVISIT: f64 = 0.15;
const W_HELP_ABUSE: f64 = 0.15;
const W_IDLE: f64 = 0.05;
const W_FATIGUE: f64 = 0.10;
/// Minutes in one sitting before fatigue starts to count, and over which it grows to full weight.
const FATIGUE_AFTER_MIN: f64 = 40.0;
/// Weight of the newest observation in the smoothed index (an exponential moving average), so
/// that one slow answer does not flip the level but three in a row do.
const SMOOTHING: f64 = 0.5;

impl LoadState {
    /// Fold one observation into the load state. Pure: the same observations in the same order
    /// always give the same state.
    pub fn observe(&mut self, obs: &LoadObservation) {
        let mut reasons = Vec::new();
        // One reason: the signal, its raw value, its weight, how strongly it is present (0..1)
        // and the sentence a teacher reads.
        let mut reason = |signal, value: f64, weight: f64, normalised: f64, explanation: String| {
            reasons.push(LoadReason {
                signal,
                value,
                weight,
                contribution: weight * normalised,
                explanation,
            });
        };
        if let Some(z) = obs.response_time_z.filter(|z| *z > 0.5) {
            let text = format!(
                "answered {z:.1} standard deviations slower than usual for this learner and item"
            );
            reason(LoadSignal::SlowResponse, z, W_SLOW, z.min(3.0) / 3.0, text);
        }
        if obs.error_streak > 0 {
            let n = obs.error_streak;
            reason(
                LoadSignal::ErrorStreak,
                f64::from(n),
                W_STREAK,
                f64::from(n.min(5)) / 5.0,
                format!("{n} wrong answer(s) in a row"),
            );
        }
        if obs.hints_used > 0 {
            let n = obs.hints_used;
            reason(
                LoadSignal::Hints,
                f64::from(n),
                W_HINTS,
                f64::from(n.min(3)) / 3.0,
                format!("needed {n} hint(s) on this item"),
            );
        }
        if obs.rapid_guess {
            let text = "answered too fast to have read the item (a rapid guess)".to_owned();
            reason(LoadSignal::RapidGuess, 1.0, W_RAPID, 1.0, text);
        }
        if obs.attempt >= 2 {
            let n = obs.attempt;
            let strength = f64::from((n - 1).min(3)) / 3.0;
            reason(
                LoadSignal::Revisit,
                f64::from(n),
                W_REVISIT,
                strength,
                format!("attempt {n} at the same item"),
            );
        }
        if obs.help_abuse {
            let text = "went through hints faster than they can be read".to_owned();
            reason(LoadSignal::HelpAbuse, 1.0, W_HELP_ABUSE, 1.0, text);
        }
        if let Some(minutes) = obs.idle_minutes {
            reason(
                LoadSignal::Idle,
                minutes,
                W_IDLE,
                1.0,
                format!("came back after {minutes:.0} idle minutes"),
            );
        }
        if obs.session_minutes > FATIGUE_AFTER_MIN {
            let minutes = obs.session_minutes;
            let strength = ((minutes - FATIGUE_AFTER_MIN) / FATIGUE_AFTER_MIN).min(1.0);
            let text = format!("has been working for {minutes:.0} minutes without a break");
            reason(LoadSignal::Fatigue, minutes, W_FATIGUE, strength, text);
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
                ..Default::default()
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
    fn revisits_help_abuse_idle_time_and_fatigue_are_reasons() {
        let mut s = LoadState::default();
        s.observe(&LoadObservation {
            attempt: 3,
            help_abuse: true,
            idle_minutes: Some(12.0),
            session_minutes: 70.0,
            ..Default::default()
        });
        let signals: Vec<LoadSignal> = s.reasons.iter().map(|r| r.signal).collect();
        for expected in [
            LoadSignal::Revisit,
            LoadSignal::HelpAbuse,
            LoadSignal::Idle,
            LoadSignal::Fatigue,
        ] {
            assert!(
                signals.contains(&expected),
                "{expected:?} missing from {signals:?}"
            );
        }
        assert!(
            s.reasons
                .iter()
                .any(|r| r.explanation.contains("70 minutes"))
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
