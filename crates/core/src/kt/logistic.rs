//! Logistic knowledge tracing: P(correct) = sigmoid(w · x), where x holds counts of the
//! learner's earlier successes and failures, per skill and overall, and their most recent
//! outcomes (performance factors analysis, Pavlik et al. 2009, with the richer count features of
//! Gervet et al. 2020). When the log names items, each item has a difficulty of its own (a
//! Rasch-style bias, shrunk towards its skill's by a Gaussian prior, so that a rarely seen item
//! stays near its skill and an unseen one is its skill), and the learner's earlier attempts at
//! the same item count too. Trained by full-batch Adam on the log-loss with a small L2 penalty.
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
    /// Standard deviation of the prior on an item's difficulty around its skill's (logits):
    /// smaller shrinks rare items harder.
    pub item_prior_sd: f64,
}

impl Default for LogisticOptions {
    fn default() -> Self {
        LogisticOptions {
            epochs: 150,
            learning_rate: 0.05,
            l2: 1e-6,
            item_prior_sd: 0.5,
        }
    }
}

/// What the model remembers of one learner.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Per skill: correct answers, wrong answers, last outcome (+1 / -1).
    skills: HashMap<u32, (u32, u32, i8)>,
    /// Per item: correct and wrong answers (logs that name items).
    items: HashMap<u32, (u32, u32)>,
    /// Per skill: how many answers the learner had given before their latest on it.
    last_on_skill: HashMap<u32, u32>,
    correct: u32,
    wrong: u32,
    /// The previous answer overall: its skill and outcome.
    previous: Option<(u32, bool)>,
    /// Consecutive wrong answers overall.
    error_streak: u32,
    /// The last [`RECENT`] outcomes overall, newest in bit 0 (1 = correct), and how many of
    /// them there are.
    recent: u32,
    recent_len: u32,
}

/// How many of the latest answers the recent-performance features look at (the longest of
/// [`WINDOWS`]; they are kept as bits of a `u32`).
pub const RECENT: u32 = 30;
/// The latest [`RECENT`] outcomes (bits, newest in bit 0, and how many) after one more: how
/// both doors keep them.
pub fn with_outcome((bits, len): (u32, u32), correct: bool) -> (u32, u32) {
    (
        ((bits << 1) | u32::from(correct)) & ((1 << RECENT) - 1),
        (len + 1).min(RECENT),
    )
}

/// The windows of latest answers whose rights and wrongs are counted.
const WINDOWS: [u32; 3] = [3, 10, 30];

/// Number of features that are the same for every skill.
const GLOBAL: usize = 18;
/// Per-skill features: bias, log successes, log failures.
const PER_SKILL: usize = 3;

/// Up to this many non-zero features per row.
pub type Row = Vec<(u32, f64)>;

/// What the features of one answer are computed from: the learner's record before it, however
/// it is kept (a [`History`] when evaluating a log, the engine's `LearnerState` when serving).
/// Both doors build this and call [`features`], so they cannot compute different features.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Evidence {
    /// Correct and wrong answers on the skill, and the last outcome on it (+1, -1; 0: none).
    pub skill: (u32, u32, i8),
    /// Correct and wrong answers to the item.
    pub item: (u32, u32),
    /// Correct and wrong answers overall.
    pub total: (u32, u32),
    /// The previous answer overall: whether it was on this skill, and whether it was right.
    pub previous: Option<(bool, bool)>,
    /// Consecutive wrong answers overall.
    pub error_streak: u32,
    /// Answers given since the latest on this skill (`None`: never on it).
    pub skill_gap: Option<u32>,
    /// The latest outcomes, newest in bit 0 (1 = right), and how many there are (at most
    /// [`RECENT`]).
    pub recent: (u32, u32),
}

/// The features of an answer on the model's skill `skill` (to its item `item`); `None` for a
/// skill or item the model was not fitted on, which then has no weights of its own.
pub fn features(
    layout: Layout,
    evidence: &Evidence,
    skill: Option<u32>,
    item: Option<u32>,
    out: &mut Row,
) {
    out.clear();
    let ln = |n: u32| f64::from(n).ln_1p();
    let (c, w, last) = evidence.skill;
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    let globals = [
        1.0,                                            // intercept
        ln(evidence.total.0),                           // log(1 + correct answers)
        ln(evidence.total.1),                           // log(1 + wrong answers)
        f64::from(last),                                // last outcome on this skill
        flag(c + w == 0),                               // first try of this skill
        flag(evidence.previous == Some((true, true))),  // previous answer: same skill, right
        flag(evidence.previous == Some((true, false))), // previous answer: same skill, wrong
        match evidence.previous {
            Some((_, true)) => 1.0,
            Some((_, false)) => -1.0,
            None => 0.0,
        }, // previous answer overall
        f64::from(evidence.error_streak.min(5)),        // current error streak
        ln(evidence.item.0),                            // log(1 + correct answers to this item)
        ln(evidence.item.1),                            // log(1 + wrong answers to this item)
        evidence.skill_gap.map_or(0.0, ln),             // log(1 + answers since the skill's latest)
    ];
    for (i, v) in globals.into_iter().enumerate() {
        if v != 0.0 {
            out.push((i as u32, v));
        }
    }
    // log(1 + right) and log(1 + wrong) among the latest 3, 10 and 30 answers.
    debug_assert_eq!(globals.len() + 2 * WINDOWS.len(), GLOBAL);
    let (bits, len) = evidence.recent;
    for (k, window) in WINDOWS.into_iter().enumerate() {
        let right = (bits & ((1u32 << window) - 1)).count_ones();
        let seen = len.min(window);
        for (offset, v) in [(0, ln(right)), (1, ln(seen - right))] {
            if v != 0.0 {
                out.push(((globals.len() + 2 * k + offset) as u32, v));
            }
        }
    }
    if let Some(skill) = skill.filter(|&s| (s as usize) < layout.skills) {
        let base = (GLOBAL + PER_SKILL * skill as usize) as u32;
        out.push((base, 1.0));
        for (offset, v) in [(1, ln(c)), (2, ln(w))] {
            if v != 0.0 {
                out.push((base + offset, v));
            }
        }
    }
    if let Some(item) = item.filter(|&i| (i as usize) < layout.items) {
        out.push((layout.item_weight(item) as u32, 1.0));
    }
}

impl History {
    /// What the learner's history says before their next answer on `skill` (to `item`).
    pub fn evidence(&self, skill: u32, item: Option<u32>) -> Evidence {
        Evidence {
            skill: self.skills.get(&skill).copied().unwrap_or((0, 0, 0)),
            item: item
                .and_then(|i| self.items.get(&i))
                .copied()
                .unwrap_or((0, 0)),
            total: (self.correct, self.wrong),
            previous: self.previous.map(|(s, ok)| (s == skill, ok)),
            error_streak: self.error_streak,
            skill_gap: self
                .last_on_skill
                .get(&skill)
                .map(|last| self.correct + self.wrong - last - 1),
            recent: (self.recent, self.recent_len),
        }
    }

    /// The features of the learner's next answer on `skill` (to `item`), from their history
    /// only. `layout` places the per-skill and per-item weights.
    pub fn features(&self, layout: Layout, skill: u32, item: Option<u32>, out: &mut Row) {
        features(layout, &self.evidence(skill, item), Some(skill), item, out);
    }

    pub fn observe(&mut self, skill: u32, item: Option<u32>, correct: bool) {
        if let Some(item) = item {
            let entry = self.items.entry(item).or_insert((0, 0));
            if correct {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        }
        self.last_on_skill.insert(skill, self.correct + self.wrong);
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
        (self.recent, self.recent_len) = with_outcome((self.recent, self.recent_len), correct);
    }
}

/// Where the weights of a model with `skills` skills and `items` items are: the global
/// features, then [`PER_SKILL`] per skill, then one difficulty per item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub skills: usize,
    pub items: usize,
}

impl Layout {
    pub fn item_weight(&self, item: u32) -> usize {
        GLOBAL + PER_SKILL * self.skills + item as usize
    }

    fn dims(&self) -> usize {
        GLOBAL + PER_SKILL * self.skills + self.items
    }
}

/// Fitted weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    pub weights: Vec<f64>,
    pub skills: usize,
    /// Items with a difficulty of their own (0 when the training log named none).
    #[serde(default)]
    pub items: usize,
}

impl LogisticModel {
    pub fn layout(&self) -> Layout {
        Layout {
            skills: self.skills,
            items: self.items,
        }
    }
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
        let layout = Layout {
            skills: data.skills.len(),
            items: data.items.len(),
        };
        // Feature rows, computed causally in each learner's sequence order.
        let mut rows: Vec<Row> = Vec::with_capacity(data.answers.len());
        let mut labels: Vec<f64> = Vec::with_capacity(data.answers.len());
        for learner_rows in data.by_learner() {
            let mut history = History::default();
            for &i in learner_rows {
                let a = &data.answers[i];
                let mut row = Row::new();
                history.features(layout, a.skill, a.item, &mut row);
                rows.push(row);
                labels.push(f64::from(u8::from(a.correct)));
                history.observe(a.skill, a.item, a.correct);
            }
        }
        let first_item = layout.item_weight(0);
        // The intercept and the skills' biases are free; an item's difficulty has a Gaussian
        // prior around 0 (its skill's): as a penalty on the mean loss, 1 / (sd² · rows).
        let item_penalty = 1.0 / (options.item_prior_sd.powi(2) * rows.len().max(1) as f64);
        let penalty = |i: usize| {
            if i >= first_item {
                item_penalty
            } else if i == 0 || (i >= GLOBAL && (i - GLOBAL).is_multiple_of(PER_SKILL)) {
                0.0
            } else {
                options.l2
            }
        };
        let w = train(&rows, &labels, layout.dims(), options, &penalty, progress);
        LogisticModel {
            weights: w,
            skills: layout.skills,
            items: layout.items,
        }
    }
}

/// A fitted logistic model with the names behind its skill and item ids: what the engine runs
/// to predict P(correct), from the same [`Evidence`] and [`features`] as `kt eval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedLogistic {
    pub model: LogisticModel,
    pub skills: HashMap<String, u32>,
    pub items: HashMap<String, u32>,
}

impl NamedLogistic {
    /// `names` are the training set's (`Dataset::names`).
    pub fn new(model: LogisticModel, names: &super::data::Names) -> NamedLogistic {
        let ids = |list: &[String]| {
            list.iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i as u32))
                .collect()
        };
        NamedLogistic {
            model,
            skills: ids(&names.skills),
            items: ids(&names.items),
        }
    }

    /// Whether the model has item difficulties (the engine then keeps answers per item).
    pub fn knows_items(&self) -> bool {
        self.model.items > 0
    }

    /// P(correct) of an answer on `skill` (to `item`) given the learner's `evidence`, clamped
    /// as [`super::evaluate`] clamps it.
    pub fn predict(&self, evidence: &Evidence, skill: &str, item: Option<&str>) -> f64 {
        let mut row = Row::with_capacity(20);
        features(
            self.model.layout(),
            evidence,
            self.skills.get(skill).copied(),
            item.and_then(|i| self.items.get(i)).copied(),
            &mut row,
        );
        super::model_clamp(sigmoid(dot(&self.model.weights, &row)))
    }
}

/// Full-batch Adam on the mean log-loss of sparse `rows` against 0/1 `labels`, with an L2
/// penalty of `penalty(i)` (on the mean loss) on weight `i`. Deterministic.
pub fn train(
    rows: &[Row],
    labels: &[f64],
    dims: usize,
    options: &LogisticOptions,
    penalty: &dyn Fn(usize) -> f64,
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
            let g = grad[i] / n + penalty(i) * w[i];
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
    fn predict(&self, skill: u32, item: Option<u32>) -> f64 {
        let mut row = self.row.borrow_mut();
        self.history
            .features(self.model.layout(), skill, item, &mut row);
        sigmoid(dot(&self.model.weights, &row))
    }

    fn observe(&mut self, skill: u32, item: Option<u32>, correct: bool) {
        self.history.observe(skill, item, correct);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kt::data::Answer;
    use crate::kt::{evaluate, metrics};

    /// One skill whose ten items range from easy to hard: answers depend on the item more than
    /// on the learner's practice.
    fn items_log(seed: u64, with_items: bool) -> Dataset {
        let mut next = crate::kt::uniform(seed);
        let mut answers = Vec::new();
        for learner in 0..150u32 {
            let ability = next() * 2.0 - 1.0;
            for seq in 0..20u64 {
                let item = (next() * 10.0) as u32 % 10;
                let difficulty = f64::from(item) * 0.45 - 2.0;
                let correct = next() < sigmoid(ability - difficulty);
                answers.push(Answer {
                    learner,
                    seq,
                    skill: 0,
                    item: with_items.then_some(item),
                    correct,
                });
            }
        }
        let mut data = Dataset::from_answers(answers, 150, 1);
        if with_items {
            data.items = (0..10).map(|i| format!("item-{i}")).collect();
        }
        data
    }

    fn test_auc(with_items: bool) -> f64 {
        let model = LogisticModel::fit(
            &items_log(1, with_items),
            &LogisticOptions::default(),
            &mut |_, _| {},
        );
        let test = items_log(2, with_items);
        let outcomes: Vec<bool> = test.answers.iter().map(|a| a.correct).collect();
        metrics::auc(&evaluate(&&model, &test), &outcomes).unwrap()
    }

    #[test]
    fn item_difficulties_are_learned_when_the_log_names_items() {
        let (with, without) = (test_auc(true), test_auc(false));
        assert!(
            with > without + 0.05,
            "with items {with:.3}, without {without:.3}"
        );
    }

    #[test]
    fn an_item_the_training_log_never_had_is_its_skill() {
        let model = LogisticModel::fit(
            &items_log(1, true),
            &LogisticOptions::default(),
            &mut |_, _| {},
        );
        assert_eq!(model.items, 10);
        let trace = (&model).new_trace();
        let (unseen, none) = (trace.predict(0, Some(99)), trace.predict(0, None));
        assert_eq!(unseen, none, "no difficulty of its own: the skill's");
        let (easy, hard) = (trace.predict(0, Some(0)), trace.predict(0, Some(9)));
        assert!(easy > none && none > hard, "{easy} {none} {hard}");
    }
}
