//! The live learner state: one [`Engine`] per tenant and the intervention policies' memory,
//! fed by the log's follower ([`crate::follow`]), and a broadcast of every learner-state change
//! for the SSE stream.
//!
//! The hub applies the log in log order, exactly once, and remembers how far it has got
//! ([`LearnerHub::applied`]). A handler that appended statements waits until the hub has
//! applied them before it acknowledges ([`LearnerHub::wait_applied`]): a client that reads a
//! learner after its POST was acknowledged sees its event.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use learnpulse_core::intervene::{self, Decision, Memory, PolicySet};
use learnpulse_core::outcome::{
    Effectiveness, Outcomes, TutorOutcome, TutorReportSummary, TutorReports,
};
use learnpulse_core::{Engine, EngineParams, EngineState, LearnerState, LearningEvent, SkillModel};

use crate::delivery::Decided;
use crate::storage::{LogEntry, TenantId};

/// What a stored statement means to the live state, decided once at the edge
/// (`xapi::mapping::live_input`) and stored beside the statement: a learning event (with the
/// learner's pseudonyms under older keys, so that the engine keeps one history across a key
/// rotation) or a tutor's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LiveInput {
    Event {
        event: LearningEvent,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        previous: Vec<String>,
    },
    TutorReport {
        action: String,
        outcome: TutorOutcome,
    },
}

impl LiveInput {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("live inputs serialise")
    }

    /// What a log entry means to the hub; rows of older layouts are decoded from their JSON.
    pub fn of(entry: &LogEntry) -> Option<LiveInput> {
        match (&entry.live, &entry.legacy_json) {
            (Some(live), _) => serde_json::from_str(live).ok(),
            (None, Some(json)) => crate::xapi::mapping::live_input_from_json(json),
            (None, None) => None,
        }
    }
}

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
    memory: Remembered,
}

/// What a tenant's interventions remember (derived from the log, so a snapshot keeps it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Remembered {
    by_learner: HashMap<String, Memory>,
    recent: VecDeque<(i64, Decision)>,
    outcomes: Outcomes,
    tutor_reports: TutorReports,
}

/// One tenant's live state at a sequence number: what a snapshot stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantSnapshot {
    pub engine: EngineState,
    pub interventions: Remembered,
}

impl Interventions {
    /// Follows up earlier decisions with this event, then decides on it.
    fn decide(
        &mut self,
        seq: i64,
        state: &LearnerState,
        event: &LearningEvent,
    ) -> Option<Decision> {
        let remembered = &mut self.memory;
        remembered.outcomes.observe(event, state);
        let memory = remembered
            .by_learner
            .entry(state.learner.clone())
            .or_default();
        let decision = intervene::decide(&self.policies, state, event, memory)?;
        remembered.outcomes.start(&decision, state);
        if remembered.recent.len() == RECENT_DECISIONS {
            remembered.recent.pop_front();
        }
        remembered.recent.push_back((seq, decision.clone()));
        Some(decision)
    }
}

pub struct LearnerHub {
    params: EngineParams,
    model: Arc<SkillModel>,
    engines: RwLock<HashMap<TenantId, Engine>>,
    interventions: Mutex<HashMap<TenantId, Interventions>>,
    updates: broadcast::Sender<Arc<LearnerUpdate>>,
    /// The sequence number through which the log has been applied.
    applied: watch::Sender<i64>,
    /// The sequence number of the latest decision (for snapshots: the outbox must have it).
    last_decision_seq: Mutex<i64>,
}

impl LearnerHub {
    pub fn new(params: EngineParams, model: Arc<SkillModel>) -> Self {
        LearnerHub {
            model,
            params,
            engines: RwLock::new(HashMap::new()),
            interventions: Mutex::new(HashMap::new()),
            updates: broadcast::channel(4_096).0,
            applied: watch::Sender::new(0),
            last_decision_seq: Mutex::new(0),
        }
    }

    /// The sequence number through which the log has been applied.
    pub fn applied(&self) -> i64 {
        *self.applied.borrow()
    }

    /// Resolves once the log has been applied through `seq` (read-after-write for the handler
    /// that appended it).
    pub async fn wait_applied(&self, seq: i64) {
        let mut applied = self.applied.subscribe();
        let _ = applied.wait_for(|a| *a >= seq).await;
    }

    /// What tutors reported, per action.
    pub fn tutor_reports(&self, tenant: TenantId) -> Vec<TutorReportSummary> {
        self.interventions
            .lock()
            .unwrap()
            .get(&tenant)
            .map(|i| i.memory.tutor_reports.summary())
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

    pub fn params(&self) -> EngineParams {
        self.params
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
            .map(|i| i.memory.outcomes.effectiveness())
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
                i.memory
                    .recent
                    .iter()
                    .rev()
                    .filter(|(_, d)| learners.is_empty() || learners.contains(&d.learner))
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Applies log entries in order (the follower's batch, or the replay's), publishes the new
    /// states to stream subscribers when `publish`, and returns the decisions the policies
    /// made. Entries at or below [`LearnerHub::applied`] were applied already and are skipped,
    /// so that the log is applied exactly once.
    pub fn apply(
        &self,
        entries: &[(TenantId, i64, LiveInput)],
        through: i64,
        publish: bool,
    ) -> Vec<Decided> {
        let notify = publish && self.updates.receiver_count() > 0;
        let mut engines = self.engines.write().unwrap();
        let mut interventions = self.interventions.lock().unwrap();
        let from = self.applied();
        let mut decided = Vec::new();
        let mut events = 0u64;
        for (tenant, seq, input) in entries.iter().filter(|(_, seq, _)| *seq > from) {
            let (event, previous) = match input {
                LiveInput::Event { event, previous } => (event, previous),
                LiveInput::TutorReport { action, outcome } => {
                    interventions
                        .entry(*tenant)
                        .or_default()
                        .memory
                        .tutor_reports
                        .record(action, *outcome);
                    continue;
                }
            };
            events += 1;
            let engine = engines
                .entry(*tenant)
                .or_insert_with(|| Engine::with_model(self.params, self.model.clone()));
            engine.adopt(&event.learner, previous);
            let state = engine.apply(event);
            let intervention = interventions
                .entry(*tenant)
                .or_default()
                .decide(*seq, state, event);
            if let Some(d) = &intervention {
                if publish {
                    metrics::counter!("learnpulse_interventions_total", "policy" => d.policy.clone())
                        .increment(1);
                }
                decided.push(Decided {
                    tenant: *tenant,
                    seq: *seq,
                    decision: d.clone(),
                });
            }
            if notify {
                let _ = self.updates.send(Arc::new(LearnerUpdate {
                    tenant: *tenant,
                    seq: *seq,
                    state: state.clone(),
                    intervention,
                }));
            }
        }
        if let Some(last) = decided.last() {
            *self.last_decision_seq.lock().unwrap() = last.seq;
        }
        metrics::gauge!("learnpulse_learners_in_memory")
            .set(engines.values().map(Engine::learner_count).sum::<usize>() as f64);
        if publish {
            metrics::counter!("learnpulse_engine_events_total").increment(events);
        }
        drop(interventions);
        drop(engines);
        self.applied.send_if_modified(|a| {
            let grew = through > *a;
            *a = (*a).max(through);
            grew
        });
        decided
    }

    /// Every tenant's state, the sequence number it covers and the latest decision's sequence
    /// number, taken at one instant (between two applied batches).
    pub fn snapshot(&self) -> (i64, i64, Vec<(TenantId, TenantSnapshot)>) {
        let engines = self.engines.read().unwrap();
        let interventions = self.interventions.lock().unwrap();
        let covers = self.applied();
        let last_decision = *self.last_decision_seq.lock().unwrap();
        let mut tenants: Vec<TenantId> = engines
            .keys()
            .chain(interventions.keys())
            .copied()
            .collect();
        tenants.sort_unstable();
        tenants.dedup();
        let snapshots = tenants
            .into_iter()
            .map(|t| {
                let snapshot = TenantSnapshot {
                    engine: engines.get(&t).map(Engine::state).unwrap_or_default(),
                    interventions: interventions
                        .get(&t)
                        .map(|i| i.memory.clone())
                        .unwrap_or_default(),
                };
                (t, snapshot)
            })
            .collect();
        (covers, last_decision, snapshots)
    }

    /// Starts from snapshots covering the log through `covers` (before anything is applied).
    pub fn restore(
        &self,
        covers: i64,
        last_decision_seq: i64,
        snapshots: Vec<(TenantId, TenantSnapshot)>,
    ) {
        *self.last_decision_seq.lock().unwrap() = last_decision_seq;
        let mut engines = self.engines.write().unwrap();
        let mut interventions = self.interventions.lock().unwrap();
        for (tenant, snapshot) in snapshots {
            engines.insert(
                tenant,
                Engine::restore(self.params, self.model.clone(), snapshot.engine),
            );
            interventions.entry(tenant).or_default().memory = snapshot.interventions;
        }
        drop(interventions);
        drop(engines);
        self.applied.send_replace(covers);
    }

    /// Drops these learners' states (erasure); returns how many were held.
    pub fn forget(&self, tenant: TenantId, learners: &[String]) -> usize {
        if let Some(i) = self.interventions.lock().unwrap().get_mut(&tenant) {
            let memory = &mut i.memory;
            memory
                .recent
                .retain(|(_, d)| !learners.contains(&d.learner));
            for l in learners {
                memory.by_learner.remove(l);
                memory.outcomes.forget(l);
            }
        }
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
