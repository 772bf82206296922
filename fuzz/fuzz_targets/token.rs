//! Token parsing and verification: `token::parse` -> `check_claims` ->
//! `check_audience` -> `verify_signature` against the fixture JWKS (every
//! algorithm, HMAC key included) plus an extra raw HMAC key without kid.
//! Input: the token text (any bytes; non-UTF-8 is decoded lossily, the way a
//! header value could reach the filter).
#![no_main]

use std::sync::OnceLock;

use jwt_filter::crypto::jwks::{Alg, Key, KeySet};
use jwt_filter::token::{self, ClaimRules};
use libfuzzer_sys::fuzz_target;

const JWKS: &str = include_str!("../../tests/fixtures/keys/jwks.json");
const HS_SECRET_B64: &str = include_str!("../../tests/fixtures/keys/hs.secret");
/// Fixed "now" (the seeds are minted with iat = NOW).
const NOW: u64 = 1_700_000_000;

fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (set, _) = KeySet::parse(JWKS).unwrap_or_default();
        let mut keys = set.keys().to_vec();
        let secret = HS_SECRET_B64.trim().as_bytes().to_vec();
        if let Some(k) = Key::from_hmac_secret(None, Some(Alg::HS256), &secret) {
            keys.push(k);
        }
        KeySet::from_keys(keys)
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(jwt) = token::parse(&text) else {
        return;
    };
    for (max_lifetime, require_expiration) in [(None, false), (Some(3600), true)] {
        let rules = ClaimRules {
            issuer: Some("https://issuer.test"),
            clock_skew_secs: 60,
            max_lifetime_secs: max_lifetime,
            require_expiration,
            reject_future_iat: require_expiration,
        };
        let _ = token::check_claims(&jwt, &rules, NOW);
    }
    let _ = token::check_claims(
        &jwt,
        &ClaimRules {
            issuer: None,
            clock_skew_secs: u64::MAX,
            max_lifetime_secs: Some(u64::MAX),
            require_expiration: true,
            reject_future_iat: true,
        },
        u64::MAX,
    );
    let _ = token::check_audience(&jwt.claims, &["api".to_string(), "https://x/".to_string()]);
    let _ = token::verify_signature(&jwt, keys(), &Alg::ALL, token::native_verify);
    let path: Vec<String> = ["org", "team"].iter().map(|s| s.to_string()).collect();
    let _ = token::claim_at(&jwt.claims, &path);
});
