//! PERSON and LOCATION found by context, not only by list: a statistical tagger (an averaged
//! perceptron over word shape, affixes, neighbouring words, punctuation and word-list features)
//! that ships inside the binary (`data/tagger.model`) and needs nothing at run time.
//!
//! Why a model and not rules: rules written while looking at the labelled sets learn those sets'
//! names. A model that sees names both inside and outside its word lists during training learns
//! what a name *looks like in context* ("thanks ___!", "___ and I", "Group 3: ___, ___"), which is
//! what finds the Nordic, Slavic or Central Asian name no list holds.
//!
//! - [`features`]: the words of a text and their hashed features; the word lists ([`Lexicon`]).
//! - [`model`]: the perceptron, its decoding, its file format, its training and calibration.
//! - [`training`]: the training and held-out sets (`learnpulse pii train` rebuilds the model).

pub mod features;
pub mod model;
pub mod training;

use std::sync::OnceLock;

pub use features::{Lexicon, Sentence};
pub use model::Model;

use crate::Candidate;

pub(crate) static CENSUS_FIRST: &str = include_str!("../../data/first_names.txt");
pub(crate) static CENSUS_LAST: &str = include_str!("../../data/last_names.txt");
static WORLD_FIRST: &str = include_str!("../../data/world_first_names.txt");
static WORLD_LAST: &str = include_str!("../../data/world_last_names.txt");
static ENGLISH: &str = include_str!("../../data/english_words.txt");
static PLACES: &str = include_str!("../../data/places.txt");
static MODEL: &[u8] = include_bytes!("../../data/tagger.model");

/// The shipped word lists, built once.
pub fn lexicon() -> &'static Lexicon {
    static CELL: OnceLock<Lexicon> = OnceLock::new();
    CELL.get_or_init(|| Lexicon::new(|_| false))
}

static ACTIVE: OnceLock<Model> = OnceLock::new();

/// The model every scan uses: the shipped one, read once, unless [`install`] came first.
pub fn model() -> &'static Model {
    ACTIVE.get_or_init(|| Model::from_bytes(MODEL).expect("the shipped tagger model is valid"))
}

/// Makes `model` the one every scan of this process uses, in place of the shipped one (to
/// evaluate a freshly trained model before shipping it). Refused once a scan has run.
pub fn install(model: Model) -> Result<(), String> {
    ACTIVE
        .set(model)
        .map_err(|_| "a tagger model is already in use".to_owned())
}

/// The recogniser: PERSON and LOCATION spans of `text` by the shipped model.
pub fn find(text: &str, out: &mut Vec<Candidate>) {
    find_with(model(), lexicon(), text, out)
}

/// PERSON and LOCATION spans of `text` by `model`, scored by the model's calibration: a score is
/// the share of spans with that score that were right on data the model was not trained on.
pub fn find_with(model: &Model, lexicon: &Lexicon, text: &str, out: &mut Vec<Candidate>) {
    let sentence = Sentence::new(text, lexicon);
    if sentence.is_empty() {
        return;
    }
    let mut decisions = Vec::with_capacity(sentence.len());
    model.tag(&sentence, &mut decisions);
    for (i, mut j, kind, margin) in spans(&decisions) {
        // A surname right after a first name belongs to it, whatever the model made of it (the
        // surname is tagged `O`, so no span of its own starts there).
        while kind == "PERSON"
            && j + 1 < decisions.len()
            && decisions[j + 1].tag == model::O
            && &text[sentence.words[j].end..sentence.words[j + 1].start] == " "
            && sentence.is_capitalised_surname(j + 1)
        {
            j += 1;
        }
        if (i..=j).all(|k| sentence.is_plain_word(k))
            || (kind == "LOCATION" && (i..=j).all(|k| sentence.is_lower_unlisted_place(k)))
        {
            continue;
        }
        let calibration = model.calibration[usize::from(kind == "LOCATION")];
        // Two people are never written one straight after the other with only a space between:
        // "Thelma" "Mitchell" tagged as two is one person.
        if let Some(last) = out.last_mut()
            && last.kind == kind
            && kind == "PERSON"
            && &text[last.end..sentence.words[i].start] == " "
        {
            last.end = sentence.words[j].end;
            last.score = last.score.min(calibration.probability(margin));
            continue;
        }
        out.push(Candidate {
            start: sentence.words[i].start,
            end: sentence.words[j].end,
            kind,
            score: calibration.probability(margin),
        });
    }
}

/// Runs of tags into spans: `(first word, last word, type, smallest margin)`. A `B-` starts a
/// span, the `I-` of the same type after it extends it.
pub(crate) fn spans(
    decisions: &[model::Decision],
) -> impl Iterator<Item = (usize, usize, &'static str, f32)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < decisions.len() {
            let Some(kind) = model::kind_of(decisions[i].tag) else {
                i += 1;
                continue;
            };
            let (start, inside) = (i, decisions[i].tag + 1);
            let mut margin = decisions[i].margin;
            while i + 1 < decisions.len() && decisions[i + 1].tag == inside {
                i += 1;
                margin = margin.min(decisions[i].margin);
            }
            i += 1;
            return Some((start, i - 1, kind, margin));
        }
        None
    })
}
