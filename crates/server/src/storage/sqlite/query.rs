//! `GET /xAPI/statements` queries against the log and its deferred indexes.
//!
//! A filter by agent, activity or registration is answered from the index database (`idx`, see
//! `background.rs`) up to its watermark, plus a scan of the log's tail beyond the watermark,
//! which is only what the indexer has not reached yet (a fraction of a second of ingest). The
//! other filters are checked on the statement rows themselves. Both reads happen in one read
//! transaction, so the result is exactly the committed log as of that transaction.

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, params};

use super::with_stored;
use crate::storage::{StatementPage, StatementQuery, StoreError, TenantId};

/// Looks up an interned id; `None` means nothing was ever stored with that value.
fn interned(
    conn: &Connection,
    table: &str,
    column: &str,
    tenant: TenantId,
    value: &str,
) -> Result<Option<i64>, StoreError> {
    let sql = format!("SELECT id FROM main.{table} WHERE tenant_id = ?1 AND {column} = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![tenant, value], |r| r.get(0))
        .optional()?)
}

/// SQL text with numbered parameters, built clause by clause.
#[derive(Default)]
struct QueryBuilder {
    text: String,
    args: Vec<Sql>,
}

impl QueryBuilder {
    /// Appends `clause`, numbering each `?` in it and binding `values` to them in order.
    fn push(&mut self, clause: &str, values: impl IntoIterator<Item = Sql>) {
        let mut values = values.into_iter();
        let mut parts = clause.split('?');
        self.text.push_str(parts.next().unwrap_or_default());
        for part in parts {
            self.args
                .push(values.next().expect("a value for every placeholder"));
            self.text.push_str(&format!("?{}", self.args.len()));
            self.text.push_str(part);
        }
        debug_assert!(values.next().is_none(), "more values than placeholders");
    }
}

pub(super) fn query_statements(
    conn: &Connection,
    tenant: TenantId,
    q: &StatementQuery,
) -> Result<StatementPage, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let watermark: i64 = tx.query_row(
        "SELECT indexed_through FROM idx.progress WHERE id = 1",
        [],
        |r| r.get(0),
    )?;

    let mut ids = [None, None, None];
    for (slot, (filter, table, column)) in ids.iter_mut().zip([
        (&q.agent, "actors", "ifi"),
        (&q.verb, "verbs", "iri"),
        (&q.activity, "activities", "iri"),
    ]) {
        if let Some(value) = filter {
            match interned(&tx, table, column, tenant, value)? {
                Some(id) => *slot = Some(id),
                None => return Ok(StatementPage::default()),
            }
        }
    }
    let [actor, verb, activity] = ids;
    let registration = q.registration.map(|r| Sql::Blob(r.as_bytes().to_vec()));

    let mut sql = QueryBuilder::default();
    sql.push("SELECT s.seq, s.stored_us, s.json FROM ", []);
    // The candidate rows: from the most selective deferred index, else the whole tenant.
    let candidates: Option<(&str, Vec<Sql>, &str)> = if let Some(a) = actor {
        Some((
            "idx.by_actor WHERE actor_id = ?",
            vec![a.into()],
            "s2.actor_id = ?",
        ))
    } else if let Some(a) = activity {
        Some((
            "idx.by_activity WHERE activity_id = ?",
            vec![a.into()],
            "s2.activity_id = ?",
        ))
    } else {
        registration.as_ref().map(|r| {
            (
                "idx.by_registration WHERE tenant_id = ? AND registration = ?",
                vec![tenant.into(), r.clone()],
                "s2.registration = ?",
            )
        })
    };
    match candidates {
        Some((index, keys, tail_predicate)) => {
            let tail_key = keys.last().cloned().expect("an index key");
            sql.push(
                &format!("(SELECT seq FROM {index} AND seq <= ?"),
                keys.into_iter().chain([watermark.into()]),
            );
            sql.push(" UNION ALL SELECT s2.seq FROM main.statements AS s2 WHERE s2.tenant_id = ? AND s2.seq > ?", [
                tenant.into(),
                watermark.into(),
            ]);
            sql.push(
                &format!(
                    " AND {tail_predicate}) AS c CROSS JOIN main.statements AS s ON s.seq = c.seq"
                ),
                [tail_key],
            );
        }
        None => sql.push("main.statements AS s", []),
    }
    sql.push(" WHERE s.tenant_id = ? AND s.voided = 0", [tenant.into()]);
    for (column, value) in [
        ("actor_id", actor),
        ("verb_id", verb),
        ("activity_id", activity),
    ] {
        if let Some(v) = value {
            sql.push(&format!(" AND s.{column} = ?"), [v.into()]);
        }
    }
    if let Some(r) = registration {
        sql.push(" AND s.registration = ?", [r]);
    }
    if let Some(since) = q.since_us {
        sql.push(" AND s.stored_us > ?", [since.into()]);
    }
    if let Some(until) = q.until_us {
        sql.push(" AND s.stored_us <= ?", [until.into()]);
    }
    if let Some(cursor) = q.cursor {
        sql.push(
            if q.ascending {
                " AND s.seq > ?"
            } else {
                " AND s.seq < ?"
            },
            [cursor.into()],
        );
    }
    sql.push(
        if q.ascending {
            " ORDER BY s.seq ASC"
        } else {
            " ORDER BY s.seq DESC"
        },
        [],
    );
    sql.push(" LIMIT ?", [((q.limit + 1) as i64).into()]);

    let mut stmt = tx.prepare_cached(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(sql.args))?;
    let mut page = StatementPage::default();
    let mut last_seq = None;
    while let Some(row) = rows.next()? {
        if page.statements.len() == q.limit {
            page.next_cursor = last_seq;
            break;
        }
        let seq: i64 = row.get(0)?;
        let json: String = row.get(2)?;
        page.statements.push(with_stored(&json, row.get(1)?));
        last_seq = Some(seq);
    }
    Ok(page)
}
