//! # learnpulse-privacy
//!
//! Finding personal data in learners' free text, as pure code: a text goes in, spans come out.
//!
//! Module map:
//! - [`recognizers`]: one recogniser per kind of PII, each a function from text to candidate
//!   spans with a score; [`scan`] runs them all and resolves overlaps.
//! - [`tagger`]: PERSON and LOCATION by a statistical model over context, shipped in the binary.
//! - [`pseudonym`]: keyed, versioned pseudonyms of learner identities (HMAC-SHA-256).
//! - [`roster`]: a tenant's own names, found in any case and context.
//! - [`redact`]: replacing findings by consistent placeholders (`<PERSON_1>`).
//! - [`pipeline`]: the ingest pipeline on one statement: consent/age gate, pseudonymise,
//!   redact, minimise.
//! - [`dp`]: contribution bounding for differentially private analytics (the noise is OpenDP's,
//!   drawn in the server).
//! - [`eval`]: per-type precision, recall and F1 against labelled spans (overlap matching).
//!
//! Offsets: recognisers work on byte offsets (what `regex` gives); [`scan`] reports Unicode code
//! points, end exclusive, which is what `learnpulse pii scan` and the labelled sets use.

pub mod dp;
pub mod eval;
pub mod pipeline;
pub mod pseudonym;
pub mod recognizers;
pub mod redact;
pub mod roster;
pub mod tagger;

pub use roster::scan_with;

use serde::{Deserialize, Serialize};

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// Start, in Unicode code points.
    pub start: usize,
    /// End (exclusive), in Unicode code points.
    pub end: usize,
    /// Presidio's name for the type (`EMAIL_ADDRESS`, `CREDIT_CARD`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Confidence in [0, 1].
    pub score: f64,
}

/// A candidate in byte offsets, before overlap resolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub start: usize,
    pub end: usize,
    pub kind: &'static str,
    pub score: f64,
}

/// Finds PII in `text`: every recogniser's candidates, overlaps resolved in favour of the higher
/// score (then the longer span), sorted by position, offsets in code points.
pub fn scan(text: &str) -> Vec<Span> {
    let mut candidates = Vec::new();
    recognizers::all(text, &mut candidates);
    resolve(text, candidates)
}

pub(crate) fn resolve(text: &str, candidates: Vec<Candidate>) -> Vec<Span> {
    let kept = resolve_bytes(candidates);
    let to_chars = CodePoints::new(text);
    kept.into_iter()
        .map(|c| Span {
            start: to_chars.of(c.start),
            end: to_chars.of(c.end),
            kind: c.kind.to_owned(),
            score: c.score,
        })
        .collect()
}

/// Findings in byte offsets, overlaps resolved as in [`scan`]: what the ingest pipeline uses, as
/// it redacts in place and has no use for code-point offsets. The roster, when given and not
/// empty, is searched too.
pub fn find(text: &str, roster: Option<&roster::Roster>) -> Vec<Candidate> {
    let mut candidates = Vec::new();
    recognizers::all(text, &mut candidates);
    if let Some(r) = roster.filter(|r| !r.is_empty()) {
        r.find(text, &mut candidates);
    }
    resolve_bytes(candidates)
}

fn resolve_bytes(mut candidates: Vec<Candidate>) -> Vec<Candidate> {
    // A city or country inside a street address is part of the address.
    let addresses: Vec<(usize, usize)> = candidates
        .iter()
        .filter(|c| c.kind == "STREET_ADDRESS")
        .map(|c| (c.start, c.end))
        .collect();
    candidates.retain(|c| {
        c.kind != "LOCATION" || !addresses.iter().any(|&(s, e)| c.start < e && s < c.end)
    });
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut kept: Vec<Candidate> = Vec::with_capacity(candidates.len());
    for c in candidates {
        if kept.iter().all(|k| c.end <= k.start || c.start >= k.end) {
            kept.push(c);
        }
    }
    kept.sort_by_key(|c| c.start);
    kept
}

/// Byte offset → code-point offset, in O(1) for ASCII text and O(log n) otherwise.
struct CodePoints {
    /// Byte offsets of every non-ASCII character (empty for ASCII text).
    wide: Vec<(usize, usize)>,
}

impl CodePoints {
    fn new(text: &str) -> Self {
        let mut wide = Vec::new();
        if !text.is_ascii() {
            let mut extra = 0;
            for (byte, c) in text.char_indices() {
                let len = c.len_utf8();
                if len > 1 {
                    extra += len - 1;
                    wide.push((byte + len, extra));
                }
            }
        }
        CodePoints { wide }
    }

    fn of(&self, byte: usize) -> usize {
        // Subtract the extra bytes of the multi-byte characters that end at or before `byte`.
        let i = self.wide.partition_point(|(end, _)| *end <= byte);
        if i == 0 {
            byte
        } else {
            byte - self.wide[i - 1].1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_code_points() {
        let text = "Zoë: zoe@example.org";
        let spans: Vec<Span> = scan(text)
            .into_iter()
            .filter(|s| s.kind == "EMAIL_ADDRESS")
            .collect();
        assert_eq!(spans.len(), 1);
        let chars: Vec<char> = text.chars().collect();
        let found: String = chars[spans[0].start..spans[0].end].iter().collect();
        assert_eq!(found, "zoe@example.org");
    }

    #[test]
    fn overlaps_keep_the_stronger_finding() {
        let spans = scan("mail me at ada@school.example.com today");
        assert_eq!(
            spans.iter().map(|s| s.kind.as_str()).collect::<Vec<_>>(),
            vec!["EMAIL_ADDRESS"]
        );
    }
}
