//! `learnpulse bench webhooks`: delivery throughput to a local receiver. The probe runs a
//! receiver in its own process, registers it on the server as a webhook receiver, posts three
//! wrong answers for each of `learners` fresh learners (each fires one easier-item decision) and
//! counts the messages that arrive. Since decisions are made as the events are ingested, the
//! figure is bounded by ingest too: the report gives both spans. With `backlog`, the receiver
//! holds every request until ingest has finished (the first `max_in_flight` attempts wait, the
//! rest of the messages pile up in the outbox), so the delivery span measures the dispatcher
//! draining a backlog, free of ingest.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct WebhookProbeConfig {
    pub url: String,
    pub token: String,
    pub learners: usize,
    /// The receiver's `max_batch` (1: one message per request).
    pub max_batch: usize,
    pub backlog: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct WebhookProbeReport {
    pub decisions_expected: usize,
    pub messages_received: usize,
    pub requests_received: usize,
    pub max_batch: usize,
    pub backlog: bool,
    /// From the first event sent to the last acknowledgement.
    pub ingest_seconds: f64,
    /// From the first event sent to the last message received.
    pub end_to_end_seconds: f64,
    /// From the first message received (with `backlog`: from the receiver opening) to the last.
    pub delivery_seconds: f64,
    pub messages_per_second: f64,
}

struct Counter {
    messages: AtomicUsize,
    requests: AtomicUsize,
    first_last: Mutex<Option<(Instant, Instant)>>,
    /// Requests wait until this is true.
    open: tokio::sync::watch::Receiver<bool>,
}

async fn receive(State(c): State<Arc<Counter>>, body: axum::body::Bytes) -> axum::http::StatusCode {
    let _ = c.open.clone().wait_for(|open| *open).await;
    let now = Instant::now();
    let n = if body.first() == Some(&b'[') {
        serde_json::from_slice::<Vec<Value>>(&body).map_or(0, |v| v.len())
    } else {
        1
    };
    c.messages.fetch_add(n, Ordering::SeqCst);
    c.requests.fetch_add(1, Ordering::SeqCst);
    let mut span = c.first_last.lock().unwrap();
    *span = Some(span.map_or((now, now), |(first, _)| (first, now)));
    axum::http::StatusCode::NO_CONTENT
}

pub async fn run(config: WebhookProbeConfig) -> anyhow::Result<WebhookProbeReport> {
    let (gate, open) = tokio::sync::watch::channel(!config.backlog);
    let counter = Arc::new(Counter {
        messages: AtomicUsize::new(0),
        requests: AtomicUsize::new(0),
        first_last: Mutex::new(None),
        open,
    });
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(counter.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::new();
    let run = uuid::Uuid::now_v7().simple().to_string();
    let created = client
        .post(format!("{}/v1/webhooks", config.url))
        .bearer_auth(&config.token)
        .json(
            &json!({"name": format!("bench-{run}"), "max_batch": config.max_batch,
                      "endpoints": [{"url": hook}]}),
        )
        .send()
        .await?;
    anyhow::ensure!(
        created.status().is_success(),
        "cannot register the receiver (an admin key is needed): {}",
        created.text().await?
    );
    let receiver: Value = created.json().await?;

    // 100 learners per request, three wrong answers each, four requests in flight.
    let started = Instant::now();
    let batches: Vec<Value> = (0..config.learners)
        .collect::<Vec<_>>()
        .chunks(100)
        .map(|chunk| {
            let events: Vec<Value> = chunk
                .iter()
                .flat_map(|l| {
                    let run = &run;
                    (0..3).map(move |i| {
                        json!({"learner_id": format!("wh-{run}-{l}"), "item_id": format!("q{i}"),
                               "skills": ["fractions"], "outcome": "incorrect"})
                    })
                })
                .collect();
            json!({ "events": events })
        })
        .collect();
    let posts = futures_util::stream::iter(batches.into_iter().map(|body| {
        let (client, url, token) = (client.clone(), config.url.clone(), config.token.clone());
        async move {
            client
                .post(format!("{url}/v1/events"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
        }
    }));
    use futures_util::StreamExt;
    let results: Vec<_> = posts.buffer_unordered(4).collect().await;
    for r in results {
        r?;
    }
    let ingest_seconds = started.elapsed().as_secs_f64();
    let opened = Instant::now();
    let _ = gate.send(true);

    let deadline = Instant::now() + Duration::from_secs(120);
    while counter.messages.load(Ordering::SeqCst) < config.learners && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client
        .delete(format!("{}/v1/webhooks/{}", config.url, receiver["id"]))
        .bearer_auth(&config.token)
        .send()
        .await?
        .error_for_status()?;
    let received = counter.messages.load(Ordering::SeqCst);
    let (first, last) = counter
        .first_last
        .lock()
        .unwrap()
        .unwrap_or((started, started));
    let first = if config.backlog { opened } else { first };
    let delivery_seconds = (last - first).as_secs_f64();
    Ok(WebhookProbeReport {
        decisions_expected: config.learners,
        messages_received: received,
        requests_received: counter.requests.load(Ordering::SeqCst),
        max_batch: config.max_batch,
        backlog: config.backlog,
        ingest_seconds,
        end_to_end_seconds: (last - started).as_secs_f64(),
        delivery_seconds,
        messages_per_second: received as f64 / delivery_seconds.max(1e-9),
    })
}
