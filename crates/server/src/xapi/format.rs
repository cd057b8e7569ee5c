//! The `format` parameter of statement reads: `exact` (as stored), `ids` (only the
//! identifiers of agents, groups, activities and verbs) and `canonical` (language maps reduced
//! to the one language the client prefers, from `Accept-Language`). Pure: applied to each
//! statement on its way out.

use serde_json::{Map, Value};

/// How statements are answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Exact,
    Ids,
    /// With the client's languages, most preferred first.
    Canonical(Vec<String>),
}

impl Format {
    /// The `format` parameter (`exact` when absent) with the request's `Accept-Language`.
    pub fn parse(format: Option<&str>, accept_language: Option<&str>) -> Option<Format> {
        match format.unwrap_or("exact") {
            "exact" => Some(Format::Exact),
            "ids" => Some(Format::Ids),
            "canonical" => Some(Format::Canonical(languages(accept_language.unwrap_or("")))),
            _ => None,
        }
    }

    /// Reformats one statement.
    pub fn apply(&self, statement: &mut Value) {
        if *self != Format::Exact {
            self.statement(statement);
        }
    }

    fn statement(&self, s: &mut Value) {
        for key in ["actor", "authority"] {
            if let Some(a) = s.get_mut(key) {
                self.agent_or_group(a);
            }
        }
        if let Some(v) = s.get_mut("verb") {
            self.verb(v);
        }
        if let Some(o) = s.get_mut("object") {
            match o.get("objectType").and_then(Value::as_str) {
                Some("Agent" | "Group") => self.agent_or_group(o),
                Some("SubStatement") => self.statement(o),
                Some("StatementRef") => {}
                _ => self.activity(o),
            }
        }
        if let Some(Value::Object(context)) = s.get_mut("context") {
            for key in ["instructor", "team"] {
                if let Some(a) = context.get_mut(key) {
                    self.agent_or_group(a);
                }
            }
            if let Some(Value::Object(activities)) = context.get_mut("contextActivities") {
                for list in activities.values_mut() {
                    match list {
                        Value::Array(items) => items.iter_mut().for_each(|a| self.activity(a)),
                        single => self.activity(single),
                    }
                }
            }
            for (key, member) in [("contextAgents", "agent"), ("contextGroups", "group")] {
                if let Some(Value::Array(items)) = context.get_mut(key) {
                    for item in items {
                        if let Some(a) = item.get_mut(member) {
                            self.agent_or_group(a);
                        }
                    }
                }
            }
        }
    }

    fn agent_or_group(&self, a: &mut Value) {
        if *self != Format::Ids {
            return;
        }
        let Value::Object(map) = a else { return };
        let mut kept = Map::new();
        for key in ["objectType", "mbox", "mbox_sha1sum", "openid", "account"] {
            if let Some(v) = map.remove(key) {
                kept.insert(key.into(), v);
            }
        }
        let identified = kept.len() > usize::from(kept.contains_key("objectType"));
        // An anonymous group is identified by its members.
        if !identified && let Some(mut members) = map.remove("member") {
            if let Value::Array(items) = &mut members {
                items.iter_mut().for_each(|m| self.agent_or_group(m));
            }
            kept.insert("member".into(), members);
        }
        *map = kept;
    }

    fn verb(&self, v: &mut Value) {
        match self {
            Format::Ids => keep_only(v, "id"),
            Format::Canonical(languages) => {
                if let Some(display) = v.get_mut("display") {
                    one_language(display, languages);
                }
            }
            Format::Exact => {}
        }
    }

    fn activity(&self, a: &mut Value) {
        match self {
            Format::Ids => keep_only(a, "id"),
            Format::Canonical(languages) => {
                let Some(Value::Object(definition)) = a.get_mut("definition") else {
                    return;
                };
                for key in ["name", "description"] {
                    if let Some(map) = definition.get_mut(key) {
                        one_language(map, languages);
                    }
                }
                for key in ["choices", "scale", "source", "target", "steps"] {
                    if let Some(Value::Array(components)) = definition.get_mut(key) {
                        for c in components {
                            if let Some(d) = c.get_mut("description") {
                                one_language(d, languages);
                            }
                        }
                    }
                }
            }
            Format::Exact => {}
        }
    }
}

fn keep_only(v: &mut Value, key: &str) {
    if let Value::Object(map) = v {
        map.retain(|k, _| k == key);
    }
}

/// The languages of an `Accept-Language` header, most preferred first (`q` weights honoured,
/// `*` and `q=0` dropped).
fn languages(header: &str) -> Vec<String> {
    let mut weighted: Vec<(f32, usize, String)> = header
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.split(';');
            let tag = pieces.next()?.trim();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (!tag.is_empty() && tag != "*" && q > 0.0).then(|| (q, i, tag.to_owned()))
        })
        .collect();
    weighted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    weighted.into_iter().map(|(_, _, tag)| tag).collect()
}

/// Reduces a language map to one entry: the first preferred language it has (exactly, else by
/// its primary subtag), else its first entry.
fn one_language(map: &mut Value, languages: &[String]) {
    let Value::Object(entries) = map else { return };
    if entries.len() <= 1 {
        return;
    }
    let pick = languages
        .iter()
        .find_map(|want| {
            entries
                .keys()
                .find(|k| k.eq_ignore_ascii_case(want))
                .or_else(|| {
                    let primary = want.split('-').next().unwrap_or(want);
                    entries.keys().find(|k| {
                        k.split('-')
                            .next()
                            .is_some_and(|p| p.eq_ignore_ascii_case(primary))
                    })
                })
        })
        .or_else(|| entries.keys().next())
        .cloned();
    if let Some(pick) = pick {
        entries.retain(|k, _| *k == pick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn statement() -> Value {
        json!({
            "id": "x",
            "actor": {"objectType": "Agent", "name": "Ada", "mbox": "mailto:ada@example.org"},
            "verb": {"id": "http://v/answered", "display": {"en-US": "answered", "en-GB": "answered", "fr-FR": "répondu"}},
            "object": {"objectType": "SubStatement",
                "actor": {"objectType": "Group", "name": "G", "mbox": "mailto:g@example.org"},
                "verb": {"id": "http://v/did", "display": {"en-US": "did"}},
                "object": {"objectType": "Activity", "id": "http://a/1",
                    "definition": {"name": {"en-US": "one", "en-GB": "one (GB)"}, "type": "http://t"}}},
            "context": {"team": {"objectType": "Group", "member": [{"name": "B", "mbox": "mailto:b@example.org"}]},
                "contextActivities": {"parent": [{"id": "http://a/p", "definition": {"name": {"en-US": "p"}}}]}}
        })
    }

    #[test]
    fn ids_keep_only_identifiers() {
        let mut s = statement();
        Format::Ids.apply(&mut s);
        assert_eq!(
            s["actor"],
            json!({"objectType": "Agent", "mbox": "mailto:ada@example.org"})
        );
        assert_eq!(s["verb"], json!({"id": "http://v/answered"}));
        assert_eq!(
            s["object"]["actor"],
            json!({"objectType": "Group", "mbox": "mailto:g@example.org"})
        );
        assert_eq!(s["object"]["object"], json!({"id": "http://a/1"}));
        assert_eq!(
            s["context"]["team"],
            json!({"objectType": "Group", "member": [{"mbox": "mailto:b@example.org"}]})
        );
        assert_eq!(
            s["context"]["contextActivities"]["parent"],
            json!([{"id": "http://a/p"}])
        );
    }

    #[test]
    fn canonical_keeps_the_preferred_language() {
        let mut s = statement();
        Format::parse(Some("canonical"), Some("fr;q=0.5, en-GB"))
            .unwrap()
            .apply(&mut s);
        assert_eq!(s["verb"]["display"], json!({"en-GB": "answered"}));
        assert_eq!(
            s["object"]["object"]["definition"]["name"],
            json!({"en-GB": "one (GB)"})
        );
        assert_eq!(s["actor"]["name"], "Ada", "agents are kept whole");
        let mut s = statement();
        Format::parse(Some("canonical"), Some("fr"))
            .unwrap()
            .apply(&mut s);
        assert_eq!(
            s["verb"]["display"],
            json!({"fr-FR": "répondu"}),
            "by primary subtag"
        );
    }

    #[test]
    fn exact_changes_nothing_and_unknown_formats_are_refused() {
        let mut s = statement();
        Format::parse(None, Some("en-GB")).unwrap().apply(&mut s);
        assert_eq!(s, statement());
        assert_eq!(Format::parse(Some("short"), None), None);
    }
}
