//! Completing a validated statement into what the log stores: the server sets `id` (when
//! absent), `timestamp` (when absent), `authority` and `version`; `stored` is set at commit.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::mapping::{VERB_VOIDED, actor_ifi, live_input};
use crate::storage::NewStatement;

/// Who is storing: the authority the server writes into each statement.
pub struct Authority<'a> {
    pub key_id: &'a str,
    /// `1.0.0` or `2.0.0`, after the request's `X-Experience-API-Version`.
    pub version: &'a str,
    /// Server time of the request, RFC 3339, used when the statement has no timestamp.
    pub now: &'a str,
}

/// Appends a canonical JSON text of `v` (object keys sorted) to `out`, leaving out the
/// top-level keys in `skip`, so that the fingerprint does not depend on the order in which a
/// client wrote its keys.
fn canonical(v: &Value, skip: &[&str], out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> =
                map.keys().filter(|k| !skip.contains(&k.as_str())).collect();
            keys.sort_unstable();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).expect("writing to a Vec cannot fail");
                out.push(b':');
                canonical(&map[k], &[], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, &[], out);
            }
            out.push(b']');
        }
        other => serde_json::to_writer(&mut *out, other).expect("writing to a Vec cannot fail"),
    }
}

/// Fingerprint of a statement as the client sent it, leaving out what the LRS may set
/// (`authority`, `stored`, `version`), per the xAPI statement comparison rules.
pub fn fingerprint(statement: &Value) -> [u8; 16] {
    let mut text = Vec::with_capacity(1024);
    canonical(
        statement,
        &["authority", "stored", "version", "id"],
        &mut text,
    );
    let digest = Sha256::digest(&text);
    digest[..16]
        .try_into()
        .expect("a SHA-256 digest has 32 bytes")
}

/// Turns a valid statement into a [`NewStatement`]. `statement` must have passed
/// [`super::validate::statement`].
pub fn prepare(mut statement: Value, authority: &Authority<'_>) -> NewStatement {
    context_activities_as_arrays(&mut statement);
    if let Some(sub) = statement.get_mut("object")
        && sub.get("objectType").and_then(Value::as_str) == Some("SubStatement")
    {
        context_activities_as_arrays(sub);
    }
    let fingerprint = fingerprint(&statement);
    let map = statement
        .as_object_mut()
        .expect("validated statements are objects");
    let id = match map
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
    {
        Some(id) => id,
        // v7 ids grow with time, so the unique index on ids is appended to, not scattered.
        None => Uuid::now_v7(),
    };
    map.insert("id".into(), json!(id.to_string()));
    map.remove("stored");
    map.entry("timestamp")
        .or_insert_with(|| json!(authority.now));
    map.insert(
        "authority".into(),
        json!({"objectType": "Agent", "account": {"homePage": "https://learnpulse.dev/api-keys", "name": authority.key_id}}),
    );
    map.entry("version")
        .or_insert_with(|| json!(authority.version));

    let verb = statement["verb"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let object = &statement["object"];
    let object_type = object
        .get("objectType")
        .and_then(Value::as_str)
        .unwrap_or("Activity");
    let activity =
        (object_type == "Activity").then(|| object["id"].as_str().unwrap_or_default().to_owned());
    let voids = (verb == VERB_VOIDED)
        .then(|| object["id"].as_str().and_then(|s| Uuid::parse_str(s).ok()))
        .flatten();
    let registration = statement
        .get("context")
        .and_then(|c| c.get("registration"))
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok());
    NewStatement {
        id,
        fingerprint,
        actor: actor_ifi(&statement["actor"]),
        verb,
        activity,
        registration,
        voids,
        live: live_input(&statement).map(|l| l.encode()),
        vault: None,
        json: statement.to_string(),
    }
}

/// A context activity given as one object is stored as an array of one: the form the
/// specification says an LRS returns.
fn context_activities_as_arrays(statement: &mut Value) {
    let Some(Value::Object(activities)) = statement
        .get_mut("context")
        .and_then(|c| c.get_mut("contextActivities"))
    else {
        return;
    };
    for value in activities.values_mut() {
        if value.is_object() {
            *value = Value::Array(vec![value.take()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_context_activity_becomes_an_array() {
        let mut s = json!({"context": {"contextActivities": {
            "parent": {"id": "http://a"}, "grouping": [{"id": "http://b"}]}}});
        context_activities_as_arrays(&mut s);
        assert_eq!(
            s["context"]["contextActivities"],
            json!({"parent": [{"id": "http://a"}], "grouping": [{"id": "http://b"}]})
        );
    }

    #[test]
    fn fingerprints_ignore_key_order_and_lrs_fields() {
        let a: Value =
            serde_json::from_str(r#"{"actor":{"mbox":"mailto:a@b.c"},"verb":{"id":"x:y"}}"#)
                .unwrap();
        let b: Value = serde_json::from_str(
            r#"{"verb":{"id":"x:y"},"actor":{"mbox":"mailto:a@b.c"},"version":"1.0.0"}"#,
        )
        .unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let c: Value =
            serde_json::from_str(r#"{"verb":{"id":"x:z"},"actor":{"mbox":"mailto:a@b.c"}}"#)
                .unwrap();
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }
}
