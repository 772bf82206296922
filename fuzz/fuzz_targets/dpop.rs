//! DPoP proofs and the replay record: `dpop::check_proof` on any input (a
//! `DPoP` header value) against a fixed request, with and without a server
//! nonce; then the replay record, per worker and shared, driven by the same
//! bytes: a sequence of (key, jti, expiry, clock step) records, each checked
//! against what the record must answer; and one shared bucket read from any
//! bytes (a shared-data value another VM wrote).
//! Input: the proof text (any bytes, decoded lossily as a header value could
//! be); the same bytes drive the replay record and are the bucket.
#![no_main]

use jwt_filter::sender::{binding, dpop, replay};
use jwt_filter::sender::binding::BindingMode;
use jwt_filter::sender::dpop::{CheckedProof, DpopPolicy, NonceIssuer, ProofContext};
use jwt_filter::sender::replay::{ReplayCache, ReplayScope, ReplaySettings, ReplayVerdict, SharedEntry};
use jwt_filter::fake_shared::FakeSharedData;
use jwt_filter::crypto::jwks::Alg;
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
    let settings = ReplaySettings {
        scope: ReplayScope::Shared,
        capacity: 128,
        per_key: 4,
        max_age_secs: 60,
    };
    let shared = FakeSharedData::default();
    let mut worker = ReplayCache::new(8, 3);
    let mut proofs: Vec<CheckedProof> = Vec::new();
    if let Ok(p) = dpop::check_proof(&text, &policy, &ctx, token::native_verify) {
        proofs.push(p);
    }
    policy.nonce = NonceIssuer::new(b"fuzz-nonce-secret-16".to_vec(), 30);
    if let Ok(p) = dpop::check_proof(&text, &policy, &ctx, token::native_verify) {
        let _ = binding::check_dpop_binding(
            &serde_json::Map::new(),
            BindingMode::Optional,
            dpop::Scheme::Dpop,
            Some(&p),
        );
        proofs.push(p);
    }
    // Before the shared record is prepared every proof is refused.
    let first = CheckedProof {
        jkt: "k".into(),
        jti: text.chars().take(64).collect(),
        iat: NOW,
    };
    assert_eq!(
        replay::record_shared(&shared, &first, NOW + 60, NOW, &settings),
        ReplayVerdict::Unavailable
    );
    let mut secret = [0u8; 32];
    for (s, b) in secret.iter_mut().zip(data) {
        *s = *b;
    }
    assert!(replay::prepare_shared(&shared, &secret));
    // Records driven by the bytes: 4 bytes each (key 0..3, jti, expiry
    // 0..=255 s ahead, clock step 0..=15 s).
    let mut now = NOW;
    proofs.extend(data.chunks_exact(4).take(64).map(|c| CheckedProof {
        jkt: format!("key{}", c[0] % 4),
        jti: format!("j{}", c[1] % 32),
        iat: NOW,
    }));
    for (i, p) in proofs.iter().enumerate() {
        let c = data.get(i * 4..i * 4 + 4).unwrap_or(&[0, 0, 60, 0]);
        now += u64::from(c[3] % 16);
        let forget_at = now + u64::from(c[2]);
        let w = worker.check_and_record(p, forget_at, now);
        assert!(worker.len() <= 8);
        if w == ReplayVerdict::Fresh && forget_at > now {
            assert_eq!(
                worker.check_and_record(p, forget_at, now),
                ReplayVerdict::Replayed
            );
        }
        let s = replay::record_shared(&shared, p, forget_at, now, &settings);
        assert_ne!(s, ReplayVerdict::Unavailable);
        if s == ReplayVerdict::Fresh && forget_at > now {
            assert_eq!(
                replay::record_shared(&shared, p, forget_at, now, &settings),
                ReplayVerdict::Replayed
            );
        }
    }
    // One bucket as any bytes.
    let id = replay::replay_id(&first);
    let entry = SharedEntry {
        id: &id,
        key: replay::key_tag(&first),
        forget_at: NOW + 60,
    };
    if let Ok(bytes) = replay::shared_record(data, &entry, NOW, 16, 4) {
        assert_eq!(
            replay::shared_record(&bytes, &entry, NOW, 16, 4),
            Err(ReplayVerdict::Replayed)
        );
    }
});
