//! Answer logs as the knowledge-tracing code sees them: learners and skills interned to small
//! integers, rows kept in file order, with each learner's rows indexable in sequence order.

use std::collections::HashMap;

/// One answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub learner: u32,
    /// Position in the learner's log (answers are in time order).
    pub seq: u64,
    pub skill: u32,
    pub correct: bool,
}

/// A log of answers.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// In the order of the source (the order predictions are reported in).
    pub answers: Vec<Answer>,
    pub learners: Vec<String>,
    /// Skill names; a skill's id is its index. Shared between a training and a test set.
    pub skills: Vec<String>,
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
    /// Parses CSV text with a header holding at least `user_id,seq,skill_name,correct` (extra
    /// columns are ignored). `skills` carries the skill ids of an earlier set (a training set),
    /// so that a test set uses the same ids; new skills are appended.
    pub fn parse_csv(text: &str, skills: Vec<String>) -> Result<Dataset, ParseError> {
        let mut lines = text.lines().enumerate();
        let (_, header) = lines.next().ok_or(ParseError {
            line: 1,
            message: "empty file".into(),
        })?;
        let columns: Vec<&str> = header.split(',').map(str::trim).collect();
        let col = |name: &str| {
            columns.iter().position(|c| *c == name).ok_or(ParseError {
                line: 1,
                message: format!("missing column {name:?}"),
            })
        };
        let (c_user, c_seq, c_skill, c_correct) = (
            col("user_id")?,
            col("seq")?,
            col("skill_name")?,
            col("correct")?,
        );
        let width = columns.len();

        let mut skill_ids: HashMap<String, u32> = skills
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        let mut data = Dataset {
            skills,
            ..Dataset::default()
        };
        let mut learner_ids: HashMap<String, u32> = HashMap::new();
        for (n, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let fields = split_csv_line(line);
            if fields.len() < width {
                return Err(ParseError {
                    line: n + 1,
                    message: format!("{} fields, expected {width}", fields.len()),
                });
            }
            let learner = match learner_ids.get(fields[c_user].as_str()) {
                Some(id) => *id,
                None => {
                    let id = data.learners.len() as u32;
                    data.learners.push(fields[c_user].clone());
                    learner_ids.insert(fields[c_user].clone(), id);
                    id
                }
            };
            let skill = match skill_ids.get(fields[c_skill].as_str()) {
                Some(id) => *id,
                None => {
                    let id = data.skills.len() as u32;
                    data.skills.push(fields[c_skill].clone());
                    skill_ids.insert(fields[c_skill].clone(), id);
                    id
                }
            };
            let seq = fields[c_seq]
                .trim()
                .parse::<u64>()
                .map_err(|_| ParseError {
                    line: n + 1,
                    message: format!("seq {:?} is not a number", fields[c_seq]),
                })?;
            let correct = parse_correct(&fields[c_correct]).ok_or_else(|| ParseError {
                line: n + 1,
                message: format!("correct {:?} is not 0 or 1", fields[c_correct].trim()),
            })?;
            data.answers.push(Answer {
                learner,
                seq,
                skill,
                correct,
            });
        }
        data.index();
        Ok(data)
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
    next_seq: HashMap<u32, u64>,
}

impl DatasetBuilder {
    /// Adds the learner's next answer.
    pub fn push(&mut self, learner: &str, skill: &str, correct: bool) {
        let learner = intern(&mut self.learner_ids, &mut self.data.learners, learner);
        let skill = intern(&mut self.skill_ids, &mut self.data.skills, skill);
        let seq = self.next_seq.entry(learner).or_insert(0);
        self.data.answers.push(Answer {
            learner,
            seq: *seq,
            skill,
            correct,
        });
        *seq += 1;
    }

    pub fn finish(mut self) -> Dataset {
        self.data.index();
        self.data
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

/// A CSV field, quoted when it holds a comma or a quote.
pub fn csv_field(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains(',') || value.contains('"') {
        format!("\"{}\"", value.replace('"', "\"\"")).into()
    } else {
        value.into()
    }
}

/// Splits one CSV line, honouring double quotes.
pub fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    fields.push(current);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_extra_columns_quotes_and_orders_each_learner_by_seq() {
        let text = "user_id,seq,skill_name,correct,extra\na,1,\"Add, subtract\",1,x\nb,0,Area,0,y\na,0,Area,0,z\n";
        let d = Dataset::parse_csv(text, vec!["Area".into()]).unwrap();
        assert_eq!(
            d.skills,
            vec!["Area".to_string(), "Add, subtract".to_string()]
        );
        assert_eq!(d.answers.len(), 3);
        let rows: Vec<&[usize]> = d.by_learner().collect();
        assert_eq!(rows[0], &[2, 0], "learner a's seq 0 comes first");
        assert!(Dataset::parse_csv("user_id,seq,skill_name\n", vec![]).is_err());
        let err =
            Dataset::parse_csv("user_id,seq,skill_name,correct\na,x,s,1\n", vec![]).unwrap_err();
        assert_eq!(err.line, 2);
    }
}
