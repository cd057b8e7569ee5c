//! Tenants, API keys and roles.
//!
//! A key is a public key id and a secret. Clients send them as `Authorization: Bearer
//! <key_id>.<secret>` or as HTTP Basic (`key_id:secret`, the xAPI convention). Only the SHA-256
//! of the secret is stored; secrets are 256 random bits, so a fast hash is enough (there is
//! nothing to brute-force). What each role may do is decided in one place, [`allowed`].

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::problem::ApiError;
use crate::state::AppState;
use crate::storage::{AccountStore, ApiKeyRecord, Role, Storage, StoreError, TenantId, now_us};

/// How long a verified key is trusted from memory before it is read again from storage. Keys
/// revoked through the API are dropped at once; ones revoked by `learnpulse admin` from another
/// process stop working within this time.
const KEY_CACHE_TTL: Duration = Duration::from_secs(10);

/// What a request may do. Handlers ask [`Caller::require`] for one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    WriteStatements,
    ReadStatements,
    ReadLearners,
    ManageKeys,
    /// Create tenants: only admins of the operator tenant (the first one, created at bootstrap).
    ManageTenants,
    /// Read and change the tenant's privacy policy and roster; rotate its pseudonym key.
    ManagePrivacy,
    /// Record a learner's consents and age (the platform, as it collects them).
    RecordConsent,
    /// Read back what a placeholder replaced, from the vault (audited).
    Reidentify,
    /// Query differentially private analytics, spending the caller's budget.
    QueryAnalytics,
    /// Read the compliance report and the rule overrides.
    ReadCompliance,
    /// Answer data-subject requests (access, erasure).
    HandleSubjectRequests,
    /// Register webhook receivers, rotate their secrets, read and replay their messages.
    ManageWebhooks,
    /// Record what a tutor (human or AI) did for a learner and how it went (MCP).
    RecordTutorActions,
}

/// The permission table.
pub fn allowed(role: Role, action: Action) -> bool {
    use Action::*;
    use Role::*;
    match action {
        WriteStatements => matches!(role, Admin | Ingest),
        ReadStatements => matches!(role, Admin | Ingest | Dpo),
        ReadLearners => matches!(role, Admin | Teacher | Tutor | Dpo),
        ManageKeys | ManageTenants => role == Admin,
        ManagePrivacy => matches!(role, Admin | Dpo),
        RecordConsent => matches!(role, Admin | Ingest | Dpo),
        Reidentify => role == Dpo,
        QueryAnalytics => role == Researcher,
        ReadCompliance => matches!(role, Admin | Dpo),
        HandleSubjectRequests => role == Dpo,
        ManageWebhooks => role == Admin,
        RecordTutorActions => matches!(role, Admin | Teacher | Tutor),
    }
}

/// The tenant that exists from the first start; its admins operate the whole server.
pub const OPERATOR_TENANT: TenantId = 1;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: TenantId,
    pub key_id: String,
    pub role: Role,
    /// The groups (classes) this key may see; `None`: the whole tenant.
    pub groups: Option<Vec<String>>,
}

impl Caller {
    /// May this key see a learner working in `groups`? A key scoped to groups sees the learners
    /// of those groups only (FERPA: legitimate educational interest).
    pub fn sees_any<'a>(&self, mut groups: impl Iterator<Item = &'a String>) -> bool {
        match &self.groups {
            None => true,
            Some(mine) => groups.any(|g| mine.contains(g)),
        }
    }

    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        let tenant_ok = action != Action::ManageTenants || self.tenant == OPERATOR_TENANT;
        if allowed(self.role, action) && tenant_ok {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the role '{}' may not {:?} here",
                self.role.as_str(),
                action
            )))
        }
    }
}

/// A key as handed to its owner, once. The secret is not kept anywhere.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedKey {
    pub key_id: String,
    pub secret: String,
    /// `key_id.secret`, ready for `Authorization: Bearer`.
    pub token: String,
    pub tenant_id: TenantId,
    pub role: Role,
    /// When the key stops working (microseconds since the epoch); absent: never.
    pub expires_us: Option<i64>,
    /// The groups the key may see; absent: the whole tenant.
    pub groups: Option<Vec<String>>,
}

fn sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// What a new key is.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub role: Role,
    pub label: Option<String>,
    /// When it stops working; `None`: never.
    pub expires_us: Option<i64>,
    /// The groups a teacher or tutor key may see; `None`: the whole tenant.
    pub groups: Option<Vec<String>>,
}

/// Creates and stores a new tenant-wide key that does not expire; returns it with its secret
/// (the only time the secret exists).
/// What is wrong with scoping a `role` key to `groups`, if anything. Only teacher and tutor keys
/// are scoped; a tutor (often an AI) sees only the learners it is assigned, so its key must name
/// their groups.
pub fn scope_problem(role: Role, groups: Option<&[String]>) -> Option<&'static str> {
    match (role, groups) {
        (Role::Teacher | Role::Tutor, Some([])) => Some("name at least one group"),
        (Role::Teacher | Role::Tutor, Some(_)) => None,
        (Role::Tutor, None) => {
            Some("a tutor key sees only the learners it is assigned: name their groups")
        }
        (_, Some(_)) => Some("only teacher and tutor keys are scoped to groups"),
        (_, None) => None,
    }
}

pub async fn issue_key(
    storage: &Storage,
    tenant: TenantId,
    role: Role,
    label: Option<String>,
) -> Result<IssuedKey, StoreError> {
    let spec = KeySpec {
        role,
        label,
        expires_us: None,
        groups: None,
    };
    issue_key_with(storage, tenant, spec).await
}

/// Creates and stores a new key as `spec` says.
pub async fn issue_key_with(
    storage: &Storage,
    tenant: TenantId,
    spec: KeySpec,
) -> Result<IssuedKey, StoreError> {
    let KeySpec {
        role,
        label,
        expires_us,
        groups,
    } = spec;
    let mut id_bytes = [0u8; 8];
    let mut secret_bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut id_bytes);
    rand::rng().fill_bytes(&mut secret_bytes);
    let key_id = format!("lpk_{}", hex::encode(id_bytes));
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret_bytes);
    storage
        .insert_key(ApiKeyRecord {
            key_id: key_id.clone(),
            tenant_id: tenant,
            role,
            secret_sha256: sha256(&secret),
            label,
            created_us: now_us(),
            revoked_us: None,
            expires_us,
            last_used_us: None,
            groups: groups.clone(),
        })
        .await?;
    Ok(IssuedKey {
        token: format!("{key_id}.{secret}"),
        key_id,
        secret,
        tenant_id: tenant,
        role,
        expires_us,
        groups,
    })
}

/// Creates the operator tenant and its first admin key if the store has no tenant yet.
pub async fn bootstrap(storage: &Storage) -> Result<Option<IssuedKey>, StoreError> {
    if !storage.tenants().await?.is_empty() {
        return Ok(None);
    }
    let tenant = match storage.create_tenant("default").await {
        Ok(tenant) => tenant,
        // Another process sharing the storage bootstrapped it at the same moment (tenant names
        // are unique): its admin key is the first one, printed there.
        Err(_) if !storage.tenants().await?.is_empty() => return Ok(None),
        Err(e) => return Err(e),
    };
    issue_key(
        storage,
        tenant.id,
        Role::Admin,
        Some("bootstrap admin".into()),
    )
    .await
    .map(Some)
}

/// Key records, kept for [`KEY_CACHE_TTL`] in this process (L1) and, when configured, in Redis
/// (L2) for every node (`crate::cache`).
pub struct KeyCache(crate::cache::Tiered<ApiKeyRecord>);

impl KeyCache {
    pub fn new(entries: u64, shared: std::sync::Arc<crate::cache::Shared>) -> Self {
        KeyCache(crate::cache::Tiered::new(
            "keys",
            entries,
            KEY_CACHE_TTL,
            shared,
        ))
    }

    /// The key changed here: every layer forgets it.
    pub async fn invalidate(&self, key_id: &str) {
        self.0.invalidate(key_id).await;
    }

    /// Another process changed the key (and cleared the shared layer).
    pub fn forget_local(&self, key_id: &str) {
        self.0.forget_local(key_id);
    }

    pub fn clear_local(&self) {
        self.0.clear_local();
    }

    /// The key, and whether it was read from storage just now (rather than from memory).
    async fn lookup(
        &self,
        storage: &Storage,
        key_id: &str,
    ) -> Result<(Option<ApiKeyRecord>, bool), ApiError> {
        let (record, layer) = self.0.get_or_load(key_id, || storage.key(key_id)).await?;
        Ok((record, layer == crate::cache::Layer::L3))
    }
}

/// Requests per second per key, as token buckets (one per key id, in this process): a key may
/// burst to twice its rate, then is held to the rate. A flood from one key (a runaway script, a
/// stolen key) cannot starve the others.
pub struct RateLimiter {
    per_second: f64,
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, std::time::Instant)>>,
}

impl RateLimiter {
    /// `per_second == 0`: no limit.
    pub fn new(per_second: u32) -> Self {
        RateLimiter {
            per_second: f64::from(per_second),
            buckets: Default::default(),
        }
    }

    /// Takes one request from `key_id`'s bucket; `Err(seconds)` to wait when it is empty.
    pub fn take(&self, key_id: &str) -> Result<(), u64> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let burst = 2.0 * self.per_second;
        let now = std::time::Instant::now();
        let mut buckets = self.buckets.lock().unwrap();
        if buckets.len() > 100_000 {
            // Keys that have been quiet long enough to have a full bucket need no entry.
            let refill = burst / self.per_second;
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() < refill);
        }
        let (tokens, at) = buckets.entry(key_id.to_owned()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

/// Splits an `Authorization` header into key id and secret.
pub fn parse_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.trim().split_once(' ')?;
    let value = value.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        let (id, secret) = value.split_once('.')?;
        return Some((id.to_owned(), secret.to_owned()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (id, secret) = text.split_once(':')?;
        return Some((id.to_owned(), secret.to_owned()));
    }
    None
}

/// Whether two secrets are equal, taking the same time wherever they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        if header.is_none()
            && let Some(value) = crate::session::from_headers(&parts.headers)
        {
            return session_caller(state, parts, value).await;
        }
        authenticate(state, header).await
    }
}

/// The caller a session cookie stands for ([`crate::session`]): its key, checked as a bearer
/// key is. A request that changes something must repeat the session's CSRF token.
async fn session_caller(state: &AppState, parts: &Parts, value: &str) -> Result<Caller, ApiError> {
    let session = state
        .sessions
        .open(value)
        .ok_or_else(|| ApiError::unauthorized("the session has ended: sign in again"))?;
    let safe = matches!(
        parts.method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    let token = parts
        .headers
        .get("x-csrf-token")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !safe && !constant_time_eq(token.as_bytes(), session.csrf.as_bytes()) {
        return Err(ApiError::forbidden(
            "a change from a browser session needs its X-CSRF-Token",
        ));
    }
    verify(state, &session.key_id, None).await
}

/// The caller an `Authorization` header value names (Bearer or Basic); failures are counted
/// and audited.
pub async fn authenticate(state: &AppState, header: Option<&str>) -> Result<Caller, ApiError> {
    let header = header.ok_or_else(|| {
        ApiError::unauthorized(
            "credentials required: Authorization: Bearer <key_id>.<secret> or Basic",
        )
    })?;
    let (key_id, secret) = parse_credentials(header)
        .ok_or_else(|| ApiError::unauthorized("malformed Authorization header"))?;
    verify(state, &key_id, Some(&secret)).await
}

/// The caller of key `key_id` if it is valid now and, when `secret` is given, the secret is
/// its (a session cookie, sealed by the server, stands in for the secret).
pub async fn verify(
    state: &AppState,
    key_id: &str,
    secret: Option<&str>,
) -> Result<Caller, ApiError> {
    let (record, fresh) = state.keys.lookup(&state.storage, key_id).await?;
    let now = now_us();
    let record = match record {
        Some(r)
            if r.revoked_us.is_none()
                && r.expires_us.is_none_or(|t| t > now)
                && secret.is_none_or(|s| constant_time_eq(&r.secret_sha256, &sha256(s))) =>
        {
            r
        }
        other => {
            metrics::counter!("learnpulse_auth_failures_total").increment(1);
            // Failures are audited under the key's tenant when the key exists (a burst
            // against one tenant's keys is a compliance finding), else under tenant 0.
            let reason = match &other {
                None => "unknown key",
                Some(r) if r.revoked_us.is_some() => "revoked key",
                Some(r) if r.expires_us.is_some_and(|t| t <= now) => "expired key",
                Some(_) => "wrong secret",
            };
            state.audit.record(
                other.as_ref().map_or(0, |r| r.tenant_id),
                key_id,
                "auth.failed",
                None,
                serde_json::json!({"reason": reason}),
            );
            return Err(ApiError::unauthorized(
                "unknown, revoked, expired or wrong API key",
            ));
        }
    };
    if fresh {
        // At most once per cache period per key: enough to find keys nobody uses.
        let _ = state.storage.touch_key(&record.key_id, now).await;
    }
    if let Some(why) = state.audit.failing() {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the audit log cannot be written ({why}); nothing that must be audited is done until it can"
            ),
        ));
    }
    if let Err(wait) = state.rate.take(&record.key_id) {
        metrics::counter!("learnpulse_rate_limited_total").increment(1);
        return Err(ApiError::too_many_requests(wait));
    }
    Ok(Caller {
        tenant: record.tenant_id,
        key_id: record.key_id,
        role: record.role,
        groups: record.groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_credentials_parse() {
        assert_eq!(
            parse_credentials("Bearer lpk_1.s3cr3t"),
            Some(("lpk_1".into(), "s3cr3t".into()))
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("lpk_1:s3cr3t");
        assert_eq!(
            parse_credentials(&format!("Basic {basic}")),
            Some(("lpk_1".into(), "s3cr3t".into()))
        );
        assert_eq!(parse_credentials("Digest abc"), None);
    }

    #[test]
    fn a_key_bursts_to_twice_its_rate_then_waits() {
        let limiter = RateLimiter::new(5);
        for _ in 0..10 {
            assert_eq!(limiter.take("lpk_a"), Ok(()));
        }
        assert_eq!(limiter.take("lpk_a"), Err(1));
        assert_eq!(
            limiter.take("lpk_b"),
            Ok(()),
            "another key has its own bucket"
        );
        assert_eq!(RateLimiter::new(0).take("lpk_a"), Ok(()));
    }

    #[test]
    fn tutor_keys_must_name_their_groups() {
        let class = ["class-7b".to_owned()];
        assert!(scope_problem(Role::Tutor, None).is_some());
        assert!(scope_problem(Role::Tutor, Some(&class)).is_none());
        assert!(scope_problem(Role::Tutor, Some(&[])).is_some());
        assert!(scope_problem(Role::Teacher, None).is_none());
        assert!(scope_problem(Role::Ingest, Some(&class)).is_some());
    }

    #[test]
    fn the_permission_table_keeps_roles_apart() {
        assert!(allowed(Role::Ingest, Action::WriteStatements));
        assert!(!allowed(Role::Teacher, Action::WriteStatements));
        assert!(!allowed(Role::Researcher, Action::ReadLearners));
        assert!(!allowed(Role::Ingest, Action::ManageKeys));
        assert!(allowed(Role::Admin, Action::ManageKeys));
    }
}
