//! An ingest load generator (`learnpulse bench ingest`): N concurrent clients post batches of
//! realistic xAPI statements (or the same answers as native events) for a fixed time and report
//! throughput and request latency. Given several servers (the nodes of one installation), client
//! `c` posts to server `c mod n`.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The servers' base URLs (at least one).
    pub urls: Vec<String>,
    pub token: String,
    pub clients: usize,
    /// Statements per request (1 = single-statement POSTs).
    pub batch: usize,
    pub duration: Duration,
    /// Which door: xAPI statements (`/xAPI/statements`) or native events (`/v1/events`).
    pub native: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub clients: usize,
    pub batch: usize,
    pub seconds: f64,
    pub requests: u64,
    pub failed_requests: u64,
    pub statements: u64,
    pub statements_per_second: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p90: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
}

/// Free-text answers, one in four statements: what the privacy pipeline has to scan.
const ANSWERS: [&str; 4] = [
    "I think it is 12 because 3 times 4 is 12, Maria Garcia showed me",
    "not sure, can you email me at sam.lee@school.example.org",
    "the slope is rise over run so 2/5",
    "I asked James and he said the answer is b",
];

/// One realistic statement (about 700 bytes, like an LMS's `answered` statement); one in four
/// carries a sentence of free text as its response.
fn statement(client: usize, n: u64) -> serde_json::Value {
    let learner = (n * 7 + client as u64 * 13) % 2_000;
    let item = n % 500;
    let response = if n.is_multiple_of(4) {
        ANSWERS[(n / 4 % 4) as usize]
    } else {
        "b"
    };
    json!({
        "actor": {"objectType": "Agent", "name": format!("Learner {learner}"),
                  "account": {"homePage": "https://lms.example.edu", "name": format!("u{learner:05}")}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered", "display": {"en-US": "answered"}},
        "object": {"objectType": "Activity", "id": format!("https://lms.example.edu/course/algebra-1/quiz/3/q{item}"),
                   "definition": {"name": {"en-US": format!("Question {item}")},
                                  "type": "http://adlnet.gov/expapi/activities/cmi.interaction",
                                  "interactionType": "choice"}},
        "result": {"success": !n.is_multiple_of(3), "response": response, "duration": format!("PT{}.{}S", 5 + n % 40, n % 10),
                   "score": {"scaled": if !n.is_multiple_of(3) { 1.0 } else { 0.0 }}},
        "context": {"registration": "9b6a8c2e-54a1-4f43-9a0f-2f3b8a1d7c10", "platform": "Example LMS",
                    "extensions": {"https://learnpulse.dev/xapi/ext/skills": [format!("skill-{}", item % 25)],
                                   "https://learnpulse.dev/xapi/ext/group": format!("class-{}", learner % 60)}},
        "timestamp": "2026-11-26T09:30:00.000Z"
    })
}

/// The same answer as [`statement`], as a native event (`POST /v1/events`).
fn native_event(client: usize, n: u64) -> serde_json::Value {
    let learner = (n * 7 + client as u64 * 13) % 2_000;
    let item = n % 500;
    let mut event = json!({
        "learner_id": format!("u{learner:05}"), "item_id": format!("q{item}"),
        "skills": [format!("skill-{}", item % 25)],
        "outcome": if n.is_multiple_of(3) { "incorrect" } else { "correct" },
        "response_time_ms": (5 + n % 40) * 1_000 + (n % 10) * 100,
        "group_id": format!("class-{}", learner % 60),
        "timestamp": "2026-11-26T09:30:00.000Z"
    });
    if n.is_multiple_of(4) {
        event["text"] = json!(ANSWERS[(n / 4 % 4) as usize]);
    }
    event
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The statements resource of each server (at least one).
pub fn statements_endpoints(urls: &[String]) -> anyhow::Result<Vec<String>> {
    anyhow::ensure!(!urls.is_empty(), "at least one server URL");
    Ok(urls
        .iter()
        .map(|url| format!("{}/xAPI/statements", url.trim_end_matches('/')))
        .collect())
}

pub async fn run(config: LoadConfig) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(
        config.clients > 0 && config.batch > 0,
        "clients and batch must be at least 1"
    );
    let endpoints: Vec<String> = if config.native {
        config
            .urls
            .iter()
            .map(|url| format!("{}/v1/events", url.trim_end_matches('/')))
            .collect()
    } else {
        statements_endpoints(&config.urls)?
    };
    let native = config.native;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..config.clients {
        let (endpoint, token, batch, duration) = (
            endpoints[c % endpoints.len()].clone(),
            config.token.clone(),
            config.batch,
            config.duration,
        );
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            // Bodies are built before the clock starts and reused (the server gives every
            // statement a fresh id), so the load generator spends its CPU on sending, not on
            // building JSON: on a 2-core machine it shares the cores with the server.
            let bodies: Vec<Vec<u8>> = (0..32u64)
                .map(|k| {
                    if native {
                        let events: Vec<_> = (0..batch as u64)
                            .map(|j| native_event(c, k * batch as u64 + j))
                            .collect();
                        return serde_json::to_vec(&json!({ "events": events }));
                    }
                    let statements: Vec<_> = (0..batch as u64)
                        .map(|j| statement(c, k * batch as u64 + j))
                        .collect();
                    if batch == 1 {
                        serde_json::to_vec(&statements[0])
                    } else {
                        serde_json::to_vec(&statements)
                    }
                })
                .collect::<Result<_, _>>()?;
            let mut latencies = Vec::new();
            let (mut sent, mut failed) = (0u64, 0u64);
            let mut k = 0;
            while started.elapsed() < duration {
                let body = bodies[k % bodies.len()].clone();
                k += 1;
                let t = Instant::now();
                let response = client
                    .post(&endpoint)
                    .bearer_auth(&token)
                    .header("X-Experience-API-Version", "1.0.3")
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let ok = match response {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                latencies.push(t.elapsed().as_secs_f64() * 1_000.0);
                if ok {
                    sent += batch as u64
                } else {
                    failed += 1
                }
            }
            anyhow::Ok((latencies, sent, failed))
        }));
    }
    let (mut latencies, mut statements, mut failed) = (Vec::new(), 0, 0);
    for t in tasks {
        let (l, s, f) = t.await??;
        latencies.extend(l);
        statements += s;
        failed += f;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Ok(LoadReport {
        clients: config.clients,
        batch: config.batch,
        seconds,
        requests: latencies.len() as u64,
        failed_requests: failed,
        statements,
        statements_per_second: statements as f64 / seconds,
        latency_ms_p50: percentile(&latencies, 50.0),
        latency_ms_p90: percentile(&latencies, 90.0),
        latency_ms_p99: percentile(&latencies, 99.0),
        latency_ms_max: latencies.last().copied().unwrap_or(0.0),
    })
}
