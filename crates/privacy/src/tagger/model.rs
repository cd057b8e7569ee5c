//! The model: an averaged perceptron over hashed features, decoding left to right (each word's
//! tag sees the two tags before it), as in Collins (2002). Small, fast, and trained in seconds.

use super::features::{BUCKETS, Sentence};

/// The tags, BIO-encoded.
pub const O: u8 = 0;
pub const B_PERSON: u8 = 1;
pub const I_PERSON: u8 = 2;
pub const B_LOCATION: u8 = 3;
pub const I_LOCATION: u8 = 4;
pub const TAGS: usize = 5;
/// The tag "before" the first word.
const START: u8 = 5;

const MAGIC: &[u8; 8] = b"LPTAG\x00\x00\x01";

/// What a span of tags stands for.
pub fn kind_of(tag: u8) -> Option<&'static str> {
    match tag {
        B_PERSON | I_PERSON => Some("PERSON"),
        B_LOCATION | I_LOCATION => Some("LOCATION"),
        _ => None,
    }
}

/// Logistic calibration of a span's margin into a probability, per type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    pub slope: f32,
    pub offset: f32,
}

impl Calibration {
    pub fn probability(&self, margin: f32) -> f64 {
        1.0 / (1.0 + (-(self.slope * margin + self.offset) as f64).exp())
    }
}

/// The served model. Of the [`BUCKETS`] feature buckets only a few percent carry weights (about
/// 31,000 of 1,048,576 in the shipped model), so they are kept in a small open-addressing table of
/// 16-byte slots (bucket, five 16-bit weights) rather than in a dense array: a dense one is 20 MB,
/// far beyond the caches, and at 25 lookups per word the misses were most of the tagger's time
/// inside the server. The table is a few hundred kilobytes and mostly stays cached.
pub struct Model {
    slots: Vec<Slot>,
    /// `slots.len() - 1` (a power of two minus one).
    mask: usize,
    /// What one unit of a quantised weight is worth.
    scale: f32,
    /// PERSON, LOCATION.
    pub calibration: [Calibration; 2],
}

/// One bucket's weights. `bucket == EMPTY` marks a free slot.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Slot {
    bucket: u32,
    weights: [i16; TAGS],
}

const EMPTY: u32 = u32::MAX;

/// Where bucket `b` starts probing (a multiplicative hash: buckets are hashes already, but their
/// low bits are not spread well enough for a small table).
fn home(b: u32, mask: usize) -> usize {
    (b.wrapping_mul(0x9E37_79B1) >> 7) as usize & mask
}

/// One word's decision: its tag and the margin of that tag over `O` (how sure the model is).
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub tag: u8,
    pub margin: f32,
}

/// Scores of every tag for one word's features, from a dense `BUCKETS x TAGS` table (training).
fn dense_scores(weights: &[f32], features: &[u32]) -> [f32; TAGS] {
    let mut s = [0f32; TAGS];
    for &f in features {
        let row = &weights[f as usize * TAGS..f as usize * TAGS + TAGS];
        for t in 0..TAGS {
            s[t] += row[t];
        }
    }
    s
}

impl Model {
    /// A model of quantised rows `(bucket, weights)`, each weight worth `scale`.
    fn from_rows(scale: f32, rows: Vec<(u32, [i16; TAGS])>) -> Model {
        // At most half full, so that a bucket that is absent (most features of a new word) is
        // found absent after a probe or two.
        let size = (rows.len() * 2).next_power_of_two().max(16);
        let mask = size - 1;
        let mut slots = vec![
            Slot {
                bucket: EMPTY,
                weights: [0; TAGS],
            };
            size
        ];
        for (bucket, weights) in rows {
            let mut at = home(bucket, mask);
            while slots[at].bucket != EMPTY && slots[at].bucket != bucket {
                at = (at + 1) & mask;
            }
            slots[at] = Slot { bucket, weights };
        }
        Model {
            slots,
            mask,
            scale,
            calibration: [Calibration {
                slope: 1.0,
                offset: 0.0,
            }; 2],
        }
    }

    /// A dense `BUCKETS x TAGS` table quantised to 16 bits: what is trained becomes what ships.
    fn from_dense(weights: &[f32]) -> Model {
        let max = weights.iter().fold(0f32, |m, w| m.max(w.abs()));
        let scale = if max == 0.0 { 1.0 } else { max / 32_767.0 };
        let rows = weights
            .chunks(TAGS)
            .enumerate()
            .filter_map(|(bucket, row)| {
                let q: [i16; TAGS] = std::array::from_fn(|t| (row[t] / scale).round() as i16);
                q.iter().any(|&v| v != 0).then_some((bucket as u32, q))
            })
            .collect();
        Model::from_rows(scale, rows)
    }

    /// The weights of `bucket`, if it has any.
    fn row(&self, bucket: u32) -> Option<&[i16; TAGS]> {
        let mut at = home(bucket, self.mask);
        loop {
            let slot = &self.slots[at];
            if slot.bucket == bucket {
                return Some(&slot.weights);
            }
            if slot.bucket == EMPTY {
                return None;
            }
            at = (at + 1) & self.mask;
        }
    }

    fn scores(&self, features: &[u32]) -> [f32; TAGS] {
        // Integer sums are exact; one multiplication by the scale at the end.
        let mut s = [0i32; TAGS];
        for &f in features {
            if let Some(row) = self.row(f) {
                for t in 0..TAGS {
                    s[t] += i32::from(row[t]);
                }
            }
        }
        s.map(|v| v as f32 * self.scale)
    }

    /// Tags every word of the sentence. An `I-` tag only follows its own `B-` or `I-`; where the
    /// best tag breaks that rule, the `B-` of the same type is taken.
    pub fn tag(&self, sentence: &Sentence, out: &mut Vec<Decision>) {
        out.clear();
        let mut features = Vec::with_capacity(32);
        let (mut prev, mut prev2) = (START, START);
        for i in 0..sentence.len() {
            sentence.features(i, prev, prev2, &mut features);
            let s = self.scores(&features);
            let mut best = O;
            for t in 1..TAGS as u8 {
                if allowed(prev, t) && s[t as usize] > s[best as usize] {
                    best = t;
                }
            }
            out.push(Decision {
                tag: best,
                margin: s[best as usize] - s[O as usize],
            });
            (prev2, prev) = (prev, best);
        }
    }

    /// Reads a model written by [`Model::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, String> {
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or("not a learnpulse tagger model (bad magic)")?;
        let mut reader = Reader(rest);
        let scale = reader.f32()?;
        let mut calibration = [Calibration {
            slope: 1.0,
            offset: 0.0,
        }; 2];
        for c in &mut calibration {
            *c = Calibration {
                slope: reader.f32()?,
                offset: reader.f32()?,
            };
        }
        let count = reader.u32()? as usize;
        let mut rows = Vec::with_capacity(count.min(BUCKETS));
        for _ in 0..count {
            let bucket = reader.u32()?;
            if bucket as usize >= BUCKETS {
                return Err(format!("bucket {bucket} out of range"));
            }
            let mut weights = [0i16; TAGS];
            for w in &mut weights {
                *w = reader.i16()?;
            }
            rows.push((bucket, weights));
        }
        let mut model = Model::from_rows(scale, rows);
        model.calibration = calibration;
        Ok(model)
    }

    /// The model as bytes: its rows (the non-zero ones), in bucket order, weights in 16 bits.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend(self.scale.to_le_bytes());
        for c in &self.calibration {
            out.extend(c.slope.to_le_bytes());
            out.extend(c.offset.to_le_bytes());
        }
        let mut rows: Vec<&Slot> = self.slots.iter().filter(|s| s.bucket != EMPTY).collect();
        rows.sort_by_key(|s| s.bucket);
        out.extend((rows.len() as u32).to_le_bytes());
        for slot in rows {
            out.extend(slot.bucket.to_le_bytes());
            for v in slot.weights {
                out.extend(v.to_le_bytes());
            }
        }
        out
    }
}

fn allowed(prev: u8, tag: u8) -> bool {
    match tag {
        I_PERSON => matches!(prev, B_PERSON | I_PERSON),
        I_LOCATION => matches!(prev, B_LOCATION | I_LOCATION),
        _ => true,
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        if self.0.len() < N {
            return Err("model file is truncated".into());
        }
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        Ok(head.try_into().expect("split at N"))
    }
    fn u32(&mut self) -> Result<u32, String> {
        self.take().map(u32::from_le_bytes)
    }
    fn f32(&mut self) -> Result<f32, String> {
        self.take().map(f32::from_le_bytes)
    }
    fn i16(&mut self) -> Result<i16, String> {
        self.take().map(i16::from_le_bytes)
    }
}

/// Trains an averaged perceptron: for each word, predict with the current weights (the history is
/// the model's own earlier choices, as at run time); on a mistake, move the weights of its
/// features towards the right tag and away from the chosen one. The final weights are the average
/// over every step, which is what keeps a perceptron from overfitting the last examples seen.
pub struct Trainer {
    /// The current (not averaged) weights, `BUCKETS x TAGS`.
    weights: Vec<f32>,
    /// Sum of each weight's value over the steps before its last change.
    totals: Vec<f32>,
    /// The step of each weight's last change.
    stamps: Vec<u32>,
    step: u32,
}

impl Default for Trainer {
    fn default() -> Self {
        Trainer {
            weights: vec![0.0; BUCKETS * TAGS],
            totals: vec![0.0; BUCKETS * TAGS],
            stamps: vec![0; BUCKETS * TAGS],
            step: 0,
        }
    }
}

impl Trainer {
    /// One pass over one sentence with its gold tags; returns the number of words it got wrong.
    pub fn learn(&mut self, sentence: &Sentence, gold: &[u8]) -> usize {
        let mut features = Vec::with_capacity(32);
        let (mut prev, mut prev2) = (START, START);
        let mut wrong = 0;
        for (i, &gold) in gold.iter().enumerate().take(sentence.len()) {
            self.step += 1;
            sentence.features(i, prev, prev2, &mut features);
            let s = dense_scores(&self.weights, &features);
            let mut best = O;
            for t in 1..TAGS as u8 {
                if allowed(prev, t) && s[t as usize] > s[best as usize] {
                    best = t;
                }
            }
            if best != gold {
                wrong += 1;
                for &f in &features {
                    self.update(f as usize * TAGS + gold as usize, 1.0);
                    self.update(f as usize * TAGS + best as usize, -1.0);
                }
            }
            (prev2, prev) = (prev, best);
        }
        wrong
    }

    fn update(&mut self, at: usize, by: f32) {
        let w = &mut self.weights[at];
        self.totals[at] += (self.step - self.stamps[at]) as f32 * *w;
        self.stamps[at] = self.step;
        *w += by;
    }

    /// The averaged model, quantised as it ships.
    pub fn finish(mut self) -> Model {
        for at in 0..self.weights.len() {
            let total = self.totals[at] + (self.step - self.stamps[at]) as f32 * self.weights[at];
            self.weights[at] = total / self.step.max(1) as f32;
        }
        Model::from_dense(&self.weights)
    }
}

/// Fits `p = 1 / (1 + exp(-(a m + b)))` to (margin, right?) pairs by Newton's method on the
/// log-likelihood, with Platt's (1999) smoothed targets and a weak prior on the slope: on data
/// the model tags almost perfectly the plain fit runs off to an infinite slope.
pub fn fit_calibration(points: &[(f32, bool)]) -> Calibration {
    let positives = points.iter().filter(|p| p.1).count() as f64;
    let negatives = points.len() as f64 - positives;
    let (hi, lo) = (
        (positives + 1.0) / (positives + 2.0),
        1.0 / (negatives + 2.0),
    );
    let (mut a, mut b) = (1.0f64, 0.0f64);
    const PRIOR: f64 = 1.0;
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) =
            (PRIOR * (a - 1.0), 0.0, PRIOR, 0.0, 1e-6);
        for &(m, y) in points {
            let m = f64::from(m);
            let p = 1.0 / (1.0 + (-(a * m + b)).exp());
            let e = p - if y { hi } else { lo };
            ga += e * m;
            gb += e;
            let w = (p * (1.0 - p)).max(1e-9);
            haa += w * m * m;
            hab += w * m;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-12 {
            break;
        }
        let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
        // Damped: never more than one unit a step.
        let scale = 1.0f64.min(1.0 / (da.abs() + db.abs()).max(1e-12));
        a -= da * scale;
        b -= db * scale;
        if da.abs() + db.abs() < 1e-9 {
            break;
        }
    }
    Calibration {
        slope: a as f32,
        offset: b as f32,
    }
}
