//! Storage: the durable event log and the account tables (tenants, API keys).
//!
//! Only the implementations under this module write SQL. Each backend implements the
//! [`EventLog`] and [`AccountStore`] traits, and [`Storage`] is the enum of implementations the
//! rest of the server holds (the svix-server pattern): SQLite today, PostgreSQL when one machine
//! is not enough. The contract every implementation keeps:
//!
//! - [`EventLog::append`] returns only after the statements are committed under the configured
//!   [`Durability`]; concurrent appends are group-committed (many requests, one transaction).
//! - One append is atomic: all of its statements are stored, or none (a conflict rolls back that
//!   request only, never the other requests that share its transaction).
//! - Statements are ordered by a sequence number; `stored` timestamps increase with it.
//! - Every read is scoped to one tenant.

pub mod audit;
pub mod privacy;
pub mod sqlite;

use std::future::Future;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use learnpulse_core::LearningEvent;

pub use audit::{AuditStore, Incident, SubjectRequest};
pub use privacy::{LedgerEntry, PrivacyStore, SealedSecret, SpendError, StoredSettings};
pub use sqlite::SqliteStorage;

pub type TenantId = i64;

/// How hard a commit tries to survive failures. Documented in the README ("Durability").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Each group commit is fsynced before acknowledgement: survives process crashes and power
    /// loss (SQLite `synchronous=FULL`).
    #[default]
    Full,
    /// Commits reach the OS before acknowledgement, fsync happens at checkpoints: survives a
    /// process crash (`kill -9`), may lose the last commits on power loss (`synchronous=NORMAL`).
    Process,
}

/// A statement ready to be appended: validated, completed and serialised at the edge.
#[derive(Debug, Clone)]
pub struct NewStatement {
    pub id: Uuid,
    /// The statement as it will be served, without `stored` (assigned at commit).
    pub json: String,
    /// Hash of the statement's comparable form (xAPI statement comparison rules); two statements
    /// with the same id are "the same" iff their fingerprints are equal.
    pub fingerprint: [u8; 16],
    /// Canonical identifier of the actor (e.g. `mbox:mailto:a@b.c`), for the agent filter.
    pub actor: String,
    pub verb: String,
    /// Object activity id, when the object is an activity.
    pub activity: Option<String>,
    pub registration: Option<Uuid>,
    /// The statement this one voids, when its verb is `voided`.
    pub voids: Option<Uuid>,
    /// What the learner engine sees of it, when it is a learning event.
    pub event: Option<LearningEvent>,
    /// The learner's pseudonyms under older keys (after a key rotation), so that the engine
    /// keeps one history.
    pub previous_learner_ids: Vec<String>,
    /// What its placeholders replaced, sealed under the tenant's vault key (when the tenant keeps
    /// a vault); stored in the statement's own transaction.
    pub vault: Option<Vec<u8>>,
}

/// What an erasure removed from the event log and its satellites.
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct Erased {
    pub statements: u64,
    pub vault_entries: u64,
    pub actors: u64,
    pub index_rows: u64,
}

/// One committed statement, as the post-commit hook sees it.
#[derive(Debug, Clone, Copy)]
pub struct Committed<'a> {
    pub tenant: TenantId,
    pub seq: i64,
    pub statement: &'a NewStatement,
}

/// Called by the writer, in sequence order, after each group commit and before the requests are
/// acknowledged; it is how the learner engine sees every event exactly once and in log order.
pub type CommitHook = Box<dyn FnMut(&[Committed<'_>]) + Send>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A statement id is already taken by a different statement.
    #[error("statement {0} already exists with different content")]
    Conflict(Uuid),
    /// The store is shutting down or its writer is gone.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Internal(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Internal(e.to_string())
    }
}

/// Filters of `GET /xAPI/statements`, resolved at the edge into canonical values.
#[derive(Debug, Clone, Default)]
pub struct StatementQuery {
    pub agent: Option<String>,
    pub verb: Option<String>,
    pub activity: Option<String>,
    pub registration: Option<Uuid>,
    /// Only statements stored strictly after this time (microseconds since the epoch).
    pub since_us: Option<i64>,
    /// Only statements stored at or before this time.
    pub until_us: Option<i64>,
    pub limit: usize,
    pub ascending: bool,
    /// Paging cursor: continue after (or before, when descending) this sequence number.
    pub cursor: Option<i64>,
}

/// One page of statements (each a JSON text with `stored` included).
#[derive(Debug, Clone, Default)]
pub struct StatementPage {
    pub statements: Vec<String>,
    /// Cursor for the next page, when there is one.
    pub next_cursor: Option<i64>,
}

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
#[derive(Debug, Clone)]
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

/// The durable, ordered, tenant-scoped statement log.
pub trait EventLog: Send + Sync {
    /// Append one request's statements atomically; resolves after the commit. Statements whose
    /// id exists with the same fingerprint are accepted as no-ops.
    fn append(
        &self,
        tenant: TenantId,
        statements: Vec<NewStatement>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One statement by id. `voided` selects voided statements only (the xAPI
    /// `voidedStatementId` parameter); otherwise voided statements are not returned.
    fn statement(
        &self,
        tenant: TenantId,
        id: Uuid,
        voided: bool,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    fn query(
        &self,
        tenant: TenantId,
        query: StatementQuery,
    ) -> impl Future<Output = Result<StatementPage, StoreError>> + Send;

    /// Starts accepting appends; `hook` sees every committed statement, in order. Call after
    /// [`EventLog::replay`], so that the hook's consumer starts from the replayed state.
    fn start(&self, hook: CommitHook) -> Result<(), StoreError>;

    /// Every statement of every tenant in sequence order, for rebuilding derived state at start.
    /// Blocking; call before serving.
    fn replay(&self, visit: &mut dyn FnMut(TenantId, i64, &str)) -> Result<u64, StoreError>;

    /// Every statement of one tenant that is not voided, in sequence order, for analytics.
    /// Blocking; call from a blocking task.
    fn scan_tenant(&self, tenant: TenantId, visit: &mut dyn FnMut(&str))
    -> Result<u64, StoreError>;

    /// Removes a learner from the log: their statements and every statement whose JSON holds one
    /// of `needles`, their interned actor rows (`actor_ifis`), vault entries and index rows.
    fn erase_learner(
        &self,
        tenant: TenantId,
        needles: Vec<String>,
        actor_ifis: Vec<String>,
    ) -> impl Future<Output = Result<Erased, StoreError>> + Send;

    /// Removes the tenant's statements stored before `before_us` (retention), with their vault
    /// entries and index rows, and the actor rows left without statements.
    fn purge_before(
        &self,
        tenant: TenantId,
        before_us: i64,
    ) -> impl Future<Output = Result<Erased, StoreError>> + Send;

    /// How many of the tenant's statements were stored before `before_us` (retention).
    fn count_stored_before(
        &self,
        tenant: TenantId,
        before_us: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Stop the writer after it has committed everything queued.
    fn shutdown(&self);
}

/// Tenants and API keys.
pub trait AccountStore: Send + Sync {
    fn create_tenant(&self, name: &str) -> impl Future<Output = Result<Tenant, StoreError>> + Send;
    fn tenants(&self) -> impl Future<Output = Result<Vec<Tenant>, StoreError>> + Send;
    fn insert_key(&self, key: ApiKeyRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn key(
        &self,
        key_id: &str,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send;
    fn keys(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<Vec<ApiKeyRecord>, StoreError>> + Send;
    /// Returns whether a live key of that tenant was revoked.
    /// Sets (or clears) a key's expiry; returns whether the tenant has that key.
    fn set_key_expiry(
        &self,
        tenant: TenantId,
        key_id: &str,
        expires_us: Option<i64>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// A named per-tenant setting (text), when set.
    fn tenant_setting(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    fn set_tenant_setting(
        &self,
        tenant: TenantId,
        name: &str,
        value: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records a successful use of a key.
    fn touch_key(
        &self,
        key_id: &str,
        at_us: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn revoke_key(
        &self,
        tenant: TenantId,
        key_id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The storage backends. The rest of the server holds a `Storage` and never names a backend.
pub enum Storage {
    Sqlite(SqliteStorage),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Storage::Sqlite($s) => $e,
        }
    };
}

impl EventLog for Storage {
    async fn append(
        &self,
        tenant: TenantId,
        statements: Vec<NewStatement>,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.append(tenant, statements).await)
    }
    async fn statement(
        &self,
        tenant: TenantId,
        id: Uuid,
        voided: bool,
    ) -> Result<Option<String>, StoreError> {
        dispatch!(self, s => s.statement(tenant, id, voided).await)
    }
    async fn query(
        &self,
        tenant: TenantId,
        query: StatementQuery,
    ) -> Result<StatementPage, StoreError> {
        dispatch!(self, s => s.query(tenant, query).await)
    }
    fn start(&self, hook: CommitHook) -> Result<(), StoreError> {
        dispatch!(self, s => s.start(hook))
    }
    fn replay(&self, visit: &mut dyn FnMut(TenantId, i64, &str)) -> Result<u64, StoreError> {
        dispatch!(self, s => s.replay(visit))
    }
    async fn erase_learner(
        &self,
        tenant: TenantId,
        needles: Vec<String>,
        actor_ifis: Vec<String>,
    ) -> Result<Erased, StoreError> {
        dispatch!(self, s => s.erase_learner(tenant, needles, actor_ifis).await)
    }
    async fn purge_before(&self, tenant: TenantId, before_us: i64) -> Result<Erased, StoreError> {
        dispatch!(self, s => s.purge_before(tenant, before_us).await)
    }
    async fn count_stored_before(
        &self,
        tenant: TenantId,
        before_us: i64,
    ) -> Result<u64, StoreError> {
        dispatch!(self, s => s.count_stored_before(tenant, before_us).await)
    }
    fn scan_tenant(
        &self,
        tenant: TenantId,
        visit: &mut dyn FnMut(&str),
    ) -> Result<u64, StoreError> {
        dispatch!(self, s => s.scan_tenant(tenant, visit))
    }
    fn shutdown(&self) {
        dispatch!(self, s => s.shutdown())
    }
}

impl AccountStore for Storage {
    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        dispatch!(self, s => s.create_tenant(name).await)
    }
    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        dispatch!(self, s => s.tenants().await)
    }
    async fn insert_key(&self, key: ApiKeyRecord) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_key(key).await)
    }
    async fn key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        dispatch!(self, s => s.key(key_id).await)
    }
    async fn keys(&self, tenant: TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        dispatch!(self, s => s.keys(tenant).await)
    }
    async fn revoke_key(&self, tenant: TenantId, key_id: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => s.revoke_key(tenant, key_id).await)
    }
    async fn set_key_expiry(
        &self,
        tenant: TenantId,
        key_id: &str,
        expires_us: Option<i64>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.set_key_expiry(tenant, key_id, expires_us).await)
    }
    async fn tenant_setting(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        dispatch!(self, s => s.tenant_setting(tenant, name).await)
    }
    async fn set_tenant_setting(
        &self,
        tenant: TenantId,
        name: &str,
        value: String,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.set_tenant_setting(tenant, name, value).await)
    }
    async fn touch_key(&self, key_id: &str, at_us: i64) -> Result<(), StoreError> {
        dispatch!(self, s => s.touch_key(key_id, at_us).await)
    }
}

impl PrivacyStore for Storage {
    async fn tenant_secrets(&self, tenant: TenantId) -> Result<Vec<SealedSecret>, StoreError> {
        dispatch!(self, s => s.tenant_secrets(tenant).await)
    }
    async fn insert_tenant_secret(
        &self,
        tenant: TenantId,
        secret: SealedSecret,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_tenant_secret(tenant, secret).await)
    }
    async fn privacy_settings(&self, tenant: TenantId) -> Result<StoredSettings, StoreError> {
        dispatch!(self, s => s.privacy_settings(tenant).await)
    }
    async fn set_policy(&self, tenant: TenantId, policy_json: String) -> Result<(), StoreError> {
        dispatch!(self, s => s.set_policy(tenant, policy_json).await)
    }
    async fn set_roster(&self, tenant: TenantId, sealed: Vec<u8>) -> Result<(), StoreError> {
        dispatch!(self, s => s.set_roster(tenant, sealed).await)
    }
    async fn consents(&self, tenant: TenantId) -> Result<Vec<(String, String)>, StoreError> {
        dispatch!(self, s => s.consents(tenant).await)
    }
    async fn set_consent(
        &self,
        tenant: TenantId,
        learner: String,
        record_json: String,
        by_key: String,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.set_consent(tenant, learner, record_json, by_key).await)
    }
    async fn consent_history(
        &self,
        tenant: TenantId,
        learner: String,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        dispatch!(self, s => s.consent_history(tenant, learner).await)
    }
    async fn erase_consents(
        &self,
        tenant: TenantId,
        learners: Vec<String>,
    ) -> Result<u64, StoreError> {
        dispatch!(self, s => s.erase_consents(tenant, learners).await)
    }
    async fn vault_entry(
        &self,
        tenant: TenantId,
        statement: Uuid,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self, s => s.vault_entry(tenant, statement).await)
    }
    async fn record_reidentification(
        &self,
        tenant: TenantId,
        statement: Uuid,
        placeholder: String,
        by_key: String,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.record_reidentification(tenant, statement, placeholder, by_key).await)
    }
    async fn spend_budget(
        &self,
        tenant: TenantId,
        analyst: String,
        epsilon: f64,
        total: f64,
        query: String,
    ) -> Result<f64, SpendError> {
        dispatch!(self, s => s.spend_budget(tenant, analyst, epsilon, total, query).await)
    }
    async fn budget_spent(&self, tenant: TenantId, analyst: String) -> Result<f64, StoreError> {
        dispatch!(self, s => s.budget_spent(tenant, analyst).await)
    }
    async fn dp_spent(&self, tenant: TenantId) -> Result<Vec<(String, f64)>, StoreError> {
        dispatch!(self, s => s.dp_spent(tenant).await)
    }
    async fn ledger(
        &self,
        tenant: TenantId,
        analyst: Option<String>,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        dispatch!(self, s => s.ledger(tenant, analyst).await)
    }
}

impl AuditStore for Storage {
    async fn incidents(&self, tenant: i64, open_only: bool) -> Result<Vec<Incident>, StoreError> {
        dispatch!(self, s => s.incidents(tenant, open_only).await)
    }
    async fn open_incident(&self, incident: Incident) -> Result<i64, StoreError> {
        dispatch!(self, s => s.open_incident(incident).await)
    }
    async fn close_incident(&self, id: i64) -> Result<(), StoreError> {
        dispatch!(self, s => s.close_incident(id).await)
    }
    async fn set_incident_actions(
        &self,
        id: i64,
        actions: serde_json::Value,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.set_incident_actions(id, actions).await)
    }
    async fn audit_head(&self) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        dispatch!(self, s => s.audit_head().await)
    }
    async fn append_audit(
        &self,
        entries: Vec<learnpulse_compliance::audit::Entry>,
        checkpoint: Option<learnpulse_compliance::audit::Checkpoint>,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.append_audit(entries, checkpoint).await)
    }
    async fn audit_entries(
        &self,
        after_seq: u64,
        limit: usize,
        tenant: Option<i64>,
    ) -> Result<Vec<learnpulse_compliance::audit::Entry>, StoreError> {
        dispatch!(self, s => s.audit_entries(after_seq, limit, tenant).await)
    }
    async fn audit_checkpoints(
        &self,
    ) -> Result<Vec<learnpulse_compliance::audit::Checkpoint>, StoreError> {
        dispatch!(self, s => s.audit_checkpoints().await)
    }
    async fn server_secret(&self, purpose: &str) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self, s => s.server_secret(purpose).await)
    }
    async fn audit_entries_since(
        &self,
        tenant: i64,
        since_us: i64,
    ) -> Result<Vec<learnpulse_compliance::audit::Entry>, StoreError> {
        dispatch!(self, s => s.audit_entries_since(tenant, since_us).await)
    }
    async fn audit_entries_about(
        &self,
        tenant: i64,
        subjects: Vec<String>,
    ) -> Result<Vec<learnpulse_compliance::audit::Entry>, StoreError> {
        dispatch!(self, s => s.audit_entries_about(tenant, subjects).await)
    }
    async fn open_request(&self, request: SubjectRequest) -> Result<i64, StoreError> {
        dispatch!(self, s => s.open_request(request).await)
    }
    async fn complete_request(&self, id: i64, summary: String) -> Result<(), StoreError> {
        dispatch!(self, s => s.complete_request(id, summary).await)
    }
    async fn unname_requests(&self, tenant: i64, learners: Vec<String>) -> Result<(), StoreError> {
        dispatch!(self, s => s.unname_requests(tenant, learners).await)
    }
    async fn requests(&self, tenant: i64) -> Result<Vec<SubjectRequest>, StoreError> {
        dispatch!(self, s => s.requests(tenant).await)
    }
    async fn rule_overrides(&self, tenant: i64) -> Result<Option<String>, StoreError> {
        dispatch!(self, s => s.rule_overrides(tenant).await)
    }
    async fn set_rule_overrides(&self, tenant: i64, json: String) -> Result<(), StoreError> {
        dispatch!(self, s => s.set_rule_overrides(tenant, json).await)
    }
    async fn insert_server_secret(&self, purpose: &str, sealed: Vec<u8>) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_server_secret(purpose, sealed).await)
    }
}

/// Microseconds since the Unix epoch, from the system clock (the shell's clock, not the core's).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
