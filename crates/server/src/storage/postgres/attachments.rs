//! [`AttachmentStore`] on PostgreSQL: the `attachments` table.

use super::{PostgresStorage, db_err};
use crate::storage::attachments::{Attachment, AttachmentStore};
use crate::storage::{StoreError, TenantId};

impl AttachmentStore for PostgresStorage {
    async fn save_attachments(
        &self,
        tenant: TenantId,
        actor: String,
        attachments: Vec<Attachment>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        for a in &attachments {
            tx.execute(
                "INSERT INTO attachments (tenant_id, sha2, actor, content_type, body) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[&tenant, &a.sha2, &actor, &a.content_type, &a.body],
            )
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn attachments(
        &self,
        tenant: TenantId,
        sha2: Vec<String>,
    ) -> Result<Vec<Attachment>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT DISTINCT ON (sha2) sha2, content_type, body FROM attachments \
                 WHERE tenant_id = $1 AND sha2 = ANY($2) ORDER BY sha2",
                &[&tenant, &sha2],
            )
            .await
            .map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|r| Attachment {
                sha2: r.get(0),
                content_type: r.get(1),
                body: r.get(2),
            })
            .collect())
    }

    async fn erase_attachments(
        &self,
        tenant: TenantId,
        actors: Vec<String>,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM attachments WHERE tenant_id = $1 AND actor = ANY($2)",
                &[&tenant, &actors],
            )
            .await
            .map_err(db_err)
    }
}
