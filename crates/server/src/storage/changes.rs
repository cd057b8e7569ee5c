//! Changes to what processes cache (API keys, a tenant's privacy state, its intervention
//! policies, erased learners), announced to every other process that shares the storage, so
//! that a key revoked or a consent withdrawn at one node is enforced at every node within
//! moments. The process that made the change has already updated its own caches.
//!
//! SQLite has one process: there is nobody to tell, and its subscribers hear nothing.
//! PostgreSQL sends an announcement with `NOTIFY learnpulse_changes`, tagged with the sending
//! process's origin; the listener of every process (the one that follows the log) turns the
//! others' into a local broadcast. A subscriber that falls behind (`Lagged`) must forget
//! everything it caches: it cannot know what it missed.

use tokio::sync::broadcast;

use super::{Storage, StoreError, TenantId};

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An API key was revoked or its expiry changed.
    Key(String),
    /// A tenant's privacy policy, roster, pseudonym keys or consents changed.
    Privacy(TenantId),
    /// A tenant's intervention policies changed.
    Policies(TenantId),
    /// These learners (their pseudonyms and identifiers) were erased from the tenant: drop them
    /// from memory, and the tenant's cached privacy state with them.
    Erased(TenantId, Vec<String>),
    /// An engine snapshot through this sequence number was saved: the learners it kept may
    /// leave memory.
    Snapshot(i64),
    /// Announcements may have been missed (a listener reconnected): forget everything cached.
    Everything,
}

/// Announcements kept for a subscriber that is momentarily busy.
pub(super) const BACKLOG: usize = 1_024;

impl Change {
    /// As sent between processes: `key:<id>`, `privacy:<tenant>`, `policies:<tenant>`.
    pub fn encode(&self) -> String {
        match self {
            Change::Key(id) => format!("key:{id}"),
            Change::Privacy(t) => format!("privacy:{t}"),
            Change::Policies(t) => format!("policies:{t}"),
            Change::Erased(t, learners) => format!(
                "erased:{t}:{}",
                serde_json::to_string(learners).expect("strings serialise")
            ),
            Change::Snapshot(covers) => format!("snapshot:{covers}"),
            Change::Everything => "everything:".to_owned(),
        }
    }

    pub fn decode(text: &str) -> Option<Change> {
        let (kind, value) = text.split_once(':')?;
        Some(match kind {
            "key" => Change::Key(value.to_owned()),
            "privacy" => Change::Privacy(value.parse().ok()?),
            "policies" => Change::Policies(value.parse().ok()?),
            "erased" => {
                let (tenant, learners) = value.split_once(':')?;
                Change::Erased(tenant.parse().ok()?, serde_json::from_str(learners).ok()?)
            }
            "snapshot" => Change::Snapshot(value.parse().ok()?),
            "everything" => Change::Everything,
            _ => return None,
        })
    }
}

impl Storage {
    /// Tells every other process sharing this storage that `change` happened.
    pub async fn announce(&self, change: Change) -> Result<(), StoreError> {
        match self {
            Storage::Sqlite(_) => Ok(()),
            Storage::Postgres(s) => s.announce(&change).await,
        }
    }

    /// Every change other processes announce from now on.
    pub fn changes(&self) -> broadcast::Receiver<Change> {
        each_backend!(self, s => s.changes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_survive_their_encoding() {
        for c in [
            Change::Key("lpk_0123".into()),
            Change::Privacy(7),
            Change::Policies(12),
            Change::Erased(3, vec!["p1_ab".into(), "ada:x".into()]),
            Change::Snapshot(5_000),
            Change::Everything,
        ] {
            assert_eq!(Change::decode(&c.encode()), Some(c));
        }
        assert_eq!(Change::decode("privacy:x"), None);
        assert_eq!(Change::decode("other:1"), None);
    }
}
