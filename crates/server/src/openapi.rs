//! The OpenAPI 3.1 document served at `/openapi.json`.
//!
//! Each route declares its own operation next to its handler (`#[utoipa::path]`), so a route
//! cannot exist undocumented. What no handler declares is added here, once for every operation,
//! from what the layers around the handlers do: every error is an RFC 9457 problem
//! (`application/problem+json`), a key may be missing or not allowed (401, 403) or over its rate
//! (429), storage or the audit log may be unavailable (503), any request may time out (408), a
//! body may be too large (413), and parameters that do not parse are a 400 naming them. The
//! result is what a client (or a schema-driven tester) can rely on: every status code and
//! content type the server answers with is in the document.

use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(title = "learnpulse", description = "Real-time, privacy-first learning analytics: xAPI and native ingest, live learner state."),
    modifiers(&SecuritySchemes),
    tags(
        (name = "xAPI", description = "xAPI 1.0.3 / 2.0.0 Learning Record Store"),
        (name = "native", description = "The compact native event API"),
        (name = "learners", description = "Learner state and the live stream"),
        (name = "admin", description = "Tenants and API keys"),
        (name = "interventions", description = "Intervention policies and decisions"),
        (name = "webhooks", description = "Webhook receivers: signed, retried, circuit-broken delivery of interventions"),
        (name = "compliance", description = "FERPA / COPPA / GDPR rules, the compliance report"),
        (name = "analytics", description = "Differentially private aggregates for researchers"),
        (name = "privacy", description = "Privacy policy, roster, keys, consents and the vault"),
        (name = "ops", description = "Health, metrics, this document"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`<key_id>.<secret>` as a Bearer token, or key_id/secret as HTTP Basic",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as served: the routes' own operations, completed with the responses every
/// operation can give (see the module's comment).
pub fn document(openapi: &utoipa::openapi::OpenApi) -> String {
    let mut doc = serde_json::to_value(openapi).unwrap_or_default();
    unsigned_ranges(&mut doc);
    constraints_from_code(&mut doc);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                if matches!(method.as_str(), "get" | "put" | "post" | "delete" | "patch") {
                    complete_operation(path, operation);
                }
            }
        }
    }
    doc.to_string()
}

/// Unsigned integers are described as `int32` / `int64` with a minimum of 0, which a client
/// reads as at most 2^31 - 1 / 2^63 - 1; the server takes up to 2^32 - 1 / 2^64 - 1. The format
/// goes and the real maximum is stated (unless the field has a smaller one of its own).
fn unsigned_ranges(value: &mut Value) {
    match value {
        Value::Object(schema) => {
            let unsigned = schema
                .get("minimum")
                .and_then(Value::as_f64)
                .is_some_and(|m| m >= 0.0);
            let maximum = match schema.get("format").and_then(Value::as_str) {
                Some("int32") if unsigned => Some(json!(u32::MAX)),
                Some("int64") if unsigned => Some(json!(u64::MAX)),
                _ => None,
            };
            if let Some(maximum) = maximum {
                schema.remove("format");
                schema.entry("maximum").or_insert(maximum);
            }
            schema.values_mut().for_each(unsigned_ranges);
        }
        Value::Array(items) => items.iter_mut().for_each(unsigned_ranges),
        _ => {}
    }
}

/// Constraints whose values live in the code's own lists (so the document cannot drift from
/// them), set on the request schemas that take them.
fn constraints_from_code(doc: &mut Value) {
    let kinds = learnpulse_core::intervene::Intervention::ALL.map(|i| i.as_str());
    let not_blank = json!({"type": "string", "pattern": "\\S"});
    for (pointer, schema) in [
        (
            "/components/schemas/NewReceiver/properties/events/items",
            json!({"type": "string", "enum": crate::delivery::EVENT_TYPES}),
        ),
        (
            "/components/schemas/NewReceiver/properties/kinds/items",
            json!({"type": "string", "enum": kinds}),
        ),
        (
            "/components/schemas/NativeEvent/properties/skills/items",
            not_blank,
        ),
    ] {
        if let Some(slot) = doc.pointer_mut(pointer) {
            *slot = schema;
        }
    }
    if let Some(events) = doc.pointer_mut("/components/schemas/NewReceiver/properties/events") {
        events["minItems"] = json!(1);
    }
}

/// The body of every error response.
fn problem_content() -> Value {
    json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}})
}

fn complete_operation(path: &str, operation: &mut Value) {
    // The xAPI version header: what `xapi::version_header` takes (1.0.x and 2.0.x).
    if let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    {
        for parameter in parameters {
            if parameter["name"] == "X-Experience-API-Version" {
                parameter["schema"] = json!({"type": "string", "pattern": "^[12]\\.0(\\..*)?$"});
            }
        }
    }
    let secured = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let has_body = operation.get("requestBody").is_some();
    let has_parameters = operation
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status)
            .or_insert_with(|| json!({"description": description}));
    };
    if has_body || has_parameters || path.starts_with("/xAPI/statements") {
        add(
            "400",
            "A parameter, header or the body does not parse or is not allowed; `field` names it",
        );
    }
    if secured {
        add("401", "No valid API key (or dashboard session)");
        add(
            "403",
            "The key's role or groups do not allow this, or a changing request lacks the session's CSRF token",
        );
        add(
            "429",
            "The key is over its rate (`limits.requests_per_second_per_key`); `Retry-After` says when to try again",
        );
        add(
            "503",
            "Storage is unavailable or the audit log is failing; `Retry-After` says when to try again",
        );
    }
    if has_body {
        add("413", "The body is larger than `limits.max_body_bytes`");
    }
    add(
        "408",
        "The request took longer than `limits.request_timeout_secs`",
    );
    for (status, response) in responses.iter_mut() {
        let is_error = status.starts_with('4') || status.starts_with('5');
        if is_error && is_problem_or_nothing(response) {
            response["content"] = problem_content();
        }
    }
}

/// Whether a response says nothing of its body or declares the `Problem` schema (as JSON): such
/// error responses are problem documents. Others (`/readyz`'s 503 with its reasons) keep theirs.
fn is_problem_or_nothing(response: &Value) -> bool {
    match response.get("content").and_then(Value::as_object) {
        None => true,
        Some(content) => content.values().all(|media| {
            media.pointer("/schema/$ref").and_then(Value::as_str)
                == Some("#/components/schemas/Problem")
        }),
    }
}
