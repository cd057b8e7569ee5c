//! Validation of xAPI statements against the specification (1.0.3 and 2.0.0).
//!
//! Each check names the offending field by its JSON path (`statements[2].actor.mbox`), which the
//! HTTP layer puts into the problem body. Validation is strict where the specification says MUST:
//! unknown properties, a missing or doubled inverse functional identifier, malformed IRIs, UUIDs,
//! timestamps and durations are all rejected with 400.

use serde_json::{Map, Value};

/// A statement that does not follow the specification.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// JSON path of the offending field.
    pub field: String,
    pub detail: String,
}

type Check = Result<(), Invalid>;

/// A JSON path, built on the stack as validation descends and rendered to text only when there is
/// an error to report (validating a statement must not allocate a path string per field).
#[derive(Clone, Copy)]
enum Path<'a> {
    Root(&'a str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    fn key(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    fn index(&'a self, i: usize) -> Path<'a> {
        Path::Index(self, i)
    }

    fn render(&self, out: &mut String) {
        match self {
            Path::Root(name) => out.push_str(name),
            Path::Key(parent, key) => {
                parent.render(out);
                out.push('.');
                out.push_str(key);
            }
            Path::Index(parent, i) => {
                parent.render(out);
                out.push_str(&format!("[{i}]"));
            }
        }
    }
}

fn invalid(field: &Path<'_>, detail: impl Into<String>) -> Invalid {
    let mut rendered = String::new();
    field.render(&mut rendered);
    Invalid {
        field: rendered,
        detail: detail.into(),
    }
}

fn join<'a>(path: &'a Path<'a>, key: &'a str) -> Path<'a> {
    path.key(key)
}

fn as_object<'a>(v: &'a Value, path: &Path<'_>) -> Result<&'a Map<String, Value>, Invalid> {
    v.as_object()
        .ok_or_else(|| invalid(path, "must be a JSON object"))
}

/// An object whose `objectType` must be `expected` (where the specification requires it).
fn typed_object<'a>(
    v: &'a Value,
    path: &Path<'_>,
    expected: &str,
) -> Result<&'a Map<String, Value>, Invalid> {
    let map = as_object(v, path)?;
    if map.get("objectType").and_then(Value::as_str) != Some(expected) {
        return Err(invalid(
            &join(path, "objectType"),
            format!("must be \"{expected}\""),
        ));
    }
    Ok(map)
}

fn as_str<'a>(v: &'a Value, path: &Path<'_>) -> Result<&'a str, Invalid> {
    v.as_str().ok_or_else(|| invalid(path, "must be a string"))
}

fn only_keys(map: &Map<String, Value>, path: &Path<'_>, allowed: &[&str]) -> Check {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid(&join(path, k), "is not a property allowed here")),
        None => Ok(()),
    }
}

/// An IRI must at least be absolute: a scheme, a colon, and no whitespace.
pub fn is_iri(s: &str) -> bool {
    let Some(colon) = s.find(':') else {
        return false;
    };
    let scheme = &s[..colon];
    !scheme.is_empty()
        && scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && colon + 1 < s.len()
        && !s.chars().any(char::is_whitespace)
}

fn iri(v: &Value, path: &Path<'_>) -> Check {
    let s = as_str(v, path)?;
    if is_iri(s) {
        Ok(())
    } else {
        Err(invalid(path, "must be an absolute IRI"))
    }
}

pub fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

fn uuid_field(v: &Value, path: &Path<'_>) -> Check {
    if is_uuid(as_str(v, path)?) {
        Ok(())
    } else {
        Err(invalid(path, "must be a UUID"))
    }
}

fn language_tag(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|part| {
            !part.is_empty() && part.len() <= 8 && part.chars().all(|c| c.is_ascii_alphanumeric())
        })
        && s.split('-')
            .next()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_alphabetic()))
}

fn language_map(v: &Value, path: &Path<'_>) -> Check {
    for (tag, text) in as_object(v, path)? {
        let p = join(path, tag);
        if !language_tag(tag) {
            return Err(invalid(&p, "is not a valid RFC 5646 language tag"));
        }
        as_str(text, &p)?;
    }
    Ok(())
}

fn extensions(v: &Value, path: &Path<'_>) -> Check {
    for key in as_object(v, path)?.keys() {
        if !is_iri(key) {
            return Err(invalid(&join(path, key), "extension keys must be IRIs"));
        }
    }
    Ok(())
}

/// ISO 8601 timestamp with a time zone, as RFC 3339 writes it.
pub fn parse_timestamp(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

fn timestamp(v: &Value, path: &Path<'_>) -> Check {
    let s = as_str(v, path)?;
    if s.ends_with("-00:00") {
        return Err(invalid(path, "the offset -00:00 is not allowed"));
    }
    match parse_timestamp(s) {
        Some(_) => Ok(()),
        None => Err(invalid(
            path,
            "must be an ISO 8601 timestamp with a time zone (e.g. 2026-11-26T09:30:00Z)",
        )),
    }
}

/// Parses an ISO 8601 duration (`PT1M30.5S`, `P1DT2H`, `P2W`) into milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    let rest = s.strip_prefix('P')?;
    if rest.is_empty() {
        return None;
    }
    let (date, time_part) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (rest, None),
    };
    // Weeks stand alone in ISO 8601 (`P2W`), never beside other units (`P4W1D`).
    match date.strip_suffix('W') {
        Some(weeks)
            if time_part.is_some()
                || weeks.is_empty()
                || !weeks
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.' || c == ',') =>
        {
            return None;
        }
        None if date.contains('W') => return None,
        _ => {}
    }
    let mut total = 0.0_f64;
    let mut parse_units = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut number = String::new();
        let mut next_unit = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' || c == ',' {
                number.push(if c == ',' { '.' } else { c });
                continue;
            }
            let idx = units[next_unit..].iter().position(|(u, _)| *u == c)? + next_unit;
            let value: f64 = number.parse().ok()?;
            total += value * units[idx].1;
            number.clear();
            next_unit = idx + 1;
        }
        number.is_empty().then_some(())
    };
    const DAY: f64 = 86_400_000.0;
    parse_units(
        date,
        &[
            ('Y', 365.0 * DAY),
            ('M', 30.0 * DAY),
            ('W', 7.0 * DAY),
            ('D', DAY),
        ],
    )?;
    if let Some(t) = time_part {
        parse_units(t, &[('H', 3_600_000.0), ('M', 60_000.0), ('S', 1_000.0)])?;
    }
    Some(total.round() as u64)
}

const IFIS: [&str; 4] = ["mbox", "mbox_sha1sum", "openid", "account"];

fn ifi_count(map: &Map<String, Value>) -> usize {
    IFIS.iter().filter(|k| map.contains_key(**k)).count()
}

fn ifi(map: &Map<String, Value>, path: &Path<'_>) -> Check {
    if let Some(v) = map.get("mbox") {
        let p = join(path, "mbox");
        let s = as_str(v, &p)?;
        if !s.starts_with("mailto:") || !s.contains('@') {
            return Err(invalid(&p, "must be a mailto: IRI of an e-mail address"));
        }
    }
    if let Some(v) = map.get("mbox_sha1sum") {
        let p = join(path, "mbox_sha1sum");
        let s = as_str(v, &p)?;
        if s.len() != 40 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid(&p, "must be the hex SHA-1 of a mailto: IRI"));
        }
    }
    if let Some(v) = map.get("openid") {
        iri(v, &join(path, "openid"))?;
    }
    if let Some(v) = map.get("account") {
        let p = join(path, "account");
        let account = as_object(v, &p)?;
        only_keys(account, &p, &["homePage", "name"])?;
        let home = account
            .get("homePage")
            .ok_or_else(|| invalid(&join(&p, "homePage"), "is required"))?;
        iri(home, &join(&p, "homePage"))?;
        let name = account
            .get("name")
            .ok_or_else(|| invalid(&join(&p, "name"), "is required"))?;
        as_str(name, &join(&p, "name"))?;
    }
    Ok(())
}

fn agent(map: &Map<String, Value>, path: &Path<'_>) -> Check {
    only_keys(
        map,
        path,
        &[
            "objectType",
            "name",
            "mbox",
            "mbox_sha1sum",
            "openid",
            "account",
        ],
    )?;
    if let Some(name) = map.get("name") {
        as_str(name, &join(path, "name"))?;
    }
    if ifi_count(map) != 1 {
        return Err(invalid(
            path,
            "an Agent must have exactly one of mbox, mbox_sha1sum, openid, account",
        ));
    }
    ifi(map, path)
}

fn group(map: &Map<String, Value>, path: &Path<'_>) -> Check {
    only_keys(
        map,
        path,
        &[
            "objectType",
            "name",
            "member",
            "mbox",
            "mbox_sha1sum",
            "openid",
            "account",
        ],
    )?;
    if let Some(name) = map.get("name") {
        as_str(name, &join(path, "name"))?;
    }
    let ifis = ifi_count(map);
    if ifis > 1 {
        return Err(invalid(
            path,
            "a Group may have at most one inverse functional identifier",
        ));
    }
    ifi(map, path)?;
    match map.get("member") {
        Some(Value::Array(members)) => {
            let member_path = path.key("member");
            for (i, m) in members.iter().enumerate() {
                let p = member_path.index(i);
                let mm = as_object(m, &p)?;
                if mm
                    .get("objectType")
                    .and_then(Value::as_str)
                    .unwrap_or("Agent")
                    != "Agent"
                {
                    return Err(invalid(&p, "members of a Group must be Agents"));
                }
                agent(mm, &p)?;
            }
            Ok(())
        }
        Some(_) => Err(invalid(&join(path, "member"), "must be an array of Agents")),
        None if ifis == 0 => Err(invalid(
            &join(path, "member"),
            "an anonymous Group must list its members",
        )),
        None => Ok(()),
    }
}

/// An `authority`: an Agent, or (OAuth) an anonymous Group of exactly two Agents, the
/// application and the user.
fn authority(v: &Value, path: &Path<'_>) -> Check {
    agent_or_group_at(v, path)?;
    if v.get("objectType").and_then(Value::as_str) != Some("Group") {
        return Ok(());
    }
    let map = as_object(v, path)?;
    if ifi_count(map) > 0 {
        return Err(invalid(path, "an authority Group must be anonymous"));
    }
    match map.get("member") {
        Some(Value::Array(members)) if members.len() == 2 => Ok(()),
        _ => Err(invalid(
            &join(path, "member"),
            "an authority Group has exactly two Agents (the OAuth application and user)",
        )),
    }
}

/// An actor: an Agent, or a Group when `objectType` says so.
fn agent_or_group_at(v: &Value, path: &Path<'_>) -> Check {
    let map = as_object(v, path)?;
    match map.get("objectType") {
        None => agent(map, path),
        Some(Value::String(t)) if t == "Agent" => agent(map, path),
        Some(Value::String(t)) if t == "Group" => group(map, path),
        Some(_) => Err(invalid(
            &join(path, "objectType"),
            "must be \"Agent\" or \"Group\"",
        )),
    }
}

fn verb(v: &Value, path: &Path<'_>) -> Check {
    let map = as_object(v, path)?;
    only_keys(map, path, &["id", "display"])?;
    iri(
        map.get("id")
            .ok_or_else(|| invalid(&join(path, "id"), "is required"))?,
        &join(path, "id"),
    )?;
    if let Some(d) = map.get("display") {
        language_map(d, &join(path, "display"))?;
    }
    Ok(())
}

const INTERACTION_TYPES: [&str; 10] = [
    "true-false",
    "choice",
    "fill-in",
    "long-fill-in",
    "matching",
    "performance",
    "sequencing",
    "likert",
    "numeric",
    "other",
];

fn interaction_components(v: &Value, path: &Path<'_>) -> Check {
    let Value::Array(items) = v else {
        return Err(invalid(path, "must be an array"));
    };
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let p = path.index(i);
        let map = as_object(item, &p)?;
        only_keys(map, &p, &["id", "description"])?;
        let id = as_str(
            map.get("id")
                .ok_or_else(|| invalid(&join(&p, "id"), "is required"))?,
            &join(&p, "id"),
        )?;
        if !seen.insert(id) {
            return Err(invalid(
                &join(&p, "id"),
                "interaction component ids must be unique",
            ));
        }
        if let Some(d) = map.get("description") {
            language_map(d, &join(&p, "description"))?;
        }
    }
    Ok(())
}

fn activity_definition(v: &Value, path: &Path<'_>) -> Check {
    let map = as_object(v, path)?;
    only_keys(
        map,
        path,
        &[
            "name",
            "description",
            "type",
            "moreInfo",
            "extensions",
            "interactionType",
            "correctResponsesPattern",
            "choices",
            "scale",
            "source",
            "target",
            "steps",
        ],
    )?;
    for key in ["name", "description"] {
        if let Some(m) = map.get(key) {
            language_map(m, &join(path, key))?;
        }
    }
    for key in ["type", "moreInfo"] {
        if let Some(i) = map.get(key) {
            iri(i, &join(path, key))?;
        }
    }
    if let Some(e) = map.get("extensions") {
        extensions(e, &join(path, "extensions"))?;
    }
    if let Some(t) = map.get("interactionType") {
        let p = join(path, "interactionType");
        if !INTERACTION_TYPES.contains(&as_str(t, &p)?) {
            return Err(invalid(&p, "is not an xAPI interaction type"));
        }
    }
    if let Some(c) = map.get("correctResponsesPattern") {
        let p = join(path, "correctResponsesPattern");
        if !map.contains_key("interactionType") {
            return Err(invalid(&p, "needs an interactionType"));
        }
        let Value::Array(items) = c else {
            return Err(invalid(&p, "must be an array of strings"));
        };
        for (i, item) in items.iter().enumerate() {
            as_str(item, &p.index(i))?;
        }
    }
    for key in ["choices", "scale", "source", "target", "steps"] {
        if let Some(c) = map.get(key) {
            if !map.contains_key("interactionType") {
                return Err(invalid(&join(path, key), "needs an interactionType"));
            }
            interaction_components(c, &join(path, key))?;
        }
    }
    Ok(())
}

fn activity(map: &Map<String, Value>, path: &Path<'_>) -> Check {
    only_keys(map, path, &["objectType", "id", "definition"])?;
    iri(
        map.get("id")
            .ok_or_else(|| invalid(&join(path, "id"), "is required"))?,
        &join(path, "id"),
    )?;
    if let Some(d) = map.get("definition") {
        activity_definition(d, &join(path, "definition"))?;
    }
    Ok(())
}

fn statement_ref(map: &Map<String, Value>, path: &Path<'_>) -> Check {
    only_keys(map, path, &["objectType", "id"])?;
    uuid_field(
        map.get("id")
            .ok_or_else(|| invalid(&join(path, "id"), "is required"))?,
        &join(path, "id"),
    )
}

fn object(v: &Value, path: &Path<'_>, in_substatement: bool) -> Check {
    let map = as_object(v, path)?;
    match map.get("objectType") {
        None => activity(map, path),
        Some(Value::String(t)) => match t.as_str() {
            "Activity" => activity(map, path),
            "Agent" => agent(map, path),
            "Group" => group(map, path),
            "StatementRef" => statement_ref(map, path),
            "SubStatement" if in_substatement => Err(invalid(
                path,
                "a SubStatement cannot contain a SubStatement",
            )),
            "SubStatement" => statement_body(map, path, Kind::SubStatement),
            _ => Err(invalid(
                &join(path, "objectType"),
                "is not an xAPI object type",
            )),
        },
        Some(_) => Err(invalid(&join(path, "objectType"), "must be a string")),
    }
}

fn score(v: &Value, path: &Path<'_>) -> Check {
    let map = as_object(v, path)?;
    only_keys(map, path, &["scaled", "raw", "min", "max"])?;
    let num = |key: &str| -> Result<Option<f64>, Invalid> {
        match map.get(key) {
            None => Ok(None),
            Some(n) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| invalid(&join(path, key), "must be a number")),
        }
    };
    let (scaled, raw, min, max) = (num("scaled")?, num("raw")?, num("min")?, num("max")?);
    if scaled.is_some_and(|s| !(-1.0..=1.0).contains(&s)) {
        return Err(invalid(&join(path, "scaled"), "must be between -1 and 1"));
    }
    if let (Some(lo), Some(hi)) = (min, max)
        && lo >= hi
    {
        return Err(invalid(&join(path, "min"), "must be less than max"));
    }
    if let Some(r) = raw
        && (min.is_some_and(|lo| r < lo) || max.is_some_and(|hi| r > hi))
    {
        return Err(invalid(&join(path, "raw"), "must be between min and max"));
    }
    Ok(())
}

fn result(v: &Value, path: &Path<'_>) -> Check {
    let map = as_object(v, path)?;
    only_keys(
        map,
        path,
        &[
            "score",
            "success",
            "completion",
            "response",
            "duration",
            "extensions",
        ],
    )?;
    if let Some(s) = map.get("score") {
        score(s, &join(path, "score"))?;
    }
    for key in ["success", "completion"] {
        if map.get(key).is_some_and(|b| !b.is_boolean()) {
            return Err(invalid(&join(path, key), "must be true or false"));
        }
    }
    if let Some(r) = map.get("response") {
        as_str(r, &join(path, "response"))?;
    }
    if let Some(d) = map.get("duration") {
        let p = join(path, "duration");
        if parse_duration_ms(as_str(d, &p)?).is_none() {
            return Err(invalid(&p, "must be an ISO 8601 duration (e.g. PT42.5S)"));
        }
    }
    if let Some(e) = map.get("extensions") {
        extensions(e, &join(path, "extensions"))?;
    }
    Ok(())
}

fn context_activities(v: &Value, path: &Path<'_>) -> Check {
    let map = as_object(v, path)?;
    only_keys(map, path, &["parent", "grouping", "category", "other"])?;
    for (key, value) in map {
        let p = join(path, key);
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let ip = p.index(i);
                    activity(as_object(item, &ip)?, &ip)?;
                }
            }
            single => activity(as_object(single, &p)?, &p)?,
        }
    }
    Ok(())
}

fn context(v: &Value, path: &Path<'_>, object_is_activity: bool) -> Check {
    let map = as_object(v, path)?;
    only_keys(
        map,
        path,
        &[
            "registration",
            "instructor",
            "team",
            "contextActivities",
            "revision",
            "platform",
            "language",
            "statement",
            "extensions",
            "contextAgents",
            "contextGroups",
        ],
    )?;
    if let Some(r) = map.get("registration") {
        uuid_field(r, &join(path, "registration"))?;
    }
    if let Some(i) = map.get("instructor") {
        agent_or_group_at(i, &join(path, "instructor"))?;
    }
    if let Some(t) = map.get("team") {
        let p = join(path, "team");
        group(typed_object(t, &p, "Group")?, &p)?;
    }
    if let Some(c) = map.get("contextActivities") {
        context_activities(c, &join(path, "contextActivities"))?;
    }
    for key in ["revision", "platform"] {
        if let Some(s) = map.get(key) {
            as_str(s, &join(path, key))?;
            if !object_is_activity {
                return Err(invalid(
                    &join(path, key),
                    "is only allowed when the object is an Activity",
                ));
            }
        }
    }
    if let Some(l) = map.get("language") {
        let p = join(path, "language");
        if !language_tag(as_str(l, &p)?) {
            return Err(invalid(&p, "is not a valid RFC 5646 language tag"));
        }
    }
    if let Some(s) = map.get("statement") {
        let p = join(path, "statement");
        statement_ref(typed_object(s, &p, "StatementRef")?, &p)?;
    }
    if let Some(e) = map.get("extensions") {
        extensions(e, &join(path, "extensions"))?;
    }
    for (key, object_type, member) in [
        ("contextAgents", "contextAgent", "agent"),
        ("contextGroups", "contextGroup", "group"),
    ] {
        let Some(list) = map.get(key) else { continue };
        let p = join(path, key);
        let Value::Array(items) = list else {
            return Err(invalid(&p, "must be an array"));
        };
        for (i, item) in items.iter().enumerate() {
            context_agent(item, &p.index(i), object_type, member)?;
        }
    }
    Ok(())
}

/// One of xAPI 2.0's `contextAgents` / `contextGroups`: `{objectType, agent | group,
/// relevantTypes?}`.
fn context_agent(v: &Value, path: &Path<'_>, object_type: &str, member: &str) -> Check {
    let map = as_object(v, path)?;
    only_keys(map, path, &["objectType", member, "relevantTypes"])?;
    if map.get("objectType").and_then(Value::as_str) != Some(object_type) {
        return Err(invalid(
            &join(path, "objectType"),
            format!("must be \"{object_type}\""),
        ));
    }
    let p = join(path, member);
    let who = map.get(member).ok_or_else(|| invalid(&p, "is required"))?;
    if member == "group" {
        group(typed_object(who, &p, "Group")?, &p)?;
    } else {
        agent_or_group_at(who, &p)?;
        if who.get("objectType").and_then(Value::as_str) == Some("Group") {
            return Err(invalid(&p, "must be an Agent"));
        }
    }
    if let Some(types) = map.get("relevantTypes") {
        let p = join(path, "relevantTypes");
        match types {
            Value::Array(items) if !items.is_empty() => {
                for (i, t) in items.iter().enumerate() {
                    iri(t, &p.index(i))?;
                }
            }
            _ => return Err(invalid(&p, "must be a non-empty array of IRIs")),
        }
    }
    Ok(())
}

fn attachments(v: &Value, path: &Path<'_>) -> Check {
    let Value::Array(items) = v else {
        return Err(invalid(path, "must be an array"));
    };
    for (i, item) in items.iter().enumerate() {
        let p = path.index(i);
        let map = as_object(item, &p)?;
        only_keys(
            map,
            &p,
            &[
                "usageType",
                "display",
                "description",
                "contentType",
                "length",
                "sha2",
                "fileUrl",
            ],
        )?;
        for key in ["usageType", "display", "contentType", "length", "sha2"] {
            if !map.contains_key(key) {
                return Err(invalid(&join(&p, key), "is required"));
            }
        }
        iri(&map["usageType"], &join(&p, "usageType"))?;
        language_map(&map["display"], &join(&p, "display"))?;
        if let Some(d) = map.get("description") {
            language_map(d, &join(&p, "description"))?;
        }
        as_str(&map["contentType"], &join(&p, "contentType"))?;
        if !map["length"].is_u64() {
            return Err(invalid(
                &join(&p, "length"),
                "must be a non-negative integer",
            ));
        }
        as_str(&map["sha2"], &join(&p, "sha2"))?;
        // Without a fileUrl the bytes must come in the request's multipart/mixed body (checked
        // by the edge, `xapi::attachments`).
        if let Some(u) = map.get("fileUrl") {
            iri(u, &join(&p, "fileUrl"))?;
        }
    }
    Ok(())
}

#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Statement,
    SubStatement,
}

fn statement_body(map: &Map<String, Value>, path: &Path<'_>, kind: Kind) -> Check {
    let allowed: &[&str] = match kind {
        Kind::Statement => &[
            "id",
            "actor",
            "verb",
            "object",
            "result",
            "context",
            "timestamp",
            "stored",
            "authority",
            "version",
            "attachments",
        ],
        Kind::SubStatement => &[
            "objectType",
            "actor",
            "verb",
            "object",
            "result",
            "context",
            "timestamp",
            "attachments",
        ],
    };
    only_keys(map, path, allowed)?;
    if let Some(id) = map.get("id") {
        uuid_field(id, &join(path, "id"))?;
    }
    let actor = map
        .get("actor")
        .ok_or_else(|| invalid(&join(path, "actor"), "is required"))?;
    agent_or_group_at(actor, &join(path, "actor"))?;
    let verb_value = map
        .get("verb")
        .ok_or_else(|| invalid(&join(path, "verb"), "is required"))?;
    verb(verb_value, &join(path, "verb"))?;
    let obj = map
        .get("object")
        .ok_or_else(|| invalid(&join(path, "object"), "is required"))?;
    object(obj, &join(path, "object"), kind == Kind::SubStatement)?;
    let object_type = obj
        .get("objectType")
        .and_then(Value::as_str)
        .unwrap_or("Activity");
    if verb_value.get("id").and_then(Value::as_str) == Some("http://adlnet.gov/expapi/verbs/voided")
        && object_type != "StatementRef"
    {
        return Err(invalid(
            &join(path, "object"),
            "a voiding statement's object must be a StatementRef",
        ));
    }
    if let Some(r) = map.get("result") {
        result(r, &join(path, "result"))?;
    }
    if let Some(c) = map.get("context") {
        context(c, &join(path, "context"), object_type == "Activity")?;
    }
    if let Some(t) = map.get("timestamp") {
        timestamp(t, &join(path, "timestamp"))?;
    }
    if let Some(s) = map.get("stored") {
        timestamp(s, &join(path, "stored"))?;
    }
    if let Some(a) = map.get("authority") {
        authority(a, &join(path, "authority"))?;
    }
    if let Some(v) = map.get("version") {
        let p = join(path, "version");
        let s = as_str(v, &p)?;
        let ok = ["1.0", "2.0"].iter().any(|major| {
            s.strip_prefix(major).is_some_and(|rest| {
                rest.is_empty()
                    || rest
                        .strip_prefix('.')
                        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            })
        });
        if !ok {
            return Err(invalid(&p, "must be a 1.0.x or 2.0.x version"));
        }
    }
    if let Some(a) = map.get("attachments") {
        attachments(a, &join(path, "attachments"))?;
    }
    Ok(())
}

/// Validates one statement; `path` names it in errors (`statement` or `statements[3]`).
pub fn statement(v: &Value, path: &str) -> Check {
    let path = Path::Root(path);
    statement_body(as_object(v, &path)?, &path, Kind::Statement)
}

/// Validates an Agent or Group (the `agent` query parameter, for one).
pub fn agent_or_group(v: &Value, path: &str) -> Check {
    agent_or_group_at(v, &Path::Root(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok() -> Value {
        json!({
            "actor": {"mbox": "mailto:ada@example.org", "name": "Ada"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/answered", "display": {"en-US": "answered"}},
            "object": {"id": "https://example.org/items/1", "definition": {"name": {"en": "Item 1"}}},
            "result": {"success": true, "duration": "PT12.5S", "score": {"scaled": 0.5}},
            "context": {"registration": "ec531277-b57b-4c15-8d91-d292c5b2b8f7", "platform": "lms"},
            "timestamp": "2026-11-26T09:30:00.123Z"
        })
    }

    fn error_field(v: Value) -> String {
        statement(&v, "statement").unwrap_err().field
    }

    #[test]
    fn a_valid_statement_passes() {
        statement(&ok(), "statement").unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = ok();
        v["actor"]["mbox"] = json!("ada@example.org");
        assert_eq!(error_field(v), "statement.actor.mbox");
        let mut v = ok();
        v["verb"]["id"] = json!("not an iri");
        assert_eq!(error_field(v), "statement.verb.id");
        let mut v = ok();
        v["result"]["score"]["scaled"] = json!(1.5);
        assert_eq!(error_field(v), "statement.result.score.scaled");
        let mut v = ok();
        v["timestamp"] = json!("2026-11-26T09:30:00");
        assert_eq!(error_field(v), "statement.timestamp");
        let mut v = ok();
        v["bogus"] = json!(1);
        assert_eq!(error_field(v), "statement.bogus");
    }

    #[test]
    fn agents_need_exactly_one_identifier() {
        let mut v = ok();
        v["actor"]["openid"] = json!("https://openid.example.org/ada");
        assert_eq!(error_field(v), "statement.actor");
        let mut v = ok();
        v["actor"] = json!({"name": "nobody"});
        assert_eq!(error_field(v), "statement.actor");
    }

    #[test]
    fn context_agents_and_groups_are_checked() {
        let agent = json!({"mbox": "mailto:ada@example.org"});
        let group = json!({"objectType": "Group", "member": [agent]});
        let mut v = ok();
        v["context"]["contextAgents"] = json!([{"objectType": "contextAgent", "agent": agent,
            "relevantTypes": ["http://example.org/types/mentor"]}]);
        v["context"]["contextGroups"] = json!([{"objectType": "contextGroup", "group": group}]);
        statement(&v, "statement").unwrap();
        for (key, bad, field) in [
            (
                "contextAgents",
                json!([{"objectType": "Agent", "agent": agent}]),
                "statement.context.contextAgents[0].objectType",
            ),
            (
                "contextAgents",
                json!([{"objectType": "contextAgent", "agent": {"name": "x"}}]),
                "statement.context.contextAgents[0].agent",
            ),
            (
                "contextAgents",
                json!([{"objectType": "contextAgent", "agent": agent, "relevantTypes": []}]),
                "statement.context.contextAgents[0].relevantTypes",
            ),
            (
                "contextGroups",
                json!([{"objectType": "contextGroup", "group": group, "relevantTypes": ["not an iri"]}]),
                "statement.context.contextGroups[0].relevantTypes[0]",
            ),
        ] {
            let mut v = ok();
            v["context"][key] = bad;
            assert_eq!(error_field(v), field);
        }
    }

    #[test]
    fn an_authority_group_is_an_anonymous_pair() {
        let member = json!({"mbox": "mailto:app@example.org"});
        let mut v = ok();
        v["authority"] = json!({"objectType": "Group", "member": [member, {"account": {"homePage": "http://x.org", "name": "u"}}]});
        statement(&v, "statement").unwrap();
        v["authority"] = json!({"objectType": "Group", "member": [member]});
        assert_eq!(error_field(v.clone()), "statement.authority.member");
        v["authority"] = json!({"objectType": "Group", "mbox": "mailto:g@example.org", "member": [member, member]});
        assert_eq!(error_field(v), "statement.authority");
    }

    #[test]
    fn voiding_needs_a_statement_ref() {
        let mut v = ok();
        v["verb"]["id"] = json!("http://adlnet.gov/expapi/verbs/voided");
        assert_eq!(error_field(v.clone()), "statement.object");
        v["object"] =
            json!({"objectType": "StatementRef", "id": "ec531277-b57b-4c15-8d91-d292c5b2b8f7"});
        v.as_object_mut().unwrap().remove("context");
        statement(&v, "statement").unwrap();
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration_ms("PT12.5S"), Some(12_500));
        assert_eq!(parse_duration_ms("PT1M30S"), Some(90_000));
        assert_eq!(parse_duration_ms("P1DT1H"), Some(90_000_000));
        assert_eq!(parse_duration_ms("P"), None);
        assert_eq!(parse_duration_ms("PT"), None);
        assert_eq!(parse_duration_ms("PT5"), None);
        assert_eq!(parse_duration_ms("PT1S1M"), None);
        assert_eq!(parse_duration_ms("P2W"), Some(14 * 86_400_000));
        assert_eq!(parse_duration_ms("P4W1D"), None);
        assert_eq!(parse_duration_ms("P1DT1H"), Some(90_000_000));
        assert_eq!(parse_duration_ms("P1WT1H"), None);
    }
}
