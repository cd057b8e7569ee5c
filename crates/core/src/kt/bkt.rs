//! Bayesian knowledge tracing per skill, fitted by expectation-maximisation (Baum-Welch) with
//! restarts, with or without forgetting (Corbett & Anderson 1995; Khajah et al. 2016).
//!
//! The streaming state per learner and skill is the log-odds that the skill is known (see
//! [`crate::mastery`]); the fitter works on probabilities with per-step scaling, which is exact
//! and cannot saturate because it never carries a belief across a whole sequence unscaled.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Dataset, LearnerTrace, TraceModel};
use crate::mastery::{BktParams, sigmoid};

/// How to fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BktFitOptions {
    /// Fit a forgetting probability too.
    pub forgetting: bool,
    /// Random restarts per skill; the best log-likelihood wins.
    pub restarts: u32,
    /// EM iterations per restart at most.
    pub max_iterations: u32,
    /// Stop a restart when the log-likelihood improves by less than this (relative).
    pub tolerance: f64,
    pub seed: u64,
}

impl Default for BktFitOptions {
    fn default() -> Self {
        BktFitOptions {
            forgetting: false,
            restarts: 5,
            max_iterations: 60,
            tolerance: 1e-6,
            seed: 7,
        }
    }
}

/// Fitted BKT: parameters per skill (indexed by skill id), and a fallback for unseen skills.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BktModel {
    pub skills: Vec<BktParams>,
    pub fallback: BktParams,
}

/// The answer sequences of one skill, one per learner, as 0/1.
type Sequences = Vec<Vec<bool>>;

/// A small deterministic generator for restart points (the core has no randomness source).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
}

const MIN_P: f64 = 1e-4;
/// Guess and slip above one half would swap the meaning of "known" and "unknown".
const MAX_GUESS_SLIP: f64 = 0.45;

fn emit(p: &BktParams, known: bool, correct: bool) -> f64 {
    match (known, correct) {
        (true, true) => 1.0 - p.slip,
        (true, false) => p.slip,
        (false, true) => p.guess,
        (false, false) => 1.0 - p.guess,
    }
}

/// One EM iteration over all sequences of a skill; returns the new parameters and the
/// log-likelihood of the data under the old ones.
fn em_step(p: &BktParams, sequences: &Sequences, forgetting: bool) -> (BktParams, f64) {
    let (mut prior_num, mut prior_den) = (0.0, 0.0);
    let (mut learn_num, mut learn_den) = (0.0, 0.0);
    let (mut forget_num, mut forget_den) = (0.0, 0.0);
    let (mut guess_num, mut guess_den) = (0.0, 0.0);
    let (mut slip_num, mut slip_den) = (0.0, 0.0);
    let mut log_likelihood = 0.0;
    // Transition probabilities: from unknown (0) and known (1).
    let a = [[1.0 - p.learn, p.learn], [p.forget, 1.0 - p.forget]];
    let mut alpha: Vec<[f64; 2]> = Vec::new();
    let mut beta: Vec<[f64; 2]> = Vec::new();
    for seq in sequences {
        let n = seq.len();
        alpha.clear();
        alpha.resize(n, [0.0; 2]);
        beta.clear();
        beta.resize(n, [0.0; 2]);
        // Forward, scaled so that each alpha row sums to 1.
        let mut prev = [1.0 - p.prior, p.prior];
        for t in 0..n {
            let mut row = [0.0; 2];
            for j in 0..2 {
                let reach = if t == 0 {
                    prev[j]
                } else {
                    prev[0] * a[0][j] + prev[1] * a[1][j]
                };
                row[j] = reach * emit(p, j == 1, seq[t]);
            }
            let scale = row[0] + row[1];
            log_likelihood += scale.ln();
            row = [row[0] / scale, row[1] / scale];
            alpha[t] = row;
            prev = row;
        }
        // Backward, scaled per step.
        beta[n - 1] = [1.0, 1.0];
        for t in (0..n - 1).rev() {
            let mut row = [0.0; 2];
            for i in 0..2 {
                row[i] = (0..2)
                    .map(|j| a[i][j] * emit(p, j == 1, seq[t + 1]) * beta[t + 1][j])
                    .sum();
            }
            let scale = row[0] + row[1];
            beta[t] = [row[0] / scale, row[1] / scale];
        }
        for t in 0..n {
            let g = [alpha[t][0] * beta[t][0], alpha[t][1] * beta[t][1]];
            let total = g[0] + g[1];
            let g = [g[0] / total, g[1] / total];
            if t == 0 {
                prior_num += g[1];
                prior_den += 1.0;
            }
            if seq[t] {
                guess_num += g[0];
            } else {
                slip_num += g[1];
            }
            guess_den += g[0];
            slip_den += g[1];
            if t + 1 < n {
                // Expected transitions between t and t + 1.
                let mut xi = [[0.0; 2]; 2];
                let mut sum = 0.0;
                for i in 0..2 {
                    for j in 0..2 {
                        xi[i][j] =
                            alpha[t][i] * a[i][j] * emit(p, j == 1, seq[t + 1]) * beta[t + 1][j];
                        sum += xi[i][j];
                    }
                }
                learn_num += xi[0][1] / sum;
                learn_den += (xi[0][0] + xi[0][1]) / sum;
                forget_num += xi[1][0] / sum;
                forget_den += (xi[1][0] + xi[1][1]) / sum;
            }
        }
    }
    let ratio = |num: f64, den: f64, old: f64| if den > 0.0 { num / den } else { old };
    let next = BktParams {
        prior: ratio(prior_num, prior_den, p.prior).clamp(MIN_P, 1.0 - MIN_P),
        learn: ratio(learn_num, learn_den, p.learn).clamp(MIN_P, 1.0 - MIN_P),
        forget: if forgetting {
            ratio(forget_num, forget_den, p.forget).clamp(0.0, 0.5)
        } else {
            0.0
        },
        guess: ratio(guess_num, guess_den, p.guess).clamp(MIN_P, MAX_GUESS_SLIP),
        slip: ratio(slip_num, slip_den, p.slip).clamp(MIN_P, MAX_GUESS_SLIP),
    };
    (next, log_likelihood)
}

/// Fits one skill: EM from several starting points, keeping the most likely.
fn fit_skill(sequences: &Sequences, options: &BktFitOptions, seed: u64) -> (BktParams, f64) {
    let mut rng = SplitMix(seed);
    let mut best = (BktParams::default(), f64::NEG_INFINITY);
    for restart in 0..options.restarts.max(1) {
        let mut p = if restart == 0 {
            BktParams::default()
        } else {
            BktParams {
                prior: rng.between(0.05, 0.9),
                learn: rng.between(0.01, 0.4),
                guess: rng.between(0.05, 0.4),
                slip: rng.between(0.05, 0.3),
                forget: if options.forgetting {
                    rng.between(0.0, 0.2)
                } else {
                    0.0
                },
            }
        };
        let mut last = f64::NEG_INFINITY;
        for _ in 0..options.max_iterations {
            let (next, ll) = em_step(&p, sequences, options.forgetting);
            if ll.is_finite()
                && last.is_finite()
                && (ll - last).abs() <= options.tolerance * ll.abs()
            {
                last = ll;
                break;
            }
            last = ll;
            p = next;
        }
        let (_, ll) = em_step(&p, sequences, options.forgetting);
        if ll > best.1 {
            best = (p, ll);
        }
        let _ = last;
    }
    best
}

impl BktModel {
    /// Fits every skill of `data`; `progress` is told after each skill (for a progress bar).
    /// Skills are independent, so they are fitted on all cores; the result does not depend on
    /// how many there are.
    pub fn fit(
        data: &Dataset,
        options: &BktFitOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> BktModel {
        let by_skill = data.sequences_by_skill();
        let total = by_skill.len();
        let fit_one = |k: usize| -> BktParams {
            if by_skill[k].is_empty() {
                BktParams::default()
            } else {
                fit_skill(
                    &by_skill[k],
                    options,
                    options.seed ^ (k as u64).wrapping_mul(0x9E37),
                )
                .0
            }
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(total.max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (sender, receiver) = std::sync::mpsc::channel::<(usize, BktParams)>();
        let mut skills = vec![BktParams::default(); total];
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let sender = sender.clone();
                let (next, fit_one) = (&next, &fit_one);
                scope.spawn(move || {
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if k >= total {
                            break;
                        }
                        let _ = sender.send((k, fit_one(k)));
                    }
                });
            }
            drop(sender);
            for (done, (k, params)) in receiver.iter().enumerate() {
                skills[k] = params;
                progress(done + 1, total);
            }
        });
        // Unseen skills get the parameters of all sequences pooled (one start is enough there).
        let pooled: Sequences = by_skill.into_iter().flatten().collect();
        let pooled_options = BktFitOptions {
            restarts: 1,
            ..*options
        };
        let fallback = if pooled.is_empty() {
            BktParams::default()
        } else {
            fit_skill(&pooled, &pooled_options, options.seed).0
        };
        BktModel { skills, fallback }
    }

    /// The fitted parameters keyed by skill name, as the learner engine uses them.
    pub fn to_skill_model(&self, names: &[String]) -> crate::engine::SkillModel {
        crate::engine::SkillModel {
            skills: names
                .iter()
                .cloned()
                .zip(self.skills.iter().copied())
                .collect(),
            fallback: self.fallback,
            wheel_spin: None,
            logistic: None,
            load: Default::default(),
        }
    }

    fn params(&self, skill: u32) -> &BktParams {
        self.skills.get(skill as usize).unwrap_or(&self.fallback)
    }
}

/// A learner's BKT state: log-odds known per skill practised so far.
pub struct BktTrace<'a> {
    model: &'a BktModel,
    known: HashMap<u32, f64>,
}

impl LearnerTrace for BktTrace<'_> {
    fn predict(&self, skill: u32, _item: Option<u32>) -> f64 {
        let p = self.model.params(skill);
        let x = self
            .known
            .get(&skill)
            .copied()
            .unwrap_or_else(|| p.initial_log_odds());
        p.p_correct(x)
    }

    fn observe(&mut self, skill: u32, _item: Option<u32>, correct: bool) {
        let p = *self.model.params(skill);
        let x = self
            .known
            .entry(skill)
            .or_insert_with(|| p.initial_log_odds());
        *x = p.update(*x, correct);
    }
}

impl<'a> TraceModel for &'a BktModel {
    type Trace = BktTrace<'a>;
    fn new_trace(&self) -> BktTrace<'a> {
        BktTrace {
            model: self,
            known: HashMap::new(),
        }
    }
}

/// P(known) for display.
pub fn mastery(log_odds: f64) -> f64 {
    sigmoid(log_odds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kt::data::Answer;

    /// Simulates learners from known BKT parameters.
    fn simulate(truth: &BktParams, learners: u32, length: u32) -> Dataset {
        let mut rng = SplitMix(99);
        let mut answers = Vec::new();
        for learner in 0..learners {
            let mut known = rng.next() < truth.prior;
            for seq in 0..length {
                let correct = if known {
                    rng.next() >= truth.slip
                } else {
                    rng.next() < truth.guess
                };
                answers.push(Answer {
                    learner,
                    seq: u64::from(seq),
                    skill: 0,
                    item: None,
                    correct,
                });
                known = if known {
                    rng.next() >= truth.forget
                } else {
                    rng.next() < truth.learn
                };
            }
        }
        Dataset::from_answers(answers, learners as usize, 1)
    }

    #[test]
    fn em_recovers_the_parameters_that_generated_the_data() {
        let truth = BktParams {
            prior: 0.25,
            learn: 0.15,
            guess: 0.2,
            slip: 0.1,
            forget: 0.0,
        };
        let data = simulate(&truth, 2_000, 15);
        let model = BktModel::fit(&data, &BktFitOptions::default(), &mut |_, _| {});
        let fitted = model.skills[0];
        for (name, got, want) in [
            ("prior", fitted.prior, truth.prior),
            ("learn", fitted.learn, truth.learn),
            ("guess", fitted.guess, truth.guess),
            ("slip", fitted.slip, truth.slip),
        ] {
            assert!(
                (got - want).abs() < 0.05,
                "{name}: fitted {got:.3}, true {want:.3}"
            );
        }
    }

    #[test]
    fn em_never_lowers_the_likelihood() {
        let truth = BktParams {
            prior: 0.4,
            learn: 0.1,
            guess: 0.25,
            slip: 0.15,
            forget: 0.05,
        };
        let data = simulate(&truth, 300, 12);
        let sequences = &data.sequences_by_skill()[0];
        let mut p = BktParams::default();
        let mut last = f64::NEG_INFINITY;
        for _ in 0..20 {
            let (next, ll) = em_step(&p, sequences, true);
            assert!(ll >= last - 1e-6, "log-likelihood fell from {last} to {ll}");
            last = ll;
            p = next;
        }
    }
}
