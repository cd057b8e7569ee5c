//! The live learner state: one [`Engine`] per tenant, fed by the writer's commit hook, and a
//! broadcast of every learner-state change for the SSE stream.
//!
//! The engines are updated in the writer thread, after each group commit and before the
//! requests are acknowledged: so the state always reflects exactly the committed log, in log
//! order, and a client that reads a learner after its POST was acknowledged sees its event.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use tokio::sync::broadcast;

use learnpulse_core::{Engine, EngineParams, LearnerState, LearningEvent, SkillModel};

use crate::storage::{Committed, TenantId};

/// One learner-state change, as pushed to stream subscribers.
#[derive(Debug, Clone, Serialize)]
pub struct LearnerUpdate {
    #[serde(skip)]
    pub tenant: TenantId,
    /// Sequence number of the statement that caused the change.
    pub seq: i64,
    pub state: LearnerState,
}

pub struct LearnerHub {
    params: EngineParams,
    model: Arc<SkillModel>,
    engines: RwLock<HashMap<TenantId, Engine>>,
    updates: broadcast::Sender<Arc<LearnerUpdate>>,
}

impl LearnerHub {
    pub fn new(params: EngineParams, model: Arc<SkillModel>) -> Self {
        LearnerHub {
            model,
            params,
            engines: RwLock::new(HashMap::new()),
            updates: broadcast::channel(4_096).0,
        }
    }

    /// Folds an event into its tenant's engine without notifying anyone (start-up replay).
    pub fn replay(&self, tenant: TenantId, event: &LearningEvent, previous_ids: &[String]) {
        let mut engines = self.engines.write().unwrap();
        let engine = engines
            .entry(tenant)
            .or_insert_with(|| Engine::with_model(self.params, self.model.clone()));
        engine.adopt(&event.learner, previous_ids);
        engine.apply(event);
    }

    /// The commit hook: applies committed events in order and publishes the new states.
    pub fn apply_committed(&self, committed: &[Committed<'_>]) {
        let notify = self.updates.receiver_count() > 0;
        let mut engines = self.engines.write().unwrap();
        for c in committed {
            let Some(event) = &c.statement.event else {
                continue;
            };
            let engine = engines
                .entry(c.tenant)
                .or_insert_with(|| Engine::with_model(self.params, self.model.clone()));
            engine.adopt(&event.learner, &c.statement.previous_learner_ids);
            let state = engine.apply(event);
            if notify {
                let _ = self.updates.send(Arc::new(LearnerUpdate {
                    tenant: c.tenant,
                    seq: c.seq,
                    state: state.clone(),
                }));
            }
        }
        metrics::gauge!("learnpulse_learners_in_memory")
            .set(engines.values().map(Engine::learner_count).sum::<usize>() as f64);
        drop(engines);
        metrics::counter!("learnpulse_engine_events_total").increment(
            committed
                .iter()
                .filter(|c| c.statement.event.is_some())
                .count() as u64,
        );
    }

    /// Drops these learners' states (erasure); returns how many were held.
    pub fn forget(&self, tenant: TenantId, learners: &[String]) -> usize {
        let mut engines = self.engines.write().unwrap();
        let Some(engine) = engines.get_mut(&tenant) else {
            return 0;
        };
        learners.iter().filter(|l| engine.forget(l)).count()
    }

    pub fn learner(&self, tenant: TenantId, learner: &str) -> Option<LearnerState> {
        self.engines
            .read()
            .unwrap()
            .get(&tenant)?
            .learner(learner)
            .cloned()
    }

    /// The states of the learners seen working in `group`.
    pub fn group(&self, tenant: TenantId, group: &str) -> Vec<LearnerState> {
        let engines = self.engines.read().unwrap();
        engines
            .get(&tenant)
            .map(|e| {
                e.learners()
                    .filter(|l| l.groups.contains(group))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// P(correct) of `learner`'s next answer on `skill`, for unseen learners and skills too.
    pub fn predict(&self, tenant: TenantId, learner: &str, skill: &str) -> f64 {
        let engines = self.engines.read().unwrap();
        match engines.get(&tenant) {
            Some(engine) => engine.predict(learner, skill).1,
            None => {
                Engine::with_model(self.params, self.model.clone())
                    .predict(learner, skill)
                    .1
            }
        }
    }

    pub fn learner_count(&self) -> usize {
        self.engines
            .read()
            .unwrap()
            .values()
            .map(Engine::learner_count)
            .sum()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LearnerUpdate>> {
        self.updates.subscribe()
    }
}
