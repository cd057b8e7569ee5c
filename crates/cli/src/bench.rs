//! `learnpulse bench run / compare / report`: the performance validation framework
//! (`learnpulse_bench`) as commands: run suites and check their targets, compare a run with a
//! stored baseline, and draw every metric over runs as one HTML page.

use std::path::PathBuf;

use clap::Args;

use learnpulse_bench::record::{self, Machine, Record};
use learnpulse_bench::suites::{self, SUITES, Settings};
use learnpulse_bench::targets;

use crate::progress;

/// Where the results and targets live by default (checked in beside the code).
const RESULTS: &str = "bench/results.jsonl";
const TARGETS: &str = "bench/targets.toml";

#[derive(Args)]
pub struct RunArgs {
    /// Suites to run (repeat, or a comma list; default: every suite: ingest, sustained,
    /// queries, live, webhooks, privacy, model, and cluster when --postgres is given).
    #[arg(long = "suite", value_delimiter = ',')]
    suites: Vec<String>,
    /// A running server to measure instead of starting one per suite on a temporary data
    /// directory (then `--key` is an admin key of it).
    #[arg(long, requires = "key")]
    url: Option<String>,
    #[arg(long, env = "LEARNPULSE_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Repetitions of each measurement (the median is kept, the spread tells the noise).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Short and small: checks that every suite works, not how fast (CI's smoke run).
    #[arg(long)]
    quick: bool,
    /// Statements the sustained-ingest suite stores in one store (default 10 M; 100,000 with
    /// --quick): its throughput per stretch against the store's size is drawn in the report.
    #[arg(long)]
    sustained_statements: Option<u64>,
    /// Subscribers of the live suite's crowd, each following every learner (default 10,000;
    /// 100 with --quick).
    #[arg(long)]
    subscribers: Option<usize>,
    /// PostgreSQL for the cluster suite: its nodes run on a fresh database made there and
    /// dropped after (e.g. postgres://postgres@127.0.0.1:5432). Without it, the cluster suite
    /// is left out of a run of every suite.
    #[arg(long, env = "LEARNPULSE_BENCH_POSTGRES")]
    postgres: Option<String>,
    /// Redis, the cluster suite's nodes' shared cache (e.g. redis://127.0.0.1:6379).
    #[arg(long, env = "LEARNPULSE_BENCH_REDIS")]
    redis: Option<String>,
    /// The given data sets (for the model suite's quality figures).
    #[arg(long, env = "LEARNPULSE_DATA", default_value = "../shared/data")]
    data: PathBuf,
    /// Where results are appended (JSON lines).
    #[arg(long, default_value = RESULTS)]
    results: PathBuf,
    /// Do not store this run.
    #[arg(long)]
    no_save: bool,
    #[arg(long, default_value = TARGETS)]
    targets: PathBuf,
    /// Compare with the latest run stored in this file too, and fail on a regression beyond the
    /// noise band.
    #[arg(long)]
    baseline: Option<PathBuf>,
}

#[derive(Args)]
pub struct CompareArgs {
    /// The baseline: a results file (its latest run is the baseline).
    #[arg(long)]
    baseline: PathBuf,
    /// The results to compare (their latest run).
    #[arg(long, default_value = RESULTS)]
    results: PathBuf,
}

#[derive(Args)]
pub struct ReportArgs {
    #[arg(long, default_value = RESULTS)]
    results: PathBuf,
    #[arg(long, default_value = TARGETS)]
    targets: PathBuf,
    #[arg(long, default_value = "target/bench-report.html")]
    output: PathBuf,
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let chosen: Vec<String> = if args.suites.is_empty() {
        let every = SUITES.iter().map(|s| s.to_string());
        if args.postgres.is_none() {
            eprintln!("the cluster suite is left out: it needs --postgres URL (and --redis URL)");
        }
        every
            .filter(|s| s != "cluster" || args.postgres.is_some())
            .collect()
    } else {
        args.suites.clone()
    };
    for s in &chosen {
        anyhow::ensure!(
            SUITES.contains(&s.as_str()),
            "no suite {s:?} (suites: {})",
            SUITES.join(", ")
        );
    }
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    anyhow::ensure!(
        args.subscribers != Some(0),
        "--subscribers must be at least 1"
    );
    if args.redis.is_some() && args.postgres.is_none() {
        eprintln!("--redis is used by the cluster suite only, which needs --postgres too");
    }
    let targets = targets::load(&args.targets)?;
    // Read before this run is stored: the baseline may be the same file.
    let baseline = match &args.baseline {
        Some(path) => Some(record::latest_run(&record::load(path)?)),
        None => None,
    };
    let settings = Settings {
        server: args.url.clone().zip(args.key.clone()),
        runs: args.runs,
        quick: args.quick,
        data: Some(args.data.clone()).filter(|d| d.exists()),
        sustained_statements: args.sustained_statements.unwrap_or(if args.quick {
            100_000
        } else {
            10_000_000
        }),
        subscribers: args
            .subscribers
            .unwrap_or(if args.quick { 100 } else { 10_000 }),
        program: std::env::current_exe().ok(),
        cluster: args.postgres.clone().map(|postgres| suites::Services {
            postgres,
            redis: args.redis.clone(),
        }),
    };
    let run_id = record::now();
    let commit = record::current_commit();
    let machine = Machine::this();
    let bar = progress::bar("bench", chosen.len() as u64);
    let mut records = Vec::new();
    for suite in &chosen {
        bar.set_message(suite.clone());
        let measured = suites::run(suite, &settings, &mut |step| {
            bar.set_message(step.to_owned());
        })
        .await
        .map_err(|e| anyhow::anyhow!("suite {suite}: {e}"))?;
        records.extend(
            measured
                .iter()
                .map(|m| Record::of(m, &run_id, &commit, &machine)),
        );
        bar.inc(1);
    }
    bar.finish_and_clear();
    if !args.no_save {
        record::append(&args.results, &records)?;
    }

    // The summary: every metric, its target, and whether it is met.
    let verdicts = targets::check(&targets, &records);
    println!(
        "{:<42} {:>14} {:>8} {:>18}  met",
        "metric", "median", "±", "target"
    );
    for r in &records {
        let v = verdicts.iter().find(|v| v.metric == r.key());
        println!(
            "{:<42} {:>14} {:>7.1}% {:>18}  {}",
            r.key(),
            format!("{:.3} {}", r.median, r.unit),
            r.spread * 100.0,
            v.map_or(String::new(), |v| format!(
                "{} {}",
                v.bound.symbol(),
                v.target
            )),
            match v.and_then(|v| v.met) {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "",
            }
        );
    }
    let missed: Vec<_> = verdicts.iter().filter(|v| v.met == Some(false)).collect();
    let mut failed = Vec::new();
    if !missed.is_empty() && !args.quick {
        failed.push(format!(
            "{} target(s) missed: {}",
            missed.len(),
            missed
                .iter()
                .map(|v| v.metric.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let (Some(base), Some(path)) = (&baseline, &args.baseline) {
        let regressions = print_comparison(base, &records);
        if regressions > 0 {
            failed.push(format!(
                "{regressions} regression(s) against {}",
                path.display()
            ));
        }
    }
    if args.quick {
        eprintln!("quick run: figures check that the suites work, targets are not held");
    }
    if !args.no_save {
        eprintln!(
            "stored {} records in {}",
            records.len(),
            args.results.display()
        );
    }
    anyhow::ensure!(failed.is_empty(), "{}", failed.join("; "));
    Ok(())
}

/// Prints each metric against the baseline; returns the number of regressions.
fn print_comparison(baseline: &[Record], current: &[Record]) -> usize {
    let comparisons = record::compare(baseline, current);
    println!();
    println!(
        "{:<42} {:>14} {:>14} {:>7} {:>7}",
        "metric", "baseline", "now", "ratio", "noise"
    );
    for c in &comparisons {
        println!(
            "{:<42} {:>14.3} {:>14.3} {:>7.3} {:>6.0}%{}",
            c.key,
            c.baseline,
            c.current,
            c.ratio,
            c.noise * 100.0,
            if c.regressed { "  REGRESSED" } else { "" }
        );
    }
    comparisons.iter().filter(|c| c.regressed).count()
}

pub fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let base = record::latest_run(&record::load(&args.baseline)?);
    anyhow::ensure!(!base.is_empty(), "{} holds no run", args.baseline.display());
    let current = record::latest_run(&record::load(&args.results)?);
    anyhow::ensure!(
        !current.is_empty(),
        "{} holds no run",
        args.results.display()
    );
    let regressions = print_comparison(&base, &current);
    anyhow::ensure!(
        regressions == 0,
        "{regressions} metric(s) regressed beyond the noise band"
    );
    Ok(())
}

pub fn report(args: ReportArgs) -> anyhow::Result<()> {
    let records = record::load(&args.results)?;
    anyhow::ensure!(
        !records.is_empty(),
        "{} holds no run",
        args.results.display()
    );
    let targets = targets::load(&args.targets)?;
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        &args.output,
        learnpulse_bench::report::html(&records, &targets),
    )?;
    eprintln!("wrote {}", args.output.display());
    Ok(())
}
