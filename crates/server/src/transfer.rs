//! `learnpulse storage copy`: moves an installation from one backend to another (typically the
//! embedded SQLite to PostgreSQL, when one machine is no longer enough) and proves the copy
//! whole before anyone points a server at it.
//!
//! Every table of the catalogue ([`crate::storage::transfer::TABLES`]) is read from the source
//! page by page in key order and written to the target as it is: keys, sequence numbers, sealed
//! secrets and the audit chain's hashes unchanged, so the same master key opens the copy and
//! the chain verifies against the same signing key. Rows of old data directories stored before
//! the log kept the followers' input beside each statement get it filled in on the way
//! (decoded from their JSON once, here, rather than on every replay).
//!
//! Afterwards the copy is verified: every table has as many rows in the target as in the
//! source, the log's head is the same, and the audit chain, read back from the target, verifies
//! entry by entry and checkpoint by checkpoint.
//!
//! The source must not be written meanwhile (stop its server first), and the target must be
//! empty: a copy never merges into an installation that is in use.

use learnpulse_compliance::audit;

use crate::live::LiveInput;
use crate::privacy::seal::Sealer;
use crate::storage::transfer::{Cell, STATEMENTS, TABLES, Table, TransferStore, key_of};
use crate::storage::{AuditStore, EventLog, Storage, StoreError};

/// Rows per page (one transaction in the target each).
const PAGE: usize = 5_000;

/// What a copy moved, table by table.
#[derive(Debug, Default)]
pub struct CopyReport {
    pub tables: Vec<(&'static str, u64)>,
    /// Old statements whose followers' input was decoded from their JSON during the copy.
    pub filled_live_inputs: u64,
    /// Audit entries verified in the target (0 when the source had no chain yet).
    pub audit_entries_verified: u64,
    pub log_head: i64,
}

impl CopyReport {
    pub fn rows(&self, table: &str) -> u64 {
        self.tables
            .iter()
            .find(|(name, _)| *name == table)
            .map_or(0, |(_, n)| *n)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the target is not empty: table {table} has {rows} rows (a copy never merges)")]
    TargetNotEmpty { table: &'static str, rows: u64 },
    #[error("after the copy, {table} is {in_target} in the target and {in_source} in the source")]
    CountMismatch {
        table: &'static str,
        in_source: u64,
        in_target: u64,
    },
    #[error("the audit chain does not verify in the target: entry {seq}: {reason}")]
    AuditChain { seq: u64, reason: String },
    #[error("the source has audit entries but no audit signing key")]
    NoSigningKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How far the copy is, for a progress display: `done` of `total` rows of `table`.
pub type Progress<'a> = &'a mut dyn FnMut(&'static str, u64, u64);

/// Copies everything from `source` into the empty `target`, then verifies it. `master` opens
/// the audit signing key (the same for both: sealed secrets are copied as they are).
pub async fn copy(
    source: &Storage,
    target: &Storage,
    master: &Sealer,
    progress: Progress<'_>,
) -> Result<CopyReport, CopyError> {
    for table in TABLES {
        let rows = target.count_rows(table).await?;
        if rows > 0 {
            return Err(CopyError::TargetNotEmpty {
                table: table.name,
                rows,
            });
        }
    }
    let mut report = CopyReport::default();
    for table in TABLES {
        let total = source.count_rows(table).await?;
        let copied = copy_table(source, target, table, total, &mut report, progress).await?;
        report.tables.push((table.name, copied));
    }
    target.finish_import().await?;
    verify(source, target, master, &mut report).await?;
    Ok(report)
}

async fn copy_table(
    source: &Storage,
    target: &Storage,
    table: &'static Table,
    total: u64,
    report: &mut CopyReport,
    progress: Progress<'_>,
) -> Result<u64, CopyError> {
    let mut after: Option<Vec<Cell>> = None;
    let mut copied = 0;
    progress(table.name, 0, total);
    loop {
        let mut rows = source.export_rows(table, after.take(), PAGE).await?;
        let Some(last) = rows.last() else {
            return Ok(copied);
        };
        after = Some(key_of(table, last));
        if table.name == STATEMENTS.name {
            report.filled_live_inputs += fill_live_inputs(&mut rows);
        }
        copied += rows.len() as u64;
        target.import_rows(table, rows).await?;
        progress(table.name, copied, total);
    }
}

/// Statements from before the log kept the followers' input (a NULL `live`) get it now,
/// decoded from their JSON as a follower would; returns how many.
fn fill_live_inputs(rows: &mut [Vec<Cell>]) -> u64 {
    let live = column(&STATEMENTS, "live");
    let json = column(&STATEMENTS, "json");
    let mut filled = 0;
    for row in rows {
        if row[live] != Cell::Null {
            continue;
        }
        let decoded = match &row[json] {
            Cell::Text(text) => crate::xapi::mapping::live_input_from_json(text),
            _ => None,
        };
        row[live] = Cell::Text(decoded.as_ref().map(LiveInput::encode).unwrap_or_default());
        filled += 1;
    }
    filled
}

fn column(table: &Table, name: &str) -> usize {
    table
        .column_names()
        .position(|c| c == name)
        .expect("the catalogue has the column")
}

async fn verify(
    source: &Storage,
    target: &Storage,
    master: &Sealer,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    for table in TABLES {
        let (source_rows, target_rows) = (
            source.count_rows(table).await?,
            target.count_rows(table).await?,
        );
        if source_rows != target_rows || report.rows(table.name) != source_rows {
            return Err(CopyError::CountMismatch {
                table: table.name,
                in_source: source_rows,
                in_target: target_rows,
            });
        }
    }
    report.log_head = target.head().await?;
    let source_head = source.head().await?;
    if report.log_head != source_head {
        return Err(CopyError::CountMismatch {
            table: "log_head",
            in_source: source_head as u64,
            in_target: report.log_head as u64,
        });
    }
    let entries = crate::storage::audit::entries_after(target, 0, None).await?;
    if entries.is_empty() {
        return Ok(());
    }
    let key = crate::audit::stored_signing_key(target, master)
        .await?
        .ok_or(CopyError::NoSigningKey)?;
    let checkpoints = target.audit_checkpoints().await?;
    let verified =
        audit::verify_from(None, &entries, &checkpoints, &key.verifying_key()).map_err(|b| {
            CopyError::AuditChain {
                seq: b.seq,
                reason: b.reason,
            }
        })?;
    report.audit_entries_verified = verified.entries;
    Ok(())
}
