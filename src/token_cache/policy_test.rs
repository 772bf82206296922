//! The cache wired into `policy::Evaluator`: hits skip the signature but not
//! the claim checks, and only verified tokens are stored.

use std::cell::Cell;
use std::rc::Rc;

use crate::config::Config;
use crate::crypto::jwks::{Alg, Key, KeySet};
use crate::decision::Decision;
use crate::error::AuthError;
use crate::extract::RequestView;
use crate::keys::ProviderState;
use crate::policy::{Evaluator, RemoteKeys};
use crate::testutil::{hs_jwks, mint};
use crate::token::native_verify;

const NOW: u64 = 1_700_000_000;

fn cfg(extra: &str) -> Config {
    let jwks = serde_json::to_string(&hs_jwks()).unwrap();
    let json = format!(
        r#"{{"providers":{{"a":{{"issuer":"iss-a","audiences":["api"],"clock_skew_seconds":0,
            "local_jwks":{{"inline_string":{jwks}}}{extra}}}}},
           "rules":[{{"match":{{"prefix":"/"}},"requires":{{"provider_name":"a"}}}}]}}"#
    );
    Config::parse(json.as_bytes()).unwrap()
}

fn req(token: &str) -> RequestView {
    RequestView::new(vec![
        (":path".into(), "/".into()),
        ("authorization".into(), format!("Bearer {token}")),
    ])
}

fn caches(c: &Config) -> Vec<ProviderState> {
    ProviderState::for_config(c, Vec::new())
}

/// Decides with the cache and a verifier that counts its calls.
fn decide(
    c: &Config,
    cache: &[ProviderState],
    t: &str,
    now: u64,
    calls: &Cell<u32>,
) -> (Decision, (u32, u32)) {
    let verify = |k: &Key, a: Alg, i: &[u8], s: &[u8]| {
        calls.set(calls.get() + 1);
        native_verify(k, a, i, s)
    };
    let view = req(t);
    let mut ev = Evaluator::new(c, cache, &view, now, &verify);
    let d = ev.decide();
    (d, ev.cache_counts())
}

#[test]
fn second_request_hits_and_skips_the_signature() {
    let c = cfg("");
    assert_eq!(c.providers[0].jwt_cache_size, super::DEFAULT_ENTRIES);
    let cache = caches(&c);
    let calls = Cell::new(0);
    let t = mint(&format!(
        r#"{{"iss":"iss-a","aud":"api","sub":"u1","exp":{}}}"#,
        NOW + 60
    ));
    let (d1, n1) = decide(&c, &cache, &t, NOW, &calls);
    assert!(matches!(d1, Decision::Allow(_)), "{d1:?}");
    assert_eq!((n1, calls.get()), ((0, 1), 1));
    let (d2, n2) = decide(&c, &cache, &t, NOW, &calls);
    assert_eq!(d1, d2, "same headers on a hit");
    assert_eq!((n2, calls.get()), ((1, 0), 1));
}

#[test]
fn claim_checks_still_run_on_a_hit() {
    let c = cfg("");
    let cache = caches(&c);
    let calls = Cell::new(0);
    let t = mint(&format!(
        r#"{{"iss":"iss-a","aud":"api","exp":{},"nbf":{}}}"#,
        NOW + 10,
        NOW - 10
    ));
    assert!(matches!(
        decide(&c, &cache, &t, NOW, &calls).0,
        Decision::Allow(_)
    ));
    // Expired while cached (skew 0): denied, and the entry is gone.
    let (d, _) = decide(&c, &cache, &t, NOW + 11, &calls);
    assert_eq!(d, Decision::Deny(AuthError::Expired));
    assert!(cache[0].cache.borrow().is_empty());
    // Not yet valid at an earlier time, even though cached.
    assert!(matches!(
        decide(&c, &cache, &t, NOW, &calls).0,
        Decision::Allow(_)
    ));
    let (d, n) = decide(&c, &cache, &t, NOW - 11, &calls);
    assert_eq!((d, n), (Decision::Deny(AuthError::NotYetValid), (1, 0)));
}

#[test]
fn failures_are_never_cached() {
    let c = cfg("");
    let cache = caches(&c);
    let calls = Cell::new(0);
    let good = mint(&format!(
        r#"{{"iss":"iss-a","aud":"api","exp":{}}}"#,
        NOW + 60
    ));
    let bad_sig = format!("{}AAAA", &good[..good.len() - 4]);
    let wrong_aud = mint(&format!(
        r#"{{"iss":"iss-a","aud":"other","exp":{}}}"#,
        NOW + 60
    ));
    let wrong_iss = mint(&format!(
        r#"{{"iss":"iss-b","aud":"api","exp":{}}}"#,
        NOW + 60
    ));
    for _ in 0..2 {
        assert_eq!(
            decide(&c, &cache, &bad_sig, NOW, &calls).0,
            Decision::Deny(AuthError::BadSignature)
        );
        assert_eq!(
            decide(&c, &cache, &wrong_iss, NOW, &calls).0,
            Decision::Deny(AuthError::Issuer)
        );
    }
    assert!(cache[0].cache.borrow().is_empty());
    // A verified token with the wrong audience is cached (the signature is
    // fine) but still denied on every hit: audience is per requirement.
    for _ in 0..2 {
        assert_eq!(
            decide(&c, &cache, &wrong_aud, NOW, &calls).0,
            Decision::Deny(AuthError::Audience)
        );
    }
}

#[test]
fn disabled_and_sized_by_config() {
    let c = cfg(r#","jwt_cache_config":{"disabled":true}"#);
    assert_eq!(c.providers[0].jwt_cache_size, 0);
    let cache = caches(&c);
    let calls = Cell::new(0);
    let t = mint(&format!(
        r#"{{"iss":"iss-a","aud":"api","exp":{}}}"#,
        NOW + 60
    ));
    decide(&c, &cache, &t, NOW, &calls);
    let (_, n) = decide(&c, &cache, &t, NOW, &calls);
    assert_eq!((n, calls.get()), ((0, 0), 2));
    assert_eq!(
        cfg(r#","jwt_cache_config":{"jwt_cache_size":7}"#).providers[0].jwt_cache_size,
        7
    );
    assert_eq!(
        cfg(r#","jwt_cache_config":{"jwt_cache_size":0}"#).providers[0].jwt_cache_size,
        100
    );
    let too_big = format!(
        r#"{{"providers":{{"a":{{"local_jwks":{{"inline_string":{}}},"jwt_cache_config":{{"jwt_cache_size":100001}}}}}}}}"#,
        serde_json::to_string(&hs_jwks()).unwrap()
    );
    assert!(Config::parse(too_big.as_bytes()).is_err());
    assert!(Config::parse(br#"{"host_crypto":false}"#).is_ok_and(|c| !c.host_crypto));
    assert!(Config::parse(b"{}").is_ok_and(|c| c.host_crypto));
}

#[test]
fn new_remote_keys_invalidate() {
    // A remote provider: entries are bound to the installed key set.
    let json = r#"{"providers":{"r":{"issuer":"iss-a","clock_skew_seconds":0,"allowed_algorithms":["RS256"],
        "remote_jwks":{"http_uri":{"uri":"https://idp.test/jwks","cluster":"idp"}}}},
        "rules":[{"match":{"prefix":"/"},"requires":{"provider_name":"r"}}]}"#;
    let c = Config::parse(json.as_bytes()).unwrap();
    let mut providers = caches(&c);
    let keys = |t: &str| {
        let (set, _) = KeySet::parse(crate::testutil::FIXTURE_JWKS).unwrap();
        let _ = t;
        Rc::new(set)
    };
    let v1 = RemoteKeys::Ready(keys("v1"));
    // A token signed by nobody: the verifier is faked to accept everything.
    let t = {
        use crate::testutil::b64;
        format!(
            "{}.{}.{}",
            b64(br#"{"alg":"RS256","kid":"rsa-a"}"#),
            b64(format!(r#"{{"iss":"iss-a","exp":{}}}"#, NOW + 60).as_bytes()),
            b64(&[1; 256])
        )
    };
    let yes = |_: &Key, _: Alg, _: &[u8], _: &[u8]| true;
    let mut run = |remote: &RemoteKeys| {
        providers[0].keys = remote.clone();
        let view = req(&t);
        let mut ev = Evaluator::new(&c, &providers, &view, NOW, &yes);
        let d = ev.decide();
        (matches!(d, Decision::Allow(_)), ev.cache_counts())
    };
    assert_eq!(run(&v1), (true, (0, 1)));
    assert_eq!(run(&v1), (true, (1, 0)));
    let v2 = RemoteKeys::Ready(keys("v2"));
    assert_eq!(run(&v2), (true, (0, 1)), "new key set: miss");
    // Keys unavailable: no lookup at all, the usual denial.
    let (ok, n) = run(&RemoteKeys::Unavailable);
    assert_eq!((ok, n), (false, (0, 0)));
}
