//! A learner over time (`GET /v1/learners/{id}/timeline`): their answers replayed from the log
//! through the same engine the live state comes from, one point per answer (mastery of the
//! answer's skills, the load index and its signals), and each recent intervention with what
//! followed it.
//!
//! Nothing is stored for this: the log is the history. The replay starts from an empty learner
//! on an engine holding the tenant's current item norms, so mastery (which depends only on the
//! learner's own answers and the fitted model) is exactly what the live engine computed at each
//! step, while the load signals are measured against today's norms.

use crate::problem::Path;
use axum::Json;
use axum::extract::State;
use learnpulse_core::Outcome;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::learners::visible_learner;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::storage::{EventLog, StatementQuery};

/// At most this many statements are replayed (the newest are kept when there are more).
const MAX_EVENTS: usize = 5_000;
/// How many answers after an intervention tell what followed it.
const FOLLOW_UP: usize = 5;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(timeline))
}

/// One learner's answers over time: mastery per skill after each, the load index (cognitive
/// data, for the roles that may see it) and the interventions with what followed each.
#[utoipa::path(
    get, path = "/v1/learners/{id}/timeline", tag = "learners",
    params(("id" = String, Path, description = "The learner id, or their pseudonym")),
    responses(
        (status = 200, description = "{learner, points, interventions}", body = Object),
        (status = 404, description = "No events of this learner", body = Problem),
    ),
    security(("api_key" = []))
)]
async fn timeline(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (learner, cognitive) = visible_learner(&state, &caller, &id).await?;
    let ifi = format!(
        "account:{}|{}",
        learnpulse_privacy::pipeline::PSEUDONYM_HOME,
        learner.learner
    );
    let mut events = Vec::new();
    let mut cursor = None;
    loop {
        let page = state
            .storage
            .query(
                caller.tenant,
                StatementQuery {
                    agent: Some(ifi.clone()),
                    limit: 500,
                    cursor,
                    ..Default::default()
                },
            )
            .await?;
        events.extend(page.statements.iter().filter_map(|json| {
            crate::xapi::mapping::learning_event_from_json(json)
                .filter(|e| e.learner == learner.learner)
        }));
        cursor = page.next_cursor;
        if cursor.is_none() || events.len() >= MAX_EVENTS {
            break;
        }
    }
    // Pages come newest first; the engine wants them in order.
    events.truncate(MAX_EVENTS);
    events.reverse();
    events.sort_by_key(|e| e.timestamp_ms);

    let mut engine = state.hub.replay_engine(caller.tenant);
    let mut points = Vec::with_capacity(events.len());
    for event in &events {
        let s = engine.apply(event);
        let mastery: serde_json::Map<String, Value> = event
            .skills
            .iter()
            .filter_map(|k| s.skills.get(k).map(|st| (k.clone(), json!(st.mastery))))
            .collect();
        let mut point = json!({
            "at_ms": event.timestamp_ms,
            "item": event.item,
            "correct": match event.outcome {
                Outcome::Correct => json!(true),
                Outcome::Incorrect => json!(false),
                Outcome::Unscored => Value::Null,
            },
            "mastery": mastery,
            "risk": s.risk.score,
        });
        if cognitive {
            point["load_index"] = json!(s.load.index);
            point["load_level"] = json!(format!("{:?}", s.load.level).to_lowercase());
            point["load_signals"] = s
                .load
                .reasons
                .iter()
                .map(|r| Value::String(r.explanation.clone()))
                .collect();
        }
        points.push(point);
    }

    let decisions =
        state
            .hub
            .recent_interventions(caller.tenant, std::slice::from_ref(&learner.learner), 50);
    let interventions: Vec<Value> = decisions
        .into_iter()
        .map(|(seq, d, response)| {
            let after: Vec<bool> = points
                .iter()
                .filter(|p| p["at_ms"].as_i64().unwrap_or(0) > d.at_ms)
                .filter_map(|p| p["correct"].as_bool())
                .take(FOLLOW_UP)
                .collect();
            let mut view = crate::views::intervention_view(seq, &d, cognitive);
            view["teacher_response"] = response.into();
            view["followed_by"] = json!({
                "answers": after.len(),
                "correct": after.iter().filter(|c| **c).count(),
            });
            view
        })
        .collect();
    Ok(Json(json!({
        "learner": learner.learner,
        "points": points,
        "interventions": interventions,
    })))
}
