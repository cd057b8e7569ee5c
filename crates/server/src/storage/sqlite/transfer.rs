//! [`TransferStore`] on SQLite: the catalogue's tables mapped onto this backend's layout.
//!
//! Two differences from the neutral names: the webhook tables live in the outbox file without
//! their `webhook_` prefix, and statements refer to interned actor, verb and activity rows, so
//! they are read with joins and written after interning their values.

use rusqlite::Connection;
use rusqlite::types::{Value, ValueRef};

use super::SqliteStorage;
use crate::storage::StoreError;
use crate::storage::transfer::{Cell, STATEMENTS, Table, TransferStore};

/// Which database file holds a table, and its name there.
fn local(table: &Table) -> (Database, &'static str) {
    match table.name.strip_prefix("webhook_") {
        Some("watermark") => (Database::Outbox, "watermark"),
        Some("receivers") => (Database::Outbox, "receivers"),
        Some("endpoints") => (Database::Outbox, "endpoints"),
        Some("messages") => (Database::Outbox, "messages"),
        _ => (Database::Log, table.name),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Database {
    Log,
    Outbox,
}

fn to_value(cell: &Cell) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Int(i) => Value::Integer(*i),
        Cell::Real(f) => Value::Real(*f),
        Cell::Text(s) => Value::Text(s.clone()),
        Cell::Bytes(b) => Value::Blob(b.clone()),
    }
}

fn to_cell(value: ValueRef<'_>) -> Result<Cell, StoreError> {
    Ok(match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Int(i),
        ValueRef::Real(f) => Cell::Real(f),
        ValueRef::Text(t) => Cell::Text(
            std::str::from_utf8(t)
                .map_err(|e| StoreError::Internal(format!("text that is not UTF-8: {e}")))?
                .to_owned(),
        ),
        ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
    })
}

/// `SELECT … WHERE (key) > (after) ORDER BY key LIMIT n` for a table without interned columns.
fn select_sql(table: &Table, name: &str, paged: bool) -> String {
    let columns: Vec<_> = table.column_names().collect();
    let key: Vec<_> = table.key_names().collect();
    let filter = if paged {
        let marks: Vec<_> = (1..=key.len()).map(|i| format!("?{i}")).collect();
        format!("WHERE ({}) > ({})", key.join(", "), marks.join(", "))
    } else {
        String::new()
    };
    // An unnumbered `?` after `?1..?k` is `?k+1`: the limit.
    format!(
        "SELECT {} FROM {name} {filter} ORDER BY {} LIMIT ?",
        columns.join(", "),
        key.join(", ")
    )
}

/// Statements with their interned values joined back in (the catalogue's column order).
const SELECT_STATEMENTS: &str = "SELECT s.seq, s.tenant_id, s.statement_id, s.stored_us, \
     a.ifi, v.iri, c.iri, s.registration, s.voided, s.fingerprint, s.json, s.live, s.target, \
     s.related \
     FROM statements s JOIN actors a ON a.id = s.actor_id JOIN verbs v ON v.id = s.verb_id \
     LEFT JOIN activities c ON c.id = s.activity_id \
     WHERE s.seq > ?1 ORDER BY s.seq LIMIT ?2";

fn export(
    conn: &Connection,
    table: &Table,
    name: &str,
    after: Option<Vec<Cell>>,
    limit: usize,
) -> Result<Vec<Vec<Cell>>, StoreError> {
    let mut args: Vec<Value> = match &after {
        Some(key) => key.iter().map(to_value).collect(),
        None if table.name == STATEMENTS.name => vec![Value::Integer(0)],
        None => Vec::new(),
    };
    args.push(Value::Integer(limit as i64));
    let sql = if table.name == STATEMENTS.name {
        SELECT_STATEMENTS.to_owned()
    } else {
        select_sql(table, name, after.is_some())
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let cells = (0..table.columns.len())
            .map(|i| to_cell(row.get_ref(i)?))
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.push(cells);
    }
    Ok(out)
}

fn import(
    conn: &Connection,
    table: &Table,
    name: &str,
    rows: &[Vec<Cell>],
) -> Result<(), StoreError> {
    let tx = conn.unchecked_transaction()?;
    if table.name == STATEMENTS.name {
        import_statements(&tx, rows)?;
    } else {
        let columns: Vec<_> = table.column_names().collect();
        let marks: Vec<_> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO {name} ({}) VALUES ({})",
            columns.join(", "),
            marks.join(", ")
        );
        let mut stmt = tx.prepare_cached(&sql)?;
        for row in rows {
            stmt.execute(rusqlite::params_from_iter(row.iter().map(to_value)))?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Interns each statement's actor, verb and activity, then inserts it referring to their ids.
fn import_statements(conn: &Connection, rows: &[Vec<Cell>]) -> Result<(), StoreError> {
    let mut intern = [
        conn.prepare_cached("INSERT OR IGNORE INTO actors (tenant_id, ifi) VALUES (?1, ?2)")?,
        conn.prepare_cached("INSERT OR IGNORE INTO verbs (tenant_id, iri) VALUES (?1, ?2)")?,
        conn.prepare_cached("INSERT OR IGNORE INTO activities (tenant_id, iri) VALUES (?1, ?2)")?,
    ];
    let mut insert = conn.prepare_cached(
        "INSERT INTO statements (seq, tenant_id, statement_id, stored_us, actor_id, verb_id, \
         activity_id, registration, voided, fingerprint, json, live, target, related) VALUES (?1, \
         ?2, ?3, ?4, (SELECT id FROM actors WHERE tenant_id = ?2 AND ifi = ?5), \
         (SELECT id FROM verbs WHERE tenant_id = ?2 AND iri = ?6), \
         (SELECT id FROM activities WHERE tenant_id = ?2 AND iri = ?7), \
         ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    for row in rows {
        let values: Vec<Value> = row.iter().map(to_value).collect();
        // Columns 4, 5, 6: actor, verb, activity.
        for (stmt, value) in intern.iter_mut().zip(&values[4..7]) {
            if *value != Value::Null {
                stmt.execute(rusqlite::params![values[1], value])?;
            }
        }
        insert.execute(rusqlite::params_from_iter(values))?;
    }
    Ok(())
}

impl TransferStore for SqliteStorage {
    async fn export_rows(
        &self,
        table: &'static Table,
        after: Option<Vec<Cell>>,
        limit: usize,
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        match local(table) {
            (Database::Log, name) => {
                self.read(move |conn| export(conn, table, name, after, limit))
                    .await
            }
            (Database::Outbox, name) => {
                self.outbox(move |conn| export(conn, table, name, after, limit))
                    .await
            }
        }
    }

    async fn import_rows(
        &self,
        table: &'static Table,
        rows: Vec<Vec<Cell>>,
    ) -> Result<(), StoreError> {
        match local(table) {
            (Database::Log, name) => {
                self.read(move |conn| import(conn, table, name, &rows))
                    .await
            }
            (Database::Outbox, name) => {
                self.outbox(move |conn| import(conn, table, name, &rows))
                    .await
            }
        }
    }

    async fn count_rows(&self, table: &'static Table) -> Result<u64, StoreError> {
        let (database, name) = local(table);
        let sql = format!("SELECT count(*) FROM {name}");
        let count = move |conn: &Connection| -> Result<u64, StoreError> {
            Ok(conn.query_row(&sql, [], |r| r.get::<_, i64>(0))? as u64)
        };
        match database {
            Database::Log => self.read(count).await,
            Database::Outbox => self.outbox(move |conn| count(conn)).await,
        }
    }

    async fn finish_import(&self) -> Result<(), StoreError> {
        // Row ids continue after the largest copied one by themselves, and the indexer fills the
        // secondary indexes from the log on its next pass; only the head must be told.
        let head = self
            .read(|conn| {
                Ok(
                    conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM statements", [], |r| {
                        r.get::<_, i64>(0)
                    })?,
                )
            })
            .await?;
        self.committed.send_replace(head);
        Ok(())
    }
}
