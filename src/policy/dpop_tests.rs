//! DPoP through the requirement tree: one replay record for the filter, so
//! a proof is accepted at most once whichever provider checks it, and a
//! request checking its proof for two providers is not its own replay.

use std::cell::RefCell;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::json;

use super::*;
use crate::fake_shared::FakeSharedData;
use crate::sender::replay::ReplayCache;
use crate::sender::{dpop, replay};
use crate::testutil::{hs_jwks, mint};
use crate::token::native_verify;

const NOW: u64 = 1_700_000_000;
const HTU: &str = "https://api.example.com/orders";

/// Providers `a` and `b`: the same issuer, the same keys, both taking DPoP
/// (with `replay` as their `replay_cache`); `a`'s audience is `a_aud`.
fn cfg(requires: &str, replay: &str, a_aud: &str) -> Config {
    let jwks = serde_json::to_string(&hs_jwks()).unwrap();
    let json = format!(
        r#"{{"providers":{{
            "a":{{"issuer":"iss","audiences":["{a_aud}"],"local_jwks":{{"inline_string":{jwks}}},
                 "dpop":{{"replay_cache":"{replay}"}}}},
            "b":{{"issuer":"iss","audiences":["api"],"local_jwks":{{"inline_string":{jwks}}},
                 "dpop":{{"replay_cache":"{replay}"}}}}
        }},"rules":[{{"match":{{"prefix":"/"}},"requires":{requires}}}]}}"#
    );
    Config::parse(json.as_bytes()).unwrap()
}

fn client_key() -> SigningKey {
    SigningKey::from_slice(&[7u8; 32]).unwrap()
}

fn jwk(sk: &SigningKey) -> serde_json::Value {
    let point = sk.verifying_key().to_sec1_point(false);
    json!({
        "kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    })
}

/// An access token bound to the client key, and one proof for it.
fn token_and_proof() -> (String, String) {
    let sk = client_key();
    let jwk = jwk(&sk);
    let jkt = dpop::thumbprint(jwk.as_object().unwrap()).unwrap();
    let token = mint(&format!(
        r#"{{"iss":"iss","aud":"api","sub":"u1","exp":{},"cnf":{{"jkt":"{jkt}"}}}}"#,
        NOW + 300
    ));
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
    let claims = json!({
        "jti": "one-proof", "htm": "GET", "htu": HTU, "iat": NOW,
        "ath": dpop::access_token_hash(&token),
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig: Signature = sk.sign(input.as_bytes());
    let proof = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()));
    (token, proof)
}

fn request(token: &str, proof: &str) -> RequestView {
    RequestView::new(vec![
        (":path".into(), "/orders".into()),
        (":method".into(), "GET".into()),
        (":scheme".into(), "https".into()),
        (":authority".into(), "api.example.com".into()),
        ("authorization".into(), format!("DPoP {token}")),
        ("dpop".into(), proof.into()),
    ])
}

/// Where the filter keeps seen proofs in one test: this worker's record and
/// the Envoy's shared data.
struct Records {
    local: RefCell<ReplayCache>,
    shared: FakeSharedData,
}

impl Records {
    fn new(c: &Config) -> Records {
        let r = c.dpop_replay.unwrap();
        let shared = FakeSharedData::default();
        assert!(replay::prepare_shared(&shared, &[5; 32]));
        Records {
            local: RefCell::new(ReplayCache::new(r.capacity, r.per_key)),
            shared,
        }
    }

    fn decide(&self, c: &Config, r: &RequestView) -> Decision {
        self.decide_at(c, r, NOW)
    }

    fn decide_at(&self, c: &Config, r: &RequestView, now: u64) -> Decision {
        let mut ev = Evaluator::new(c, &[], r, now, &native_verify);
        ev.shared = Some(&self.shared);
        ev.local_replay = Some(&self.local);
        ev.decide()
    }
}

fn allowed(d: &Decision) -> bool {
    matches!(d, Decision::Allow(_))
}

/// One proof sent four times is accepted once, under `requires_any` and
/// `allow_missing`, with the record per worker and shared alike.
#[test]
fn a_proof_is_accepted_once_whichever_provider_checks_it() {
    let (token, proof) = token_and_proof();
    let any = r#"{"requires_any":{"requirements":[{"provider_name":"a"},{"provider_name":"b"}]}}"#;
    for requires in [any, r#"{"allow_missing":{}}"#] {
        for replay in ["worker", "shared"] {
            let c = cfg(requires, replay, "api");
            let records = Records::new(&c);
            let got: Vec<Decision> = (0..4)
                .map(|_| records.decide(&c, &request(&token, &proof)))
                .collect();
            assert!(allowed(&got[0]), "{requires} {replay}: {got:?}");
            for d in &got[1..] {
                assert_eq!(
                    d,
                    &Decision::Deny(AuthError::DpopReplay),
                    "{requires} {replay}: {got:?}"
                );
            }
        }
    }
}

/// A request whose proof is checked for two providers (`requires_all`; or
/// `requires_any` where `a` verifies the token, records the proof, then
/// fails on the audience and `b` is tried) is not refused as a replay of
/// itself; the next request with the same proof is.
#[test]
fn one_request_checking_its_proof_twice_is_not_its_own_replay() {
    let (token, proof) = token_and_proof();
    let all = r#"{"requires_all":{"requirements":[{"provider_name":"a"},{"provider_name":"b"}]}}"#;
    let any = r#"{"requires_any":{"requirements":[{"provider_name":"a"},{"provider_name":"b"}]}}"#;
    for (requires, a_aud) in [(all, "api"), (any, "other")] {
        for replay in ["worker", "shared"] {
            let c = cfg(requires, replay, a_aud);
            let records = Records::new(&c);
            let first = records.decide(&c, &request(&token, &proof));
            assert!(allowed(&first), "{requires} {replay}: {first:?}");
            assert_eq!(
                records.decide(&c, &request(&token, &proof)),
                Decision::Deny(AuthError::DpopReplay),
                "{requires} {replay}"
            );
        }
    }
}

/// The filter's record is shared unless every DPoP provider asks for a
/// per-worker one, and it is as large as the largest asked for.
#[test]
fn the_filter_has_one_replay_record_sized_by_its_providers() {
    let jwks = serde_json::to_string(&hs_jwks()).unwrap();
    let json = format!(
        r#"{{"providers":{{
            "a":{{"local_jwks":{{"inline_string":{jwks}}},
                 "dpop":{{"replay_cache":"worker","replay_cache_size":500}}}},
            "b":{{"local_jwks":{{"inline_string":{jwks}}},
                 "dpop":{{"replay_cache_size":2000,"replay_cache_per_key":50}}}},
            "c":{{"local_jwks":{{"inline_string":{jwks}}}}}
        }}}}"#
    );
    let c = Config::parse(json.as_bytes()).unwrap();
    assert_eq!(
        c.dpop_replay,
        Some(replay::ReplaySettings {
            scope: replay::ReplayScope::Shared,
            capacity: 2000,
            per_key: 50,
            max_age_secs: 60,
        })
    );
    let c = cfg(r#"{"provider_name":"a"}"#, "worker", "api");
    assert_eq!(
        c.dpop_replay,
        Some(replay::ReplaySettings {
            scope: replay::ReplayScope::Worker,
            capacity: dpop::DEFAULT_REPLAY_ENTRIES,
            per_key: dpop::DEFAULT_REPLAY_ENTRIES / dpop::DEFAULT_PER_KEY_DIVISOR,
            max_age_secs: dpop::DEFAULT_MAX_AGE_SECS,
        })
    );
}

/// A proof accepted by a provider with a short `max_age` stays recorded for
/// as long as another provider with a longer one would still take it.
#[test]
fn a_proof_is_remembered_for_the_longest_max_age_of_the_filter() {
    let (token, proof) = token_and_proof();
    let jwks = serde_json::to_string(&hs_jwks()).unwrap();
    for replay in ["worker", "shared"] {
        let json = format!(
            r#"{{"providers":{{
                "a":{{"issuer":"iss","local_jwks":{{"inline_string":{jwks}}},
                     "dpop":{{"max_age":"10s","replay_cache":"{replay}"}}}},
                "b":{{"issuer":"iss","local_jwks":{{"inline_string":{jwks}}},
                     "dpop":{{"max_age":"120s","replay_cache":"{replay}"}}}}
            }},"rules":[{{"match":{{"prefix":"/"}},"requires":{{"requires_any":{{"requirements":[
                {{"provider_name":"a"}},{{"provider_name":"b"}}]}}}}}}]}}"#
        );
        let c = Config::parse(json.as_bytes()).unwrap();
        let records = Records::new(&c);
        let first = records.decide_at(&c, &request(&token, &proof), NOW);
        assert!(allowed(&first), "{replay}: {first:?}");
        // At NOW + 30 `a` finds the proof too old; `b` would still take it.
        let later = records.decide_at(&c, &request(&token, &proof), NOW + 30);
        assert!(!allowed(&later), "{replay}: {later:?}");
    }
}
