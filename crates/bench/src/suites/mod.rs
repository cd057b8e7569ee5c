//! The bench suites. Each measures what one part of the product does on real work, over HTTP
//! against a server (started here on a temporary data directory unless a URL is given) or in
//! process for the pure parts, and returns its measurements.

use std::time::{Duration, Instant};

use crate::record::{Better, Measurement};

mod cluster;

pub use cluster::Services;

/// Every suite, in the order `bench run` runs them.
pub const SUITES: [&str; 8] = [
    "ingest",
    "sustained",
    "queries",
    "live",
    "webhooks",
    "privacy",
    "model",
    "cluster",
];

/// Every metric a suite measures (`suite/metric`): targets may name only these.
pub const METRICS: [&str; 25] = [
    "ingest/xapi_statements_per_second",
    "ingest/xapi_latency_p99_ms",
    "ingest/native_events_per_second",
    "sustained/statements_per_second",
    "sustained/last_million_statements_per_second",
    "queries/activity_filter_p99_ms",
    "queries/learner_read_p99_ms",
    "queries/class_overview_p99_ms",
    "live/event_to_stream_p50_ms",
    "live/event_to_stream_p99_ms",
    "live/event_to_stream_p50_ms_with_10k_subscribers",
    "live/event_to_stream_p99_ms_with_10k_subscribers",
    "live/crowd_delivered_share",
    "webhooks/messages_per_second",
    "webhooks/end_to_end_seconds",
    "privacy/pii_scan_texts_per_second",
    "privacy/pii_scan_us_per_text",
    "model/engine_update_us",
    "model/kt_fit_seconds",
    "model/kt_auc_assist2009",
    "cluster/two_node_statements_per_second",
    "cluster/one_node_statements_per_second",
    "cluster/two_to_one_node_ratio",
    "cluster/cross_node_stream_p50_ms",
    "cluster/cross_node_stream_p99_ms",
];

/// How a run is made.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A running server and an admin key for it; `None`: each suite starts its own.
    pub server: Option<(String, String)>,
    /// Repetitions of each measurement.
    pub runs: usize,
    /// Short durations and small sizes: checks that the suites work, not how fast (CI smoke).
    pub quick: bool,
    /// Where the given data sets are (`assist2009/train.csv`, ...), for the model suite.
    pub data: Option<std::path::PathBuf>,
    /// Statements the sustained-ingest suite stores (10 M by default; 100,000 when quick).
    pub sustained_statements: u64,
    /// Subscribers of the live suite's crowd (10,000 by default; 100 when quick).
    pub subscribers: usize,
    /// The `learnpulse` binary, which holds the live suite's crowd in a child process
    /// (`bench subscribers`).
    pub program: Option<std::path::PathBuf>,
    /// PostgreSQL (and Redis) for the cluster suite; `None`: it cannot run.
    pub cluster: Option<Services>,
}

/// A server for a suite: the given one, or one started on a temporary data directory.
struct Target {
    url: String,
    key: String,
    local: Option<Local>,
}

struct Local {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl Target {
    /// Stops a server started here and waits until it has drained (its writer, indexer and
    /// checkpointer done), so that the next run does not share the machine with it.
    async fn stop(mut self) {
        if let Some(mut local) = self.local.take() {
            if let Some(stop) = local.stop.take() {
                let _ = stop.send(());
            }
            if let Some(handle) = local.handle.take() {
                let _ = tokio::time::timeout(Duration::from_secs(60), handle).await;
            }
        }
    }
}

/// A last resort (a suite that failed half-way): the server is told to stop, then abandoned.
impl Drop for Local {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}

async fn server(settings: &Settings) -> anyhow::Result<Target> {
    if let Some((url, key)) = &settings.server {
        return Ok(Target {
            url: url.clone(),
            key: key.clone(),
            local: None,
        });
    }
    let dir = tempfile::tempdir()?;
    let config = learnpulse_server::Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    start_local(config, None, Some(dir)).await
}

/// Starts a server in this process with `config`. `key` is an admin key of its installation
/// (another node's); `None`: the bootstrap key a fresh installation prints. `dir` (the data
/// directory) is removed when the server is dropped.
async fn start_local(
    config: learnpulse_server::Config,
    key: Option<String>,
    dir: Option<tempfile::TempDir>,
) -> anyhow::Result<Target> {
    let server = learnpulse_server::Server::start(config).await?;
    let url = format!("http://{}", server.local_addr());
    let key = key
        .or_else(|| server.bootstrap_key().map(|k| k.token.clone()))
        .ok_or_else(|| anyhow::anyhow!("a fresh installation has a bootstrap key"))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    Ok(Target {
        url,
        key,
        local: Some(Local {
            stop: Some(stop),
            handle: Some(handle),
            _dir: dir,
        }),
    })
}

/// Runs one suite; `progress` is told each step's name.
pub async fn run(
    suite: &str,
    settings: &Settings,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<Measurement>> {
    match suite {
        "ingest" => ingest(settings, progress).await,
        "sustained" => sustained(settings, progress).await,
        "queries" => queries(settings, progress).await,
        "live" => live(settings, progress).await,
        "webhooks" => webhooks(settings, progress).await,
        "privacy" => Ok(privacy(settings, progress)),
        "model" => model(settings, progress),
        "cluster" => cluster::run(settings, progress).await,
        other => anyhow::bail!("no suite {other:?} (suites: {})", SUITES.join(", ")),
    }
}

async fn ingest(s: &Settings, progress: &mut dyn FnMut(&str)) -> anyhow::Result<Vec<Measurement>> {
    let mut rate = Measurement::new(
        "ingest",
        "xapi_statements_per_second",
        "statements/s",
        Better::Higher,
    );
    let mut p99 = Measurement::new("ingest", "xapi_latency_p99_ms", "ms", Better::Lower);
    let mut native = Measurement::new(
        "ingest",
        "native_events_per_second",
        "events/s",
        Better::Higher,
    );
    for run in 0..s.runs {
        progress(&format!("ingest run {}", run + 1));
        let report = ingest_once(s, false).await?;
        rate.samples.push(report.statements_per_second);
        p99.samples.push(report.latency_ms_p99);
        // The same answers through the native event API.
        native
            .samples
            .push(ingest_once(s, true).await?.statements_per_second);
    }
    Ok(vec![rate, p99, native])
}

/// One ingest run on a fresh store (the same work every time): 4 clients × 100 per request,
/// xAPI statements or, with `native`, the same answers as native events.
async fn ingest_once(s: &Settings, native: bool) -> anyhow::Result<crate::loadgen::LoadReport> {
    let target = server(s).await?;
    let report = crate::loadgen::run(crate::loadgen::LoadConfig {
        urls: vec![target.url.clone()],
        token: target.key.clone(),
        clients: 4,
        batch: 100,
        duration: Duration::from_secs(if s.quick { 2 } else { 10 }),
        native,
    })
    .await?;
    target.stop().await;
    anyhow::ensure!(report.failed_requests == 0, "ingest requests failed");
    Ok(report)
}

/// Ingest into one store until it holds `sustained_statements`, in 5-second stretches (2 s when
/// quick): the throughput of each stretch against the store's size is the curve of how ingest
/// holds up as the store grows.
async fn sustained(
    s: &Settings,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<Measurement>> {
    let mut rate = Measurement::new(
        "sustained",
        "statements_per_second",
        "statements/s",
        Better::Higher,
    );
    let mut last_million = Measurement::new(
        "sustained",
        "last_million_statements_per_second",
        "statements/s",
        Better::Higher,
    );
    let target = server(s).await?;
    let stretch = Duration::from_secs(if s.quick { 1 } else { 5 });
    let mut stored = 0u64;
    // (statements stored before the stretch, statements in it, seconds).
    let mut stretches: Vec<(u64, u64, f64)> = Vec::new();
    while stored < s.sustained_statements {
        progress(&format!(
            "sustained ingest: {:.1} M of {:.1} M statements",
            stored as f64 / 1e6,
            s.sustained_statements as f64 / 1e6
        ));
        let report = crate::loadgen::run(crate::loadgen::LoadConfig {
            urls: vec![target.url.clone()],
            token: target.key.clone(),
            clients: 4,
            batch: 100,
            duration: stretch,
            native: false,
        })
        .await?;
        anyhow::ensure!(report.failed_requests == 0, "ingest requests failed");
        anyhow::ensure!(report.statements > 0, "no statement was stored");
        stretches.push((stored, report.statements, report.seconds));
        stored += report.statements;
        let rate_now = report.statements as f64 / report.seconds;
        rate.samples.push(rate_now);
        // x: millions stored at the middle of the stretch.
        rate.curve.push([
            (stored as f64 - report.statements as f64 / 2.0) / 1e6,
            rate_now,
        ]);
    }
    target.stop().await;
    // The last million (or the last tenth, on a short run): its statements over its time.
    let window = (s.sustained_statements / 10).clamp(1, 1_000_000);
    let (mut n, mut secs) = (0u64, 0.0);
    for (_, count, seconds) in stretches.iter().rev() {
        n += count;
        secs += seconds;
        if n >= window {
            break;
        }
    }
    last_million.samples.push(n as f64 / secs);
    Ok(vec![rate, last_million])
}

/// p99 of `n` sequential GETs, in ms.
async fn p99_of(client: &reqwest::Client, url: &str, key: &str, n: usize) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let r = client
            .get(url)
            .bearer_auth(key)
            .header("X-Experience-API-Version", "1.0.3")
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "GET {url}: {}", r.status());
        r.bytes().await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[((times.len() - 1) as f64 * 0.99).round() as usize])
}

async fn queries(s: &Settings, progress: &mut dyn FnMut(&str)) -> anyhow::Result<Vec<Measurement>> {
    progress("queries: filling a store");
    let target = server(s).await?;
    crate::loadgen::run(crate::loadgen::LoadConfig {
        urls: vec![target.url.clone()],
        token: target.key.clone(),
        clients: 4,
        batch: 100,
        duration: Duration::from_secs(if s.quick { 1 } else { 5 }),
        native: false,
    })
    .await?;
    let client = reqwest::Client::new();
    let n = if s.quick { 20 } else { 200 };
    let activity = "https://lms.example.edu/course/algebra-1/quiz/3/q7";
    let reads = [
        (
            "activity_filter_p99_ms",
            format!(
                "{}/xAPI/statements?activity={}&limit=50",
                target.url,
                activity.replace(':', "%3A").replace('/', "%2F")
            ),
        ),
        (
            "learner_read_p99_ms",
            format!("{}/v1/learners/u00042", target.url),
        ),
        (
            "class_overview_p99_ms",
            format!("{}/v1/groups/class-7/overview", target.url),
        ),
    ];
    let mut out = Vec::new();
    for (metric, url) in reads {
        progress(&format!("queries: {metric}"));
        // A pass not counted: the first reads fill caches and may meet the indexer catching up
        // with the fill (the tail beyond its watermark is scanned).
        p99_of(&client, &url, &target.key, n).await?;
        let mut m = Measurement::new("queries", metric, "ms", Better::Lower);
        for _ in 0..s.runs {
            m.samples.push(p99_of(&client, &url, &target.key, n).await?);
        }
        out.push(m);
    }
    target.stop().await;
    Ok(out)
}

/// Times `rounds` events posted at `target` to their interventions on a stream, read there or
/// at `stream_url` (another node).
async fn probe(
    target: &Target,
    stream_url: Option<String>,
    rounds: usize,
) -> anyhow::Result<crate::probe::ProbeReport> {
    crate::probe::run(crate::probe::ProbeConfig {
        url: target.url.clone(),
        stream_url,
        token: target.key.clone(),
        rounds,
    })
    .await
}

async fn live(s: &Settings, progress: &mut dyn FnMut(&str)) -> anyhow::Result<Vec<Measurement>> {
    let mut p50 = Measurement::new("live", "event_to_stream_p50_ms", "ms", Better::Lower);
    let mut p99 = Measurement::new("live", "event_to_stream_p99_ms", "ms", Better::Lower);
    let mut crowd_p50 = Measurement::new(
        "live",
        "event_to_stream_p50_ms_with_10k_subscribers",
        "ms",
        Better::Lower,
    );
    let mut crowd_p99 = Measurement::new(
        "live",
        "event_to_stream_p99_ms_with_10k_subscribers",
        "ms",
        Better::Lower,
    );
    let mut delivered = Measurement::new("live", "crowd_delivered_share", "share", Better::Higher);
    let rounds = if s.quick { 10 } else { 100 };
    for run in 0..s.runs {
        progress(&format!("live run {}: one subscriber", run + 1));
        let target = server(s).await?;
        let report = probe(&target, None, rounds).await?;
        p50.samples.push(report.send_to_stream_ms_p50);
        p99.samples.push(report.send_to_stream_ms_p99);

        // The same probe while a crowd follows every learner of the tenant: each update goes
        // to every one of them.
        progress(&format!(
            "live run {}: opening {} subscribers",
            run + 1,
            s.subscribers
        ));
        let program = s.program.as_deref().ok_or_else(|| {
            anyhow::anyhow!("the crowd of subscribers is held by the learnpulse binary: none given")
        })?;
        let crowd =
            crate::subscribers::Crowd::start(program, &target.url, &target.key, s.subscribers)
                .await?;
        progress(&format!(
            "live run {}: probing with {} subscribers",
            run + 1,
            s.subscribers
        ));
        let report = probe(&target, None, rounds).await?;
        // Let the last round reach the slowest stream before the crowd is counted (its p99 is
        // a few hundred ms).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let tally = crowd.finish().await?;
        target.stop().await;
        crowd_p50.samples.push(report.send_to_stream_ms_p50);
        crowd_p99.samples.push(report.send_to_stream_ms_p99);
        // Each round decides one intervention, sent to every stream of the crowd.
        delivered
            .samples
            .push(tally.interventions as f64 / (rounds as f64 * s.subscribers as f64));
    }
    Ok(vec![p50, p99, crowd_p50, crowd_p99, delivered])
}

async fn webhooks(
    s: &Settings,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<Measurement>> {
    let mut rate = Measurement::new(
        "webhooks",
        "messages_per_second",
        "messages/s",
        Better::Higher,
    );
    let mut end_to_end = Measurement::new("webhooks", "end_to_end_seconds", "s", Better::Lower);
    for run in 0..s.runs {
        progress(&format!("webhooks run {}", run + 1));
        let target = server(s).await?;
        let report = crate::webhook_probe::run(crate::webhook_probe::WebhookProbeConfig {
            url: target.url.clone(),
            token: target.key.clone(),
            learners: if s.quick { 20 } else { 200 },
            max_batch: 50,
            backlog: false,
        })
        .await?;
        target.stop().await;
        rate.samples.push(report.messages_per_second);
        end_to_end.samples.push(report.end_to_end_seconds);
    }
    Ok(vec![rate, end_to_end])
}

/// Free text like learners write, PII included.
const TEXTS: [&str; 6] = [
    "I think it is 12 because 3 times 4 is 12, Maria Garcia showed me",
    "not sure, can you email me at sam.lee@school.example.org",
    "the slope is rise over run so 2/5",
    "I asked James and he said the answer is b",
    "call my mom at (415) 555-0134 if I am late, we live at 42 Elm Street",
    "my answer is 3/4 because half of a half is a quarter and one more quarter",
];

fn privacy(s: &Settings, progress: &mut dyn FnMut(&str)) -> Vec<Measurement> {
    let mut rate = Measurement::new(
        "privacy",
        "pii_scan_texts_per_second",
        "texts/s",
        Better::Higher,
    );
    let mut per_text = Measurement::new("privacy", "pii_scan_us_per_text", "µs", Better::Lower);
    let n = if s.quick { 600 } else { 12_000 };
    for run in 0..s.runs {
        progress(&format!("privacy run {}", run + 1));
        let started = Instant::now();
        let mut found = 0usize;
        for i in 0..n {
            found += learnpulse_privacy::scan(TEXTS[i % TEXTS.len()]).len();
        }
        let seconds = started.elapsed().as_secs_f64();
        assert!(found > 0, "the texts hold PII");
        rate.samples.push(n as f64 / seconds);
        per_text.samples.push(seconds / n as f64 * 1e6);
    }
    vec![rate, per_text]
}

fn model(s: &Settings, progress: &mut dyn FnMut(&str)) -> anyhow::Result<Vec<Measurement>> {
    use learnpulse_core::{Engine, EngineParams, LearningEvent};
    let mut update = Measurement::new("model", "engine_update_us", "µs", Better::Lower);
    let events: Vec<LearningEvent> = (0..20_000u32)
        .map(|i| LearningEvent {
            response_time_ms: Some(4_000 + u64::from(i * 97 % 9_000)),
            ..LearningEvent::answer(
                &format!("learner-{}", i % 500),
                &format!("item-{}", i % 300),
                &format!("skill-{}", i % 20),
                i % 3 != 0,
                i64::from(i) * 1_000,
            )
        })
        .collect();
    for run in 0..s.runs {
        progress(&format!("model: engine run {}", run + 1));
        let mut engine = Engine::new(EngineParams::default());
        let started = Instant::now();
        for e in &events {
            std::hint::black_box(engine.apply(e));
        }
        update
            .samples
            .push(started.elapsed().as_secs_f64() / events.len() as f64 * 1e6);
    }
    let mut out = vec![update];
    // Quality on a given data set, when it is there (not in quick runs: a fit takes seconds).
    let train = s.data.as_ref().map(|d| d.join("assist2009/train.csv"));
    if let (false, Some(train)) = (s.quick, train.filter(|t| t.exists())) {
        use learnpulse_core::kt::logistic::{LogisticModel, LogisticOptions};
        use learnpulse_core::kt::{Dataset, evaluate, metrics};
        progress("model: kt fit and eval on assist2009");
        let test = train.with_file_name("test.csv");
        let read = |p: &std::path::Path, names| -> anyhow::Result<Dataset> {
            Ok(Dataset::parse_csv(&std::fs::read_to_string(p)?, names)?)
        };
        let train_data = read(&train, Default::default())?;
        let test_data = read(&test, train_data.names())?;
        let mut fit = Measurement::new("model", "kt_fit_seconds", "s", Better::Lower);
        let mut auc = Measurement::new("model", "kt_auc_assist2009", "AUC", Better::Higher);
        let started = Instant::now();
        let fitted = LogisticModel::fit(&train_data, &LogisticOptions::default(), &mut |_, _| {});
        fit.samples.push(started.elapsed().as_secs_f64());
        let predictions = evaluate(&&fitted, &test_data);
        let outcomes: Vec<bool> = test_data.answers.iter().map(|a| a.correct).collect();
        let area = metrics::auc(&predictions, &outcomes)
            .ok_or_else(|| anyhow::anyhow!("{}: no AUC (one outcome only)", test.display()))?;
        auc.samples.push(area);
        out.extend([fit, auc]);
    }
    Ok(out)
}
