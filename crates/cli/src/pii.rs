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
    },
}

pub fn run(command: PiiCommand) -> anyhow::Result<()> {
    match command {
        PiiCommand::Scan {
            input,
            output,
            roster,
            redact,
        } => {
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
        PiiCommand::Eval { data, threshold } => {
            let mut texts: Vec<(String, Vec<Labelled>)> = Vec::new();
            for path in &data {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let items: Vec<Value> = serde_json::from_str(&text)
                    .with_context(|| format!("parsing {}", path.display()))?;
                for item in items {
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
            let table: Vec<Value> = counts
                .iter()
                .map(|(kind, c)| {
                    json!({"type": kind, "precision": c.precision(), "recall": c.recall(), "f1": c.f1(),
                           "true_positives": c.true_positives, "false_positives": c.false_positives,
                           "false_negatives": c.false_negatives})
                })
                .collect();
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
