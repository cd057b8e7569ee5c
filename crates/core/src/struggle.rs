//! Wheel-spinning (Beck & Gong 2013): practising a skill without mastering it. A learner is
//! wheel-spinning on a skill after ten opportunities without mastery, where mastery is three
//! correct answers in a row (the ASSISTments criterion the definition was made with) or a BKT
//! P(known) of at least 0.95. [`WheelSpinModel`] predicts it early, from the first few
//! opportunities, so that help can come before the ten are spent.

use serde::{Deserialize, Serialize};

/// Consecutive correct answers that count as mastery.
pub const MASTERY_STREAK: u32 = 3;
/// Opportunities without mastery after which a learner is wheel-spinning.
pub const WHEEL_SPIN_OPPORTUNITIES: u32 = 10;

/// What the predictor sees of a learner's practice on one skill.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Practice {
    pub attempts: u32,
    pub correct: u32,
    pub correct_streak: u32,
    pub error_streak: u32,
}

/// Number of features of [`WheelSpinModel::features`].
pub const FEATURES: usize = 7;

/// Logistic regression on the practice so far; weights fitted by `learnpulse kt fit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WheelSpinModel {
    pub weights: Vec<f64>,
}

impl WheelSpinModel {
    pub fn features(p: &Practice) -> [f64; FEATURES] {
        let attempts = f64::from(p.attempts.max(1));
        [
            1.0,
            f64::from(p.attempts) / 10.0,
            f64::from(p.correct) / attempts,
            f64::from(p.correct_streak),
            f64::from(p.error_streak.min(5)),
            (f64::from(p.attempts - p.correct.min(p.attempts))).ln_1p(),
            if p.attempts > 0 && p.correct_streak > 0 {
                1.0
            } else {
                0.0
            },
        ]
    }

    /// P(this practice ends in wheel-spinning).
    pub fn predict(&self, p: &Practice) -> f64 {
        let x = Self::features(p);
        let z: f64 = x.iter().zip(&self.weights).map(|(a, b)| a * b).sum();
        crate::mastery::sigmoid(z)
    }
}
