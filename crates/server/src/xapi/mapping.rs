//! How xAPI statements become [`LearningEvent`]s, and native events become xAPI statements.
//!
//! Native events are turned into xAPI statements at the edge, so that there is one log and every
//! event, whichever way it came in, can be read back through the xAPI statements resource. The
//! table of this mapping is in the README ("How xAPI fields map to learning events").

use crate::live::LiveInput;
use learnpulse_privacy::pipeline;
use serde_json::{Map, Value, json};

use learnpulse_core::outcome::TutorOutcome;
use learnpulse_core::{LearningEvent, Outcome};

use super::validate::{parse_duration_ms, parse_timestamp};

/// Namespace of learnpulse's own xAPI extensions.
pub const EXT: &str = "https://learnpulse.dev/xapi/ext/";

/// The full IRI of one of learnpulse's extensions, as a literal (no allocation per lookup).
macro_rules! ext {
    ($name:literal) => {
        concat!("https://learnpulse.dev/xapi/ext/", $name)
    };
}
/// Activity type that marks a `contextActivities.category` entry as a skill.
pub const SKILL_TYPE: &str = "https://learnpulse.dev/xapi/activity-type/skill";
/// Account home page of learners posted through the native API.
pub const NATIVE_HOME_PAGE: &str = "https://learnpulse.dev/learners";
/// Prefix of item ids of native events that are not IRIs already.
pub const NATIVE_ITEM_PREFIX: &str = "urn:learnpulse:item:";

pub const VERB_ANSWERED: &str = "http://adlnet.gov/expapi/verbs/answered";
pub const VERB_ATTEMPTED: &str = "http://adlnet.gov/expapi/verbs/attempted";
pub const VERB_VOIDED: &str = "http://adlnet.gov/expapi/verbs/voided";
/// A tutor (human or AI, through MCP) helped the learner: kept in the log, not learner activity.
pub const VERB_TUTORED: &str = "https://learnpulse.dev/xapi/verbs/tutored";
/// A teacher's answer to an intervention decision (acknowledged, went over it, dismissed).
pub const VERB_RESPONDED: &str = "https://learnpulse.dev/xapi/verbs/responded";
const VERB_PASSED: &str = "http://adlnet.gov/expapi/verbs/passed";
const VERB_FAILED: &str = "http://adlnet.gov/expapi/verbs/failed";

pub use crate::storage::keys::agent_ifi as actor_ifi;

/// The learner key of an Agent: the account name (the pseudonym, once the privacy pipeline has
/// run), else the e-mail address, else the other identifier. Groups and the anonymous actor of a
/// reduced event are not learners.
pub fn learner_key(actor: &Value) -> Option<String> {
    if pipeline::is_anonymous(actor) {
        return None;
    }
    pipeline::agent_identity(actor).map(str::to_owned)
}

/// The learner's pseudonyms under older keys, which the privacy pipeline records after a key
/// rotation.
pub fn previous_learner_ids(statement: &Value) -> Vec<String> {
    statement
        .get("context")
        .and_then(|c| c.get("extensions"))
        .and_then(|e| e.get(pipeline::PREVIOUS_PSEUDONYMS))
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn extension<'a>(statement: &'a Value, key: &str) -> Option<&'a Value> {
    statement
        .get("context")
        .and_then(|c| c.get("extensions"))
        .and_then(|e| e.get(key))
        .or_else(|| {
            statement
                .get("result")
                .and_then(|r| r.get("extensions"))
                .and_then(|e| e.get(key))
        })
}

fn skills(statement: &Value) -> Vec<String> {
    let mut out: Vec<String> = match extension(statement, ext!("skills")) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let categories = statement
        .get("context")
        .and_then(|c| c.get("contextActivities"))
        .and_then(|c| c.get("category"));
    let categories: Vec<&Value> = match categories {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single) => vec![single],
        None => Vec::new(),
    };
    for c in categories {
        let is_skill = c
            .get("definition")
            .and_then(|d| d.get("type"))
            .and_then(Value::as_str)
            == Some(SKILL_TYPE);
        if let (true, Some(id)) = (is_skill, c.get("id").and_then(Value::as_str)) {
            out.push(id.to_owned());
        }
    }
    out
}

fn group_of(statement: &Value) -> Option<String> {
    if let Some(g) = extension(statement, ext!("group")).and_then(Value::as_str) {
        return Some(g.to_owned());
    }
    let team = statement.get("context")?.get("team")?;
    team.get("account")
        .and_then(|a| a.get("name"))
        .or_else(|| team.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn u32_extension(statement: &Value, key: &str) -> Option<u32> {
    extension(statement, key)
        .and_then(Value::as_u64)
        .map(|n| n.min(u64::from(u32::MAX)) as u32)
}

/// What the learner engine sees of a (valid, completed) statement, if it is about a learner
/// working on an activity. Voiding statements and statements about agents are not learning events.
pub fn learning_event(statement: &Value) -> Option<LearningEvent> {
    let verb = statement.get("verb")?.get("id")?.as_str()?;
    if verb == VERB_VOIDED || verb == VERB_TUTORED || verb == VERB_RESPONDED {
        return None;
    }
    let object = statement.get("object")?;
    if object
        .get("objectType")
        .and_then(Value::as_str)
        .unwrap_or("Activity")
        != "Activity"
    {
        return None;
    }
    let item = object.get("id")?.as_str()?;
    let learner = learner_key(statement.get("actor")?)?;
    let result = statement.get("result");
    let success = result
        .and_then(|r| r.get("success"))
        .and_then(Value::as_bool);
    let outcome = match (verb, success) {
        (_, Some(true)) => Outcome::Correct,
        (_, Some(false)) => Outcome::Incorrect,
        (VERB_PASSED, None) => Outcome::Correct,
        (VERB_FAILED, None) => Outcome::Incorrect,
        _ => Outcome::Unscored,
    };
    let timestamp_ms = statement
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(parse_timestamp)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .unwrap_or(0);
    let session = extension(statement, ext!("session"))
        .and_then(Value::as_str)
        .or_else(|| {
            statement
                .get("context")
                .and_then(|c| c.get("registration"))
                .and_then(Value::as_str)
        })
        .map(str::to_owned);
    Some(LearningEvent {
        learner,
        group: group_of(statement),
        session,
        item: item
            .strip_prefix(NATIVE_ITEM_PREFIX)
            .map(unescape_item)
            .unwrap_or_else(|| item.to_owned()),
        skills: skills(statement),
        outcome,
        response_time_ms: result
            .and_then(|r| r.get("duration"))
            .and_then(Value::as_str)
            .and_then(parse_duration_ms),
        hints_used: u32_extension(statement, ext!("hints-used")).unwrap_or(0),
        attempt: u32_extension(statement, ext!("attempt")).unwrap_or(1),
        timestamp_ms,
    })
}

/// Percent-encodes what may not stand in an IRI (whitespace, `%`, controls) in a native item id.
fn escape_item(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for c in id.chars() {
        if c.is_whitespace() || c.is_control() || c == '%' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The inverse of [`escape_item`].
fn unescape_item(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// [`learning_event`] of a statement as the log stores it (JSON text); `None` for text that is
/// not a learning event (or not JSON).
pub fn learning_event_from_json(json: &str) -> Option<LearningEvent> {
    serde_json::from_str::<Value>(json)
        .ok()
        .and_then(|s| learning_event(&s))
}

/// What a statement means to the live state (`None`: nothing), decided once at the edge.
pub fn live_input(statement: &Value) -> Option<LiveInput> {
    if let Some(voided) = voided_statement(statement) {
        return Some(LiveInput::Retract { statement: voided });
    }
    if let Some(event) = learning_event(statement) {
        return Some(LiveInput::Event {
            event,
            previous: previous_learner_ids(statement),
        });
    }
    if let Some((decision, response)) = teacher_response(statement) {
        return Some(LiveInput::TeacherResponse { decision, response });
    }
    tutor_report(statement).map(|(action, outcome)| LiveInput::TutorReport { action, outcome })
}

/// The statement a voiding statement voids.
fn voided_statement(statement: &Value) -> Option<uuid::Uuid> {
    if statement.get("verb")?.get("id")?.as_str()? != VERB_VOIDED {
        return None;
    }
    let object = statement.get("object")?;
    if object.get("objectType")?.as_str()? != "StatementRef" {
        return None;
    }
    uuid::Uuid::parse_str(object.get("id")?.as_str()?).ok()
}

/// The activity id prefix of an intervention decision (`.../decision/<seq>`).
pub const DECISION_PREFIX: &str = "https://learnpulse.dev/xapi/activities/decision/";

/// The answers a teacher can give to a decision.
pub const TEACHER_RESPONSES: [&str; 3] = ["acknowledged", "went_over", "dismissed"];

/// A `responded` statement's decision (its sequence number) and the teacher's answer.
pub fn teacher_response(statement: &Value) -> Option<(i64, String)> {
    if statement.get("verb")?.get("id")?.as_str()? != VERB_RESPONDED {
        return None;
    }
    let decision = statement
        .get("object")?
        .get("id")?
        .as_str()?
        .strip_prefix(DECISION_PREFIX)?
        .parse()
        .ok()?;
    let response = extension(statement, ext!("teacher-response"))?.as_str()?;
    TEACHER_RESPONSES
        .contains(&response)
        .then(|| (decision, response.to_owned()))
}

/// [`live_input`] of a statement as the log stores it (JSON text), for rows stored before the
/// log kept the live input beside each statement.
pub fn live_input_from_json(json: &str) -> Option<LiveInput> {
    live_input(&serde_json::from_str::<Value>(json).ok()?)
}

/// The activity id prefix of a tutor's action (`.../intervention/hint`).
pub const TUTOR_ACTION_PREFIX: &str = "https://learnpulse.dev/xapi/activities/intervention/";

/// A `tutored` statement's action and the tutor's judgement of it.
pub fn tutor_report(statement: &Value) -> Option<(String, TutorOutcome)> {
    if statement.get("verb")?.get("id")?.as_str()? != VERB_TUTORED {
        return None;
    }
    let action = statement
        .get("object")?
        .get("id")?
        .as_str()?
        .strip_prefix(TUTOR_ACTION_PREFIX)?;
    let outcome = extension(statement, ext!("tutor-outcome"))
        .and_then(Value::as_str)
        .and_then(TutorOutcome::parse)
        .unwrap_or(TutorOutcome::Unknown);
    Some((action.to_owned(), outcome))
}

/// The fields of one native event (`POST /v1/events`), already validated.
pub struct NativeFields<'a> {
    pub learner: &'a str,
    pub item: &'a str,
    pub skills: &'a [String],
    pub correct: Option<bool>,
    pub response_time_ms: Option<u64>,
    pub hints_used: u32,
    pub attempt: u32,
    pub text: Option<&'a str>,
    pub session: Option<&'a str>,
    pub group: Option<&'a str>,
    /// RFC 3339 timestamp, when the platform gave one.
    pub timestamp: Option<&'a str>,
}

/// The xAPI statement a native event is stored as.
pub fn native_statement(e: &NativeFields<'_>) -> Value {
    let item = if super::validate::is_iri(e.item) {
        e.item.to_owned()
    } else {
        format!("{NATIVE_ITEM_PREFIX}{}", escape_item(e.item))
    };
    let mut extensions = Map::new();
    extensions.insert(format!("{EXT}skills"), json!(e.skills));
    extensions.insert(format!("{EXT}hints-used"), json!(e.hints_used));
    extensions.insert(format!("{EXT}attempt"), json!(e.attempt));
    if let Some(s) = e.session {
        extensions.insert(format!("{EXT}session"), json!(s));
    }
    if let Some(g) = e.group {
        extensions.insert(format!("{EXT}group"), json!(g));
    }
    let mut result = Map::new();
    if let Some(c) = e.correct {
        result.insert("success".into(), json!(c));
    }
    if let Some(ms) = e.response_time_ms {
        result.insert(
            "duration".into(),
            json!(format!("PT{}.{:03}S", ms / 1000, ms % 1000)),
        );
    }
    if let Some(t) = e.text {
        result.insert("response".into(), json!(t));
    }
    let verb = if e.correct.is_some() {
        VERB_ANSWERED
    } else {
        VERB_ATTEMPTED
    };
    let mut statement = json!({
        "actor": {"objectType": "Agent", "account": {"homePage": NATIVE_HOME_PAGE, "name": e.learner}},
        "verb": {"id": verb},
        "object": {"objectType": "Activity", "id": item},
        "context": {"extensions": extensions},
    });
    if !result.is_empty() {
        statement["result"] = Value::Object(result);
    }
    if let Some(t) = e.timestamp {
        statement["timestamp"] = json!(t);
    }
    statement
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answered_statement_becomes_a_scored_event() {
        let s = json!({
            "actor": {"mbox": "mailto:ada@example.org"},
            "verb": {"id": VERB_ANSWERED},
            "object": {"id": "https://example.org/q/7"},
            "result": {"success": false, "duration": "PT8.25S"},
            "context": {
                "team": {"objectType": "Group", "name": "7b", "member": []},
                "extensions": {"https://learnpulse.dev/xapi/ext/skills": ["fractions"],
                               "https://learnpulse.dev/xapi/ext/hints-used": 2}
            },
            "timestamp": "2026-11-26T09:30:00Z"
        });
        let e = learning_event(&s).unwrap();
        assert_eq!(e.learner, "ada@example.org");
        assert_eq!(e.outcome, Outcome::Incorrect);
        assert_eq!(e.response_time_ms, Some(8_250));
        assert_eq!(e.skills, vec!["fractions".to_string()]);
        assert_eq!(e.hints_used, 2);
        assert_eq!(e.group.as_deref(), Some("7b"));
        assert_eq!(e.timestamp_ms, 1_795_685_400_000);
    }

    #[test]
    fn a_native_event_round_trips_through_its_statement() {
        let skills = vec!["algebra".to_string()];
        let fields = NativeFields {
            learner: "s-42",
            item: "Quiz 3: q1 (50% off)",
            skills: &skills,
            correct: Some(true),
            response_time_ms: Some(4_321),
            hints_used: 1,
            attempt: 2,
            text: Some("x = 4"),
            session: Some("sess-1"),
            group: Some("class-a"),
            timestamp: Some("2026-11-26T09:30:00Z"),
        };
        let statement = native_statement(&fields);
        super::super::validate::statement(&statement, "statement").unwrap();
        let e = learning_event(&statement).unwrap();
        assert_eq!(
            (e.learner.as_str(), e.item.as_str()),
            ("s-42", "Quiz 3: q1 (50% off)")
        );
        assert_eq!(e.outcome, Outcome::Correct);
        assert_eq!(e.response_time_ms, Some(4_321));
        assert_eq!((e.hints_used, e.attempt), (1, 2));
        assert_eq!(e.session.as_deref(), Some("sess-1"));
        assert_eq!(e.group.as_deref(), Some("class-a"));
    }
}
