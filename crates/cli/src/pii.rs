//! `learnpulse pii ...`: find personal data in text, and measure how well it is found.

use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};

use learnpulse_privacy::eval::{self, Counts, Labelled};

#[derive(Subcommand)]
pub enum PiiCommand {
    /// Find PII: JSON lines {"id": ..., "text": ...} in, {"id": ..., "spans": [{"start", "end",
    /// "type", "score"}]} out; offsets in Unicode code points, end exclusive.
    Scan {
        /// Input file (default: standard input).
        #[arg(long)]
        input: Option<PathBuf>,
        /// Output file (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
        /// A roster: one learner or staff name per line, found in any case and context.
        #[arg(long)]
        roster: Option<PathBuf>,
        /// Write {"id", "text"} with every finding replaced by a consistent placeholder
        /// (`<PERSON_1>`, `<EMAIL_1>`) instead of the spans.
        #[arg(long)]
        redact: bool,
        /// A tagger model written by `pii train`, used in place of the shipped one.
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Per-type precision, recall and F1 on labelled sets (presidio-research's JSON format),
    /// with overlap matching; the precision of findings per score band (calibration); and the
    /// scanning throughput.
    Eval {
        /// Labelled sets: JSON lists of {"full_text", "spans": [{"entity_type", "start_position",
        /// "end_position"}]}.
        #[arg(long, required = true, num_args = 1..)]
        data: Vec<PathBuf>,
        /// Findings below this score are not counted (Presidio's reference used 0.4).
        #[arg(long, default_value_t = 0.4)]
        threshold: f64,
        /// A tagger model written by `pii train`, used in place of the shipped one.
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Rebuild the PERSON/LOCATION tagger shipped in the binary: train on the project's sentence
    /// templates and four in five of the labelled texts, print precision/recall/F1 on the held-out
    /// sets (names in no list and no training text), and write the model. Deterministic: the same
    /// data and seed give the same bytes.
    Train {
        /// Labelled sets (presidio-research's JSON format).
        #[arg(long, required = true, num_args = 1..)]
        data: Vec<PathBuf>,
        /// Where to write the model (the shipped one is crates/privacy/data/tagger.model).
        #[arg(long)]
        out: PathBuf,
        /// Also write each held-out set here as JSON, for `learnpulse pii eval --data`.
        #[arg(long)]
        heldout_dir: Option<PathBuf>,
        #[arg(long, default_value_t = 8)]
        epochs: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Findings below this score are not counted in the held-out figures.
        #[arg(long, default_value_t = 0.4)]
        threshold: f64,
    },
}

/// Makes the model at `path` (written by `pii train`) the one this process scans with.
fn install_model(path: &std::path::Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let model = learnpulse_privacy::tagger::Model::from_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    learnpulse_privacy::tagger::install(model).map_err(anyhow::Error::msg)
}

fn read_labelled(path: &PathBuf) -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn train(
    data: &[PathBuf],
    out: &PathBuf,
    heldout_dir: Option<&PathBuf>,
    epochs: usize,
    seed: u64,
    threshold: f64,
) -> anyhow::Result<()> {
    use learnpulse_privacy::tagger::training::{self, Example};
    let mut labelled = Vec::new();
    for path in data {
        labelled.extend(read_labelled(path)?.iter().map(Example::from_presidio));
    }
    let sets = training::sets(labelled, seed);
    eprintln!(
        "training on {} texts ({} for calibration), {} epochs",
        sets.train.len(),
        sets.dev.len(),
        epochs
    );
    let started = Instant::now();
    let model = training::train(&sets, epochs, seed, |epoch, wrong| {
        eprintln!("epoch {epoch}/{epochs}: {wrong} words mistagged")
    });
    eprintln!("trained in {:.1} s", started.elapsed().as_secs_f64());
    let mut report = serde_json::Map::new();
    for (name, examples) in &sets.heldout {
        let counts = training::evaluate(&model, examples, threshold);
        report.insert(
            (*name).to_owned(),
            json!({"texts": examples.len(), "types": counts_table(&counts)}),
        );
        if let Some(dir) = heldout_dir {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(format!("{name}.json"));
            let items: Vec<Value> = examples.iter().map(Example::to_presidio).collect();
            std::fs::write(&path, serde_json::to_vec(&items)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let bytes = model.to_bytes();
    std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    report.insert("model".into(), json!({"path": out, "bytes": bytes.len(),
        "calibration": model.calibration.iter().map(|c| json!({"slope": c.slope, "offset": c.offset})).collect::<Vec<_>>()}));
    println!("{}", serde_json::to_string_pretty(&Value::Object(report))?);
    Ok(())
}

fn counts_table(counts: &BTreeMap<String, Counts>) -> Vec<Value> {
    counts
        .iter()
        .map(|(kind, c)| {
            json!({"type": kind, "precision": c.precision(), "recall": c.recall(), "f1": c.f1(),
                   "true_positives": c.true_positives, "false_positives": c.false_positives,
                   "false_negatives": c.false_negatives})
        })
        .collect()
}

pub fn run(command: PiiCommand) -> anyhow::Result<()> {
    match command {
        PiiCommand::Scan {
            input,
            output,
            roster,
            redact,
            model,
        } => {
            if let Some(path) = &model {
                install_model(path)?;
            }
            let roster = match &roster {
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?;
                    learnpulse_privacy::roster::Roster::new(
                        text.lines().map(str::trim).filter(|l| !l.is_empty()),
                    )
                }
                None => learnpulse_privacy::roster::Roster::default(),
            };
            let reader: Box<dyn BufRead> = match &input {
                Some(p) => Box::new(std::io::BufReader::new(
                    std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?,
                )),
                None => Box::new(std::io::stdin().lock()),
            };
            let writer: Box<dyn Write> = match &output {
                Some(p) => Box::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                ),
                None => Box::new(std::io::stdout().lock()),
            };
            let mut out = BufWriter::new(writer);
            for (n, line) in reader.lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                let record: Value = serde_json::from_str(&line)
                    .with_context(|| format!("line {}: not a JSON object", n + 1))?;
                let text = record
                    .get("text")
                    .and_then(Value::as_str)
                    .with_context(|| format!("line {}: no \"text\" string", n + 1))?;
                let spans = learnpulse_privacy::roster::scan_with(text, &roster);
                let id = record.get("id").cloned().unwrap_or(Value::Null);
                let line = if redact {
                    json!({"id": id, "text": learnpulse_privacy::redact::redact(text, &spans)})
                } else {
                    json!({"id": id, "spans": spans})
                };
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            Ok(())
        }
        PiiCommand::Train {
            data,
            out,
            heldout_dir,
            epochs,
            seed,
            threshold,
        } => train(&data, &out, heldout_dir.as_ref(), epochs, seed, threshold),
        PiiCommand::Eval {
            data,
            threshold,
            model,
        } => {
            if let Some(path) = &model {
                install_model(path)?;
            }
            let mut texts: Vec<(String, Vec<Labelled>)> = Vec::new();
            for path in &data {
                for item in read_labelled(path)? {
                    let full = item["full_text"].as_str().unwrap_or_default().to_owned();
                    let labels = item["spans"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|s| Labelled {
                            start: s["start_position"].as_u64().unwrap_or(0) as usize,
                            end: s["end_position"].as_u64().unwrap_or(0) as usize,
                            kind: s["entity_type"].as_str().unwrap_or_default().to_owned(),
                        })
                        .collect();
                    texts.push((full, labels));
                }
            }
            let started = Instant::now();
            let findings: Vec<Vec<learnpulse_privacy::Span>> = texts
                .iter()
                .map(|(t, _)| learnpulse_privacy::scan(t))
                .collect();
            let seconds = started.elapsed().as_secs_f64();
            let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
            let mut calibration = eval::Calibration::default();
            for ((_, labels), found) in texts.iter().zip(&findings) {
                calibration.add(labels, found);
                let kept: Vec<_> = found
                    .iter()
                    .filter(|s| s.score >= threshold)
                    .cloned()
                    .collect();
                eval::add(&mut counts, labels, &kept);
            }
            let table = counts_table(&counts);
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "texts": texts.len(), "threshold": threshold,
                    "texts_per_second_one_core": texts.len() as f64 / seconds, "types": table,
                    "calibration": calibration.table().iter().map(|(from, n, right)| json!({
                        "score": format!("{from:.1}-{:.1}", from + 0.1), "findings": n, "precision": right,
                    })).collect::<Vec<_>>(),
                }))?
            );
            Ok(())
        }
    }
}
