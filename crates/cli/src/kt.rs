//! `learnpulse kt ...`: fit and evaluate knowledge-tracing models on answer logs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use serde_json::json;

use crate::progress;

use learnpulse_core::kt::bkt::{BktFitOptions, BktModel};
use learnpulse_core::kt::data::Names;
use learnpulse_core::kt::logistic::{LogisticModel, LogisticOptions, NamedLogistic};
use learnpulse_core::kt::{Dataset, evaluate, metrics, wheelspin};

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
        /// The model (default: the best in cross-validation on the given training files).
        #[arg(long, value_enum, default_value_t = ModelName::Logistic)]
        model: ModelName,
    },
    /// Fit per-skill knowledge-tracing parameters and the wheel-spinning predictor, either on a
    /// CSV log (`--train`, written to `--output`) or on a server's own event log (`--data-dir`,
    /// stored as a new version in DIR/models/ and made current: the server loads it at its next
    /// start).
    Fit {
        #[arg(
            long,
            conflicts_with = "data_dir",
            required_unless_present = "data_dir"
        )]
        train: Option<PathBuf>,
        /// A server's data directory: fit on its event log.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Only this tenant's learners (with --data-dir).
        #[arg(long, requires = "data_dir")]
        tenant: Option<i64>,
        /// Where to write the model (required with --train).
        #[arg(long, required_unless_present = "data_dir")]
        output: Option<PathBuf>,
        /// What predicts P(correct) in the engine: bkt, bkt-forget, or logistic (then mastery
        /// per skill is still bkt-forget's, and P(correct) the logistic model's).
        #[arg(long, value_enum, default_value_t = ModelName::BktForget)]
        model: ModelName,
    },
    /// Fit the early wheel-spinning predictor on a training log and report its AUC on a test log,
    /// after each number of opportunities (how early it can tell).
    Wheelspin {
        #[arg(long)]
        train: PathBuf,
        #[arg(long)]
        test: PathBuf,
    },
    /// Fit the cognitive-load index's weights on a log with response times (ASSISTments'
    /// columns: ms_first_response, hint_count, attempt_count): a non-negative logistic
    /// regression of "struggles next" (the next answer is wrong, or the learner quits the skill
    /// unmastered) on each signal's strength. Reports the hand-set and the fitted weights and
    /// how well each ranks struggling learners, cross-validated by learner, and on `--test`.
    /// `kt fit` puts weights fitted this way into the model file when its log has response times.
    LoadFit {
        #[arg(long)]
        train: PathBuf,
        #[arg(long)]
        test: Option<PathBuf>,
        #[arg(long, default_value_t = 5)]
        folds: u32,
    },
    /// Cross-validate every model on a training log (folds by learner) and report AUC, RMSE and
    /// fit time of each: how the default model is chosen.
    Cv {
        #[arg(long)]
        train: PathBuf,
        #[arg(long, default_value_t = 5)]
        folds: u32,
        /// Only these models (repeat the flag; default: every model).
        #[arg(long = "model", value_enum)]
        models: Vec<ModelName>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum ModelName {
    /// Standard BKT per skill, EM with restarts.
    Bkt,
    /// BKT with a fitted forgetting probability per skill.
    BktForget,
    /// Logistic regression on per-skill, per-learner and recent count features, with item
    /// difficulties when the log names items (PFA / Elo family, Gervet et al. 2020).
    Logistic,
}

/// Reads an answer log; `names` are the skill and item ids of an earlier set to share.
fn read(path: &Path, names: Names) -> anyhow::Result<Dataset> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Dataset::parse_csv(&text, names).with_context(|| format!("parsing {}", path.display()))
}

/// The scored answers in a server's event log, one row per skill of each answer.
fn from_event_log(data_dir: &Path, tenant: Option<i64>) -> anyhow::Result<Dataset> {
    use learnpulse_server::live::LiveInput;
    use learnpulse_server::storage::EventLog;
    anyhow::ensure!(
        data_dir.join("learnpulse.db").exists(),
        "{} has no event log",
        data_dir.display()
    );
    let config = learnpulse_server::Config {
        data_dir: data_dir.to_path_buf(),
        ..Default::default()
    };
    // `kt` runs synchronously inside the CLI's runtime: read the log on this thread.
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(async {
            let store = learnpulse_server::storage::open(&config).await?;
            let mut builder = Dataset::builder();
            let bar = progress::bar("reading the event log", store.head().await?.max(0) as u64);
            let mut after = 0;
            loop {
                let page = store.read_log(after, 10_000).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for entry in &page {
                    // A voided answer never happened, for the fit as for the engine.
                    if entry.voided || tenant.is_some_and(|only| only != entry.tenant) {
                        continue;
                    }
                    let Some(LiveInput::Event { event, .. }) = LiveInput::of(entry) else {
                        continue;
                    };
                    let correct = match event.outcome {
                        learnpulse_core::Outcome::Correct => true,
                        learnpulse_core::Outcome::Incorrect => false,
                        learnpulse_core::Outcome::Unscored => continue,
                    };
                    for skill in &event.skills {
                        builder.push(
                            &format!("{}/{}", entry.tenant, event.learner),
                            skill,
                            Some(&event.item),
                            correct,
                        );
                    }
                }
                bar.set_position(after.max(0) as u64);
            }
            bar.finish_and_clear();
            eprintln!("read the event log of {}", data_dir.display());
            store.shutdown().await;
            Ok(builder.finish())
        })
    })
}

/// Fits `model` on `train` and predicts `test` one step ahead; returns predictions and fit time.
fn fit_and_predict(
    model: ModelName,
    train: &Dataset,
    test: &Dataset,
    quiet: bool,
) -> (Vec<f64>, f64) {
    let started = Instant::now();
    let mut silent = |_: usize, _: usize| {};
    match model {
        ModelName::Bkt | ModelName::BktForget => {
            let options = BktFitOptions {
                forgetting: model == ModelName::BktForget,
                ..Default::default()
            };
            let mut report = progress::reporter("fitting BKT skills");
            let progress: &mut dyn FnMut(usize, usize) =
                if quiet { &mut silent } else { &mut report };
            let fitted = BktModel::fit(train, &options, progress);
            let seconds = started.elapsed().as_secs_f64();
            (evaluate(&&fitted, test), seconds)
        }
        ModelName::Logistic => {
            let mut report = progress::reporter("training epochs");
            let progress: &mut dyn FnMut(usize, usize) =
                if quiet { &mut silent } else { &mut report };
            let fitted = LogisticModel::fit(train, &LogisticOptions::default(), progress);
            let seconds = started.elapsed().as_secs_f64();
            (evaluate(&&fitted, test), seconds)
        }
    }
}

pub fn run(command: KtCommand) -> anyhow::Result<()> {
    match command {
        KtCommand::Wheelspin { train, test } => {
            let train_data = read(&train, Names::default())?;
            let test_data = read(&test, train_data.names())?;
            let started = Instant::now();
            let model = wheelspin::fit(
                &train_data,
                &mut progress::reporter("fitting the wheel-spinning predictor"),
            );
            let fit_seconds = started.elapsed().as_secs_f64();
            let examples = wheelspin::examples(&test_data);
            let mut by_opportunity = Vec::new();
            for n in 1..10u32 {
                let (p, y): (Vec<f64>, Vec<bool>) = examples
                    .iter()
                    .filter(|e| e.practice.attempts == n)
                    .map(|e| (model.predict(&e.practice), e.wheel_spun))
                    .unzip();
                by_opportunity.push(json!({
                    "after_opportunities": n, "points": p.len(),
                    "wheel_spin_rate": y.iter().filter(|w| **w).count() as f64 / y.len().max(1) as f64,
                    "auc": metrics::auc(&p, &y),
                }));
            }
            let (p, y): (Vec<f64>, Vec<bool>) = examples
                .iter()
                .map(|e| (model.predict(&e.practice), e.wheel_spun))
                .unzip();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "weights": model.weights, "fit_seconds": fit_seconds,
                    "auc_all_points": metrics::auc(&p, &y), "by_opportunity": by_opportunity,
                }))?
            );
            Ok(())
        }
        KtCommand::Fit {
            train,
            data_dir,
            tenant,
            output,
            model,
        } => {
            let data = match (&train, &data_dir) {
                (Some(train), _) => read(train, Names::default())?,
                (None, Some(dir)) => from_event_log(dir, tenant)?,
                (None, None) => anyhow::bail!("give --train FILE or --data-dir DIR"),
            };
            anyhow::ensure!(
                !data.answers.is_empty(),
                "no scored answers with skills to fit on"
            );
            let started = Instant::now();
            // Mastery is BKT's (with forgetting unless plain `bkt` is asked for); with
            // `logistic`, the logistic model predicts P(correct).
            let options = BktFitOptions {
                forgetting: model != ModelName::Bkt,
                ..Default::default()
            };
            let fitted = BktModel::fit(
                &data,
                &options,
                &mut progress::reporter("fitting BKT skills"),
            );
            let mut skill_model = fitted.to_skill_model(&data.skills);
            skill_model.wheel_spin = Some(wheelspin::fit(
                &data,
                &mut progress::reporter("fitting the wheel-spinning predictor"),
            ));
            if model == ModelName::Logistic {
                let logistic = LogisticModel::fit(
                    &data,
                    &LogisticOptions::default(),
                    &mut progress::reporter("training epochs"),
                );
                skill_model.logistic = Some(NamedLogistic::new(logistic, &data.names()));
            }
            // The load index's weights, when the log shows response times.
            if let Some(train) = &train {
                let (examples, timed) = crate::load_fit::examples_of(train)?;
                if timed && !examples.is_empty() {
                    skill_model.load = learnpulse_core::kt::load_fit::fit(&examples).weights;
                }
            }
            let file = learnpulse_server::model_file::ModelFile {
                format: learnpulse_server::model_file::FORMAT.to_owned(),
                version: learnpulse_server::model_file::VERSION,
                kind: format!("{model:?}").to_lowercase(),
                rows: data.answers.len(),
                skill_model,
            };
            let output = match (output, &data_dir) {
                (Some(output), _) => {
                    std::fs::write(&output, serde_json::to_string_pretty(&file)?)
                        .with_context(|| format!("writing {}", output.display()))?;
                    output
                }
                (None, Some(dir)) => learnpulse_server::model_file::save_version(dir, &file)?,
                (None, None) => anyhow::bail!("--output is required with --train"),
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "model": file.kind, "skills": data.skills.len(), "rows": data.answers.len(),
                    "fit_seconds": started.elapsed().as_secs_f64(), "output": output,
                }))?
            );
            Ok(())
        }
        KtCommand::LoadFit { train, test, folds } => {
            crate::load_fit::run(&train, test.as_deref(), folds)
        }
        KtCommand::Cv {
            train,
            folds,
            models,
        } => {
            anyhow::ensure!(folds >= 2, "--folds must be at least 2");
            let data = read(&train, Names::default())?;
            let mut results = Vec::new();
            let models = if models.is_empty() {
                vec![ModelName::Bkt, ModelName::BktForget, ModelName::Logistic]
            } else {
                models
            };
            let bar = progress::bar(
                "cross-validating (model x fold)",
                (models.len() as u64) * u64::from(folds),
            );
            for model in models {
                let (mut predicted, mut outcomes, mut fit_seconds) = (Vec::new(), Vec::new(), 0.0);
                for fold in 0..folds {
                    bar.set_message(format!("cross-validating {model:?}"));
                    let (fit_on, held_out) = data.split_learners(folds, fold);
                    let (p, seconds) = fit_and_predict(model, &fit_on, &held_out, true);
                    fit_seconds += seconds;
                    predicted.extend(p);
                    outcomes.extend(held_out.answers.iter().map(|a| a.correct));
                    bar.inc(1);
                }
                results.push(json!({
                    "model": format!("{model:?}").to_lowercase(),
                    "auc": metrics::auc(&predicted, &outcomes),
                    "rmse": metrics::rmse(&predicted, &outcomes),
                    "mean_fit_seconds": fit_seconds / f64::from(folds),
                }));
            }
            bar.finish_and_clear();
            let best = results
                .iter()
                .max_by(|a, b| {
                    a["auc"]
                        .as_f64()
                        .unwrap_or(0.0)
                        .total_cmp(&b["auc"].as_f64().unwrap_or(0.0))
                })
                .map(|r| r["model"].clone());
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"folds": folds, "models": results, "best": best})
                )?
            );
            Ok(())
        }
        KtCommand::Eval {
            train,
            test,
            predictions,
            model,
        } => {
            let train_data = read(&train, Names::default())?;
            let test_data = read(&test, train_data.names())?;
            let started = Instant::now();
            let p = fit_and_predict(model, &train_data, &test_data, false);
            let (predicted, fit_seconds) = p;
            let outcomes: Vec<bool> = test_data.answers.iter().map(|a| a.correct).collect();
            if let Some(path) = predictions {
                let mut out = csv::Writer::from_path(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                out.write_record(["user_id", "seq", "skill_name", "correct", "p_correct"])?;
                for (a, p) in test_data.answers.iter().zip(&predicted) {
                    out.write_record([
                        test_data.learners[a.learner as usize].as_str(),
                        &a.seq.to_string(),
                        &test_data.skills[a.skill as usize],
                        if a.correct { "1" } else { "0" },
                        &format!("{p:.6}"),
                    ])?;
                }
                out.flush()?;
            }
            let summary = json!({
                "model": format!("{model:?}").to_lowercase(),
                "train_rows": train_data.answers.len(),
                "items": train_data.items.len(),
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
