//! Bringing learners the hub does not hold back into memory: for the follower's next batch
//! ([`LearnerHub::prepare`]) and for reads ([`LearnerHub::learner`], [`LearnerHub::group`],
//! [`LearnerHub::predict`]). The lookups go L1 (memory) → L2 (Redis) → L3 (the kept states)
//! and are counted per layer in `learnpulse_cache_lookups_total{cache="learners"}`.

use std::collections::{BTreeSet, HashMap};

use learnpulse_core::LearnerState;

use super::held::Rebuild;
use super::{KeptState, LearnerHub, LiveInput, Sharing};
use crate::cache::{Layer, count};
use crate::storage::{EventLog, Storage, StoreError, TenantId};

impl LearnerHub {
    /// Loads the learners of a batch about to be applied (and the older pseudonyms a key
    /// rotation may adopt a history from), and pins them until it is. For each voiding
    /// statement, reads the voided statement's learner's history again from `log`.
    pub async fn prepare(
        &self,
        entries: &[(TenantId, i64, LiveInput)],
        log: &Storage,
    ) -> Result<(), StoreError> {
        let mut wanted: HashMap<TenantId, BTreeSet<String>> = HashMap::new();
        let from = self.applied();
        for (tenant, seq, input) in entries.iter().filter(|(_, seq, _)| *seq > from) {
            match input {
                LiveInput::Event { event, previous } => {
                    let names = wanted.entry(*tenant).or_default();
                    names.insert(event.learner.clone());
                    names.extend(previous.iter().cloned());
                }
                LiveInput::Retract { statement } => {
                    let Some((voided_seq, history)) =
                        log.actor_history(*tenant, *statement, *seq).await?
                    else {
                        continue;
                    };
                    if let Some(rebuild) = Rebuild::of(voided_seq, &history) {
                        wanted
                            .entry(*tenant)
                            .or_default()
                            .insert(rebuild.learner.clone());
                        self.held
                            .write()
                            .unwrap()
                            .rebuilds
                            .insert((*tenant, *seq), rebuild);
                    }
                }
                _ => {}
            }
        }
        for (tenant, names) in wanted {
            let missing: Vec<String> = {
                let mut held = self.held.write().unwrap();
                let mut missing = Vec::new();
                for name in names {
                    let key = (tenant, name);
                    if held.residency.holds(&key) {
                        held.residency.touch(&key);
                        held.residency.pin(key);
                    } else {
                        missing.push(key.1);
                    }
                }
                missing
            };
            self.load_into_memory(tenant, missing, true).await?;
        }
        Ok(())
    }

    /// Finds learners below L1 and puts them into memory (pinned when `pin`); returns their
    /// states. Nothing kept is trusted before this process knows of a snapshot (then nothing
    /// has left memory either).
    async fn load_into_memory(
        &self,
        tenant: TenantId,
        missing: Vec<String>,
        pin: bool,
    ) -> Result<Vec<(LearnerState, Layer)>, StoreError> {
        count("learners", "l1", "miss", missing.len() as u64);
        let (snapshot, evictions) = {
            let held = self.held.read().unwrap();
            (held.residency.snapshot(), held.residency.evictions())
        };
        if missing.is_empty() || snapshot == 0 {
            return Ok(Vec::new());
        }
        let applied = self.applied();
        let found = self
            .layers
            .load(tenant, &missing, snapshot, applied)
            .await?;
        let mut states = Vec::with_capacity(found.len());
        let mut held = self.held.write().unwrap();
        // Something left memory meanwhile: a read's copy may predate it (the follower's
        // loads are pinned and nothing evicts while the batch they are for waits).
        let admit = pin || held.residency.evictions() == evictions;
        for f in found {
            let Ok(kept) = serde_json::from_slice::<KeptState>(&f.body) else {
                tracing::warn!(tenant, learner = %f.learner, "a kept learner state does not decode; starting it afresh");
                continue;
            };
            states.push((kept.state.clone(), f.layer));
            if admit {
                held.admit(tenant, kept, f.covers, applied, self.params, &self.model);
                if pin {
                    held.residency.pin((tenant, f.learner));
                }
            }
        }
        if !pin {
            let evicted = held.evict_over_capacity();
            drop(held);
            self.share(evicted, self.applied());
        }
        Ok(states)
    }

    /// One learner's state, from memory or loaded.
    pub async fn learner(
        &self,
        tenant: TenantId,
        learner: &str,
    ) -> Result<Option<LearnerState>, StoreError> {
        Ok(self.lookup(tenant, learner).await?.map(|(state, _)| state))
    }

    /// One learner's state and the layer it came from.
    pub async fn lookup(
        &self,
        tenant: TenantId,
        learner: &str,
    ) -> Result<Option<(LearnerState, Layer)>, StoreError> {
        {
            let mut held = self.held.write().unwrap();
            let key = (tenant, learner.to_owned());
            if held.residency.holds(&key) {
                held.residency.touch(&key);
                count("learners", "l1", "hit", 1);
                return Ok(held
                    .engines
                    .get(&tenant)
                    .and_then(|e| e.learner(learner))
                    .map(|s| (s.clone(), Layer::L1)));
            }
        }
        let mut found = self
            .load_into_memory(tenant, vec![learner.to_owned()], false)
            .await?;
        Ok(found.pop())
    }

    /// The first of `learners` (one learner's pseudonyms under several keys) that has a state.
    pub async fn first_learner(
        &self,
        tenant: TenantId,
        learners: &[String],
    ) -> Result<Option<LearnerState>, StoreError> {
        for l in learners {
            if let Some(state) = self.learner(tenant, l).await? {
                return Ok(Some(state));
            }
        }
        Ok(None)
    }

    /// The states of the learners seen working in `group`.
    pub async fn group(
        &self,
        tenant: TenantId,
        group: &str,
    ) -> Result<Vec<LearnerState>, StoreError> {
        let (mut states, missing) = {
            let mut held = self.held.write().unwrap();
            let members: Vec<String> = held
                .groups
                .get(&tenant)
                .and_then(|g| g.get(group))
                .map(|m| m.iter().cloned().collect())
                .unwrap_or_default();
            let (mut states, mut missing) = (Vec::new(), Vec::new());
            for m in members {
                let key = (tenant, m);
                match held.engines.get(&tenant).and_then(|e| e.learner(&key.1)) {
                    Some(s) => {
                        states.push(s.clone());
                        held.residency.touch(&key);
                    }
                    None => missing.push(key.1),
                }
            }
            count("learners", "l1", "hit", states.len() as u64);
            (states, missing)
        };
        let loaded = self.load_into_memory(tenant, missing, false).await?;
        states.extend(loaded.into_iter().map(|(state, _)| state));
        Ok(states)
    }

    /// P(correct) of `learner`'s next answer on `skill`, for unseen learners and skills too.
    pub async fn predict(
        &self,
        tenant: TenantId,
        learner: &str,
        skill: &str,
    ) -> Result<f64, StoreError> {
        let state = self.learner(tenant, learner).await?;
        Ok(self.model.predict(state.as_ref(), skill, None).1)
    }

    /// Drops these learners' states from memory and from L2 (erasure); returns how many were
    /// in memory. The kept states in the database go with the erasure's scrub
    /// (`crate::snapshot::erase`).
    pub fn forget(&self, tenant: TenantId, learners: &[String]) -> usize {
        let mut held = self.held.write().unwrap();
        let held = &mut *held;
        if let Some(i) = held.interventions.get_mut(&tenant) {
            i.memory.forget(learners);
        }
        if let Some(groups) = held.groups.get_mut(&tenant) {
            for members in groups.values_mut() {
                for l in learners {
                    members.remove(l);
                }
            }
        }
        let mut forgotten = 0;
        for l in learners {
            let key = (tenant, l.clone());
            held.residency.remove(&key);
            if held.engines.get_mut(&tenant).is_some_and(|e| e.forget(l)) {
                forgotten += 1;
            }
        }
        let _ = self
            .to_share
            .send(Sharing::Forget(tenant, learners.to_vec()));
        forgotten
    }
}

impl LearnerHub {
    /// The groups `learner` has been seen working in (from the always-held group index: no
    /// load).
    pub fn groups_of(&self, tenant: TenantId, learner: &str) -> BTreeSet<String> {
        let held = self.held.read().unwrap();
        held.groups
            .get(&tenant)
            .map(|groups| {
                groups
                    .iter()
                    .filter(|(_, members)| members.contains(learner))
                    .map(|(g, _)| g.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// An engine with the tenant's current item norms and no learner: a learner's history
    /// replayed through it gives their states over time (the norms are today's, not those of
    /// each past moment; mastery does not depend on them).
    pub fn replay_engine(&self, tenant: TenantId) -> learnpulse_core::Engine {
        let held = self.held.read().unwrap();
        match held.engines.get(&tenant) {
            Some(engine) => learnpulse_core::Engine::restore(
                self.params,
                self.model.clone(),
                engine.item_state(),
            ),
            None => learnpulse_core::Engine::with_model(self.params, self.model.clone()),
        }
    }

    /// The tenant's groups (classes) in which some learner has been seen.
    pub fn group_names(&self, tenant: TenantId) -> Vec<String> {
        let held = self.held.read().unwrap();
        held.groups
            .get(&tenant)
            .map(|groups| groups.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Which of `learners` have a state, in memory or kept (nothing is loaded into memory).
    pub async fn holding(
        &self,
        tenant: TenantId,
        learners: Vec<String>,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let (mut holding, missing, snapshot) = {
            let held = self.held.read().unwrap();
            let (mut holding, mut missing) = (std::collections::HashSet::new(), Vec::new());
            for l in learners {
                if held.residency.holds(&(tenant, l.clone())) {
                    holding.insert(l);
                } else {
                    missing.push(l);
                }
            }
            (holding, missing, held.residency.snapshot())
        };
        if snapshot > 0 && !missing.is_empty() {
            for page in missing.chunks(1_000) {
                let found = self
                    .layers
                    .load(tenant, page, snapshot, self.applied())
                    .await?;
                holding.extend(found.into_iter().map(|f| f.learner));
            }
        }
        Ok(holding)
    }
}
