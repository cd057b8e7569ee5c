//! `learnpulse kt load-fit`: fit the cognitive-load index's weights on an answer log with
//! response times, and report how well the hand-set and the fitted weights tell who struggles
//! next (cross-validated by learner on the training log; on a test log when given).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use learnpulse_core::kt::load_fit::{self, LoadExample, LoadScores};
use learnpulse_core::load::SIGNALS;
use learnpulse_core::{Engine, EngineParams, LoadWeights, SkillModel};

use crate::answer_log::AnswerLog;
use crate::progress;

/// Replays the log through the engine with every load weight at 1 (so each reason's contribution
/// is its signal's strength), and labels each answer with what the learner did next. Returns
/// the examples grouped by learner, in answer order, and whether the log has response times.
pub fn examples_of(path: &Path) -> anyhow::Result<(Vec<LoadExample>, bool)> {
    let unit = SkillModel {
        load: LoadWeights::from_array([1.0; 8]),
        ..SkillModel::default()
    };
    let mut engine = Engine::with_model(EngineParams::default(), Arc::new(unit));
    let mut log = AnswerLog::open(path)?;
    let timed = log.has_response_times();
    let bar = progress::bytes("replaying for the load fit", std::fs::metadata(path)?.len());
    let mut learners: HashMap<String, u32> = HashMap::new();
    let mut skills: HashMap<String, u32> = HashMap::new();
    // Per learner: (skill, correct, strengths) in answer order.
    let mut by_learner: Vec<Vec<(u32, bool, [f64; 8])>> = Vec::new();
    while let Some(row) = log.next_row()? {
        bar.set_position(log.position());
        let state = engine.apply(&row.event);
        let mut strengths = [0.0; 8];
        for reason in &state.load.reasons {
            if let Some(k) = SIGNALS.iter().position(|s| *s == reason.signal) {
                strengths[k] = reason.contribution;
            }
        }
        let next = learners.len() as u32;
        let learner = *learners.entry(row.user).or_insert(next);
        let next = skills.len() as u32;
        let skill = *skills.entry(row.skill).or_insert(next);
        if learner as usize == by_learner.len() {
            by_learner.push(Vec::new());
        }
        by_learner[learner as usize].push((skill, row.correct, strengths));
    }
    bar.finish_and_clear();
    let mut examples = Vec::new();
    for (learner, answers) in by_learner.iter().enumerate() {
        let outcomes: Vec<(u32, bool)> = answers.iter().map(|(s, c, _)| (*s, *c)).collect();
        for ((next_wrong, quit), (_, _, strengths)) in
            load_fit::label(&outcomes).into_iter().zip(answers)
        {
            examples.push(LoadExample {
                learner: learner as u32,
                strengths: *strengths,
                next_wrong,
                quit,
            });
        }
    }
    Ok((examples, timed))
}

/// Mean of the folds' scores.
fn mean(scores: &[LoadScores]) -> LoadScores {
    let n = scores.len().max(1) as f64;
    LoadScores {
        next_wrong_auc: scores.iter().map(|s| s.next_wrong_auc).sum::<f64>() / n,
        quit_auc: scores.iter().map(|s| s.quit_auc).sum::<f64>() / n,
        struggles_next_auc: scores.iter().map(|s| s.struggles_next_auc).sum::<f64>() / n,
    }
}

fn by_signal(values: [f64; 8]) -> serde_json::Value {
    SIGNALS
        .iter()
        .zip(values)
        .map(|(signal, v)| {
            (
                serde_json::to_value(signal)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
                json!(v),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

pub fn run(train: &Path, test: Option<&Path>, folds: u32) -> anyhow::Result<()> {
    anyhow::ensure!(folds >= 2, "--folds must be at least 2");
    let (examples, timed) = examples_of(train)?;
    anyhow::ensure!(!examples.is_empty(), "{} has no answers", train.display());
    if !timed {
        eprintln!(
            "warning: {} has no ms_first_response column: the slow-response and rapid-guess signals cannot be fitted",
            train.display()
        );
    }
    let fit = load_fit::fit(&examples);
    let cv = load_fit::cross_validate(&examples, folds);
    let hand: Vec<LoadScores> = cv.iter().map(|(h, _)| *h).collect();
    let fitted: Vec<LoadScores> = cv.iter().map(|(_, f)| *f).collect();
    let mut report = json!({
        "train": train, "rows": examples.len(),
        "learners": examples.last().map_or(0, |e| e.learner + 1),
        "struggles_next_rate": examples.iter().filter(|e| e.struggles_next()).count() as f64 / examples.len() as f64,
        "coefficients": by_signal(fit.coefficients),
        "intercept": fit.intercept,
        "observed": by_signal(fit.observed.map(|o| f64::from(u8::from(o)))),
        "weights": { "hand_set": by_signal(LoadWeights::hand_set().as_array()),
                     "fitted": by_signal(fit.weights.as_array()) },
        "cv": { "folds": folds, "hand_set": mean(&hand), "fitted": mean(&fitted) },
    });
    if let Some(test) = test {
        let (held_out, _) = examples_of(test)?;
        report["test"] = json!({
            "file": test, "rows": held_out.len(),
            "hand_set": load_fit::score(&LoadWeights::hand_set(), &held_out),
            "fitted": load_fit::score(&fit.weights, &held_out),
        });
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
