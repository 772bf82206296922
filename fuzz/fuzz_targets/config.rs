//! Plugin configuration parsing and validation (`Config::parse`), including
//! inline JWKS, regexes, durations and requirement trees.
#![no_main]

use jwt_filter::config::{self, Config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Config::parse(data) {
        Ok(cfg) => {
            // A valid config must describe itself consistently.
            assert!(cfg.rules.len() <= config::MAX_RULES);
            assert!(cfg.providers.len() <= config::MAX_PROVIDERS);
        }
        Err(errors) => {
            let _ = jwt_filter::diag::describe(&errors);
        }
    }
});
