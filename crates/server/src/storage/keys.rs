//! The keys the log finds a statement by, computed from its JSON: pure functions, shared by the
//! edge (which computes them for each new statement) and the backends (which compute them for
//! statements stored before a key existed).
//!
//! Besides its columns (actor, verb, object activity, registration), a statement is found by
//! its *related keys*, one text each:
//!
//! - `o:<ifi>`: the object, when it is an Agent or an identified Group. The `agent` filter
//!   matches the actor or the object (xAPI Communication 2.1.3).
//! - `a:<ifi>`: every other agent the statement names: `authority`, the context's
//!   `instructor`, `team`, `contextAgents` and `contextGroups`, and the actor, object and
//!   context agents of a SubStatement. With `related_agents=true` the filter matches these too.
//! - `c:<iri>`: every other activity: the context activities (parent, grouping, category,
//!   other), a SubStatement's object and context activities. With `related_activities=true` the
//!   `activity` filter matches these too.
//!
//! They are stored as one text, each key on its own line between newlines (`"\no:…\nc:…\n"`),
//! `""` when there are none, so that "has key k" is a substring test for `"\n" + k + "\n"`.

use serde_json::Value;

/// Canonical inverse functional identifier of an Agent or identified Group, used to index the
/// actor and to match the `agent` query filter. Anonymous groups are keyed by their members.
pub fn agent_ifi(agent: &Value) -> String {
    if let Some(s) = agent.get("mbox").and_then(Value::as_str) {
        return format!("mbox:{s}");
    }
    if let Some(s) = agent.get("mbox_sha1sum").and_then(Value::as_str) {
        return format!("mbox_sha1sum:{}", s.to_ascii_lowercase());
    }
    if let Some(s) = agent.get("openid").and_then(Value::as_str) {
        return format!("openid:{s}");
    }
    if let Some(a) = agent.get("account") {
        let home = a
            .get("homePage")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = a.get("name").and_then(Value::as_str).unwrap_or_default();
        return format!("account:{home}|{name}");
    }
    let mut members: Vec<String> = agent
        .get("member")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(agent_ifi)
        .collect();
    members.sort();
    format!("group:[{}]", members.join(","))
}

/// The related key of the statement's object as an agent (`o:`).
pub fn object_agent_key(ifi: &str) -> String {
    format!("o:{ifi}")
}

/// The related key of an agent in another place (`a:`).
pub fn related_agent_key(ifi: &str) -> String {
    format!("a:{ifi}")
}

/// The related key of an activity other than the object (`c:`).
pub fn related_activity_key(iri: &str) -> String {
    format!("c:{iri}")
}

/// The related keys of a statement (see the module's documentation), as stored.
pub fn related_keys(statement: &Value) -> String {
    let mut keys: Vec<String> = Vec::new();
    let object = &statement["object"];
    match object.get("objectType").and_then(Value::as_str) {
        Some("Agent" | "Group") => keys.push(object_agent_key(&agent_ifi(object))),
        Some("SubStatement") => {
            keys.push(related_agent_key(&agent_ifi(&object["actor"])));
            let inner = &object["object"];
            match inner.get("objectType").and_then(Value::as_str) {
                Some("Agent" | "Group") => keys.push(related_agent_key(&agent_ifi(inner))),
                None | Some("Activity") => {
                    if let Some(iri) = inner.get("id").and_then(Value::as_str) {
                        keys.push(related_activity_key(iri));
                    }
                }
                _ => {}
            }
            context_keys(object, &mut keys);
        }
        _ => {}
    }
    if let Some(authority) = statement.get("authority") {
        keys.push(related_agent_key(&agent_ifi(authority)));
    }
    context_keys(statement, &mut keys);
    if keys.is_empty() {
        return String::new();
    }
    keys.sort_unstable();
    keys.dedup();
    let mut text = String::from("\n");
    for key in keys {
        text.push_str(&key);
        text.push('\n');
    }
    text
}

/// Whether stored related keys hold `key`.
pub fn has_key(related: &str, key: &str) -> bool {
    related
        .strip_prefix('\n')
        .is_some_and(|rest| rest.split('\n').any(|k| k == key))
}

/// The agents and activities of a statement's (or SubStatement's) context.
fn context_keys(statement: &Value, keys: &mut Vec<String>) {
    let Some(context) = statement.get("context") else {
        return;
    };
    for place in ["instructor", "team"] {
        if let Some(agent) = context.get(place) {
            keys.push(related_agent_key(&agent_ifi(agent)));
        }
    }
    for (list, member) in [("contextAgents", "agent"), ("contextGroups", "group")] {
        for entry in context
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(agent) = entry.get(member) {
                keys.push(related_agent_key(&agent_ifi(agent)));
            }
        }
    }
    if let Some(Value::Object(activities)) = context.get("contextActivities") {
        for value in activities.values() {
            // Stored as arrays; a single object is accepted on the way in.
            let listed = match value {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for activity in listed {
                if let Some(iri) = activity.get("id").and_then(Value::as_str) {
                    keys.push(related_activity_key(iri));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_place_an_agent_or_activity_can_be_is_keyed() {
        let statement = json!({
            "actor": {"mbox": "mailto:ada@example.org"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
            "object": {
                "objectType": "SubStatement",
                "actor": {"mbox": "mailto:bo@example.org"},
                "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
                "object": {"id": "http://example.org/q1"},
                "context": {"instructor": {"openid": "http://example.org/cy"},
                            "contextActivities": {"parent": [{"id": "http://example.org/unit"}]}}
            },
            "authority": {"account": {"homePage": "https://lrs.example", "name": "key"}},
            "context": {
                "team": {"objectType": "Group", "mbox": "mailto:team@example.org"},
                "contextAgents": [{"objectType": "contextAgent", "agent": {"mbox": "mailto:di@example.org"}}],
                "contextGroups": [{"objectType": "contextGroup", "group": {"objectType": "Group", "mbox": "mailto:g@example.org"}}],
                "contextActivities": {"grouping": [{"id": "http://example.org/course"}],
                                      "category": {"id": "http://example.org/profile"}}
            }
        });
        let keys = related_keys(&statement);
        for key in [
            "a:mbox:mailto:bo@example.org",
            "a:openid:http://example.org/cy",
            "a:account:https://lrs.example|key",
            "a:mbox:mailto:team@example.org",
            "a:mbox:mailto:di@example.org",
            "a:mbox:mailto:g@example.org",
            "c:http://example.org/q1",
            "c:http://example.org/unit",
            "c:http://example.org/course",
            "c:http://example.org/profile",
        ] {
            assert!(has_key(&keys, key), "{key} in {keys:?}");
        }
        assert!(
            !has_key(&keys, "a:mbox:mailto:ada@example.org"),
            "the actor is a column"
        );
        assert!(!has_key(&keys, "c:http://example.org"), "whole keys only");
        assert_eq!(keys.lines().filter(|l| !l.is_empty()).count(), 10);
    }

    #[test]
    fn an_agent_object_is_its_own_kind_and_plain_statements_have_none() {
        let statement = json!({
            "actor": {"mbox": "mailto:ada@example.org"},
            "verb": {"id": "http://example.org/greeted"},
            "object": {"objectType": "Agent", "mbox": "mailto:bo@example.org"}
        });
        assert_eq!(related_keys(&statement), "\no:mbox:mailto:bo@example.org\n");
        let plain = json!({"actor": {"mbox": "mailto:a@b.c"}, "verb": {"id": "http://v"},
                           "object": {"id": "http://o"}});
        assert_eq!(related_keys(&plain), "");
        assert!(!has_key("", "c:http://o"));
    }
}
