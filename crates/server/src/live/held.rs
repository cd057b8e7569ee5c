//! What the hub holds under its one lock, and the moves of a learner in and out of memory.

use std::collections::HashMap;
use std::sync::Arc;

use learnpulse_core::{Engine, EngineParams, SkillModel};

use super::resident::{LearnerKey, Residency};
use super::{Groups, Interventions, KeptState};
use crate::storage::TenantId;

/// What the hub holds, under one lock: engines (item norms and the learners in memory),
/// interventions, which learners are in memory, and the groups.
pub(super) struct Held {
    pub(super) engines: HashMap<TenantId, Engine>,
    pub(super) interventions: HashMap<TenantId, Interventions>,
    pub(super) residency: Residency,
    pub(super) groups: HashMap<TenantId, Groups>,
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
