//! What the tagger sees of each word: hashed features of the word itself (its form, shape, affixes
//! and which word lists hold it), of its neighbours and of the punctuation around it.
//!
//! Features are hashed into a fixed table ([`BUCKETS`]) rather than kept in a dictionary: no
//! feature strings at run time, one multiply per byte, and a table whose size does not grow with
//! the training data. Collisions cost a little accuracy, measured in the held-out figures.

use std::collections::HashSet;

use crate::recognizers::person::{Word, is_common, words};

/// log2 of the number of hashed feature buckets.
pub const BUCKET_BITS: u32 = 20;
pub const BUCKETS: usize = 1 << BUCKET_BITS;

/// Word-list memberships of one word, as bits.
pub mod flag {
    pub const FIRST: u16 = 1;
    pub const LAST: u16 = 2;
    /// An ordinary English word (SCOWL).
    pub const ENGLISH: u16 = 4;
    /// A word the census lists hold but that is far more often an ordinary word ("grace").
    pub const COMMON: u16 = 8;
    /// Begins a place of the gazetteer ("New" of "New Delhi", or "Oslo").
    pub const PLACE_START: u16 = 16;
    /// Continues one.
    pub const PLACE_INSIDE: u16 = 32;
    pub const HONORIFIC: u16 = 64;
    /// Starts a sentence or a line.
    pub const SENTENCE_START: u16 = 128;
}

const HONORIFICS: &[&str] = &[
    "mr",
    "mrs",
    "ms",
    "miss",
    "dr",
    "prof",
    "professor",
    "sir",
    "madam",
    "mx",
    "coach",
];

/// The word lists, lower-case.
pub struct Lexicon {
    pub first: HashSet<&'static str>,
    pub last: HashSet<&'static str>,
    pub english: HashSet<&'static str>,
    /// Places, their words joined by one space.
    pub places: HashSet<String>,
}

impl Lexicon {
    /// The lists shipped in the binary, less the names `masked` says to leave out (training
    /// leaves some out so that the model learns to find names no list holds).
    pub fn new(masked: impl Fn(&str) -> bool) -> Lexicon {
        let list = |texts: &[&'static str]| -> HashSet<&'static str> {
            texts
                .iter()
                .flat_map(|t| t.lines())
                .filter(|l| !l.is_empty() && !masked(l))
                .collect()
        };
        Lexicon {
            first: list(&[super::CENSUS_FIRST, super::WORLD_FIRST]),
            last: list(&[super::CENSUS_LAST, super::WORLD_LAST]),
            english: list(&[super::ENGLISH]),
            places: super::PLACES
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| {
                    words(l)
                        .iter()
                        .map(|w| w.text.to_lowercase())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect(),
        }
    }
}

/// A text cut into words, with what the features need of each.
pub struct Sentence<'a> {
    text: &'a str,
    pub(crate) words: Vec<Word<'a>>,
    /// Every word lower-cased, one after the other in one string (one allocation per text).
    lowered: String,
    /// Where each word lies in `lowered`.
    lower_at: Vec<(usize, usize)>,
    shapes: Vec<u8>,
    flags: Vec<u16>,
}

/// Shape of a word: case pattern, length class and whether it holds a hyphen or apostrophe.
fn shape(w: &str) -> u8 {
    let mut chars = w.chars();
    let first_upper = chars.next().is_some_and(char::is_uppercase);
    let (mut upper, mut lower) = (0, 0);
    for c in w.chars() {
        if c.is_uppercase() {
            upper += 1
        } else if c.is_lowercase() {
            lower += 1
        }
    }
    let case = match (first_upper, upper, lower) {
        (true, 1, _) => 1,  // Capitalised
        (true, _, 0) => 2,  // UPPER (or one capital letter)
        (false, 0, _) => 0, // lower
        _ => 3,             // mIxed
    };
    let len = match w.chars().count() {
        1 => 0,
        2..=3 => 1,
        _ => 2,
    };
    let joined = u8::from(w.contains(['-', '\'', '’']));
    case | (len << 2) | (joined << 4)
}

impl<'a> Sentence<'a> {
    pub fn new(text: &'a str, lexicon: &Lexicon) -> Sentence<'a> {
        let words = words(text);
        let mut lowered = String::with_capacity(text.len());
        let lower_at: Vec<(usize, usize)> = words
            .iter()
            .map(|w| {
                let start = lowered.len();
                if w.text.is_ascii() {
                    lowered.extend(w.text.chars().map(|c| c.to_ascii_lowercase()));
                } else {
                    // `str::to_lowercase` knows word-final sigma; `char`'s does not.
                    lowered.push_str(&w.text.to_lowercase());
                }
                (start, lowered.len())
            })
            .collect();
        let lower: Vec<&str> = lower_at.iter().map(|&(s, e)| &lowered[s..e]).collect();
        let shapes: Vec<u8> = words.iter().map(|w| shape(w.text)).collect();
        let mut flags = vec![0u16; words.len()];
        for (i, &l) in lower.iter().enumerate() {
            let f = &mut flags[i];
            if lexicon.first.contains(l) {
                *f |= flag::FIRST;
            }
            if lexicon.last.contains(l) {
                *f |= flag::LAST;
            }
            if lexicon.english.contains(l) {
                *f |= flag::ENGLISH;
            }
            if is_common(l) {
                *f |= flag::COMMON;
            }
            if HONORIFICS.contains(&l) {
                *f |= flag::HONORIFIC;
            }
            if starts_sentence(text, words[i].start) {
                *f |= flag::SENTENCE_START;
            }
        }
        // Places: the longest run of up to four capitalised words the gazetteer holds.
        let mut i = 0;
        while i < words.len() {
            let mut matched = 0;
            if shapes[i] & 3 != 0 {
                let mut joined = String::new();
                for n in 1..=4.min(words.len() - i) {
                    if n > 1 {
                        let gap = &text[words[i + n - 2].end..words[i + n - 1].start];
                        if gap != " " && gap != "-" {
                            break;
                        }
                        joined.push(' ');
                    }
                    joined.push_str(lower[i + n - 1]);
                    // A one-word place that is also an English word ("May", "Mobile") is
                    // left to context.
                    let ordinary = n == 1 && flags[i] & (flag::ENGLISH | flag::COMMON) != 0;
                    if !ordinary && lexicon.places.contains(&joined) {
                        matched = n;
                    }
                }
            }
            if matched > 0 {
                flags[i] |= flag::PLACE_START;
                for f in &mut flags[i + 1..i + matched] {
                    *f |= flag::PLACE_INSIDE;
                }
                i += matched;
            } else {
                i += 1;
            }
        }
        Sentence {
            text,
            words,
            lowered,
            lower_at,
            shapes,
            flags,
        }
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    fn lower(&self, i: usize) -> &str {
        let (start, end) = self.lower_at[i];
        &self.lowered[start..end]
    }

    /// A lower-case English word that is no first name and no place ("checksum", and "mail",
    /// which the census lists as a surname): never a name on its own. Lower-case surnames that
    /// are English words ("hall", "page") are read as the words.
    pub(crate) fn is_plain_word(&self, i: usize) -> bool {
        let lists = flag::FIRST | flag::PLACE_START | flag::PLACE_INSIDE;
        self.shapes[i] & 3 == 0 && self.flags[i] & flag::ENGLISH != 0 && self.flags[i] & lists == 0
    }

    /// A lower-case word that no place list holds: a place is not written so ("checksum").
    pub(crate) fn is_lower_unlisted_place(&self, i: usize) -> bool {
        self.shapes[i] & 3 == 0 && self.flags[i] & (flag::PLACE_START | flag::PLACE_INSIDE) == 0
    }

    /// A capitalised surname of the lists that is not also an English word ("Mitchell").
    pub(crate) fn is_capitalised_surname(&self, i: usize) -> bool {
        self.shapes[i] & 3 == 1
            && self.flags[i] & flag::LAST != 0
            && self.flags[i] & (flag::ENGLISH | flag::COMMON) == 0
    }

    /// The punctuation between word `i - 1` and word `i` (`i` may be one past the end), reduced
    /// to a small class: spaces dropped, line breaks as `N`, at most four characters.
    fn gap(&self, i: usize) -> u32 {
        let from = if i == 0 { 0 } else { self.words[i - 1].end };
        let to = self.words.get(i).map_or(self.text.len(), |w| w.start);
        let mut class: u32 = if i == 0 { 1 } else { 0 };
        let mut n = 0;
        let mut chars = self.text[from..to].chars().peekable();
        while let Some(c) = chars.next() {
            let c = match c {
                '\n' | '\r' => 'N',
                '\\' if chars.peek().is_some_and(|n| matches!(n, 'n' | 'r')) => {
                    chars.next();
                    'N'
                }
                c if c.is_whitespace() => continue,
                c if c.is_ascii_digit() => '0',
                c => c,
            };
            if n < 4 {
                class = class.wrapping_mul(131).wrapping_add(c as u32);
                n += 1;
            }
        }
        if i == self.words.len() {
            class = class.wrapping_add(7_777);
        }
        class
    }

    /// The hashed features of word `i`, given the tags chosen for the two words before it.
    pub fn features(&self, i: usize, prev: u8, prev2: u8, out: &mut Vec<u32>) {
        out.clear();
        let w = self.lower(i);
        let (shape, flags) = (self.shapes[i], self.flags[i]);
        let lex = flags & !flag::SENTENCE_START;
        let word_at = |k: isize| -> &str {
            let j = i as isize + k;
            if j < 0 {
                "<s>"
            } else {
                let j = j as usize;
                if j < self.len() {
                    self.lower(j)
                } else {
                    "</s>"
                }
            }
        };
        let shape_flags_at = |k: isize| -> u32 {
            let j = i as isize + k;
            if j < 0 || j as usize >= self.len() {
                0xffff
            } else {
                let j = j as usize;
                u32::from(self.shapes[j]) << 16 | u32::from(self.flags[j])
            }
        };
        // Affixes in whole characters, as slices of the word (no allocation per word).
        let n = w.chars().count();
        let byte_of = |chars: usize| w.char_indices().nth(chars).map_or(w.len(), |(b, _)| b);
        let (gap_before, gap_after) = (self.gap(i), self.gap(i + 1));
        let mut push = |template: u8, parts: &[&[u8]]| out.push(hash(template, parts));
        push(0, &[]);
        push(1, &[w.as_bytes()]);
        push(2, &[&w.as_bytes()[..byte_of(3)]]);
        if n > 3 {
            push(3, &[&w.as_bytes()[byte_of(n - 3)..]]);
            push(4, &[&w.as_bytes()[byte_of(n - 2)..]]);
        }
        push(5, &[&[shape]]);
        push(6, &[&[shape], &lex.to_le_bytes()]);
        push(7, &[&[shape], &flags.to_le_bytes()]);
        push(8, &[word_at(-1).as_bytes()]);
        push(9, &[word_at(1).as_bytes()]);
        push(10, &[word_at(-2).as_bytes()]);
        push(11, &[word_at(2).as_bytes()]);
        push(12, &[&shape_flags_at(-1).to_le_bytes()]);
        push(13, &[&shape_flags_at(1).to_le_bytes()]);
        push(14, &[&gap_before.to_le_bytes()]);
        push(15, &[&gap_after.to_le_bytes()]);
        push(16, &[&gap_before.to_le_bytes(), &[shape]]);
        push(17, &[&[prev]]);
        push(18, &[&[prev, shape], &lex.to_le_bytes()]);
        push(19, &[&[prev], w.as_bytes()]);
        push(20, &[word_at(-1).as_bytes(), &[shape]]);
        push(21, &[&[prev2, prev]]);
        push(22, &[&[shape], word_at(1).as_bytes()]);
        push(
            23,
            &[&gap_after.to_le_bytes(), &[shape], &lex.to_le_bytes()],
        );
        push(
            24,
            &[
                &shape_flags_at(-1).to_le_bytes(),
                &[shape],
                &lex.to_le_bytes(),
            ],
        );
    }
}

/// Whether the word at byte `at` starts a sentence or a line.
fn starts_sentence(text: &str, at: usize) -> bool {
    let mut chars = text[..at].chars().rev().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' | '!' | '?' | '\n' | ':' => return true,
            'n' if chars.peek() == Some(&'\\') => return true,
            c if c.is_whitespace() || matches!(c, '"' | '\'' | '(' | '-' | '*') => continue,
            _ => return false,
        }
    }
    true
}

/// FxHash-style mixing of a template number and byte strings into a bucket.
fn hash(template: u8, parts: &[&[u8]]) -> u32 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = u64::from(template).wrapping_mul(K);
    for part in parts {
        for &b in *part {
            h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
        h = (h.rotate_left(5) ^ 0xff).wrapping_mul(K);
    }
    ((h ^ (h >> 29)) >> (64 - BUCKET_BITS)) as u32
}
