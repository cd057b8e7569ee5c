//! Tenants, their API keys and small per-tenant settings.

use serde::{Deserialize, Serialize};

use super::{StoreError, TenantId};

/// Roles of API keys. What each may do is decided in one table, `crate::auth::allowed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Ingest,
    Teacher,
    Researcher,
    Dpo,
    Tutor,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Ingest,
        Role::Teacher,
        Role::Researcher,
        Role::Dpo,
        Role::Tutor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ingest => "ingest",
            Role::Teacher => "teacher",
            Role::Researcher => "researcher",
            Role::Dpo => "dpo",
            Role::Tutor => "tutor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_us: i64,
}

/// An API key as stored: the secret only as its SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub key_id: String,
    pub tenant_id: TenantId,
    pub role: Role,
    pub secret_sha256: [u8; 32],
    pub label: Option<String>,
    pub created_us: i64,
    pub revoked_us: Option<i64>,
    /// After this the key no longer authenticates.
    pub expires_us: Option<i64>,
    /// Last successful use, recorded at most once per key-cache period (10 s).
    pub last_used_us: Option<i64>,
    /// The groups (classes) a teacher or tutor key may see; `None`: the whole tenant.
    pub groups: Option<Vec<String>>,
}

storage_trait! {
/// Tenants and API keys.
pub trait AccountStore {
    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError>;
    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError>;
    async fn insert_key(&self, key: ApiKeyRecord) -> Result<(), StoreError>;
    async fn key(
        &self,
        key_id: &str,
    ) -> Result<Option<ApiKeyRecord>, StoreError>;
    async fn keys(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Sets (or clears) a key's expiry; returns whether the tenant has that key.
    async fn set_key_expiry(
        &self,
        tenant: TenantId,
        key_id: &str,
        expires_us: Option<i64>,
    ) -> Result<bool, StoreError>;
    /// A named per-tenant setting (text), when set.
    async fn tenant_setting(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<Option<String>, StoreError>;
    async fn set_tenant_setting(
        &self,
        tenant: TenantId,
        name: &str,
        value: String,
    ) -> Result<(), StoreError>;
    /// Records a successful use of a key.
    async fn touch_key(
        &self,
        key_id: &str,
        at_us: i64,
    ) -> Result<(), StoreError>;
    /// Returns whether a live key of that tenant was revoked.
    async fn revoke_key(
        &self,
        tenant: TenantId,
        key_id: &str,
    ) -> Result<bool, StoreError>;
}
}
