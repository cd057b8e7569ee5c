//! Moving an installation from one backend to another, table by table (`learnpulse storage
//! copy`): the backend-neutral catalogue of what is kept, and [`TransferStore`], which each
//! backend implements to read its tables out and write them in.
//!
//! The catalogue names tables and columns as the PostgreSQL schema does (a translation of the
//! SQLite one); each backend maps the names to its own layout (SQLite interns actors, verbs and
//! activities, and keeps the outbox in a file of its own). Rows travel as [`Cell`]s; a column's
//! [`Kind`] says how a backend stores the cell (a UUID is 16 bytes, a flag is 0 or 1).
//!
//! Derived data is not copied: the secondary indexes, engine snapshots, kept learner states and
//! `log_head` are rebuilt by the target. What the copy itself must do (fill the live inputs of old rows,
//! verify counts and the audit chain) is in `crate::transfer`.

use super::StoreError;

/// How a column's values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Real,
    Text,
    Bytes,
    /// 16 bytes ([`Cell::Bytes`]); PostgreSQL's `uuid`.
    Uuid,
    /// 0 or 1 ([`Cell::Int`]); PostgreSQL's `boolean`.
    Bool,
}

/// One value of a row, as it travels between backends.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

/// One table of the catalogue.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Kind)],
    /// The primary key's columns (a prefix of `columns`): rows are read in its order, page by
    /// page, continuing after the last key read.
    pub key: usize,
    /// Its first column is an identity (PostgreSQL `GENERATED ALWAYS AS IDENTITY`): the target
    /// keeps the source's values and moves its sequence past them.
    pub identity: bool,
}

impl Table {
    pub fn column_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.columns.iter().map(|(name, _)| *name)
    }

    pub fn key_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.column_names().take(self.key)
    }
}

use Kind::{Bool, Bytes, Int, Real, Text, Uuid};

/// Everything kept that is not derived, in an order that satisfies foreign keys.
pub const TABLES: &[Table] = &[
    Table {
        name: "tenants",
        columns: &[("id", Int), ("name", Text), ("created_us", Int)],
        key: 1,
        identity: true,
    },
    Table {
        name: "api_keys",
        columns: &[
            ("key_id", Text),
            ("tenant_id", Int),
            ("role", Text),
            ("secret_sha256", Bytes),
            ("label", Text),
            ("created_us", Int),
            ("revoked_us", Int),
            ("expires_us", Int),
            ("last_used_us", Int),
            ("groups", Text),
        ],
        key: 1,
        identity: false,
    },
    Table {
        name: "tenant_settings",
        columns: &[("tenant_id", Int), ("name", Text), ("value", Text)],
        key: 2,
        identity: false,
    },
    Table {
        name: "documents",
        columns: &[
            ("tenant_id", Int),
            ("kind", Text),
            ("activity", Text),
            ("agent", Text),
            ("registration", Text),
            ("id", Text),
            ("learner", Text),
            ("content_type", Text),
            ("body", Bytes),
            ("etag", Text),
            ("updated_us", Int),
        ],
        key: 6,
        identity: false,
    },
    Table {
        name: "attachments",
        columns: &[
            ("tenant_id", Int),
            ("sha2", Text),
            ("actor", Text),
            ("content_type", Text),
            ("body", Bytes),
        ],
        key: 3,
        identity: false,
    },
    Table {
        name: "tenant_secrets",
        columns: &[
            ("tenant_id", Int),
            ("purpose", Text),
            ("version", Int),
            ("sealed", Bytes),
            ("created_us", Int),
        ],
        key: 3,
        identity: false,
    },
    Table {
        name: "privacy_settings",
        columns: &[
            ("tenant_id", Int),
            ("policy", Text),
            ("roster_sealed", Bytes),
            ("updated_us", Int),
        ],
        key: 1,
        identity: false,
    },
    Table {
        name: "consents",
        columns: &[
            ("tenant_id", Int),
            ("learner", Text),
            ("record", Text),
            ("updated_us", Int),
        ],
        key: 2,
        identity: false,
    },
    Table {
        name: "consent_changes",
        columns: &[
            ("id", Int),
            ("tenant_id", Int),
            ("learner", Text),
            ("record", Text),
            ("by_key", Text),
            ("at_us", Int),
        ],
        key: 1,
        identity: true,
    },
    STATEMENTS,
    Table {
        name: "vault",
        columns: &[
            ("tenant_id", Int),
            ("statement_id", Uuid),
            ("sealed", Bytes),
        ],
        key: 2,
        identity: false,
    },
    Table {
        name: "reidentifications",
        columns: &[
            ("id", Int),
            ("tenant_id", Int),
            ("statement_id", Uuid),
            ("placeholder", Text),
            ("by_key", Text),
            ("at_us", Int),
        ],
        key: 1,
        identity: true,
    },
    Table {
        name: "dp_budgets",
        columns: &[("tenant_id", Int), ("analyst", Text), ("spent", Real)],
        key: 2,
        identity: false,
    },
    Table {
        name: "dp_ledger",
        columns: &[
            ("id", Int),
            ("tenant_id", Int),
            ("analyst", Text),
            ("query", Text),
            ("epsilon", Real),
            ("at_us", Int),
        ],
        key: 1,
        identity: true,
    },
    Table {
        name: "audit_log",
        columns: &[
            ("seq", Int),
            ("tenant_id", Int),
            ("at_us", Int),
            ("actor", Text),
            ("action", Text),
            ("subject", Text),
            ("detail", Text),
            ("prev_hash", Bytes),
            ("hash", Bytes),
        ],
        key: 1,
        identity: false,
    },
    Table {
        name: "audit_checkpoints",
        columns: &[
            ("seq", Int),
            ("hash", Bytes),
            ("at_us", Int),
            ("signature", Text),
            ("tenant_id", Int),
        ],
        key: 1,
        identity: false,
    },
    Table {
        name: "server_secrets",
        columns: &[("purpose", Text), ("sealed", Bytes)],
        key: 1,
        identity: false,
    },
    Table {
        name: "compliance_settings",
        columns: &[("tenant_id", Int), ("rules", Text)],
        key: 1,
        identity: false,
    },
    Table {
        name: "subject_requests",
        columns: &[
            ("id", Int),
            ("tenant_id", Int),
            ("kind", Text),
            ("learner", Text),
            ("received_us", Int),
            ("deadline_us", Int),
            ("completed_us", Int),
            ("summary", Text),
        ],
        key: 1,
        identity: true,
    },
    Table {
        name: "incidents",
        columns: &[
            ("id", Int),
            ("tenant_id", Int),
            ("rule", Text),
            ("severity", Text),
            ("opened_us", Int),
            ("closed_us", Int),
            ("evidence", Text),
            ("subjects", Text),
            ("actions", Text),
        ],
        key: 1,
        identity: true,
    },
    Table {
        name: "webhook_receivers",
        columns: &[
            ("id", Int),
            ("tenant", Int),
            ("name", Text),
            ("max_batch", Int),
            ("events", Text),
            ("kinds", Text),
            ("cognitive_data", Bool),
            ("secrets", Bytes),
            ("created_ms", Int),
        ],
        key: 1,
        identity: true,
    },
    Table {
        name: "webhook_endpoints",
        columns: &[
            ("id", Int),
            ("receiver", Int),
            ("url", Text),
            ("weight", Int),
        ],
        key: 1,
        identity: true,
    },
    Table {
        name: "webhook_messages",
        columns: &[
            ("id", Text),
            ("receiver", Int),
            ("tenant", Int),
            ("learner", Text),
            ("seq", Int),
            ("payload", Text),
            ("created_ms", Int),
            ("state", Int),
            ("attempts", Int),
            ("next_attempt_ms", Int),
            ("last_status", Int),
            ("last_error", Text),
            ("endpoint", Int),
            ("done_ms", Int),
            ("leased", Bool),
        ],
        key: 1,
        identity: false,
    },
    Table {
        name: "webhook_watermark",
        columns: &[("id", Int), ("seq", Int)],
        key: 1,
        identity: false,
    },
];

/// The event log. `actor`, `verb` and `activity` are the values themselves (SQLite stores ids
/// of interned rows). `live` is `''` for a statement that means nothing to the followers and
/// NULL for a row stored before `live` existed (the copy fills those in before writing).
/// `target` is the statement a StatementRef object names; `related` its related keys
/// (`storage/keys.rs`).
pub const STATEMENTS: Table = Table {
    name: "statements",
    columns: &[
        ("seq", Int),
        ("tenant_id", Int),
        ("statement_id", Uuid),
        ("stored_us", Int),
        ("actor", Text),
        ("verb", Text),
        ("activity", Text),
        ("registration", Uuid),
        ("voided", Bool),
        ("fingerprint", Bytes),
        ("json", Text),
        ("live", Text),
        ("target", Uuid),
        ("related", Text),
    ],
    key: 1,
    identity: false,
};

/// A table by name.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

storage_trait! {
/// Reading every table out and writing it into an empty store. Only for `storage copy`: an
/// import writes around the backend's writer, so nothing else may use the target meanwhile.
pub trait TransferStore {
    /// Up to `limit` rows of `table` in key order, after the row whose key is `after` (from the
    /// start when `None`); each row has the table's columns in catalogue order.
    async fn export_rows(&self, table: &'static Table, after: Option<Vec<Cell>>, limit: usize) -> Result<Vec<Vec<Cell>>, StoreError>;

    /// Writes rows of `table` as they are (keys included), in one transaction.
    async fn import_rows(&self, table: &'static Table, rows: Vec<Vec<Cell>>) -> Result<(), StoreError>;

    /// How many rows `table` has.
    async fn count_rows(&self, table: &'static Table) -> Result<u64, StoreError>;

    /// After the last import: brings what the backend derives from the copied rows up to date
    /// (identity sequences, the log's head).
    async fn finish_import(&self) -> Result<(), StoreError>;
}
}

/// The key of a row (its first `table.key` cells), to continue after it.
pub fn key_of(table: &Table, row: &[Cell]) -> Vec<Cell> {
    row[..table.key].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixes_and_names_unique() {
        let mut names = std::collections::HashSet::new();
        for t in TABLES {
            assert!(names.insert(t.name), "{} twice", t.name);
            assert!(t.key >= 1 && t.key <= t.columns.len(), "{}", t.name);
            if t.identity {
                assert_eq!(t.columns[0].1, Kind::Int, "{}", t.name);
                assert_eq!(t.key, 1, "{}", t.name);
            }
        }
        assert!(table("statements").is_some());
        assert!(table("engine_snapshots").is_none(), "snapshots are derived");
        assert!(table("learner_states").is_none(), "kept states are derived");
    }
}
