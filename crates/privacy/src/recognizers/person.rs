//! Words, as PERSON and LOCATION detection (the [`crate::tagger`]) and rosters see them, and the
//! census names that are far more often ordinary words. The tests here are of PERSON detection
//! as a whole: the shapes names take in learners' text.

use std::collections::HashSet;
use std::sync::OnceLock;

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
    fn names_no_list_holds_are_found_by_context() {
        assert_eq!(
            people("Ask aigerim or bolat, or Sigrid."),
            vec!["aigerim", "bolat", "Sigrid"]
        );
        assert!(people("See section 4. Thanks everyone for coming.").is_empty());
        assert_eq!(
            people("gijsbrecht helped me, mail g@school.example"),
            vec!["gijsbrecht"]
        );
    }

    #[test]
    fn section_numbers_and_isbns_are_not_addresses_or_phones() {
        let kinds = |t: &str| -> Vec<String> {
            scan(t)
                .into_iter()
                .filter(|s| s.score >= 0.4)
                .map(|s| s.kind)
                .collect()
        };
        assert!(kinds("See section 2.3.4.1 and 12.3.4.5 for details.").is_empty());
        assert!(kinds("The ISBN is 978-0-306-40615-7, or ISBN 0-306-40615-2.").is_empty());
    }

    #[test]
    fn ordinary_capitalised_words_are_not_names() {
        assert!(people("The Village Bank and Trust said it will rise in May.").is_empty());
        assert!(people("New York is large. Green Park too.").is_empty());
        assert!(people("Contact\nMobile: 555 0101\nFax: 555 0102").is_empty());
    }
}
