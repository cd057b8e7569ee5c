//! A native events request body (`POST /v1/events`): parsed and checked as the edge does, every
//! event it accepts must become a valid xAPI statement.
#![no_main]

use learnpulse_server::native::statements_of;
use learnpulse_server::xapi::validate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(statements) = statements_of(body) else {
        return;
    };
    for statement in &statements {
        if let Err(e) = validate::statement(statement, "statement") {
            panic!(
                "an accepted native event made an invalid statement at {}: {}\n{statement}",
                e.field, e.detail
            );
        }
    }
});
