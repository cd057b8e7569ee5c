//! What the audit and compliance side keeps: the hash chain, its signed checkpoints, server-wide
//! secrets and each tenant's rule overrides.

use learnpulse_compliance::audit::{Checkpoint, Entry};

use super::StoreError;

/// A data-subject request (GDPR Art. 15 access, Art. 17 erasure).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SubjectRequest {
    pub id: i64,
    pub tenant: i64,
    /// `access` or `erasure`.
    pub kind: String,
    /// The learner's pseudonym.
    pub learner: String,
    pub received_us: i64,
    /// One month after receipt (Art. 12(3)).
    pub deadline_us: i64,
    pub completed_us: Option<i64>,
    /// What was done, as JSON text.
    pub summary: Option<String>,
}

/// A compliance incident: a rule that started failing, open until it passes again.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Incident {
    pub id: i64,
    pub tenant: i64,
    pub rule: String,
    pub severity: String,
    pub opened_us: i64,
    pub closed_us: Option<i64>,
    pub evidence: String,
    pub subjects: Vec<String>,
    /// What remediation did (and whether it was reversed).
    #[schema(value_type = Vec<Object>)]
    pub actions: serde_json::Value,
}

storage_trait! {
pub trait AuditStore {
    /// The tenant's incidents, newest first; only open ones when `open_only`.
    async fn incidents(
        &self,
        tenant: i64,
        open_only: bool,
    ) -> Result<Vec<Incident>, StoreError>;
    /// Records a new incident; returns its id.
    async fn open_incident(
        &self,
        incident: Incident,
    ) -> Result<i64, StoreError>;
    async fn close_incident(&self, id: i64) -> Result<(), StoreError>;
    async fn set_incident_actions(
        &self,
        id: i64,
        actions: serde_json::Value,
    ) -> Result<(), StoreError>;
    /// The last entry's sequence number (0 when there is none), and the hash of the last entry
    /// of each of `tenants` that has one, read at one instant.
    async fn audit_heads(
        &self,
        tenants: Vec<i64>,
    ) -> Result<(u64, std::collections::BTreeMap<i64, [u8; 32]>), StoreError>;
    /// Appends chained entries (and checkpoints of tenants' new heads) in one transaction.
    async fn append_audit(
        &self,
        entries: Vec<Entry>,
        checkpoints: Vec<Checkpoint>,
    ) -> Result<(), StoreError>;
    /// Entries after `after_seq`, in order, at most `limit`; one tenant's when given.
    async fn audit_entries(
        &self,
        after_seq: u64,
        limit: usize,
        tenant: Option<i64>,
    ) -> Result<Vec<Entry>, StoreError>;
    async fn audit_checkpoints(&self)
    -> Result<Vec<Checkpoint>, StoreError>;
    async fn server_secret(
        &self,
        purpose: &str,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// The tenant's compliance rule overrides (JSON), when set.
    async fn rule_overrides(
        &self,
        tenant: i64,
    ) -> Result<Option<String>, StoreError>;
    async fn set_rule_overrides(
        &self,
        tenant: i64,
        json: String,
    ) -> Result<(), StoreError>;
    /// Entries of one tenant written at or after `since_us`, in order.
    async fn audit_entries_since(
        &self,
        tenant: i64,
        since_us: i64,
    ) -> Result<Vec<Entry>, StoreError>;
    /// Entries of one tenant whose subject is one of `subjects`, in order.
    async fn audit_entries_about(
        &self,
        tenant: i64,
        subjects: Vec<String>,
    ) -> Result<Vec<Entry>, StoreError>;
    /// Records a data-subject request as received; returns its id.
    async fn open_request(
        &self,
        request: SubjectRequest,
    ) -> Result<i64, StoreError>;
    async fn complete_request(
        &self,
        id: i64,
        summary: String,
    ) -> Result<(), StoreError>;
    /// After an erasure: the tenant's requests about these learners keep their kind and dates but
    /// no longer name them (the audit chain links request and pseudonym).
    async fn unname_requests(
        &self,
        tenant: i64,
        learners: Vec<String>,
    ) -> Result<(), StoreError>;
    async fn requests(
        &self,
        tenant: i64,
    ) -> Result<Vec<SubjectRequest>, StoreError>;
    async fn insert_server_secret(
        &self,
        purpose: &str,
        sealed: Vec<u8>,
    ) -> Result<(), StoreError>;
}
}

/// Every entry after `after_seq` (one tenant's when given), in order, read page by page.
pub async fn entries_after(
    store: &impl AuditStore,
    after_seq: u64,
    tenant: Option<i64>,
) -> Result<Vec<Entry>, StoreError> {
    let mut entries: Vec<Entry> = Vec::new();
    loop {
        let after = entries.last().map_or(after_seq, |e| e.seq);
        let page = store.audit_entries(after, 10_000, tenant).await?;
        if page.is_empty() {
            return Ok(entries);
        }
        entries.extend(page);
    }
}
