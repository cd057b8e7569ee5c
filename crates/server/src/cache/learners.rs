//! Learner states over the cache's lower layers: **L2** Redis (`lp:learner:<tenant>:<learner>`,
//! shared by every node) and **L3** the kept states in the database
//! ([`SnapshotStore::kept_learners`]). L1 is the hub's set of learners in memory
//! (`crate::live`), which decides when to come here and what a copy it gets back means.
//!
//! Every copy carries the log sequence number it is exact at (`covers`): the state after
//! every entry up to it. Redis holds `<covers> <state>`, and a write replaces an entry only
//! with one at least as new (a Lua script, atomic in Redis), so that two nodes writing the same
//! learner at different points never move it backwards. The hub trusts an L2 copy only when
//! it is at least as new as the newest snapshot it knows (see `crate::live::resident`); others
//! count as misses and are read again from L3.
//!
//! The states are opaque bytes here; the hub encodes and decodes them.

use std::sync::Arc;
use std::time::Duration;

use super::{Layer, Layered, Shared, count};
use crate::storage::{SnapshotStore, Storage, StoreError, TenantId};

/// How long an entry lives in Redis without being written again.
const TTL: Duration = Duration::from_secs(3_600);

/// Replaces each entry unless Redis holds a newer one. KEYS: the entries; ARGV: the TTL in
/// milliseconds, then `covers, state` per key.
const KEEP_NEWER: &str = r#"
for i, key in ipairs(KEYS) do
  local covers = tonumber(ARGV[2 * i])
  local old = redis.call('GET', key)
  local held = old and tonumber(string.match(old, '^(%d+) '))
  if not (held and held > covers) then
    redis.call('SET', key, ARGV[2 * i] .. ' ' .. ARGV[2 * i + 1], 'PX', ARGV[1])
  end
end
return 1
"#;

/// One learner's state as found below L1.
#[derive(Debug, Clone)]
pub struct Found {
    pub learner: String,
    /// The state is exact after every log entry through this sequence number.
    pub covers: i64,
    pub body: Vec<u8>,
    pub layer: Layer,
}

/// L2 and L3 for learner states.
pub struct LearnerLayers {
    storage: Arc<Storage>,
    shared: Arc<Shared>,
}

impl LearnerLayers {
    pub fn new(storage: Arc<Storage>, shared: Arc<Shared>) -> Self {
        LearnerLayers { storage, shared }
    }

    /// Whether there is an L2 to write to.
    pub fn shares(&self) -> bool {
        !self.shared.is_none()
    }

    fn key(tenant: TenantId, learner: &str) -> String {
        format!("lp:learner:{tenant}:{learner}")
    }

    /// The states of `learners` that are kept somewhere: from L2 when Redis has a copy at
    /// `trusted_from` or newer, else from L3 (and then written to L2, as exact at
    /// `max(kept, applied)`: a kept state that is older than this node's watermark is still
    /// exact there, since the learner has had no event since, or it would be in memory).
    pub async fn load(
        &self,
        tenant: TenantId,
        learners: &[String],
        trusted_from: i64,
        applied: i64,
    ) -> Result<Vec<Found>, StoreError> {
        let mut found = Vec::with_capacity(learners.len());
        let mut missing = Vec::new();
        let keys: Vec<String> = learners.iter().map(|l| Self::key(tenant, l)).collect();
        match self.shared.get_many(&keys).await {
            Layered::Answer(values) => {
                let (mut hits, mut stale) = (0, 0);
                for (learner, value) in learners.iter().zip(values) {
                    match value.as_deref().and_then(split_entry) {
                        Some((covers, body)) if covers >= trusted_from => {
                            hits += 1;
                            found.push(Found {
                                learner: learner.clone(),
                                covers,
                                body: body.to_vec(),
                                layer: Layer::L2,
                            });
                        }
                        Some(_) => {
                            stale += 1;
                            missing.push(learner.clone());
                        }
                        None => missing.push(learner.clone()),
                    }
                }
                count("learners", "l2", "hit", hits);
                count("learners", "l2", "stale", stale);
                count(
                    "learners",
                    "l2",
                    "miss",
                    (missing.len() - stale as usize) as u64,
                );
            }
            Layered::Failed => {
                count("learners", "l2", "error", learners.len() as u64);
                missing = learners.to_vec();
            }
            Layered::Absent => missing = learners.to_vec(),
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let asked = missing.len();
        let kept = self.storage.kept_learners(tenant, missing).await?;
        count("learners", "l3", "hit", kept.len() as u64);
        count("learners", "l3", "miss", (asked - kept.len()) as u64);
        let mut promote = Vec::with_capacity(kept.len());
        for k in kept {
            let covers = k.covers_seq.max(applied);
            promote.push((k.learner.clone(), covers, k.body.clone()));
            found.push(Found {
                learner: k.learner,
                covers,
                body: k.body,
                layer: Layer::L3,
            });
        }
        self.share(tenant, promote).await;
        Ok(found)
    }

    /// Writes states to L2 (learners this node takes out of memory, or just read from L3):
    /// `(learner, covers, state)`. Best effort: L2 is never a dependency.
    pub async fn share(&self, tenant: TenantId, states: Vec<(String, i64, Vec<u8>)>) {
        if self.shared.is_none() || states.is_empty() {
            return;
        }
        let keys: Vec<String> = states
            .iter()
            .map(|(l, _, _)| Self::key(tenant, l))
            .collect();
        let mut args = Vec::with_capacity(1 + 2 * states.len());
        args.push(TTL.as_millis().to_string().into_bytes());
        for (_, covers, body) in states {
            args.push(covers.to_string().into_bytes());
            args.push(body);
        }
        if !self.shared.script(KEEP_NEWER, &keys, args).await {
            count("learners", "l2", "error", keys.len() as u64);
        }
    }

    /// Removes erased learners' copies from L2 (L3's are removed with the erasure).
    pub async fn forget(&self, tenant: TenantId, learners: &[String]) {
        let keys: Vec<String> = learners.iter().map(|l| Self::key(tenant, l)).collect();
        self.shared.delete_many(&keys).await;
    }
}

/// `<covers> <state>` → (covers, state).
fn split_entry(value: &[u8]) -> Option<(i64, &[u8])> {
    let space = value.iter().position(|b| *b == b' ')?;
    let covers = std::str::from_utf8(&value[..space]).ok()?.parse().ok()?;
    Some((covers, &value[space + 1..]))
}

#[cfg(test)]
mod tests {
    use super::split_entry;

    #[test]
    fn entries_split_into_covers_and_state() {
        assert_eq!(split_entry(b"42 {\"a\":1}"), Some((42, &b"{\"a\":1}"[..])));
        assert_eq!(split_entry(b"x {}"), None);
        assert_eq!(split_entry(b"42"), None);
    }
}
