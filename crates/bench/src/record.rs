//! Measurements and their records: what one metric measured in one run, kept as a JSON line
//! with the commit, the date and the machine, so that later runs can be compared with it.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

/// Several samples of one metric, taken in one run.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub suite: String,
    pub metric: String,
    pub unit: String,
    pub better: Better,
    pub samples: Vec<f64>,
    /// A curve measured along the way (x, y): throughput per million statements stored, say.
    pub curve: Vec<[f64; 2]>,
}

impl Measurement {
    pub fn new(suite: &str, metric: &str, unit: &str, better: Better) -> Self {
        Measurement {
            suite: suite.to_owned(),
            metric: metric.to_owned(),
            unit: unit.to_owned(),
            better,
            samples: Vec::new(),
            curve: Vec::new(),
        }
    }

    pub fn median(&self) -> f64 {
        median(&self.samples)
    }

    /// Half the range of the samples relative to their median (0.05: ±5 %).
    pub fn spread(&self) -> f64 {
        let (lo, hi) = self
            .samples
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                (lo.min(*x), hi.max(*x))
            });
        let m = self.median();
        if self.samples.len() < 2 || m == 0.0 {
            0.0
        } else {
            (hi - lo) / 2.0 / m.abs()
        }
    }
}

pub fn median(samples: &[f64]) -> f64 {
    let mut s: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Facts about the machine a record was taken on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub host: String,
    pub cores: usize,
    pub cpu: String,
    pub memory_gb: f64,
}

impl Machine {
    pub fn this() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_default();
        let memory_gb = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches(" kB").parse::<f64>().ok())
            })
            .map_or(0.0, |kb| (kb / 1024.0 / 1024.0 * 10.0).round() / 10.0);
        Machine {
            host: std::fs::read_to_string("/etc/hostname")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            memory_gb,
        }
    }
}

/// One metric of one run, as stored (one JSON line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The run it belongs to (its start, RFC 3339): records of one run share it.
    pub run: String,
    pub commit: String,
    pub suite: String,
    pub metric: String,
    pub unit: String,
    pub better: Better,
    pub median: f64,
    pub spread: f64,
    pub samples: Vec<f64>,
    /// [`Measurement::curve`], when the metric has one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curve: Vec<[f64; 2]>,
    pub machine: Machine,
}

impl Record {
    pub fn of(m: &Measurement, run: &str, commit: &str, machine: &Machine) -> Record {
        Record {
            run: run.to_owned(),
            commit: commit.to_owned(),
            suite: m.suite.clone(),
            metric: m.metric.clone(),
            unit: m.unit.clone(),
            better: m.better,
            median: m.median(),
            spread: m.spread(),
            samples: m.samples.clone(),
            curve: m.curve.clone(),
            machine: machine.clone(),
        }
    }

    /// `suite/metric`, how targets and charts name it.
    pub fn key(&self) -> String {
        format!("{}/{}", self.suite, self.metric)
    }
}

/// The commit of the working directory (`git rev-parse --short HEAD`), `+dirty` when it has
/// changes; "unknown" outside a checkout.
pub fn current_commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(commit) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit}+dirty")
            } else {
                commit
            }
        }
        None => "unknown".to_owned(),
    }
}

/// Now, RFC 3339.
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Appends records to a JSON-lines file.
pub fn append(path: &Path, records: &[Record]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    for r in records {
        // JSON has no NaN: a non-finite figure would be written as null and never read back.
        anyhow::ensure!(
            r.median.is_finite() && r.samples.iter().all(|x| x.is_finite()),
            "{}: a measurement that is not a number ({:?})",
            r.key(),
            r.samples
        );
        writeln!(file, "{}", serde_json::to_string(r)?)?;
    }
    Ok(())
}

/// Reads a JSON-lines file of records (missing file: none).
pub fn load(path: &Path) -> anyhow::Result<Vec<Record>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// The latest run's records in `records` (by run start).
pub fn latest_run(records: &[Record]) -> Vec<Record> {
    let Some(run) = records.iter().map(|r| r.run.as_str()).max() else {
        return Vec::new();
    };
    records.iter().filter(|r| r.run == run).cloned().collect()
}

/// One metric compared with its baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub key: String,
    pub unit: String,
    pub baseline: f64,
    pub current: f64,
    /// current / baseline.
    pub ratio: f64,
    /// The band within which a change is noise (relative).
    pub noise: f64,
    /// Worse than the baseline beyond the noise band.
    pub regressed: bool,
}

/// The smallest change called a regression: machines here vary a lot between runs.
pub const NOISE_FLOOR: f64 = 0.10;

/// Compares each metric of `current` with the same metric in `baseline`.
pub fn compare(baseline: &[Record], current: &[Record]) -> Vec<Comparison> {
    current
        .iter()
        .filter_map(|c| {
            let b = baseline.iter().rev().find(|b| b.key() == c.key())?;
            let ratio = c.median / b.median;
            let noise = NOISE_FLOOR.max(b.spread).max(c.spread);
            let regressed = match c.better {
                Better::Higher => ratio < 1.0 - noise,
                Better::Lower => ratio > 1.0 + noise,
            };
            Some(Comparison {
                key: c.key(),
                unit: c.unit.clone(),
                baseline: b.median,
                current: c.median,
                ratio,
                noise,
                regressed,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(metric: &str, better: Better, samples: &[f64]) -> Record {
        let mut m = Measurement::new("ingest", metric, "1/s", better);
        m.samples = samples.to_vec();
        Record::of(&m, "2026-12-06T00:00:00Z", "abc", &Machine::this())
    }

    #[test]
    fn medians_and_spreads() {
        let r = record("x", Better::Higher, &[10.0, 12.0, 11.0]);
        assert_eq!(r.median, 11.0);
        assert!((r.spread - 1.0 / 11.0).abs() < 1e-9);
        assert_eq!(median(&[1.0, 2.0, 3.0, 4.0]), 2.5);
    }

    #[test]
    fn a_regression_is_called_only_beyond_the_noise() {
        let base = [
            record("rate", Better::Higher, &[100.0, 101.0, 99.0]),
            record("p99", Better::Lower, &[10.0, 10.0, 10.0]),
        ];
        let slightly = [
            record("rate", Better::Higher, &[95.0, 95.0, 95.0]),
            record("p99", Better::Lower, &[10.5, 10.5, 10.5]),
        ];
        assert!(compare(&base, &slightly).iter().all(|c| !c.regressed));
        let worse = [
            record("rate", Better::Higher, &[70.0, 70.0, 70.0]),
            record("p99", Better::Lower, &[15.0, 15.0, 15.0]),
        ];
        let c = compare(&base, &worse);
        assert!(c.iter().all(|c| c.regressed), "{c:?}");
        let better = [record("p99", Better::Lower, &[5.0, 5.0, 5.0])];
        assert!(!compare(&base, &better)[0].regressed);
    }

    #[test]
    fn records_round_trip_through_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let r = record("rate", Better::Higher, &[1.0, 2.0]);
        append(&path, std::slice::from_ref(&r)).unwrap();
        append(&path, std::slice::from_ref(&r)).unwrap();
        assert_eq!(load(&path).unwrap(), vec![r.clone(), r]);
    }
}
