//! [`AttachmentStore`] on SQLite: the `attachments` table of `learnpulse.db`.

use rusqlite::params;

use super::SqliteStorage;
use crate::storage::attachments::{Attachment, AttachmentStore};
use crate::storage::{StoreError, TenantId};

impl AttachmentStore for SqliteStorage {
    async fn save_attachments(
        &self,
        tenant: TenantId,
        actor: String,
        attachments: Vec<Attachment>,
    ) -> Result<(), StoreError> {
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO attachments (tenant_id, sha2, actor, content_type, body) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                )?;
                for a in &attachments {
                    insert.execute(params![tenant, a.sha2, actor, a.content_type, a.body])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn attachments(
        &self,
        tenant: TenantId,
        sha2: Vec<String>,
    ) -> Result<Vec<Attachment>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT content_type, body FROM attachments WHERE tenant_id = ?1 AND sha2 = ?2 \
                 LIMIT 1",
            )?;
            let mut found = Vec::new();
            for hash in sha2 {
                let mut rows = stmt.query(params![tenant, hash])?;
                if let Some(r) = rows.next()? {
                    found.push(Attachment {
                        sha2: hash.clone(),
                        content_type: r.get(0)?,
                        body: r.get(1)?,
                    });
                }
            }
            Ok(found)
        })
        .await
    }

    async fn erase_attachments(
        &self,
        tenant: TenantId,
        actors: Vec<String>,
    ) -> Result<u64, StoreError> {
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            let mut deleted = 0;
            for actor in &actors {
                deleted += tx.execute(
                    "DELETE FROM attachments WHERE tenant_id = ?1 AND actor = ?2",
                    params![tenant, actor],
                )?;
            }
            tx.commit()?;
            Ok(deleted as u64)
        })
        .await
    }
}
