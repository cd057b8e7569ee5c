//! Engine snapshots: the learner engines' state per tenant at one log sequence number, so that a
//! restart reads the newest snapshot and only the log's tail instead of the whole log.
//!
//! A snapshot is derived data. Storage keeps the bytes and the sequence number they cover;
//! `crate::snapshot` encodes, checks and decodes them, and falls back to a full replay when a
//! snapshot is missing, corrupt or made for another model.
//!
//! Learners' states are kept one by one beside the set ([`KeptLearner`]): each snapshot writes
//! those that changed since the previous one, in the same transaction, so that the rows and
//! the set always describe the same point of the log. A process that does not hold a learner
//! in memory loads it from here.

use super::{StoreError, TenantId};

/// One tenant's snapshot as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub tenant: TenantId,
    /// Every log entry up to and including this sequence number is in it.
    pub covers_seq: i64,
    pub body: Vec<u8>,
    pub created_us: i64,
}

/// One learner's state as kept: the state after every log entry through `covers_seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptLearner {
    pub tenant: TenantId,
    pub learner: String,
    pub covers_seq: i64,
    pub body: Vec<u8>,
}

storage_trait! {
/// Engine snapshots, one set per sequence number.
pub trait SnapshotStore {
    /// Stores a set of snapshots (one per tenant, all covering the same sequence number),
    /// deletes older sets and writes the learners that changed since the last set, in one
    /// transaction.
    async fn save_snapshots(
        &self,
        snapshots: Vec<Snapshot>,
        learners: Vec<KeptLearner>,
    ) -> Result<(), StoreError>;

    /// The newest set of snapshots, when there is one.
    async fn latest_snapshots(&self) -> Result<Vec<Snapshot>, StoreError>;

    /// The sequence number the newest set covers (0 when there is none).
    async fn latest_snapshot_covers(&self) -> Result<i64, StoreError>;

    /// These learners' kept states, those that are kept.
    async fn kept_learners(
        &self,
        tenant: TenantId,
        learners: Vec<String>,
    ) -> Result<Vec<KeptLearner>, StoreError>;

    /// After an erasure: replaces the tenant's snapshot with one that no longer holds the
    /// erased learners (when given) and deletes their kept states, in one transaction.
    async fn scrub_snapshot(
        &self,
        snapshot: Option<Snapshot>,
        tenant: TenantId,
        erased: Vec<String>,
    ) -> Result<(), StoreError>;

    /// Deletes every snapshot set (the next restart replays the whole log; kept learner states
    /// are then not used until a new set is saved).
    async fn delete_snapshots(&self) -> Result<(), StoreError>;
}
}
