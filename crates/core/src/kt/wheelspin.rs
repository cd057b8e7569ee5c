//! Fitting and evaluating the early wheel-spinning predictor on answer logs.

use super::Dataset;
use super::logistic::{LogisticOptions, Row, train};
use crate::struggle::{
    FEATURES, MASTERY_STREAK, Practice, WHEEL_SPIN_OPPORTUNITIES, WheelSpinModel,
};

/// One prediction point: the practice after some opportunities, and how the sequence ended.
pub struct Example {
    pub practice: Practice,
    pub wheel_spun: bool,
}

/// Prediction points of every learner-skill sequence whose outcome is known: mastered (three in
/// a row) within ten opportunities, or not mastered after ten. Sequences that stop earlier
/// without mastery are censored and left out. Points are taken after opportunities 1 to 9,
/// while the skill is not yet mastered.
pub fn examples(data: &Dataset) -> Vec<Example> {
    let mut out = Vec::new();
    for answers in data.sequences_by_skill().into_iter().flatten() {
        let mut p = Practice::default();
        let mut points = Vec::new();
        let mut mastered_at = None;
        for (n, &correct) in answers.iter().enumerate() {
            p.attempts += 1;
            if correct {
                p.correct += 1;
                p.correct_streak += 1;
                p.error_streak = 0;
            } else {
                p.correct_streak = 0;
                p.error_streak += 1;
            }
            if p.correct_streak >= MASTERY_STREAK {
                mastered_at = Some(n + 1);
                break;
            }
            if p.attempts < WHEEL_SPIN_OPPORTUNITIES {
                points.push(p);
            }
        }
        let wheel_spun = match mastered_at {
            Some(at) => at > WHEEL_SPIN_OPPORTUNITIES as usize,
            None if answers.len() >= WHEEL_SPIN_OPPORTUNITIES as usize => true,
            None => continue, // censored
        };
        out.extend(points.into_iter().map(|practice| Example {
            practice,
            wheel_spun,
        }));
    }
    out
}

pub fn fit(data: &Dataset, progress: &mut dyn FnMut(usize, usize)) -> WheelSpinModel {
    let examples = examples(data);
    let rows: Vec<Row> = examples
        .iter()
        .map(|e| {
            WheelSpinModel::features(&e.practice)
                .iter()
                .enumerate()
                .map(|(i, v)| (i as u32, *v))
                .collect()
        })
        .collect();
    let labels: Vec<f64> = examples
        .iter()
        .map(|e| f64::from(u8::from(e.wheel_spun)))
        .collect();
    let options = LogisticOptions {
        epochs: 300,
        ..LogisticOptions::default()
    };
    // The intercept is free; the other weights carry a small L2 penalty.
    let penalty = |i: usize| if i == 0 { 0.0 } else { options.l2 };
    WheelSpinModel {
        weights: train(&rows, &labels, FEATURES, &options, &penalty, progress),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kt::data::Answer;

    #[test]
    fn labels_follow_beck_and_gong_and_censor_short_sequences() {
        let mut answers = Vec::new();
        // Learner 0: masters at the 4th opportunity. Learner 1: 12 wrong answers (wheel-spins).
        // Learner 2: two wrong answers, then stops (censored).
        for (learner, outcomes) in [
            (0u32, vec![false, true, true, true]),
            (1, vec![false; 12]),
            (2, vec![false, false]),
        ] {
            for (seq, correct) in outcomes.into_iter().enumerate() {
                answers.push(Answer {
                    learner,
                    seq: seq as u64,
                    skill: 0,
                    item: None,
                    correct,
                });
            }
        }
        let data = Dataset::from_answers(answers, 3, 1);
        let ex = examples(&data);
        assert_eq!(
            ex.iter().filter(|e| !e.wheel_spun).count(),
            3,
            "learner 0: points after opportunities 1-3"
        );
        assert_eq!(
            ex.iter().filter(|e| e.wheel_spun).count(),
            9,
            "learner 1: points after opportunities 1-9"
        );
    }
}
