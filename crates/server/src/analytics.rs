//! Differentially private analytics for researchers: `POST /v1/analytics/{count,sum,mean,histogram}`,
//! the analyst's budget and the ledger of releases.
//!
//! A query names a measure, a grouping (skill, group, day or none), an event-time window, the
//! contribution bounds and the ε to spend. The path of one query:
//! 1. the ε is spent from the analyst's budget, atomically in storage (refused with 403 naming
//!    `epsilon` if it would go past the tenant's `dp_epsilon_per_analyst`), and logged;
//! 2. the tenant's (pseudonymous) events are read and bounded per learner
//!    (`learnpulse_privacy::dp::aggregate`), which fixes the L1 sensitivity;
//! 3. each released vector goes through OpenDP's `make_laplace` on integers: exact discrete
//!    Laplace noise from OpenSSL's generator, and OpenDP's own privacy map says what it cost;
//! 4. cells whose noisy learner count is under the tenant's k-anonymity threshold are suppressed
//!    (post-processing of a DP release, so it costs nothing more).
//!
//! When the analyst does not list the cells, the cell keys come from the data; that discloses
//! which skills, groups or days occur at all, which pure ε-DP does not cover. List `cells` for a
//! release whose shape is independent of the data.

use crate::problem::{Path, Query};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use learnpulse_privacy::dp::{self, ACCURACY_BINS, Aggregate, Bounds, Contribution, Measure};
use opendp::domains::{AtomDomain, VectorDomain};
use opendp::measurements::make_laplace;
use opendp::measures::MaxDivergence;
use opendp::metrics::L1Distance;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Action, Caller};
use crate::problem::{ApiError, Body, Problem, parse_json};
use crate::state::AppState;
use crate::storage::{LedgerEntry, PrivacyStore, SpendError};
use crate::xapi::mapping::learning_event;
use crate::xapi::validate::parse_timestamp;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(query))
        .routes(routes!(budget))
        .routes(routes!(ledger))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum By {
    None,
    Skill,
    Group,
    Day,
}

/// One analytics query.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsQuery {
    /// `learners`, `answers`, `correct`, `hints` or `response_seconds`. Ignored by `histogram`
    /// (which is always of learners by accuracy decile).
    #[schema(value_type = learnpulse_privacy::dp::Measure)]
    #[serde(default = "default_measure")]
    pub measure: Measure,
    #[serde(default = "default_by")]
    pub by: By,
    /// Events at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Events before this time (RFC 3339).
    pub until: Option<String>,
    /// The cells to release, fixed in advance; without it, the cells found in the data.
    pub cells: Option<Vec<String>>,
    /// Privacy loss to spend on this query.
    pub epsilon: f64,
    /// Cells one learner may contribute to (default 1 for `by: none`, 3 for groups, 10 for skills,
    /// 31 for days).
    pub max_cells_per_learner: Option<u32>,
    /// Largest value one learner adds to one cell (default 50).
    pub max_per_learner: Option<u32>,
}

fn default_measure() -> Measure {
    Measure::Learners
}

fn default_by() -> By {
    By::None
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Cell {
    pub cell: String,
    /// The noisy statistic; absent when the cell is suppressed.
    pub value: Option<f64>,
    /// Noisy histogram (`histogram` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bins: Option<Vec<i64>>,
    /// Fewer learners than the k-anonymity threshold (by the noisy count).
    pub suppressed: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Release {
    pub statistic: String,
    #[schema(value_type = Object)]
    pub query: AnalyticsQuery,
    pub cells: Vec<Cell>,
    /// ε charged to the budget, as OpenDP's privacy maps compute it.
    pub epsilon_spent: f64,
    pub budget_remaining: f64,
    pub k_anonymity: u32,
    /// The mechanism and the noise scales, so that an analyst can compute error bars.
    pub noise: Value,
}

/// Released statistic: `count`, `sum`, `mean` or `histogram`.
#[utoipa::path(
    post, path = "/v1/analytics/{statistic}", tag = "analytics",
    params(("statistic" = String, Path, description = "count, sum, mean or histogram", pattern = "^(count|sum|mean|histogram)$")),
    request_body = AnalyticsQuery,
    responses(
        (status = 200, description = "The noisy release", body = Release),
        (status = 400, description = "Invalid query; `field` names it", body = Problem),
        (status = 403, description = "Not a researcher, or the budget would be exceeded (`field`: epsilon)", body = Problem),
        (status = 404, description = "No such statistic", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn query(
    State(state): State<AppState>,
    caller: Caller,
    Path(statistic): Path<String>,
    Body(bytes): Body,
) -> Result<Json<Release>, ApiError> {
    caller.require(Action::QueryAnalytics)?;
    let statistic = match statistic.as_str() {
        "count" | "sum" | "mean" | "histogram" => statistic,
        _ => {
            return Err(ApiError::not_found(
                "no such statistic; use count, sum, mean or histogram",
            )
            .with_field("statistic"));
        }
    };
    let q: AnalyticsQuery = parse_json(&bytes)?;
    // Outside these the noise scale (sensitivity / ε) stops being a number OpenDP can sample
    // from, and no release would be useful anyway.
    if !(q.epsilon.is_finite() && (MIN_EPSILON..=MAX_EPSILON).contains(&q.epsilon)) {
        return Err(ApiError::bad_request(
            "epsilon",
            format!("must be a number from {MIN_EPSILON} to {MAX_EPSILON}"),
        ));
    }
    if statistic == "mean" && matches!(q.measure, Measure::Learners | Measure::Answers) {
        return Err(ApiError::bad_request(
            "measure",
            "a mean is per answer: use correct, hints or response_seconds",
        ));
    }
    if statistic == "sum" && q.measure == Measure::Learners {
        return Err(ApiError::bad_request(
            "measure",
            "learners are counted, not summed",
        ));
    }
    let window = |field: &str, value: &Option<String>| -> Result<Option<i64>, ApiError> {
        value
            .as_deref()
            .map(|s| {
                parse_timestamp(s)
                    .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                    .ok_or_else(|| ApiError::bad_request(field, "must be an RFC 3339 timestamp"))
            })
            .transpose()
    };
    let since_ms = window("since", &q.since)?;
    let until_ms = window("until", &q.until)?;
    let bounds = Bounds {
        max_cells: q.max_cells_per_learner.unwrap_or(match q.by {
            By::None => 1,
            By::Group => 3,
            By::Skill => 10,
            By::Day => 31,
        }),
        max_per_cell: q.max_per_learner.unwrap_or(50),
    };
    for (field, bound) in [
        ("max_cells_per_learner", bounds.max_cells),
        ("max_per_learner", bounds.max_per_cell),
    ] {
        if !(1..=MAX_BOUND).contains(&bound) {
            return Err(ApiError::bad_request(
                field,
                format!("contribution bounds must be from 1 to {MAX_BOUND}"),
            ));
        }
    }

    let privacy = state.privacy.tenant(&state.storage, caller.tenant).await?;
    let total = privacy.policy.dp_epsilon_per_analyst;
    let k = privacy.policy.k_anonymity;
    let remaining = match state
        .storage
        .spend_budget(
            caller.tenant,
            caller.key_id.clone(),
            q.epsilon,
            total,
            json!({"statistic": statistic, "query": q}).to_string(),
        )
        .await
    {
        Ok(remaining) => remaining,
        Err(SpendError::Exceeded { spent, total }) => {
            state.audit.access(
                &caller,
                "analytics.refused",
                None,
                json!({"statistic": statistic, "epsilon": q.epsilon, "spent": spent, "total": total}),
            );
            return Err(ApiError::forbidden(format!(
                "privacy budget exceeded: this key has spent ε = {spent:.4} of {total:.4}; \
                 this query asks for {:.4} more",
                q.epsilon
            ))
            .with_field("epsilon"));
        }
        Err(SpendError::Store(e)) => return Err(e.into()),
    };

    // Read and bound the tenant's events off the async threads.
    let tenant = caller.tenant;
    let (by, cells, measure) = (q.by, q.cells.clone(), q.measure);
    let mut rows: Vec<(String, String, bool, bool, u32, Option<u64>)> = Vec::new();
    crate::storage::log::for_each_tenant_statement(&*state.storage, tenant, |json| {
        let Ok(statement) = serde_json::from_str::<Value>(json) else {
            return;
        };
        let Some(e) = learning_event(&statement) else {
            return;
        };
        if since_ms.is_some_and(|t| e.timestamp_ms < t)
            || until_ms.is_some_and(|t| e.timestamp_ms >= t)
        {
            return;
        }
        let keys: Vec<String> = match by {
            By::None => vec!["all".to_owned()],
            By::Skill => e.skills.clone(),
            By::Group => vec![e.group.clone().unwrap_or_else(|| "(none)".into())],
            By::Day => vec![day(e.timestamp_ms)],
        };
        let scored = e.is_scored();
        let correct = e.outcome == learnpulse_core::Outcome::Correct;
        for key in keys {
            rows.push((
                e.learner.clone(),
                key,
                scored,
                correct,
                e.hints_used,
                e.response_time_ms,
            ));
        }
    })
    .await?;
    let aggregates = tokio::task::spawn_blocking(move || {
        let contributions = || {
            rows.iter()
                .map(|(learner, cell, scored, correct, hints, ms)| Contribution {
                    learner,
                    cell: cell.clone(),
                    scored: *scored,
                    correct: *correct,
                    hints: *hints,
                    response_ms: *ms,
                })
        };
        let main = dp::aggregate(contributions(), measure, bounds, cells.as_deref());
        let answers = dp::aggregate(contributions(), Measure::Answers, bounds, cells.as_deref());
        (main, answers)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (main, answers) = aggregates;

    let release = release(&statistic, &q, bounds, &main, &answers, k)?;
    state.audit.access(
        &caller,
        "analytics.release",
        None,
        json!({"statistic": statistic, "query": q, "epsilon_spent": release.spent}),
    );
    Ok(Json(Release {
        statistic,
        query: q,
        cells: release.cells,
        epsilon_spent: release.spent,
        budget_remaining: remaining.max(0.0),
        k_anonymity: k,
        noise: release.noise,
    }))
}

fn day(timestamp_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(timestamp_ms.div_euclid(1_000))
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| "(invalid)".into())
}

struct Released {
    cells: Vec<Cell>,
    spent: f64,
    noise: Value,
}

/// The smallest and largest ε one release may spend.
const MIN_EPSILON: f64 = 1e-6;
const MAX_EPSILON: f64 = 1e3;
/// The largest contribution bound (cells per learner, or amount per cell).
const MAX_BOUND: u32 = 100_000;

/// Discrete Laplace noise on an integer vector through OpenDP, calibrated so that OpenDP's
/// privacy map at `d_in` is within `epsilon`. Returns the noisy vector, the ε the map charges and
/// the scale.
fn laplace(values: &[i64], d_in: i64, epsilon: f64) -> Result<(Vec<i64>, f64, f64), ApiError> {
    let dp_error = |e: opendp::error::Error| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("OpenDP: {e}"))
    };
    // A hair above d_in/ε, so that floating-point rounding in the map never charges more than ε.
    let scale = d_in as f64 / epsilon * (1.0 + 1e-9);
    let measurement = make_laplace::<_, _, MaxDivergence>(
        VectorDomain::new(AtomDomain::<i64>::default()),
        L1Distance::<i64>::default(),
        scale,
        None,
    )
    .map_err(dp_error)?;
    let spent = measurement.map(&d_in).map_err(dp_error)?;
    let noisy = measurement.invoke(&values.to_vec()).map_err(dp_error)?;
    Ok((noisy, spent, scale))
}

fn release(
    statistic: &str,
    q: &AnalyticsQuery,
    bounds: Bounds,
    main: &Aggregate,
    answers: &Aggregate,
    k: u32,
) -> Result<Released, ApiError> {
    let learners_d = Aggregate::learners_sensitivity(bounds);
    // Every statistic needs a noisy learner count per cell for suppression; `count` of learners
    // is that count itself.
    let counting_learners = statistic == "count" && q.measure == Measure::Learners;
    let parts = match statistic {
        "mean" => 3.0,
        _ if counting_learners => 1.0,
        _ => 2.0,
    };
    let share = q.epsilon / parts;
    let (noisy_learners, mut spent, learners_scale) = laplace(&main.learners, learners_d, share)?;
    let suppressed: Vec<bool> = noisy_learners.iter().map(|n| *n < i64::from(k)).collect();
    let mut noise = json!({
        "mechanism": "discrete Laplace (OpenDP make_laplace on integers)",
        "learner_count_scale": learners_scale,
        "bounds": {"max_cells_per_learner": bounds.max_cells, "max_per_learner": bounds.max_per_cell},
    });
    let mut values: Vec<Option<f64>> = noisy_learners
        .iter()
        .map(|n| Some(*n.max(&0) as f64))
        .collect();
    let mut bins: Vec<Option<Vec<i64>>> = vec![None; main.cells.len()];
    match statistic {
        _ if counting_learners => {}
        "count" | "sum" => {
            let d = Aggregate::totals_sensitivity(bounds, q.measure);
            let (noisy, e, scale) = laplace(&main.totals, d, share)?;
            spent += e;
            noise["value_scale"] = json!(scale);
            values = noisy.iter().map(|v| Some(*v.max(&0) as f64)).collect();
        }
        "mean" => {
            let d = Aggregate::totals_sensitivity(bounds, q.measure);
            let (sums, e1, s1) = laplace(&main.totals, d, share)?;
            let d = Aggregate::totals_sensitivity(bounds, Measure::Answers);
            let (counts, e2, s2) = laplace(&answers.totals, d, share)?;
            spent += e1 + e2;
            noise["sum_scale"] = json!(s1);
            noise["answer_count_scale"] = json!(s2);
            values = sums
                .iter()
                .zip(&counts)
                .map(|(s, c)| (*c > 0).then(|| (*s).max(0) as f64 / *c as f64))
                .collect();
        }
        "histogram" => {
            let flat: Vec<i64> = main.accuracy_histogram.iter().flatten().copied().collect();
            let (noisy, e, scale) = laplace(&flat, learners_d, share)?;
            spent += e;
            noise["bin_scale"] = json!(scale);
            noise["bins"] = json!(
                (0..ACCURACY_BINS)
                    .map(|b| format!("accuracy {}-{} %", b * 10, b * 10 + 10))
                    .collect::<Vec<_>>()
            );
            for (i, chunk) in noisy.chunks(ACCURACY_BINS).enumerate() {
                bins[i] = Some(chunk.iter().map(|v| (*v).max(0)).collect());
            }
            values = vec![None; main.cells.len()];
        }
        _ => unreachable!("statistic checked by the handler"),
    }
    let cells = main
        .cells
        .iter()
        .enumerate()
        .map(|(i, cell)| Cell {
            cell: cell.clone(),
            value: if suppressed[i] { None } else { values[i] },
            bins: if suppressed[i] { None } else { bins[i].take() },
            suppressed: suppressed[i],
        })
        .collect();
    Ok(Released {
        cells,
        spent,
        noise,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Budget {
    pub total: f64,
    pub spent: f64,
    pub remaining: f64,
}

/// The calling analyst's privacy budget.
#[utoipa::path(
    get, path = "/v1/analytics/budget", tag = "analytics",
    responses((status = 200, description = "ε total, spent and remaining", body = Budget)),
    security(("api_key" = []))
)]
async fn budget(State(state): State<AppState>, caller: Caller) -> Result<Json<Budget>, ApiError> {
    caller.require(Action::QueryAnalytics)?;
    let privacy = state.privacy.tenant(&state.storage, caller.tenant).await?;
    let total = privacy.policy.dp_epsilon_per_analyst;
    let spent = state
        .storage
        .budget_spent(caller.tenant, caller.key_id.clone())
        .await?;
    Ok(Json(Budget {
        total,
        spent,
        remaining: (total - spent).max(0.0),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LedgerFilter {
    /// One analyst's key id (`dpo` and `admin` only; a researcher always sees their own).
    analyst: Option<String>,
}

/// Releases made, newest first: a researcher's own, or (for `dpo` and `admin`) everyone's.
#[utoipa::path(
    get, path = "/v1/analytics/ledger", tag = "analytics",
    params(LedgerFilter),
    responses((status = 200, description = "The ledger", body = [LedgerEntry])),
    security(("api_key" = []))
)]
async fn ledger(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<LedgerFilter>,
) -> Result<Json<Vec<LedgerEntry>>, ApiError> {
    let analyst = if caller.require(Action::ManagePrivacy).is_ok() {
        filter.analyst
    } else {
        caller.require(Action::QueryAnalytics)?;
        Some(caller.key_id.clone())
    };
    Ok(Json(state.storage.ledger(caller.tenant, analyst).await?))
}
