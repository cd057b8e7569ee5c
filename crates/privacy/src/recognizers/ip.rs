//! IP_ADDRESS: IPv4 with every octet in range, IPv6 as the standard library parses it. Dotted
//! numbers that read as versions ("version 2.3.4.1", "v1.2.3.4") are not addresses.

use std::net::Ipv6Addr;
use std::sync::OnceLock;

use regex::Regex;

use super::{before, pattern};
use crate::Candidate;

pub fn find(text: &str, out: &mut Vec<Candidate>) {
    static V4: OnceLock<Regex> = OnceLock::new();
    let v4 = pattern(&V4, r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b");
    for m in v4.find_iter(text) {
        let rest = &text[m.end()..];
        let prev = text[..m.start()].chars().next_back();
        // Part of a longer dotted run (1.2.3.4.5) or of a decimal: not an address.
        if matches!(prev, Some('.'))
            || (rest.starts_with('.') && rest[1..].starts_with(|c: char| c.is_ascii_digit()))
        {
            continue;
        }
        if !m
            .as_str()
            .split('.')
            .all(|o| o.parse::<u16>().is_ok_and(|n| n <= 255) && (o == "0" || !o.starts_with('0')))
        {
            continue;
        }
        let context = before(text, m.start(), 16);
        // Versions, and the numbered sections of a textbook ("see section 2.3.4.1").
        let versiony = [
            "version",
            "ver.",
            "ver ",
            "release",
            "build",
            "firmware",
            "section",
            "sections",
            "chapter",
            "question",
            "questions",
            "exercise",
            "page",
            "step",
            "unit",
            "lesson",
            "part",
            "§",
            "and ",
        ]
        .iter()
        .any(|w| context.contains(w))
            || context.ends_with('v');
        out.push(Candidate {
            start: m.start(),
            end: m.end(),
            kind: "IP_ADDRESS",
            score: if versiony { 0.2 } else { 0.9 },
        });
    }
    if !text.contains(':') {
        return;
    }
    static V6: OnceLock<Regex> = OnceLock::new();
    let v6 = pattern(&V6, r"(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f.]*[0-9a-f]");
    for m in v6.find_iter(text) {
        let s = m.as_str();
        if s.parse::<Ipv6Addr>().is_ok()
            && s.chars().filter(|c| *c == ':').count() >= 2
            && s.chars().any(|c| c.is_ascii_hexdigit())
        {
            out.push(Candidate {
                start: m.start(),
                end: m.end(),
                kind: "IP_ADDRESS",
                score: 0.9,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::scan;

    #[test]
    fn addresses_but_not_versions_times_or_decimals() {
        let kinds = |t: &str| {
            scan(t)
                .into_iter()
                .filter(|s| s.score >= 0.5)
                .map(|s| s.kind)
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds("from 192.168.1.20 today"), vec!["IP_ADDRESS"]);
        assert_eq!(
            kinds("at e786:7bbf:136:8f98:4a5a:62d4:ec9f:ba0a"),
            vec!["IP_ADDRESS"]
        );
        assert_eq!(
            kinds("host ::1 and fe80::1"),
            vec!["IP_ADDRESS", "IP_ADDRESS"]
        );
        assert!(kinds("upgrade to version 2.3.4.1 please").is_empty());
        assert!(kinds("we met at 10:30:00").is_empty());
        assert!(kinds("999.1.1.1 and 1.2.3.4.5").is_empty());
    }
}
