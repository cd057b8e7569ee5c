//! `learnpulse bench interventions`: how long from sending an event to its intervention arriving
//! on the SSE stream, and from the event's acknowledgement to that arrival. Each round posts three
//! wrong answers of a fresh learner (the third fires the built-in easier-item policy) and waits
//! for the `intervention` event naming that learner's pseudonym.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Where the events are posted.
    pub url: String,
    /// Where the stream is read: another node of the installation, to time an event's way from
    /// the node that took it to a dashboard on another; `None`: the same server.
    pub stream_url: Option<String>,
    pub token: String,
    pub rounds: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub rounds: usize,
    pub received: usize,
    /// From sending the POST to the intervention arriving on the stream.
    pub send_to_stream_ms_p50: f64,
    pub send_to_stream_ms_p99: f64,
    /// From the POST's acknowledgement to the arrival (negative: it arrived first, since the
    /// server broadcasts before it acknowledges).
    pub ack_to_stream_ms_p50: f64,
    pub ack_to_stream_ms_p99: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

/// Reads the SSE stream and sends (learner pseudonym, arrival) for each intervention event.
async fn read_stream(
    mut response: reqwest::Response,
    arrivals: mpsc::UnboundedSender<(String, Instant)>,
) {
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let now = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if !block.contains("event: intervention") {
                continue;
            }
            if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: "))
                && let Ok(v) = serde_json::from_str::<Value>(data)
                && let Some(learner) = v["learner"].as_str()
            {
                let _ = arrivals.send((learner.to_owned(), now));
            }
        }
    }
}

pub async fn run(config: ProbeConfig) -> anyhow::Result<ProbeReport> {
    let client = reqwest::Client::new();
    let base = config.url.trim_end_matches('/').to_owned();
    let run_id: u32 = rand::random();
    let ids: Vec<String> = (0..config.rounds)
        .map(|i| format!("probe-{run_id:08x}-{i}"))
        .collect();
    let mut pseudonyms: HashMap<String, String> = HashMap::new();
    for chunk in ids.chunks(10_000) {
        let map: HashMap<String, String> = client
            .post(format!("{base}/v1/privacy/pseudonyms"))
            .bearer_auth(&config.token)
            .json(&json!({"ids": chunk}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        pseudonyms.extend(map);
    }
    let stream_base = config
        .stream_url
        .as_deref()
        .map_or(base.clone(), |u| u.trim_end_matches('/').to_owned());
    let stream = client
        .get(format!("{stream_base}/v1/stream"))
        .bearer_auth(&config.token)
        .send()
        .await?
        .error_for_status()?;
    let (tx, mut arrivals) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_stream(stream, tx));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (mut send_to_stream, mut ack_to_stream) = (Vec::new(), Vec::new());
    for id in &ids {
        let events: Vec<Value> = (0..3)
            .map(|i| json!({"learner_id": id, "item_id": format!("probe-q{i}"), "skills": ["probe"], "outcome": "incorrect"}))
            .collect();
        let sent = Instant::now();
        client
            .post(format!("{base}/v1/events"))
            .bearer_auth(&config.token)
            .json(&json!({"events": events}))
            .send()
            .await?
            .error_for_status()?;
        let acked = Instant::now();
        let wanted = &pseudonyms[id];
        let deadline = tokio::time::sleep(Duration::from_secs(2));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                got = arrivals.recv() => match got {
                    Some((learner, at)) if &learner == wanted => {
                        send_to_stream.push(at.duration_since(sent).as_secs_f64() * 1e3);
                        let after_ack = if at >= acked {
                            at.duration_since(acked).as_secs_f64()
                        } else {
                            -acked.duration_since(at).as_secs_f64()
                        };
                        ack_to_stream.push(after_ack * 1e3);
                        break;
                    }
                    Some(_) => continue,
                    None => break,
                },
                _ = &mut deadline => break,
            }
        }
    }
    reader.abort();
    send_to_stream.sort_by(f64::total_cmp);
    ack_to_stream.sort_by(f64::total_cmp);
    Ok(ProbeReport {
        rounds: config.rounds,
        received: send_to_stream.len(),
        send_to_stream_ms_p50: percentile(&send_to_stream, 50.0),
        send_to_stream_ms_p99: percentile(&send_to_stream, 99.0),
        ack_to_stream_ms_p50: percentile(&ack_to_stream, 50.0),
        ack_to_stream_ms_p99: percentile(&ack_to_stream, 99.0),
    })
}
