//! How derived facts are shown, shared by the HTTP API, the SSE stream, MCP and webhooks.
//! A leaf module: it depends on the core's types only, so every edge can use it without
//! depending on another edge.

use serde_json::Value;

/// A decision as a role may see it: its reasons name load signals, which are cognitive data.
pub fn intervention_view(
    seq: i64,
    d: &learnpulse_core::intervene::Decision,
    cognitive: bool,
) -> Value {
    let mut view = serde_json::to_value(d).expect("decisions serialise");
    view["seq"] = seq.into();
    if !cognitive {
        view["reasons"] = Value::Array(Vec::new());
    }
    view
}
