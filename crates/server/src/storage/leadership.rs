//! Leadership: the duties that one process of an installation performs at a time, whatever the
//! number of processes sharing its storage (compliance monitoring with retention purges,
//! periodic engine snapshots).
//!
//! On SQLite one process owns the data directory, so it leads every duty from the start. On
//! PostgreSQL a duty is a session-level advisory lock held on a connection of its own: the
//! process that takes it leads until it lets go or its connection ends (a stop, a crash, a
//! network failure: PostgreSQL releases the lock with the session), and every other process
//! tries again each second, so another takes over within about a second of the leader's death.
//! [`Leadership::lost`] tells the leader when its connection has gone, so that it stops the
//! duty before another process can have started it.

use super::StoreError;

/// What one process does for the whole installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Duty {
    /// Compliance rules, incidents and retention purges (`compliance::incidents::monitor`).
    Compliance,
    /// Engine snapshots now and then, and at a graceful stop (`snapshot::periodically`).
    Snapshots,
}

impl Duty {
    pub const ALL: [Duty; 2] = [Duty::Compliance, Duty::Snapshots];

    pub fn name(self) -> &'static str {
        match self {
            Duty::Compliance => "compliance",
            Duty::Snapshots => "snapshots",
        }
    }

    /// Its advisory-lock key: "lpd" in ASCII, then the duty's number.
    pub fn lock_key(self) -> i64 {
        let n = match self {
            Duty::Compliance => 1,
            Duty::Snapshots => 2,
        };
        (0x006c_7064 << 8) | n
    }
}

/// A duty this process leads, until [`Leadership::lost`] resolves or it is dropped (which lets
/// go of it).
pub enum Leadership {
    /// The only process there is (the embedded backend): never lost.
    Sole,
    Postgres(super::postgres::HeldLock),
}

impl Leadership {
    /// Resolves when this process no longer leads (its lock's connection has ended).
    pub async fn lost(&mut self) {
        match self {
            Leadership::Sole => std::future::pending().await,
            Leadership::Postgres(lock) => lock.lost().await,
        }
    }
}

impl super::Storage {
    /// Waits until this process leads `duty`.
    pub async fn lead(&self, duty: Duty) -> Result<Leadership, StoreError> {
        match self {
            super::Storage::Sqlite(_) => Ok(Leadership::Sole),
            super::Storage::Postgres(s) => s.lead(duty).await.map(Leadership::Postgres),
        }
    }

    /// Whether other processes may share this storage (then no process may assume that an
    /// unfinished claim is its own leftover, say).
    pub fn is_shared(&self) -> bool {
        matches!(self, super::Storage::Postgres(_))
    }
}
