//! A tenant's roster: the names of its learners and staff, which the platform knows. Names on
//! the roster are found in any case and in any context, which no gazetteer can do for names it
//! has never seen ("Gijsbrecht van Hecke", "kauê").

use std::collections::{HashMap, HashSet};

use crate::recognizers::person::{is_common, words};
use crate::{Candidate, Span};

#[derive(Debug, Default, Clone)]
pub struct Roster {
    /// Full names as lower-case word sequences, by their first word.
    full: HashMap<String, Vec<Vec<String>>>,
    /// Single names (first or last) of roster members, lower-case.
    parts: HashSet<String>,
}

impl Roster {
    /// One name per entry ("Ada Lovelace").
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Roster {
        let mut roster = Roster::default();
        for name in names {
            let parts: Vec<String> = words(name).iter().map(|w| w.text.to_lowercase()).collect();
            if parts.is_empty() {
                continue;
            }
            for p in &parts {
                if p.chars().count() > 1 && !is_common(p) {
                    roster.parts.insert(p.clone());
                }
            }
            roster.full.entry(parts[0].clone()).or_default().push(parts);
        }
        roster
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Roster names in `text`: full names 0.97, single roster names 0.8.
    pub fn find(&self, text: &str, out: &mut Vec<Candidate>) {
        if self.is_empty() {
            return;
        }
        let ws = words(text);
        let lower: Vec<String> = ws.iter().map(|w| w.text.to_lowercase()).collect();
        let mut i = 0;
        while i < ws.len() {
            let longest = self.full.get(&lower[i]).and_then(|names| {
                names
                    .iter()
                    .filter(|n| {
                        n.len() > 1 && lower.get(i..i + n.len()).is_some_and(|s| s == n.as_slice())
                    })
                    .map(Vec::len)
                    .max()
            });
            if let Some(len) = longest {
                out.push(Candidate {
                    start: ws[i].start,
                    end: ws[i + len - 1].end,
                    kind: "PERSON",
                    score: 0.97,
                });
                i += len;
            } else if self.parts.contains(&lower[i]) {
                out.push(Candidate {
                    start: ws[i].start,
                    end: ws[i].end,
                    kind: "PERSON",
                    score: 0.8,
                });
                i += 1;
            } else {
                i += 1;
            }
        }
    }
}

/// [`crate::scan`] plus the roster's names.
pub fn scan_with(text: &str, roster: &Roster) -> Vec<Span> {
    let mut candidates = Vec::new();
    crate::recognizers::all(text, &mut candidates);
    roster.find(text, &mut candidates);
    crate::resolve(text, candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roster_names_are_found_in_any_case() {
        let roster = Roster::new(["Gijsbrecht van Hecke", "Kauê Sousa"]);
        let text = "gijsbrecht van hecke helped kauê with fractions";
        let chars: Vec<char> = text.chars().collect();
        let found: Vec<String> = scan_with(text, &roster)
            .into_iter()
            .filter(|s| s.kind == "PERSON")
            .map(|s| chars[s.start..s.end].iter().collect())
            .collect();
        assert_eq!(found, vec!["gijsbrecht van hecke", "kauê"]);
        assert!(scan_with("nothing here", &roster).is_empty());
    }
}
