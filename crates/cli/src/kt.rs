//! `learnpulse kt ...`: fit and evaluate knowledge-tracing models on answer logs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use serde_json::json;

use learnpulse_core::kt::bkt::{BktFitOptions, BktModel};
use learnpulse_core::kt::logistic::{LogisticModel, LogisticOptions};
use learnpulse_core::kt::{Dataset, evaluate, metrics};

#[derive(Subcommand)]
pub enum KtCommand {
    /// Fit on a training log, predict every row of a test log one step ahead, and report.
    ///
    /// Input CSVs have a header with at least user_id,seq,skill_name,correct (extra columns are
    /// ignored). The prediction for a test row uses only that learner's earlier test rows.
    Eval {
        #[arg(long)]
        train: PathBuf,
        #[arg(long)]
        test: PathBuf,
        /// Where to write user_id,seq,skill_name,correct,p_correct, in the test file's row order.
        #[arg(long)]
        predictions: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = ModelName::Logistic)]
        model: ModelName,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum ModelName {
    /// Standard BKT per skill, EM with restarts.
    Bkt,
    /// BKT with a fitted forgetting probability per skill.
    BktForget,
    /// Logistic regression on per-skill and per-learner count features (PFA / Elo family).
    Logistic,
}

fn read(path: &Path, skills: Vec<String>) -> anyhow::Result<Dataset> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Dataset::parse_csv(&text, skills).with_context(|| format!("parsing {}", path.display()))
}

fn progress_line(what: &str) -> impl FnMut(usize, usize) + '_ {
    let mut last = Instant::now();
    move |done, total| {
        if last.elapsed().as_millis() >= 200 || done == total {
            last = Instant::now();
            eprint!(
                "\r{what}: {done}/{total} ({:.0} %)   ",
                100.0 * done as f64 / total.max(1) as f64
            );
            if done == total {
                eprintln!();
            }
        }
    }
}

pub fn run(command: KtCommand) -> anyhow::Result<()> {
    match command {
        KtCommand::Eval {
            train,
            test,
            predictions,
            model,
        } => {
            let train_data = read(&train, Vec::new())?;
            let test_data = read(&test, train_data.skills.clone())?;
            let started = Instant::now();
            let p = match model {
                ModelName::Bkt | ModelName::BktForget => {
                    let options = BktFitOptions {
                        forgetting: model == ModelName::BktForget,
                        ..Default::default()
                    };
                    let fitted = BktModel::fit(
                        &train_data,
                        &options,
                        &mut progress_line("fitting BKT skills"),
                    );
                    let fit_seconds = started.elapsed().as_secs_f64();
                    (evaluate(&&fitted, &test_data), fit_seconds)
                }
                ModelName::Logistic => {
                    let fitted = LogisticModel::fit(
                        &train_data,
                        &LogisticOptions::default(),
                        &mut progress_line("training"),
                    );
                    let fit_seconds = started.elapsed().as_secs_f64();
                    (evaluate(&&fitted, &test_data), fit_seconds)
                }
            };
            let (predicted, fit_seconds) = p;
            let outcomes: Vec<bool> = test_data.answers.iter().map(|a| a.correct).collect();
            if let Some(path) = predictions {
                let mut out = std::io::BufWriter::new(
                    std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?,
                );
                writeln!(out, "user_id,seq,skill_name,correct,p_correct")?;
                for (a, p) in test_data.answers.iter().zip(&predicted) {
                    let skill = &test_data.skills[a.skill as usize];
                    let skill = if skill.contains(',') || skill.contains('"') {
                        format!("\"{}\"", skill.replace('"', "\"\""))
                    } else {
                        skill.clone()
                    };
                    writeln!(
                        out,
                        "{},{},{},{},{:.6}",
                        test_data.learners[a.learner as usize],
                        a.seq,
                        skill,
                        u8::from(a.correct),
                        p
                    )?;
                }
            }
            let summary = json!({
                "model": format!("{model:?}").to_lowercase(),
                "train_rows": train_data.answers.len(),
                "test_rows": test_data.answers.len(),
                "auc": metrics::auc(&predicted, &outcomes),
                "rmse": metrics::rmse(&predicted, &outcomes),
                "log_loss": metrics::log_loss(&predicted, &outcomes),
                "fit_seconds": fit_seconds,
                "total_seconds": started.elapsed().as_secs_f64(),
            });
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(())
        }
    }
}
