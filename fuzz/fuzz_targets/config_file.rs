//! The configuration file: any text parses into a configuration or is an error, never a panic.
#![no_main]

use learnpulse_server::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = Config::from_toml(text);
});
