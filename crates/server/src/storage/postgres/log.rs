//! [`EventLog`] on PostgreSQL: appends go to the writer task ([`super::writer`]); reads use the
//! pool. Filtered queries read the `(tenant, key, seq)` index of their first filter in sequence
//! order and stop after one row more than the page.

use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::writer::Request;
use super::{PostgresStorage, db_err};
use crate::storage::log::with_stored;
use crate::storage::{
    Appended, Erased, EventLog, LogEntry, NewStatement, StatementPage, StatementQuery, StoreError,
    TenantId,
};

impl EventLog for PostgresStorage {
    async fn append(
        &self,
        tenant: TenantId,
        statements: Vec<NewStatement>,
    ) -> Result<Appended, StoreError> {
        self.ask_writer(|reply| Request::Append {
            tenant,
            statements,
            reply,
        })
        .await
    }

    async fn statement(
        &self,
        tenant: TenantId,
        id: Uuid,
        voided: bool,
    ) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT stored_us, json FROM statements \
                 WHERE tenant_id = $1 AND statement_id = $2 AND voided = $3",
            )
            .await
            .map_err(db_err)?;
        let row = client
            .query_opt(&stmt, &[&tenant, &id, &voided])
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| with_stored(r.get(1), r.get(0))))
    }

    async fn query(
        &self,
        tenant: TenantId,
        q: StatementQuery,
    ) -> Result<StatementPage, StoreError> {
        let mut sql = String::from(
            "SELECT seq, stored_us, json FROM statements WHERE tenant_id = $1 AND NOT voided",
        );
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(tenant)];
        let mut push = |clause: &str, value: Box<dyn ToSql + Sync + Send>| {
            args.push(value);
            sql.push_str(&clause.replace('?', &format!("${}", args.len())));
        };
        if let Some(agent) = q.agent {
            push(" AND actor = ?", Box::new(agent));
        }
        if let Some(verb) = q.verb {
            push(" AND verb = ?", Box::new(verb));
        }
        if let Some(activity) = q.activity {
            push(" AND activity = ?", Box::new(activity));
        }
        if let Some(registration) = q.registration {
            push(" AND registration = ?", Box::new(registration));
        }
        if let Some(since) = q.since_us {
            push(" AND stored_us > ?", Box::new(since));
        }
        if let Some(until) = q.until_us {
            push(" AND stored_us <= ?", Box::new(until));
        }
        if let Some(cursor) = q.cursor {
            let op = if q.ascending { ">" } else { "<" };
            push(&format!(" AND seq {op} ?"), Box::new(cursor));
        }
        let direction = if q.ascending { "ASC" } else { "DESC" };
        push(
            &format!(" ORDER BY seq {direction} LIMIT ?"),
            Box::new(q.limit as i64 + 1),
        );
        let client = self.client().await?;
        let stmt = client.prepare_cached(&sql).await.map_err(db_err)?;
        let params: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let mut rows = client.query(&stmt, &params).await.map_err(db_err)?;
        let mut page = StatementPage::default();
        if rows.len() > q.limit {
            rows.truncate(q.limit);
            page.next_cursor = rows.last().map(|r| r.get(0));
        }
        page.statements = rows
            .iter()
            .map(|r| with_stored(r.get(2), r.get(1)))
            .collect();
        Ok(page)
    }

    async fn read_log(&self, after_seq: i64, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT tenant_id, seq, live FROM statements WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .await
            .map_err(db_err)?;
        let rows = client
            .query(&stmt, &[&after_seq, &(limit as i64)])
            .await
            .map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|r| LogEntry {
                tenant: r.get(0),
                seq: r.get(1),
                live: r.get(2),
                legacy_json: None,
            })
            .collect())
    }

    async fn head(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT seq FROM log_head WHERE id = 1", &[])
            .await
            .map_err(db_err)?;
        Ok(row.get(0))
    }

    async fn tenant_statements(
        &self,
        tenant: TenantId,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT seq, json FROM statements WHERE tenant_id = $1 AND seq > $2 \
                 AND NOT voided ORDER BY seq LIMIT $3",
            )
            .await
            .map_err(db_err)?;
        let rows = client
            .query(&stmt, &[&tenant, &after_seq, &(limit as i64)])
            .await
            .map_err(db_err)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn count_statements(&self, tenant: Option<TenantId>) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = match tenant {
            Some(t) => {
                client
                    .query_one(
                        "SELECT count(*) FROM statements WHERE tenant_id = $1",
                        &[&t],
                    )
                    .await
            }
            None => {
                client
                    .query_one("SELECT count(*) FROM statements", &[])
                    .await
            }
        }
        .map_err(db_err)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn erase_learner(
        &self,
        tenant: TenantId,
        needles: Vec<String>,
        actor_ifis: Vec<String>,
    ) -> Result<Erased, StoreError> {
        self.ask_writer(|reply| Request::Erase {
            tenant,
            needles,
            actor_ifis,
            reply,
        })
        .await
    }

    async fn purge_before(&self, tenant: TenantId, before_us: i64) -> Result<Erased, StoreError> {
        self.ask_writer(|reply| Request::Purge {
            tenant,
            before_us,
            reply,
        })
        .await
    }

    async fn count_stored_before(
        &self,
        tenant: TenantId,
        before_us: i64,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*) FROM statements WHERE tenant_id = $1 AND stored_us < $2",
                &[&tenant, &before_us],
            )
            .await
            .map_err(db_err)?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}
