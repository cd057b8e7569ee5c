//! Per-type precision, recall and F1 against labelled spans, with overlap matching (a finding
//! counts when it overlaps a labelled span of the same type), as presidio-research's evaluator
//! reports them.

use std::collections::BTreeMap;

use serde::Serialize;

/// A labelled span, in code points.
#[derive(Debug, Clone)]
pub struct Labelled {
    pub start: usize,
    pub end: usize,
    pub kind: String,
}

/// Counts for one type.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    /// Findings that overlap a labelled span of their type.
    pub true_positives: usize,
    /// Findings that overlap none.
    pub false_positives: usize,
    /// Labelled spans that no finding of their type overlaps.
    pub false_negatives: usize,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        let found = self.true_positives + self.false_positives;
        if found == 0 {
            0.0
        } else {
            self.true_positives as f64 / found as f64
        }
    }

    pub fn recall(&self) -> f64 {
        let labelled = self.true_positives + self.false_negatives;
        if labelled == 0 {
            0.0
        } else {
            self.true_positives as f64 / labelled as f64
        }
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// The name learnpulse uses for a labelled type (the labelled sets call URLs `DOMAIN_NAME` and
/// cities and countries `GPE`).
pub fn our_name(labelled: &str) -> &str {
    match labelled {
        "DOMAIN_NAME" => "URL",
        "GPE" => "LOCATION",
        other => other,
    }
}

/// Adds one text's findings (already filtered by score) and labels to `counts`.
pub fn add(counts: &mut BTreeMap<String, Counts>, labels: &[Labelled], findings: &[crate::Span]) {
    let overlaps = |a: (usize, usize), b: (usize, usize)| a.0 < b.1 && b.0 < a.1;
    for f in findings {
        let hit = labels
            .iter()
            .any(|l| our_name(&l.kind) == f.kind && overlaps((f.start, f.end), (l.start, l.end)));
        let c = counts.entry(f.kind.clone()).or_default();
        if hit {
            c.true_positives += 1
        } else {
            c.false_positives += 1
        }
    }
    for l in labels {
        let kind = our_name(&l.kind);
        let found = findings
            .iter()
            .any(|f| f.kind == kind && overlaps((f.start, f.end), (l.start, l.end)));
        if !found {
            counts.entry(kind.to_owned()).or_default().false_negatives += 1;
        }
    }
}

/// Findings and how many of them were right, per score band of width 0.1: a calibrated
/// recogniser is right about as often as its score says.
#[derive(Debug, Clone, Copy, Default)]
pub struct Calibration {
    pub bands: [(u64, u64); 10],
}

impl Calibration {
    /// Adds one text's findings (all of them, whatever their score).
    pub fn add(&mut self, labels: &[Labelled], findings: &[crate::Span]) {
        for f in findings {
            let hit = labels
                .iter()
                .any(|l| our_name(&l.kind) == f.kind && f.start < l.end && l.start < f.end);
            let band = ((f.score * 10.0) as usize).min(9);
            self.bands[band].0 += 1;
            self.bands[band].1 += u64::from(hit);
        }
    }

    /// `(lowest score of the band, findings, share that were right)` for each non-empty band.
    pub fn table(&self) -> Vec<(f64, u64, f64)> {
        self.bands
            .iter()
            .enumerate()
            .filter(|(_, (n, _))| *n > 0)
            .map(|(i, (n, right))| (i as f64 / 10.0, *n, *right as f64 / *n as f64))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Span;

    #[test]
    fn overlap_matching_counts() {
        let labels = vec![
            Labelled {
                start: 0,
                end: 10,
                kind: "EMAIL_ADDRESS".into(),
            },
            Labelled {
                start: 20,
                end: 30,
                kind: "DOMAIN_NAME".into(),
            },
        ];
        let findings = vec![
            Span {
                start: 2,
                end: 12,
                kind: "EMAIL_ADDRESS".into(),
                score: 1.0,
            },
            Span {
                start: 40,
                end: 45,
                kind: "EMAIL_ADDRESS".into(),
                score: 1.0,
            },
        ];
        let mut counts = BTreeMap::new();
        add(&mut counts, &labels, &findings);
        let email = counts["EMAIL_ADDRESS"];
        assert_eq!(
            (
                email.true_positives,
                email.false_positives,
                email.false_negatives
            ),
            (1, 1, 0)
        );
        assert_eq!(counts["URL"].false_negatives, 1);
        assert!((email.f1() - 2.0 / 3.0).abs() < 1e-12);
    }
}
