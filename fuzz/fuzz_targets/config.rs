//! Plugin configuration parsing and validation (`Config::parse`), including
//! inline JWKS, regexes, durations and requirement trees.
#![no_main]

use jwt_filter::config::{self, Config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Config::parse(data) {
        Ok(cfg) => {
            for p in &cfg.providers {
                let _ = cfg.provider_by_name(&p.name);
            }
        }
        Err(errors) => {
            let _ = config::describe(&errors);
        }
    }
});
