//! The remote-key lifecycle against a fake host: one Envoy's shared data,
//! an identity provider whose answers each test scripts, and a clock the
//! test moves. Every fault the integration tests run in the real Envoy
//! (IdP down, slow, 500, oversized, unknown kid, rotation, discovery
//! failure, waiter timeout) is here too, with exact timings.

use crate::keys::store;
use std::rc::Rc;

use super::*;
use crate::crypto::jwks::{Alg, Key};
use crate::decision::Decision;
use crate::error::AuthError;
use crate::metrics::{stat_name, KeySourceKind, Layout, Metrics};
use crate::policy::Evaluator;
use crate::test_host::FakeHost;
use crate::testutil::{b64, FIXTURE_JWKS};

const T0: u64 = 1_700_000_000_000;

/// `jwks_fetches_total{provider="idp",result=...}`.
fn fetches(result: &str) -> String {
    stat_name(
        "jwt_filter",
        "jwks_fetches_total",
        &[("provider", "idp"), ("result", result)],
    )
}

/// `jwks_keys{provider="idp",key_source="remote"}`.
fn keys_gauge() -> String {
    let labels = [("provider", "idp"), ("key_source", "remote")];
    stat_name("jwt_filter", "jwks_keys", &labels)
}

/// The fixture JWKS cut down to these kids.
fn jwks(kids: &[&str]) -> String {
    let all: serde_json::Value = serde_json::from_str(FIXTURE_JWKS).unwrap();
    let keys: Vec<_> = all["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| kids.contains(&k["kid"].as_str().unwrap_or("")))
        .cloned()
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// A config with one remote provider `idp`; `extra` adds `remote_jwks` members.
fn config(extra: &str) -> Rc<Config> {
    let extra = if extra.contains("cache_duration") {
        extra.to_string()
    } else {
        format!(r#","cache_duration":"600s"{extra}"#)
    };
    let json = format!(
        r#"{{"providers":{{"idp":{{"issuer":"https://issuer.test","audiences":["api"],
            "remote_jwks":{{"http_uri":{{"uri":"http://idp.test/.well-known/jwks.json",
            "cluster":"jwks","timeout":"1s"}}{extra}}}}}}},
           "rules":[{{"match":{{"prefix":"/"}},"requires":{{"provider_name":"idp"}}}}]}}"#
    );
    Rc::new(Config::parse(json.as_bytes()).unwrap())
}

/// A VM of the fake Envoy.
fn vm(host: &mut FakeHost, config: &Rc<Config>, root_id: u32) -> KeyLifecycle {
    let layout = Layout {
        providers: vec![("idp", KeySourceKind::Remote)],
        rules: vec![None],
        ..Layout::default()
    };
    let (_, metrics) = Metrics::define(host, &config.stat_prefix, &layout);
    let owner = unique_owner_id(host, root_id, T0);
    KeyLifecycle::new(config.clone(), metrics, owner)
}

/// A token for `idp` with this `kid`; the tests' verifier accepts any
/// signature, so the decision turns on the key lookup alone.
fn token(kid: &str) -> String {
    format!(
        "{}.{}.{}",
        b64(format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#).as_bytes()),
        b64(format!(
            r#"{{"iss":"https://issuer.test","aud":"api","exp":{}}}"#,
            T0 / 1000 + 3600
        )
        .as_bytes()),
        b64(&[1; 256])
    )
}

fn request(kid: &str) -> RequestView {
    RequestView::new(vec![
        (":path".into(), "/x".into()),
        ("authorization".into(), format!("Bearer {}", token(kid))),
    ])
}

/// What the policy decides with this VM's keys, and the waits it reports.
fn decide(
    keys: &KeyLifecycle,
    config: &Config,
    view: &RequestView,
    now: u64,
) -> (Decision, Vec<(usize, Wait)>) {
    let yes = |_: &Key, _: Alg, _: &[u8], _: &[u8]| true;
    let mut ev = Evaluator::new(config, keys.providers(), view, now / 1000, &yes);
    let d = ev.decide();
    (d, std::mem::take(&mut ev.waits))
}

/// A new request as the glue runs it: look for keys, decide, settle (park a
/// denial a fetch could change). `Err(Parked)`: it waits; `Err(Deny(e))`: the
/// parking bounds turned the denial into `e`.
fn arrive(
    host: &mut FakeHost,
    keys: &mut KeyLifecycle,
    config: &Config,
    id: u32,
    kid: &str,
    now: u64,
) -> Result<Decision, ParkResult> {
    keys.before_decide(host, now);
    let view = request(kid);
    let yes = |_: &Key, _: Alg, _: &[u8], _: &[u8]| true;
    let mut ev = Evaluator::new(config, keys.providers(), &view, now / 1000, &yes);
    let mut outcome = ev.outcome();
    let waits = std::mem::take(&mut ev.waits);
    let before = format!("{:?}", outcome.decision);
    match keys.settle(host, now, id, &view, Some(100), &mut outcome, &waits, None) {
        Settled::Park => Err(ParkResult::Parked),
        Settled::DecideAgain => Ok(decide(keys, config, &view, now).0),
        Settled::Apply if format!("{:?}", outcome.decision) != before => match outcome.decision {
            Decision::Deny(e) => Err(ParkResult::Deny(e)),
            other => Ok(other),
        },
        Settled::Apply => Ok(outcome.decision),
    }
}

/// Delivers the response set with `FakeHost::answer` for call `token`.
fn deliver(keys: &mut KeyLifecycle, host: &mut FakeHost, now: u64, token: u32) -> Vec<Parked> {
    let size = host.body.len();
    keys.on_fetch_response(host, now, token, size)
}

fn allowed(d: &Decision) -> bool {
    matches!(d, Decision::Allow(_))
}

fn state(keys: &KeyLifecycle) -> &RemoteKeys {
    &keys.providers()[0].keys
}

/// Configures, ticks once and answers the first fetch with `kids`.
fn ready(host: &mut FakeHost, config: &Rc<Config>, kids: &[&str]) -> KeyLifecycle {
    let mut keys = vm(host, config, 1);
    assert_eq!(keys.first_tick_ms(), Some(FIRST_TICK_MS));
    keys.on_tick(host, T0);
    let (token, req) = host.last_fetch();
    assert_eq!(req.path, "/.well-known/jwks.json");
    assert_eq!(req.authority, "idp.test");
    assert_eq!(req.cluster, "jwks");
    host.answer(Some("200"), &jwks(kids));
    deliver(&mut keys, host, T0 + 10, token);
    assert!(matches!(state(&keys), RemoteKeys::Ready(_)));
    keys
}

#[test]
fn first_fetch_installs_keys_and_moves_the_gauges() {
    let mut host = FakeHost::default();
    let c = config("");
    let keys = ready(&mut host, &c, &["rsa-a"]);
    assert_eq!(host.calls.len(), 1);
    assert!(host.logged(
        "provider idp: fetched 1 key(s) from http://idp.test/.well-known/jwks.json (version 1)"
    ));
    assert_eq!(host.counter(&fetches("success")), 1);
    assert_eq!(host.gauge(&keys_gauge()), Some(1));
    assert!(allowed(&decide(&keys, &c, &request("rsa-a"), T0 + 20).0));
}

#[test]
fn each_provider_counts_its_own_fetches_and_keys() {
    let json = r#"{"providers":{
        "idp":{"issuer":"https://issuer.test","remote_jwks":{"http_uri":{
            "uri":"http://idp.test/jwks","cluster":"jwks","timeout":"1s"},"cache_duration":"600s"}},
        "other":{"issuer":"https://other.test","remote_jwks":{"http_uri":{
            "uri":"http://other.test/jwks","cluster":"jwks","timeout":"1s"},"cache_duration":"600s"}}},
        "rules":[{"match":{"prefix":"/"}}]}"#;
    let c = Rc::new(Config::parse(json.as_bytes()).unwrap());
    let mut host = FakeHost::default();
    let layout = Layout {
        providers: vec![
            ("idp", KeySourceKind::Remote),
            ("other", KeySourceKind::Remote),
        ],
        rules: vec![None],
        ..Layout::default()
    };
    let (_, ids) = Metrics::define(&mut host, &c.stat_prefix, &layout);
    let mut keys = KeyLifecycle::new(c.clone(), ids, 1);
    keys.on_tick(&mut host, T0);
    let call = |uri: &str| {
        host.calls
            .iter()
            .find(|(_, r)| r.request.uri == uri)
            .map(|(t, _)| *t)
            .unwrap()
    };
    let (idp, other) = (call("http://idp.test/jwks"), call("http://other.test/jwks"));
    host.answer(Some("500"), "");
    deliver(&mut keys, &mut host, T0 + 10, other);
    host.answer(Some("200"), &jwks(&["rsa-a", "rsa-b"]));
    deliver(&mut keys, &mut host, T0 + 20, idp);
    let count = |p: &str, name: &str, labels: &[(&str, &str)]| {
        let mut all = vec![("provider", p)];
        all.extend_from_slice(labels);
        host.counter(&stat_name("jwt_filter", name, &all))
    };
    let fetched = |p: &str, r: &str| count(p, "jwks_fetches_total", &[("result", r)]);
    assert_eq!(
        (fetched("idp", "success"), fetched("idp", "failure")),
        (1, 0)
    );
    assert_eq!(
        (fetched("other", "success"), fetched("other", "failure")),
        (0, 1)
    );
    let gauge = |p: &str| {
        host.gauge(&stat_name(
            "jwt_filter",
            "jwks_keys",
            &[("provider", p), ("key_source", "remote")],
        ))
    };
    assert_eq!((gauge("idp"), gauge("other")), (Some(2), Some(0)));
}

#[test]
fn one_fetch_for_all_vms_of_an_envoy() {
    let mut host = FakeHost::default();
    let c = config("");
    let mut a = vm(&mut host, &c, 1);
    let mut b = vm(&mut host, &c, 2);
    a.on_tick(&mut host, T0);
    b.on_tick(&mut host, T0 + 5);
    assert_eq!(host.calls.len(), 1, "the lease lets one VM fetch");
    let (token, _) = host.last_fetch();
    host.answer(Some("200"), &jwks(&["rsa-a"]));
    // The answer reaches only the VM that asked; the other ignores it.
    assert!(deliver(&mut b, &mut host, T0 + 10, token).is_empty());
    assert!(matches!(state(&b), RemoteKeys::Pending));
    deliver(&mut a, &mut host, T0 + 10, token);
    // The other VM installs the shared copy on its next request or tick.
    b.before_decide(&mut host, T0 + 20);
    assert!(matches!(state(&b), RemoteKeys::Ready(_)));
    assert!(allowed(&decide(&b, &c, &request("rsa-a"), T0 + 20).0));
    assert_eq!(host.calls.len(), 1);
}

#[test]
fn slow_first_fetch_parks_requests_then_lets_them_through() {
    let mut host = FakeHost::default();
    let c = config("");
    let mut keys = vm(&mut host, &c, 1);
    // A request before the first tick starts the fetch itself and waits.
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 7, "rsa-a", T0),
        Err(ParkResult::Parked)
    );
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 8, "rsa-a", T0 + 1),
        Err(ParkResult::Parked)
    );
    assert_eq!(host.calls.len(), 1);
    assert_eq!(keys.parked(), 2);
    // Ticks while the IdP is slow: nothing is released, the tick is fast.
    let (ready, period) = keys.on_tick(&mut host, T0 + 700);
    assert!(ready.is_empty());
    assert_eq!(period, Some(FAST_TICK_MS));
    let (token, _) = host.last_fetch();
    host.answer(Some("200"), &jwks(&["rsa-a"]));
    let ready = deliver(&mut keys, &mut host, T0 + 900, token);
    let ids: Vec<u32> = ready.iter().map(|w| w.context_id).collect();
    assert_eq!(ids, [7, 8]);
    for w in &ready {
        assert!(allowed(&decide(&keys, &c, &w.view, T0 + 900).0));
    }
    assert_eq!(keys.parked(), 0);
    let (_, period) = keys.on_tick(&mut host, T0 + 950);
    assert_eq!(period, Some(SLOW_TICK_MS));
}

#[test]
fn idp_down_from_the_start_retries_then_denies_as_unavailable() {
    let mut host = FakeHost::default();
    // num_retries 3 (default), back-off 200 ms doubling to 2 s.
    let c = config("");
    let mut keys = vm(&mut host, &c, 1);
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 7, "rsa-a", T0),
        Err(ParkResult::Parked)
    );
    let mut now = T0;
    let mut released = Vec::new();
    for attempt in 1..=4u64 {
        let (token, _) = host.last_fetch();
        assert_eq!(host.calls.len() as u64, attempt);
        host.answer(None, ""); // connection refused: no status
        now += 1000;
        released.extend(keys.on_fetch_response(&mut host, now, token, 0));
        // The next attempt waits for the back-off: 200, 400, 800 ms.
        let (r, _) = keys.on_tick(&mut host, now + 10);
        released.extend(r);
        assert_eq!(
            host.calls.len() as u64,
            attempt,
            "no retry before the back-off"
        );
        if attempt < 4 {
            let (r, _) = keys.on_tick(&mut host, now + (100 << attempt));
            released.extend(r);
        }
    }
    assert!(matches!(state(&keys), RemoteKeys::Unavailable));
    assert_eq!(
        released.len(),
        1,
        "the parked request is released when retries run out"
    );
    assert!(
        released[0].deadline_ms > now,
        "released by the failures, not the deadline"
    );
    let (d, _) = decide(&keys, &c, &request("rsa-a"), now);
    assert_eq!(d, Decision::Deny(AuthError::JwksUnavailable));
    assert!(host.logged("no response (timeout, reset, or unknown cluster); no keys yet"));
    assert_eq!(host.counter(&fetches("failure")), 4);
    // A new request does not wait any more.
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 9, "rsa-a", now + 20),
        Ok(Decision::Deny(AuthError::JwksUnavailable))
    );
    // Then one attempt per failed_refetch_duration (1 s).
    keys.on_tick(&mut host, now + 500);
    assert_eq!(host.calls.len(), 4);
    keys.on_tick(&mut host, now + 1000);
    assert_eq!(host.calls.len(), 5);
}

#[test]
fn unknown_cluster_is_logged_and_counted_as_a_failure() {
    let mut host = FakeHost {
        refuse_dispatch: Some("BadArgument".into()),
        ..FakeHost::default()
    };
    let c = config("");
    let mut keys = vm(&mut host, &c, 1);
    keys.on_tick(&mut host, T0);
    assert!(host.logged(
        "cannot fetch http://idp.test/.well-known/jwks.json through cluster \"jwks\" (BadArgument)"
    ));
    assert_eq!(host.counter(&fetches("failure")), 1);
    assert!(matches!(state(&keys), RemoteKeys::Pending));
}

/// Refresh faults keep the last good keys: 500, garbage, an empty set, a
/// hang (the host reports no status after the timeout), a weak-only set.
#[test]
fn refresh_faults_keep_the_last_good_keys_and_recover() {
    let weak = r#"{"keys":[{"kty":"RSA","kid":"weak","n":"AQAB","e":"AQAB"}]}"#;
    let faults: [(Option<&str>, &str); 5] = [
        (Some("500"), "internal error"),
        (Some("200"), "<html>not a jwks</html>"),
        (Some("200"), r#"{"keys": []}"#),
        (None, ""),
        (Some("200"), weak),
    ];
    for (status, body) in faults {
        let mut host = FakeHost::default();
        let c = config(r#","cache_duration":"1s""#);
        let mut keys = ready(&mut host, &c, &["rsa-a"]);
        let mut now = T0 + 10;
        for _ in 0..3 {
            // Refresh due (1 s), then retries after each failure.
            now += 1_000;
            keys.on_tick(&mut host, now);
            let (token, _) = host.last_fetch();
            host.answer(status, body);
            deliver(&mut keys, &mut host, now + 5, token);
            assert!(
                matches!(state(&keys), RemoteKeys::Ready(_)),
                "{status:?} {body}"
            );
            assert!(allowed(&decide(&keys, &c, &request("rsa-a"), now + 5).0));
        }
        assert_eq!(host.calls.len(), 4, "{status:?} {body}");
        assert!(host.logged("keeping the last good keys"));
        assert_eq!(host.counter(&fetches("failure")), 3);
        assert_eq!(host.gauge(&keys_gauge()), Some(1));
        // Recovery: the IdP answers again, with a rotated key.
        now += 2_000;
        keys.on_tick(&mut host, now);
        let (token, _) = host.last_fetch();
        host.answer(Some("200"), &jwks(&["rsa-b"]));
        deliver(&mut keys, &mut host, now + 5, token);
        assert!(allowed(&decide(&keys, &c, &request("rsa-b"), now + 5).0));
    }
}

#[test]
fn oversized_response_is_refused_without_reading_its_body() {
    let mut host = FakeHost::default();
    let c = config(r#","cache_duration":"1s""#);
    let mut keys = ready(&mut host, &c, &["rsa-a"]);
    let reads = host.body_reads.get();
    keys.on_tick(&mut host, T0 + 1_100);
    let (token, _) = host.last_fetch();
    host.answer(Some("200"), "");
    keys.on_fetch_response(&mut host, T0 + 1_110, token, 300_000);
    assert_eq!(host.body_reads.get(), reads, "the body was read");
    assert!(host.logged("JWKS response of 300000 bytes exceeds the 262144 byte limit"));
    assert!(matches!(state(&keys), RemoteKeys::Ready(_)));
    assert_eq!(host.counter(&fetches("failure")), 1);
}

#[test]
fn unknown_kid_waits_for_one_rate_limited_refetch() {
    let mut host = FakeHost::default();
    let c = config(""); // min_refetch_interval 30 s
    let mut keys = ready(&mut host, &c, &["rsa-a"]);
    let now = T0 + 5_000;
    // A new kid: a refetch starts and the request waits for it.
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 7, "rsa-b", now),
        Err(ParkResult::Parked)
    );
    assert_eq!(host.calls.len(), 2);
    // Another unknown kid meanwhile waits for the same fetch.
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 8, "nope", now + 1),
        Err(ParkResult::Parked)
    );
    assert_eq!(host.calls.len(), 2);
    let (token, _) = host.last_fetch();
    host.answer(Some("200"), &jwks(&["rsa-a", "rsa-b"]));
    let ready = deliver(&mut keys, &mut host, now + 50, token);
    assert_eq!(ready.len(), 2);
    let verdicts: Vec<Decision> = ready
        .iter()
        .map(|w| decide(&keys, &c, &w.view, now + 50).0)
        .collect();
    assert!(allowed(&verdicts[0]));
    assert_eq!(verdicts[1], Decision::Deny(AuthError::UnknownKid));
    // Within min_refetch_interval another unknown kid is denied at once.
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 9, "other", now + 100),
        Ok(Decision::Deny(AuthError::UnknownKid))
    );
    assert_eq!(host.calls.len(), 2);
    // After it, one more refetch.
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 10, "other", now + 30_001),
        Err(ParkResult::Parked)
    );
    assert_eq!(host.calls.len(), 3);
}

#[test]
fn rotation_with_a_short_cache_duration() {
    let mut host = FakeHost::default();
    let c = config(r#","cache_duration":"1s","min_refetch_interval":"60s""#);
    let mut keys = ready(&mut host, &c, &["rsa-a"]);
    // Due within the cache duration (jittered).
    let due = refresh_ms(&host, &c);
    assert!((T0 + 110..=T0 + 1_010).contains(&due), "{}", due - T0);
    keys.on_tick(&mut host, due - 1);
    assert_eq!(host.calls.len(), 1, "not due before its refresh time");
    keys.on_tick(&mut host, due);
    assert_eq!(host.calls.len(), 2);
    let (token, _) = host.last_fetch();
    host.answer(Some("200"), &jwks(&["rsa-b"]));
    deliver(&mut keys, &mut host, due + 20, token);
    assert!(allowed(&decide(&keys, &c, &request("rsa-b"), due + 30).0));
    let history = |name: &str| host.counter(&stat_name("jwt_filter", name, &[("provider", "idp")]));
    assert_eq!(
        history("jwks_keys_added_total"),
        1,
        "rsa-b (the first set is no change)"
    );
    assert_eq!(history("jwks_keys_removed_total"), 1, "rsa-a");
    // The old key is gone; its unknown kid cannot refetch within 60 s.
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 7, "rsa-a", due + 30),
        Err(ParkResult::Parked),
        "first unknown kid may refetch"
    );
    let (token, _) = host.last_fetch();
    deliver(&mut keys, &mut host, due + 40, token);
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 8, "rsa-a", due + 50),
        Ok(Decision::Deny(AuthError::UnknownKid))
    );
}

#[test]
fn cache_control_max_age_sets_the_refresh() {
    let mut host = FakeHost::default();
    let c = config("");
    let mut keys = vm(&mut host, &c, 1).with_schedule(Schedule::Fixed);
    keys.on_tick(&mut host, T0);
    let (token, _) = host.last_fetch();
    host.answer(Some("200"), &jwks(&["rsa-a"]));
    host.headers = vec![("cache-control".into(), "public, max-age=2".into())];
    deliver(&mut keys, &mut host, T0, token);
    keys.on_tick(&mut host, T0 + 1_999);
    assert_eq!(host.calls.len(), 1);
    keys.on_tick(&mut host, T0 + 2_000);
    assert_eq!(host.calls.len(), 2);
}

/// When the shared record says the next refresh is due.
fn refresh_ms(host: &FakeHost, c: &Config) -> u64 {
    let Some(r) = remote_of(c, 0) else {
        panic!("remote provider")
    };
    read_meta(host, r).0.refresh_ms
}

/// Envoys started in the same second, each seeded by its host's random,
/// refresh at different times within the cache window (from a tenth of it
/// on after a first fetch); without the seed (Fixed) all at the same moment.
#[test]
fn refreshes_of_envoys_started_together_drift_apart() {
    let c = config(""); // cache_duration 600 s
    let mut spread = Vec::new();
    let mut fixed = Vec::new();
    for envoy in 0..50u64 {
        for (schedule, out) in [
            (Schedule::Spread, &mut spread),
            (Schedule::Fixed, &mut fixed),
        ] {
            let mut host = FakeHost::default();
            let mut keys = vm(&mut host, &c, 1)
                .with_seed(store::mix(99, envoy))
                .with_schedule(schedule);
            keys.on_tick(&mut host, T0 + envoy * 20);
            let (token, _) = host.last_fetch();
            host.answer(Some("200"), &jwks(&["rsa-a"]));
            deliver(&mut keys, &mut host, T0 + envoy * 20 + 10, token);
            out.push(refresh_ms(&host, &c) - T0);
        }
    }
    assert!(fixed.iter().all(|t| (600_010..=601_000).contains(t)));
    assert!(spread.iter().all(|t| (60_000..=601_000).contains(t)));
    let early = spread.iter().filter(|t| **t < 330_000).count();
    assert!((10..=40).contains(&early), "{spread:?}");
    // The same seed draws the same schedule (deterministic tests).
    let mut host = FakeHost::default();
    let mut keys = vm(&mut host, &c, 1).with_seed(store::mix(99, 0));
    keys.on_tick(&mut host, T0);
    let (token, _) = host.last_fetch();
    host.answer(Some("200"), &jwks(&["rsa-a"]));
    deliver(&mut keys, &mut host, T0 + 10, token);
    assert_eq!(refresh_ms(&host, &c) - T0, spread[0]);
}

/// A 429 (or 503) with `Retry-After` holds back every fetch of this Envoy,
/// scheduled or for an unknown `kid`, until then (plus up to half again);
/// the last good keys stay in use meanwhile. `Fixed` retries after the
/// back-off regardless.
#[test]
fn retry_after_from_the_idp_is_honoured() {
    for status in ["429", "503"] {
        let mut host = FakeHost::default();
        let c = config(r#","cache_duration":"60s""#);
        let mut keys = ready(&mut host, &c, &["rsa-a"]);
        let due = refresh_ms(&host, &c);
        keys.on_tick(&mut host, due);
        assert_eq!(host.calls.len(), 2);
        let (token, _) = host.last_fetch();
        host.answer(Some(status), "slow down");
        host.headers = vec![("retry-after".into(), "20".into())];
        deliver(&mut keys, &mut host, due + 10, token);
        // Neither the retry nor an unknown kid fetches before 20 s.
        let mut now = due + 10;
        while now < due + 10 + 20_000 {
            now += 500;
            keys.on_tick(&mut host, now);
            if now < due + 10_000 {
                assert_eq!(
                    arrive(&mut host, &mut keys, &c, 7, "rsa-b", now),
                    Ok(Decision::Deny(AuthError::UnknownKid))
                );
            }
        }
        assert_eq!(host.calls.len(), 2, "{status}: fetched before Retry-After");
        assert!(allowed(&decide(&keys, &c, &request("rsa-a"), now).0));
        // Then the retry comes within another 10 s.
        while now < due + 10 + 30_000 && host.calls.len() == 2 {
            now += 500;
            keys.on_tick(&mut host, now);
        }
        assert_eq!(host.calls.len(), 3, "{status}: no retry after Retry-After");
    }
    // Fixed: the 200 ms back-off, Retry-After or not.
    let mut host = FakeHost::default();
    let c = config(r#","cache_duration":"60s""#);
    let mut keys = ready(&mut host, &c, &["rsa-a"]).with_schedule(Schedule::Fixed);
    let due = refresh_ms(&host, &c);
    keys.on_tick(&mut host, due);
    let (token, _) = host.last_fetch();
    host.answer(Some("429"), "slow down");
    host.headers = vec![("retry-after".into(), "20".into())];
    deliver(&mut keys, &mut host, due + 10, token);
    keys.on_tick(&mut host, due + 210);
    assert_eq!(host.calls.len(), 3);
}

/// A VM that sees a new `kid` moments after another VM of the same Envoy
/// fetched it (before its own tick installed the keys) decides again with
/// the installed keys instead of refusing the token.
#[test]
fn new_kid_right_after_another_vm_fetched_it_is_accepted() {
    for schedule in [Schedule::Spread, Schedule::Fixed] {
        let mut host = FakeHost::default();
        let c = config("");
        let mut a = ready(&mut host, &c, &["rsa-a"]).with_schedule(schedule);
        let mut b = vm(&mut host, &c, 2).with_schedule(schedule);
        b.on_tick(&mut host, T0 + 20);
        assert!(matches!(state(&b), RemoteKeys::Ready(_)));
        // VM a sees the new kid first: one refetch, a's request waits.
        let now = T0 + 5_000;
        assert_eq!(
            arrive(&mut host, &mut a, &c, 1, "rsa-b", now),
            Err(ParkResult::Parked)
        );
        // Single flight: b's new-kid request meanwhile waits for the same fetch.
        assert_eq!(
            arrive(&mut host, &mut b, &c, 2, "rsa-b", now + 1),
            Err(ParkResult::Parked)
        );
        assert_eq!(host.calls.len(), 2);
        let (token, _) = host.last_fetch();
        host.answer(Some("200"), &jwks(&["rsa-a", "rsa-b"]));
        assert_eq!(deliver(&mut a, &mut host, now + 40, token).len(), 1);
        // b has not ticked yet; a new-kid request arrives.
        let view = request("rsa-b");
        b.before_decide(&mut host, now + 60);
        let (d, waits) = decide(&b, &c, &view, now + 60);
        assert_eq!(d, Decision::Deny(AuthError::UnknownKid));
        let parked = b.park(&mut host, now + 60, 3, &view, 100, &waits, None);
        match schedule {
            Schedule::Spread => {
                assert_eq!(parked, ParkResult::DecideAgain);
                assert!(allowed(&decide(&b, &c, &view, now + 60).0));
            }
            // Before: refused (no refetch allowed within 30 s, none under way).
            Schedule::Fixed => assert_eq!(parked, ParkResult::DecideNow),
        }
        assert_eq!(host.calls.len(), 2, "no second fetch");
    }
}

#[test]
fn keys_past_max_stale_become_unavailable() {
    let mut host = FakeHost::default();
    let c = config(r#","cache_duration":"1s","max_stale":"5s""#);
    let mut keys = ready(&mut host, &c, &["rsa-a"]);
    let mut now = T0 + 10;
    while now < T0 + 6_100 {
        now += 100;
        keys.on_tick(&mut host, now);
        if let Some((token, _)) = host.calls.last().cloned() {
            host.answer(Some("500"), "down");
            keys.on_fetch_response(&mut host, now, token, 4);
        }
    }
    assert!(matches!(state(&keys), RemoteKeys::Unavailable));
    assert!(host.logged("keys are older than max_stale"));
    assert_eq!(
        decide(&keys, &c, &request("rsa-a"), now).0,
        Decision::Deny(AuthError::JwksUnavailable)
    );
}

#[test]
fn oidc_discovery_then_jwks() {
    let mut host = FakeHost::default();
    let c = config(r#","oidc_discovery":true"#);
    let mut keys = vm(&mut host, &c, 1);
    keys.on_tick(&mut host, T0);
    let (token, req) = host.last_fetch();
    assert_eq!(
        req.path, "/.well-known/jwks.json",
        "uri given: discovery at it"
    );
    host.answer(
        Some("200"),
        r#"{"issuer":"https://issuer.test","jwks_uri":"https://keys.test/k.json"}"#,
    );
    deliver(&mut keys, &mut host, T0 + 5, token);
    assert!(host.logged("discovered jwks_uri https://keys.test/k.json"));
    // On another host than the issuer's: said, and counted.
    assert!(host.logged(
        "jwt_filter: warning: providers.idp.remote_jwks.oidc_discovery: the discovered jwks_uri \
         https://keys.test/k.json is used although its host \"keys.test\" is not the issuer's"
    ));
    assert!(host.logged("[discovery_untrusted]"));
    assert_eq!(
        host.counter("jwt_filter.provider=.=idp;.;jwks_discovery_untrusted_total"),
        1
    );
    let (token, req) = host.last_fetch();
    assert_eq!(
        (req.authority.as_str(), req.path.as_str(), req.scheme),
        ("keys.test", "/k.json", "https")
    );
    host.answer(Some("200"), &jwks(&["rsa-a"]));
    deliver(&mut keys, &mut host, T0 + 10, token);
    assert!(matches!(state(&keys), RemoteKeys::Ready(_)));
}

#[test]
fn oidc_discovery_failures_are_refused_and_retried() {
    for (status, doc, why) in [
        (
            Some("200"),
            r#"{"issuer":"https://evil.test","jwks_uri":"https://evil.test/k"}"#,
            "different issuer",
        ),
        (Some("503"), "busy", "discovery document: HTTP 503"),
        (
            Some("200"),
            r#"{"issuer":"https://issuer.test"}"#,
            "no jwks_uri",
        ),
    ] {
        let mut host = FakeHost::default();
        let c = config(r#","oidc_discovery":true"#);
        let mut keys = vm(&mut host, &c, 1);
        assert_eq!(
            arrive(&mut host, &mut keys, &c, 7, "rsa-a", T0),
            Err(ParkResult::Parked)
        );
        let (token, _) = host.last_fetch();
        host.answer(status, doc);
        deliver(&mut keys, &mut host, T0 + 5, token);
        assert!(host.logged(why), "{why}");
        assert!(host.logged("OIDC discovery at http://idp.test/.well-known/jwks.json failed"));
        assert_eq!(host.counter(&fetches("failure")), 1);
        assert_eq!(host.calls.len(), 1, "no JWKS fetch from a refused document");
        // The retry asks for the discovery document again.
        keys.on_tick(&mut host, T0 + 300);
        assert_eq!(host.calls.len(), 2);
        assert_eq!(host.last_fetch().1.path, "/.well-known/jwks.json");
    }
}

#[test]
fn failed_jwks_after_discovery_discovers_again() {
    let mut host = FakeHost::default();
    let c = config(r#","oidc_discovery":true"#);
    let mut keys = vm(&mut host, &c, 1);
    keys.on_tick(&mut host, T0);
    let (token, _) = host.last_fetch();
    host.answer(
        Some("200"),
        r#"{"issuer":"https://issuer.test","jwks_uri":"https://keys.test/k.json"}"#,
    );
    deliver(&mut keys, &mut host, T0 + 5, token);
    let (token, _) = host.last_fetch();
    host.answer(Some("404"), "gone");
    keys.on_fetch_response(&mut host, T0 + 10, token, 4);
    keys.on_tick(&mut host, T0 + 300);
    assert_eq!(host.last_fetch().1.authority, "idp.test", "discovery again");
}

#[test]
fn waiters_time_out() {
    let mut host = FakeHost::default();
    let c = config(""); // timeout 1 s
    let mut keys = ready(&mut host, &c, &["rsa-a"]);
    let now = T0 + 100;
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 7, "rsa-b", now),
        Err(ParkResult::Parked)
    );
    // The IdP hangs: the unknown-kid wait ends at timeout + 2 s.
    let (r, _) = keys.on_tick(&mut host, now + 2_999);
    assert!(r.is_empty());
    let (r, _) = keys.on_tick(&mut host, now + 3_000);
    assert_eq!(r.len(), 1);
    assert_eq!(
        decide(&keys, &c, &r[0].view, now + 3_000).0,
        Decision::Deny(AuthError::UnknownKid)
    );

    // A first-fetch wait lasts (timeout + max back-off) x (retries + 1).
    let mut host = FakeHost::default();
    let c = config(
        r#","retry_policy":{"num_retries":1,"retry_back_off":{"base_interval":"0.1s","max_interval":"0.5s"}}"#,
    );
    let mut keys = vm(&mut host, &c, 1);
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 7, "rsa-a", T0),
        Err(ParkResult::Parked)
    );
    assert!(keys.on_tick(&mut host, T0 + 2_999).0.is_empty());
    assert_eq!(keys.on_tick(&mut host, T0 + 3_000).0.len(), 1);
}

#[test]
fn a_request_that_goes_away_stops_waiting() {
    let mut host = FakeHost::default();
    let c = config("");
    let mut keys = vm(&mut host, &c, 1);
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 7, "rsa-a", T0),
        Err(ParkResult::Parked)
    );
    keys.on_request_gone(7);
    assert_eq!(keys.parked(), 0);
    let (token, _) = host.last_fetch();
    host.answer(Some("200"), &jwks(&["rsa-a"]));
    assert!(deliver(&mut keys, &mut host, T0 + 5, token).is_empty());
}

#[test]
fn parked_requests_are_bounded_by_count_and_bytes() {
    let mut host = FakeHost::default();
    let c = config("");
    let mut keys = ready(&mut host, &c, &["rsa-a"]).with_park_bounds(3, 250);
    let now = T0 + 100;
    // 100 bytes each: the bytes bound (250) admits two.
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 1, "k1", now),
        Err(ParkResult::Parked)
    );
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 2, "k2", now),
        Err(ParkResult::Parked)
    );
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 3, "k3", now),
        Err(ParkResult::Deny(AuthError::KeyWaitFull))
    );
    assert_eq!(keys.parked(), 2);
    // One leaves: room again.
    keys.on_request_gone(1);
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 4, "k4", now),
        Err(ParkResult::Parked)
    );
    // The count bound.
    let mut keys = keys.with_park_bounds(2, 1 << 20);
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 5, "k5", now),
        Err(ParkResult::Deny(AuthError::KeyWaitFull))
    );
    // A request that would not wait anyway is decided as before.
    let (token, _) = host.last_fetch();
    host.answer(Some("200"), &jwks(&["rsa-a"]));
    assert_eq!(deliver(&mut keys, &mut host, now + 10, token).len(), 2);
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 6, "k6", now + 20),
        Ok(Decision::Deny(AuthError::UnknownKid))
    );
    assert_eq!(host.calls.len(), 2, "a full VM starts no refetch");
}

#[test]
fn a_full_vm_starts_no_refetch() {
    let mut host = FakeHost::default();
    let c = config("");
    let mut keys = ready(&mut host, &c, &["rsa-a"]).with_park_bounds(0, 0);
    assert_eq!(
        arrive(&mut host, &mut keys, &c, 1, "k1", T0 + 100),
        Err(ParkResult::Deny(AuthError::KeyWaitFull))
    );
    assert_eq!(host.calls.len(), 1);
}

#[test]
fn local_keys_need_no_tick() {
    let mut host = FakeHost::default();
    let json = format!(
        r#"{{"providers":{{"a":{{"local_jwks":{{"inline_string":{}}}}}}},
            "rules":[{{"match":{{"prefix":"/"}},"requires":{{"provider_name":"a"}}}}]}}"#,
        serde_json::to_string(&jwks(&["rsa-a"])).unwrap()
    );
    let c = Rc::new(Config::parse(json.as_bytes()).unwrap());
    let keys = vm(&mut host, &c, 1);
    assert_eq!(keys.first_tick_ms(), None);
}

#[test]
fn a_request_decided_again_is_never_parked_twice() {
    // Keys not fetched yet: a new request parks, the same request decided
    // again after its wait (no `may_wait`) gets its denial as it stands.
    let mut host = FakeHost::default();
    let c = config("");
    let mut keys = vm(&mut host, &c, 1);
    keys.on_tick(&mut host, T0);
    let view = request("rsa-a");
    let yes = |_: &Key, _: Alg, _: &[u8], _: &[u8]| true;
    let mut ev = Evaluator::new(&c, keys.providers(), &view, T0 / 1000, &yes);
    let mut outcome = ev.outcome();
    let waits = std::mem::take(&mut ev.waits);
    assert!(matches!(outcome.decision, Decision::Deny(_)));
    assert_eq!(
        keys.settle(&mut host, T0, 7, &view, None, &mut outcome, &waits, None),
        Settled::Apply
    );
    assert_eq!(keys.parked(), 0);
    assert_eq!(
        keys.settle(
            &mut host,
            T0,
            7,
            &view,
            Some(100),
            &mut outcome,
            &waits,
            Some([9; 32])
        ),
        Settled::Park
    );
    assert_eq!(keys.parked(), 1);
    // The DPoP proof it recorded comes back with it, to be taken as its own.
    let (token, _) = host.last_fetch();
    host.answer(Some("200"), &jwks(&["rsa-a"]));
    let ready = deliver(&mut keys, &mut host, T0 + 10, token);
    assert_eq!(ready.len(), 1);
    assert_eq!((ready[0].context_id, ready[0].proof), (7, Some([9; 32])));
}
