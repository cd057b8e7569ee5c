//! [`DocumentStore`] on PostgreSQL: the `documents` table. An edit takes a transaction-scoped
//! advisory lock on the document's key before it reads it, so that concurrent writers of one
//! document (from any process) take turns and a precondition is checked against the document
//! that is replaced, even when it does not exist yet.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PostgresStorage, db_err};
use crate::storage::documents::{
    Decide, DocumentEdit, DocumentRefusal, DocumentScope, DocumentStore, StoredDocument, etag_of,
};
use crate::storage::{StoreError, TenantId, now_us};

const SCOPE: &str =
    "tenant_id = $1 AND kind = $2 AND activity = $3 AND agent = $4 AND registration = $5";
const SELECT_ONE: &str = "SELECT content_type, body, etag, updated_us FROM documents \
     WHERE tenant_id = $1 AND kind = $2 AND activity = $3 AND agent = $4 \
     AND registration = $5 AND id = $6";

type Param<'a> = &'a (dyn ToSql + Sync);

/// The parameters `$1`..`$5` of [`SCOPE`], then `more` from `$6` on.
fn bind<'a>(tenant: &'a TenantId, scope: &'a DocumentScope, more: &[Param<'a>]) -> Vec<Param<'a>> {
    let mut params: Vec<Param<'a>> = vec![
        tenant,
        scope.kind.stored_name(),
        &scope.activity,
        &scope.agent,
        &scope.registration,
    ];
    params.extend_from_slice(more);
    params
}

fn stored(id: &str, row: &Row) -> StoredDocument {
    StoredDocument {
        id: id.to_owned(),
        content_type: row.get(0),
        body: row.get(1),
        etag: row.get(2),
        updated_us: row.get(3),
    }
}

impl DocumentStore for PostgresStorage {
    async fn document(
        &self,
        tenant: TenantId,
        scope: DocumentScope,
        id: String,
    ) -> Result<Option<StoredDocument>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(SELECT_ONE, &bind(&tenant, &scope, &[&id]))
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| stored(&id, &r)))
    }

    async fn document_ids(
        &self,
        tenant: TenantId,
        scope: DocumentScope,
        since_us: Option<i64>,
    ) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT id FROM documents WHERE {SCOPE} AND updated_us > $6 ORDER BY id"),
                &bind(&tenant, &scope, &[&since_us.unwrap_or(i64::MIN)]),
            )
            .await
            .map_err(db_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn edit_document(
        &self,
        tenant: TenantId,
        scope: DocumentScope,
        id: String,
        decide: Decide,
    ) -> Result<Result<(), DocumentRefusal>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        let kind = scope.kind.as_str();
        // One lock per document key (a hash: two keys may share a lock, which only serialises
        // them).
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended( \
             $1::text || chr(31) || $2 || chr(31) || $3 || chr(31) || $4 || chr(31) || $5 \
             || chr(31) || $6, 0))",
            &[
                &tenant.to_string(),
                &kind,
                &scope.activity,
                &scope.agent,
                &scope.registration,
                &id,
            ],
        )
        .await
        .map_err(db_err)?;
        let current = tx
            .query_opt(SELECT_ONE, &bind(&tenant, &scope, &[&id]))
            .await
            .map_err(db_err)?
            .map(|r| stored(&id, &r));
        match decide(current.as_ref()) {
            DocumentEdit::Refuse(why) => return Ok(Err(why)),
            DocumentEdit::Delete => {
                tx.execute(
                    &format!("DELETE FROM documents WHERE {SCOPE} AND id = $6"),
                    &bind(&tenant, &scope, &[&id]),
                )
                .await
                .map_err(db_err)?;
            }
            DocumentEdit::Write { content_type, body } => {
                let updated = now_us().max(current.map_or(0, |s| s.updated_us + 1));
                let etag = etag_of(&body);
                tx.execute(
                    "INSERT INTO documents (tenant_id, kind, activity, agent, registration, id, \
                     learner, content_type, body, etag, updated_us) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (tenant_id, kind, activity, agent, registration, id) \
                     DO UPDATE SET learner = excluded.learner, \
                     content_type = excluded.content_type, body = excluded.body, \
                     etag = excluded.etag, updated_us = excluded.updated_us",
                    &bind(
                        &tenant,
                        &scope,
                        &[&id, &scope.learner, &content_type, &body, &etag, &updated],
                    ),
                )
                .await
                .map_err(db_err)?;
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(Ok(()))
    }

    async fn delete_documents(
        &self,
        tenant: TenantId,
        scope: DocumentScope,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                &format!("DELETE FROM documents WHERE {SCOPE}"),
                &bind(&tenant, &scope, &[]),
            )
            .await
            .map_err(db_err)
    }

    async fn adopt_documents(
        &self,
        tenant: TenantId,
        scope: DocumentScope,
        from: Vec<String>,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE documents AS d SET agent = $4, learner = $5 \
                 WHERE d.tenant_id = $1 AND d.kind = $2 AND d.activity = $3 AND d.agent = ANY($6) \
                 AND NOT EXISTS (SELECT 1 FROM documents n WHERE n.tenant_id = d.tenant_id \
                 AND n.kind = d.kind AND n.activity = d.activity AND n.agent = $4 \
                 AND n.registration = d.registration AND n.id = d.id)",
                &[
                    &tenant,
                    &scope.kind.as_str(),
                    &scope.activity,
                    &scope.agent,
                    &scope.learner,
                    &from,
                ],
            )
            .await
            .map_err(db_err)
    }

    async fn erase_documents(
        &self,
        tenant: TenantId,
        learners: Vec<String>,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM documents WHERE tenant_id = $1 AND learner = ANY($2)",
                &[&tenant, &learners],
            )
            .await
            .map_err(db_err)
    }
}
