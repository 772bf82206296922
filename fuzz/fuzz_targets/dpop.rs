//! DPoP proofs and the shared replay record: `dpop::check_proof` on any
//! input (a `DPoP` header value) against a fixed request, then the replay
//! record on any bucket bytes (a shared-data value another VM wrote).
//! Input: the proof text (any bytes, decoded lossily as a header value could
//! be); the same bytes are the bucket.
#![no_main]

use jwt_filter::dpop::{self, BindingMode, CheckedProof, DpopPolicy, NonceIssuer, ProofContext};
use jwt_filter::jwks::Alg;
use jwt_filter::token;
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut policy = DpopPolicy {
        mode: BindingMode::Required,
        algs: Alg::ALL.iter().copied().filter(|a| !a.is_hmac()).collect(),
        max_age_secs: 60,
        future_skew_secs: 60,
        nonce: None,
    };
    let ctx = ProofContext {
        method: "GET",
        htu: "https://api.example.com/orders",
        access_token: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
        now: NOW,
    };
    let _ = dpop::check_proof(&text, &policy, &ctx, token::native_verify);
    policy.nonce = NonceIssuer::new(b"fuzz-nonce-secret-16".to_vec(), 30);
    if let Ok(p) = dpop::check_proof(&text, &policy, &ctx, token::native_verify) {
        let _ = dpop::check_dpop_binding(&serde_json::Map::new(), BindingMode::Optional, dpop::Scheme::Dpop, Some(&p));
    }
    let proof = CheckedProof {
        jkt: "k".into(),
        jti: text.chars().take(64).collect(),
        iat: NOW,
    };
    let id = dpop::replay_id(&proof);
    let _ = dpop::shared_record(data, &id, NOW + 60, NOW, 16);
});
