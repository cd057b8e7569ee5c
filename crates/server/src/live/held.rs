//! What the hub holds under its one lock, and the moves of a learner in and out of memory.

use std::collections::HashMap;
use std::sync::Arc;

use learnpulse_core::{Engine, EngineParams, LearningEvent, SkillModel};

use super::resident::{LearnerKey, Residency};
use super::{Groups, Interventions, KeptState, LearnerUpdate, LiveInput};
use crate::storage::{LogEntry, TenantId};

/// What the hub holds, under one lock: engines (item norms and the learners in memory),
/// interventions, which learners are in memory, and the groups.
pub(super) struct Held {
    pub(super) engines: HashMap<TenantId, Engine>,
    pub(super) interventions: HashMap<TenantId, Interventions>,
    pub(super) residency: Residency,
    pub(super) groups: HashMap<TenantId, Groups>,
    /// The learners to rebuild at a voiding statement, by (tenant, its sequence number): read
    /// by [`super::LearnerHub::prepare`], used by [`super::LearnerHub::apply`].
    pub(super) rebuilds: HashMap<(TenantId, i64), Rebuild>,
}

/// A learner whose answer was voided, and the history they are rebuilt from.
pub(super) struct Rebuild {
    pub(super) learner: String,
    /// Their events that are not voided, in log order.
    pub(super) history: Vec<LearningEvent>,
}

impl Rebuild {
    /// What voiding the statement at `voided_seq` asks of the hub, from its actor's entries
    /// ([`crate::storage::EventLog::actor_history`]); `None` when it was no learning event.
    ///
    /// A learner whose history spans a pseudonym-key rotation (their statements name older
    /// pseudonyms) is not rebuilt: their statements under the older pseudonyms have another
    /// actor, so this history would be incomplete, and a rebuild would lose the rest.
    pub(super) fn of(voided_seq: i64, entries: &[LogEntry]) -> Option<Rebuild> {
        let voided = entries.iter().find(|e| e.seq == voided_seq)?;
        let Some(LiveInput::Event { event, .. }) = LiveInput::of(voided) else {
            return None;
        };
        let learner = event.learner;
        let mut history = Vec::new();
        for entry in entries {
            if let Some(LiveInput::Event { event, previous }) = LiveInput::of(entry)
                && event.learner == learner
            {
                if !previous.is_empty() {
                    tracing::warn!(
                        seq = voided_seq,
                        "a voided answer is not retracted: the learner's history spans a pseudonym-key rotation"
                    );
                    return None;
                }
                if !entry.voided {
                    history.push(event);
                }
            }
        }
        Some(Rebuild { learner, history })
    }
}

impl Held {
    pub(super) fn engine(
        &mut self,
        tenant: TenantId,
        params: EngineParams,
        model: &Arc<SkillModel>,
    ) -> &mut Engine {
        self.engines
            .entry(tenant)
            .or_insert_with(|| Engine::with_model(params, model.clone()))
    }

    /// Puts a learner found below L1 into memory (unless it is there already).
    pub(super) fn admit(
        &mut self,
        tenant: TenantId,
        kept: KeptState,
        covers: i64,
        applied: i64,
        params: EngineParams,
        model: &Arc<SkillModel>,
    ) {
        let key = (tenant, kept.state.learner.clone());
        if self.residency.holds(&key) {
            return;
        }
        self.interventions
            .entry(tenant)
            .or_default()
            .memory
            .by_learner
            .insert(key.1.clone(), kept.memory);
        self.engine(tenant, params, model).insert(kept.state);
        self.residency.admit(key, covers, applied);
    }

    /// Rebuilds the learner whose answer the voiding statement at `seq` voided (read by
    /// `prepare`), unless their state was loaded from a copy made past it; returns the new
    /// state for the streams.
    pub(super) fn rebuild(
        &mut self,
        tenant: TenantId,
        seq: i64,
        params: EngineParams,
        model: &Arc<SkillModel>,
    ) -> Option<LearnerUpdate> {
        let Rebuild { learner, history } = self.rebuilds.remove(&(tenant, seq))?;
        let key = (tenant, learner);
        // `prepare` loaded the learner if they were kept anywhere: one not held now was erased,
        // or moved to a newer pseudonym by a key rotation (their state lives under that one).
        if !self.residency.holds(&key) || self.residency.already_in(&key, seq) {
            return None;
        }
        let state = self
            .engine(tenant, params, model)
            .rebuild(&key.1, &history)
            .clone();
        self.residency.changed(&key, seq);
        Some(LearnerUpdate {
            tenant,
            seq,
            state,
            intervention: None,
        })
    }

    /// Takes the settled learners over capacity out of memory; returns their states.
    pub(super) fn evict_over_capacity(&mut self) -> Vec<(TenantId, KeptState)> {
        let mut out = Vec::new();
        for (tenant, learner) in self.residency.evict_over_capacity() {
            let memory = self
                .interventions
                .get_mut(&tenant)
                .and_then(|i| i.memory.by_learner.remove(&learner))
                .unwrap_or_default();
            if let Some(state) = self
                .engines
                .get_mut(&tenant)
                .and_then(|e| e.evict(&learner))
            {
                out.push((tenant, KeptState { state, memory }));
            }
        }
        out
    }

    pub(super) fn kept(&self, key: &LearnerKey) -> Option<KeptState> {
        let state = self.engines.get(&key.0)?.learner(&key.1)?.clone();
        let memory = self
            .interventions
            .get(&key.0)
            .and_then(|i| i.memory.by_learner.get(&key.1))
            .cloned()
            .unwrap_or_default();
        Some(KeptState { state, memory })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use learnpulse_core::LearningEvent;

    fn entry(seq: i64, learner: &str, previous: &[&str], voided: bool) -> LogEntry {
        let input = LiveInput::Event {
            event: LearningEvent::answer(learner, "q1", "fractions", seq % 2 == 0, seq),
            previous: previous.iter().map(|p| p.to_string()).collect(),
        };
        LogEntry {
            tenant: 1,
            seq,
            live: Some(input.encode()),
            legacy_json: None,
            voided,
        }
    }

    #[test]
    fn a_rebuild_reads_the_answers_not_voided() {
        let entries = [
            entry(1, "p1_a", &[], false),
            entry(2, "p1_a", &[], true),
            entry(3, "p1_a", &[], false),
        ];
        let rebuild = Rebuild::of(2, &entries).unwrap();
        assert_eq!(rebuild.learner, "p1_a");
        let kept: Vec<i64> = rebuild.history.iter().map(|e| e.timestamp_ms).collect();
        assert_eq!(kept, [1, 3]);
        assert!(Rebuild::of(9, &entries).is_none(), "not in the history");
    }

    #[test]
    fn a_history_across_a_key_rotation_is_not_rebuilt() {
        let entries = [
            entry(1, "p2_a", &["p1_a"], false),
            entry(2, "p2_a", &["p1_a"], true),
        ];
        assert!(Rebuild::of(2, &entries).is_none());
    }
}
