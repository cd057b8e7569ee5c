//! Targets: the checked-in floors and ceilings the measurements are held to
//! (`bench/targets.toml`), each with the command that measures it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::record::Record;

/// A floor (at least) or a ceiling (at most).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    AtLeast,
    AtMost,
}

impl Bound {
    /// `≥` or `≤`, as tables and charts show it.
    pub fn symbol(self) -> &'static str {
        match self {
            Bound::AtLeast => "≥",
            Bound::AtMost => "≤",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// `suite/metric`, as the records name it.
    pub metric: String,
    pub bound: Bound,
    pub value: f64,
    pub unit: String,
    /// Why this number.
    pub why: String,
    /// The command that measures it.
    pub command: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetsFile {
    target: Vec<Target>,
}

pub fn load(path: &Path) -> anyhow::Result<Vec<Target>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let file: TargetsFile =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(file.target)
}

/// A target against the run's measurement of it.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub metric: String,
    pub bound: Bound,
    pub target: f64,
    pub unit: String,
    /// The median measured; `None` when the run did not measure it.
    pub measured: Option<f64>,
    pub met: Option<bool>,
}

/// Checks every target that `records` measured (the others are `met: None`).
pub fn check(targets: &[Target], records: &[Record]) -> Vec<Verdict> {
    targets
        .iter()
        .map(|t| {
            let measured = records
                .iter()
                .rev()
                .find(|r| r.key() == t.metric)
                .map(|r| r.median);
            Verdict {
                metric: t.metric.clone(),
                bound: t.bound,
                target: t.value,
                unit: t.unit.clone(),
                measured,
                met: measured.map(|m| match t.bound {
                    Bound::AtLeast => m >= t.value,
                    Bound::AtMost => m <= t.value,
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Better, Machine, Measurement};

    #[test]
    fn the_checked_in_targets_parse_and_name_measured_metrics() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/targets.toml");
        let targets = load(&path).unwrap();
        assert!(targets.len() >= 12, "{} targets", targets.len());
        let known = crate::suites::METRICS;
        for t in &targets {
            assert!(
                known.contains(&t.metric.as_str()),
                "{} is measured by no suite",
                t.metric
            );
        }
    }

    #[test]
    fn floors_and_ceilings() {
        let t = |metric: &str, bound, value| Target {
            metric: metric.into(),
            bound,
            value,
            unit: String::new(),
            why: String::new(),
            command: String::new(),
        };
        let mut m = Measurement::new("ingest", "rate", "1/s", Better::Higher);
        m.samples = vec![100.0];
        let records = [Record::of(&m, "r", "c", &Machine::this())];
        let v = check(
            &[
                t("ingest/rate", Bound::AtLeast, 90.0),
                t("ingest/rate", Bound::AtMost, 90.0),
                t("ingest/other", Bound::AtLeast, 1.0),
            ],
            &records,
        );
        assert_eq!(
            v.iter().map(|v| v.met).collect::<Vec<_>>(),
            [Some(true), Some(false), None]
        );
    }
}
