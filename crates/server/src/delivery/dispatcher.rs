//! The delivery loop. One task claims due messages from the outbox, groups them by receiver
//! into requests of at most the receiver's `max_batch`, routes each request to one of the
//! receiver's endpoints and spawns the attempt; attempts run concurrently (at most
//! `max_in_flight`) on one pooled HTTP client, and report back over a channel. The loop applies
//! the reports: circuit breakers, then the messages' new states, in one outbox transaction.
//!
//! Routing: an endpoint is chosen at random in proportion to its weight among the endpoints
//! whose circuit lets a request through. When none does, the request waits (without counting
//! an attempt) until the first circuit lets a trial through.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, mpsc, watch};

use super::outbox::Receiver;
use super::{Webhooks, breaker::Breaker, now_ms, retry, signing};
use crate::storage::OutboxStore;
use crate::storage::outbox::{Due, Endpoint, Finish, Next};

/// Most messages claimed per round.
const CLAIM: usize = 2_000;

/// One attempt's report.
struct Attempt {
    receiver: String,
    endpoint: i64,
    messages: Vec<Due>,
    status: Option<u16>,
    error: Option<String>,
}

impl Attempt {
    fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// The body and `webhook-id` of one request. A receiver with `max_batch` 1 gets each message
/// as it is; one that takes batches gets a JSON array of `{"id", ...message}` objects, under a
/// `webhook-id` derived from the ids inside (the same batch always has the same id).
fn request_body(receiver: &Receiver, messages: &[Due]) -> (String, String) {
    if receiver.max_batch <= 1 {
        let m = &messages[0];
        return (m.id.clone(), m.payload.clone());
    }
    let mut hash = Sha256::new();
    let mut body = String::from("[");
    for (i, m) in messages.iter().enumerate() {
        hash.update(m.id.as_bytes());
        hash.update(b"\n");
        if i > 0 {
            body.push(',');
        }
        // `{"id":"msg_..",` + the payload object without its opening brace.
        body.push_str(&format!("{{\"id\":\"{}\",", m.id));
        body.push_str(&m.payload[1..]);
    }
    body.push(']');
    (
        format!("batch_{}", hex::encode(&hash.finalize()[..12])),
        body,
    )
}

/// Picks an endpoint by weight among those whose circuit would let a request through.
fn route(
    endpoints: &[Endpoint],
    breakers: &mut std::collections::HashMap<i64, Breaker>,
    config: &crate::config::WebhookConfig,
    now: i64,
) -> Option<Endpoint> {
    let open: Vec<&Endpoint> = endpoints
        .iter()
        .filter(|e| {
            e.weight > 0
                && breakers
                    .entry(e.id)
                    .or_insert_with(|| {
                        Breaker::new(
                            config.breaker_failures.max(1),
                            (config.breaker_open_secs * 1_000.0) as i64,
                        )
                    })
                    .would_allow(now)
        })
        .collect();
    let total: u32 = open.iter().map(|e| e.weight).sum();
    if total == 0 {
        return None;
    }
    let mut pick = rand::rng().random_range(0..total);
    let chosen = open
        .into_iter()
        .find(|e| {
            if pick < e.weight {
                true
            } else {
                pick -= e.weight;
                false
            }
        })?
        .clone();
    breakers
        .get_mut(&chosen.id)
        .expect("made above")
        .allow(now)
        .then_some(chosen)
}

async fn attempt(
    client: reqwest::Client,
    receiver: Arc<Receiver>,
    endpoint: Endpoint,
    messages: Vec<Due>,
) -> Attempt {
    let (msg_id, body) = request_body(&receiver, &messages);
    let now = now_ms();
    let (id, timestamp, signature) = signing::headers(
        &receiver.live_secrets(now),
        &msg_id,
        now / 1_000,
        body.as_bytes(),
    );
    let started = Instant::now();
    let sent = client
        .post(&endpoint.url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp)
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    metrics::histogram!("learnpulse_webhook_attempt_seconds", "receiver" => receiver.name.clone())
        .record(started.elapsed().as_secs_f64());
    let (status, error) = match sent {
        Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None),
        Ok(response) => (
            Some(response.status().as_u16()),
            Some(format!("answered {}", response.status())),
        ),
        Err(e) => (None, Some(error_text(&e))),
    };
    Attempt {
        receiver: receiver.name.clone(),
        endpoint: endpoint.id,
        messages,
        status,
        error,
    }
}

fn error_text(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        e.to_string()
    }
}

/// Applies attempt reports: breakers first, then each message's next state.
fn settle(webhooks: &Webhooks, reports: Vec<Attempt>) -> Vec<Finish> {
    let now = now_ms();
    let mut finished = Vec::new();
    let mut breakers = webhooks.breakers.lock().unwrap();
    for report in reports {
        if let Some(b) = breakers.get_mut(&report.endpoint) {
            if report.succeeded() {
                b.success();
            } else {
                b.failure(now);
            }
            metrics::gauge!("learnpulse_webhook_circuit_open", "endpoint" => report.endpoint.to_string())
                .set(if b.state() == super::breaker::State::Closed { 0.0 } else { 1.0 });
        }
        let outcome = if report.succeeded() {
            "delivered"
        } else {
            "failed"
        };
        metrics::counter!("learnpulse_webhook_attempts_total", "receiver" => report.receiver.clone(), "outcome" => outcome)
            .increment(1);
        let succeeded = report.succeeded();
        for m in report.messages {
            let next = if succeeded {
                Next::Delivered
            } else {
                let jitter: f64 = rand::random();
                match retry::next_wait_ms(
                    &webhooks.config.retry_schedule_secs,
                    m.attempts + 1,
                    jitter,
                ) {
                    Some(wait) => Next::RetryAt(now + wait as i64),
                    None => Next::Dead,
                }
            };
            let counter = match next {
                Next::Delivered => "delivered",
                Next::RetryAt(_) => "retrying",
                Next::Dead => "dead",
            };
            metrics::counter!("learnpulse_webhook_messages_total", "receiver" => report.receiver.clone(), "outcome" => counter)
                .increment(1);
            finished.push(Finish {
                id: m.id,
                endpoint: Some(report.endpoint),
                status: report.status,
                error: report.error.clone(),
                attempted: true,
                next,
            });
        }
    }
    finished
}

/// The value, or `None` after logging the error: the loop goes on either way.
fn logged<T>(result: Result<T, crate::storage::StoreError>, what: &str) -> Option<T> {
    result
        .map_err(|e| tracing::error!(error = %e, "{what}"))
        .ok()
}

/// Runs until shutdown.
pub async fn run(webhooks: Arc<Webhooks>, mut shutdown: watch::Receiver<bool>) {
    let config = webhooks.config.clone();
    let timeout = Duration::from_secs_f64(config.timeout_secs.max(0.1));
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(config.max_in_flight)
        .user_agent(concat!("learnpulse/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("an HTTP client");
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    let (report_tx, mut reports) = mpsc::unbounded_channel::<Attempt>();
    let mut last_prune = Instant::now() - Duration::from_secs(3_600);
    let mut last_gauge = Instant::now() - Duration::from_secs(3_600);
    let store = webhooks.outbox.store();
    loop {
        if *shutdown.borrow() {
            return;
        }
        // 1. Settle what has come back.
        let mut done = Vec::new();
        while let Ok(report) = reports.try_recv() {
            done.push(report);
        }
        if !done.is_empty() {
            let finished = settle(&webhooks, done);
            logged(
                store.finish(finished, now_ms()).await,
                "cannot record webhook attempts",
            );
        }
        if last_gauge.elapsed() > Duration::from_secs(1) {
            last_gauge = Instant::now();
            let total = store.pending_total().await;
            if let Some(total) = logged(total, "cannot count pending webhook messages") {
                metrics::gauge!("learnpulse_webhook_pending").set(total as f64);
            }
        }
        if last_prune.elapsed() > Duration::from_secs(600) {
            last_prune = Instant::now();
            let keep_ms = config.keep_delivered_hours as i64 * 3_600_000;
            let pruned = store.prune_delivered(now_ms() - keep_ms).await;
            logged(pruned, "cannot prune delivered webhook messages");
        }
        // 2. Claim what is due; the lease outlasts an attempt.
        let now = now_ms();
        let lease = now + timeout.as_millis() as i64 + 5_000;
        let claimed = store.claim_due(now, lease, CLAIM).await;
        let due = logged(claimed, "cannot read the webhook outbox").unwrap_or_default();
        if due.is_empty() {
            let next = store.next_due_ms().await;
            let next = logged(next, "cannot read the webhook outbox").flatten();
            let wait = next.map_or(1_000, |t| (t - now_ms()).clamp(5, 1_000)) as u64;
            tokio::select! {
                _ = webhooks.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                Some(report) = reports.recv() => {
                    // Put it back in front of the next settlement.
                    let _ = report_tx.send(report);
                }
                _ = shutdown.changed() => return,
            }
            continue;
        }
        // 3. Group by receiver, batch, route, send.
        let mut by_receiver: BTreeMap<i64, Vec<Due>> = BTreeMap::new();
        for d in due {
            by_receiver.entry(d.receiver).or_default().push(d);
        }
        let mut waiting = Vec::new();
        for (receiver_id, messages) in by_receiver {
            let Some(receiver) = webhooks.outbox.receiver_by_id(receiver_id) else {
                continue; // deleted meanwhile: its messages went with it
            };
            let mut messages = messages.into_iter().peekable();
            while messages.peek().is_some() {
                let chunk: Vec<Due> = messages.by_ref().take(receiver.max_batch).collect();
                let now = now_ms();
                let endpoint = {
                    let mut breakers = webhooks.breakers.lock().unwrap();
                    route(&receiver.endpoints, &mut breakers, &config, now).ok_or_else(|| {
                        receiver
                            .endpoints
                            .iter()
                            .filter_map(|e| breakers.get(&e.id).and_then(Breaker::reopens_at_ms))
                            .min()
                            .unwrap_or(now + 1_000)
                    })
                };
                match endpoint {
                    Ok(endpoint) => {
                        let permit = in_flight.clone().acquire_owned().await.expect("open");
                        let (client, receiver, tx) =
                            (client.clone(), receiver.clone(), report_tx.clone());
                        tokio::spawn(async move {
                            let report = attempt(client, receiver, endpoint, chunk).await;
                            drop(permit);
                            let _ = tx.send(report);
                        });
                    }
                    // Every circuit is open: wait for the first trial, no attempt counted.
                    Err(reopens_at) => waiting.extend(chunk.into_iter().map(|m| Finish {
                        id: m.id,
                        endpoint: None,
                        status: None,
                        error: Some("every endpoint's circuit is open".into()),
                        attempted: false,
                        next: Next::RetryAt(reopens_at.max(now_ms() + 10)),
                    })),
                }
            }
        }
        if !waiting.is_empty() {
            let result = store.finish(waiting, now_ms()).await;
            logged(result, "cannot record webhook attempts");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver(max_batch: usize) -> Receiver {
        Receiver {
            id: 1,
            tenant: 1,
            name: "lms".into(),
            max_batch,
            events: vec![crate::delivery::EVENT_DECISION.into()],
            kinds: vec![],
            cognitive_data: false,
            secrets: vec![],
            endpoints: vec![],
            created_ms: 0,
        }
    }

    fn due(id: &str) -> Due {
        Due {
            id: id.into(),
            receiver: 1,
            payload: r#"{"type":"intervention.decided","data":{}}"#.into(),
            attempts: 0,
        }
    }

    #[test]
    fn batches_are_arrays_of_messages_with_their_ids() {
        let (id, body) = request_body(&receiver(10), &[due("msg_1_1"), due("msg_2_1")]);
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed[1]["id"], "msg_2_1");
        assert_eq!(parsed[0]["type"], "intervention.decided");
        assert!(id.starts_with("batch_"));
        let (again, _) = request_body(&receiver(10), &[due("msg_1_1"), due("msg_2_1")]);
        assert_eq!(id, again, "a retried batch keeps its id");
        let (single, body) = request_body(&receiver(1), &[due("msg_3_1")]);
        assert_eq!((single.as_str(), body.starts_with('{')), ("msg_3_1", true));
    }

    #[test]
    fn routing_follows_weights_and_avoids_open_circuits() {
        let config = crate::config::WebhookConfig::default();
        let endpoints = vec![
            Endpoint {
                id: 1,
                url: "a".into(),
                weight: 3,
            },
            Endpoint {
                id: 2,
                url: "b".into(),
                weight: 1,
            },
        ];
        let mut breakers = std::collections::HashMap::new();
        let picks: Vec<i64> = (0..4_000)
            .map(|_| route(&endpoints, &mut breakers, &config, 0).unwrap().id)
            .collect();
        let share = picks.iter().filter(|&&id| id == 1).count() as f64 / 4_000.0;
        assert!((0.70..0.80).contains(&share), "3:1 weights gave {share}");
        for _ in 0..config.breaker_failures {
            breakers.get_mut(&1).unwrap().failure(0);
        }
        assert!((0..100).all(|_| route(&endpoints, &mut breakers, &config, 1).unwrap().id == 2));
        breakers.get_mut(&2).unwrap().failure(0);
        for _ in 0..config.breaker_failures {
            breakers.get_mut(&2).unwrap().failure(0);
        }
        assert!(route(&endpoints, &mut breakers, &config, 1).is_none());
    }
}
