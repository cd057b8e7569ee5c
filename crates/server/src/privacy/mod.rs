//! The privacy shell: each tenant's keys, policy, roster and consents, held in memory and kept in
//! storage, and the HTTP API that changes them. The decisions themselves are the pure
//! `learnpulse_privacy::pipeline`; this module feeds it and stores what it returns.
//!
//! Secrets: every tenant has a pseudonym key (versioned; rotation adds a version) and a vault key,
//! both random, both stored sealed under the master key ([`seal`]).

pub mod names;
pub mod routes;
pub mod seal;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use learnpulse_privacy::pipeline::{
    self, ConsentRecord, Policy, Protected, Refused, TenantPrivacy,
};
use learnpulse_privacy::pseudonym::Pseudonymiser;
use learnpulse_privacy::roster::Roster;
use serde_json::Value;

use crate::storage::{PrivacyStore, SealedSecret, Storage, StoreError, TenantId};
use seal::Sealer;

const PSEUDONYM: &str = "pseudonym";
const VAULT: &str = "vault";

/// One tenant's privacy state. Replaced whole when the policy, roster or keys change; consents
/// are shared between versions and change in place.
pub struct TenantState {
    pub tenant: TenantId,
    pub policy: Policy,
    pub pseudonymiser: Pseudonymiser,
    pub key_version: u32,
    vault: Sealer,
    roster: Roster,
    pub roster_size: usize,
    /// The teacher of record's view of names (see [`names`]).
    pub display_names: names::DisplayNames,
    consents: Arc<RwLock<HashMap<String, ConsentRecord>>>,
}

impl TenantState {
    /// Runs the pipeline on one statement.
    pub fn protect(&self, statement: &mut Value) -> Result<Protected, Refused> {
        let tenant = TenantPrivacy {
            policy: &self.policy,
            pseudonymiser: &self.pseudonymiser,
            roster: &self.roster,
        };
        let consents = self.consents.read().unwrap();
        pipeline::protect(statement, &tenant, |pseudonyms| {
            pseudonyms.iter().rev().find_map(|p| consents.get(p))
        })
    }

    /// What the vault keeps of one statement, sealed; `None` when there is nothing to keep.
    pub fn seal_for_vault(&self, statement: uuid::Uuid, protected: &Protected) -> Option<Vec<u8>> {
        if !self.policy.vault || protected.replaced.is_empty() {
            return None;
        }
        let plain = serde_json::to_vec(&protected.replaced).expect("serialising strings");
        Some(
            self.vault
                .seal(&vault_owner(self.tenant, statement), &plain),
        )
    }

    pub fn open_vault(
        &self,
        statement: uuid::Uuid,
        sealed: &[u8],
    ) -> Option<Vec<learnpulse_privacy::redact::Replaced>> {
        let plain = self
            .vault
            .open(&vault_owner(self.tenant, statement), sealed)
            .ok()?;
        serde_json::from_slice(&plain).ok()
    }

    /// The keys under which a learner the caller names may be held, most likely first: the id
    /// itself (a pseudonym, or a raw id the tenant keeps), then its pseudonyms, newest key first.
    pub fn learner_keys(&self, id: &str) -> Vec<String> {
        let mut keys = vec![id.to_owned()];
        if !looks_like_pseudonym(id) {
            keys.extend(self.pseudonymiser.all(id).into_iter().rev());
        }
        keys
    }

    /// The pseudonym consents are kept under: the id when it is one, else its current pseudonym.
    pub fn consent_key(&self, id: &str) -> String {
        if looks_like_pseudonym(id) {
            id.to_owned()
        } else {
            self.pseudonymiser.pseudonym(id)
        }
    }

    pub fn consent(&self, id: &str) -> Option<ConsentRecord> {
        let consents = self.consents.read().unwrap();
        self.learner_keys(id)
            .iter()
            .find_map(|k| consents.get(k))
            .cloned()
    }

    /// An agent as the log holds it: pseudonymised unless the tenant keeps raw identities. What
    /// the `agent` filter of a statement query is matched against.
    pub fn stored_agent(&self, agent: &Value) -> Value {
        let mut agent = agent.clone();
        if !self.policy.keep_raw_identity {
            pipeline::pseudonymise_agent(&mut agent, &self.pseudonymiser);
        }
        agent
    }

    /// Forgets these learners' consent records in memory (erasure; storage is done apart).
    pub fn forget_consents(&self, learners: &[String]) {
        let mut consents = self.consents.write().unwrap();
        for l in learners {
            consents.remove(l);
        }
    }

    /// The identifiers under which a learner's data may be held: their pseudonyms under every
    /// key (or the pseudonym given), and the raw id too when the tenant keeps raw identities.
    pub fn identifiers(&self, id: &str) -> Vec<String> {
        let mut out = if looks_like_pseudonym(id) {
            vec![id.to_owned()]
        } else {
            self.pseudonymiser.all(id)
        };
        if self.policy.keep_raw_identity && !looks_like_pseudonym(id) {
            out.push(id.to_owned());
        }
        out
    }

    /// Every consent record: (learner pseudonym, record).
    pub fn consents(&self) -> Vec<(String, ConsentRecord)> {
        let consents = self.consents.read().unwrap();
        consents
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Is processing of this learner's data restricted (quarantine)?
    pub fn restricted(&self, pseudonym: &str) -> bool {
        self.consents
            .read()
            .unwrap()
            .get(pseudonym)
            .is_some_and(|r| r.processing_restricted)
    }

    /// The learner's display name, if the policy shows names to this role (the caller's key
    /// must already be allowed to see the learner).
    pub fn display_name(&self, role: crate::storage::Role, pseudonym: &str) -> Option<&str> {
        self.policy
            .display_name_roles
            .iter()
            .any(|r| r == role.as_str())
            .then(|| self.display_names.get(pseudonym))
            .flatten()
    }

    /// May this role see cognitive data (load and what is built on it)?
    pub fn sees_cognitive_data(&self, role: crate::storage::Role) -> bool {
        self.policy
            .cognitive_data_roles
            .iter()
            .any(|r| r == role.as_str())
    }
}

/// `p<version>_<32 hex>`, as `Pseudonymiser` makes them.
pub fn looks_like_pseudonym(id: &str) -> bool {
    let Some(rest) = id.strip_prefix('p') else {
        return false;
    };
    let Some((version, hex)) = rest.split_once('_') else {
        return false;
    };
    !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_digit())
        && hex.len() == 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

fn secret_owner(tenant: TenantId, purpose: &str, version: u32) -> Vec<u8> {
    format!("learnpulse/tenant/{tenant}/{purpose}/{version}").into_bytes()
}

fn vault_owner(tenant: TenantId, statement: uuid::Uuid) -> Vec<u8> {
    format!("learnpulse/tenant/{tenant}/vault/{statement}").into_bytes()
}

fn roster_owner(tenant: TenantId) -> Vec<u8> {
    format!("learnpulse/tenant/{tenant}/roster").into_bytes()
}

/// Every tenant's privacy state, loaded on first use.
pub struct PrivacyRegistry {
    master: Sealer,
    tenants: RwLock<HashMap<TenantId, Arc<TenantState>>>,
    /// Serialises loading and changes, so two requests never create two first keys.
    changes: tokio::sync::Mutex<()>,
    /// Counts the cached states dropped ([`Self::forget_tenant`], [`Self::clear`]): a load that
    /// began before a drop may hold what the drop was about, so it is used but not cached.
    dropped: std::sync::atomic::AtomicU64,
}

impl PrivacyRegistry {
    pub fn new(master: Sealer) -> Self {
        PrivacyRegistry {
            master,
            tenants: RwLock::new(HashMap::new()),
            changes: tokio::sync::Mutex::new(()),
            dropped: Default::default(),
        }
    }

    /// The tenant's current state, loading it (and creating its keys) on first use.
    pub async fn tenant(
        &self,
        storage: &Storage,
        tenant: TenantId,
    ) -> Result<Arc<TenantState>, StoreError> {
        if let Some(t) = self.tenants.read().unwrap().get(&tenant) {
            return Ok(t.clone());
        }
        let _guard = self.changes.lock().await;
        if let Some(t) = self.tenants.read().unwrap().get(&tenant) {
            return Ok(t.clone());
        }
        let dropped = self.dropped_count();
        let consents = load_consents(storage, tenant).await?;
        let state = self
            .load(storage, tenant, Arc::new(RwLock::new(consents)))
            .await?;
        Ok(self.install(state, dropped))
    }

    fn dropped_count(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Drops the cached state of `tenant` (another process changed it): the next request
    /// loads it again from storage.
    pub fn forget_tenant(&self, tenant: TenantId) {
        let mut tenants = self.tenants.write().unwrap();
        self.dropped
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tenants.remove(&tenant);
    }

    /// Drops every tenant's cached state.
    pub fn clear(&self) {
        let mut tenants = self.tenants.write().unwrap();
        self.dropped
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tenants.clear();
    }

    /// Caches a state loaded while `dropped` states had been dropped, unless more have been
    /// dropped since (it may predate the change that dropped them).
    fn install(&self, state: TenantState, dropped: u64) -> Arc<TenantState> {
        let state = Arc::new(state);
        let mut tenants = self.tenants.write().unwrap();
        if self.dropped_count() == dropped {
            tenants.insert(state.tenant, state.clone());
        }
        state
    }

    fn unseal_key(&self, tenant: TenantId, s: &SealedSecret) -> Result<[u8; 32], StoreError> {
        self.master
            .open(&secret_owner(tenant, &s.purpose, s.version), &s.sealed)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| {
                StoreError::Internal(format!(
                    "tenant {tenant}'s {} key v{} does not open with this master key \
                     (LEARNPULSE_MASTER_KEY or <data_dir>/master.key)",
                    s.purpose, s.version
                ))
            })
    }

    async fn new_secret(
        &self,
        storage: &Storage,
        tenant: TenantId,
        purpose: &str,
        version: u32,
    ) -> Result<SealedSecret, StoreError> {
        let key: [u8; 32] = rand::random();
        let secret = SealedSecret {
            purpose: purpose.to_owned(),
            version,
            sealed: self
                .master
                .seal(&secret_owner(tenant, purpose, version), &key),
        };
        storage.insert_tenant_secret(tenant, secret.clone()).await?;
        Ok(secret)
    }

    /// Reads the tenant's secrets and settings from storage, creating missing keys.
    async fn load(
        &self,
        storage: &Storage,
        tenant: TenantId,
        consents: Arc<RwLock<HashMap<String, ConsentRecord>>>,
    ) -> Result<TenantState, StoreError> {
        let mut secrets = storage.tenant_secrets(tenant).await?;
        for purpose in [PSEUDONYM, VAULT] {
            if secrets.iter().any(|s| s.purpose == purpose) {
                continue;
            }
            match self.new_secret(storage, tenant, purpose, 1).await {
                Ok(secret) => secrets.push(secret),
                // Another process sharing the storage created the tenant's first key at the
                // same moment (the key is unique per tenant, purpose and version): use its.
                Err(e) => {
                    secrets = storage.tenant_secrets(tenant).await?;
                    if !secrets.iter().any(|s| s.purpose == purpose) {
                        return Err(e);
                    }
                }
            }
        }
        let mut pseudonymiser: Option<Pseudonymiser> = None;
        let mut key_version = 0;
        let mut vault = None;
        for s in &secrets {
            let key = self.unseal_key(tenant, s)?;
            match s.purpose.as_str() {
                PSEUDONYM => {
                    key_version = key_version.max(s.version);
                    match &mut pseudonymiser {
                        Some(p) => p.rotate(s.version, key),
                        None => pseudonymiser = Some(Pseudonymiser::new(s.version, key)),
                    }
                }
                VAULT => vault = Some(Sealer::new(&key)),
                _ => {}
            }
        }
        let settings = storage.privacy_settings(tenant).await?;
        let policy = match &settings.policy {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| StoreError::Internal(format!("stored policy: {e}")))?,
            None => Policy::default(),
        };
        let roster = self.stored_roster(tenant, settings.roster_sealed.as_deref());
        let names = roster.scan_names();
        let pseudonymiser = pseudonymiser.expect("a pseudonym key exists by now");
        Ok(TenantState {
            tenant,
            policy,
            display_names: names::DisplayNames::new(&roster, &pseudonymiser),
            pseudonymiser,
            key_version,
            vault: vault.expect("a vault key exists by now"),
            roster: Roster::new(names.iter().copied()),
            roster_size: names.len(),
            consents,
        })
    }

    /// Loads the tenant's state again after a change (the caller holds `changes`, so this
    /// must not wait for it: an announced change may have dropped the cached state meanwhile).
    async fn reload(
        &self,
        storage: &Storage,
        tenant: TenantId,
    ) -> Result<Arc<TenantState>, StoreError> {
        let dropped = self.dropped_count();
        let cached = self
            .tenants
            .read()
            .unwrap()
            .get(&tenant)
            .map(|t| t.consents.clone());
        let consents = match cached {
            Some(consents) => consents,
            None => Arc::new(RwLock::new(load_consents(storage, tenant).await?)),
        };
        let state = self.load(storage, tenant, consents).await?;
        Ok(self.install(state, dropped))
    }

    pub async fn set_policy(
        &self,
        storage: &Storage,
        tenant: TenantId,
        policy: &Policy,
    ) -> Result<Arc<TenantState>, StoreError> {
        self.tenant(storage, tenant).await?;
        let _guard = self.changes.lock().await;
        storage
            .set_policy(
                tenant,
                serde_json::to_string(policy).expect("policies serialise"),
            )
            .await?;
        let state = self.reload(storage, tenant).await?;
        announce(storage, tenant).await;
        Ok(state)
    }

    /// The roster in `sealed`, opened (an empty one if there is none or it does not open).
    fn stored_roster(&self, tenant: TenantId, sealed: Option<&[u8]>) -> names::StoredRoster {
        sealed
            .and_then(|sealed| self.master.open(&roster_owner(tenant), sealed).ok())
            .map(|plain| names::StoredRoster::parse(&plain))
            .unwrap_or_default()
    }

    pub async fn set_roster(
        &self,
        storage: &Storage,
        tenant: TenantId,
        body: &routes::RosterBody,
    ) -> Result<Arc<TenantState>, StoreError> {
        let roster = names::StoredRoster {
            names: body.names.clone(),
            learners: body
                .learners
                .iter()
                .map(|(id, name)| (id.clone(), name.trim().to_owned()))
                .filter(|(_, name)| !name.is_empty())
                .collect(),
        };
        self.store_roster(storage, tenant, |_| roster).await
    }

    /// Drops the display names of the learners held under `pseudonyms` (an erasure).
    pub async fn forget_display_names(
        &self,
        storage: &Storage,
        tenant: TenantId,
        pseudonyms: &[String],
    ) -> Result<(), StoreError> {
        let current = self.tenant(storage, tenant).await?;
        let held = pseudonyms
            .iter()
            .any(|p| current.display_names.get(p).is_some());
        if held {
            self.store_roster(storage, tenant, |roster| {
                names::without(roster, pseudonyms, &current.pseudonymiser)
            })
            .await?;
        }
        Ok(())
    }

    /// Replaces the stored roster by `change` of it, under the change lock.
    async fn store_roster(
        &self,
        storage: &Storage,
        tenant: TenantId,
        change: impl FnOnce(names::StoredRoster) -> names::StoredRoster,
    ) -> Result<Arc<TenantState>, StoreError> {
        self.tenant(storage, tenant).await?;
        let _guard = self.changes.lock().await;
        let settings = storage.privacy_settings(tenant).await?;
        let roster = change(self.stored_roster(tenant, settings.roster_sealed.as_deref()));
        let plain = serde_json::to_vec(&roster).expect("rosters serialise");
        storage
            .set_roster(tenant, self.master.seal(&roster_owner(tenant), &plain))
            .await?;
        let state = self.reload(storage, tenant).await?;
        announce(storage, tenant).await;
        Ok(state)
    }

    /// Adds a new current pseudonym key; returns its version.
    pub async fn rotate(&self, storage: &Storage, tenant: TenantId) -> Result<u32, StoreError> {
        let current = self.tenant(storage, tenant).await?;
        let _guard = self.changes.lock().await;
        let version = current.key_version + 1;
        self.new_secret(storage, tenant, PSEUDONYM, version).await?;
        self.reload(storage, tenant).await?;
        announce(storage, tenant).await;
        Ok(version)
    }

    pub async fn set_consent(
        &self,
        storage: &Storage,
        tenant: TenantId,
        learner: String,
        record: ConsentRecord,
        by_key: String,
    ) -> Result<(), StoreError> {
        let state = self.tenant(storage, tenant).await?;
        let json = serde_json::to_string(&record).expect("records serialise");
        storage
            .set_consent(tenant, learner.clone(), json, by_key)
            .await?;
        state.consents.write().unwrap().insert(learner, record);
        announce(storage, tenant).await;
        Ok(())
    }
}

/// The tenant's stored consent records, by learner pseudonym.
async fn load_consents(
    storage: &Storage,
    tenant: TenantId,
) -> Result<HashMap<String, ConsentRecord>, StoreError> {
    Ok(storage
        .consents(tenant)
        .await?
        .into_iter()
        .filter_map(|(learner, json)| Some((learner, serde_json::from_str(&json).ok()?)))
        .collect())
}

/// Tells the other processes sharing the storage that the tenant's privacy state changed (they
/// drop their cached copy; this one already holds the new state). A failed announcement is
/// logged: the change itself is stored.
pub async fn announce(storage: &Storage, tenant: TenantId) {
    if let Err(e) = storage
        .announce(crate::storage::Change::Privacy(tenant))
        .await
    {
        tracing::warn!(tenant, error = %e, "cannot announce a privacy change to other processes");
    }
}
