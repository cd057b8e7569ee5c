//! Logistic knowledge tracing: P(correct) = sigmoid(w · x), where x holds counts of the
//! learner's earlier successes and failures, per skill and overall, and their most recent
//! outcomes (performance factors analysis, Pavlik et al. 2009, with the richer count features of
//! Gervet et al. 2020). Trained by full-batch Adam on the log-loss with a small L2 penalty.
//!
//! The features are computed by one function, [`History::features`], both when training and when
//! predicting, so the model can never be trained on something it does not see when serving.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Dataset, LearnerTrace, TraceModel};
use crate::mastery::sigmoid;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LogisticOptions {
    pub epochs: u32,
    pub learning_rate: f64,
    /// L2 penalty per row (applied to all weights but the biases).
    pub l2: f64,
}

impl Default for LogisticOptions {
    fn default() -> Self {
        LogisticOptions {
            epochs: 150,
            learning_rate: 0.05,
            l2: 1e-6,
        }
    }
}

/// What the model remembers of one learner.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Per skill: correct answers, wrong answers, last outcome (+1 / -1).
    skills: HashMap<u32, (u32, u32, i8)>,
    correct: u32,
    wrong: u32,
    /// The previous answer overall: its skill and outcome.
    previous: Option<(u32, bool)>,
    /// Consecutive wrong answers overall.
    error_streak: u32,
}

/// Number of features that are the same for every skill.
const GLOBAL: usize = 9;
/// Per-skill features: bias, log successes, log failures.
const PER_SKILL: usize = 3;

/// Up to this many non-zero features per row.
pub type Row = Vec<(u32, f64)>;

impl History {
    /// The features of the learner's next answer on `skill`, from their history only.
    pub fn features(&self, skill: u32, out: &mut Row) {
        out.clear();
        let (c, w, last) = self.skills.get(&skill).copied().unwrap_or((0, 0, 0));
        let (lc, lw) = ((f64::from(c)).ln_1p(), (f64::from(w)).ln_1p());
        let (gc, gw) = (
            (f64::from(self.correct)).ln_1p(),
            (f64::from(self.wrong)).ln_1p(),
        );
        let same = self.previous.filter(|(s, _)| *s == skill);
        let globals = [
            1.0,                                // intercept
            gc,                                 // log(1 + correct answers)
            gw,                                 // log(1 + wrong answers)
            f64::from(last),                    // last outcome on this skill
            if c + w == 0 { 1.0 } else { 0.0 }, // first try of this skill
            if same.is_some_and(|(_, ok)| ok) {
                1.0
            } else {
                0.0
            }, // previous answer: same skill, right
            if same.is_some_and(|(_, ok)| !ok) {
                1.0
            } else {
                0.0
            }, // previous answer: same skill, wrong
            match self.previous {
                Some((_, true)) => 1.0,
                Some((_, false)) => -1.0,
                None => 0.0,
            }, // previous answer overall
            f64::from(self.error_streak.min(5)), // current error streak
        ];
        for (i, v) in globals.into_iter().enumerate() {
            if v != 0.0 {
                out.push((i as u32, v));
            }
        }
        let base = (GLOBAL + PER_SKILL * skill as usize) as u32;
        out.push((base, 1.0));
        if lc != 0.0 {
            out.push((base + 1, lc));
        }
        if lw != 0.0 {
            out.push((base + 2, lw));
        }
    }

    pub fn observe(&mut self, skill: u32, correct: bool) {
        let entry = self.skills.entry(skill).or_insert((0, 0, 0));
        if correct {
            entry.0 += 1;
            entry.2 = 1;
            self.correct += 1;
            self.error_streak = 0;
        } else {
            entry.1 += 1;
            entry.2 = -1;
            self.wrong += 1;
            self.error_streak += 1;
        }
        self.previous = Some((skill, correct));
    }
}

/// Fitted weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    pub weights: Vec<f64>,
    pub skills: usize,
}

pub fn dot(weights: &[f64], row: &Row) -> f64 {
    row.iter()
        .map(|&(i, v)| weights.get(i as usize).copied().unwrap_or(0.0) * v)
        .sum()
}

impl LogisticModel {
    /// Trains on `data`; `progress` is told after each epoch.
    pub fn fit(
        data: &Dataset,
        options: &LogisticOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> LogisticModel {
        let dims = GLOBAL + PER_SKILL * data.skills.len();
        // Feature rows, computed causally in each learner's sequence order.
        let mut rows: Vec<Row> = Vec::with_capacity(data.answers.len());
        let mut labels: Vec<f64> = Vec::with_capacity(data.answers.len());
        for learner_rows in data.by_learner() {
            let mut history = History::default();
            for &i in learner_rows {
                let a = &data.answers[i];
                let mut row = Row::new();
                history.features(a.skill, &mut row);
                rows.push(row);
                labels.push(f64::from(u8::from(a.correct)));
                history.observe(a.skill, a.correct);
            }
        }
        let is_bias = |i: usize| i == 0 || (i >= GLOBAL && (i - GLOBAL).is_multiple_of(PER_SKILL));
        let w = train(&rows, &labels, dims, options, &is_bias, progress);
        LogisticModel {
            weights: w,
            skills: data.skills.len(),
        }
    }
}

/// Full-batch Adam on the mean log-loss of sparse `rows` against 0/1 `labels`, with an L2
/// penalty on every weight for which `unpenalised` is false. Deterministic.
pub fn train(
    rows: &[Row],
    labels: &[f64],
    dims: usize,
    options: &LogisticOptions,
    unpenalised: &dyn Fn(usize) -> bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Vec<f64> {
    let n = rows.len().max(1) as f64;
    let mut w = vec![0.0; dims];
    let (mut m, mut v) = (vec![0.0; dims], vec![0.0; dims]);
    let (beta1, beta2, eps) = (0.9, 0.999, 1e-8);
    let mut grad = vec![0.0; dims];
    let epochs = options.epochs as usize;
    for epoch in 1..=epochs {
        grad.iter_mut().for_each(|g| *g = 0.0);
        for (row, y) in rows.iter().zip(labels) {
            let err = sigmoid(dot(&w, row)) - y;
            for &(i, x) in row {
                grad[i as usize] += err * x;
            }
        }
        let t = epoch as i32;
        for i in 0..dims {
            let penalty = if unpenalised(i) {
                0.0
            } else {
                options.l2 * w[i] * n
            };
            let g = (grad[i] + penalty) / n;
            m[i] = beta1 * m[i] + (1.0 - beta1) * g;
            v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
            let m_hat = m[i] / (1.0 - beta1.powi(t));
            let v_hat = v[i] / (1.0 - beta2.powi(t));
            w[i] -= options.learning_rate * m_hat / (v_hat.sqrt() + eps);
        }
        progress(epoch, epochs);
    }
    w
}

/// A learner's logistic trace: their history.
pub struct LogisticTrace<'a> {
    model: &'a LogisticModel,
    history: History,
    row: std::cell::RefCell<Row>,
}

impl LearnerTrace for LogisticTrace<'_> {
    fn predict(&self, skill: u32) -> f64 {
        let mut row = self.row.borrow_mut();
        self.history.features(skill, &mut row);
        sigmoid(dot(&self.model.weights, &row))
    }

    fn observe(&mut self, skill: u32, correct: bool) {
        self.history.observe(skill, correct);
    }
}

impl<'a> TraceModel for &'a LogisticModel {
    type Trace = LogisticTrace<'a>;
    fn new_trace(&self) -> LogisticTrace<'a> {
        LogisticTrace {
            model: self,
            history: History::default(),
            row: std::cell::RefCell::new(Row::with_capacity(16)),
        }
    }
}
