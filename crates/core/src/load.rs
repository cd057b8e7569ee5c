//! The cognitive-load index.
//!
//! Cognitive load cannot be observed directly; what a tutoring platform sees are its traces:
//! answers that take much longer than this learner usually needs, runs of errors, hints, and
//! answers given too fast to have been read (rapid guesses, a sign of disengagement rather than
//! effort). Each trace is a [`LoadReason`] with its weight and contribution, so that a teacher can
//! read *why* a learner is flagged. The weights ([`LoadWeights`]) are fitted to what learners
//! did next (`crate::kt::load_fit`); the hand-set first weights, which followed the published
//! effects, are kept for comparison ([`LoadWeights::hand_set`]).

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

/// The signals in the order of [`Strengths`] and [`LoadWeights::as_array`].
pub const SIGNALS: [LoadSignal; 8] = [
    LoadSignal::SlowResponse,
    LoadSignal::ErrorStreak,
    LoadSignal::Hints,
    LoadSignal::RapidGuess,
    LoadSignal::Revisit,
    LoadSignal::HelpAbuse,
    LoadSignal::Idle,
    LoadSignal::Fatigue,
];

/// How strongly each signal is present in one observation, in [0, 1], in [`SIGNALS`] order.
pub type Strengths = [f64; 8];

/// Each signal's weight in the index. The defaults were fitted on answer logs (`learnpulse kt
/// load-fit`, see the README's load-index section): a non-negative logistic regression of "the
/// learner struggles next" (the next answer is wrong, or they quit the skill unmastered) on the
/// signals' strengths, scaled so that the weights add up to what the hand-set ones did. Signals the
/// logs cannot show (idle time, fatigue: they need clock times) keep their hand-set weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoadWeights {
    pub slow_response: f64,
    pub error_streak: f64,
    pub hints: f64,
    pub rapid_guess: f64,
    pub revisit: f64,
    pub help_abuse: f64,
    pub idle: f64,
    pub fatigue: f64,
}

impl Default for LoadWeights {
    /// Fitted on 80 % of the learners of ASSISTments 2009's `supersmall_with_timing.csv`
    /// (`scripts/load-fit.sh`; the README gives the figures on the other 20 %).
    fn default() -> Self {
        LoadWeights {
            slow_response: 0.140,
            error_streak: 0.857,
            hints: 0.231,
            rapid_guess: 0.0,
            revisit: 0.0,
            help_abuse: 0.071,
            idle: 0.05,
            fatigue: 0.10,
        }
    }
}

impl LoadWeights {
    /// The first weights, set by hand from the published effects.
    pub const fn hand_set() -> Self {
        LoadWeights {
            slow_response: 0.35,
            error_streak: 0.40,
            hints: 0.15,
            rapid_guess: 0.10,
            revisit: 0.15,
            help_abuse: 0.15,
            idle: 0.05,
            fatigue: 0.10,
        }
    }

    /// The weights in [`SIGNALS`] order.
    pub fn as_array(&self) -> [f64; 8] {
        [
            self.slow_response,
            self.error_streak,
            self.hints,
            self.rapid_guess,
            self.revisit,
            self.help_abuse,
            self.idle,
            self.fatigue,
        ]
    }

    pub fn from_array(w: [f64; 8]) -> Self {
        LoadWeights {
            slow_response: w[0],
            error_streak: w[1],
            hints: w[2],
            rapid_guess: w[3],
            revisit: w[4],
            help_abuse: w[5],
            idle: w[6],
            fatigue: w[7],
        }
    }

    /// One observation's load: `Σ weight × strength`, capped at 1.
    pub fn instantaneous(&self, strengths: &Strengths) -> f64 {
        self.as_array()
            .iter()
            .zip(strengths)
            .map(|(w, s)| w * s)
            .sum::<f64>()
            .min(1.0)
    }
}

/// Minutes in one sitting before fatigue starts to count, and over which it grows to full weight.
const FATIGUE_AFTER_MIN: f64 = 40.0;
/// Weight of the newest observation in the smoothed index (an exponential moving average), so
/// that one slow answer does not flip the level but three in a row do.
const SMOOTHING: f64 = 0.5;

/// The smoothed index after an observation whose own load is `instantaneous`.
pub fn smoothed(previous: f64, instantaneous: f64) -> f64 {
    (1.0 - SMOOTHING) * previous + SMOOTHING * instantaneous
}

impl LoadObservation {
    /// How strongly each signal is present, in [0, 1].
    pub fn strengths(&self) -> Strengths {
        let mut s = [0.0; 8];
        if let Some(z) = self.response_time_z.filter(|z| *z > 0.5) {
            s[0] = z.min(3.0) / 3.0;
        }
        s[1] = f64::from(self.error_streak.min(5)) / 5.0;
        s[2] = f64::from(self.hints_used.min(3)) / 3.0;
        s[3] = f64::from(u8::from(self.rapid_guess));
        if self.attempt >= 2 {
            s[4] = f64::from((self.attempt - 1).min(3)) / 3.0;
        }
        s[5] = f64::from(u8::from(self.help_abuse));
        s[6] = f64::from(u8::from(self.idle_minutes.is_some()));
        if self.session_minutes > FATIGUE_AFTER_MIN {
            s[7] = ((self.session_minutes - FATIGUE_AFTER_MIN) / FATIGUE_AFTER_MIN).min(1.0);
        }
        s
    }

    /// The raw value of a signal and the sentence a teacher reads.
    fn describe(&self, signal: LoadSignal) -> (f64, String) {
        match signal {
            LoadSignal::SlowResponse => {
                let z = self.response_time_z.unwrap_or_default();
                let text = format!(
                    "answered {z:.1} standard deviations slower than usual for this learner and item"
                );
                (z, text)
            }
            LoadSignal::ErrorStreak => {
                let n = self.error_streak;
                (f64::from(n), format!("{n} wrong answer(s) in a row"))
            }
            LoadSignal::Hints => {
                let n = self.hints_used;
                (f64::from(n), format!("needed {n} hint(s) on this item"))
            }
            LoadSignal::RapidGuess => (
                1.0,
                "answered too fast to have read the item (a rapid guess)".to_owned(),
            ),
            LoadSignal::Revisit => {
                let n = self.attempt;
                (f64::from(n), format!("attempt {n} at the same item"))
            }
            LoadSignal::HelpAbuse => (
                1.0,
                "went through hints faster than they can be read".to_owned(),
            ),
            LoadSignal::Idle => {
                let minutes = self.idle_minutes.unwrap_or_default();
                (
                    minutes,
                    format!("came back after {minutes:.0} idle minutes"),
                )
            }
            LoadSignal::Fatigue => {
                let minutes = self.session_minutes;
                let text = format!("has been working for {minutes:.0} minutes without a break");
                (minutes, text)
            }
        }
    }
}

impl LoadState {
    /// Fold one observation into the load state. Pure: the same observations in the same order
    /// always give the same state. A signal present with no weight is still a reason (with no
    /// contribution): the teacher sees it, and policies on it still fire.
    pub fn observe(&mut self, weights: &LoadWeights, obs: &LoadObservation) {
        let strengths = obs.strengths();
        let mut reasons: Vec<LoadReason> = SIGNALS
            .iter()
            .zip(strengths)
            .zip(weights.as_array())
            .filter(|((_, strength), _)| *strength > 0.0)
            .map(|((signal, strength), weight)| {
                let (value, explanation) = obs.describe(*signal);
                LoadReason {
                    signal: *signal,
                    value,
                    weight,
                    contribution: weight * strength,
                    explanation,
                }
            })
            .collect();
        reasons.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
        self.index = smoothed(self.index, weights.instantaneous(&strengths));
        self.level = LoadLevel::from_index(self.index);
        self.reasons = reasons;
        self.rapid_guess = obs.rapid_guess;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w() -> LoadWeights {
        LoadWeights::default()
    }

    #[test]
    fn calm_answers_keep_load_low() {
        let mut s = LoadState::default();
        for _ in 0..5 {
            s.observe(
                &w(),
                &LoadObservation {
                    response_time_z: Some(0.0),
                    ..Default::default()
                },
            );
        }
        assert_eq!(s.level, LoadLevel::Low);
        assert!(s.reasons.is_empty());
    }

    #[test]
    fn slow_errors_with_hints_overload_and_say_why() {
        let mut s = LoadState::default();
        for streak in 1..=5 {
            s.observe(
                &w(),
                &LoadObservation {
                    response_time_z: Some(2.5),
                    error_streak: streak,
                    hints_used: 2,
                    ..Default::default()
                },
            );
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
        s.observe(
            &w(),
            &LoadObservation {
                attempt: 3,
                help_abuse: true,
                idle_minutes: Some(12.0),
                session_minutes: 70.0,
                ..Default::default()
            },
        );
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
        s.observe(
            &w(),
            &LoadObservation {
                response_time_z: Some(3.0),
                ..Default::default()
            },
        );
        assert!(s.level < LoadLevel::High);
    }
}
