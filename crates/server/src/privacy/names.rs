//! The roster as stored: names to find in free text, and learners' display names.
//!
//! A school knows its learners. The platform sends their names once (`PUT /v1/privacy/roster`)
//! and they serve two purposes: the PII scan finds them in any case and context, and the teacher
//! of record sees them in place of pseudonyms. Both live in one blob sealed under the master key,
//! so a copy of the database alone names nobody. Inside the blob a display name is kept by the id
//! the platform knows (the blob already holds the names, which identify far more); in memory it is
//! held by each of the learner's pseudonyms, under every key version, because that is all the
//! engine and the log know of a learner.

use std::collections::{BTreeMap, HashMap};

use learnpulse_privacy::pseudonym::Pseudonymiser;
use serde::{Deserialize, Serialize};

/// The sealed plaintext. Older installations stored a bare JSON array of names.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct StoredRoster {
    #[serde(default)]
    pub names: Vec<String>,
    /// Display name by the learner id the platform knows.
    #[serde(default)]
    pub learners: BTreeMap<String, String>,
}

impl StoredRoster {
    pub fn parse(plain: &[u8]) -> StoredRoster {
        if let Ok(names) = serde_json::from_slice::<Vec<String>>(plain) {
            return StoredRoster {
                names,
                learners: BTreeMap::new(),
            };
        }
        serde_json::from_slice(plain).unwrap_or_default()
    }

    /// Every name the PII scan looks for: the listed ones and the display names.
    pub fn scan_names(&self) -> Vec<&str> {
        self.names
            .iter()
            .chain(self.learners.values())
            .map(String::as_str)
            .collect()
    }
}

/// Display names by every pseudonym a learner may be held under.
#[derive(Debug, Default)]
pub struct DisplayNames {
    by_pseudonym: HashMap<String, String>,
    learners: usize,
}

impl DisplayNames {
    pub fn new(roster: &StoredRoster, pseudonymiser: &Pseudonymiser) -> DisplayNames {
        let mut by_pseudonym = HashMap::new();
        for (id, name) in &roster.learners {
            for p in pseudonymiser.all(id) {
                by_pseudonym.insert(p, name.clone());
            }
        }
        DisplayNames {
            by_pseudonym,
            learners: roster.learners.len(),
        }
    }

    pub fn get(&self, pseudonym: &str) -> Option<&str> {
        self.by_pseudonym.get(pseudonym).map(String::as_str)
    }

    /// How many learners have a display name.
    pub fn learners(&self) -> usize {
        self.learners
    }
}

/// `roster` without the learners held under any of `pseudonyms` (an erasure).
pub fn without(
    mut roster: StoredRoster,
    pseudonyms: &[String],
    pseudonymiser: &Pseudonymiser,
) -> StoredRoster {
    roster.learners.retain(|id, _| {
        !pseudonyms.contains(id) && !pseudonymiser.all(id).iter().any(|p| pseudonyms.contains(p))
    });
    roster
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_rosters_are_lists_of_names() {
        let r = StoredRoster::parse(br#"["Ada Lovelace"]"#);
        assert_eq!(r.names, vec!["Ada Lovelace"]);
        assert!(r.learners.is_empty());
        let r = StoredRoster::parse(br#"{"names": ["Bo"], "learners": {"cy": "Cy Young"}}"#);
        assert_eq!(r.scan_names(), vec!["Bo", "Cy Young"]);
        let keys = Pseudonymiser::new(1, [3; 32]);
        assert_eq!(
            DisplayNames::new(&r, &keys).get(&keys.pseudonym("cy")),
            Some("Cy Young")
        );
    }

    #[test]
    fn display_names_follow_every_key_version_and_erasure_removes_them() {
        let mut keys = Pseudonymiser::new(1, [3; 32]);
        keys.rotate(2, [4; 32]);
        let r = StoredRoster {
            names: vec![],
            learners: BTreeMap::from([
                ("ada".to_owned(), "Ada Lovelace".to_owned()),
                ("bo".to_owned(), "Bo Diddley".to_owned()),
            ]),
        };
        let names = DisplayNames::new(&r, &keys);
        for p in keys.all("ada") {
            assert_eq!(names.get(&p), Some("Ada Lovelace"));
        }
        let erased = without(r, &keys.all("ada")[..1], &keys);
        assert_eq!(erased.learners.keys().collect::<Vec<_>>(), vec!["bo"]);
    }
}
