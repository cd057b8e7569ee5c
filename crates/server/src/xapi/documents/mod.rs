//! The xAPI document resources: `/xAPI/activities/state`, `/xAPI/agents/profile` and
//! `/xAPI/activities/profile` (GET, HEAD, PUT, POST, DELETE), and the read-only
//! `/xAPI/activities` and `/xAPI/agents`.
//!
//! A request's parameters name a scope and an id ([`Target`]); the agent in them goes through
//! the tenant's privacy policy like any actor (pseudonymised unless the tenant keeps raw
//! identities), so documents are filed under the same identity as the learner's statements
//! and an erasure finds them. Bodies are stored as sent, opaque: a SCORM player's suspend data
//! is meaningful only to the content that wrote it, and a redaction inside it would break the
//! content's resume rather than protect anyone. What a write does is decided by the pure
//! [`rules`], inside the store's transaction.

pub mod activities;
pub mod rules;

use std::collections::HashMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{XapiVersion, mapping, time_param, validate};
use crate::auth::{Action, Caller};
use crate::problem::{ApiError, Query};
use crate::state::AppState;
use crate::storage::documents::{
    DocumentKind, DocumentRefusal, DocumentScope, DocumentStore, StoredDocument,
};
use rules::{Preconditions, Rules, Write};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_state, put_state, post_state, delete_state))
        .routes(routes!(
            get_agent_profile,
            put_agent_profile,
            post_agent_profile,
            delete_agent_profile
        ))
        .routes(routes!(
            get_activity_profile,
            put_activity_profile,
            post_activity_profile,
            delete_activity_profile
        ))
        .merge(activities::router())
}

/// Writes the four handlers of one document resource, each with its OpenAPI operation.
macro_rules! document_resource {
    ($kind:expr, $path:literal, $id:literal, $tag:literal,
     $get:ident, $put:ident, $post:ident, $delete:ident, $($param:tt)*) => {
        /// One document (`200` with its content type, `ETag` and `Last-Modified`), or the ids
        /// of the scope's documents when no id is given (optionally those changed `since`).
        #[utoipa::path(get, path = $path, tag = "xAPI",
            params(("X-Experience-API-Version" = String, Header, description = "1.0.3 or 2.0.0"),
                   $($param)*
                   ($id = Option<String>, Query, description = "The document's id; without it, the list of ids"),
                   ("since" = Option<String>, Query, description = "With no id: only documents changed after this time")),
            responses((status = 200, description = "The document as stored, or a JSON array of ids", body = Object),
                      (status = 404, description = "No such document", body = crate::problem::Problem)),
            security(("api_key" = [])))]
        async fn $get(
            State(state): State<AppState>,
            caller: Caller,
            Extension(version): Extension<XapiVersion>,
            Query(params): Query<HashMap<String, String>>,
            headers: HeaderMap,
        ) -> Result<Response, ApiError> {
            serve(&state, &caller, version, $kind, Method::Get, params, &headers, Bytes::new()).await
        }

        /// Stores the body as the document (`If-Match` / `If-None-Match` say which version it
        /// replaces).
        #[utoipa::path(put, path = $path, tag = "xAPI",
            params(("X-Experience-API-Version" = String, Header, description = "1.0.3 or 2.0.0"),
                   $($param)*
                   ($id = String, Query, description = "The document's id")),
            request_body(content = Vec<u8>, description = "The document, any content type", content_type = "application/octet-stream"),
            responses((status = 204, description = "Stored"),
                      (status = 409, description = "The document exists and no precondition was sent", body = crate::problem::Problem),
                      (status = 412, description = "A precondition does not hold", body = crate::problem::Problem)),
            security(("api_key" = [])))]
        async fn $put(
            State(state): State<AppState>,
            caller: Caller,
            Extension(version): Extension<XapiVersion>,
            Query(params): Query<HashMap<String, String>>,
            headers: HeaderMap,
            body: Bytes,
        ) -> Result<Response, ApiError> {
            serve(&state, &caller, version, $kind, Method::Put, params, &headers, body).await
        }

        /// Merges a JSON object into the stored JSON document (or creates it).
        #[utoipa::path(post, path = $path, tag = "xAPI",
            params(("X-Experience-API-Version" = String, Header, description = "1.0.3 or 2.0.0"),
                   $($param)*
                   ($id = String, Query, description = "The document's id")),
            request_body(content = Object, description = "A JSON object to merge", content_type = "application/json"),
            responses((status = 204, description = "Merged"),
                      (status = 412, description = "A precondition does not hold", body = crate::problem::Problem)),
            security(("api_key" = [])))]
        async fn $post(
            State(state): State<AppState>,
            caller: Caller,
            Extension(version): Extension<XapiVersion>,
            Query(params): Query<HashMap<String, String>>,
            headers: HeaderMap,
            body: Bytes,
        ) -> Result<Response, ApiError> {
            serve(&state, &caller, version, $kind, Method::Post, params, &headers, body).await
        }

        /// Deletes the document (or, on the state resource without an id, every state of the
        /// scope).
        #[utoipa::path(delete, path = $path, tag = "xAPI",
            params(("X-Experience-API-Version" = String, Header, description = "1.0.3 or 2.0.0"),
                   $($param)*
                   ($id = Option<String>, Query, description = "The document's id")),
            responses((status = 204, description = "Deleted"),
                      (status = 412, description = "A precondition does not hold", body = crate::problem::Problem)),
            security(("api_key" = [])))]
        async fn $delete(
            State(state): State<AppState>,
            caller: Caller,
            Extension(version): Extension<XapiVersion>,
            Query(params): Query<HashMap<String, String>>,
            headers: HeaderMap,
        ) -> Result<Response, ApiError> {
            serve(&state, &caller, version, $kind, Method::Delete, params, &headers, Bytes::new()).await
        }
    };
}

document_resource!(
    DocumentKind::State, "/xAPI/activities/state", "stateId", "state",
    get_state, put_state, post_state, delete_state,
    ("activityId" = String, Query, description = "The activity IRI"),
    ("agent" = String, Query, description = "JSON Agent"),
    ("registration" = Option<String>, Query, description = "Registration UUID"),
);
document_resource!(
    DocumentKind::AgentProfile,
    "/xAPI/agents/profile",
    "profileId",
    "agent profile",
    get_agent_profile,
    put_agent_profile,
    post_agent_profile,
    delete_agent_profile,
    ("agent" = String, Query, description = "JSON Agent"),
);
document_resource!(
    DocumentKind::ActivityProfile,
    "/xAPI/activities/profile",
    "profileId",
    "activity profile",
    get_activity_profile,
    put_activity_profile,
    post_activity_profile,
    delete_activity_profile,
    (
        "activityId" = String,
        Query,
        description = "The activity IRI"
    ),
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Put,
    Post,
    Delete,
}

impl DocumentKind {
    /// The query parameter naming one document.
    fn id_param(self) -> &'static str {
        match self {
            DocumentKind::State => "stateId",
            _ => "profileId",
        }
    }

    /// The parameters a request of this kind may send.
    fn params(self) -> &'static [&'static str] {
        match self {
            DocumentKind::State => &["activityId", "agent", "registration", "stateId", "since"],
            DocumentKind::AgentProfile => &["agent", "profileId", "since"],
            DocumentKind::ActivityProfile => &["activityId", "profileId", "since"],
        }
    }
}

/// The documents a request names: a scope, and one id or none.
struct Target {
    scope: DocumentScope,
    id: Option<String>,
}

/// Reads the request's parameters into a [`Target`], the agent through the tenant's privacy
/// policy. Every parameter error is a 400 naming it.
async fn target(
    state: &AppState,
    caller: &Caller,
    kind: DocumentKind,
    params: &HashMap<String, String>,
) -> Result<Target, ApiError> {
    if let Some(unknown) = params.keys().find(|k| !kind.params().contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            unknown.clone(),
            format!("is not a parameter of the {} resource", kind.as_str()),
        ));
    }
    let required = |name: &str| {
        params
            .get(name)
            .ok_or_else(|| ApiError::bad_request(name, "is required"))
    };
    let activity = if kind == DocumentKind::AgentProfile {
        String::new()
    } else {
        let iri = required("activityId")?;
        if !validate::is_iri(iri) {
            return Err(ApiError::bad_request("activityId", "must be an IRI"));
        }
        iri.clone()
    };
    let mut older_agents = Vec::new();
    let (agent, learner) = if kind == DocumentKind::ActivityProfile {
        (String::new(), String::new())
    } else {
        let v = agent_param(required("agent")?)?;
        let privacy = state.privacy.tenant(&state.storage, caller.tenant).await?;
        let stored = privacy.stored_agent(&v);
        let learner = mapping::learner_key(&stored).unwrap_or_default();
        // The learner's pseudonyms under older keys (after a rotation), newest first.
        let identity = learnpulse_privacy::pipeline::agent_identity(&v).unwrap_or_default();
        if learner != identity {
            older_agents = privacy
                .learner_keys(identity)
                .into_iter()
                .skip(2)
                .map(|p| {
                    format!(
                        "account:{}|{p}",
                        learnpulse_privacy::pipeline::PSEUDONYM_HOME
                    )
                })
                .collect();
        }
        (mapping::actor_ifi(&stored), learner)
    };
    let registration = match params.get("registration") {
        Some(r) if kind == DocumentKind::State => uuid::Uuid::parse_str(r)
            .map_err(|_| ApiError::bad_request("registration", "must be a UUID"))?
            .to_string(),
        _ => String::new(),
    };
    let scope = DocumentScope {
        kind,
        activity,
        agent,
        registration,
        learner,
    };
    // Documents filed under an older pseudonym of the learner move to the current one first.
    if !older_agents.is_empty() {
        state
            .storage
            .adopt_documents(caller.tenant, scope.clone(), older_agents)
            .await?;
    }
    Ok(Target {
        scope,
        id: params.get(kind.id_param()).cloned(),
    })
}

/// The `agent` parameter: a JSON Agent (or identified Group) with exactly one identifier.
pub fn agent_param(text: &str) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|_| ApiError::bad_request("agent", "must be a JSON Agent"))?;
    validate::agent_or_group(&v, "agent").map_err(|e| ApiError::bad_request(e.field, e.detail))?;
    if !v.is_object() || mapping::actor_ifi(&v).starts_with("group:") {
        return Err(ApiError::bad_request(
            "agent",
            "must be an Agent with an identifier (mbox, mbox_sha1sum, openid or account)",
        ));
    }
    Ok(v)
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    state: &AppState,
    caller: &Caller,
    version: XapiVersion,
    kind: DocumentKind,
    method: Method,
    params: HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(if method == Method::Get {
        Action::ReadStatements
    } else {
        Action::WriteStatements
    })?;
    let target = target(state, caller, kind, &params).await?;
    let id_param = kind.id_param();
    let audit_subject = Some(target.scope.learner.clone()).filter(|l| !l.is_empty());
    state.audit.access(
        caller,
        match method {
            Method::Get => "documents.read",
            _ => "documents.write",
        },
        audit_subject,
        serde_json::json!({"kind": kind.as_str(), "activity": target.scope.activity, "id": target.id}),
    );
    let Some(id) = target.id else {
        return match method {
            Method::Get => {
                let since = time_param(&params, "since")?;
                let ids = state
                    .storage
                    .document_ids(caller.tenant, target.scope, since)
                    .await?;
                Ok(axum::Json(ids).into_response())
            }
            // Every state of an activity and agent (and registration) at once.
            Method::Delete if kind == DocumentKind::State => {
                state
                    .storage
                    .delete_documents(caller.tenant, target.scope)
                    .await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            _ => Err(ApiError::bad_request(id_param, "is required")),
        };
    };
    if params.contains_key("since") {
        return Err(ApiError::bad_request(
            "since",
            format!("only lists documents: it cannot be combined with {id_param}"),
        ));
    }
    let content_type = || {
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned()
    };
    let write =
        match method {
            Method::Get => {
                return match state
                    .storage
                    .document(caller.tenant, target.scope, id)
                    .await?
                {
                    Some(doc) => Ok(document_response(doc)),
                    None => Err(ApiError::not_found(format!("no such {}", kind.as_str()))
                        .with_field(id_param)),
                };
            }
            Method::Put => Write::Put {
                content_type: content_type(),
                body: body.to_vec(),
            },
            Method::Post => Write::Post {
                content_type: content_type(),
                body: body.to_vec(),
            },
            Method::Delete => Write::Delete,
        };
    let header_text = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_owned())
    };
    let preconditions = Preconditions {
        if_match: header_text(header::IF_MATCH),
        if_none_match: header_text(header::IF_NONE_MATCH),
    };
    let rules = Rules {
        kind,
        xapi_2: version.0.starts_with('2'),
    };
    let outcome = state
        .storage
        .edit_document(
            caller.tenant,
            target.scope,
            id,
            Box::new(move |stored| rules::decide(rules, &preconditions, write, stored)),
        )
        .await?;
    match outcome {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(DocumentRefusal::PreconditionFailed(detail)) => {
            Err(ApiError::new(StatusCode::PRECONDITION_FAILED, detail))
        }
        Err(DocumentRefusal::Conflict(detail)) => Err(ApiError::new(StatusCode::CONFLICT, detail)),
        Err(DocumentRefusal::Invalid { field, detail }) => {
            Err(ApiError::bad_request(field, detail))
        }
    }
}

/// A document as stored, with its validators.
fn document_response(doc: StoredDocument) -> Response {
    let mut response = doc.body.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&doc.content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&doc.etag) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_date(doc.updated_us)) {
        headers.insert(header::LAST_MODIFIED, v);
    }
    response
}

/// An HTTP date (IMF-fixdate) of a time in microseconds since the epoch.
pub fn http_date(us: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_micros(us.max(0) as u64);
    httpdate::fmt_http_date(time)
}
