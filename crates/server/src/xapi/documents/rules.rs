//! What a write does to a stored document: the xAPI concurrency rules (`If-Match`,
//! `If-None-Match`, 412 and 409) and the merge of JSON objects on POST. Pure: the store calls
//! [`decide`] inside its transaction with the document it holds now.

use serde_json::{Map, Value};

use crate::storage::documents::{DocumentEdit, DocumentKind, DocumentRefusal, StoredDocument};

/// The write a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// `PUT`: replace (or create) the document.
    Put { content_type: String, body: Vec<u8> },
    /// `POST`: merge a JSON object into the stored one (or create the document).
    Post { content_type: String, body: Vec<u8> },
    /// `DELETE` of one document.
    Delete,
}

/// The request's preconditions, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    /// `If-Match`: a list of entity tags, or `*`.
    pub if_match: Option<String>,
    /// `If-None-Match`: a list of entity tags, or `*`.
    pub if_none_match: Option<String>,
}

/// The request's context that changes the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub kind: DocumentKind,
    /// xAPI 2.0 extends the concurrency rules to the state resource; 1.0.3 exempts it.
    pub xapi_2: bool,
}

/// Is this media type JSON (`application/json`, any case, any parameters)?
pub fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Does an `If-Match` / `If-None-Match` value name this entity tag? (`*` names any; weak tags
/// compare by their opaque part.)
fn names(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|tag| {
        tag == "*"
            || tag.strip_prefix("W/").unwrap_or(tag) == etag
            || tag.trim_matches('"') == etag.trim_matches('"')
    })
}

/// What the write does to `stored` (the document now, if any).
pub fn decide(
    rules: Rules,
    preconditions: &Preconditions,
    write: Write,
    stored: Option<&StoredDocument>,
) -> DocumentEdit {
    let refuse = DocumentEdit::Refuse;
    if let Some(header) = &preconditions.if_match {
        match stored {
            Some(doc) if names(header, &doc.etag) => {}
            Some(doc) => {
                return refuse(DocumentRefusal::PreconditionFailed(format!(
                    "If-Match {header} does not match the document's ETag {}",
                    doc.etag
                )));
            }
            None => {
                return refuse(DocumentRefusal::PreconditionFailed(format!(
                    "If-Match {header}: there is no such document"
                )));
            }
        }
    }
    if let (Some(header), Some(doc)) = (&preconditions.if_none_match, stored)
        && names(header, &doc.etag)
    {
        return refuse(DocumentRefusal::PreconditionFailed(format!(
            "If-None-Match {header}: the document exists (ETag {})",
            doc.etag
        )));
    }
    let unconditional = preconditions.if_match.is_none() && preconditions.if_none_match.is_none();
    match write {
        Write::Delete => DocumentEdit::Delete,
        Write::Put { content_type, body } => {
            // A PUT must say which version it replaces, except on the state resource before
            // xAPI 2.0.
            let checked = rules.kind != DocumentKind::State || rules.xapi_2;
            if checked && unconditional {
                if stored.is_some() {
                    return refuse(DocumentRefusal::Conflict(
                        "the document exists: send If-Match with its ETag to replace it, or \
                         If-None-Match: * to create it only if it does not"
                            .into(),
                    ));
                }
                if rules.kind != DocumentKind::State && !rules.xapi_2 {
                    return refuse(DocumentRefusal::Invalid {
                        field: "If-Match".into(),
                        detail: "a PUT of a profile needs If-Match or If-None-Match".into(),
                    });
                }
            }
            DocumentEdit::Write { content_type, body }
        }
        Write::Post { content_type, body } => merge(stored, content_type, body),
    }
}

/// `POST`: a JSON object merges into a stored JSON object (its top-level properties replace
/// those of the same name); a document that does not exist yet is created. Anything else is
/// refused, and the stored document stays as it is.
fn merge(stored: Option<&StoredDocument>, content_type: String, body: Vec<u8>) -> DocumentEdit {
    let invalid = |field: &str, detail: String| {
        DocumentEdit::Refuse(DocumentRefusal::Invalid {
            field: field.into(),
            detail,
        })
    };
    let incoming = if is_json(&content_type) {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => Some(v),
            Err(e) => return invalid("body", format!("the document is not valid JSON: {e}")),
        }
    } else {
        None
    };
    let Some(stored) = stored else {
        return DocumentEdit::Write { content_type, body };
    };
    let Some(Value::Object(incoming)) = incoming else {
        return invalid(
            "Content-Type",
            "a POST merges a JSON object (application/json) into a stored JSON object; use PUT \
             to replace the document"
                .into(),
        );
    };
    if !is_json(&stored.content_type) {
        return invalid(
            "body",
            "the stored document is not JSON, so nothing can be merged into it; use PUT".into(),
        );
    }
    let Ok(Value::Object(mut merged)) = serde_json::from_slice::<Value>(&stored.body) else {
        return invalid(
            "body",
            "the stored document is not a JSON object, so nothing can be merged into it; use PUT"
                .into(),
        );
    };
    merged.extend(incoming);
    DocumentEdit::Write {
        content_type: "application/json".into(),
        body: serde_json::to_vec(&Value::Object(Map::from_iter(merged))).expect("JSON serialises"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::documents::etag_of;

    fn doc(content_type: &str, body: &str) -> StoredDocument {
        StoredDocument {
            id: "d".into(),
            content_type: content_type.into(),
            body: body.as_bytes().to_vec(),
            etag: etag_of(body.as_bytes()),
            updated_us: 0,
        }
    }

    fn post(body: &str) -> Write {
        Write::Post {
            content_type: "application/json".into(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn put(body: &str) -> Write {
        Write::Put {
            content_type: "application/json".into(),
            body: body.as_bytes().to_vec(),
        }
    }

    const PROFILE_2: Rules = Rules {
        kind: DocumentKind::AgentProfile,
        xapi_2: true,
    };
    const PROFILE_1: Rules = Rules {
        kind: DocumentKind::ActivityProfile,
        xapi_2: false,
    };
    const STATE_1: Rules = Rules {
        kind: DocumentKind::State,
        xapi_2: false,
    };
    const STATE_2: Rules = Rules {
        kind: DocumentKind::State,
        xapi_2: true,
    };

    fn written(edit: DocumentEdit) -> Value {
        match edit {
            DocumentEdit::Write { body, .. } => serde_json::from_slice(&body).unwrap(),
            other => panic!("expected a write, got {other:?}"),
        }
    }

    fn refusal(edit: DocumentEdit) -> DocumentRefusal {
        match edit {
            DocumentEdit::Refuse(r) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_post_merges_top_level_properties_and_replaces_nested_objects_whole() {
        let stored = doc(
            "application/json; charset=utf-8",
            r#"{"car":"Honda","series":{"nascar":{"a":1}}}"#,
        );
        let merged = written(decide(
            STATE_2,
            &Preconditions::default(),
            post(r#"{"type":"Civic","series":{"f1":{}}}"#),
            Some(&stored),
        ));
        assert_eq!(
            merged,
            serde_json::json!({"car": "Honda", "type": "Civic", "series": {"f1": {}}})
        );
    }

    #[test]
    fn a_post_that_cannot_merge_is_refused() {
        let json = doc("application/json", r#"{"car":"Honda"}"#);
        let opaque = doc("application/octet-stream", "/ asdf / undefined");
        let no = Preconditions::default();
        let text = Write::Post {
            content_type: "text/plain".into(),
            body: b"car".to_vec(),
        };
        for (write, stored) in [
            (text, Some(&json)),
            (post(r#"{"car":"MKZ"}"#), Some(&opaque)),
            (post("[1]"), Some(&json)),
            (post(r#"{"car":"MKZ"}{"#), Some(&json)),
            (post(r#"{"car":"MKZ"}["#), None),
        ] {
            assert!(matches!(
                refusal(decide(PROFILE_2, &no, write, stored)),
                DocumentRefusal::Invalid { .. }
            ));
        }
    }

    #[test]
    fn a_post_creates_a_missing_document_as_sent() {
        let edit = decide(
            PROFILE_1,
            &Preconditions::default(),
            Write::Post {
                content_type: "application/octet-stream".into(),
                body: b"blob".to_vec(),
            },
            None,
        );
        assert_eq!(
            edit,
            DocumentEdit::Write {
                content_type: "application/octet-stream".into(),
                body: b"blob".to_vec()
            }
        );
    }

    #[test]
    fn preconditions_are_checked_against_the_stored_etag() {
        let stored = doc("application/json", r#"{"a":1}"#);
        let matching = Preconditions {
            if_match: Some(stored.etag.clone()),
            if_none_match: None,
        };
        let wrong = Preconditions {
            if_match: Some("\"1234\"".into()),
            if_none_match: None,
        };
        let none_match_any = Preconditions {
            if_match: None,
            if_none_match: Some("*".into()),
        };
        assert!(matches!(
            decide(PROFILE_2, &matching, put("{}"), Some(&stored)),
            DocumentEdit::Write { .. }
        ));
        for write in [put("{}"), post("{}"), Write::Delete] {
            assert!(matches!(
                refusal(decide(STATE_2, &wrong, write, Some(&stored))),
                DocumentRefusal::PreconditionFailed(_)
            ));
        }
        assert!(matches!(
            refusal(decide(PROFILE_1, &none_match_any, put("{}"), Some(&stored))),
            DocumentRefusal::PreconditionFailed(_)
        ));
        assert!(matches!(
            decide(PROFILE_1, &none_match_any, put("{}"), None),
            DocumentEdit::Write { .. }
        ));
        assert!(matches!(
            refusal(decide(PROFILE_2, &matching, put("{}"), None)),
            DocumentRefusal::PreconditionFailed(_)
        ));
    }

    #[test]
    fn an_unconditional_put_over_an_existing_document_conflicts_except_on_state_in_1_0() {
        let stored = doc("application/json", r#"{"a":1}"#);
        let no = Preconditions::default();
        for rules in [PROFILE_1, PROFILE_2, STATE_2] {
            assert!(matches!(
                refusal(decide(rules, &no, put("{}"), Some(&stored))),
                DocumentRefusal::Conflict(_)
            ));
        }
        assert!(matches!(
            decide(STATE_1, &no, put("{}"), Some(&stored)),
            DocumentEdit::Write { .. }
        ));
        // A new document: a 1.0.3 profile must name a precondition; the others need not.
        assert!(matches!(
            refusal(decide(PROFILE_1, &no, put("{}"), None)),
            DocumentRefusal::Invalid { .. }
        ));
        for rules in [PROFILE_2, STATE_1, STATE_2] {
            assert!(matches!(
                decide(rules, &no, put("{}"), None),
                DocumentEdit::Write { .. }
            ));
        }
    }

    #[test]
    fn a_delete_with_no_precondition_deletes() {
        assert_eq!(
            decide(PROFILE_2, &Preconditions::default(), Write::Delete, None),
            DocumentEdit::Delete
        );
    }
}
