//! EMAIL_ADDRESS.

use std::sync::OnceLock;

use regex::Regex;

use super::pattern;
use crate::Candidate;

pub fn find(text: &str, out: &mut Vec<Candidate>) {
    if !text.contains('@') {
        return;
    }
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = pattern(
        &RE,
        r"(?i)\b[a-z0-9][a-z0-9._%+-]*@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,24}\b",
    );
    for m in re.find_iter(text) {
        out.push(Candidate {
            start: m.start(),
            end: m.end(),
            kind: "EMAIL_ADDRESS",
            score: 1.0,
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::scan;

    #[test]
    fn finds_addresses_and_not_at_signs() {
        let spans = scan("Write to Julitta.Wozniak+lp@armyspy.com or @teacher, 3 @ 5 each");
        assert_eq!(spans.len(), 1);
        assert_eq!((spans[0].start, spans[0].end), (9, 39));
    }
}
