//! `learnpulse bench cache`: Zipf-distributed reads of learner states over many learners,
//! through the hub's real lookup path (L1 memory → L2 Redis → L3 the kept states), with the
//! share of reads and the latency each layer served.
//!
//! It writes `--learners` kept states first (as snapshots do), each a real engine state made by
//! applying a dozen answers, then reads: a warm-up pass, then the measured pass. Popularity
//! follows Zipf's law with exponent `--zipf` (rank k is read with probability ∝ 1/k^s); ranks
//! are spread over the learners by a fixed permutation, so hot learners are not neighbours in
//! the database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use learnpulse_core::{Engine, EngineParams, LearningEvent, SkillModel};
use learnpulse_server::cache::learners::LearnerLayers;
use learnpulse_server::cache::{Layer, Shared};
use learnpulse_server::live::{KeptState, LearnerHub};
use learnpulse_server::storage::{KeptLearner, SnapshotStore};

#[derive(Args)]
pub struct CacheBench {
    /// Learners with a kept state.
    #[arg(long, default_value_t = 1_000_000)]
    learners: usize,
    /// Reads measured (after as many warm-up reads, unless --warmup says otherwise).
    #[arg(long, default_value_t = 1_000_000)]
    reads: usize,
    #[arg(long)]
    warmup: Option<usize>,
    /// Zipf exponent of the learners' popularity.
    #[arg(long, default_value_t = 1.0)]
    zipf: f64,
    /// Learners the node holds in memory (L1).
    #[arg(long, default_value_t = 100_000)]
    in_memory: usize,
    /// L2: `redis://…` (none when not given).
    #[arg(long, env = "LEARNPULSE_CACHE")]
    cache: Option<String>,
    /// L3: a scratch database (`postgres://…/scratch`: the bench writes kept states into it);
    /// a SQLite file in a temporary directory when not given.
    #[arg(long)]
    storage: Option<String>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// A real learner state: a dozen answers over three skills through the engine.
fn sample_state(name: &str) -> KeptState {
    let mut engine = Engine::new(EngineParams::default());
    for t in 0..12i64 {
        let skill = ["fractions", "ratios", "decimals"][t as usize % 3];
        engine.apply(&LearningEvent {
            response_time_ms: Some(4_000 + 900 * (t as u64 % 5)),
            group: Some("class-7b".into()),
            ..LearningEvent::answer(name, &format!("item-{t}"), skill, t % 4 != 1, t * 60_000)
        });
    }
    KeptState {
        state: engine.learner(name).expect("applied").clone(),
        memory: Default::default(),
    }
}

fn name(i: usize) -> String {
    format!("bench-{i:07}")
}

/// Rank → learner: multiplication by a constant coprime with `n`, modulo `n`.
fn spread(rank: usize, n: usize) -> usize {
    let mut step = 2_654_435_761usize % n.max(1);
    while gcd(step, n) != 1 {
        step += 1;
    }
    (rank * step) % n
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Cumulative Zipf weights over ranks 1..=n, normalised.
fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let mut cdf = Vec::with_capacity(n);
    let mut total = 0.0;
    for k in 1..=n {
        total += 1.0 / (k as f64).powf(s);
        cdf.push(total);
    }
    for c in &mut cdf {
        *c /= total;
    }
    cdf
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1_000.0
}

/// Per layer: the share of reads and their latency in microseconds.
fn summary(latencies: &mut [Vec<u64>; 3], reads: usize, elapsed: Duration) -> Value {
    let mut layers = serde_json::Map::new();
    for (i, name) in ["l1", "l2", "l3"].iter().enumerate() {
        let l = &mut latencies[i];
        l.sort_unstable();
        layers.insert(
            name.to_string(),
            json!({
                "share": l.len() as f64 / reads as f64,
                "p50_us": percentile(l, 0.50),
                "p99_us": percentile(l, 0.99),
                "max_us": l.last().map_or(0.0, |v| *v as f64 / 1_000.0),
            }),
        );
    }
    let mut near: Vec<u64> = latencies[0].iter().chain(&latencies[1]).copied().collect();
    near.sort_unstable();
    json!({
        "reads": reads,
        "reads_per_second": (reads as f64 / elapsed.as_secs_f64()).round(),
        "l1_l2_hit": near.len() as f64 / reads as f64,
        "l1_l2_p99_us": percentile(&near, 0.99),
        "layers": layers,
    })
}

pub async fn run(args: CacheBench) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.learners > 0 && args.reads > 0,
        "--learners and --reads must be positive"
    );
    let scratch = tempfile::tempdir()?;
    let mut config = learnpulse_server::Config {
        data_dir: scratch.path().to_path_buf(),
        ..Default::default()
    };
    config.storage.url = args.storage.clone();
    let storage = Arc::new(learnpulse_server::storage::open(&config).await?);
    // A tenant of its own per run: nothing an earlier run left in Redis is read.
    let tenant = 1_000_000_000 + rand::rng().random_range(0..1_000_000_000i64);

    let started = Instant::now();
    let template = sample_state("template");
    let mut written = 0;
    while written < args.learners {
        let page: Vec<KeptLearner> = (written..(written + 5_000).min(args.learners))
            .map(|i| {
                let mut kept = template.clone();
                kept.state.learner = name(i);
                KeptLearner {
                    tenant,
                    learner: name(i),
                    covers_seq: 1,
                    body: serde_json::to_vec(&kept).expect("serialises"),
                }
            })
            .collect();
        written += page.len();
        storage.save_snapshots(Vec::new(), page).await?;
        eprint!("\rkept states written: {written}/{}", args.learners);
    }
    let setup = started.elapsed();
    eprintln!(" ({:.1} s)", setup.as_secs_f64());

    let shared = Arc::new(Shared::open(args.cache.as_deref())?);
    let hub = LearnerHub::new(
        EngineParams::default(),
        Arc::new(SkillModel::default()),
        LearnerLayers::new(storage.clone(), shared.clone()),
        args.in_memory,
    );
    // As a node restarted from a snapshot at sequence 1 that holds nobody yet.
    hub.restore(1, 0, Vec::new());

    let cdf = zipf_cdf(args.learners, args.zipf);
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut phases = Vec::new();
    for (phase, reads) in [
        ("warmup", args.warmup.unwrap_or(args.reads)),
        ("measured", args.reads),
    ] {
        let mut latencies: [Vec<u64>; 3] = Default::default();
        let began = Instant::now();
        let mut last_report = Instant::now();
        for r in 0..reads {
            let u: f64 = rng.random();
            let rank = cdf.partition_point(|c| *c < u).min(args.learners - 1);
            let who = name(spread(rank, args.learners));
            let t = Instant::now();
            let (_, layer) = hub
                .lookup(tenant, &who)
                .await?
                .ok_or_else(|| anyhow::anyhow!("{who} has no kept state"))?;
            let ns = t.elapsed().as_nanos() as u64;
            latencies[match layer {
                Layer::L1 => 0,
                Layer::L2 => 1,
                Layer::L3 => 2,
            }]
            .push(ns);
            if last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                eprint!("\r{phase}: {r}/{reads} reads");
            }
        }
        eprintln!(
            "\r{phase}: {reads}/{reads} reads in {:.1} s",
            began.elapsed().as_secs_f64()
        );
        phases.push((phase, summary(&mut latencies, reads, began.elapsed())));
    }
    let report = json!({
        "learners": args.learners,
        "zipf": args.zipf,
        "in_memory": args.in_memory,
        "l2": if args.cache.is_some() { "redis" } else { "none" },
        "l3": learnpulse_server::storage::Location::of(&config).describe(),
        "setup_seconds": setup.as_secs_f64(),
        "held_after": hub.learner_count(),
        "warmup": phases[0].1,
        "measured": phases[1].1,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
