//! URL: with a scheme or `www.`, or a bare domain with a common top-level domain. A domain
//! inside an e-mail address is not a URL (the e-mail finding wins the overlap, and a domain
//! right after `@` is skipped here).

use std::sync::OnceLock;

use regex::Regex;

use super::pattern;
use crate::Candidate;

pub fn find(text: &str, out: &mut Vec<Candidate>) {
    static EXPLICIT: OnceLock<Regex> = OnceLock::new();
    let explicit = pattern(
        &EXPLICIT,
        r#"(?i)\b(?:https?://|ftp://|www\.)[^\s<>"'()\[\]{}]+"#,
    );
    for m in explicit.find_iter(text) {
        let end = m.start()
            + m.as_str()
                .trim_end_matches(['.', ',', ';', ':', '!', '?'])
                .len();
        out.push(Candidate {
            start: m.start(),
            end,
            kind: "URL",
            score: 0.95,
        });
    }
    static BARE: OnceLock<Regex> = OnceLock::new();
    let bare = pattern(
        &BARE,
        r"(?i)\b[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.(?:com|org|net|edu|gov|io|info|biz|co|us|uk|de|fr|es|it|nl|ca|au|br|ru|jp|ch|se|no|fi|dk|pl|be|at|cz|hu|pt|gr|ie|nz|za|in|mx|ar|cl|uy|ee|is)(?:\.[a-z]{2})?\b(?:/[^\s<>]*)?",
    );
    for m in bare.find_iter(text) {
        let before = text[..m.start()].chars().next_back();
        if matches!(before, Some('@' | '.' | '/')) || text[m.end()..].starts_with('@') {
            continue;
        }
        // All capitals without a scheme are abbreviations ("MFG.CO", "F.C.C.CO"), not domains.
        if !m.as_str().chars().any(|c| c.is_ascii_lowercase()) {
            continue;
        }
        out.push(Candidate {
            start: m.start(),
            end: m.end(),
            kind: "URL",
            score: 0.6,
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::scan;

    #[test]
    fn urls_with_and_without_scheme_but_not_inside_emails() {
        let kinds = |t: &str| scan(t).into_iter().map(|s| s.kind).collect::<Vec<_>>();
        assert_eq!(
            kinds("see https://www.FaceUpdate.com.br/ now."),
            vec!["URL"]
        );
        assert_eq!(kinds("see example.org for more"), vec!["URL"]);
        assert_eq!(kinds("ada@example.org"), vec!["EMAIL_ADDRESS"]);
        assert!(kinds("I got 3.5 out of 4.0").is_empty());
    }
}
