//! Reading an answer log (CSV, one scored answer per row, in time order per learner) as the
//! learner engine's events: what `replay` and `kt load-fit` stream through the engine.

use std::path::{Path, PathBuf};

use anyhow::Context;

use learnpulse_core::kt::data::parse_correct;
use learnpulse_core::{LearningEvent, Outcome};

/// An open answer log with user_id,seq,skill_name,correct and optionally ms_first_response,
/// hint_count, attempt_count, item_id or problem_id (the columns of ASSISTments' logs).
pub struct AnswerLog {
    path: PathBuf,
    reader: csv::Reader<std::fs::File>,
    record: csv::StringRecord,
    /// Answers read so far per learner: each learner's clock, one millisecond per answer (the
    /// logs have no times; a clock shared by all rows would show long pauses between a
    /// learner's answers in a log that interleaves learners).
    clocks: std::collections::HashMap<String, i64>,
    user: usize,
    seq: usize,
    skill: usize,
    correct: usize,
    time: Option<usize>,
    hints: Option<usize>,
    attempt: Option<usize>,
    item: Option<usize>,
}

/// One row, with the event the engine sees.
pub struct AnswerRow {
    pub user: String,
    pub seq: String,
    pub skill: String,
    /// The item cell, when the log names items and the cell is not empty.
    pub item: Option<String>,
    pub correct: bool,
    pub event: LearningEvent,
}

impl AnswerLog {
    pub fn open(path: &Path) -> anyhow::Result<AnswerLog> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let columns = reader.headers().context("reading the header")?.clone();
        let find = |name: &str| columns.iter().position(|c| c == name);
        let need =
            |name: &str| find(name).with_context(|| format!("the input has no {name:?} column"));
        Ok(AnswerLog {
            path: path.to_path_buf(),
            user: need("user_id")?,
            seq: need("seq")?,
            skill: need("skill_name")?,
            correct: need("correct")?,
            time: find("ms_first_response"),
            hints: find("hint_count"),
            attempt: find("attempt_count"),
            item: find("item_id").or_else(|| find("problem_id")),
            reader,
            record: csv::StringRecord::new(),
            clocks: std::collections::HashMap::new(),
        })
    }

    /// Whether the log has response times (what the load signals need).
    pub fn has_response_times(&self) -> bool {
        self.time.is_some()
    }

    /// Bytes read so far (for a progress bar).
    pub fn position(&self) -> u64 {
        self.record.position().map_or(0, |p| p.byte())
    }

    /// The next row; `None` at the end. Blank rows are skipped.
    pub fn next_row(&mut self) -> anyhow::Result<Option<AnswerRow>> {
        loop {
            if !self
                .reader
                .read_record(&mut self.record)
                .with_context(|| format!("reading {}", self.path.display()))?
            {
                return Ok(None);
            }
            if !self.record.iter().all(str::is_empty) {
                break;
            }
        }
        let f = &self.record;
        let line = f.position().map_or(0, |p| p.line());
        let field = |i: usize| f.get(i).unwrap_or("");
        let number = |i: Option<usize>| i.and_then(|i| field(i).parse::<f64>().ok());
        let Some(correct) = parse_correct(field(self.correct)) else {
            anyhow::bail!(
                "line {line}: correct {:?} is not 0 or 1",
                field(self.correct)
            );
        };
        let (user, skill) = (field(self.user).to_owned(), field(self.skill).to_owned());
        let clock = self.clocks.entry(user.clone()).or_default();
        let timestamp_ms = *clock;
        *clock += 1;
        let item = self
            .item
            .map(field)
            .filter(|i| !i.is_empty())
            .map(str::to_owned);
        let event = LearningEvent {
            learner: user.clone(),
            group: None,
            session: None,
            item: item.clone().unwrap_or_else(|| skill.clone()),
            skills: vec![skill.clone()],
            outcome: if correct {
                Outcome::Correct
            } else {
                Outcome::Incorrect
            },
            response_time_ms: number(self.time)
                .filter(|ms| *ms >= 0.0)
                .map(|ms| ms as u64),
            hints_used: number(self.hints).map_or(0, |h| h.max(0.0) as u32),
            attempt: number(self.attempt).map_or(1, |a| a.max(1.0) as u32),
            timestamp_ms,
        };
        Ok(Some(AnswerRow {
            user,
            seq: field(self.seq).to_owned(),
            skill,
            item,
            correct,
            event,
        }))
    }
}
