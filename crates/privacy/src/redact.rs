//! Redaction with consistent placeholders: within one text (one event), the same value always
//! becomes the same placeholder (`<PERSON_1>` each time "Ada Lovelace" appears, `<PERSON_2>`
//! for the next person), so a redacted answer still reads as a sentence about people.

use std::collections::HashMap;

use crate::Span;

/// Short placeholder names for Presidio's type names.
fn label(kind: &str) -> &'static str {
    match kind {
        "EMAIL_ADDRESS" => "EMAIL",
        "PHONE_NUMBER" => "PHONE",
        "IP_ADDRESS" => "IP",
        "IBAN_CODE" => "IBAN",
        "PERSON" => "PERSON",
        "CREDIT_CARD" => "CREDIT_CARD",
        "US_SSN" => "US_SSN",
        "URL" => "URL",
        "DATE_TIME" => "DATE_TIME",
        "US_DRIVER_LICENSE" => "US_DRIVER_LICENSE",
        "LOCATION" => "LOCATION",
        "STREET_ADDRESS" => "ADDRESS",
        _ => "PII",
    }
}

/// The text with every span replaced by its placeholder. `spans` are code-point offsets, sorted
/// and not overlapping (as [`crate::scan`] returns them).
pub fn redact(text: &str, spans: &[Span]) -> String {
    Redactor::default().redact(text, spans)
}

/// One replaced value: what the placeholder stands for (kept only in the encrypted vault).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Replaced {
    pub placeholder: String,
    pub original: String,
}

/// Redacts several texts of one event with one numbering, so that "Ada" is `<PERSON_1>` in the
/// answer and in the chat message alike, and remembers what each placeholder replaced.
#[derive(Debug, Default)]
pub struct Redactor {
    numbers: HashMap<(&'static str, String), usize>,
    next: HashMap<&'static str, usize>,
    replaced: Vec<Replaced>,
}

impl Redactor {
    pub fn redact(&mut self, text: &str, spans: &[Span]) -> String {
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for span in spans {
            if span.start < at || span.end > chars.len() {
                continue;
            }
            out.extend(&chars[at..span.start]);
            let original: String = chars[span.start..span.end].iter().collect();
            out.push_str(&self.placeholder(&span.kind, &original));
            at = span.end;
        }
        out.extend(&chars[at.min(chars.len())..]);
        self.sweep(out)
    }

    /// Like [`Redactor::redact`], for findings in byte offsets (sorted, not overlapping, as
    /// [`crate::find`] returns them).
    pub fn redact_found(&mut self, text: &str, found: &[crate::Candidate]) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for c in found {
            if c.start < at || c.end > text.len() {
                continue;
            }
            out.push_str(&text[at..c.start]);
            let placeholder = self.placeholder(c.kind, &text[c.start..c.end]);
            out.push_str(&placeholder);
            at = c.end;
        }
        out.push_str(&text[at..]);
        self.sweep(out)
    }

    /// The placeholder of a value, issuing the next number of its kind the first time.
    fn placeholder(&mut self, kind: &str, original: &str) -> String {
        let kind = label(kind);
        let next = &mut self.next;
        let mut fresh = false;
        let n = *self
            .numbers
            .entry((kind, original.to_lowercase()))
            .or_insert_with(|| {
                let counter = next.entry(kind).or_insert(0);
                *counter += 1;
                fresh = true;
                *counter
            });
        let placeholder = format!("<{kind}_{n}>");
        if fresh {
            self.replaced.push(Replaced {
                placeholder: placeholder.clone(),
                original: original.to_owned(),
            });
        }
        placeholder
    }

    /// A value found once is PII wherever it appears in the event, even where the scanner's
    /// context rules did not fire a second time ("4111 1111 1111 1111 4111 1111 1111 1111").
    ///
    /// Passes repeat until nothing changes: replacing one value can make another a word of its
    /// own ("M+44 20 7946 0958": once the person "M" is a placeholder, the phone number stands
    /// alone). A pass only turns text into placeholders, so the passes end.
    fn sweep(&self, mut out: String) -> String {
        for _ in 0..=self.replaced.len() {
            let mut changed = false;
            for r in &self.replaced {
                let swept = replace_whole(&out, &r.original, &r.placeholder, &self.replaced);
                changed |= swept != out;
                out = swept;
            }
            if !changed {
                break;
            }
        }
        out
    }

    /// Is there nothing to do for a text without findings? Only when no value is known yet.
    pub fn knows_nothing(&self) -> bool {
        self.replaced.is_empty()
    }

    /// Each placeholder issued, with the first text it replaced, in order of issue.
    pub fn into_replaced(self) -> Vec<Replaced> {
        self.replaced
    }
}

/// `text` with every occurrence of `value` that is not part of a longer word replaced, in any
/// case: placeholders are numbered by the lower-cased value ("Ada" and "ada" are one person), so
/// the sweep matches the same way, and a name written once capitalised and once in lower case
/// does not survive in lower case. (A found name that is also a word, "Will", takes the word
/// "will" of the same event with it: over-redaction, never a leak.)
fn replace_whole(text: &str, value: &str, placeholder: &str, issued: &[Replaced]) -> String {
    if value.is_empty() {
        return text.to_owned();
    }
    // Lower-casing that keeps every character's length in bytes keeps offsets valid in `text`;
    // for the rare text where it does not (Turkish dotted capital I), match the exact case.
    let same_length = |s: &str| {
        s.chars()
            .all(|c| c.to_lowercase().map(char::len_utf8).sum::<usize>() == c.len_utf8())
    };
    let (haystack, needle) = if same_length(text) && same_length(value) {
        (text.to_lowercase(), value.to_lowercase())
    } else {
        (text.to_owned(), value.to_owned())
    };
    if !haystack.contains(&needle) {
        return text.to_owned();
    }
    let is_word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let placeholders = placeholder_ranges(text, issued);
    let inside_placeholder = |i: usize| {
        placeholders
            .iter()
            .any(|&(s, e)| i < e && i + needle.len() > s)
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    for (i, _) in haystack.match_indices(&needle) {
        if i < rest || inside_placeholder(i) {
            continue;
        }
        let before = text[..i].chars().next_back();
        let after = text[i + needle.len()..].chars().next();
        if is_word(before) || is_word(after) {
            continue;
        }
        out.push_str(&text[rest..i]);
        out.push_str(placeholder);
        rest = i + needle.len();
    }
    out.push_str(&text[rest..]);
    out
}

/// Byte ranges of the placeholders issued so far (`<PERSON_2>`) where they stand in `text`: a
/// value is never swept inside one (a person called "Person" must not break `<PERSON_1>`).
fn placeholder_ranges(text: &str, issued: &[Replaced]) -> Vec<(usize, usize)> {
    issued
        .iter()
        .flat_map(|r| {
            text.match_indices(r.placeholder.as_str())
                .map(|(at, p)| (at, at + p.len()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan;

    #[test]
    fn placeholders_are_consistent_within_a_text() {
        let text = "Thelma Mitchell wrote to ada@school.org; Thelma Mitchell and Katie Vasquez agree. Mail ada@school.org.";
        let redacted = redact(text, &scan(text));
        assert_eq!(
            redacted,
            "<PERSON_1> wrote to <EMAIL_1>; <PERSON_1> and <PERSON_2> agree. Mail <EMAIL_1>."
        );
    }

    #[test]
    fn a_value_found_once_is_swept_in_any_case() {
        // Found by the fuzz target pii_scan: "Ada" was found, the lower-case "ada" before an
        // at sign was not, and the sweep matched the exact case only.
        let text = "Ada wrote it, ask ada@ the desk or ADA.";
        let redacted = redact(text, &scan(text));
        assert_eq!(
            redacted,
            "<PERSON_1> wrote it, ask <PERSON_1>@ the desk or <PERSON_1>."
        );
        assert_eq!(
            replace_whole("İstanbul and İstanbul", "İstanbul", "<L>", &[]),
            "<L> and <L>"
        );
    }

    #[test]
    fn the_sweep_leaves_placeholders_whole_and_repeats_until_done() {
        // Found by the fuzz target pii_scan: the phone number after the person "M" became a
        // word of its own only once "M" was swept.
        let mut r = Redactor::default();
        r.placeholder("PHONE_NUMBER", "+44 20 7946 0958");
        r.placeholder("PERSON", "M");
        assert_eq!(r.sweep("M+44 20 7946 0958".into()), "<PERSON_1><PHONE_1>");
        // A value that is also a placeholder's label is not swept inside placeholders.
        let mut r = Redactor::default();
        r.placeholder("PERSON", "Ada");
        r.placeholder("PERSON", "person");
        assert_eq!(
            r.sweep("<PERSON_1> met a Person".into()),
            "<PERSON_1> met a <PERSON_2>"
        );
        // Found by the fuzz target pii_scan: text that only looks like a placeholder is text.
        let mut r = Redactor::default();
        r.placeholder("PERSON", "Mira");
        assert_eq!(r.sweep("<MIRA_9> Mira".into()), "<<PERSON_1>_9> <PERSON_1>");
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
