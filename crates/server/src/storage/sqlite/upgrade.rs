//! Bringing a data directory of an older layout up to this one at start: columns added since
//! (SQLite has no `ADD COLUMN IF NOT EXISTS`), the indexes over them, and the values older rows
//! lack, computed from their JSON once.

use rusqlite::{Connection, params};

/// Columns added to tables of older data directories (SQLite has no ADD COLUMN IF NOT EXISTS).
const ADDED_COLUMNS: [(&str, &str, &str); 7] = [
    ("api_keys", "expires_us", "INTEGER"),
    ("api_keys", "last_used_us", "INTEGER"),
    ("api_keys", "groups", "TEXT"),
    // NULL in rows from before followers read it: they decode those rows' JSON instead.
    ("statements", "live", "TEXT"),
    // NULL in checkpoints of the installation-wide chain of older servers.
    ("audit_checkpoints", "tenant_id", "INTEGER"),
    // Filled in from the statements' JSON when added ([`fill_targets`]).
    ("statements", "target", "BLOB"),
    // NULL in older rows until [`fill_related_keys`] computes them from the JSON.
    ("statements", "related", "TEXT"),
];

pub(super) fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    for (table, column, kind) in ADDED_COLUMNS {
        let exists: bool = conn.query_row(
            &format!("SELECT count(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"),
            [column],
            |r| r.get(0),
        )?;
        if !exists {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
            if (table, column) == ("statements", "target") {
                fill_targets(conn)?;
            }
        }
    }
    // Only statements with a StatementRef object are in it: a query reads it to find the
    // statements that reach a match through a reference.
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS statements_targeting ON statements(tenant_id, seq) \
         WHERE target IS NOT NULL; \
         CREATE INDEX IF NOT EXISTS statements_unkeyed ON statements(seq) WHERE related IS NULL",
    )?;
    fill_related_keys(conn)?;
    Ok(())
}

/// Computes the related keys of the statements stored before they existed (an upgrade), in
/// batches. New statements always have them, so after the first start this finds nothing, at
/// once (`statements_unkeyed` holds only the rows without).
fn fill_related_keys(conn: &Connection) -> rusqlite::Result<()> {
    let mut filled = 0u64;
    loop {
        let rows: Vec<(i64, String)> = conn
            .prepare(
                "SELECT seq, json FROM statements WHERE related IS NULL ORDER BY seq LIMIT 10000",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        if rows.is_empty() {
            break;
        }
        if filled == 0 {
            tracing::info!("computing the related keys of stored statements (once, at upgrade)");
        }
        let tx = conn.unchecked_transaction()?;
        {
            let mut update = tx.prepare("UPDATE statements SET related = ?2 WHERE seq = ?1")?;
            for (seq, json) in &rows {
                let keys = serde_json::from_str(json)
                    .map(|v| crate::storage::keys::related_keys(&v))
                    .unwrap_or_default();
                update.execute(params![seq, keys])?;
            }
        }
        tx.commit()?;
        filled += rows.len() as u64;
    }
    if filled > 0 {
        tracing::info!(filled, "related keys computed");
    }
    Ok(())
}

/// Records the target of every StatementRef stored before the column existed: one pass over
/// the log, once.
fn fill_targets(conn: &Connection) -> rusqlite::Result<()> {
    tracing::info!("recording the targets of stored StatementRef statements (once, at upgrade)");
    let filled = conn.execute(
        "UPDATE statements SET target = unhex(replace(json_extract(json, '$.object.id'), '-', '')) \
         WHERE instr(json, '\"StatementRef\"') > 0 \
         AND json_extract(json, '$.object.objectType') = 'StatementRef'",
        [],
    )?;
    tracing::info!(filled, "StatementRef targets recorded");
    Ok(())
}
