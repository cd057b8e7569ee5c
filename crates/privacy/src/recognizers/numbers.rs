//! Numbers with checksums or issuing rules: CREDIT_CARD (issuer ranges + Luhn), US_SSN (SSA
//! rules), IBAN_CODE (ISO 13616 mod 97).

use std::sync::OnceLock;

use regex::Regex;

use super::pattern;
use crate::Candidate;

fn digits(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

/// The Luhn checksum.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Whether the number starts with a current issuer identification range and has a length that
/// issuer uses (Visa, Mastercard, American Express, Discover, Diners, JCB, UnionPay, Maestro,
/// Mir, RuPay).
fn issued(d: &[u8]) -> bool {
    let prefix = |n: usize| {
        d.iter()
            .take(n)
            .fold(0u32, |acc, &x| acc * 10 + u32::from(x))
    };
    let len = d.len();
    let (p1, p2, p3, p4) = (prefix(1), prefix(2), prefix(3), prefix(4));
    match p1 {
        4 => matches!(len, 13 | 16 | 19),
        5 => {
            ((51..=55).contains(&p2) && len == 16)
                || ((50..=59).contains(&p2) && (12..=19).contains(&len))
        }
        2 => {
            ((2221..=2720).contains(&p4) && len == 16)
                || ((2200..=2204).contains(&p4) && (16..=19).contains(&len))
                || (p4 == 2131 && len == 15)
        }
        3 => {
            ((p2 == 34 || p2 == 37) && len == 15)
                || (((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39)
                    && (14..=19).contains(&len))
                || (p2 == 35 && (16..=19).contains(&len))
        }
        // JCB's older 15-digit ranges.
        1 => p4 == 1800 && len == 15,
        6 => (16..=19).contains(&len) || (12..=19).contains(&len) && (56..=69).contains(&p2),
        8 => (p2 == 81 || p2 == 82) && len == 16,
        _ => false,
    }
}

/// Card numbers in runs of digit groups. A run may hold more than one number, or a card beside
/// other digits ("+44 20 7946 0958 4111 1111 1111 1111"): from each group, the longest span of
/// whole groups with an issuer's prefix and a valid checksum is a card.
pub fn credit_cards(text: &str, out: &mut Vec<Candidate>) {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = pattern(&RE, r"\b\d+(?:[ -]\d+)*\b");
    let group = pattern_digits();
    for run in re.find_iter(text) {
        let groups: Vec<(usize, usize)> = group
            .find_iter(run.as_str())
            .map(|g| (run.start() + g.start(), run.start() + g.end()))
            .collect();
        let mut i = 0;
        while i < groups.len() {
            let found = (i..groups.len()).rev().find(|&j| {
                let d = digits(&text[groups[i].0..groups[j].1]);
                (12..=19).contains(&d.len()) && issued(&d) && luhn(&d)
            });
            match found {
                Some(j) => {
                    out.push(Candidate {
                        start: groups[i].0,
                        end: groups[j].1,
                        kind: "CREDIT_CARD",
                        score: 1.0,
                    });
                    i = j + 1;
                }
                None => i += 1,
            }
        }
    }
}

/// One group of digits.
fn pattern_digits() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    pattern(&RE, r"\d+")
}

pub fn us_ssn(text: &str, out: &mut Vec<Candidate>) {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = pattern(&RE, r"\b\d{3}[- .]?\d{2}[- .]?\d{4}\b");
    for m in re.find_iter(text) {
        let s = m.as_str();
        let separators: Vec<char> = s.chars().filter(|c| !c.is_ascii_digit()).collect();
        if !(separators.is_empty() || (separators.len() == 2 && separators[0] == separators[1])) {
            continue;
        }
        let d = digits(s);
        let area = u32::from(d[0]) * 100 + u32::from(d[1]) * 10 + u32::from(d[2]);
        let group = u32::from(d[3]) * 10 + u32::from(d[4]);
        let serial = d[5..].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
        // Never issued: area 000, 666 or 900-999; group 00; serial 0000; and runs of one digit.
        if area == 0
            || area == 666
            || area >= 900
            || group == 0
            || serial == 0
            || d.iter().all(|&x| x == d[0])
        {
            continue;
        }
        // Nine bare digits are as often a licence or account number: they need context.
        let context = super::before(text, m.start(), 40);
        let named = ["ssn", "social security", "social-security"]
            .iter()
            .any(|w| context.contains(w));
        let score = match (separators.is_empty(), named) {
            (_, true) => 0.95,
            (false, false) => 0.85,
            (true, false) => 0.3,
        };
        out.push(Candidate {
            start: m.start(),
            end: m.end(),
            kind: "US_SSN",
            score,
        });
    }
}

/// The ISO 13616 check: move the first four characters to the end, read letters as 10-35,
/// and the number must leave 1 modulo 97.
pub fn iban_valid(compact: &str) -> bool {
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let rearranged = compact[4..].bytes().chain(compact[..4].bytes());
    let mut remainder = 0u32;
    for b in rearranged {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

pub fn iban(text: &str, out: &mut Vec<Candidate>) {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = pattern(&RE, r"(?i)\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b");
    for m in re.find_iter(text) {
        // The pattern may run on into the next word ("... GB22 HSXW 6531 today"): drop trailing
        // space-separated groups until the checksum holds or too little is left.
        let mut candidate = m.as_str();
        loop {
            let compact: String = candidate
                .chars()
                .filter(|c| *c != ' ')
                .map(|c| c.to_ascii_uppercase())
                .collect();
            if iban_valid(&compact) {
                out.push(Candidate {
                    start: m.start(),
                    end: m.start() + candidate.len(),
                    kind: "IBAN_CODE",
                    score: 1.0,
                });
                break;
            }
            match candidate.rfind(' ') {
                Some(i) if compact.len() > 15 => candidate = &candidate[..i],
                _ => break,
            }
        }
    }
}

/// US_DRIVER_LICENSE: state formats vary from 1-2 letters plus 4-14 digits to 7-14 digits, so
/// the shape alone says little; a licence is reported when words like "driver's license" come
/// just before it.
pub fn us_driver_license(text: &str, out: &mut Vec<Candidate>) {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = pattern(
        &RE,
        r"(?i)\b(?:[a-z]{1,2}\d{4,14}|\d{7,14}|\d{3,4}-\d{2,3}-\d{3,4})\b",
    );
    for m in re.find_iter(text) {
        let context = super::before(text, m.start(), 48);
        let named = ["driver", "licence", "license", "dl#", "dl ", "permit"]
            .iter()
            .any(|w| context.contains(w));
        if named {
            out.push(Candidate {
                start: m.start(),
                end: m.end(),
                kind: "US_DRIVER_LICENSE",
                score: 0.97,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan;

    fn kinds(t: &str) -> Vec<String> {
        scan(t)
            .into_iter()
            .filter(|s| s.score >= 0.5)
            .map(|s| s.kind)
            .collect()
    }

    #[test]
    fn cards_need_an_issuer_and_a_luhn_checksum() {
        assert_eq!(kinds("card 4992 8196 7782 0891 ok"), vec!["CREDIT_CARD"]);
        assert_eq!(kinds("3532611178006818"), vec!["CREDIT_CARD"]);
        assert_eq!(kinds("36719903849837"), vec!["CREDIT_CARD"]);
        assert!(kinds("order 4992819677820892 (bad checksum)").is_empty());
        assert!(
            kinds("id 1234567890123452").is_empty(),
            "no issuer starts with 1"
        );
    }

    #[test]
    fn ssns_follow_the_issuing_rules() {
        assert_eq!(kinds("SSN 514-69-0360."), vec!["US_SSN"]);
        assert!(
            !kinds("666-12-3456 and 123-00-4567 and 000-12-3456").contains(&"US_SSN".to_string())
        );
        assert!(
            !kinds("514-69 0360").contains(&"US_SSN".to_string()),
            "mixed separators"
        );
    }

    #[test]
    fn licences_need_their_words() {
        assert_eq!(
            kinds("My driver's license number is m472269848583"),
            vec!["US_DRIVER_LICENSE"]
        );
        assert_eq!(
            kinds("my driver's license number is 2270-66-1551"),
            vec!["US_DRIVER_LICENSE"]
        );
        assert!(!kinds("order A25064207 shipped").contains(&"US_DRIVER_LICENSE".to_string()));
    }

    #[test]
    fn ibans_pass_mod_97() {
        assert!(iban_valid("GB82WEST12345698765432"));
        assert!(!iban_valid("GB82WEST12345698765433"));
        assert_eq!(kinds("pay GB22HSXW65313614878245 today"), vec!["IBAN_CODE"]);
    }
}
