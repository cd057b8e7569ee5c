//! xAPI statement attachments: the raw bytes sent in `multipart/mixed` beside statements,
//! stored once per tenant, SHA-256 and actor (so that an erasure of the actor removes theirs
//! and leaves another actor's identical file alone), and served with statement reads that ask
//! for `attachments=true`.

use super::{StoreError, TenantId};

/// One attachment's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The hex SHA-256 of `body`, as statements name it (`sha2`).
    pub sha2: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

storage_trait! {
/// Attachment bytes by SHA-256.
pub trait AttachmentStore {
    /// Keeps these attachments of the statements of `actor` (an actor's canonical identifier as
    /// the log holds it); one already kept is left as it is.
    async fn save_attachments(
        &self,
        tenant: TenantId,
        actor: String,
        attachments: Vec<Attachment>,
    ) -> Result<(), StoreError>;

    /// The kept attachments among these hashes.
    async fn attachments(&self, tenant: TenantId, sha2: Vec<String>) -> Result<Vec<Attachment>, StoreError>;

    /// Deletes the attachments of these actors (erasure).
    async fn erase_attachments(&self, tenant: TenantId, actors: Vec<String>) -> Result<u64, StoreError>;
}
}
