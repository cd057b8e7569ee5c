//! The live learner state: one [`Engine`] per tenant, fed by the writer's commit hook, and a
//! broadcast of every learner-state change for the SSE stream.
//!
//! The engines are updated in the writer thread, after each group commit and before the
//! requests are acknowledged: so the state always reflects exactly the committed log, in log
//! order, and a client that reads a learner after its POST was acknowledged sees its event.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use learnpulse_core::intervene::{self, Decision, Memory, PolicySet};
use learnpulse_core::outcome::{
    Effectiveness, Outcomes, TutorOutcome, TutorReportSummary, TutorReports,
};
use learnpulse_core::{Engine, EngineParams, LearnerState, LearningEvent, SkillModel};

use crate::delivery::Decided;
use crate::storage::{Committed, TenantId};

/// One learner-state change, as pushed to stream subscribers.
#[derive(Debug, Clone, Serialize)]
pub struct LearnerUpdate {
    #[serde(skip)]
    pub tenant: TenantId,
    /// Sequence number of the statement that caused the change.
    pub seq: i64,
    pub state: LearnerState,
    /// The intervention the tenant's policies decided on after this event, if any.
    pub intervention: Option<Decision>,
}

/// Decisions kept in memory per tenant, newest last (for `GET /v1/interventions`).
const RECENT_DECISIONS: usize = 10_000;

/// A tenant's intervention policies and what they remember.
#[derive(Default)]
struct Interventions {
    policies: Arc<PolicySet>,
    memory: HashMap<String, Memory>,
    recent: VecDeque<(i64, Decision)>,
    outcomes: Outcomes,
    tutor_reports: TutorReports,
}

impl Interventions {
    /// Follows up earlier decisions with this event, then decides on it.
    fn decide(
        &mut self,
        seq: i64,
        state: &LearnerState,
        event: &LearningEvent,
    ) -> Option<Decision> {
        self.outcomes.observe(event, state);
        let memory = self.memory.entry(state.learner.clone()).or_default();
        let decision = intervene::decide(&self.policies, state, event, memory)?;
        self.outcomes.start(&decision, state);
        if self.recent.len() == RECENT_DECISIONS {
            self.recent.pop_front();
        }
        self.recent.push_back((seq, decision.clone()));
        Some(decision)
    }
}

pub struct LearnerHub {
    params: EngineParams,
    model: Arc<SkillModel>,
    engines: RwLock<HashMap<TenantId, Engine>>,
    interventions: Mutex<HashMap<TenantId, Interventions>>,
    updates: broadcast::Sender<Arc<LearnerUpdate>>,
    /// Where each group commit's decisions go for webhook delivery (set once at start-up).
    decisions: OnceLock<mpsc::UnboundedSender<Vec<Decided>>>,
}

impl LearnerHub {
    pub fn new(params: EngineParams, model: Arc<SkillModel>) -> Self {
        LearnerHub {
            model,
            params,
            engines: RwLock::new(HashMap::new()),
            interventions: Mutex::new(HashMap::new()),
            updates: broadcast::channel(4_096).0,
            decisions: OnceLock::new(),
        }
    }

    /// From now on, every live decision is also sent to `outbox` (webhook delivery).
    pub fn send_decisions_to(&self, outbox: mpsc::UnboundedSender<Vec<Decided>>) {
        let _ = self.decisions.set(outbox);
    }

    /// Folds an event into its tenant's engine without notifying anyone (start-up replay). The
    /// policies decide too, so that cooldowns and the recent decisions are as before the restart;
    /// the decision is returned (the outbox enqueues those it has not seen).
    pub fn replay(
        &self,
        tenant: TenantId,
        seq: i64,
        event: &LearningEvent,
        previous_ids: &[String],
    ) -> Option<Decision> {
        let mut engines = self.engines.write().unwrap();
        let engine = engines
            .entry(tenant)
            .or_insert_with(|| Engine::with_model(self.params, self.model.clone()));
        engine.adopt(&event.learner, previous_ids);
        let state = engine.apply(event);
        self.interventions
            .lock()
            .unwrap()
            .entry(tenant)
            .or_default()
            .decide(seq, state, event)
    }

    /// Counts a tutor's report of what it did and how it went (live and on replay).
    pub fn tutor_report(&self, tenant: TenantId, action: &str, outcome: TutorOutcome) {
        self.interventions
            .lock()
            .unwrap()
            .entry(tenant)
            .or_default()
            .tutor_reports
            .record(action, outcome);
    }

    /// What tutors reported, per action.
    pub fn tutor_reports(&self, tenant: TenantId) -> Vec<TutorReportSummary> {
        self.interventions
            .lock()
            .unwrap()
            .get(&tenant)
            .map(|i| i.tutor_reports.summary())
            .unwrap_or_default()
    }

    /// Replaces a tenant's intervention policies (what the learners' cooldowns remember stays).
    pub fn set_policies(&self, tenant: TenantId, policies: PolicySet) {
        self.interventions
            .lock()
            .unwrap()
            .entry(tenant)
            .or_default()
            .policies = Arc::new(policies);
    }

    /// The knowledge-tracing model the engines use.
    pub fn model(&self) -> Arc<SkillModel> {
        self.model.clone()
    }

    pub fn policies(&self, tenant: TenantId) -> Arc<PolicySet> {
        self.interventions
            .lock()
            .unwrap()
            .get(&tenant)
            .map(|i| i.policies.clone())
            .unwrap_or_default()
    }

    /// How each policy has done so far (follow-ups of its decisions).
    pub fn effectiveness(&self, tenant: TenantId) -> Vec<Effectiveness> {
        self.interventions
            .lock()
            .unwrap()
            .get(&tenant)
            .map(|i| i.outcomes.effectiveness())
            .unwrap_or_default()
    }

    /// The tenant's latest decisions, newest first, of one learner when given.
    pub fn recent_interventions(
        &self,
        tenant: TenantId,
        learners: &[String],
        limit: usize,
    ) -> Vec<(i64, Decision)> {
        let interventions = self.interventions.lock().unwrap();
        interventions
            .get(&tenant)
            .map(|i| {
                i.recent
                    .iter()
                    .rev()
                    .filter(|(_, d)| learners.is_empty() || learners.contains(&d.learner))
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The commit hook: applies committed events in order and publishes the new states.
    pub fn apply_committed(&self, committed: &[Committed<'_>]) {
        let notify = self.updates.receiver_count() > 0;
        let mut engines = self.engines.write().unwrap();
        let mut interventions = self.interventions.lock().unwrap();
        let mut decided = Vec::new();
        for c in committed {
            let Some(event) = &c.statement.event else {
                if c.statement.verb == crate::xapi::mapping::VERB_TUTORED
                    && let Ok(json) = serde_json::from_str(&c.statement.json)
                    && let Some((action, outcome)) = crate::xapi::mapping::tutor_report(&json)
                {
                    interventions
                        .entry(c.tenant)
                        .or_default()
                        .tutor_reports
                        .record(&action, outcome);
                }
                continue;
            };
            let engine = engines
                .entry(c.tenant)
                .or_insert_with(|| Engine::with_model(self.params, self.model.clone()));
            engine.adopt(&event.learner, &c.statement.previous_learner_ids);
            let state = engine.apply(event);
            let intervention = interventions
                .entry(c.tenant)
                .or_default()
                .decide(c.seq, state, event);
            if let Some(d) = &intervention {
                metrics::counter!("learnpulse_interventions_total", "policy" => d.policy.clone())
                    .increment(1);
                if self.decisions.get().is_some() {
                    decided.push(Decided {
                        tenant: c.tenant,
                        seq: c.seq,
                        decision: d.clone(),
                    });
                }
            }
            if notify {
                let _ = self.updates.send(Arc::new(LearnerUpdate {
                    tenant: c.tenant,
                    seq: c.seq,
                    state: state.clone(),
                    intervention,
                }));
            }
        }
        metrics::gauge!("learnpulse_learners_in_memory")
            .set(engines.values().map(Engine::learner_count).sum::<usize>() as f64);
        drop(interventions);
        drop(engines);
        if !decided.is_empty()
            && let Some(outbox) = self.decisions.get()
        {
            let _ = outbox.send(decided);
        }
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
