//! The recognisers. Each finds candidates of one kind in byte offsets, with a score that says how
//! sure it is; [`all`] runs every one. Patterns find candidates cheaply; checksums, ranges and
//! context then decide (Luhn for cards, mod 97 for IBANs, SSA rules for SSNs, a phone-number
//! library for phone numbers), which is what keeps numbers, scores and ids from being flagged.

mod address;
mod date;
mod email;
mod ip;
mod numbers;
pub(crate) mod person;
mod phone;
mod url;

use std::sync::OnceLock;

use regex::Regex;

use crate::Candidate;

/// Runs every recogniser over `text`.
pub fn all(text: &str, out: &mut Vec<Candidate>) {
    email::find(text, out);
    date::find(text, out);
    url::find(text, out);
    ip::find(text, out);
    numbers::credit_cards(text, out);
    numbers::us_ssn(text, out);
    numbers::iban(text, out);
    numbers::us_driver_license(text, out);
    phone::find(text, out);
    person::find(text, out);
    address::find(text, out);
}

/// A regex compiled once, on first use.
pub(crate) fn pattern(cell: &'static OnceLock<Regex>, source: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(source).expect("recogniser patterns are valid"))
}

/// The `n` bytes of `text` before `at` (whole characters), lower-cased, for context checks.
pub(crate) fn before(text: &str, at: usize, n: usize) -> String {
    let mut start = at.saturating_sub(n);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    text[start..at].to_lowercase()
}
