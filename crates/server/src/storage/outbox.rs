//! The webhook outbox as stored: receivers (with their endpoints and signing secrets, sealed by
//! `crate::delivery` before they get here) and every message owed to them.
//!
//! Messages are written after the events that caused them have committed, off the ingest path.
//! Nothing is lost in the gap: the outbox keeps a *watermark*, the log sequence number through
//! which decisions have been turned into messages, written in the same transaction as those
//! messages (see `crate::delivery`). A message is pending, delivered or dead; the dispatcher
//! *claims* due messages by moving their next attempt past the attempt's time limit (a lease),
//! so they are not claimed twice while in flight.

use serde::{Deserialize, Serialize};

use super::{StoreError, TenantId};

/// A receiver's lists (event types, kinds) as stored: JSON text.
pub(crate) fn json(list: &[String]) -> String {
    serde_json::to_string(list).expect("strings serialise")
}

/// The stored JSON text of a list back (an unreadable one is empty).
pub(crate) fn parse_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// A message's state, as stored (`state` column).
pub const PENDING: i64 = 0;
pub const DELIVERED: i64 = 1;
pub const DEAD: i64 = 2;

pub fn state_name(state: i64) -> &'static str {
    match state {
        PENDING => "pending",
        DELIVERED => "delivered",
        _ => "dead",
    }
}

pub fn state_code(name: &str) -> Option<i64> {
    match name {
        "pending" => Some(PENDING),
        "delivered" => Some(DELIVERED),
        "dead" => Some(DEAD),
        _ => None,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Endpoint {
    #[serde(default)]
    pub id: i64,
    /// An http(s) URL.
    #[schema(pattern = "^https?://[^/?#\\s]+")]
    pub url: String,
    /// Share of the receiver's messages this endpoint gets while its circuit is closed (0 to
    /// 1000; 0: a standby, used only while the others' circuits are open).
    #[serde(default = "one")]
    #[schema(maximum = 1000)]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// A receiver as stored: its secrets sealed (only `crate::delivery` opens them).
#[derive(Debug, Clone)]
pub struct ReceiverRow {
    pub id: i64,
    pub tenant: TenantId,
    pub name: String,
    pub max_batch: usize,
    pub events: Vec<String>,
    pub kinds: Vec<String>,
    pub cognitive_data: bool,
    pub sealed_secrets: Vec<u8>,
    pub endpoints: Vec<Endpoint>,
    pub created_ms: i64,
}

/// Seals a new receiver's secrets once its id is known (the id is bound into the seal).
pub type SealFor = Box<dyn FnOnce(i64) -> Vec<u8> + Send>;

/// A message to insert.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Derived from what the message is about, so that enqueuing it twice is a no-op.
    pub id: String,
    pub receiver: i64,
    pub tenant: TenantId,
    pub learner: String,
    pub seq: i64,
    pub payload: String,
}

/// A claimed message, ready to send.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: String,
    pub receiver: i64,
    pub payload: String,
    pub attempts: u32,
}

/// How an attempt ended and what happens to the message next.
#[derive(Debug, Clone)]
pub struct Finish {
    pub id: String,
    pub endpoint: Option<i64>,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// Counts as an attempt (false when the message only waited for an open circuit).
    pub attempted: bool,
    pub next: Next,
}

#[derive(Debug, Clone, Copy)]
pub enum Next {
    Delivered,
    RetryAt(i64),
    Dead,
}

impl Next {
    /// (state, next attempt, done at) of a message that ends this way at `now_ms`.
    pub fn columns(self, now_ms: i64) -> (i64, i64, Option<i64>) {
        match self {
            Next::Delivered => (DELIVERED, now_ms, Some(now_ms)),
            Next::RetryAt(at) => (PENDING, at, None),
            Next::Dead => (DEAD, now_ms, Some(now_ms)),
        }
    }
}

/// A message as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: String,
    pub seq: i64,
    pub state: &'static str,
    pub attempts: u32,
    pub next_attempt_ms: Option<i64>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub endpoint: Option<i64>,
    pub created_ms: i64,
    pub done_ms: Option<i64>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

#[derive(Debug, Default, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
}

impl Counts {
    pub fn add(&mut self, state: i64, n: u64) {
        match state {
            PENDING => self.pending = n,
            DELIVERED => self.delivered = n,
            _ => self.dead = n,
        }
    }
}

storage_trait! {
/// Webhook receivers and their messages.
pub trait OutboxStore {
    /// Every receiver of every tenant (the delivery side caches them).
    async fn receiver_rows(&self) -> Result<Vec<ReceiverRow>, StoreError>;

    /// Creates a receiver with its endpoints; `seal` gives its sealed secrets once its id is
    /// known. `Ok(None)` when the tenant already has a receiver of that name.
    async fn insert_receiver(&self, row: ReceiverRow, seal: SealFor) -> Result<Option<i64>, StoreError>;

    /// Deletes a receiver with its endpoints and messages; whether the tenant had it.
    async fn delete_receiver(&self, tenant: TenantId, id: i64) -> Result<bool, StoreError>;

    async fn set_receiver_secrets(&self, id: i64, sealed: Vec<u8>) -> Result<(), StoreError>;

    /// The sequence number through which decisions have been enqueued.
    async fn outbox_watermark(&self) -> Result<i64, StoreError>;

    /// Inserts messages (ids already present are skipped; so are messages of receivers that no
    /// longer exist) and, when given, moves the watermark up to `through_seq`, in one
    /// transaction. Returns how many were inserted.
    async fn enqueue(&self, messages: Vec<NewMessage>, through_seq: Option<i64>, now_ms: i64) -> Result<usize, StoreError>;

    /// Makes every leased message due by `now_ms` (at start: no attempt of ours is in flight).
    async fn release_leases(&self, now_ms: i64) -> Result<u64, StoreError>;

    /// Claims up to `limit` due messages: their next attempt moves to `lease_until_ms`, so that
    /// they are not claimed again while in flight (and are due again if the process dies).
    async fn claim_due(&self, now_ms: i64, lease_until_ms: i64, limit: usize) -> Result<Vec<Due>, StoreError>;

    /// When the next pending message falls due, if any is pending.
    async fn next_due_ms(&self) -> Result<Option<i64>, StoreError>;

    /// Records how attempts ended, in one transaction.
    async fn finish(&self, finished: Vec<Finish>, now_ms: i64) -> Result<(), StoreError>;

    async fn counts(&self, receiver: i64) -> Result<Counts, StoreError>;

    /// Pending messages over every receiver (the gauge).
    async fn pending_total(&self) -> Result<u64, StoreError>;

    /// A receiver's messages in one state, newest first.
    async fn messages(&self, receiver: i64, state: i64, limit: usize) -> Result<Vec<MessageView>, StoreError>;

    /// Moves dead letters back to pending, due now, with their attempts reset (all of the
    /// receiver's, or the ones named). Returns how many.
    async fn replay_dead(&self, receiver: i64, ids: Option<Vec<String>>, now_ms: i64) -> Result<usize, StoreError>;

    /// Deletes delivered messages done before `before_ms`; returns how many.
    async fn prune_delivered(&self, before_ms: i64) -> Result<usize, StoreError>;

    /// Deletes every message about these learners (erasure); returns how many.
    async fn forget_learners(&self, tenant: TenantId, learners: Vec<String>) -> Result<usize, StoreError>;
}
}
