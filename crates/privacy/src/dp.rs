//! Differential privacy, the pure half: bounding each learner's contribution and summing into
//! cells, so that the sensitivity of what is released is known *before* any noise is drawn.
//! The noise itself is OpenDP's (exact discrete Laplace), drawn in the server
//! (`learnpulse_server::analytics`); nothing here is random.
//!
//! The unit of privacy is the learner: two neighbouring data sets differ in all the events of one
//! learner. Each learner is therefore limited to `max_cells` cells (the first ones in cell order;
//! the rest of their events are left out) and, within a cell, to `max_per_cell` for a summed
//! measure, so that one learner moves the vector of cell totals by at most
//! `max_cells × max_per_cell` in L1 — the `d_in` handed to OpenDP's privacy map.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// What is counted or summed per learner and cell.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Distinct learners (each counts once per cell).
    Learners,
    /// Scored answers.
    Answers,
    /// Correct answers.
    Correct,
    /// Hints used.
    Hints,
    /// Response time in whole seconds.
    ResponseSeconds,
}

/// One event, as analytics sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution<'a> {
    pub learner: &'a str,
    pub cell: String,
    pub scored: bool,
    pub correct: bool,
    pub hints: u32,
    pub response_ms: Option<u64>,
}

/// Contribution bounds, fixed by the analyst before seeing any data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    /// Cells one learner may contribute to.
    pub max_cells: u32,
    /// Largest value one learner adds to one cell (clamped).
    pub max_per_cell: u32,
}

/// Number of bins of [`Aggregate::accuracy_histogram`]: accuracy 0–10 %, …, 90–100 %.
pub const ACCURACY_BINS: usize = 10;

/// Per-learner sums for one cell, before clamping.
#[derive(Debug, Default, Clone, Copy)]
struct LearnerCell {
    answers: u64,
    correct: u64,
    hints: u64,
    seconds: u64,
    timed: u64,
}

/// Exact, contribution-bounded totals per cell, ready for noise.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// Cell keys, sorted.
    pub cells: Vec<String>,
    /// Distinct learners per cell (each learner in at most `max_cells` cells).
    pub learners: Vec<i64>,
    /// The measure per cell, each learner's share clamped to `[0, max_per_cell]`.
    pub totals: Vec<i64>,
    /// Per cell, learners by accuracy decile (learners with no scored answer are left out).
    pub accuracy_histogram: Vec<[i64; ACCURACY_BINS]>,
}

impl Aggregate {
    /// L1 sensitivity of [`Aggregate::learners`] and of the flattened histogram: one learner adds
    /// at most 1 to each of at most `max_cells` cells.
    pub fn learners_sensitivity(bounds: Bounds) -> i64 {
        i64::from(bounds.max_cells)
    }

    /// L1 sensitivity of [`Aggregate::totals`].
    pub fn totals_sensitivity(bounds: Bounds, measure: Measure) -> i64 {
        match measure {
            Measure::Learners => i64::from(bounds.max_cells),
            _ => i64::from(bounds.max_cells) * i64::from(bounds.max_per_cell),
        }
    }
}

/// Bounds contributions and sums into cells. With `only` given, exactly those cells are
/// reported (in that order, zero where no one contributed), so that the set of cells released
/// does not depend on the data.
pub fn aggregate<'a>(
    events: impl IntoIterator<Item = Contribution<'a>>,
    measure: Measure,
    bounds: Bounds,
    only: Option<&[String]>,
) -> Aggregate {
    // learner → cell → sums; BTreeMap so that "the first max_cells cells" is well defined.
    let mut per_learner: HashMap<&str, BTreeMap<String, LearnerCell>> = HashMap::new();
    for e in events {
        if only.is_some_and(|keys| !keys.contains(&e.cell)) {
            continue;
        }
        let cell = per_learner
            .entry(e.learner)
            .or_default()
            .entry(e.cell)
            .or_default();
        if e.scored {
            cell.answers += 1;
            cell.correct += u64::from(e.correct);
        }
        cell.hints += u64::from(e.hints);
        if let Some(ms) = e.response_ms {
            cell.seconds += ms / 1_000;
            cell.timed += 1;
        }
    }
    let mut cells: Vec<String> = match only {
        Some(keys) => keys.to_vec(),
        None => {
            let mut all: Vec<String> = per_learner
                .values()
                .flat_map(|c| c.keys().cloned())
                .collect();
            all.sort();
            all.dedup();
            all
        }
    };
    if only.is_none() {
        cells.sort();
    }
    let index: HashMap<&str, usize> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let n = cells.len();
    let mut out = Aggregate {
        cells: Vec::new(),
        learners: vec![0; n],
        totals: vec![0; n],
        accuracy_histogram: vec![[0; ACCURACY_BINS]; n],
    };
    let cap = i64::from(bounds.max_per_cell);
    for learner_cells in per_learner.values() {
        for (key, sums) in learner_cells.iter().take(bounds.max_cells as usize) {
            let i = index[key.as_str()];
            out.learners[i] += 1;
            let value = match measure {
                Measure::Learners => 1,
                Measure::Answers => sums.answers as i64,
                Measure::Correct => sums.correct as i64,
                Measure::Hints => sums.hints as i64,
                Measure::ResponseSeconds => sums.seconds as i64,
            };
            out.totals[i] += if measure == Measure::Learners {
                1
            } else {
                value.clamp(0, cap)
            };
            if sums.answers > 0 {
                let accuracy = sums.correct as f64 / sums.answers as f64;
                let bin = ((accuracy * ACCURACY_BINS as f64) as usize).min(ACCURACY_BINS - 1);
                out.accuracy_histogram[i][bin] += 1;
            }
        }
    }
    out.cells = cells;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(learner: &str, cell: &str, correct: bool) -> Contribution<'static> {
        Contribution {
            learner: Box::leak(learner.to_owned().into_boxed_str()),
            cell: cell.to_owned(),
            scored: true,
            correct,
            hints: 0,
            response_ms: Some(4_500),
        }
    }

    #[test]
    fn one_learner_moves_the_totals_by_at_most_the_sensitivity() {
        let bounds = Bounds {
            max_cells: 2,
            max_per_cell: 3,
        };
        let mut events: Vec<Contribution> = (0..5)
            .map(|i| answer(&format!("l{i}"), "fractions", true))
            .collect();
        // A prolific learner: 50 answers across 4 skills.
        for i in 0..50 {
            events.push(answer(
                "heavy",
                ["algebra", "fractions", "geometry", "ratios"][i % 4],
                false,
            ));
        }
        let cells: Vec<String> = ["algebra", "fractions", "geometry", "ratios"]
            .map(String::from)
            .to_vec();
        let with = aggregate(
            events.iter().cloned(),
            Measure::Answers,
            bounds,
            Some(&cells),
        );
        let without = aggregate(
            events.iter().filter(|e| e.learner != "heavy").cloned(),
            Measure::Answers,
            bounds,
            Some(&cells),
        );
        let l1: i64 = with
            .totals
            .iter()
            .zip(&without.totals)
            .map(|(a, b)| (a - b).abs())
            .sum();
        assert!(l1 <= Aggregate::totals_sensitivity(bounds, Measure::Answers));
        assert_eq!(l1, 6, "two cells, three answers each");
    }

    #[test]
    fn counts_histograms_and_fixed_cells() {
        let bounds = Bounds {
            max_cells: 10,
            max_per_cell: 100,
        };
        let events = vec![
            answer("a", "s1", true),
            answer("a", "s1", false),
            answer("b", "s1", true),
            answer("b", "s2", true),
        ];
        let agg = aggregate(events.clone(), Measure::Correct, bounds, None);
        assert_eq!(agg.cells, vec!["s1", "s2"]);
        assert_eq!(agg.learners, vec![2, 1]);
        assert_eq!(agg.totals, vec![2, 1]);
        assert_eq!(agg.accuracy_histogram[0][5], 1, "a: 50 %");
        assert_eq!(agg.accuracy_histogram[0][9], 1, "b: 100 %");
        let only = vec!["s3".to_owned(), "s1".to_owned()];
        let agg = aggregate(events, Measure::Learners, bounds, Some(&only));
        assert_eq!(agg.cells, only);
        assert_eq!(agg.totals, vec![0, 2]);
    }
}
