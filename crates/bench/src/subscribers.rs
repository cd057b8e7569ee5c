//! A crowd of live-stream subscribers: `count` streams of the whole tenant (`GET /v1/stream`),
//! each read to the end as a dashboard reads it, for the live suite's "with 10,000 subscribers"
//! case. Every update then goes to every stream: the fan-out's worst case.
//!
//! The crowd is held by a child process (`learnpulse bench subscribers`, see [`run_child`]):
//! ten thousand streams are twenty thousand sockets when the clients and the server share one
//! process, past a common descriptor limit (a hard limit of 20,000 is usual). The child prints
//! one JSON line when every stream is open and another, its [`Tally`], when its standard input
//! closes.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// What the crowd received.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    /// Streams that were open to the end.
    pub streams: u64,
    /// `intervention` events, over every stream.
    pub interventions: u64,
    /// `learner` events, over every stream.
    pub learner_events: u64,
    /// Updates the server reported as missed (a stream that fell behind).
    pub missed: u64,
}

#[derive(Default)]
struct Counters {
    interventions: AtomicU64,
    learner_events: AtomicU64,
    missed: AtomicU64,
}

/// Opens one stream, waiting out the key's rate limit (a crowd opens faster than a key may ask).
async fn open(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<reqwest::Response> {
    for _ in 0..60 {
        let response = client.get(url).bearer_auth(token).send().await?;
        if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        return Ok(response.error_for_status()?);
    }
    anyhow::bail!("the server kept refusing a stream at its rate limit")
}

/// Reads a stream to its end, counting its events by kind.
async fn read(mut response: reqwest::Response, counters: Arc<Counters>) {
    let mut buffer: Vec<u8> = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        buffer.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = find(&buffer[start..], b"\n\n") {
            let block = &buffer[start..start + end];
            if block.starts_with(b"event: intervention") {
                counters.interventions.fetch_add(1, Ordering::Relaxed);
            } else if block.starts_with(b"event: learner") {
                counters.learner_events.fetch_add(1, Ordering::Relaxed);
            } else if block.starts_with(b"event: lagged")
                && let Some(n) = std::str::from_utf8(block)
                    .ok()
                    .and_then(|b| b.lines().find_map(|l| l.strip_prefix("data: ")))
                    .and_then(|d| d.trim().parse::<u64>().ok())
            {
                counters.missed.fetch_add(n, Ordering::Relaxed);
            }
            start += end + 2;
        }
        buffer.drain(..start);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Opens `count` streams of the tenant at `base`, calls `connected` once all are open, reads
/// them until `stop` resolves, and returns what they received.
pub async fn hold(
    base: &str,
    token: &str,
    count: usize,
    connected: impl FnOnce(),
    stop: impl Future<Output = ()>,
) -> anyhow::Result<Tally> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let url = format!("{}/v1/stream", base.trim_end_matches('/'));
    let counters = Arc::new(Counters::default());
    let mut opened = futures_util::stream::iter(0..count)
        .map(|_| open(&client, &url, token))
        .buffer_unordered(128);
    let mut readers = Vec::with_capacity(count);
    while let Some(response) = opened.next().await {
        readers.push(tokio::spawn(read(response?, counters.clone())));
    }
    drop(opened);
    connected();
    stop.await;
    let streams = readers.iter().filter(|r| !r.is_finished()).count() as u64;
    for reader in &readers {
        reader.abort();
    }
    Ok(Tally {
        streams,
        interventions: counters.interventions.load(Ordering::Relaxed),
        learner_events: counters.learner_events.load(Ordering::Relaxed),
        missed: counters.missed.load(Ordering::Relaxed),
    })
}

/// The child's side (`learnpulse bench subscribers`): holds the crowd, prints
/// `{"connected": n}` once it is open and the [`Tally`] once standard input closes.
pub async fn run_child(base: &str, token: &str, count: usize) -> anyhow::Result<()> {
    let tally = hold(
        base,
        token,
        count,
        || println!("{}", serde_json::json!({ "connected": count })),
        async {
            // (tokio's stdin is a blocking thread underneath anyway.)
            let _ = tokio::task::spawn_blocking(|| {
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())
            })
            .await;
        },
    )
    .await?;
    println!("{}", serde_json::to_string(&tally)?);
    Ok(())
}

/// The crowd, held by a child process running `program bench subscribers`.
pub struct Crowd {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Crowd {
    /// Starts the child and waits until every stream is open.
    pub async fn start(
        program: &std::path::Path,
        base: &str,
        token: &str,
        count: usize,
    ) -> anyhow::Result<Crowd> {
        let mut child = tokio::process::Command::new(program)
            .args(["bench", "subscribers", "--url", base, "--count"])
            .arg(count.to_string())
            .env("LEARNPULSE_KEY", token)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", program.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(300), lines.next_line())
            .await
            .map_err(|_| {
                anyhow::anyhow!("{count} subscribers were not connected in 5 minutes")
            })??;
        anyhow::ensure!(
            first.as_deref().is_some_and(|l| l.contains("connected")),
            "the subscribers' process ended before they were connected"
        );
        Ok(Crowd { child, lines })
    }

    /// Closes the streams and returns what they received.
    pub async fn finish(mut self) -> anyhow::Result<Tally> {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.shutdown().await;
        }
        let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
            .await
            .map_err(|_| anyhow::anyhow!("the subscribers' process did not report"))??
            .ok_or_else(|| anyhow::anyhow!("the subscribers' process ended without a report"))?;
        let _ = self.child.wait().await;
        Ok(serde_json::from_str(&line)?)
    }
}
