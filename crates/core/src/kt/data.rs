//! Answer logs as the knowledge-tracing code sees them: learners, skills and items interned to
//! small integers, rows kept in file order, with each learner's rows indexable in sequence order.
//!
//! Logs are CSV files (read with the `csv` crate: quoted fields may hold commas, quotes and
//! newlines) with a header naming at least `user_id,seq,skill_name,correct`. An `item_id` column
//! (or, in ASSISTments' logs, `problem_id`) names the item answered; models that know items use
//! it.

use std::collections::HashMap;

/// One answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub learner: u32,
    /// Position in the learner's log (answers are in time order).
    pub seq: u64,
    pub skill: u32,
    /// The item (problem) answered, when the log names items.
    pub item: Option<u32>,
    pub correct: bool,
}

/// The names behind interned ids, shared between a training set and a test set so that both use
/// the same ids (a test set appends what the training set did not have).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Names {
    pub skills: Vec<String>,
    pub items: Vec<String>,
}

/// A log of answers.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// In the order of the source (the order predictions are reported in).
    pub answers: Vec<Answer>,
    pub learners: Vec<String>,
    /// Skill names; a skill's id is its index. Shared between a training and a test set.
    pub skills: Vec<String>,
    /// Item names, likewise (empty when the log names no items).
    pub items: Vec<String>,
    /// For each learner, the indices of their answers in sequence order.
    learner_rows: Vec<Vec<usize>>,
}

/// A problem with an input file, naming the line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

impl Dataset {
    /// Parses CSV text with a header holding at least `user_id,seq,skill_name,correct` and
    /// optionally `item_id` (else `problem_id`); other columns are ignored. `names` carries the
    /// ids of an earlier set (a training set), so that a test set uses the same ids; new skills
    /// and items are appended.
    pub fn parse_csv(text: &str, names: Names) -> Result<Dataset, ParseError> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let header = reader.headers().map_err(|e| csv_error(&e, 1))?.clone();
        if header.is_empty() {
            return Err(ParseError {
                line: 1,
                message: "empty file".into(),
            });
        }
        let col = |name: &str| header.iter().position(|c| c == name);
        let need = |name: &str| {
            col(name).ok_or(ParseError {
                line: 1,
                message: format!("missing column {name:?}"),
            })
        };
        let (c_user, c_seq, c_skill, c_correct) = (
            need("user_id")?,
            need("seq")?,
            need("skill_name")?,
            need("correct")?,
        );
        let c_item = col("item_id").or_else(|| col("problem_id"));

        let mut skill_ids = ids_of(&names.skills);
        let mut item_ids = ids_of(&names.items);
        let mut data = Dataset {
            skills: names.skills,
            items: names.items,
            ..Dataset::default()
        };
        let mut learner_ids: HashMap<String, u32> = HashMap::new();
        let mut record = csv::StringRecord::new();
        loop {
            let line = reader.position().line() as usize;
            match reader.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(csv_error(&e, line)),
            }
            let line = record.position().map_or(line, |p| p.line() as usize);
            if record.iter().all(str::is_empty) {
                continue;
            }
            let field = |i: usize| record.get(i).unwrap_or_default();
            let learner = intern(&mut learner_ids, &mut data.learners, field(c_user));
            let skill = intern(&mut skill_ids, &mut data.skills, field(c_skill));
            let item = c_item
                .map(field)
                .filter(|v| !v.is_empty())
                .map(|v| intern(&mut item_ids, &mut data.items, v));
            let seq = field(c_seq).parse::<u64>().map_err(|_| ParseError {
                line,
                message: format!("seq {:?} is not a number", field(c_seq)),
            })?;
            let correct = parse_correct(field(c_correct)).ok_or_else(|| ParseError {
                line,
                message: format!("correct {:?} is not 0 or 1", field(c_correct)),
            })?;
            data.answers.push(Answer {
                learner,
                seq,
                skill,
                item,
                correct,
            });
        }
        data.index();
        Ok(data)
    }

    /// The names behind this set's skill and item ids, for a set that must share them.
    pub fn names(&self) -> Names {
        Names {
            skills: self.skills.clone(),
            items: self.items.clone(),
        }
    }

    /// Starts an empty dataset to which answers are added one by one, in each learner's order.
    pub fn builder() -> DatasetBuilder {
        DatasetBuilder::default()
    }

    /// Builds a dataset from answers (tests, simulations).
    pub fn from_answers(answers: Vec<Answer>, learners: usize, skills: usize) -> Dataset {
        let mut data = Dataset {
            answers,
            learners: (0..learners).map(|i| i.to_string()).collect(),
            skills: (0..skills).map(|i| i.to_string()).collect(),
            items: Vec::new(),
            learner_rows: Vec::new(),
        };
        data.index();
        data
    }

    fn index(&mut self) {
        let mut rows = vec![Vec::new(); self.learners.len()];
        for (i, a) in self.answers.iter().enumerate() {
            rows[a.learner as usize].push(i);
        }
        for r in &mut rows {
            // Stable: equal seq numbers keep file order.
            r.sort_by_key(|&i| self.answers[i].seq);
        }
        self.learner_rows = rows;
    }

    /// Each learner's answer indices, in sequence order.
    pub fn by_learner(&self) -> impl Iterator<Item = &[usize]> {
        self.learner_rows.iter().map(Vec::as_slice)
    }

    /// Each skill's answer sequences, one per learner who practised it, in learner order: what
    /// per-skill models (BKT, the wheel-spinning predictor) learn from. Indexed by skill id.
    pub fn sequences_by_skill(&self) -> Vec<Vec<Vec<bool>>> {
        let mut by_skill: Vec<Vec<Vec<bool>>> = vec![Vec::new(); self.skills.len()];
        for rows in self.by_learner() {
            let mut current: HashMap<u32, Vec<bool>> = HashMap::new();
            for &i in rows {
                let a = &self.answers[i];
                current.entry(a.skill).or_default().push(a.correct);
            }
            for (skill, seq) in current {
                by_skill[skill as usize].push(seq);
            }
        }
        by_skill
    }

    /// Splits learners into two sets by a deterministic hash of their index (`fold` of `folds`
    /// goes to the second set): cross-validation by learner, never by row.
    pub fn split_learners(&self, folds: u32, fold: u32) -> (Dataset, Dataset) {
        let in_fold = |learner: u32| (learner.wrapping_mul(2_654_435_761) >> 7) % folds == fold;
        let pick = |want: bool| {
            let answers: Vec<Answer> = self
                .answers
                .iter()
                .copied()
                .filter(|a| in_fold(a.learner) == want)
                .collect();
            let mut d = Dataset {
                answers,
                learners: self.learners.clone(),
                skills: self.skills.clone(),
                items: self.items.clone(),
                learner_rows: Vec::new(),
            };
            d.index();
            d
        };
        (pick(false), pick(true))
    }
}

/// Adds answers by name (learners and skills are interned on the way).
#[derive(Default)]
pub struct DatasetBuilder {
    data: Dataset,
    learner_ids: HashMap<String, u32>,
    skill_ids: HashMap<String, u32>,
    item_ids: HashMap<String, u32>,
    next_seq: HashMap<u32, u64>,
}

impl DatasetBuilder {
    /// Adds the learner's next answer (to `item`, when known).
    pub fn push(&mut self, learner: &str, skill: &str, item: Option<&str>, correct: bool) {
        let learner = intern(&mut self.learner_ids, &mut self.data.learners, learner);
        let skill = intern(&mut self.skill_ids, &mut self.data.skills, skill);
        let item = item.map(|i| intern(&mut self.item_ids, &mut self.data.items, i));
        let seq = self.next_seq.entry(learner).or_insert(0);
        self.data.answers.push(Answer {
            learner,
            seq: *seq,
            skill,
            item,
            correct,
        });
        *seq += 1;
    }

    pub fn finish(mut self) -> Dataset {
        self.data.index();
        self.data
    }
}

fn ids_of(names: &[String]) -> HashMap<String, u32> {
    names
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), i as u32))
        .collect()
}

/// A CSV reading error as a [`ParseError`] on the line it happened (or `line`).
fn csv_error(e: &csv::Error, line: usize) -> ParseError {
    ParseError {
        line: e.position().map_or(line, |p| p.line() as usize),
        message: e.to_string(),
    }
}

fn intern(ids: &mut HashMap<String, u32>, names: &mut Vec<String>, name: &str) -> u32 {
    if let Some(id) = ids.get(name) {
        return *id;
    }
    let id = names.len() as u32;
    names.push(name.to_owned());
    ids.insert(name.to_owned(), id);
    id
}

/// A 0/1 outcome as logs write it (`1`, `1.0`, `true`, ...).
pub fn parse_correct(field: &str) -> Option<bool> {
    match field.trim() {
        "1" | "1.0" | "true" => Some(true),
        "0" | "0.0" | "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_extra_columns_quotes_and_orders_each_learner_by_seq() {
        let text = "user_id,seq,skill_name,correct,extra\na,1,\"Add, subtract\",1,x\nb,0,Area,0,y\na,0,Area,0,z\n";
        let d = Dataset::parse_csv(
            text,
            Names {
                skills: vec!["Area".into()],
                items: Vec::new(),
            },
        )
        .unwrap();
        assert_eq!(
            d.skills,
            vec!["Area".to_string(), "Add, subtract".to_string()]
        );
        assert_eq!(d.answers.len(), 3);
        assert!(d.answers.iter().all(|a| a.item.is_none()));
        let rows: Vec<&[usize]> = d.by_learner().collect();
        assert_eq!(rows[0], &[2, 0], "learner a's seq 0 comes first");
        assert!(Dataset::parse_csv("user_id,seq,skill_name\n", Names::default()).is_err());
        let err = Dataset::parse_csv(
            "user_id,seq,skill_name,correct\na,x,s,1\n",
            Names::default(),
        )
        .unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn a_quoted_newline_stays_in_its_field_and_items_are_read() {
        let text = "user_id,seq,skill_name,correct,problem_id\n\
                    a,0,\"Area,\nof a circle\",1,p7\n\
                    a,1,Area,0,p7\n\
                    b,0,Area,oops,p8\n";
        let err = Dataset::parse_csv(text, Names::default()).unwrap_err();
        assert_eq!(err.line, 5, "the quoted newline counts as a line: {err}");
        let d = Dataset::parse_csv(&text.replace("oops", "1"), Names::default()).unwrap();
        assert_eq!(d.skills, ["Area,\nof a circle", "Area"]);
        assert_eq!(d.items, ["p7", "p8"]);
        assert_eq!(d.answers[1].item, Some(0));
        let test = Dataset::parse_csv(
            "user_id,seq,skill_name,correct,item_id\nc,0,Area,1,p8\nc,1,Area,1,p9\n",
            d.names(),
        )
        .unwrap();
        assert_eq!(
            test.answers[0].item,
            Some(1),
            "ids shared with the earlier set"
        );
        assert_eq!(test.items, ["p7", "p8", "p9"]);
    }
}
