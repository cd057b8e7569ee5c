//! DATE_TIME: full calendar dates and timestamps (a date of birth is the kind that identifies),
//! and a bare year only when a birth is mentioned just before it ("born in 1986"). Weekdays and
//! years on their own are not reported: they identify no one.

use std::sync::OnceLock;

use regex::Regex;

use super::{before, pattern};
use crate::Candidate;

const MONTHS: &str = "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?";

fn birth_context(text: &str, at: usize) -> bool {
    let context = before(text, at, 32);
    ["born", "birth", "dob", "d.o.b", "birthday"]
        .iter()
        .any(|w| context.contains(w))
}

pub fn find(text: &str, out: &mut Vec<Candidate>) {
    static NUMERIC: OnceLock<Regex> = OnceLock::new();
    let numeric = pattern(
        &NUMERIC,
        r"\b(?:(?:19|20)\d{2}-(?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12]\d|3[01])(?:[ T](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,6})?)?)?|(?:0?[1-9]|[12]\d|3[01])[/.](?:0?[1-9]|[12]\d|3[01])[/.](?:19|20)\d{2})\b",
    );
    static WORDS: OnceLock<Regex> = OnceLock::new();
    let words = pattern(
        &WORDS,
        &format!(
            r"(?i)\b(?:(?:{MONTHS})\.? (?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?,? (?:19|20)\d{{2}}|(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)? (?:of )?(?:{MONTHS})\.?,? (?:19|20)\d{{2}})\b"
        ),
    );
    for m in numeric.find_iter(text).chain(words.find_iter(text)) {
        let score = if birth_context(text, m.start()) {
            0.95
        } else {
            0.85
        };
        out.push(Candidate {
            start: m.start(),
            end: m.end(),
            kind: "DATE_TIME",
            score,
        });
    }
    static YEAR: OnceLock<Regex> = OnceLock::new();
    let year = pattern(&YEAR, r"\b(?:19|20)\d{2}\b");
    for m in year.find_iter(text) {
        if birth_context(text, m.start()) {
            out.push(Candidate {
                start: m.start(),
                end: m.end(),
                kind: "DATE_TIME",
                score: 0.85,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::scan;

    fn dates(t: &str) -> Vec<String> {
        let chars: Vec<char> = t.chars().collect();
        scan(t)
            .into_iter()
            .filter(|s| s.kind == "DATE_TIME" && s.score >= 0.5)
            .map(|s| chars[s.start..s.end].iter().collect())
            .collect()
    }

    #[test]
    fn dates_and_birth_years_but_not_any_number() {
        assert_eq!(dates("born on 8/12/1991 in Oslo"), vec!["8/12/1991"]);
        assert_eq!(
            dates("logged 1974-08-27 11:37:36.425529"),
            vec!["1974-08-27 11:37:36.425529"]
        );
        assert_eq!(
            dates("My birthday is March 3rd, 2011."),
            vec!["March 3rd, 2011"]
        );
        assert_eq!(dates("she was born in 1986"), vec!["1986"]);
        assert!(dates("in 1986 the class scored 17/20; see you Sunday").is_empty());
    }
}
