//! Fitting the cognitive-load index's weights to what learners did next.
//!
//! Load cannot be observed, but its consequences can: a learner under too much load tends to get
//! the next answer wrong, or to give up on the skill. So each answer is labelled with whether the
//! learner *struggles next* (the next answer is wrong, or this was their last answer on the skill
//! and they had not mastered it: they quit), and a logistic regression of that label on the
//! signals' strengths ([`crate::load::LoadObservation::strengths`]) says how much each signal
//! tells. The weights are kept non-negative (every signal is a sign of load, never of its
//! absence: a negative weight would make a reason a teacher cannot read) and scaled to the total
//! of the hand-set weights, so the index keeps its range and its level thresholds.
//!
//! Pure: the caller replays a log through the engine and hands over each answer's strengths.

use crate::kt::metrics::auc;
use crate::load::{LoadWeights, Strengths, smoothed};

/// One answer, as the fit sees it.
#[derive(Debug, Clone)]
pub struct LoadExample {
    /// Learner index (folds are by learner; examples of one learner are in answer order).
    pub learner: u32,
    /// How strongly each signal was present at this answer.
    pub strengths: Strengths,
    /// Whether the learner's next answer was wrong (`None`: there is no next answer).
    pub next_wrong: Option<bool>,
    /// Whether this was their last answer on the skill, with the skill not mastered.
    pub quit: bool,
}

impl LoadExample {
    /// The label the weights are fitted to: the next answer is wrong, or they quit.
    pub fn struggles_next(&self) -> bool {
        self.quit || self.next_wrong == Some(true)
    }
}

/// Labels a learner's answers on skills, given in order: `(skill, correct)`. Returns, per answer,
/// `(next_wrong, quit)`. Mastered: three right in a row on the skill (Beck & Gong).
pub fn label(answers: &[(u32, bool)]) -> Vec<(Option<bool>, bool)> {
    use std::collections::HashMap;
    let mut last_on_skill: HashMap<u32, usize> = HashMap::new();
    for (i, (skill, _)) in answers.iter().enumerate() {
        last_on_skill.insert(*skill, i);
    }
    // Per skill: the current run of right answers, and whether it ever reached three.
    let mut runs: HashMap<u32, (u32, bool)> = HashMap::new();
    answers
        .iter()
        .enumerate()
        .map(|(i, (skill, correct))| {
            let run = runs.entry(*skill).or_default();
            run.0 = if *correct { run.0 + 1 } else { 0 };
            run.1 |= run.0 >= 3;
            let next_wrong = answers.get(i + 1).map(|(_, c)| !c);
            (next_wrong, last_on_skill[skill] == i && !run.1)
        })
        .collect()
}

/// How well a set of weights ranks answers by what came next (AUC of the smoothed index, as the
/// engine computes it, after each answer).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct LoadScores {
    /// The next answer is wrong (answers with a next one).
    pub next_wrong_auc: f64,
    /// The learner quits the skill unmastered.
    pub quit_auc: f64,
    /// Either: the label the weights are fitted to.
    pub struggles_next_auc: f64,
}

/// Scores `weights` on `examples` (grouped by learner, in answer order).
pub fn score(weights: &LoadWeights, examples: &[LoadExample]) -> LoadScores {
    let mut index = 0.0;
    let mut learner = None;
    let (mut p_next, mut y_next) = (Vec::new(), Vec::new());
    let (mut p_all, mut y_quit, mut y_struggle) = (Vec::new(), Vec::new(), Vec::new());
    for e in examples {
        if learner != Some(e.learner) {
            learner = Some(e.learner);
            index = 0.0;
        }
        index = smoothed(index, weights.instantaneous(&e.strengths));
        if let Some(wrong) = e.next_wrong {
            p_next.push(index);
            y_next.push(wrong);
        }
        p_all.push(index);
        y_quit.push(e.quit);
        y_struggle.push(e.struggles_next());
    }
    LoadScores {
        next_wrong_auc: auc(&p_next, &y_next).unwrap_or(0.5),
        quit_auc: auc(&p_all, &y_quit).unwrap_or(0.5),
        struggles_next_auc: auc(&p_all, &y_struggle).unwrap_or(0.5),
    }
}

/// A fit: the regression's coefficients and the weights made from them.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct LoadFit {
    pub intercept: f64,
    /// Log-odds of struggling next per unit of strength, per signal (non-negative).
    pub coefficients: [f64; 8],
    /// Which signals the examples show at all (the others keep their hand-set weights).
    pub observed: [bool; 8],
    pub weights: LoadWeights,
}

/// Fits the weights to `examples`: a non-negative logistic regression of
/// [`LoadExample::struggles_next`] on the strengths, by projected Newton steps.
pub fn fit(examples: &[LoadExample]) -> LoadFit {
    let observed: [bool; 8] =
        std::array::from_fn(|k| examples.iter().any(|e| e.strengths[k] > 0.0));
    // Parameter 0 is the intercept; 1..=8 the signals' coefficients.
    let mut beta = [0.0f64; 9];
    let base = examples.iter().filter(|e| e.struggles_next()).count() as f64
        / examples.len().max(1) as f64;
    beta[0] = (base.clamp(1e-6, 1.0 - 1e-6) / (1.0 - base.clamp(1e-6, 1.0 - 1e-6))).ln();
    const RIDGE: f64 = 1e-3;
    for _ in 0..100 {
        let mut gradient = [0.0f64; 9];
        let mut hessian = [[0.0f64; 9]; 9];
        for e in examples {
            let x = row(&e.strengths);
            let z: f64 = x.iter().zip(&beta).map(|(a, b)| a * b).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let y = f64::from(u8::from(e.struggles_next()));
            for j in 0..9 {
                gradient[j] += (p - y) * x[j];
                for k in 0..9 {
                    hessian[j][k] += p * (1.0 - p) * x[j] * x[k];
                }
            }
        }
        // Free: the intercept, and each observed coefficient unless it sits at zero and the
        // loss would have it go negative.
        let free: Vec<usize> = (0..9)
            .filter(|&j| j == 0 || (observed[j - 1] && (beta[j] > 0.0 || gradient[j] < 0.0)))
            .collect();
        let n = free.len();
        let mut a = vec![vec![0.0; n + 1]; n];
        for (r, &j) in free.iter().enumerate() {
            for (c, &k) in free.iter().enumerate() {
                a[r][c] = hessian[j][k] + if r == c { RIDGE } else { 0.0 };
            }
            a[r][n] = -gradient[j];
        }
        let Some(step) = solve(a) else { break };
        let mut moved = 0.0f64;
        for (r, &j) in free.iter().enumerate() {
            let next = if j == 0 {
                beta[j] + step[r]
            } else {
                (beta[j] + step[r]).max(0.0)
            };
            moved = moved.max((next - beta[j]).abs());
            beta[j] = next;
        }
        if moved < 1e-9 {
            break;
        }
    }
    let coefficients: [f64; 8] = std::array::from_fn(|k| beta[k + 1]);
    LoadFit {
        intercept: beta[0],
        coefficients,
        observed,
        weights: weights_from(&coefficients, &observed),
    }
}

/// Weights from coefficients: the observed signals share the hand-set weights' total in
/// proportion to their coefficients; the others keep their hand-set weights.
fn weights_from(coefficients: &[f64; 8], observed: &[bool; 8]) -> LoadWeights {
    let hand = LoadWeights::hand_set().as_array();
    let total: f64 = (0..8).filter(|&k| observed[k]).map(|k| hand[k]).sum();
    let sum: f64 = (0..8)
        .filter(|&k| observed[k])
        .map(|k| coefficients[k])
        .sum();
    LoadWeights::from_array(std::array::from_fn(|k| {
        if !observed[k] || sum <= 0.0 {
            hand[k]
        } else {
            // Rounded to what a person reads in a table.
            (coefficients[k] / sum * total * 1000.0).round() / 1000.0
        }
    }))
}

fn row(strengths: &Strengths) -> [f64; 9] {
    let mut x = [1.0; 9];
    x[1..].copy_from_slice(strengths);
    x
}

/// Solves a small augmented system `[A | b]` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>) -> Option<Vec<f64>> {
    let n = a.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (x, p) in row.iter_mut().zip(&pivot_row).skip(col) {
                    *x -= f * p;
                }
            }
        }
    }
    Some((0..n).map(|r| a[r][n] / a[r][r]).collect())
}

/// `folds`-fold cross-validation by learner: per fold, the held-out learners' scores under the
/// hand-set weights and under weights fitted on the other folds.
pub fn cross_validate(examples: &[LoadExample], folds: u32) -> Vec<(LoadScores, LoadScores)> {
    (0..folds)
        .map(|fold| {
            let (test, train): (Vec<LoadExample>, Vec<LoadExample>) = examples
                .iter()
                .cloned()
                .partition(|e| e.learner % folds == fold);
            let fitted = fit(&train).weights;
            (
                score(&LoadWeights::hand_set(), &test),
                score(&fitted, &test),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_say_what_came_next() {
        // Skill 0: right, wrong, then skill 1 three right (mastered), then skill 0 wrong (last).
        let answers = [
            (0, true),
            (0, false),
            (1, true),
            (1, true),
            (1, true),
            (0, false),
        ];
        let labels = label(&answers);
        assert_eq!(labels[0], (Some(true), false));
        assert_eq!(labels[1], (Some(false), false));
        assert_eq!(
            labels[4],
            (Some(true), false),
            "skill 1 was mastered: no quit"
        );
        assert_eq!(labels[5], (None, true), "left skill 0 unmastered");
    }

    #[test]
    fn the_fit_finds_the_signal_that_predicts_struggle() {
        // Signal 1 (error streak) predicts struggling next; signal 2 (hints) is noise; the other
        // signals never occur and keep their hand-set weights.
        let mut examples = Vec::new();
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as f64 / (1u64 << 31) as f64
        };
        for i in 0..4000u32 {
            let streak = if next() < 0.5 { 0.8 } else { 0.0 };
            let hints = if next() < 0.5 { 1.0 } else { 0.0 };
            let p = if streak > 0.0 { 0.8 } else { 0.2 };
            let mut strengths = [0.0; 8];
            strengths[1] = streak;
            strengths[2] = hints;
            examples.push(LoadExample {
                learner: i / 20,
                strengths,
                next_wrong: Some(next() < p),
                quit: false,
            });
        }
        let fit = fit(&examples);
        assert!(fit.coefficients[1] > 2.0, "{fit:?}");
        assert!(fit.coefficients[2] < 0.2, "{fit:?}");
        let hand = LoadWeights::hand_set();
        assert_eq!(fit.weights.fatigue, hand.fatigue);
        assert!(fit.weights.error_streak > hand.error_streak);
        assert!(fit.coefficients.iter().all(|c| *c >= 0.0));
        let cv = cross_validate(&examples, 5);
        let fitted: f64 = cv.iter().map(|(_, f)| f.struggles_next_auc).sum::<f64>() / 5.0;
        assert!(fitted > 0.7, "{cv:?}");
    }
}
