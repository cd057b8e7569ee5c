//! Redaction with consistent placeholders: within one text (one event), the same value always
//! becomes the same placeholder (`<PERSON_1>` each time "Ada Lovelace" appears, `<PERSON_2>`
//! for the next person), so a redacted answer still reads as a sentence about people.

use std::collections::HashMap;

use crate::Span;

/// Short placeholder names for Presidio's type names.
fn label(kind: &str) -> &str {
    match kind {
        "EMAIL_ADDRESS" => "EMAIL",
        "PHONE_NUMBER" => "PHONE",
        "IP_ADDRESS" => "IP",
        "IBAN_CODE" => "IBAN",
        other => other,
    }
}

/// The text with every span replaced by its placeholder. `spans` are code-point offsets, sorted
/// and not overlapping (as [`crate::scan`] returns them).
pub fn redact(text: &str, spans: &[Span]) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut numbers: HashMap<(&str, String), usize> = HashMap::new();
    let mut next: HashMap<&str, usize> = HashMap::new();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for span in spans {
        if span.start < at || span.end > chars.len() {
            continue;
        }
        out.extend(&chars[at..span.start]);
        let value: String = chars[span.start..span.end]
            .iter()
            .collect::<String>()
            .to_lowercase();
        let kind = label(&span.kind);
        let n = *numbers.entry((kind, value)).or_insert_with(|| {
            let counter = next.entry(kind).or_insert(0);
            *counter += 1;
            *counter
        });
        out.push_str(&format!("<{kind}_{n}>"));
        at = span.end;
    }
    out.extend(&chars[at.min(chars.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan;

    #[test]
    fn placeholders_are_consistent_within_a_text() {
        let text = "Thelma Mitchell wrote to ada@school.org; Thelma Mitchell and Katie Brown agree. Mail ada@school.org.";
        let redacted = redact(text, &scan(text));
        assert_eq!(
            redacted,
            "<PERSON_1> wrote to <EMAIL_1>; <PERSON_1> and <PERSON_2> agree. Mail <EMAIL_1>."
        );
    }

    #[test]
    fn redaction_never_leaves_a_detected_span_behind() {
        let text = "Zoë Ńowak (zoë@example.org, +41 85 806 98 67) paid with 4992 8196 7782 0891.";
        let spans = scan(text);
        let redacted = redact(text, &spans);
        let chars: Vec<char> = text.chars().collect();
        for s in &spans {
            let value: String = chars[s.start..s.end].iter().collect();
            assert!(!redacted.contains(&value), "{value:?} left in {redacted:?}");
        }
    }
}
