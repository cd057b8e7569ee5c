//! [`DocumentStore`] on SQLite: the `documents` table of `learnpulse.db`. An edit runs in an
//! immediate transaction (the write lock taken before the read), so that the document a
//! precondition was checked against is the one replaced.

use rusqlite::{
    Connection, OptionalExtension, ToSql, TransactionBehavior, params, params_from_iter,
};

use rusqlite::types::ToSqlOutput;

use super::SqliteStorage;
use crate::storage::documents::{
    Decide, DocumentEdit, DocumentKind, DocumentRefusal, DocumentScope, DocumentStore,
    StoredDocument, etag_of,
};
use crate::storage::{StoreError, TenantId, now_us};

const SCOPE: &str = "tenant_id = ?1 AND kind = ?2 AND activity = ?3 AND agent = ?4 \
                     AND registration = ?5";

impl ToSql for DocumentKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

/// The parameters `?1`..`?5` of [`SCOPE`], then `more` from `?6` on.
fn bind<'a>(
    tenant: &'a TenantId,
    scope: &'a DocumentScope,
    more: &[&'a dyn ToSql],
) -> Vec<&'a dyn ToSql> {
    let mut params: Vec<&dyn ToSql> = vec![
        tenant,
        &scope.kind,
        &scope.activity,
        &scope.agent,
        &scope.registration,
    ];
    params.extend_from_slice(more);
    params
}

fn read_one(
    conn: &Connection,
    tenant: TenantId,
    scope: &DocumentScope,
    id: &str,
) -> Result<Option<StoredDocument>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT content_type, body, etag, updated_us FROM documents WHERE {SCOPE} AND id = ?6"
    ))?;
    Ok(stmt
        .query_row(params_from_iter(bind(&tenant, scope, &[&id])), |r| {
            Ok(StoredDocument {
                id: id.to_owned(),
                content_type: r.get(0)?,
                body: r.get(1)?,
                etag: r.get(2)?,
                updated_us: r.get(3)?,
            })
        })
        .optional()?)
}

impl DocumentStore for SqliteStorage {
    async fn document(
        &self,
        tenant: TenantId,
        scope: DocumentScope,
        id: String,
    ) -> Result<Option<StoredDocument>, StoreError> {
        self.read(move |conn| read_one(conn, tenant, &scope, &id))
            .await
    }

    async fn document_ids(
        &self,
        tenant: TenantId,
        scope: DocumentScope,
        since_us: Option<i64>,
    ) -> Result<Vec<String>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT id FROM documents WHERE {SCOPE} AND updated_us > ?6 ORDER BY id"
            ))?;
            let rows = stmt.query_map(
                params_from_iter(bind(&tenant, &scope, &[&since_us.unwrap_or(i64::MIN)])),
                |r| r.get(0),
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn edit_document(
        &self,
        tenant: TenantId,
        scope: DocumentScope,
        id: String,
        decide: Decide,
    ) -> Result<Result<(), DocumentRefusal>, StoreError> {
        self.read(move |conn| {
            let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            let stored = read_one(&tx, tenant, &scope, &id)?;
            let key = params_from_iter(bind(&tenant, &scope, &[&id]));
            match decide(stored.as_ref()) {
                DocumentEdit::Refuse(why) => return Ok(Err(why)),
                DocumentEdit::Delete => {
                    tx.execute(
                        &format!("DELETE FROM documents WHERE {SCOPE} AND id = ?6"),
                        key,
                    )?;
                }
                DocumentEdit::Write { content_type, body } => {
                    // Last-Modified has a resolution of a second: a rewrite within the same
                    // microsecond still moves forward.
                    let updated = now_us().max(stored.map_or(0, |s| s.updated_us + 1));
                    let etag = etag_of(&body);
                    tx.execute(
                        "INSERT INTO documents (tenant_id, kind, activity, agent, registration, \
                         id, learner, content_type, body, etag, updated_us) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                         ON CONFLICT (tenant_id, kind, activity, agent, registration, id) \
                         DO UPDATE SET learner = excluded.learner, \
                         content_type = excluded.content_type, body = excluded.body, \
                         etag = excluded.etag, updated_us = excluded.updated_us",
                        params_from_iter(bind(
                            &tenant,
                            &scope,
                            &[&id, &scope.learner, &content_type, &body, &etag, &updated],
                        )),
                    )?;
                }
            }
            tx.commit()?;
            Ok(Ok(()))
        })
        .await
    }

    async fn delete_documents(
        &self,
        tenant: TenantId,
        scope: DocumentScope,
    ) -> Result<u64, StoreError> {
        self.read(move |conn| {
            let deleted = conn.execute(
                &format!("DELETE FROM documents WHERE {SCOPE}"),
                params_from_iter(bind(&tenant, &scope, &[])),
            )?;
            Ok(deleted as u64)
        })
        .await
    }

    async fn adopt_documents(
        &self,
        tenant: TenantId,
        scope: DocumentScope,
        from: Vec<String>,
    ) -> Result<u64, StoreError> {
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            let mut moved = 0;
            for old in &from {
                moved += tx.execute(
                    "UPDATE OR IGNORE documents SET agent = ?4, learner = ?5 \
                     WHERE tenant_id = ?1 AND kind = ?2 AND activity = ?3 AND agent = ?6",
                    params![
                        tenant,
                        scope.kind.as_str(),
                        scope.activity,
                        scope.agent,
                        scope.learner,
                        old
                    ],
                )?;
            }
            tx.commit()?;
            Ok(moved as u64)
        })
        .await
    }

    async fn erase_documents(
        &self,
        tenant: TenantId,
        learners: Vec<String>,
    ) -> Result<u64, StoreError> {
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            let mut deleted = 0;
            for learner in &learners {
                deleted += tx.execute(
                    "DELETE FROM documents WHERE tenant_id = ?1 AND learner = ?2",
                    params![tenant, learner],
                )?;
            }
            tx.commit()?;
            Ok(deleted as u64)
        })
        .await
    }
}
