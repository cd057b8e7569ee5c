//! Which learners a node holds in memory, and which of them it may let go.
//!
//! A node does not need every learner in memory: the states are kept in the database with each
//! engine snapshot (`learner_states`), and copied to Redis when there is one. What it may drop
//! follows from one rule: **a learner whose state changed after the newest snapshot stays in
//! memory** (the snapshot has not kept that state yet: it is *changed*); every other learner
//! is *settled*, its state equal to the kept one, and the least recently used settled learners
//! go when the node holds more than its capacity.
//!
//! The rule gives the invariant the loads rely on: a learner this node does not hold has had
//! no event since the newest snapshot this node knows (else it would be changed, and held), so
//! any copy exact at that snapshot or later is exact now. A copy made *past* this node's
//! watermark (by a node ahead of it) already includes events this node has yet to apply:
//! [`Residency::already_in`] says which, and the hub does not apply those twice.
//!
//! Learners loaded for the batch the follower is about to apply are *pinned*: no read's
//! eviction can take them between the load and the apply.
//!
//! Pure bookkeeping; the hub holds it under its lock and does the I/O around it.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::storage::TenantId;

pub type LearnerKey = (TenantId, String);

#[derive(Debug, Clone, Copy)]
struct Held {
    last_used: u64,
    /// Sequence number of the latest event that changed the state.
    changed_at: i64,
}

#[derive(Debug, Default)]
pub struct Residency {
    capacity: usize,
    tick: u64,
    held: HashMap<LearnerKey, Held>,
    /// Settled learners by last use, oldest first: the eviction order.
    settled: BTreeMap<u64, LearnerKey>,
    /// Learners changed since the newest snapshot, with when.
    changed: HashSet<LearnerKey>,
    pinned: HashSet<LearnerKey>,
    /// Learners loaded from a copy past this node's watermark: the copy's sequence number.
    ahead: HashMap<LearnerKey, i64>,
    /// The newest snapshot this node knows of (0: none, so nothing kept may be trusted).
    snapshot: i64,
    /// Bumped at every eviction: a read that loaded a learner while this moved must not put
    /// its (possibly older) copy back.
    evictions: u64,
}

impl Residency {
    pub fn new(capacity: usize) -> Self {
        Residency {
            capacity: capacity.max(1),
            ..Residency::default()
        }
    }

    pub fn holds(&self, key: &LearnerKey) -> bool {
        self.held.contains_key(key)
    }

    /// How many learners are held.
    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    pub fn changed_count(&self) -> usize {
        self.changed.len()
    }

    /// The newest snapshot known; kept copies are trusted only once there is one.
    pub fn snapshot(&self) -> i64 {
        self.snapshot
    }

    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Notes a use (a read or an event) of a held learner.
    pub fn touch(&mut self, key: &LearnerKey) {
        let tick = self.next_tick();
        if let Some(h) = self.held.get_mut(key) {
            if !self.changed.contains(key) {
                self.settled.remove(&h.last_used);
                self.settled.insert(tick, key.clone());
            }
            h.last_used = tick;
        }
    }

    /// A learner loaded from a kept copy exact at `covers` enters memory, settled; `applied`
    /// is this node's watermark.
    pub fn admit(&mut self, key: LearnerKey, covers: i64, applied: i64) {
        if self.held.contains_key(&key) {
            return;
        }
        let tick = self.next_tick();
        self.held.insert(
            key.clone(),
            Held {
                last_used: tick,
                changed_at: 0,
            },
        );
        if covers > applied {
            self.ahead.insert(key.clone(), covers);
        }
        self.settled.insert(tick, key);
    }

    /// Whether the event at `seq` is already in the learner's state (it was loaded from a copy
    /// made past it).
    pub fn already_in(&mut self, key: &LearnerKey, seq: i64) -> bool {
        match self.ahead.get(key) {
            Some(covers) if seq <= *covers => true,
            Some(_) => {
                self.ahead.remove(key);
                false
            }
            None => false,
        }
    }

    /// The event at `seq` changed the learner's state (a new learner enters memory so).
    pub fn changed(&mut self, key: &LearnerKey, seq: i64) {
        let tick = self.next_tick();
        match self.held.get_mut(key) {
            Some(h) => {
                if !self.changed.contains(key) {
                    self.settled.remove(&h.last_used);
                }
                h.last_used = tick;
                h.changed_at = seq;
            }
            None => {
                self.held.insert(
                    key.clone(),
                    Held {
                        last_used: tick,
                        changed_at: seq,
                    },
                );
            }
        }
        self.changed.insert(key.clone());
    }

    /// A learner's state moved to another key (a pseudonym-key rotation adopted a history).
    pub fn renamed(&mut self, from: &LearnerKey, to: LearnerKey, seq: i64) {
        self.remove(from);
        self.changed(&to, seq);
    }

    /// The learners changed since the newest snapshot (what the next one must keep).
    pub fn changed_learners(&self) -> impl Iterator<Item = &LearnerKey> {
        self.changed.iter()
    }

    /// A snapshot covering the log through `covers` was saved: learners changed at or before
    /// it are settled.
    pub fn snapshot_saved(&mut self, covers: i64) {
        if covers <= self.snapshot {
            return;
        }
        self.snapshot = covers;
        let settle: Vec<LearnerKey> = self
            .changed
            .iter()
            .filter(|k| self.held.get(*k).is_none_or(|h| h.changed_at <= covers))
            .cloned()
            .collect();
        for key in settle {
            self.changed.remove(&key);
            if let Some(h) = self.held.get(&key) {
                self.settled.insert(h.last_used, key);
            }
        }
    }

    pub fn pin(&mut self, key: LearnerKey) {
        self.pinned.insert(key);
    }

    pub fn unpin_all(&mut self) {
        self.pinned.clear();
    }

    /// The learner leaves memory (an erasure, or a rename).
    pub fn remove(&mut self, key: &LearnerKey) {
        if let Some(h) = self.held.remove(key) {
            self.settled.remove(&h.last_used);
        }
        self.changed.remove(key);
        self.ahead.remove(key);
        self.pinned.remove(key);
    }

    /// The settled learners to let go, least recently used first, until at most `capacity`
    /// are held (or none settled and unpinned is left). They are no longer held on return.
    pub fn evict_over_capacity(&mut self) -> Vec<LearnerKey> {
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        while self.held.len() > self.capacity {
            let Some((tick, key)) = self.settled.pop_first() else {
                break;
            };
            if self.pinned.contains(&key) {
                skipped.push((tick, key));
                continue;
            }
            self.held.remove(&key);
            self.ahead.remove(&key);
            out.push(key);
        }
        self.settled.extend(skipped);
        if !out.is_empty() {
            self.evictions += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(name: &str) -> LearnerKey {
        (1, name.to_owned())
    }

    #[test]
    fn changed_learners_stay_until_a_snapshot_keeps_them() {
        let mut r = Residency::new(2);
        for (seq, name) in ["a", "b", "c", "d"].iter().enumerate() {
            r.changed(&k(name), seq as i64 + 1);
        }
        assert!(r.evict_over_capacity().is_empty(), "nothing kept yet");
        assert_eq!(r.held_count(), 4);
        r.snapshot_saved(3);
        // a, b, c are settled now; d (changed at 4) is not. Two must go, oldest first.
        assert_eq!(r.evict_over_capacity(), vec![k("a"), k("b")]);
        assert!(r.holds(&k("c")) && r.holds(&k("d")));
        assert_eq!(r.changed_count(), 1);
    }

    #[test]
    fn least_recently_used_goes_first_and_pins_hold() {
        let mut r = Residency::new(1);
        r.admit(k("a"), 5, 10);
        r.admit(k("b"), 5, 10);
        r.admit(k("c"), 5, 10);
        r.touch(&k("a"));
        r.pin(k("b"));
        // Oldest first: b (pinned: it stays), then c, then a (used after c).
        assert_eq!(r.evict_over_capacity(), vec![k("c"), k("a")]);
        assert!(r.holds(&k("b")));
        r.unpin_all();
        r.admit(k("e"), 5, 10);
        assert_eq!(r.evict_over_capacity(), vec![k("b")]);
        assert_eq!(r.evictions(), 2, "one per call that let learners go");
    }

    #[test]
    fn a_copy_past_the_watermark_already_holds_its_events() {
        let mut r = Residency::new(10);
        r.admit(k("a"), 20, 15);
        assert!(r.already_in(&k("a"), 18));
        assert!(r.already_in(&k("a"), 20));
        assert!(!r.already_in(&k("a"), 21));
        assert!(!r.already_in(&k("a"), 19), "forgotten once passed");
        r.admit(k("b"), 10, 15);
        assert!(!r.already_in(&k("b"), 16));
    }

    #[test]
    fn a_renamed_learner_moves_and_stays_changed() {
        let mut r = Residency::new(1);
        r.changed(&k("old"), 1);
        r.renamed(&k("old"), k("new"), 2);
        assert!(!r.holds(&k("old")) && r.holds(&k("new")));
        r.snapshot_saved(1);
        r.admit(k("x"), 1, 2);
        assert_eq!(
            r.evict_over_capacity(),
            vec![k("x")],
            "new changed at 2 > 1"
        );
    }
}
