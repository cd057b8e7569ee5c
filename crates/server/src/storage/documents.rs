//! xAPI documents: the state, agent profile and activity profile resources
//! (`/xAPI/activities/state`, `/xAPI/agents/profile`, `/xAPI/activities/profile`).
//!
//! A document is opaque bytes with the content type it was sent with, kept per tenant under
//! its [`DocumentScope`] and id. What a write does to the stored document (the concurrency
//! checks of `If-Match` / `If-None-Match`, the merge of JSON objects on POST) is decided by
//! pure code in `crate::xapi::documents`, handed to the store as a [`Decide`] function: the
//! store reads the current document, asks, and applies the answer in one transaction, so two
//! concurrent writers cannot both pass a precondition.

use super::{StoreError, TenantId};

/// The three document resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    State,
    AgentProfile,
    ActivityProfile,
}

/// How the kinds are stored, in the order of [`DocumentKind`].
static KIND_NAMES: [&str; 3] = ["state", "agent_profile", "activity_profile"];

impl DocumentKind {
    /// How the kind is stored.
    pub fn as_str(self) -> &'static str {
        KIND_NAMES[self as usize]
    }

    /// The stored name behind a `'static` reference, for query parameters that borrow.
    pub fn stored_name(self) -> &'static &'static str {
        &KIND_NAMES[self as usize]
    }
}

/// Where documents live: a kind and the parameters that name a set of documents of that kind
/// (empty when the kind has no such parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentScope {
    pub kind: DocumentKind,
    /// The activity IRI (state, activity profile).
    pub activity: String,
    /// The agent's canonical identifier as the tenant keeps it: pseudonymised unless the tenant
    /// keeps raw identities (state, agent profile).
    pub agent: String,
    /// The registration UUID (state), empty when none was given.
    pub registration: String,
    /// The learner the agent is (their pseudonym), so that an erasure finds their documents.
    pub learner: String,
}

/// One stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub id: String,
    pub content_type: String,
    pub body: Vec<u8>,
    /// The quoted SHA-1 of the body, as sent in `ETag`.
    pub etag: String,
    /// When it was last written, in microseconds since the epoch.
    pub updated_us: i64,
}

/// What a write does, decided from the document stored now (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentEdit {
    /// Store this body (new, replaced or merged).
    Write { content_type: String, body: Vec<u8> },
    /// Delete the document.
    Delete,
    /// Leave the store as it is, and answer this.
    Refuse(DocumentRefusal),
}

/// Why a write was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentRefusal {
    /// An `If-Match` / `If-None-Match` precondition does not hold (412).
    PreconditionFailed(String),
    /// The document exists and the request did not say which version it replaces (409).
    Conflict(String),
    /// The request cannot be applied to this document (400), e.g. merging into a non-JSON one.
    Invalid { field: String, detail: String },
}

/// Decides a write from the document stored now. Pure: the store may call it inside its
/// transaction.
pub type Decide = Box<dyn FnOnce(Option<&StoredDocument>) -> DocumentEdit + Send>;

storage_trait! {
/// The document resources' storage.
pub trait DocumentStore {
    /// One document.
    async fn document(
        &self,
        tenant: TenantId,
        scope: DocumentScope,
        id: String,
    ) -> Result<Option<StoredDocument>, StoreError>;

    /// The ids of the scope's documents written after `since_us` (all when `None`), in order.
    async fn document_ids(
        &self,
        tenant: TenantId,
        scope: DocumentScope,
        since_us: Option<i64>,
    ) -> Result<Vec<String>, StoreError>;

    /// Reads the document, asks `decide` what to do and does it, in one transaction. Answers
    /// the refusal when `decide` refused.
    async fn edit_document(
        &self,
        tenant: TenantId,
        scope: DocumentScope,
        id: String,
        decide: Decide,
    ) -> Result<Result<(), DocumentRefusal>, StoreError>;

    /// Deletes every document of the scope (`DELETE` of the state resource without `stateId`).
    async fn delete_documents(&self, tenant: TenantId, scope: DocumentScope) -> Result<u64, StoreError>;

    /// Files the documents of `kind` and `activity` kept under any of the agents `from` under
    /// `to` instead (a learner seen again after a pseudonym-key rotation); a document `to`
    /// already has of the same id stays as it is.
    async fn adopt_documents(
        &self,
        tenant: TenantId,
        scope: DocumentScope,
        from: Vec<String>,
    ) -> Result<u64, StoreError>;

    /// Deletes every document of these learners (erasure).
    async fn erase_documents(&self, tenant: TenantId, learners: Vec<String>) -> Result<u64, StoreError>;
}
}

/// The `ETag` of a body: its SHA-1 in hex, quoted (a strong validator, as xAPI 1.0.3 expects).
pub fn etag_of(body: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    format!("\"{}\"", hex::encode(Sha1::digest(body)))
}
