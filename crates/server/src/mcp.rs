//! MCP (Model Context Protocol) for AI tutors, with the official Rust SDK (`rmcp`): over
//! streamable HTTP at `/mcp` (each request authenticated by its API key) and over stdio
//! (`learnpulse mcp`, one key for the whole session).
//!
//! Tools: `learner_state`, `explain_learner`, `group_overview`, `recommend_interventions`,
//! `record_tutor_action`. Resources: `learnpulse://skills` and `learnpulse://policies`.
//!
//! The tools are the HTTP API's reads under another protocol, with the same rules: a key scoped
//! to groups (a `tutor` assigned to its classes) sees those groups' learners only, always by
//! pseudonym; cognitive data follows the tenant's `cognitive_data_roles`; every call is audited
//! (`mcp.call`, with the tool and the outcome) on top of the reads it makes. A refusal is a
//! tool result with `isError` and the status, so the model reads why.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{
    CallToolResult, Extensions, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Action, Caller};
use crate::learners::{learner_view, overview, visible_learner};
use crate::problem::ApiError;
use crate::state::AppState;
use crate::views::intervention_view;

/// The MCP server of one session (HTTP) or process (stdio).
#[derive(Clone)]
pub struct TutorServer {
    state: AppState,
    /// stdio: the key the process was started with; HTTP: `None`, each request's own key.
    caller: Option<Caller>,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct LearnerArgs {
    /// The learner: their pseudonym (as every answer of this server names them), or the id the
    /// platform knows them by.
    pub learner: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct GroupArgs {
    /// The group (class) id.
    pub group: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct TutorAction {
    /// The learner helped (pseudonym or platform id).
    pub learner: String,
    /// What the tutor did: hint, worked_example, easier_item, prerequisite_review,
    /// break_suggestion, slow_down, encouragement, teacher_alert or tutor_handoff.
    pub action: String,
    /// The skill it was about, if any.
    pub skill: Option<String>,
    /// How it went, as the tutor judged it: helped, not_helped or unknown.
    pub outcome: Option<String>,
    /// A short note (PII in it is redacted like any free text).
    pub note: Option<String>,
}

impl TutorServer {
    pub fn new(state: AppState, caller: Option<Caller>) -> Self {
        TutorServer {
            state,
            caller,
            tool_router: Self::tool_router(),
        }
    }

    /// The caller: the stdio key, or the one the `/mcp` middleware authenticated.
    fn caller(&self, extensions: &Extensions) -> Result<Caller, ErrorData> {
        self.caller
            .clone()
            .or_else(|| {
                extensions
                    .get::<Parts>()
                    .and_then(|p| p.extensions.get::<Caller>())
                    .cloned()
            })
            .ok_or_else(|| ErrorData::invalid_request("no API key on this request", None))
    }

    /// Audits the call and turns its outcome into a tool result.
    fn finish(
        &self,
        caller: &Caller,
        tool: &str,
        subject: Option<String>,
        outcome: Result<Value, ApiError>,
    ) -> CallToolResult {
        let status = outcome.as_ref().map_or_else(|e| e.status.as_u16(), |_| 200);
        self.state.audit.access(
            caller,
            "mcp.call",
            subject,
            json!({"tool": tool, "status": status}),
        );
        metrics::counter!("learnpulse_mcp_calls_total", "tool" => tool.to_owned(), "status" => status.to_string())
            .increment(1);
        match outcome {
            Ok(value) => CallToolResult::structured(value),
            Err(e) => CallToolResult::structured_error(json!({
                "status": status,
                "detail": e.detail,
                "field": e.field,
            })),
        }
    }

    async fn learner(&self, caller: &Caller, id: &str) -> Result<Value, ApiError> {
        let (learner, cognitive) = visible_learner(&self.state, caller, id).await?;
        Ok(learner_view(&learner, cognitive))
    }

    async fn explain(&self, caller: &Caller, id: &str) -> Result<Value, ApiError> {
        let (l, cognitive) = visible_learner(&self.state, caller, id).await?;
        let mut lines = vec![format!(
            "Learner {} has answered {} items, {} correctly ({:.0} %).",
            l.learner,
            l.answers,
            l.correct,
            100.0 * l.correct as f64 / l.answers.max(1) as f64
        )];
        for (skill, s) in &l.skills {
            let mut line = format!(
                "{skill}: mastery {:.0} % after {} attempts ({} correct); next answer correct with p = {:.2}",
                100.0 * s.mastery,
                s.attempts,
                s.correct,
                s.p_correct_next
            );
            if s.mastered {
                line.push_str("; mastered");
            }
            if s.wheel_spinning {
                line.push_str("; wheel-spinning: more of the same practice is unlikely to help");
            }
            lines.push(line);
        }
        lines.push(format!("Risk of struggling now: {:.2}.", l.risk.score));
        if cognitive {
            lines.push(format!(
                "Cognitive load: {:?} (index {:.2}).",
                l.load.level, l.load.index
            ));
            lines.extend(l.load.reasons.iter().map(|r| r.explanation.clone()));
            lines.extend(l.risk.reasons.iter().cloned());
        } else {
            lines.push("Cognitive-load details are withheld for this role.".into());
        }
        Ok(json!({"learner": l.learner, "explanation": lines.join("\n")}))
    }

    async fn recommend(&self, caller: &Caller, id: &str) -> Result<Value, ApiError> {
        let (l, cognitive) = visible_learner(&self.state, caller, id).await?;
        let recent: Vec<Value> = self
            .state
            .hub
            .recent_interventions(caller.tenant, std::slice::from_ref(&l.learner), 5)
            .iter()
            .map(|(seq, d, _)| intervention_view(*seq, d, cognitive))
            .collect();
        // Practise next: unmastered skills that are not wheel-spinning, the most likely to
        // move first (P(correct) nearest the productive middle).
        let mut practice: Vec<(&String, f64, f64)> = l
            .skills
            .iter()
            .filter(|(_, s)| !s.mastered && !s.wheel_spinning)
            .map(|(k, s)| (k, s.mastery, s.p_correct_next))
            .collect();
        practice.sort_by(|a, b| (a.2 - 0.7).abs().total_cmp(&(b.2 - 0.7).abs()));
        let change_strategy: Vec<&String> = l
            .skills
            .iter()
            .filter(|(_, s)| s.wheel_spinning)
            .map(|(k, _)| k)
            .collect();
        Ok(json!({
            "learner": l.learner,
            "latest_decisions": recent,
            "practice_next": practice.iter().map(|(k, m, p)| json!({"skill": k, "mastery": m, "p_correct_next": p})).collect::<Vec<_>>(),
            "change_strategy_on": change_strategy,
        }))
    }

    async fn record(&self, caller: &Caller, a: TutorAction) -> Result<Value, ApiError> {
        caller.require(Action::RecordTutorActions)?;
        let known = learnpulse_core::intervene::Intervention::ALL.map(|i| i.as_str());
        if !known.contains(&a.action.as_str()) {
            return Err(ApiError::bad_request(
                "action",
                format!("one of {}", known.join(", ")),
            ));
        }
        let outcome = a.outcome.unwrap_or_else(|| "unknown".into());
        if learnpulse_core::outcome::TutorOutcome::parse(&outcome).is_none() {
            return Err(ApiError::bad_request(
                "outcome",
                "one of helped, not_helped, unknown",
            ));
        }
        let (l, _) = visible_learner(&self.state, caller, &a.learner).await?;
        let ext = |name: &str| format!("https://learnpulse.dev/xapi/ext/{name}");
        let mut extensions = json!({ext("tutor-outcome"): outcome});
        if let Some(skill) = a.skill {
            extensions[ext("skills")] = json!([skill]);
        }
        let id = crate::xapi::record_about_learner(
            &self.state,
            caller,
            crate::xapi::AboutLearner {
                learner: &l.learner,
                verb: (crate::xapi::mapping::VERB_TUTORED, "tutored"),
                object_id: format!("{}{}", crate::xapi::mapping::TUTOR_ACTION_PREFIX, a.action),
                extensions,
                note: a.note,
            },
            "arguments",
        )
        .await?;
        Ok(json!({"recorded": id, "learner": l.learner, "action": a.action, "outcome": outcome}))
    }
}

#[tool_router]
impl TutorServer {
    #[tool(
        description = "A learner's current state: answers, mastery per skill (knowledge tracing), risk of struggling and, where the role may see it, cognitive load."
    )]
    async fn learner_state(
        &self,
        Parameters(args): Parameters<LearnerArgs>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = self.caller(&extensions)?;
        let outcome = self.learner(&caller, &args.learner).await;
        Ok(self.finish(&caller, "learner_state", Some(args.learner), outcome))
    }

    #[tool(
        description = "Why the model sees the learner as it does, in plain sentences: per-skill mastery and its evidence, wheel-spinning, risk and (role permitting) the load signals."
    )]
    async fn explain_learner(
        &self,
        Parameters(args): Parameters<LearnerArgs>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = self.caller(&extensions)?;
        let outcome = self.explain(&caller, &args.learner).await;
        Ok(self.finish(&caller, "explain_learner", Some(args.learner), outcome))
    }

    #[tool(
        description = "A class at a glance: one row per learner (pseudonymised), most at risk first."
    )]
    async fn group_overview(
        &self,
        Parameters(args): Parameters<GroupArgs>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = self.caller(&extensions)?;
        let outcome = overview(&self.state, &caller, args.group.clone())
            .await
            .map(|o| serde_json::to_value(o).expect("overviews serialise"));
        Ok(self.finish(&caller, "group_overview", Some(args.group), outcome))
    }

    #[tool(
        description = "What to do next for a learner: the latest intervention decisions with the policy and reasons, skills to practise next, and skills where the strategy should change."
    )]
    async fn recommend_interventions(
        &self,
        Parameters(args): Parameters<LearnerArgs>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = self.caller(&extensions)?;
        let outcome = self.recommend(&caller, &args.learner).await;
        Ok(self.finish(
            &caller,
            "recommend_interventions",
            Some(args.learner),
            outcome,
        ))
    }

    #[tool(
        description = "Record what the tutor did for a learner and how it went; stored in the learner's event log (as an xAPI 'tutored' statement) and audited."
    )]
    async fn record_tutor_action(
        &self,
        Parameters(args): Parameters<TutorAction>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = self.caller(&extensions)?;
        let subject = Some(args.learner.clone());
        let outcome = self.record(&caller, args).await;
        Ok(self.finish(&caller, "record_tutor_action", subject, outcome))
    }
}

const SKILLS: &str = "learnpulse://skills";
const POLICIES: &str = "learnpulse://policies";

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TutorServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_instructions(
            "learnpulse: live learner models for tutoring. Learners are named by pseudonym. \
             Read a learner's state or its explanation, a class overview, and recommended \
             interventions; record what you did and how it went with record_tutor_action.",
        )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.caller(&context.extensions)?;
        Ok(ListResourcesResult::with_all_items(vec![
            Resource::new(SKILLS, "skills")
                .with_description("The skills of the knowledge-tracing model and their parameters")
                .with_mime_type("application/json"),
            Resource::new(POLICIES, "policies")
                .with_description("This tenant's intervention policies")
                .with_mime_type("application/json"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = self.caller(&context.extensions)?;
        caller
            .require(Action::ReadLearners)
            .map_err(|e| ErrorData::invalid_request(e.detail, None))?;
        let body = match request.uri.as_str() {
            SKILLS => serde_json::to_value(&*self.state.hub.model()).expect("models serialise"),
            POLICIES => serde_json::to_value(&*self.state.hub.policies(caller.tenant))
                .expect("policies serialise"),
            other => {
                return Err(ErrorData::resource_not_found(
                    format!("no resource {other}"),
                    None,
                ));
            }
        };
        self.state
            .audit
            .access(&caller, "mcp.resource", None, json!({"uri": request.uri}));
        Ok(
            ReadResourceResult::new(vec![ResourceContents::text(body.to_string(), request.uri)])
                .into(),
        )
    }
}

/// `/mcp`: the streamable HTTP transport, behind API-key authentication (401 without a key).
pub fn service(state: AppState) -> axum::Router<AppState> {
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    };
    let for_sessions = state.clone();
    let cancel = cancelled_on_shutdown(&state.shutdown);
    let mut config = StreamableHttpServerConfig::default().with_cancellation_token(cancel);
    config = if state.config.mcp.allowed_hosts.is_empty() {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(state.config.mcp.allowed_hosts.clone())
    };
    let mcp = StreamableHttpService::new(
        move || Ok(TutorServer::new(for_sessions.clone(), None)),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    axum::Router::new()
        .nest_service("/mcp", mcp)
        .layer(axum::middleware::from_fn_with_state(state, authenticate))
}

/// A cancellation token that fires on shutdown (open MCP streams end with the server).
fn cancelled_on_shutdown(
    shutdown: &tokio::sync::watch::Receiver<bool>,
) -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let fire = token.clone();
    let mut shutdown = shutdown.clone();
    tokio::spawn(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
        fire.cancel();
    });
    token
}

async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    match crate::auth::authenticate(&state, header.as_deref()).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

/// Serves MCP on stdin/stdout as `caller` until the client closes the stream.
pub async fn serve_stdio(state: AppState, caller: Caller) -> anyhow::Result<()> {
    use rmcp::ServiceExt;
    let running = TutorServer::new(state, Some(caller))
        .serve(rmcp::transport::stdio())
        .await?;
    running.waiting().await?;
    Ok(())
}
