//! What the privacy side keeps: sealed tenant secrets, policies and rosters, consents, the vault,
//! re-identifications and differential-privacy budgets. One trait, implemented per backend.

use uuid::Uuid;

use super::{StoreError, TenantId};

/// A tenant secret as stored: sealed under the master key.
#[derive(Debug, Clone)]
pub struct SealedSecret {
    /// `pseudonym` or `vault`.
    pub purpose: String,
    pub version: u32,
    pub sealed: Vec<u8>,
}

/// A tenant's stored privacy settings.
#[derive(Debug, Clone, Default)]
pub struct StoredSettings {
    /// The policy as JSON, when one was set.
    pub policy: Option<String>,
    pub roster_sealed: Option<Vec<u8>>,
}

/// One release of differentially private analytics.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub analyst: String,
    /// The query, as the analyst sent it.
    pub query: serde_json::Value,
    pub epsilon: f64,
    pub at_us: i64,
}

/// Why a spend was refused.
#[derive(Debug)]
pub enum SpendError {
    /// The spend would take the analyst past their budget; nothing was spent.
    Exceeded {
        spent: f64,
        total: f64,
    },
    Store(StoreError),
}

storage_trait! {
pub trait PrivacyStore {
    async fn tenant_secrets(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<SealedSecret>, StoreError>;
    async fn insert_tenant_secret(
        &self,
        tenant: TenantId,
        secret: SealedSecret,
    ) -> Result<(), StoreError>;
    async fn privacy_settings(
        &self,
        tenant: TenantId,
    ) -> Result<StoredSettings, StoreError>;
    async fn set_policy(
        &self,
        tenant: TenantId,
        policy_json: String,
    ) -> Result<(), StoreError>;
    async fn set_roster(
        &self,
        tenant: TenantId,
        sealed: Vec<u8>,
    ) -> Result<(), StoreError>;
    /// Every current consent record of the tenant: (learner pseudonym, record JSON).
    async fn consents(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<(String, String)>, StoreError>;
    /// Replaces a learner's consent record and appends the change to its history.
    async fn set_consent(
        &self,
        tenant: TenantId,
        learner: String,
        record_json: String,
        by_key: String,
    ) -> Result<(), StoreError>;
    /// Every change of a learner's consent record: (record JSON, by key, at).
    async fn consent_history(
        &self,
        tenant: TenantId,
        learner: String,
    ) -> Result<Vec<(String, String, i64)>, StoreError>;
    /// Removes the consent records and their history of these learners; returns rows removed.
    async fn erase_consents(
        &self,
        tenant: TenantId,
        learners: Vec<String>,
    ) -> Result<u64, StoreError>;
    async fn vault_entry(
        &self,
        tenant: TenantId,
        statement: Uuid,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    async fn record_reidentification(
        &self,
        tenant: TenantId,
        statement: Uuid,
        placeholder: String,
        by_key: String,
    ) -> Result<(), StoreError>;
    /// Spends `epsilon` of the analyst's `total` budget and records the release, atomically:
    /// concurrent spends never take the remaining budget below zero.
    async fn spend_budget(
        &self,
        tenant: TenantId,
        analyst: String,
        epsilon: f64,
        total: f64,
        query: String,
    ) -> Result<f64, SpendError>;
    async fn budget_spent(
        &self,
        tenant: TenantId,
        analyst: String,
    ) -> Result<f64, StoreError>;
    /// What each analyst of the tenant has spent: (analyst key, ε spent).
    async fn dp_spent(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<(String, f64)>, StoreError>;
    /// Releases, newest first; one analyst's when `analyst` is given.
    async fn ledger(
        &self,
        tenant: TenantId,
        analyst: Option<String>,
    ) -> Result<Vec<LedgerEntry>, StoreError>;
}
}
