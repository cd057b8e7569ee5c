//! The ingest privacy pipeline, as a pure function of one statement and the tenant's privacy
//! settings: consent/age gate → pseudonymise every agent → redact free text → minimise.
//!
//! [`protect`] rewrites a validated xAPI statement (native events arrive as statements too) in
//! place. What comes out is what the event log may hold: pseudonyms instead of identities,
//! placeholders instead of PII, and none of the fields the tenant's policy drops. What the
//! placeholders stood for is returned separately ([`Protected::replaced`]) for the encrypted
//! vault, never written into the statement.
//!
//! The gate never drops an event silently: it either refuses it (the caller answers 403 naming
//! the [`Missing`] consent) or reduces it to an anonymous, text-free event that is marked with
//! [`PRIVACY_EXTENSION`] and feeds no learner profile.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::pseudonym::Pseudonymiser;
use crate::redact::{Redactor, Replaced};
use crate::roster::Roster;

/// `account.homePage` of a pseudonymised agent; its `account.name` is the pseudonym.
pub const PSEUDONYM_HOME: &str = "https://learnpulse.dev/pseudonym";
/// `account.homePage` of the actor of a reduced event: no learner at all.
pub const ANONYMOUS_HOME: &str = "https://learnpulse.dev/anonymous";
/// Context extension recording what the pipeline did that a reader must know (reduction).
pub const PRIVACY_EXTENSION: &str = "https://learnpulse.dev/xapi/privacy";
/// Context extension listing the learner's pseudonyms under older keys, while older keys exist:
/// how the learner engine keeps one history across a key rotation.
pub const PREVIOUS_PSEUDONYMS: &str = "https://learnpulse.dev/xapi/previous-pseudonyms";
/// Extensions whose values are identifiers learnpulse itself defines, never free text.
const OWN_EXTENSIONS: &str = "https://learnpulse.dev/xapi/";

/// GDPR Art. 6 lawful bases. Only `consent` needs a per-learner record before processing.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LawfulBasis {
    Consent,
    Contract,
    LegalObligation,
    VitalInterests,
    PublicTask,
    LegitimateInterests,
}

/// What to do with the event of a learner who lacks a needed consent.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMissingConsent {
    /// Answer 403 naming the missing consent; nothing of the batch is stored.
    Reject,
    /// Store the event without identity or free text, outside every learner profile.
    Reduce,
}

/// A tenant's privacy policy. Every field has a default, so `{}` is a valid policy.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Store learner identities as received instead of pseudonyms (default false). A learner's
    /// FERPA directory opt-out still pseudonymises that learner.
    pub keep_raw_identity: bool,
    /// Replace PII found in free text by placeholders (default true).
    pub redact_free_text: bool,
    /// Keep what each placeholder replaced, encrypted under the tenant's vault key, for a `dpo`
    /// to re-identify (default false).
    pub vault: bool,
    /// The GDPR lawful basis the school processes learner data under (default `public_task`).
    pub lawful_basis: LawfulBasis,
    pub on_missing_consent: OnMissingConsent,
    /// JSON Pointers (RFC 6901) of statement fields never stored, e.g. `/context/platform`.
    pub drop_fields: Vec<String>,
    /// Roles that may see cognitive data (load, its signals and the risk reasons built on it).
    pub cognitive_data_roles: Vec<String>,
    /// Roles that see learners' display names (from the roster) for the learners their key
    /// may see (default `teacher`: the teacher of record). Everyone else sees pseudonyms.
    pub display_name_roles: Vec<String>,
    /// Cohorts of fewer learners than this are suppressed in analytics.
    pub k_anonymity: u32,
    /// Total differential-privacy budget (ε) of each analyst.
    pub dp_epsilon_per_analyst: f64,
    /// Days events are kept (at most 36,500; 0 keeps nothing); absent: no limit set (the
    /// compliance report says so).
    #[cfg_attr(feature = "openapi", schema(maximum = 36500))]
    pub retention_days: Option<u32>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            keep_raw_identity: false,
            redact_free_text: true,
            vault: false,
            lawful_basis: LawfulBasis::PublicTask,
            on_missing_consent: OnMissingConsent::Reject,
            drop_fields: Vec::new(),
            cognitive_data_roles: vec!["teacher".into(), "tutor".into()],
            display_name_roles: vec!["teacher".into()],
            k_anonymity: 5,
            dp_epsilon_per_analyst: 10.0,
            retention_days: None,
        }
    }
}

/// The longest retention a policy can set (a hundred years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// Statement fields no policy may drop: without them the statement is not an xAPI statement.
const REQUIRED: [&str; 6] = [
    "/actor",
    "/verb",
    "/object",
    "/id",
    "/timestamp",
    "/authority",
];

impl Policy {
    /// Checks the policy; an error names the field.
    pub fn check(&self) -> Result<(), (String, String)> {
        for (i, pointer) in self.drop_fields.iter().enumerate() {
            let field = format!("drop_fields[{i}]");
            if !pointer.starts_with('/') || pointer.len() < 2 {
                return Err((
                    field,
                    "must be a JSON Pointer such as /context/platform".into(),
                ));
            }
            if REQUIRED
                .iter()
                .any(|r| pointer == r || pointer.starts_with(&format!("{r}/")))
                && !pointer.starts_with("/object/definition")
            {
                return Err((
                    field,
                    format!("{pointer} is required by xAPI and cannot be dropped"),
                ));
            }
        }
        if !(self.dp_epsilon_per_analyst.is_finite() && self.dp_epsilon_per_analyst >= 0.0) {
            return Err((
                "dp_epsilon_per_analyst".into(),
                "must be a non-negative number".into(),
            ));
        }
        // Beyond this the cut-off in microseconds no longer fits: a retention of billions of days
        // must not turn into a cut-off in the future that purges everything.
        if self.retention_days.is_some_and(|d| d > MAX_RETENTION_DAYS) {
            return Err((
                "retention_days".into(),
                format!("at most {MAX_RETENTION_DAYS} days"),
            ));
        }
        Ok(())
    }
}

/// What the tenant knows about one learner's consents and age, keyed by pseudonym.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsentRecord {
    /// GDPR consent: `true` given, `false` refused or withdrawn, absent if never asked.
    pub gdpr_consent: Option<bool>,
    /// The learner is under 13 (COPPA); absent if the platform has not said.
    pub under_13: Option<bool>,
    /// A parent's consent was verified (COPPA, 16 CFR 312.5).
    pub parental_consent_verified: bool,
    /// The learner (or parent) opted out of directory information (FERPA, 34 CFR 99.37).
    pub directory_opt_out: bool,
    /// Processing is restricted (GDPR Art. 18; the compliance monitor's quarantine): new
    /// events are refused or reduced, and the learner's state is not shown.
    pub processing_restricted: bool,
}

/// A consent the policy needs and the learner lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// The learner withdrew (or refused) GDPR consent: no basis to process, whatever the policy's.
    GdprConsentWithdrawn,
    /// The policy's lawful basis is consent and none is recorded.
    GdprConsent,
    /// An under-13 learner without verified parental consent (COPPA).
    CoppaParentalConsent,
    /// Processing of the learner's data is restricted (quarantine).
    ProcessingRestricted,
}

impl Missing {
    pub fn name(self) -> &'static str {
        match self {
            Missing::GdprConsentWithdrawn => "gdpr_consent_withdrawn",
            Missing::GdprConsent => "gdpr_consent",
            Missing::CoppaParentalConsent => "coppa_parental_consent",
            Missing::ProcessingRestricted => "processing_restricted",
        }
    }

    pub fn explain(self) -> &'static str {
        match self {
            Missing::GdprConsentWithdrawn => {
                "the learner withdrew GDPR consent (Art. 7(3)); their events cannot be processed"
            }
            Missing::GdprConsent => {
                "the tenant processes under GDPR consent (Art. 6(1)(a)) and none is recorded for this learner"
            }
            Missing::CoppaParentalConsent => {
                "the learner is under 13 and no verified parental consent is recorded (COPPA, 16 CFR 312.5)"
            }
            Missing::ProcessingRestricted => {
                "processing of the learner's data is restricted (GDPR Art. 18); lift the restriction first"
            }
        }
    }
}

/// The consents `policy` needs that `record` lacks, most serious first.
pub fn gate(policy: &Policy, record: Option<&ConsentRecord>) -> Vec<Missing> {
    let record = record.cloned().unwrap_or_default();
    let mut missing = Vec::new();
    if record.processing_restricted {
        missing.push(Missing::ProcessingRestricted);
    }
    match record.gdpr_consent {
        Some(false) => missing.push(Missing::GdprConsentWithdrawn),
        None if policy.lawful_basis == LawfulBasis::Consent => missing.push(Missing::GdprConsent),
        _ => {}
    }
    if record.under_13 == Some(true) && !record.parental_consent_verified {
        missing.push(Missing::CoppaParentalConsent);
    }
    missing
}

/// A tenant's privacy settings, as [`protect`] needs them.
pub struct TenantPrivacy<'a> {
    pub policy: &'a Policy,
    pub pseudonymiser: &'a Pseudonymiser,
    pub roster: &'a Roster,
}

/// What [`protect`] did to one statement.
#[derive(Debug, Default, PartialEq)]
pub struct Protected {
    /// The actor's pseudonym under the current key, when the actor is an agent.
    pub learner: Option<String>,
    /// The consents the event lacked, when it was reduced.
    pub reduced: Vec<Missing>,
    /// What each placeholder in the statement replaced (for the vault).
    pub replaced: Vec<Replaced>,
}

/// The refusal of an event: the consent it lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(pub Missing);

/// The identity of an agent, as the platform knows the learner: the account name, else the
/// e-mail address, else the other identifier. Groups have none.
pub fn agent_identity(agent: &Value) -> Option<&str> {
    if agent.get("objectType").and_then(Value::as_str) == Some("Group") {
        return None;
    }
    if let Some(name) = agent
        .get("account")
        .and_then(|a| a.get("name"))
        .and_then(Value::as_str)
    {
        return Some(name);
    }
    if let Some(mbox) = agent.get("mbox").and_then(Value::as_str) {
        return Some(mbox.trim_start_matches("mailto:"));
    }
    ["mbox_sha1sum", "openid"]
        .iter()
        .find_map(|k| agent.get(*k).and_then(Value::as_str))
}

/// Is this agent the anonymous actor of a reduced event?
pub fn is_anonymous(agent: &Value) -> bool {
    agent
        .get("account")
        .and_then(|a| a.get("homePage"))
        .and_then(Value::as_str)
        == Some(ANONYMOUS_HOME)
}

fn is_pseudonym(agent: &Value) -> bool {
    agent
        .get("account")
        .and_then(|a| a.get("homePage"))
        .and_then(Value::as_str)
        == Some(PSEUDONYM_HOME)
}

/// Runs the pipeline on one statement. `consent` looks a learner up by any of their pseudonyms
/// (oldest key first, current last).
pub fn protect<'c>(
    statement: &mut Value,
    tenant: &TenantPrivacy<'_>,
    consent: impl Fn(&[String]) -> Option<&'c ConsentRecord>,
) -> Result<Protected, Refused> {
    let policy = tenant.policy;
    let mut protected = Protected::default();
    let mut record = None;
    let mut pseudonyms = Vec::new();
    if let Some(actor) = statement.get("actor") {
        if is_pseudonym(actor) {
            // Already a pseudonym (a platform replaying learnpulse's own export, say).
            pseudonyms.extend(agent_identity(actor).map(str::to_owned));
        } else if let Some(identity) = agent_identity(actor) {
            pseudonyms = tenant.pseudonymiser.all(identity);
        }
    }
    if !pseudonyms.is_empty() {
        record = consent(&pseudonyms);
        let missing = gate(policy, record);
        if let Some(first) = missing.first() {
            match policy.on_missing_consent {
                OnMissingConsent::Reject => return Err(Refused(*first)),
                OnMissingConsent::Reduce => {
                    reduce(statement, &missing);
                    protected.reduced = missing;
                    return Ok(protected);
                }
            }
        }
    }

    let opted_out = record.is_some_and(|r| r.directory_opt_out);
    if !policy.keep_raw_identity || opted_out {
        pseudonymise_agents(statement, tenant.pseudonymiser, pseudonyms.last());
        if pseudonyms.len() > 1 {
            let previous = &pseudonyms[..pseudonyms.len() - 1];
            context_extensions(statement).insert(PREVIOUS_PSEUDONYMS.into(), json!(previous));
        }
    }
    protected.learner = pseudonyms.last().cloned();

    if policy.redact_free_text {
        let mut redactor = Redactor::default();
        for_each_free_text(statement, &mut |text| {
            // One or two characters ("b", "42") are an answer choice, not personal data.
            if text.len() <= 2 && tenant.roster.is_empty() {
                return None;
            }
            let found = crate::find(text, Some(tenant.roster));
            (!found.is_empty() || !redactor.knows_nothing())
                .then(|| redactor.redact_found(text, &found))
        });
        protected.replaced = redactor.into_replaced();
    }
    for pointer in &policy.drop_fields {
        remove_pointer(statement, pointer);
    }
    Ok(protected)
}

/// Reduces a statement to what may be kept without the learner's consent: who did it, what they
/// wrote and who they worked with are removed; the verb, the activity, the outcome and the time
/// stay, marked as reduced.
fn reduce(statement: &mut Value, missing: &[Missing]) {
    let anonymous = json!({"objectType": "Agent", "account": {"homePage": ANONYMOUS_HOME, "name": "anonymous"}});
    statement["actor"] = anonymous.clone();
    if let Some(object) = statement.get_mut("object")
        && matches!(
            object.get("objectType").and_then(Value::as_str),
            Some("Agent" | "Group" | "SubStatement")
        )
    {
        *object = json!({"objectType": "Agent", "account": {"homePage": ANONYMOUS_HOME, "name": "anonymous"}});
    }
    if let Some(result) = statement.get_mut("result").and_then(Value::as_object_mut) {
        result.remove("response");
        result.remove("extensions");
    }
    if let Some(context) = statement.get_mut("context").and_then(Value::as_object_mut) {
        for who in ["instructor", "team", "contextAgents", "contextGroups"] {
            context.remove(who);
        }
        context.remove("extensions");
    }
    let reasons: Vec<&str> = missing.iter().map(|m| m.name()).collect();
    context_extensions(statement).insert(
        PRIVACY_EXTENSION.into(),
        json!({"reduced": true, "missing_consent": reasons}),
    );
}

fn context_extensions(statement: &mut Value) -> &mut Map<String, Value> {
    let root = statement.as_object_mut().expect("statements are objects");
    let context = root
        .entry("context")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("validated context is an object");
    context
        .entry("extensions")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("validated extensions are objects")
}

/// Replaces an agent's identifiers (and its name, which is directory information) by its
/// pseudonym; a group keeps its own identity (a class is not a person) but its members are
/// pseudonymised.
pub fn pseudonymise_agent(agent: &mut Value, pseudonymiser: &Pseudonymiser) {
    if is_pseudonym(agent) || is_anonymous(agent) {
        return;
    }
    if agent.get("objectType").and_then(Value::as_str) == Some("Group") {
        if let Some(members) = agent.get_mut("member").and_then(Value::as_array_mut) {
            for member in members {
                pseudonymise_agent(member, pseudonymiser);
            }
        }
        return;
    }
    if let Some(identity) = agent_identity(agent) {
        let pseudonym = pseudonymiser.pseudonym(identity);
        *agent = json!({"objectType": "Agent", "account": {"homePage": PSEUDONYM_HOME, "name": pseudonym}});
    }
}

/// Pseudonymises every agent of the statement; `actor_pseudonym`, when known, is the actor's
/// (computed once for the consent lookup, not again here).
fn pseudonymise_agents(
    statement: &mut Value,
    pseudonymiser: &Pseudonymiser,
    actor_pseudonym: Option<&String>,
) {
    if let Some(actor) = statement.get_mut("actor") {
        match actor_pseudonym {
            Some(p)
                if !is_pseudonym(actor)
                    && !is_anonymous(actor)
                    && agent_identity(actor).is_some() =>
            {
                *actor = json!({"objectType": "Agent", "account": {"homePage": PSEUDONYM_HOME, "name": p}});
            }
            _ => pseudonymise_agent(actor, pseudonymiser),
        }
    }
    if let Some(object) = statement.get_mut("object") {
        match object.get("objectType").and_then(Value::as_str) {
            Some("Agent" | "Group") => pseudonymise_agent(object, pseudonymiser),
            Some("SubStatement") => pseudonymise_agents(object, pseudonymiser, None),
            _ => {}
        }
    }
    // The LRS writes its own authority at completion; one sent by the client is not trusted
    // to be free of identities either.
    if let Some(authority) = statement.get_mut("authority") {
        pseudonymise_agent(authority, pseudonymiser);
    }
    if let Some(context) = statement.get_mut("context") {
        for key in ["instructor", "team"] {
            if let Some(agent) = context.get_mut(key) {
                pseudonymise_agent(agent, pseudonymiser);
            }
        }
        // xAPI 2.0: `contextAgents[].agent` and `contextGroups[].group`.
        for (list, key) in [("contextAgents", "agent"), ("contextGroups", "group")] {
            if let Some(entries) = context.get_mut(list).and_then(Value::as_array_mut) {
                for entry in entries {
                    if let Some(agent) = entry.get_mut(key) {
                        pseudonymise_agent(agent, pseudonymiser);
                    }
                }
            }
        }
    }
}

/// Calls `redact` on every free-text field (the response and the string values of extensions,
/// nested ones included, other than learnpulse's own), replacing the text when it returns one.
pub fn for_each_free_text(statement: &mut Value, redact: &mut impl FnMut(&str) -> Option<String>) {
    fn strings(value: &mut Value, redact: &mut impl FnMut(&str) -> Option<String>) {
        match value {
            Value::String(text) => {
                if let Some(clean) = redact(text) {
                    *text = clean;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| strings(v, redact)),
            Value::Object(map) => map.values_mut().for_each(|v| strings(v, redact)),
            _ => {}
        }
    }
    fn extensions(parent: Option<&mut Value>, redact: &mut impl FnMut(&str) -> Option<String>) {
        if let Some(map) = parent
            .and_then(|p| p.get_mut("extensions"))
            .and_then(Value::as_object_mut)
        {
            for (key, value) in map.iter_mut() {
                if !key.starts_with(OWN_EXTENSIONS) {
                    strings(value, redact);
                }
            }
        }
    }
    if let Some(result) = statement.get_mut("result") {
        if let Some(response) = result.get_mut("response") {
            strings(response, redact);
        }
        extensions(Some(result), redact);
    }
    extensions(statement.get_mut("context"), redact);
    if let Some(object) = statement.get_mut("object")
        && object.get("objectType").and_then(Value::as_str) == Some("SubStatement")
    {
        for_each_free_text(object, redact);
    }
}

/// Removes the field at a JSON Pointer, if present.
fn remove_pointer(value: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    let parent = if parent.is_empty() {
        Some(value)
    } else {
        value.pointer_mut(parent)
    };
    match parent {
        Some(Value::Object(map)) => {
            map.remove(&last);
        }
        Some(Value::Array(items)) => {
            if let Ok(i) = last.parse::<usize>()
                && i < items.len()
            {
                items.remove(i);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
