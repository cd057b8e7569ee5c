//! PHONE_NUMBER: digit groups that look like a phone number are checked by a phone-number
//! library (libphonenumber's metadata) against the numbering plans of the regions learnpulse's
//! users most often write from; a number valid in none of them is not reported.

use std::sync::OnceLock;

use phonenumber::country::Id;
use regex::Regex;

use super::pattern;
use crate::Candidate;

/// Regions whose national formats are tried for numbers written without a country code.
const REGIONS: [Id; 3] = [Id::US, Id::GB, Id::DE];

/// Words that say a number nearby is a phone number.
const CONTEXT: [&str; 9] = [
    "phone", "call", "tel", "mobile", "cell", "fax", "number", "contact", "reach",
];

/// How a candidate fares against the numbering plans.
enum Check {
    /// A number the plan of some region assigns.
    Valid,
    /// Parses as a number of some region, but no plan assigns it (made-up or very new numbers).
    Possible,
    Rejected,
}

fn check(candidate: &str) -> Check {
    let parsed: Vec<phonenumber::PhoneNumber> = if let Some(rest) = candidate.strip_prefix("00") {
        // "00" is the international call prefix in most of the world.
        phonenumber::parse(None, format!("+{rest}"))
            .into_iter()
            .collect()
    } else if candidate.starts_with('+') {
        phonenumber::parse(None, candidate).into_iter().collect()
    } else {
        REGIONS
            .iter()
            .filter_map(|r| phonenumber::parse(Some(*r), candidate).ok())
            .collect()
    };
    if parsed.iter().any(phonenumber::is_valid) {
        Check::Valid
    } else if parsed.is_empty() {
        Check::Rejected
    } else {
        Check::Possible
    }
}

pub fn find(text: &str, out: &mut Vec<Candidate>) {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = pattern(
        &RE,
        r"(?:(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,5}(?:[ .-]\(?\d{1,5}\)?){1,5}|\(\d{3}\) ?\d{3}-\d{4}|\+\d{8,15}\b|\b\d{10,11}\b)(?:\s?(?:x|ext\.?)\s?\d{1,5}\b)?",
    );
    for m in re.find_iter(text) {
        let s = m.as_str().trim();
        // A book's number, not a phone's.
        if super::before(text, m.start(), 12).contains("isbn") {
            continue;
        }
        if let Some(found) = candidate(text, m.start(), s, out) {
            out.push(found);
            continue;
        }
        // A number written as a phone number (+44 …, 0049 …, (0)…) that runs into other digits
        // ("+44 20 7946 0958 4111 1111 1111 1111": a card follows): the longest shorter run of
        // whole groups that is a phone number.
        if !written_as_phone(s) {
            continue;
        }
        let ends = s
            .char_indices()
            .filter(|(i, c)| {
                c.is_ascii_digit() && !s[i + 1..].starts_with(|n: char| n.is_ascii_digit())
            })
            .map(|(i, _)| i + 1)
            .filter(|&end| end < s.len());
        if let Some(found) = ends
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .find_map(|end| candidate(text, m.start(), &s[..end], out))
        {
            out.push(found);
        }
    }
}

fn written_as_phone(s: &str) -> bool {
    s.starts_with('+') || s.starts_with("00") || s.contains('(')
}

/// The digits `s` at `start` as a phone number, unless they are something else (a date, too
/// few or too many digits, part of a word, a card or number already found there) or no
/// numbering plan has them.
fn candidate(text: &str, start: usize, s: &str, found: &[Candidate]) -> Option<Candidate> {
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    if !(7..=15).contains(&digits) {
        return None;
    }
    // Dates and times are digit groups too.
    static DATE: OnceLock<Regex> = OnceLock::new();
    let date = pattern(
        &DATE,
        r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})(?:$|[ T])",
    );
    if date.is_match(s) {
        return None;
    }
    let prev = text[..start].chars().next_back();
    if matches!(prev, Some(c) if c.is_ascii_alphanumeric() || c == '.' || c == '/') {
        return None;
    }
    let written_as_phone = written_as_phone(s);
    let context = super::before(text, start, 40);
    let named = CONTEXT.iter().any(|w| context.contains(w));
    // Short local numbers look like many other digit groups: without words that say
    // "phone" nearby they are not reported at all.
    let short = digits <= 8 && !written_as_phone;
    if short && !named {
        return None;
    }
    // A card, SSN, IBAN or address already found there: the digits are that, not a phone.
    let end = start + s.len();
    if found
        .iter()
        .any(|c| c.score >= 0.85 && c.start < end && start < c.end)
    {
        return None;
    }
    let score = match check(s) {
        _ if named => 0.95,
        Check::Rejected => return None,
        Check::Valid if written_as_phone => 0.9,
        Check::Valid => 0.75,
        Check::Possible if written_as_phone => 0.6,
        Check::Possible => 0.45,
    };
    Some(Candidate {
        start,
        end,
        kind: "PHONE_NUMBER",
        score,
    })
}

#[cfg(test)]
mod tests {
    use crate::scan;

    #[test]
    fn national_and_international_numbers_but_not_dates_or_scores() {
        let kinds = |t: &str| {
            scan(t)
                .into_iter()
                .filter(|s| s.score >= 0.4)
                .map(|s| s.kind)
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds("call +41 (0)85 806 98 67 now"), vec!["PHONE_NUMBER"]);
        assert_eq!(kinds("call (202) 555-0142"), vec!["PHONE_NUMBER"]);
        assert!(!kinds("due 2026-11-26, scored 17 of 20").contains(&"PHONE_NUMBER".to_string()));
    }

    #[test]
    fn a_phone_number_and_a_card_side_by_side_are_both_found() {
        let spans = scan("+44 20 7946 0958 4111 1111 1111 1111");
        let found: Vec<(&str, usize, usize)> = spans
            .iter()
            .map(|s| (s.kind.as_str(), s.start, s.end))
            .collect();
        assert_eq!(
            found,
            vec![("PHONE_NUMBER", 0, 16), ("CREDIT_CARD", 17, 36)],
            "{spans:?}"
        );
    }
}
