//! Operational endpoints: `/healthz`, `/readyz`, `/metrics`, `/openapi.json`. None needs
//! credentials (put `/metrics` behind the network's own controls).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(prometheus))
        .routes(routes!(openapi))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub learners_in_memory: usize,
    /// The installation-wide duties this process leads (`compliance`, `snapshots`): all of
    /// them on the embedded backend; on PostgreSQL, one process leads each.
    pub leads: Vec<&'static str>,
    /// Why the process is not ready, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        learners_in_memory: state.hub.learner_count(),
        leads: state.leading.names(),
        reason: None,
    })
}

/// Readiness: the log has been replayed and the storage answers; 503 (with the reason) while
/// shutting down or while the storage cannot be reached.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let (status, reason) = if *state.shutdown.borrow() {
        ("shutting down", None)
    } else {
        use crate::storage::EventLog;
        match tokio::time::timeout(std::time::Duration::from_secs(2), state.storage.head()).await {
            Ok(Ok(_)) => match (state.audit.failing(), recent_write_failure(&state)) {
                (Some(why), _) => ("audit log failing", Some(why)),
                (None, Some(why)) => ("writes failing", Some(why)),
                (None, None) => ("ready", None),
            },
            Ok(Err(e)) => ("storage unavailable", Some(e.to_string())),
            Err(_) => (
                "storage unavailable",
                Some("the storage did not answer within 2 s".to_owned()),
            ),
        }
    };
    let code = if status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(Health {
            status,
            learners_in_memory: state.hub.learner_count(),
            leads: state.leading.names(),
            reason,
        }),
    )
}

/// The latest failed append, if it failed within [`crate::state::WRITE_FAILURE_FRESH`].
fn recent_write_failure(state: &AppState) -> Option<String> {
    state
        .write_failure
        .read()
        .unwrap()
        .as_ref()
        .filter(|(_, at)| at.elapsed() < crate::state::WRITE_FAILURE_FRESH)
        .map(|(why, _)| why.clone())
}

/// Prometheus metrics in the text exposition format. With `metrics.token` set, only that bearer
/// token or an admin key (or admin session) may read them.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, content_type = "text/plain", body = String),
    (status = 401, description = "`metrics.token` is set and neither it nor an admin key was given", body = crate::problem::Problem),
    (status = 404, description = "metrics are off (`metrics.enabled = false`)", body = crate::problem::Problem),
))]
async fn prometheus(
    State(state): State<AppState>,
    parts: axum::http::request::Parts,
) -> Result<impl IntoResponse, crate::problem::ApiError> {
    if let Some(token) = &state.config.metrics.token {
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "));
        let scraper =
            given.is_some_and(|g| crate::auth::constant_time_eq(g.as_bytes(), token.as_bytes()));
        if !scraper {
            let mut parts = parts;
            let caller =
                <crate::auth::Caller as axum::extract::FromRequestParts<AppState>>::from_request_parts(
                    &mut parts, &state,
                )
                .await?;
            caller.require(crate::auth::Action::ManageKeys)?;
        }
    }
    let Some(metrics) = &state.metrics else {
        return Err(crate::problem::ApiError::not_found(
            "metrics are off on this server (metrics.enabled = false)",
        ));
    };
    record_disk(&state.config.data_dir);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    ))
}

/// This API's OpenAPI 3.1 description, generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses((status = 200, body = Object)))]
async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi_json.get().cloned().unwrap_or_default(),
    )
}

/// The data directory's disk, measured at each scrape (cheap: one `statvfs` and a listing of
/// the directory's top level, where the databases, WAL and keys live):
/// `learnpulse_data_dir_free_bytes` (available to this user on its filesystem) and
/// `learnpulse_data_dir_size_bytes` (its files, models and snapshots included).
fn record_disk(data_dir: &std::path::Path) {
    if let Some(free) = free_bytes(data_dir) {
        metrics::gauge!("learnpulse_data_dir_free_bytes").set(free as f64);
    }
    if let Ok(size) = dir_size(data_dir, 2) {
        metrics::gauge!("learnpulse_data_dir_size_bytes").set(size as f64);
    }
}

fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` a valid out-pointer.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Bytes of the files under `dir`, `depth` levels down.
fn dir_size(dir: &std::path::Path, depth: u32) -> std::io::Result<u64> {
    let mut total = 0;
    // A file may vanish mid-walk (a WAL truncated, a snapshot replaced): skip it.
    for entry in std::fs::read_dir(dir)?.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            if depth > 0 {
                total += dir_size(&entry.path(), depth - 1).unwrap_or(0);
            }
        } else {
            total += meta.len();
        }
    }
    Ok(total)
}
