//! Outbound delivery: intervention decisions sent to webhook receivers, reliably.
//!
//! The path of a decision: the engine's log follower ([`crate::follow`]) hands the decisions of
//! each batch of log entries to [`Webhooks::enqueue`] over a channel; the enqueuer writes one
//! message per interested receiver into the durable outbox ([`crate::storage::OutboxStore`],
//! opened and cached by [`outbox`]) and wakes the [`dispatcher`], which claims
//! due messages, picks an endpoint of the receiver by weight among those whose circuit lets it
//! through, signs ([`signing`]) and posts them, and records the outcome: delivered, retried
//! later on the [`retry`] schedule, or dead-lettered. A [`breaker`] per endpoint stops traffic
//! to an endpoint that keeps failing and lets a trial through after a while.
//!
//! - [`outbox`]: receivers with their secrets opened, over the stored outbox.
//! - [`dispatcher`]: the delivery loop and its metrics.
//! - [`routes`]: `/v1/webhooks`: receivers, secret rotation, messages, dead-letter replay.
//! - [`signing`], [`retry`], [`breaker`]: the pure pieces.

pub mod breaker;
pub mod dispatcher;
pub mod outbox;
pub mod retry;
pub mod routes;
pub mod signing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use learnpulse_core::intervene::Decision;
use serde_json::json;
use tokio::sync::{Notify, mpsc};

use crate::config::WebhookConfig;
use crate::storage::TenantId;
use crate::storage::outbox::NewMessage;
use crate::storage::{OutboxStore, StoreError};
use breaker::Breaker;
use outbox::{Outbox, Receiver};

/// The event type of an intervention decision's message.
pub const EVENT_DECISION: &str = "intervention.decided";
/// The event type of a compliance incident's message (the `notify_dpo` remediation).
pub const EVENT_INCIDENT: &str = "compliance.incident";
pub const EVENT_TYPES: [&str; 2] = [EVENT_DECISION, EVENT_INCIDENT];

/// One decision of the engine's follower, on its way to the outbox.
#[derive(Debug, Clone)]
pub struct Decided {
    pub tenant: TenantId,
    pub seq: i64,
    pub decision: Decision,
}

/// The webhook subsystem: the outbox, the wake-up of the dispatcher, and the endpoints'
/// circuit breakers (owned by the dispatcher, read by the API).
pub struct Webhooks {
    pub outbox: Arc<Outbox>,
    pub config: WebhookConfig,
    wake: Notify,
    breakers: Mutex<HashMap<i64, Breaker>>,
}

pub fn now_ms() -> i64 {
    crate::storage::now_us() / 1_000
}

/// The Standard Webhooks payload of one decision: `type`, `timestamp`, `data`. The decision's
/// reasons name load signals (cognitive data) and go only to receivers that asked for them.
pub fn payload(receiver: &Receiver, tenant: TenantId, seq: i64, decision: &Decision) -> String {
    let mut data = crate::views::intervention_view(seq, decision, receiver.cognitive_data);
    data["tenant"] = tenant.into();
    envelope(EVENT_DECISION, data)
}

/// `{"type", "timestamp", "data"}`, the Standard Webhooks payload shape.
fn envelope(event_type: &str, data: serde_json::Value) -> String {
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({"type": event_type, "timestamp": timestamp, "data": data}).to_string()
}

impl Webhooks {
    pub fn new(outbox: Outbox, config: WebhookConfig) -> Webhooks {
        Webhooks {
            outbox: Arc::new(outbox),
            config,
            wake: Notify::new(),
            breakers: Mutex::default(),
        }
    }

    /// Turns decisions into messages for every receiver that wants them and writes them, with
    /// the watermark `through_seq`, in one transaction; then wakes the dispatcher.
    pub async fn enqueue(
        &self,
        decided: &[Decided],
        through_seq: i64,
    ) -> Result<usize, StoreError> {
        let mut messages = Vec::new();
        let mut receivers: HashMap<TenantId, Vec<Arc<Receiver>>> = HashMap::new();
        for d in decided {
            let wanted = receivers
                .entry(d.tenant)
                .or_insert_with(|| self.outbox.receivers(d.tenant));
            for r in wanted
                .iter()
                .filter(|r| r.wants_decision(d.decision.intervention.as_str()))
            {
                messages.push(NewMessage {
                    id: outbox::message_id(d.seq, r.id),
                    receiver: r.id,
                    tenant: d.tenant,
                    learner: d.decision.learner.clone(),
                    seq: d.seq,
                    payload: payload(r, d.tenant, d.seq, &d.decision),
                });
            }
        }
        let inserted = self
            .outbox
            .store()
            .enqueue(messages, Some(through_seq), now_ms())
            .await?;
        self.enqueued(inserted);
        Ok(inserted)
    }

    /// Queues a compliance incident for every receiver of the tenant that takes
    /// `compliance.incident` events; returns how many.
    pub async fn enqueue_incident(
        &self,
        tenant: TenantId,
        incident: i64,
        data: serde_json::Value,
    ) -> Result<usize, StoreError> {
        let body = envelope(EVENT_INCIDENT, data);
        let messages: Vec<NewMessage> = self
            .outbox
            .receivers(tenant)
            .iter()
            .filter(|r| r.takes(EVENT_INCIDENT))
            .map(|r| NewMessage {
                id: outbox::incident_message_id(incident, r.id),
                receiver: r.id,
                tenant,
                learner: String::new(),
                seq: 0,
                payload: body.clone(),
            })
            .collect();
        let wanted = messages.len();
        let inserted = self
            .outbox
            .store()
            .enqueue(messages, None, now_ms())
            .await?;
        self.enqueued(inserted);
        Ok(wanted)
    }

    fn enqueued(&self, inserted: usize) {
        if inserted > 0 {
            metrics::counter!("learnpulse_webhook_messages_enqueued_total")
                .increment(inserted as u64);
            self.wake.notify_one();
        }
    }

    /// Wakes the dispatcher (after a dead-letter replay).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The circuit state of an endpoint (closed until it has failed).
    pub fn circuit(&self, endpoint: i64) -> breaker::State {
        self.breakers
            .lock()
            .unwrap()
            .get(&endpoint)
            .map(Breaker::state)
            .unwrap_or(breaker::State::Closed)
    }

    /// Starts the enqueuer (fed by `decisions`) and the dispatcher; both end on shutdown.
    pub fn spawn(
        self: &Arc<Self>,
        mut decisions: mpsc::UnboundedReceiver<Vec<Decided>>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(mut batch) = decisions.recv().await {
                // Coalesce whatever else is waiting: one transaction for all of it.
                while let Ok(more) = decisions.try_recv() {
                    batch.extend(more);
                }
                let through = batch.iter().map(|d| d.seq).max().unwrap_or(0);
                if let Err(e) = this.enqueue(&batch, through).await {
                    tracing::error!(error = %e, "cannot write webhook messages to the outbox");
                }
            }
        });
        tokio::spawn(dispatcher::run(self.clone(), shutdown));
    }
}
