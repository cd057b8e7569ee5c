//! An xAPI request body, through everything the edge does to it before storage: JSON parsing,
//! validation, the privacy pipeline under the default policy, completion and the mapping to a
//! learning event. Nothing may panic, and a statement that passed validation must still be
//! valid xAPI once protected and completed (what is stored is what any LRS client can read).
#![no_main]

use learnpulse_privacy::pipeline::{Policy, TenantPrivacy, protect};
use learnpulse_privacy::pseudonym::Pseudonymiser;
use learnpulse_privacy::roster::Roster;
use learnpulse_server::xapi::mapping;
use learnpulse_server::xapi::prepare::{Authority, prepare};
use learnpulse_server::xapi::validate;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|body: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let statements = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    let policy = Policy::default();
    let pseudonymiser = Pseudonymiser::new(1, [7; 32]);
    let roster = Roster::new(["Ada Lovelace"]);
    let tenant = TenantPrivacy {
        policy: &policy,
        pseudonymiser: &pseudonymiser,
        roster: &roster,
    };
    for mut statement in statements {
        if validate::statement(&statement, "statement").is_err() {
            continue;
        }
        if protect(&mut statement, &tenant, |_| None).is_err() {
            continue;
        }
        let authority = Authority {
            key_id: "lpk_fuzz",
            version: "2.0.0",
            now: "2026-12-06T09:30:00Z",
        };
        let prepared = prepare(statement, &authority);
        let stored: Value = serde_json::from_str(&prepared.json).expect("stored JSON parses");
        if let Err(e) = validate::statement(&stored, "stored") {
            panic!(
                "a valid statement became invalid at {}: {}\n{stored}",
                e.field, e.detail
            );
        }
        let _ = mapping::learning_event(&stored);
        let _ = mapping::live_input(&stored);
        let _ = mapping::previous_learner_ids(&stored);
    }
});
