//! What the audit and compliance side keeps: the hash chain, its signed checkpoints, server-wide
//! secrets and each tenant's rule overrides.

use std::future::Future;

use learnpulse_compliance::audit::{Checkpoint, Entry};

use super::StoreError;

pub trait AuditStore: Send + Sync {
    /// The last entry's sequence number and hash.
    fn audit_head(
        &self,
    ) -> impl Future<Output = Result<Option<(u64, [u8; 32])>, StoreError>> + Send;
    /// Appends chained entries (and a checkpoint of the new head) in one transaction.
    fn append_audit(
        &self,
        entries: Vec<Entry>,
        checkpoint: Option<Checkpoint>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Entries after `after_seq`, in order, at most `limit`; one tenant's when given.
    fn audit_entries(
        &self,
        after_seq: u64,
        limit: usize,
        tenant: Option<i64>,
    ) -> impl Future<Output = Result<Vec<Entry>, StoreError>> + Send;
    fn audit_checkpoints(&self)
    -> impl Future<Output = Result<Vec<Checkpoint>, StoreError>> + Send;
    fn server_secret(
        &self,
        purpose: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    /// The tenant's compliance rule overrides (JSON), when set.
    fn rule_overrides(
        &self,
        tenant: i64,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    fn set_rule_overrides(
        &self,
        tenant: i64,
        json: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn insert_server_secret(
        &self,
        purpose: &str,
        sealed: Vec<u8>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
