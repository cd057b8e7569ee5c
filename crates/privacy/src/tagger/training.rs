//! The tagger's training and held-out sets, and its training: pure, deterministic code (a seeded
//! generator, no clock, no files), so that `learnpulse pii train` rebuilds the shipped model
//! byte for byte.
//!
//! Training text comes from two places: the project's own sentence templates
//! (`data/person_templates.txt`), filled with names and places from the shipped lists, and the
//! labelled sets' texts (presidio-research, MIT). Held out of all training, by hash:
//! - one template in five and one labelled text in five;
//! - the names of `data/heldout_*_names.txt`, which no shipped list holds either.
//!
//! To learn names that no list holds, training hides two names in five from the word lists
//! (the model sees them only as words in context), while the shipped model looks all of them up.

use std::collections::BTreeMap;

use super::features::{Lexicon, Sentence};
use super::model::{self, Model, Trainer};
use crate::eval::{self, Counts, Labelled};

static TEMPLATES: &str = include_str!("../../data/person_templates.txt");
static HELDOUT_FIRST: &str = include_str!("../../data/heldout_first_names.txt");
static HELDOUT_LAST: &str = include_str!("../../data/heldout_last_names.txt");

/// A text and its PERSON and LOCATION spans, in byte offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub spans: Vec<(usize, usize, &'static str)>,
}

impl Example {
    /// One item of a labelled set in presidio-research's format (code-point offsets). Their
    /// `GPE` (cities, countries) is our `LOCATION`; other types are not the tagger's.
    pub fn from_presidio(item: &serde_json::Value) -> Example {
        let text = item["full_text"].as_str().unwrap_or_default().to_owned();
        let byte_at: Vec<usize> = text
            .char_indices()
            .map(|(b, _)| b)
            .chain([text.len()])
            .collect();
        let spans = item["spans"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let kind = match s["entity_type"].as_str()? {
                    "PERSON" => "PERSON",
                    "GPE" | "LOCATION" => "LOCATION",
                    _ => return None,
                };
                let start = *byte_at.get(s["start_position"].as_u64()? as usize)?;
                let end = *byte_at.get(s["end_position"].as_u64()? as usize)?;
                Some((start, end, kind))
            })
            .collect();
        Example { text, spans }
    }

    /// Gold tags of the sentence's words: the first word overlapping a span is `B-`, the rest `I-`.
    fn tags(&self, sentence: &Sentence) -> Vec<u8> {
        let mut tags = vec![model::O; sentence.len()];
        for &(start, end, kind) in &self.spans {
            let begin = if kind == "PERSON" {
                model::B_PERSON
            } else {
                model::B_LOCATION
            };
            let mut first = true;
            for (i, w) in sentence.words.iter().enumerate() {
                if w.start < end && start < w.end {
                    tags[i] = if first { begin } else { begin + 1 };
                    first = false;
                }
            }
        }
        tags
    }

    /// Presidio-research's format (code points), for `learnpulse pii eval`.
    pub fn to_presidio(&self) -> serde_json::Value {
        let chars = |b: usize| self.text[..b].chars().count();
        serde_json::json!({
            "full_text": self.text,
            "spans": self.spans.iter().map(|&(s, e, kind)| serde_json::json!({
                "entity_type": kind, "entity_value": &self.text[s..e],
                "start_position": chars(s), "end_position": chars(e),
            })).collect::<Vec<_>>(),
        })
    }
}

/// SplitMix64: a small, seeded, portable generator (the same model on every machine).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len())]
    }
}

/// A stable hash of a string (FNV-1a), for the held-out splits.
pub fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Whether the training lexicon hides this name (two in five).
fn masked_in_training(name: &str) -> bool {
    stable_hash(name) % 5 < 2
}

/// Names and places to fill templates with.
pub struct Pools {
    pub first: Vec<&'static str>,
    pub last: Vec<&'static str>,
    pub places: Vec<&'static str>,
}

impl Pools {
    /// The shipped lists: what training fills templates with.
    pub fn training() -> Pools {
        let names = |texts: &[&'static str]| -> Vec<&'static str> {
            texts
                .iter()
                .flat_map(|t| t.lines())
                .filter(|l| l.chars().count() > 1 && !crate::recognizers::person::is_common(l))
                .collect()
        };
        Pools {
            first: names(&[super::CENSUS_FIRST, super::WORLD_FIRST]),
            last: names(&[super::CENSUS_LAST, super::WORLD_LAST]),
            places: places(),
        }
    }

    /// The held-out names, in no list and in no training text.
    pub fn heldout() -> Pools {
        let names = |t: &'static str| t.lines().filter(|l| !l.is_empty()).collect();
        Pools {
            first: names(HELDOUT_FIRST),
            last: names(HELDOUT_LAST),
            places: places(),
        }
    }
}

fn places() -> Vec<&'static str> {
    super::PLACES.lines().filter(|l| !l.is_empty()).collect()
}

/// "jean-luc" → "Jean-Luc", "o'brien" → "O'Brien".
fn capitalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut up = true;
    for c in name.chars() {
        if up {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        up = matches!(c, '-' | '\'' | ' ');
    }
    out
}

/// A person in one of the shapes people write: first; first last; first I. last; first last-last.
fn person(rng: &mut Rng, pools: &Pools) -> String {
    let first = capitalise(rng.pick(&pools.first));
    let last = capitalise(rng.pick(&pools.last));
    match rng.below(20) {
        0..=7 => first,
        8..=16 => format!("{first} {last}"),
        17 => format!("{first} {}. {last}", (b'A' + rng.below(26) as u8) as char),
        18 => format!("{first} {last}-{}", capitalise(rng.pick(&pools.last))),
        _ => format!("{first} {} {last}", capitalise(rng.pick(&pools.first))),
    }
}

/// One template line filled in.
pub fn fill(template: &str, rng: &mut Rng, pools: &Pools) -> Example {
    let mut text = String::new();
    let mut spans: Vec<(usize, usize, &'static str)> = Vec::new();
    let mut rest = template;
    // Chat-style text: everything in lower case, now and then.
    let lower = rng.chance(0.08);
    let shout = !lower && rng.chance(0.03);
    while let Some(open) = rest.find('{') {
        text.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let slot = &rest[open + 1..open + close];
        rest = &rest[open + close + 1..];
        let (value, kind) = match slot {
            "F" => (capitalise(rng.pick(&pools.first)), "PERSON"),
            "L" => (capitalise(rng.pick(&pools.last)), "PERSON"),
            "f" => (rng.pick(&pools.first).to_owned(), "PERSON"),
            "l" => (rng.pick(&pools.last).to_owned(), "PERSON"),
            "P" => (person(rng, pools), "PERSON"),
            "C" | "N" => (rng.pick(&pools.places).to_owned(), "LOCATION"),
            other => (format!("{{{other}}}"), ""),
        };
        let value = if shout { value.to_uppercase() } else { value };
        let start = text.len();
        text.push_str(&value);
        if !kind.is_empty() {
            // "{F} {L}" is one person, not two.
            match spans.last_mut() {
                Some(last) if last.2 == kind && &text[last.1..start] == " " => last.1 = text.len(),
                _ => spans.push((start, text.len(), kind)),
            }
        }
    }
    text.push_str(rest);
    if lower {
        // Lower-casing keeps byte offsets for ASCII; elsewhere rebuild the example.
        let lowered = text.to_lowercase();
        if lowered.len() == text.len() {
            text = lowered;
        }
    }
    Example { text, spans }
}

fn templates() -> impl Iterator<Item = &'static str> {
    TEMPLATES
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
}

fn heldout(s: &str) -> bool {
    stable_hash(s).is_multiple_of(5)
}

/// Joins one to three filled templates into one text, as a learner's post runs on.
fn texts_from(templates: &[&str], n: usize, rng: &mut Rng, pools: &Pools) -> Vec<Example> {
    (0..n)
        .map(|_| {
            let mut joined = Example {
                text: String::new(),
                spans: Vec::new(),
            };
            for k in 0..1 + rng.below(3) {
                let part = fill(templates[rng.below(templates.len())], rng, pools);
                if k > 0 {
                    joined
                        .text
                        .push_str(if rng.chance(0.3) { "\n" } else { " " });
                }
                let at = joined.text.len();
                joined.text.push_str(&part.text);
                joined
                    .spans
                    .extend(part.spans.iter().map(|&(s, e, t)| (s + at, e + at, t)));
            }
            joined
        })
        .collect()
}

/// A labelled text with each PERSON span replaced by a held-out name of the same shape (one word
/// or two, its case kept): the labelled sets' style, with names the model has never seen.
fn with_unseen_names(example: &Example, rng: &mut Rng, pools: &Pools) -> Example {
    let mut text = String::new();
    let mut spans = Vec::new();
    let mut at = 0;
    let mut sorted = example.spans.clone();
    sorted.sort_unstable();
    for &(s, e, kind) in &sorted {
        if s < at {
            continue;
        }
        text.push_str(&example.text[at..s]);
        let original = &example.text[s..e];
        let value = if kind == "PERSON" {
            let name = if original.contains(' ') {
                format!(
                    "{} {}",
                    capitalise(rng.pick(&pools.first)),
                    capitalise(rng.pick(&pools.last))
                )
            } else {
                capitalise(rng.pick(&pools.first))
            };
            if original.chars().all(|c| !c.is_uppercase()) {
                name.to_lowercase()
            } else if original.chars().all(|c| !c.is_lowercase()) {
                name.to_uppercase()
            } else {
                name
            }
        } else {
            original.to_owned()
        };
        spans.push((text.len(), text.len() + value.len(), kind));
        text.push_str(&value);
        at = e;
    }
    text.push_str(&example.text[at..]);
    Example { text, spans }
}

/// Everything `pii train` works on.
pub struct Sets {
    pub train: Vec<Example>,
    /// For calibration: one training-like text in ten, not trained on.
    pub dev: Vec<Example>,
    /// Named held-out sets, never trained on.
    pub heldout: Vec<(&'static str, Vec<Example>)>,
}

/// Builds the sets from the labelled texts; `seed` fixes every random choice.
pub fn sets(labelled: Vec<Example>, seed: u64) -> Sets {
    let mut rng = Rng::new(seed);
    let (train_pools, unseen) = (Pools::training(), Pools::heldout());
    let all: Vec<&str> = templates().collect();
    let train_templates: Vec<&str> = all.iter().copied().filter(|t| !heldout(t)).collect();
    let heldout_templates: Vec<&str> = all.iter().copied().filter(|t| heldout(t)).collect();
    let (heldout_labelled, train_labelled): (Vec<Example>, Vec<Example>) =
        labelled.into_iter().partition(|e| heldout(&e.text));
    let mut train = texts_from(&train_templates, 12_000, &mut rng, &train_pools);
    train.extend(train_labelled);
    let mut dev = Vec::new();
    let mut kept = Vec::new();
    for (i, e) in train.into_iter().enumerate() {
        if i % 10 == 9 {
            dev.push(e)
        } else {
            kept.push(e)
        }
    }
    let unseen_labelled = heldout_labelled
        .iter()
        .map(|e| with_unseen_names(e, &mut rng, &unseen))
        .collect();
    let unseen_templates = texts_from(&heldout_templates, 3_000, &mut rng, &unseen);
    Sets {
        train: kept,
        dev,
        heldout: vec![
            ("unseen_names_unseen_templates", unseen_templates),
            ("labelled_heldout_unseen_names", unseen_labelled),
            ("labelled_heldout", heldout_labelled),
        ],
    }
}

/// Trains the model on `sets.train` for `epochs` passes (shuffled by `seed`), then fits each
/// type's calibration on `sets.dev`. `progress` hears (epoch, words wrong in it).
pub fn train(
    sets: &Sets,
    epochs: usize,
    seed: u64,
    mut progress: impl FnMut(usize, usize),
) -> Model {
    let lexicon = Lexicon::new(masked_in_training);
    let prepared: Vec<(Sentence, Vec<u8>)> = sets
        .train
        .iter()
        .map(|e| {
            let s = Sentence::new(&e.text, &lexicon);
            let tags = e.tags(&s);
            (s, tags)
        })
        .collect();
    let mut order: Vec<usize> = (0..prepared.len()).collect();
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut trainer = Trainer::default();
    for epoch in 0..epochs {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let wrong = order
            .iter()
            .map(|&k| trainer.learn(&prepared[k].0, &prepared[k].1))
            .sum();
        progress(epoch + 1, wrong);
    }
    let mut model = trainer.finish();
    // Calibration on the dev texts, with the shipped lists (as at run time).
    let shipped = super::lexicon();
    for (k, kind) in ["PERSON", "LOCATION"].into_iter().enumerate() {
        let mut points = Vec::new();
        for e in &sets.dev {
            let sentence = Sentence::new(&e.text, shipped);
            let mut decisions = Vec::new();
            model.tag(&sentence, &mut decisions);
            for (i, j, _, margin) in super::spans(&decisions).filter(|s| s.2 == kind) {
                let (start, end) = (sentence.words[i].start, sentence.words[j].end);
                let right = e
                    .spans
                    .iter()
                    .any(|&(s, en, t)| t == kind && s < end && start < en);
                points.push((margin, right));
            }
        }
        model.calibration[k] = model::fit_calibration(&points);
    }
    model
}

/// PERSON and LOCATION precision, recall and F1 of `model` on `examples`, findings scored
/// `threshold` or more, overlap matching.
pub fn evaluate(model: &Model, examples: &[Example], threshold: f64) -> BTreeMap<String, Counts> {
    let mut counts = BTreeMap::new();
    for e in examples {
        let mut found = Vec::new();
        super::find_with(model, super::lexicon(), &e.text, &mut found);
        let findings: Vec<crate::Span> = found
            .into_iter()
            .filter(|c| c.score >= threshold)
            .map(|c| crate::Span {
                start: c.start,
                end: c.end,
                kind: c.kind.to_owned(),
                score: c.score,
            })
            .collect();
        let labels: Vec<Labelled> = e
            .spans
            .iter()
            .map(|&(start, end, kind)| Labelled {
                start,
                end,
                kind: kind.to_owned(),
            })
            .collect();
        eval::add(&mut counts, &labels, &findings);
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_with_spans_over_the_names() {
        let pools = Pools::training();
        let mut rng = Rng::new(7);
        for _ in 0..200 {
            let e = fill("Thanks {F} {L}, see you in {C}!", &mut rng, &pools);
            assert_eq!(e.spans.len(), 2, "{e:?}");
            assert_eq!(e.spans[0].2, "PERSON");
            assert!(e.text[e.spans[0].0..e.spans[0].1].contains(' '));
            assert_eq!(e.spans[1].2, "LOCATION");
        }
    }

    #[test]
    fn heldout_names_are_in_no_shipped_list() {
        let shipped = Lexicon::new(|_| false);
        let unseen = Pools::heldout();
        assert!(unseen.first.len() > 1_000);
        for n in unseen.first.iter().chain(&unseen.last) {
            assert!(
                !shipped.first.contains(n) && !shipped.last.contains(n),
                "{n}"
            );
        }
    }

    #[test]
    fn unseen_names_replace_the_labelled_ones_and_keep_their_case() {
        let e = Example {
            text: "hi ada lovelace, meet Alan".into(),
            spans: vec![(3, 15, "PERSON"), (22, 26, "PERSON")],
        };
        let swapped = with_unseen_names(&e, &mut Rng::new(1), &Pools::heldout());
        let names: Vec<&str> = swapped
            .spans
            .iter()
            .map(|&(s, en, _)| &swapped.text[s..en])
            .collect();
        assert!(names[0].contains(' ') && names[0] == names[0].to_lowercase());
        assert!(names[1].starts_with(char::is_uppercase));
        assert!(!swapped.text.contains("lovelace") && swapped.text.starts_with("hi "));
    }

    #[test]
    fn calibration_fits_a_logistic() {
        let points: Vec<(f32, bool)> = (0..1000)
            .map(|i| {
                let m = (i % 100) as f32 / 10.0 - 5.0;
                (
                    m,
                    (i * 7919 % 100) as f32 / 100.0 < 1.0 / (1.0 + (-m as f64).exp()) as f32,
                )
            })
            .collect();
        let c = model::fit_calibration(&points);
        assert!(
            (c.slope - 1.0).abs() < 0.35 && c.offset.abs() < 0.35,
            "{c:?}"
        );
    }
}
