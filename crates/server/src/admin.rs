//! Administration: tenants and API keys (`/v1/admin/...`, role `admin`).
//!
//! Admins manage the keys of their own tenant. Creating tenants is reserved to admins of the
//! operator tenant (the first tenant, created at bootstrap); a new tenant comes with its first
//! admin key, handed over once.

use crate::problem::Path;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Action, Caller, IssuedKey, issue_key};
use crate::problem::{ApiError, Body, Problem, parse_json};
use crate::state::AppState;
use crate::storage::{AccountStore, Role, Tenant};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_tenant, list_tenants))
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Not blank; leading and trailing spaces are dropped.
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTenant {
    pub tenant: Tenant,
    /// The tenant's first admin key. Its secret is shown only here.
    pub admin_key: IssuedKey,
}

/// Create a tenant and its first admin key (operator admins only).
#[utoipa::path(
    post, path = "/v1/admin/tenants", tag = "admin", request_body = NewTenant,
    responses(
        (status = 201, description = "Created", body = CreatedTenant),
        (status = 400, description = "Invalid name", body = Problem),
        (status = 409, description = "A tenant of that name exists", body = Problem),
        (status = 403, description = "Not an operator admin", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Body(bytes): Body,
) -> Result<(StatusCode, Json<CreatedTenant>), ApiError> {
    caller.require(Action::ManageTenants)?;
    let req: NewTenant = parse_json(&bytes)?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ApiError::bad_request("name", "must be 1 to 128 characters"));
    }
    if state
        .storage
        .tenants()
        .await?
        .iter()
        .any(|t| t.name == name)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("a tenant named {name:?} exists"),
        )
        .with_field("name"));
    }
    let tenant = state.storage.create_tenant(name).await?;
    let admin_key = issue_key(
        &state.storage,
        tenant.id,
        Role::Admin,
        Some("first admin".into()),
    )
    .await?;
    tracing::info!(tenant = tenant.id, by = %caller.key_id, "tenant created");
    state.audit.access(
        &caller,
        "tenant.create",
        Some(tenant.id.to_string()),
        json!({"admin_key": admin_key.key_id}),
    );
    Ok((
        StatusCode::CREATED,
        Json(CreatedTenant { tenant, admin_key }),
    ))
}

/// List tenants (operator admins only).
#[utoipa::path(
    get, path = "/v1/admin/tenants", tag = "admin",
    responses((status = 200, description = "All tenants", body = [Tenant]), (status = 403, description = "Not an operator admin", body = Problem)),
    security(("api_key" = []))
)]
async fn list_tenants(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Tenant>>, ApiError> {
    caller.require(Action::ManageTenants)?;
    Ok(Json(state.storage.tenants().await?))
}

/// The longest life a key can be given (its expiry in microseconds must stay representable).
const MAX_KEY_DAYS: u32 = 36_500;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub role: Role,
    pub label: Option<String>,
    /// Days until the key stops working; absent: it never expires (the compliance report flags
    /// admin keys without an expiry). At most 100 years.
    #[schema(minimum = 0, maximum = 36500)]
    pub expires_in_days: Option<u32>,
    /// For teacher and tutor keys: the groups (classes) the key may see. Absent: the whole
    /// tenant (the compliance report flags unscoped teacher keys).
    pub groups: Option<Vec<String>>,
}

/// An API key without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyInfo {
    pub key_id: String,
    pub role: Role,
    pub label: Option<String>,
    pub created_us: i64,
    pub revoked_us: Option<i64>,
    pub expires_us: Option<i64>,
    pub last_used_us: Option<i64>,
    pub groups: Option<Vec<String>>,
}

/// Create an API key in the caller's tenant.
#[utoipa::path(
    post, path = "/v1/admin/keys", tag = "admin", request_body = NewKey,
    responses((status = 201, description = "Created; the secret is shown only here", body = IssuedKey), (status = 400, description = "Invalid role", body = Problem)),
    security(("api_key" = []))
)]
async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    Body(bytes): Body,
) -> Result<(StatusCode, Json<IssuedKey>), ApiError> {
    caller.require(Action::ManageKeys)?;
    let req: NewKey = parse_json(&bytes)?;
    if let Some(days) = req.expires_in_days
        && days > MAX_KEY_DAYS
    {
        return Err(ApiError::bad_request(
            "expires_in_days",
            format!("at most {MAX_KEY_DAYS} days"),
        ));
    }
    let expires_us = req
        .expires_in_days
        .map(|d| crate::storage::now_us() + i64::from(d) * 86_400_000_000);
    if let Some(problem) = crate::auth::scope_problem(req.role, req.groups.as_deref()) {
        return Err(ApiError::bad_request("groups", problem));
    }
    let key = crate::auth::issue_key_with(
        &state.storage,
        caller.tenant,
        crate::auth::KeySpec {
            role: req.role,
            label: req.label,
            expires_us,
            groups: req.groups,
        },
    )
    .await?;
    tracing::info!(key = %key.key_id, role = key.role.as_str(), by = %caller.key_id, "API key created");
    state.audit.access(
        &caller,
        "key.create",
        Some(key.key_id.clone()),
        json!({"role": key.role.as_str()}),
    );
    Ok((StatusCode::CREATED, Json(key)))
}

/// List the API keys of the caller's tenant (never their secrets).
#[utoipa::path(
    get, path = "/v1/admin/keys", tag = "admin",
    responses((status = 200, description = "Keys of this tenant", body = [KeyInfo])),
    security(("api_key" = []))
)]
async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<KeyInfo>>, ApiError> {
    caller.require(Action::ManageKeys)?;
    let keys = state.storage.keys(caller.tenant).await?;
    Ok(Json(
        keys.into_iter()
            .map(|k| KeyInfo {
                key_id: k.key_id,
                role: k.role,
                label: k.label,
                created_us: k.created_us,
                revoked_us: k.revoked_us,
                expires_us: k.expires_us,
                last_used_us: k.last_used_us,
                groups: k.groups,
            })
            .collect(),
    ))
}

/// Revoke an API key of the caller's tenant. Effective at once on this server.
#[utoipa::path(
    delete, path = "/v1/admin/keys/{key_id}", tag = "admin",
    params(("key_id" = String, Path, description = "The key to revoke")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No live key with this id in this tenant", body = Problem)),
    security(("api_key" = []))
)]
async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Action::ManageKeys)?;
    if state.storage.revoke_key(caller.tenant, &key_id).await? {
        state.key_changed(&key_id).await;
        tracing::info!(key = %key_id, by = %caller.key_id, "API key revoked");
        state
            .audit
            .access(&caller, "key.revoke", Some(key_id.clone()), json!({}));
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(
            ApiError::not_found(format!("no live key {key_id:?} in this tenant"))
                .with_field("key_id"),
        )
    }
}
