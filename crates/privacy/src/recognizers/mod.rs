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

/// A recogniser: appends its candidates in `text` to the vector.
pub type Recogniser = fn(&str, &mut Vec<Candidate>);

/// Every recogniser, by name (the names are for measuring each one's cost).
pub const RECOGNISERS: [(&str, Recogniser); 11] = [
    ("email", email::find),
    ("date", date::find),
    ("url", url::find),
    ("ip", ip::find),
    ("credit_card", numbers::credit_cards),
    ("us_ssn", numbers::us_ssn),
    ("iban", numbers::iban),
    ("us_driver_license", numbers::us_driver_license),
    ("phone", phone::find),
    ("person_location", crate::tagger::find),
    ("street_address", address::find),
];

/// Runs every recogniser over `text`.
pub fn all(text: &str, out: &mut Vec<Candidate>) {
    for (_, find) in RECOGNISERS {
        find(text, out);
    }
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
