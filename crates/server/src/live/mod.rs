//! The live learner state: one [`Engine`] per tenant and the intervention policies' memory,
//! fed by the log's follower ([`crate::follow`]), and the fan-out of every learner-state change
//! to the SSE streams that follow it ([`fanout`]).
//!
//! The hub applies the log in log order, exactly once, and remembers how far it has got
//! ([`LearnerHub::applied`]). A handler that appended statements waits until the hub has
//! applied them before it acknowledges ([`LearnerHub::wait_applied`]): a client that reads a
//! learner after its POST was acknowledged sees its event.
//!
//! The hub holds a tenant's item norms, policies and decision history always, but learners only
//! while they are in use: [`resident`] says which may leave memory, and
//! [`crate::cache::learners`] finds the others (L2 Redis, L3 the states kept with each
//! snapshot). The follower loads the learners of a batch before applying it
//! ([`LearnerHub::prepare`]); reads load the one they need ([`LearnerHub::learner`]).

pub mod fanout;
mod held;
mod loading;
pub mod resident;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use learnpulse_core::intervene::{self, Decision, Memory, PolicySet};
use learnpulse_core::outcome::{
    Effectiveness, Outcomes, TutorOutcome, TutorReportSummary, TutorReports,
};
use learnpulse_core::{Engine, EngineParams, EngineState, LearnerState, LearningEvent, SkillModel};

use crate::cache::learners::LearnerLayers;
use crate::delivery::Decided;
use crate::storage::{KeptLearner, LogEntry, TenantId};
use fanout::{Fanout, Follow, Subscription};
use held::Held;
use resident::Residency;

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
    /// A teacher's answer to a decision (`POST /v1/interventions/{seq}/response`).
    TeacherResponse { decision: i64, response: String },
    /// A voiding statement: the voided statement's learner is rebuilt as if it never happened
    /// (their history is read again in [`LearnerHub::prepare`]).
    Retract { statement: uuid::Uuid },
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
    /// Teachers' answers to recent decisions, by the decision's sequence number.
    #[serde(default)]
    responses: BTreeMap<i64, String>,
}

impl Remembered {
    /// The teacher's answer to the decision at `seq`, if any.
    pub fn response(&self, seq: i64) -> Option<&str> {
        self.responses.get(&seq).map(String::as_str)
    }

    /// Drops what is remembered about these learners (erasure).
    fn forget(&mut self, learners: &[String]) {
        self.recent.retain(|(_, d)| !learners.contains(&d.learner));
        let recent = &self.recent;
        self.responses
            .retain(|seq, _| recent.iter().any(|(s, _)| s == seq));
        for l in learners {
            self.by_learner.remove(l);
            self.outcomes.forget(l);
        }
    }
}

/// One tenant's live state at a sequence number, apart from its learners (kept one by one as
/// [`KeptState`]s): what a snapshot stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantSnapshot {
    /// The item norms (the engine's learners are kept one by one).
    pub engine: EngineState,
    /// The decision history (what each learner's policies remember is kept with the learner).
    pub interventions: Remembered,
    /// Who has been seen working in which group.
    #[serde(default)]
    pub groups: Groups,
}

impl TenantSnapshot {
    /// Drops these learners (erasure: a snapshot must not outlive it).
    pub fn forget(&mut self, learners: &[String]) {
        self.interventions.forget(learners);
        for members in self.groups.values_mut() {
            for l in learners {
                members.remove(l);
            }
        }
        self.groups.retain(|_, members| !members.is_empty());
    }
}

/// A tenant's groups and the learners seen working in each: always in memory, so that a group's
/// view can find its learners when they are not.
pub type Groups = BTreeMap<String, BTreeSet<String>>;

/// Everything the hub keeps about one learner, as L2 and L3 hold it: the engine's state and
/// what the tenant's policies remember about them (cooldowns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptState {
    pub state: LearnerState,
    #[serde(default)]
    pub memory: Memory,
}

impl KeptState {
    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("learner states serialise")
    }
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
        if remembered.recent.len() == RECENT_DECISIONS
            && let Some((dropped, _)) = remembered.recent.pop_front()
        {
            remembered.responses.remove(&dropped);
        }
        remembered.recent.push_back((seq, decision.clone()));
        Some(decision)
    }
}

pub struct LearnerHub {
    params: EngineParams,
    model: Arc<SkillModel>,
    held: RwLock<Held>,
    layers: Arc<LearnerLayers>,
    /// States leaving memory, on their way to L2 (in order, with erasures' removals).
    to_share: mpsc::UnboundedSender<Sharing>,
    /// The live streams, by what they follow.
    fanout: Arc<Fanout>,
    /// The sequence number through which the log has been applied.
    applied: watch::Sender<i64>,
    /// The sequence number of the latest decision (for snapshots: the outbox must have it).
    last_decision_seq: Mutex<i64>,
    /// Held while a snapshot is taken and saved, and while an erasure scrubs one: an erased
    /// learner cannot slip into a snapshot being saved.
    pub saving: tokio::sync::Mutex<()>,
}

/// What goes to L2, in order.
enum Sharing {
    States(TenantId, Vec<(String, i64, Vec<u8>)>),
    Forget(TenantId, Vec<String>),
}

impl LearnerHub {
    /// `capacity`: the learners held in memory beyond those changed since the last snapshot.
    /// Must be called within the runtime (it starts the task that writes to L2).
    pub fn new(
        params: EngineParams,
        model: Arc<SkillModel>,
        layers: LearnerLayers,
        capacity: usize,
    ) -> Self {
        let layers = Arc::new(layers);
        let (to_share, mut sharing) = mpsc::unbounded_channel::<Sharing>();
        let writer = layers.clone();
        tokio::spawn(async move {
            while let Some(s) = sharing.recv().await {
                match s {
                    Sharing::States(tenant, states) => writer.share(tenant, states).await,
                    Sharing::Forget(tenant, learners) => writer.forget(tenant, &learners).await,
                }
            }
        });
        LearnerHub {
            model,
            params,
            held: RwLock::new(Held {
                engines: HashMap::new(),
                interventions: HashMap::new(),
                residency: Residency::new(capacity),
                groups: HashMap::new(),
                rebuilds: HashMap::new(),
            }),
            layers,
            to_share,
            fanout: Arc::default(),
            applied: watch::Sender::new(0),
            last_decision_seq: Mutex::new(0),
            saving: tokio::sync::Mutex::new(()),
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
        self.held
            .read()
            .unwrap()
            .interventions
            .get(&tenant)
            .map(|i| i.memory.tutor_reports.summary())
            .unwrap_or_default()
    }

    /// Teachers' answers to the remembered decisions, counted per policy:
    /// `{policy: {acknowledged: n, went_over: n, dismissed: n}}`.
    pub fn teacher_responses(&self, tenant: TenantId) -> BTreeMap<String, BTreeMap<String, u64>> {
        let held = self.held.read().unwrap();
        let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        if let Some(i) = held.interventions.get(&tenant) {
            for (seq, d) in &i.memory.recent {
                if let Some(response) = i.memory.response(*seq) {
                    *counts
                        .entry(d.policy.clone())
                        .or_default()
                        .entry(response.to_owned())
                        .or_default() += 1;
                }
            }
        }
        counts
    }

    /// Replaces a tenant's intervention policies (what the learners' cooldowns remember stays).
    pub fn set_policies(&self, tenant: TenantId, policies: PolicySet) {
        self.held
            .write()
            .unwrap()
            .interventions
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
        self.held
            .read()
            .unwrap()
            .interventions
            .get(&tenant)
            .map(|i| i.policies.clone())
            .unwrap_or_default()
    }

    /// How each policy has done so far (follow-ups of its decisions).
    pub fn effectiveness(&self, tenant: TenantId) -> Vec<Effectiveness> {
        self.held
            .read()
            .unwrap()
            .interventions
            .get(&tenant)
            .map(|i| i.memory.outcomes.effectiveness())
            .unwrap_or_default()
    }

    /// The tenant's latest decisions, newest first, of one learner when given, each with the
    /// teacher's answer to it.
    pub fn recent_interventions(
        &self,
        tenant: TenantId,
        learners: &[String],
        limit: usize,
    ) -> Vec<(i64, Decision, Option<String>)> {
        let held = self.held.read().unwrap();
        held.interventions
            .get(&tenant)
            .map(|i| {
                i.memory
                    .recent
                    .iter()
                    .rev()
                    .filter(|(_, d)| learners.is_empty() || learners.contains(&d.learner))
                    .take(limit)
                    .map(|(seq, d)| (*seq, d.clone(), i.memory.response(*seq).map(str::to_owned)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Applies log entries in order (the follower's batch, or the replay's), publishes the new
    /// states to stream subscribers when `publish`, and returns the decisions the policies
    /// made. Entries at or below [`LearnerHub::applied`] were applied already and are skipped,
    /// so that the log is applied exactly once. The batch's learners must have been loaded
    /// ([`LearnerHub::prepare`]); one that was not is new.
    pub fn apply(
        &self,
        entries: &[(TenantId, i64, LiveInput)],
        through: i64,
        publish: bool,
    ) -> Vec<Decided> {
        // What the streams follow, asked per update (no update is made for nobody) and
        // published once the batch is applied.
        let followers = (publish && self.fanout.any()).then(|| self.fanout.followers());
        let mut to_publish = Vec::new();
        let mut held = self.held.write().unwrap();
        let held = &mut *held;
        let from = self.applied();
        let mut decided = Vec::new();
        let mut events = 0u64;
        for (tenant, seq, input) in entries.iter().filter(|(_, seq, _)| *seq > from) {
            let (event, previous) = match input {
                LiveInput::Event { event, previous } => (event, previous),
                LiveInput::TutorReport { action, outcome } => {
                    held.interventions
                        .entry(*tenant)
                        .or_default()
                        .memory
                        .tutor_reports
                        .record(action, *outcome);
                    continue;
                }
                LiveInput::TeacherResponse { decision, response } => {
                    let remembered = &mut held.interventions.entry(*tenant).or_default().memory;
                    // Only a decision still remembered can be answered (the route checks; a
                    // replay of an old answer to a forgotten decision is dropped here).
                    if remembered.recent.iter().any(|(s, _)| s == decision) {
                        remembered.responses.insert(*decision, response.clone());
                    }
                    continue;
                }
                LiveInput::Retract { .. } => {
                    if let Some(update) = held.rebuild(*tenant, *seq, self.params, &self.model)
                        && let Some(followers) = &followers
                        && followers.follow(*tenant, &update.state)
                    {
                        to_publish.push(update);
                    }
                    continue;
                }
            };
            events += 1;
            let key = (*tenant, event.learner.clone());
            let engine = held
                .engines
                .entry(*tenant)
                .or_insert_with(|| Engine::with_model(self.params, self.model.clone()));
            // A pseudonym-key rotation: the learner's history moves to the new pseudonym.
            if !engine.holds(&event.learner)
                && let Some(old) = previous.iter().find(|p| engine.holds(p)).cloned()
            {
                engine.adopt(&event.learner, std::slice::from_ref(&old));
                held.residency
                    .renamed(&(*tenant, old.clone()), key.clone(), *seq);
                let remembered = &mut held.interventions.entry(*tenant).or_default().memory;
                if let Some(m) = remembered.by_learner.remove(&old) {
                    remembered.by_learner.insert(event.learner.clone(), m);
                }
                for members in held.groups.entry(*tenant).or_default().values_mut() {
                    if members.remove(&old) {
                        members.insert(event.learner.clone());
                    }
                }
            }
            let engine = held.engines.get_mut(tenant).expect("made above");
            if held.residency.already_in(&key, *seq) {
                // Loaded from a copy made past this event: the state has it already.
                engine.apply_to_items(event);
                if let (Some(followers), Some(state)) = (&followers, engine.learner(&event.learner))
                    && followers.follow(*tenant, state)
                {
                    to_publish.push(LearnerUpdate {
                        tenant: *tenant,
                        seq: *seq,
                        state: state.clone(),
                        intervention: None,
                    });
                }
                continue;
            }
            let state = engine.apply(event);
            held.residency.changed(&key, *seq);
            if let Some(group) = &event.group {
                let members = held
                    .groups
                    .entry(*tenant)
                    .or_default()
                    .entry(group.clone())
                    .or_default();
                if !members.contains(&event.learner) {
                    members.insert(event.learner.clone());
                }
            }
            let intervention = held
                .interventions
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
            if let Some(followers) = &followers
                && followers.follow(*tenant, state)
            {
                to_publish.push(LearnerUpdate {
                    tenant: *tenant,
                    seq: *seq,
                    state: state.clone(),
                    intervention,
                });
            }
        }
        if let Some(last) = decided.last() {
            *self.last_decision_seq.lock().unwrap() = last.seq;
        }
        drop(followers);
        self.fanout.publish(to_publish);
        held.residency.unpin_all();
        let evicted = held.evict_over_capacity();
        self.share(evicted, through.max(from));
        metrics::gauge!("learnpulse_learners_in_memory").set(held.residency.held_count() as f64);
        metrics::gauge!("learnpulse_learners_changed_since_snapshot")
            .set(held.residency.changed_count() as f64);
        if publish {
            metrics::counter!("learnpulse_engine_events_total").increment(events);
        }
        self.applied.send_if_modified(|a| {
            let grew = through > *a;
            *a = (*a).max(through);
            grew
        });
        decided
    }

    /// Sends learners that left memory to L2, as exact at `covers`.
    fn share(&self, evicted: Vec<(TenantId, KeptState)>, covers: i64) {
        if evicted.is_empty() || !self.layers.shares() {
            return;
        }
        let mut by_tenant: HashMap<TenantId, Vec<(String, i64, Vec<u8>)>> = HashMap::new();
        for (tenant, kept) in evicted {
            by_tenant.entry(tenant).or_default().push((
                kept.state.learner.clone(),
                covers,
                kept.encode(),
            ));
        }
        for (tenant, states) in by_tenant {
            let _ = self.to_share.send(Sharing::States(tenant, states));
        }
    }

    /// Every tenant's state apart from its learners, the learners changed since the last
    /// snapshot, the sequence number they cover and the latest decision's sequence number,
    /// taken at one instant (between two applied batches).
    pub fn snapshot(&self) -> (i64, i64, Vec<(TenantId, TenantSnapshot)>, Vec<KeptLearner>) {
        let held = self.held.read().unwrap();
        let covers = self.applied();
        let last_decision = *self.last_decision_seq.lock().unwrap();
        let mut tenants: Vec<TenantId> = held
            .engines
            .keys()
            .chain(held.interventions.keys())
            .copied()
            .collect();
        tenants.sort_unstable();
        tenants.dedup();
        let snapshots = tenants
            .into_iter()
            .map(|t| {
                let mut interventions = held
                    .interventions
                    .get(&t)
                    .map(|i| i.memory.clone())
                    .unwrap_or_default();
                interventions.by_learner.clear();
                let snapshot = TenantSnapshot {
                    engine: held
                        .engines
                        .get(&t)
                        .map(Engine::item_state)
                        .unwrap_or_default(),
                    interventions,
                    groups: held.groups.get(&t).cloned().unwrap_or_default(),
                };
                (t, snapshot)
            })
            .collect();
        let changed: Vec<(TenantId, KeptState)> = held
            .residency
            .changed_learners()
            .filter_map(|key| Some((key.0, held.kept(key)?)))
            .collect();
        drop(held);
        // Encoded outside the lock: the follower goes on meanwhile.
        let learners = changed
            .into_iter()
            .map(|(tenant, kept)| KeptLearner {
                tenant,
                learner: kept.state.learner.clone(),
                covers_seq: covers,
                body: kept.encode(),
            })
            .collect();
        (covers, last_decision, snapshots, learners)
    }

    /// A snapshot through `covers` was saved (here or, announced, by another process): the
    /// learners it kept may leave memory.
    pub fn snapshot_saved(&self, covers: i64) {
        let mut held = self.held.write().unwrap();
        held.residency.snapshot_saved(covers);
        let evicted = held.evict_over_capacity();
        drop(held);
        self.share(evicted, self.applied());
    }

    /// Starts from snapshots covering the log through `covers` (before anything is applied).
    pub fn restore(
        &self,
        covers: i64,
        last_decision_seq: i64,
        snapshots: Vec<(TenantId, TenantSnapshot)>,
    ) {
        *self.last_decision_seq.lock().unwrap() = last_decision_seq;
        let mut held = self.held.write().unwrap();
        for (tenant, snapshot) in snapshots {
            held.engines.insert(
                tenant,
                Engine::restore(self.params, self.model.clone(), snapshot.engine),
            );
            held.interventions.entry(tenant).or_default().memory = snapshot.interventions;
            held.groups.insert(tenant, snapshot.groups);
        }
        held.residency.snapshot_saved(covers);
        drop(held);
        self.applied.send_replace(covers);
    }

    pub fn learner_count(&self) -> usize {
        self.held.read().unwrap().residency.held_count()
    }

    /// Subscribes a live stream to the updates of the tenant's learners it follows.
    pub fn subscribe(&self, tenant: TenantId, follow: Follow) -> Subscription {
        self.fanout.subscribe(tenant, follow)
    }
}
