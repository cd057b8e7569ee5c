//! One-statement helpers for `accounts.rs`, `privacy.rs` and `audit.rs`, most of whose methods
//! are a single statement on a pooled connection: these keep each such method to its SQL and its
//! parameters.
//!
//! They are free functions, not methods of [`PostgresStorage`], so that they can never shadow a
//! trait method of the same name (`EventLog::query`, say) in method-call syntax.
//!
//! Statements go through deadpool's per-connection cache (`prepare_cached`): the first use on a
//! connection prepares the statement, later ones only bind and execute it. The cache is keyed by
//! the SQL text, so the SQL should be a constant (or built from constants), never contain values.

use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

use super::{PostgresStorage, db_err};
use crate::storage::StoreError;

/// Runs a statement; returns the number of rows it changed.
pub(super) async fn execute(
    store: &PostgresStorage,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let client = store.client().await?;
    let stmt = client.prepare_cached(sql).await.map_err(db_err)?;
    client.execute(&stmt, params).await.map_err(db_err)
}

/// Every row of a query.
pub(super) async fn rows(
    store: &PostgresStorage,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let client = store.client().await?;
    let stmt = client.prepare_cached(sql).await.map_err(db_err)?;
    client.query(&stmt, params).await.map_err(db_err)
}

/// The row of a query that returns at most one (more is an error).
pub(super) async fn row(
    store: &PostgresStorage,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, StoreError> {
    let client = store.client().await?;
    let stmt = client.prepare_cached(sql).await.map_err(db_err)?;
    client.query_opt(&stmt, params).await.map_err(db_err)
}

/// The first column of the one row a statement returns (`INSERT ... RETURNING id`).
pub(super) async fn one<T: for<'a> FromSql<'a>>(
    store: &PostgresStorage,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<T, StoreError> {
    let client = store.client().await?;
    let stmt = client.prepare_cached(sql).await.map_err(db_err)?;
    let row = client.query_one(&stmt, params).await.map_err(db_err)?;
    col(&row, 0)
}

/// Column `idx` of `row`. `Row::get` panics when the column's type does not match; this returns
/// the driver's error instead, so that a schema mistake fails the request (as on SQLite, where
/// every `get` is fallible) rather than panicking the handler.
pub(super) fn col<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T, StoreError> {
    row.try_get(idx).map_err(db_err)
}
