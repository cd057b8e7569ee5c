//! `GET /xAPI/activities` (an activity's definition, as the LRS has learnt it from statements)
//! and `GET /xAPI/agents` (the Person object of an agent).

use std::collections::HashMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::agent_param;
use crate::auth::{Action, Caller};
use crate::problem::{ApiError, Query};
use crate::state::AppState;
use crate::storage::{EventLog, StatementQuery};
use crate::xapi::validate;

/// The statements read to learn an activity's definition, newest last.
const DEFINITION_SOURCES: usize = 1_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_activity))
        .routes(routes!(get_agent))
}

/// The activity with its definition merged from the statements that used it (an activity never
/// seen is answered with its id alone).
#[utoipa::path(get, path = "/xAPI/activities", tag = "xAPI",
    params(("X-Experience-API-Version" = String, Header, description = "1.0.3 or 2.0.0"),
           ("activityId" = String, Query, description = "The activity IRI")),
    responses((status = 200, description = "The Activity object", body = Object)),
    security(("api_key" = [])))]
async fn get_activity(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require(Action::ReadStatements)?;
    only_params(&params, &["activityId"])?;
    let id = params
        .get("activityId")
        .ok_or_else(|| ApiError::bad_request("activityId", "is required"))?;
    if !validate::is_iri(id) {
        return Err(ApiError::bad_request("activityId", "must be an IRI"));
    }
    let page = state
        .storage
        .query(
            caller.tenant,
            StatementQuery {
                activity: Some(id.clone()),
                limit: DEFINITION_SOURCES,
                ascending: false,
                ..StatementQuery::default()
            },
        )
        .await?;
    // Oldest first, so that later statements' definitions win.
    let objects: Vec<Value> = page
        .statements
        .iter()
        .rev()
        .filter_map(|s| serde_json::from_str::<Value>(s).ok())
        .filter_map(|mut s| s.get_mut("object").map(Value::take))
        .collect();
    Ok(axum::Json(activity(id, &objects)).into_response())
}

/// The activity `id` as these objects (oldest first) define it: each definition's language maps
/// merge key by key, its other properties replace earlier ones.
pub fn activity(id: &str, objects: &[Value]) -> Value {
    let mut definition = Map::new();
    for object in objects {
        if object.get("id").and_then(Value::as_str) != Some(id) {
            continue;
        }
        let Some(Value::Object(d)) = object.get("definition") else {
            continue;
        };
        for (key, value) in d {
            match (definition.get_mut(key), value) {
                (Some(Value::Object(known)), Value::Object(more))
                    if matches!(key.as_str(), "name" | "description") =>
                {
                    known.extend(more.clone());
                }
                _ => {
                    definition.insert(key.clone(), value.clone());
                }
            }
        }
    }
    let mut activity = json!({"objectType": "Activity", "id": id});
    if !definition.is_empty() {
        activity["definition"] = Value::Object(definition);
    }
    activity
}

/// The Person object of an agent: every identifier the LRS knows for them, each as a list.
#[utoipa::path(get, path = "/xAPI/agents", tag = "xAPI",
    params(("X-Experience-API-Version" = String, Header, description = "1.0.3 or 2.0.0"),
           ("agent" = String, Query, description = "JSON Agent")),
    responses((status = 200, description = "The Person object", body = Object)),
    security(("api_key" = [])))]
async fn get_agent(
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require(Action::ReadStatements)?;
    only_params(&params, &["agent"])?;
    let agent = agent_param(
        params
            .get("agent")
            .ok_or_else(|| ApiError::bad_request("agent", "is required"))?,
    )?;
    Ok(axum::Json(person(&agent)).into_response())
}

/// A Person from one agent. The LRS holds no more about them than the agent itself says: it
/// keeps no directory of people, and under the default policy its log holds pseudonyms only.
pub fn person(agent: &Value) -> Value {
    let mut person = json!({"objectType": "Person"});
    for key in ["name", "mbox", "mbox_sha1sum", "openid", "account"] {
        if let Some(v) = agent.get(key) {
            person[key] = json!([v]);
        }
    }
    person
}

fn only_params(params: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::bad_request(
            unknown.clone(),
            "is not a parameter of this resource",
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_merge_language_maps_and_replace_the_rest() {
        let id = "http://example.com/a";
        let objects = [
            json!({"id": id, "definition": {"name": {"en-GB": "meeting", "en-US": "meeting"}, "type": "http://t/1"}}),
            json!({"id": "http://example.com/other", "definition": {"name": {"de": "x"}}}),
            json!({"id": id, "definition": {"name": {"en-GB": "Meeting", "fr-FR": "réunion"}, "type": "http://t/2"}}),
        ];
        assert_eq!(
            activity(id, &objects),
            json!({"objectType": "Activity", "id": id, "definition": {
                "name": {"en-GB": "Meeting", "en-US": "meeting", "fr-FR": "réunion"},
                "type": "http://t/2"}})
        );
        assert_eq!(
            activity("http://example.com/never", &objects),
            json!({"objectType": "Activity", "id": "http://example.com/never"})
        );
    }

    #[test]
    fn a_person_lists_each_identifier() {
        let agent = json!({"objectType": "Agent", "name": "Ada", "mbox": "mailto:ada@example.org"});
        assert_eq!(
            person(&agent),
            json!({"objectType": "Person", "name": ["Ada"], "mbox": ["mailto:ada@example.org"]})
        );
    }
}
