//! Free text through the PII scanner and the redactor: spans lie inside the text (in code
//! points), are not empty and carry a score in [0, 1]; no span's text survives redaction as a
//! word of its own anywhere in the text (the redactor sweeps a value found once everywhere).
#![no_main]

use learnpulse_privacy::redact::Redactor;
use libfuzzer_sys::fuzz_target;

/// Whether `needle` occurs in `haystack` with no letter or digit right before or after it.
fn occurs_as_word(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

fuzz_target!(|text: &str| {
    let spans = learnpulse_privacy::scan(text);
    let chars: Vec<char> = text.chars().collect();
    for s in &spans {
        assert!(
            s.start < s.end && s.end <= chars.len(),
            "span {s:?} outside {text:?}"
        );
        assert!((0.0..=1.0).contains(&s.score), "score of {s:?}");
    }
    let mut redactor = Redactor::default();
    let out = redactor.redact(text, &spans);
    // The text between placeholders: a value cannot run across one.
    let mut pieces = vec![out.clone()];
    for replaced in redactor.into_replaced() {
        pieces = pieces
            .iter()
            .flat_map(|p| p.split(replaced.placeholder.as_str()))
            .map(str::to_owned)
            .collect();
    }
    for s in &spans {
        let value: String = chars[s.start..s.end].iter().collect();
        let left = pieces.iter().any(|p| occurs_as_word(p, &value));
        assert!(!left, "{value:?} left in {out:?}");
    }
});
