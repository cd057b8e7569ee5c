//! [`TransferStore`] on PostgreSQL. The catalogue's names are this schema's, so every table is
//! read with one generic `SELECT` and written with one multi-row `INSERT … SELECT FROM
//! unnest(…)` per page. Identity columns keep the source's values (`OVERRIDING SYSTEM VALUE`);
//! [`TransferStore::finish_import`] then moves their sequences past them.

use tokio_postgres::types::ToSql;

use super::{PostgresStorage, db_err};
use crate::storage::StoreError;
use crate::storage::transfer::{Cell, Kind, STATEMENTS, TABLES, Table, TransferStore};

type Param = Box<dyn ToSql + Sync + Send>;

fn sql_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Int => "bigint",
        Kind::Real => "float8",
        Kind::Text => "text",
        Kind::Bytes => "bytea",
        Kind::Uuid => "uuid",
        Kind::Bool => "boolean",
    }
}

fn bad_cell(column: &str, cell: &Cell) -> StoreError {
    StoreError::Internal(format!("column {column}: unexpected value {cell:?}"))
}

fn uuid_of(column: &str, cell: &Cell) -> Result<Option<uuid::Uuid>, StoreError> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Bytes(b) => uuid::Uuid::from_slice(b)
            .map(Some)
            .map_err(|_| bad_cell(column, cell)),
        _ => Err(bad_cell(column, cell)),
    }
}

/// One cell as a parameter of its column's type.
fn param(column: &str, kind: Kind, cell: &Cell) -> Result<Param, StoreError> {
    Ok(match (kind, cell) {
        (Kind::Int, Cell::Int(i)) => Box::new(*i),
        (Kind::Int, Cell::Null) => Box::new(None::<i64>),
        (Kind::Real, Cell::Real(f)) => Box::new(*f),
        (Kind::Real, Cell::Int(i)) => Box::new(*i as f64),
        (Kind::Real, Cell::Null) => Box::new(None::<f64>),
        (Kind::Text, Cell::Text(s)) => Box::new(s.clone()),
        (Kind::Text, Cell::Null) => Box::new(None::<String>),
        (Kind::Bytes, Cell::Bytes(b)) => Box::new(b.clone()),
        (Kind::Bytes, Cell::Null) => Box::new(None::<Vec<u8>>),
        (Kind::Uuid, c) => Box::new(uuid_of(column, c)?),
        (Kind::Bool, Cell::Int(i)) => Box::new(*i != 0),
        (Kind::Bool, Cell::Null) => Box::new(None::<bool>),
        _ => return Err(bad_cell(column, cell)),
    })
}

/// One column of a page, as the array `unnest` takes.
fn column_array(table: &Table, index: usize, rows: &[Vec<Cell>]) -> Result<Param, StoreError> {
    let (column, kind) = table.columns[index];
    let cells = rows.iter().map(|row| &row[index]);
    // The statements' `live`: '' (nothing for followers) is NULL here.
    let nothing = |c: &Cell| matches!(c, Cell::Null) || *c == Cell::Text(String::new());
    Ok(match kind {
        Kind::Int => Box::new(
            cells
                .map(|c| match c {
                    Cell::Int(i) => Ok(Some(*i)),
                    Cell::Null => Ok(None),
                    _ => Err(bad_cell(column, c)),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Kind::Real => Box::new(
            cells
                .map(|c| match c {
                    Cell::Real(f) => Ok(Some(*f)),
                    Cell::Int(i) => Ok(Some(*i as f64)),
                    Cell::Null => Ok(None),
                    _ => Err(bad_cell(column, c)),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Kind::Text => Box::new(
            cells
                .map(|c| match c {
                    c if table.name == STATEMENTS.name && column == "live" && nothing(c) => {
                        Ok(None)
                    }
                    Cell::Text(s) => Ok(Some(s.clone())),
                    Cell::Null => Ok(None),
                    _ => Err(bad_cell(column, c)),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Kind::Bytes => Box::new(
            cells
                .map(|c| match c {
                    Cell::Bytes(b) => Ok(Some(b.clone())),
                    Cell::Null => Ok(None),
                    _ => Err(bad_cell(column, c)),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Kind::Uuid => Box::new(
            cells
                .map(|c| uuid_of(column, c))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Kind::Bool => Box::new(
            cells
                .map(|c| match c {
                    Cell::Int(i) => Ok(Some(*i != 0)),
                    Cell::Null => Ok(None),
                    _ => Err(bad_cell(column, c)),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    })
}

fn cell_of(row: &tokio_postgres::Row, index: usize, kind: Kind) -> Cell {
    fn or_null<T>(v: Option<T>, f: impl FnOnce(T) -> Cell) -> Cell {
        v.map_or(Cell::Null, f)
    }
    match kind {
        Kind::Int => or_null(row.get::<_, Option<i64>>(index), Cell::Int),
        Kind::Real => or_null(row.get::<_, Option<f64>>(index), Cell::Real),
        Kind::Text => or_null(row.get::<_, Option<String>>(index), Cell::Text),
        Kind::Bytes => or_null(row.get::<_, Option<Vec<u8>>>(index), Cell::Bytes),
        Kind::Uuid => or_null(row.get::<_, Option<uuid::Uuid>>(index), |u| {
            Cell::Bytes(u.as_bytes().to_vec())
        }),
        Kind::Bool => or_null(row.get::<_, Option<bool>>(index), |b| Cell::Int(b as i64)),
    }
}

impl TransferStore for PostgresStorage {
    async fn export_rows(
        &self,
        table: &'static Table,
        after: Option<Vec<Cell>>,
        limit: usize,
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        let columns: Vec<_> = table.column_names().collect();
        let key: Vec<_> = table.key_names().collect();
        let mut params: Vec<Param> = Vec::new();
        let mut filter = String::new();
        if let Some(after) = &after {
            for (i, cell) in after.iter().enumerate() {
                let (column, kind) = table.columns[i];
                params.push(param(column, kind, cell)?);
            }
            let marks: Vec<_> = (1..=key.len()).map(|i| format!("${i}")).collect();
            filter = format!("WHERE ({}) > ({})", key.join(", "), marks.join(", "));
        }
        params.push(Box::new(limit as i64));
        let sql = format!(
            "SELECT {} FROM {} {filter} ORDER BY {} LIMIT ${}",
            columns.join(", "),
            table.name,
            key.join(", "),
            params.len()
        );
        let client = self.client().await?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as _).collect();
        let rows = client.query(&sql, &refs).await.map_err(db_err)?;
        let is_statements = table.name == STATEMENTS.name;
        Ok(rows
            .iter()
            .map(|row| {
                table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, (column, kind))| match cell_of(row, i, *kind) {
                        // NULL here is "nothing for followers", '' in the catalogue.
                        Cell::Null if is_statements && *column == "live" => {
                            Cell::Text(String::new())
                        }
                        cell => cell,
                    })
                    .collect()
            })
            .collect())
    }

    async fn import_rows(
        &self,
        table: &'static Table,
        rows: Vec<Vec<Cell>>,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let columns: Vec<_> = table.column_names().collect();
        let arrays = (0..columns.len())
            .map(|i| column_array(table, i, &rows))
            .collect::<Result<Vec<_>, _>>()?;
        let unnest: Vec<_> = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| format!("${}::{}[]", i + 1, sql_type(*kind)))
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) {} SELECT * FROM unnest({})",
            table.name,
            columns.join(", "),
            if table.identity {
                "OVERRIDING SYSTEM VALUE"
            } else {
                ""
            },
            unnest.join(", ")
        );
        let client = self.client().await?;
        let refs: Vec<&(dyn ToSql + Sync)> = arrays.iter().map(|p| &**p as _).collect();
        client.execute(&sql, &refs).await.map_err(db_err)?;
        Ok(())
    }

    async fn count_rows(&self, table: &'static Table) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(&format!("SELECT count(*) FROM {}", table.name), &[])
            .await
            .map_err(db_err)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn finish_import(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        for table in TABLES.iter().filter(|t| t.identity) {
            let id = table.columns[0].0;
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{name}', '{id}'), \
                     COALESCE(MAX({id}), 0) + 1, false) FROM {name}",
                    name = table.name
                ),
                &[],
            )
            .await
            .map_err(db_err)?;
        }
        let row = tx
            .query_one(
                "UPDATE log_head SET \
                 seq = COALESCE((SELECT MAX(seq) FROM statements), 0), \
                 stored_us = COALESCE((SELECT stored_us FROM statements ORDER BY seq DESC LIMIT 1), 0) \
                 WHERE id = 1 RETURNING seq",
                &[],
            )
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        self.committed.send_replace(row.get(0));
        Ok(())
    }
}
