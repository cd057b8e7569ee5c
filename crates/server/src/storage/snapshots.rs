//! Engine snapshots: the learner engines' state per tenant at one log sequence number, so that a
//! restart reads the newest snapshot and only the log's tail instead of the whole log.
//!
//! A snapshot is derived data. Storage keeps the bytes and the sequence number they cover;
//! `crate::snapshot` encodes, checks and decodes them, and falls back to a full replay when a
//! snapshot is missing, corrupt or made for another model.

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

storage_trait! {
/// Engine snapshots, one set per sequence number.
pub trait SnapshotStore {
    /// Stores a set of snapshots (one per tenant, all covering the same sequence number) and
    /// deletes older sets, in one transaction.
    async fn save_snapshots(&self, snapshots: Vec<Snapshot>) -> Result<(), StoreError>;

    /// The newest set of snapshots, when there is one.
    async fn latest_snapshots(&self) -> Result<Vec<Snapshot>, StoreError>;

    /// Deletes every snapshot (after an erasure or a purge, so that no copy of erased state
    /// survives in one; the next restart replays the log).
    async fn delete_snapshots(&self) -> Result<(), StoreError>;
}
}
