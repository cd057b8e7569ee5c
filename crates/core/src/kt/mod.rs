//! Knowledge tracing: predicting whether a learner's next answer on a skill will be correct,
//! from their earlier answers only.
//!
//! Every model here has two halves: an offline *fitter* that learns parameters from a training
//! log, and a streaming *predictor* that, for one learner, predicts the next answer and then
//! folds it in, in O(1). [`evaluate`] runs a predictor strictly one step ahead over a test log:
//! the prediction for a row is made before that row's outcome is seen, from that learner's
//! earlier rows only.

pub mod bkt;
pub mod data;
pub mod load_fit;
pub mod logistic;
pub mod metrics;
pub mod wheelspin;

pub use data::{Answer, Dataset};

/// Per-learner streaming state of a model: predict the next answer, then observe it.
pub trait LearnerTrace {
    /// P(correct) of this learner's next answer on `skill`, to `item` when the log names items
    /// (models that do not know items ignore it).
    fn predict(&self, skill: u32, item: Option<u32>) -> f64;
    /// Folds in the observed answer.
    fn observe(&mut self, skill: u32, item: Option<u32>, correct: bool);
}

/// A fitted model: makes a fresh trace for each learner.
pub trait TraceModel {
    type Trace: LearnerTrace;
    fn new_trace(&self) -> Self::Trace;
}

/// One-step-ahead predictions for every row of `data`, in the rows' order. Each learner's rows
/// are visited in sequence order; the prediction for a row is taken before the row is observed.
pub fn evaluate<M: TraceModel>(model: &M, data: &Dataset) -> Vec<f64> {
    let mut predictions = vec![0.0; data.answers.len()];
    for rows in data.by_learner() {
        let mut trace = model.new_trace();
        for &i in rows {
            let a = &data.answers[i];
            predictions[i] = model_clamp(trace.predict(a.skill, a.item));
            trace.observe(a.skill, a.item, a.correct);
        }
    }
    predictions
}

pub(crate) fn model_clamp(p: f64) -> f64 {
    p.clamp(1e-6, 1.0 - 1e-6)
}

/// A deterministic stream of numbers in [0, 1) (a linear congruential generator), for the
/// synthetic logs of the tests.
#[cfg(test)]
pub(crate) fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut x = seed;
    move || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) as f64 / (1u64 << 31) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::bkt::{BktFitOptions, BktModel};
    use super::logistic::{LogisticModel, LogisticOptions};
    use super::*;

    /// A deterministic pseudo-random log: 60 learners, 4 skills, 30 answers each.
    fn log(seed: u64) -> Dataset {
        let mut next = uniform(seed);
        let mut answers = Vec::new();
        for learner in 0..60u32 {
            let mut skill_level = [0.0f64; 4];
            for seq in 0..30u64 {
                let skill = (next() * 4.0) as u32 % 4;
                let p = 0.3 + 0.6 * (1.0 - (-skill_level[skill as usize]).exp());
                let correct = next() < p;
                skill_level[skill as usize] += 0.3;
                answers.push(Answer {
                    learner,
                    seq,
                    skill,
                    item: None,
                    correct,
                });
            }
        }
        Dataset::from_answers(answers, 60, 4)
    }

    /// The prediction for a row must not depend on that row's outcome or any later one.
    fn assert_no_leakage<M: TraceModel>(model: &M) {
        let test = log(2);
        let base = evaluate(model, &test);
        for cut in [0u64, 7, 19, 29] {
            let mut changed = test.clone();
            for a in &mut changed.answers {
                if a.seq >= cut {
                    a.correct = !a.correct;
                }
            }
            let after = evaluate(model, &changed);
            for (i, a) in test.answers.iter().enumerate() {
                if a.seq <= cut {
                    assert_eq!(
                        base[i], after[i],
                        "row seq {} changed when outcomes from seq {cut} on were flipped",
                        a.seq
                    );
                }
            }
            if cut < 29 {
                assert!(
                    base != after,
                    "later predictions must depend on earlier outcomes"
                );
            }
        }
    }

    #[test]
    fn predictions_are_strictly_one_step_ahead() {
        let train = log(1);
        let bkt = BktModel::fit(&train, &BktFitOptions::default(), &mut |_, _| {});
        assert_no_leakage(&&bkt);
        let forgetting = BktModel::fit(
            &train,
            &BktFitOptions {
                forgetting: true,
                ..Default::default()
            },
            &mut |_, _| {},
        );
        assert_no_leakage(&&forgetting);
        let logistic = LogisticModel::fit(
            &train,
            &LogisticOptions {
                epochs: 30,
                ..Default::default()
            },
            &mut |_, _| {},
        );
        assert_no_leakage(&&logistic);
    }

    #[test]
    fn the_logistic_model_learns_something_on_synthetic_data() {
        let train = log(1);
        let test = log(3);
        let model = LogisticModel::fit(&train, &LogisticOptions::default(), &mut |_, _| {});
        let p = evaluate(&&model, &test);
        let outcomes: Vec<bool> = test.answers.iter().map(|a| a.correct).collect();
        assert!(metrics::auc(&p, &outcomes).unwrap() > 0.6);
    }
}
