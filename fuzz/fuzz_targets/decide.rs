//! The whole pure decision for one request: a fixed configuration (several
//! providers and locations, requires_any / requires_all / allow_missing*,
//! claim headers, payload header) evaluated by `policy::Evaluator` over
//! arbitrary request headers. Exercises extraction, parsing, claim checks,
//! signature verification and header edits together.
//! Input format: as the `extract` target (see common.rs).
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use jwt_filter::config::Config;
use jwt_filter::extract::RequestView;
use jwt_filter::crypto::jwks::{Alg, Key};
use jwt_filter::policy::Evaluator;
use jwt_filter::token;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

const JWKS: &str = include_str!("../../tests/fixtures/keys/jwks.json");
const NOW: u64 = 1_700_000_000;

fn config() -> Option<&'static Config> {
    static CONFIG: OnceLock<Option<Config>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = |extra: serde_json::Value| {
                let mut p = json!({
                    "issuer": "https://issuer.test",
                    "audiences": ["api"],
                    "local_jwks": {"inline_string": JWKS},
                });
                if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
                    for (k, v) in extra {
                        p.insert(k.clone(), v.clone());
                    }
                }
                p
            };
            let cfg = json!({
                "providers": {
                    "main": provider(json!({
                        "forward_payload_header": "x-jwt-payload",
                        "claim_to_headers": [
                            {"header_name": "x-jwt-sub", "claim_name": "sub"},
                            {"header_name": "x-jwt-team", "claim_name": "org.team"},
                            {"header_name": "x-jwt-roles", "claim_name": "roles"}
                        ]
                    })),
                    "cookie": provider(json!({"from_cookies": ["session"], "max_lifetime": "3600s"})),
                    "query": provider(json!({"from_params": ["jwt"], "require_expiration": true})),
                    "other": provider(json!({
                        "issuer": "https://other.test",
                        "from_headers": [{"name": "x-token", "value_prefix": "Token "}],
                        "forward": true,
                        "pad_forward_payload_header": true,
                        "forward_payload_header": "x-other-payload"
                    }))
                },
                "rules": [
                    {"match": {"prefix": "/public"}},
                    {"match": {"safe_regex": {"regex": "^/re/[0-9]+$"}}, "requires": {"provider_name": "query"}},
                    {"match": {"prefix": "/any"}, "requires": {"requires_any": {"requirements": [
                        {"provider_name": "main"}, {"provider_name": "other"}]}}},
                    {"match": {"prefix": "/all"}, "requires": {"requires_all": {"requirements": [
                        {"provider_name": "main"}, {"provider_name": "cookie"}]}}},
                    {"match": {"prefix": "/amf"}, "requires": {"requires_any": {"requirements": [
                        {"provider_name": "main"}, {"allow_missing_or_failed": {}}]}}},
                    {"match": {"prefix": "/am"}, "requires": {"requires_any": {"requirements": [
                        {"provider_name": "cookie"}, {"allow_missing": {}}]}}},
                    {"match": {"prefix": "/aud"}, "requires": {"provider_and_audiences": {
                        "provider_name": "main", "audiences": ["special"]}}},
                    {"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}
                ],
                "bypass_cors_preflight": true
            });
            Config::parse(cfg.to_string().as_bytes()).ok()
        })
        .as_ref()
}

fn verify(key: &Key, alg: Alg, input: &[u8], sig: &[u8]) -> bool {
    token::native_verify(key, alg, input, sig)
}

fuzz_target!(|data: &[u8]| {
    let Some(cfg) = config() else {
        // The fixed configuration must parse; a failure here is a bug.
        std::process::abort();
    };
    let view = RequestView::new(common::headers(data));
    let mut ev = Evaluator::new(cfg, &[], &view, NOW, &verify);
    let _ = ev.outcome();
});
