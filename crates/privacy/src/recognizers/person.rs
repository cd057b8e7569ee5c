//! PERSON, without a downloaded model: first and last names from the US census gazetteers
//! (`data/`), honorifics, initials and context phrases, over runs of capitalised words.
//!
//! Scores: a first name followed by a known surname 0.85; a first name with another capitalised
//! word, or any capitalised run after an honorific or a phrase like "my name is", 0.7-0.85; a
//! lone first name 0.6 (0.45 at the start of a sentence, where every word is capitalised);
//! lower-case or ALL-CAPS pairs of known names 0.6.

use std::collections::HashSet;
use std::sync::OnceLock;

use crate::Candidate;

static FIRST: &str = include_str!("../../data/first_names.txt");
static LAST: &str = include_str!("../../data/last_names.txt");

fn first_names() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        FIRST
            .lines()
            .filter(|l| !l.is_empty() && !is_common(l))
            .collect()
    })
}

fn last_names() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        LAST.lines()
            .filter(|l| !l.is_empty() && !is_common(l))
            .collect()
    })
}

/// A word list as a set, built once: the lists are long, and a slice search compares every
/// entry of the same length.
fn set_of(
    cell: &'static OnceLock<HashSet<&'static str>>,
    words: &'static [&'static str],
) -> &'static HashSet<&'static str> {
    cell.get_or_init(|| words.iter().copied().collect())
}

/// Is this lower-case word an ordinary word rather than a name?
pub(crate) fn is_common(word: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    set_of(&SET, COMMON).contains(word)
}

/// Does this lower-case word make a capitalised run a place or an organisation?
fn is_not_people(word: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    set_of(&SET, NOT_PEOPLE).contains(word)
}

/// Words that are in the census lists but are far more often ordinary words.
#[rustfmt::skip]
const COMMON: &[&str] = &[
    "a", "an", "and", "the", "of", "in", "on", "at", "to", "for", "by", "with", "from", "as", "is", "be",
    "are", "was", "will", "may", "can", "must", "shall", "june", "april", "august", "march", "january",
    "monday", "sunday", "friday", "grace", "hope", "faith", "joy", "mark", "bill", "art", "guy", "major",
    "general", "rose", "lily", "king", "queen", "white", "black", "brown", "green", "gray", "grey", "young",
    "long", "short", "little", "hill", "hall", "wood", "woods", "west", "east", "north", "south", "park",
    "lane", "field", "fields", "bank", "banks", "street", "road", "price", "rich", "love", "fox", "wolf",
    "bird", "bush", "stone", "rock", "river", "lake", "ford", "house", "case", "bell", "page", "day", "may",
    "said", "new", "best", "good", "more", "most", "much", "many", "very", "well", "so", "all", "one", "two",
    "man", "person", "child", "son", "sons", "care", "service", "law", "story", "song", "music", "love",
    "home", "city", "state", "world", "game", "book", "power", "market", "english", "french", "german", "dear",
    "hi", "hello", "thanks", "please", "yes", "no", "not", "but", "or", "if", "when", "what", "who", "how",
    "why", "where", "my", "your", "our", "their", "his", "her", "it", "we", "you", "they", "he", "she", "this",
    "that", "these", "those", "there", "here", "then", "than", "also", "just", "only", "even", "still",
    "again", "back", "number", "account", "address", "email", "phone", "card", "credit", "bank", "group",
    "inc", "corp", "ltd", "co", "company", "university", "school", "college", "american", "bot", "user",
    "guardian", "director", "producer",
];

/// Words that make a capitalised run an address, a place or an organisation, not a person.
#[rustfmt::skip]
const NOT_PEOPLE: &[&str] = &[
    "name", "e-mail", "email", "website", "date", "phone", "address", "title", "subject", "company", "i'm", "battery",
    "mobile", "fax", "desk", "tel", "telephone", "cell", "office", "work", "direct", "pager",
    "belgium", "portugal", "france", "paris", "germany", "spain", "italy", "poland", "sweden", "norway", "denmark",
    "finland", "iceland", "ireland", "england", "scotland", "wales", "britain", "netherlands", "austria",
    "switzerland", "greece", "turkey", "russia", "ukraine", "china", "japan", "korea", "india", "brazil", "mexico",
    "canada", "australia", "argentina", "chile", "peru", "colombia", "egypt", "nigeria", "kenya", "morocco",
    "israel", "iran", "iraq", "cyprus", "hungary", "romania", "bulgaria", "serbia", "croatia", "slovenia",
    "slovakia", "czech", "estonia", "latvia", "lithuania", "uruguay", "london", "berlin", "madrid", "rome", "tokyo",
    "suite", "st", "street", "ave", "avenue", "drive", "dr", "road", "rd", "way", "lane", "ln", "crossing",
    "junction", "junctions", "land", "court", "ct", "place", "pl", "boulevard", "blvd", "rua", "avenida",
    "rue", "via", "strasse", "straße", "square", "sq", "terrace", "highway", "hwy", "apt", "unit", "box",
    "plaza", "circle", "parkway", "pkwy", "trail", "alley", "bridge", "mount", "port", "fort", "station",
    "gardens", "hills", "heights", "valley", "village", "united", "kingdom", "states", "republic", "zealand",
    "america", "africa", "europe", "asia", "island", "islands", "county", "province", "district", "region",
    "city", "town", "limited", "ltd", "holding", "holdings", "inc", "corp", "corporation", "llc", "plc",
    "gmbh", "group", "biosciences", "technologies", "technology", "solutions", "systems", "partners",
    "associates", "international", "industries", "enterprises", "bank", "trust", "financial", "foundation",
    "university", "college", "school", "institute", "hospital", "church", "museum", "club", "team", "records",
    "weekly", "times", "news", "magazine", "radio", "tv", "standard", "score",
];

/// Phrases right before a name that say it is one, however unknown the name.
const STRONG_CUES: &[&str] = &[
    "my name is",
    "name is",
    "name:",
    "name?",
    "call me",
    "named",
    "called",
    "here's",
    "producer",
    "says",
    "said",
    "i'm",
    "i am",
    "dear",
    "hi",
    "hello",
    "ask",
    "by",
];

/// Verbs that often follow a person's name ("Liisa is", "Giorgio had").
#[rustfmt::skip]
const PERSON_VERBS: &[&str] = &[
    "is", "was", "had", "has", "said", "says", "told", "asked", "began", "spent", "wrote", "sang", "loves",
    "went", "thinks",
];

/// Words before a name that say it is one.
#[rustfmt::skip]
const HONORIFICS: &[&str] = &[
    "mr", "mrs", "ms", "miss", "dr", "prof", "professor", "sir", "madam", "mx",
];
#[rustfmt::skip]
const CUES: &[&str] = &[
    "my name is", "name is", "named", "called", "i'm", "i am", "dear", "hi", "hello", "user:", "by:",
    "producer", "songwriter", "singer", "speaker", "student", "teacher", "tutor", "classmate", "friend",
    "from", "with", "ask", "tell", "by", "and",
];

#[derive(Debug, Clone, Copy)]
pub(crate) struct Word<'a> {
    pub start: usize,
    pub end: usize,
    pub text: &'a str,
}

/// Words: runs of letters, with inner apostrophes and hyphens. A literal escape sequence
/// (`\n`, `\t`, `\r`: text that was escaped twice on its way here) separates words like the
/// whitespace it stands for.
pub(crate) fn words(text: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c == '\\'
            && chars
                .peek()
                .is_some_and(|(_, n)| matches!(n, 'n' | 't' | 'r'))
        {
            chars.next();
            if let Some(s) = start.take() {
                out.push(Word {
                    start: s,
                    end: at,
                    text: &text[s..at],
                });
            }
            continue;
        }
        let inner = (c == '\'' || c == '-' || c == '’')
            && start.is_some()
            && chars.peek().is_some_and(|(_, n)| n.is_alphabetic());
        if c.is_alphabetic() || inner {
            start.get_or_insert(at);
        } else if let Some(s) = start.take() {
            out.push(Word {
                start: s,
                end: at,
                text: &text[s..at],
            });
        }
    }
    if let Some(s) = start {
        out.push(Word {
            start: s,
            end: text.len(),
            text: &text[s..],
        });
    }
    // A possessive is not part of the name: "Yefremova's" -> "Yefremova".
    for w in &mut out {
        for suffix in ["'s", "’s"] {
            if w.text.len() > suffix.len() + 1 && w.text.ends_with(suffix) {
                w.end -= suffix.len();
                w.text = &text[w.start..w.end];
            }
        }
    }
    out
}

fn capitalised(w: &str) -> bool {
    let mut chars = w.chars();
    chars.next().is_some_and(char::is_uppercase) && chars.any(char::is_lowercase)
}

fn all_caps(w: &str) -> bool {
    w.chars().count() >= 2 && w.chars().all(|c| !c.is_lowercase())
}

/// Whether the word starts a sentence (nothing but spaces and quotes since the last `.`, `!`,
/// `?`, newline or the start of the text).
fn sentence_start(text: &str, at: usize) -> bool {
    let mut chars = text[..at].chars().rev().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' | '!' | '?' | '\n' => return true,
            // A literal `\n` (escaped twice) is a line break too.
            'n' if chars.peek() == Some(&'\\') => return true,
            c if c.is_whitespace() || c == '"' || c == '\'' || c == '(' => continue,
            _ => return false,
        }
    }
    true
}

pub fn find(text: &str, out: &mut Vec<Candidate>) {
    let (first, last) = (first_names(), last_names());
    let ws = words(text);
    // Lower-case forms of the words: slices of one lower-cased copy of the text where the text is
    // ASCII (one allocation), one string per word otherwise.
    let ascii_lower = text.is_ascii().then(|| text.to_ascii_lowercase());
    let lower: Vec<std::borrow::Cow<'_, str>> = ws
        .iter()
        .map(|w| match &ascii_lower {
            Some(l) => std::borrow::Cow::Borrowed(&l[w.start..w.end]),
            None => std::borrow::Cow::Owned(w.text.to_lowercase()),
        })
        .collect();
    let mut i = 0;
    while i < ws.len() {
        let w = ws[i];
        if HONORIFICS.contains(&lower[i].as_ref()) {
            i += 1;
            continue;
        }
        let is_first = first.contains(lower[i].as_ref());
        let cap = capitalised(w.text) || (all_caps(w.text) && is_first);
        // Most words are neither capitalised nor a known first name: skip them cheaply.
        if !cap && !is_first {
            i += 1;
            continue;
        }
        let context = super::before(text, w.start, 24);
        let cue = CUES.iter().any(|c| context.trim_end().ends_with(c));
        let honorific = i > 0
            && HONORIFICS.contains(&lower[i - 1].as_ref())
            && text[ws[i - 1].end..w.start]
                .trim()
                .trim_start_matches('.')
                .trim()
                .is_empty();
        if !cap {
            // Lower-case names: a known first name followed by a known surname.
            if is_first
                && ws
                    .get(i + 1)
                    .is_some_and(|n| n.start - w.end == 1 && last.contains(lower[i + 1].as_ref()))
                && !capitalised(ws[i + 1].text)
            {
                out.push(Candidate {
                    start: w.start,
                    end: ws[i + 1].end,
                    kind: "PERSON",
                    score: 0.6,
                });
                i += 2;
                continue;
            }
            i += 1;
            continue;
        }
        // Extend over following capitalised words and initials ("Faina D. Yefremova").
        let mut j = i;
        while j + 1 < ws.len() && j - i < 3 {
            let next = ws[j + 1];
            let gap = &text[ws[j].end..next.start];
            let gap_ok = gap == " " || gap == ". " || gap == " \u{a0}";
            let next_cap =
                capitalised(next.text) || (all_caps(next.text) && cap && all_caps(w.text));
            let initial =
                next.text.chars().count() == 1 && next.text.chars().all(char::is_uppercase);
            if gap_ok
                && (next_cap || initial)
                && (is_first || !is_common(&lower[j + 1]))
                && !is_not_people(&lower[j + 1])
            {
                j += 1;
            } else {
                break;
            }
        }
        let is_last_of_run = |k: usize| last.contains(lower[k].as_ref());
        let starts_sentence = sentence_start(text, w.start);
        // The next word: an address or organisation word, or a verb that people do.
        let next_word = ws.get(j + 1).map(|_| lower[j + 1].as_ref()).filter(|_| {
            let gap = &text[ws[j].end..ws[j + 1].start];
            gap.chars().all(char::is_whitespace) && !gap.is_empty()
        });
        if is_not_people(&lower[i]) || next_word.is_some_and(is_not_people) {
            i = j + 1;
            continue;
        }
        let acts = next_word.is_some_and(|n| PERSON_VERBS.contains(&n));
        // "Garrett: ..." at the start of a line is a speaker.
        let speaker = j == i && text[ws[j].end..].starts_with(':') && {
            let line_start = text[..w.start]
                .rfind('\n')
                .map_or(0, |p| p + 1)
                .max(text[..w.start].rfind("\\n").map_or(0, |p| p + 2));
            text[line_start..w.start].trim().is_empty()
        };
        let after_said = i > 0
            && matches!(
                lower[i - 1].as_ref(),
                "said" | "says" | "asked" | "tell" | "told" | "by"
            );
        let score = if j > i {
            match (is_first, is_last_of_run(j)) {
                (true, true) => 0.85,
                _ if honorific
                    || cue
                    || STRONG_CUES.iter().any(|c| context.trim_end().ends_with(c)) =>
                {
                    0.8
                }
                (true, false) => 0.7,
                (false, true) if !starts_sentence && !is_common(&lower[i]) => 0.5,
                _ => 0.0,
            }
        } else if honorific {
            0.85
        } else if !is_common(&lower[i])
            && STRONG_CUES.iter().any(|c| context.trim_end().ends_with(c))
            && !all_caps(w.text)
        {
            0.75
        } else if is_first && !is_common(&lower[i]) {
            if starts_sentence && !cue && !acts && !speaker {
                0.45
            } else {
                0.6
            }
        } else if !is_common(&lower[i]) && (speaker || after_said || (acts && !all_caps(w.text))) {
            0.55
        } else if cue && !starts_sentence && is_last_of_run(i) {
            0.5
        } else {
            0.0
        };
        if score > 0.0 {
            out.push(Candidate {
                start: w.start,
                end: ws[j].end,
                kind: "PERSON",
                score,
            });
        }
        i = j + 1;
    }
}

#[cfg(test)]
mod tests {
    use crate::scan;

    fn people(t: &str) -> Vec<String> {
        let chars: Vec<char> = t.chars().collect();
        scan(t)
            .into_iter()
            .filter(|s| s.kind == "PERSON" && s.score >= 0.5)
            .map(|s| chars[s.start..s.end].iter().collect())
            .collect()
    }

    #[test]
    fn names_in_their_usual_shapes() {
        assert_eq!(
            people("we need to add Thelma Mitchell as guardian"),
            vec!["Thelma Mitchell"]
        );
        assert_eq!(people("Mr. Smith is a 82 year old man"), vec!["Smith"]);
        assert_eq!(
            people("verses from Faina D. Yefremova's tale"),
            vec!["Faina D. Yefremova"]
        );
        assert_eq!(
            people("i told jennifer metcalfe about it"),
            vec!["jennifer metcalfe"]
        );
        assert_eq!(
            people("They had 6: Troy, Katie and Danny."),
            vec!["Troy", "Katie", "Danny"]
        );
    }

    #[test]
    fn literal_escape_sequences_separate_words() {
        assert_eq!(
            people(r"Morgan: hi\nTheresa: who are you?"),
            vec!["Morgan", "Theresa"]
        );
        assert_eq!(
            people(r"Hi there.\n\nThelma Mitchell\n\n12 Oak Street"),
            vec!["Thelma Mitchell"]
        );
    }

    #[test]
    fn ordinary_capitalised_words_are_not_names() {
        assert!(people("The Village Bank and Trust said it will rise in May.").is_empty());
        assert!(people("New York is large. Green Park too.").is_empty());
        assert!(people("Contact\nMobile: 555 0101\nFax: 555 0102").is_empty());
    }
}
