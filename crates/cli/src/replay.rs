//! `learnpulse replay`: stream an answer log through the learner engine and write, for every
//! row, the engine's state *before* that row, so its judgements can be checked against what the
//! learner did next.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use learnpulse_core::load::SIGNALS;
use learnpulse_core::{Engine, EngineParams, SkillModel};

use crate::answer_log::AnswerLog;
use crate::progress;

#[derive(Args)]
pub struct ReplayArgs {
    /// CSV with user_id,seq,skill_name,correct and optionally ms_first_response, hint_count,
    /// attempt_count, item_id or problem_id (the columns of ASSISTments' logs); rows in time
    /// order per learner.
    #[arg(long)]
    input: PathBuf,
    /// Where to write user_id,seq,skill_name,p_correct,mastery,load_index,load_level,
    /// rapid_guess,wheel_spinning,risk (one row per input row, same order).
    #[arg(long)]
    output: PathBuf,
    /// A fitted model file from `learnpulse kt fit` (default: textbook BKT for every skill).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Also print, as JSON, how often the next answer was correct when each signal of the state
    /// was on and off: the evidence behind the load, struggle and risk signals.
    #[arg(long)]
    evidence: bool,
}

/// Correct answers and rows seen under one condition.
#[derive(Default, Clone, Copy)]
struct Tally {
    correct: u64,
    rows: u64,
}

impl Tally {
    fn add(&mut self, correct: bool) {
        self.rows += 1;
        self.correct += u64::from(correct);
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "rows": self.rows,
            "next_correct": if self.rows == 0 { None } else { Some(self.correct as f64 / self.rows as f64) },
        })
    }
}

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let model = match &args.model {
        Some(path) => learnpulse_server::model_file::load(path)?,
        None => SkillModel::default(),
    };
    let mut engine = Engine::with_model(EngineParams::default(), Arc::new(model));
    let input_bytes = std::fs::metadata(&args.input)
        .with_context(|| format!("opening {}", args.input.display()))?
        .len();
    let mut input = AnswerLog::open(&args.input)?;

    let mut out = csv::Writer::from_path(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    out.write_record([
        "user_id",
        "seq",
        "skill_name",
        "p_correct",
        "mastery",
        "load_index",
        "load_level",
        "rapid_guess",
        "wheel_spinning",
        "risk",
    ])?;
    let bar = progress::bytes("replaying", input_bytes);
    let mut rows = 0u64;
    // Condition name -> (tally when on, tally when off).
    let mut evidence: std::collections::BTreeMap<String, (Tally, Tally)> =
        std::collections::BTreeMap::new();
    let mut all = Tally::default();
    while let Some(row) = input.next_row()? {
        if rows.is_multiple_of(4096) {
            bar.set_position(input.position());
        }
        let (user, skill, correct) = (row.user.as_str(), row.skill.as_str(), row.correct);

        // The state before this row.
        let (mastery, p_correct) = engine.predict(user, skill, row.item.as_deref());
        let state = engine.learner(user);
        let (load_index, load_level, rapid_guess) = state
            .map(|s| {
                (
                    s.load.index,
                    format!("{:?}", s.load.level).to_lowercase(),
                    s.load.rapid_guess,
                )
            })
            .unwrap_or((0.0, "low".to_owned(), false));
        let wheel_spinning = state
            .and_then(|s| s.skills.get(skill))
            .is_some_and(|s| s.wheel_spinning);
        let risk = state.map_or(0.0, |s| s.risk.score);
        out.write_record([
            user,
            &row.seq,
            skill,
            &format!("{p_correct:.6}"),
            &format!("{mastery:.6}"),
            &format!("{load_index:.4}"),
            &load_level,
            if rapid_guess { "1" } else { "0" },
            if wheel_spinning { "1" } else { "0" },
            &format!("{risk:.4}"),
        ])?;

        if args.evidence {
            all.add(correct);
            let signals = state
                .map(|s| s.load.reasons.iter().map(|r| r.signal).collect::<Vec<_>>())
                .unwrap_or_default();
            let mut conditions: Vec<(String, bool)> = vec![
                ("rapid_guess".into(), rapid_guess),
                ("wheel_spinning".into(), wheel_spinning),
                ("risk >= 0.5".into(), risk >= 0.5),
                ("risk > 0".into(), risk > 0.0),
                ("p_correct < 0.5".into(), p_correct < 0.5),
            ];
            for level in ["low", "productive", "high", "overloaded"] {
                conditions.push((format!("load_level = {level}"), load_level == level));
            }
            for signal in SIGNALS {
                let name = serde_json::to_value(signal)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                conditions.push((format!("load signal {name}"), signals.contains(&signal)));
            }
            for (name, on) in conditions {
                let entry = evidence.entry(name).or_default();
                if on {
                    entry.0.add(correct)
                } else {
                    entry.1.add(correct)
                }
            }
        }

        engine.apply(&row.event);
        rows += 1;
    }
    out.flush()?;
    bar.finish_and_clear();
    eprintln!("replayed {rows} rows into {}", args.output.display());
    if args.evidence {
        let table: serde_json::Map<String, serde_json::Value> = evidence
            .into_iter()
            .map(|(name, (on, off))| {
                (
                    name,
                    serde_json::json!({"on": on.json(), "off": off.json()}),
                )
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"all_rows": all.json(), "signals": table})
            )?
        );
    }
    Ok(())
}
