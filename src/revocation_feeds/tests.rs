//! The revocation feeds against a fake host: one Envoy's shared data, a
//! deny-list server and an SSF transmitter whose answers each test scripts,
//! and a clock the test moves. The decisions come from the real policy.

use serde_json::{json, Value};

use super::*;
use crate::crypto::jwks::{Alg, Key};
use crate::decision::Decision;
use crate::error::AuthError;
use crate::extract::RequestView;
use crate::policy::Evaluator;
use crate::test_host::FakeHost;
use crate::testutil::{mint, FIXTURE_JWKS};

const T0: u64 = 1_800_000_000_000;
const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";

fn config(revocation: &str) -> Config {
    let json = format!(
        r#"{{"providers":{{"idp":{{"issuer":"https://issuer.test",
            "local_jwks":{{"inline_string":{jwks}}},
            "revocation":{revocation}}}}},
           "rules":[{{"match":{{"prefix":"/"}},"requires":{{"provider_name":"idp"}}}}]}}"#,
        jwks = serde_json::to_string(&crate::testutil::hs_jwks()).unwrap()
    );
    Config::parse(json.as_bytes()).unwrap()
}

const DENY_LIST: &str = r#"{"deny_list":{"http_uri":{"uri":"http://lists.test/deny.json",
    "cluster":"lists","timeout":"1s"},"poll_interval":"2s","staleness":"10s"}}"#;

fn ssf_config(extra: &str) -> String {
    format!(
        r#"{{"ssf":{{"poll_endpoint":{{"uri":"http://tx.test/poll","cluster":"tx"}},
        "transmitter_jwks":{{"http_uri":{{"uri":"http://tx.test/jwks","cluster":"tx"}}}},
        "issuer":"https://tx.test","audience":"https://gw.test","poll_interval":"2s",
        "staleness":"10s"{extra}}}}}"#
    )
}

fn token(claims: Value) -> String {
    mint(&claims.to_string())
}

fn decide(config: &Config, feeds: &RevocationFeeds, token: &str, now: u64) -> Decision {
    let view = RequestView::new(vec![
        (":path".into(), "/x".into()),
        ("authorization".into(), format!("Bearer {token}")),
    ]);
    let verify = |k: &Key, a: Alg, i: &[u8], s: &[u8]| k.verify(a, i, s);
    let mut ev = Evaluator::new(config, &[], &view, now / 1000, &verify);
    ev.revocation = Some(feeds.revocations());
    ev.decide()
}

fn alice() -> String {
    token(
        json!({"iss": "https://issuer.test", "sub": "alice", "jti": "t-1",
        "iat": T0 / 1000 - 60, "exp": T0 / 1000 + 3600}),
    )
}

fn list(entries: Value) -> String {
    json!({"version": 1, "entries": entries}).to_string()
}

fn deliver(feeds: &mut RevocationFeeds, host: &mut FakeHost, now: u64, token: u32) {
    let size = host.body.len();
    feeds.on_response(host, now, token, size);
}

#[test]
fn no_revocation_configured_means_no_feeds() {
    let json = format!(
        r#"{{"providers":{{"idp":{{"local_jwks":{{"inline_string":{}}}}}}}}}"#,
        serde_json::to_string(&crate::testutil::hs_jwks()).unwrap()
    );
    let c = Config::parse(json.as_bytes()).unwrap();
    let mut host = FakeHost::default();
    assert!(RevocationFeeds::new(&c, &mut host, 1, T0).is_none());
    assert!(host.metrics.names.is_empty(), "no metric defined");
}

#[test]
fn deny_list_is_fetched_once_shared_by_every_vm_and_revokes() {
    let c = config(DENY_LIST);
    let mut host = FakeHost::default();
    let mut vm1 = RevocationFeeds::new(&c, &mut host, 1, T0).unwrap();
    let mut vm2 = RevocationFeeds::new(&c, &mut host, 2, T0).unwrap();
    let tok = alice();
    assert!(matches!(decide(&c, &vm1, &tok, T0), Decision::Allow(_)));
    vm1.on_tick(&mut host, T0);
    vm2.on_tick(&mut host, T0);
    assert_eq!(host.calls.len(), 1, "one poll for the Envoy");
    let (t, call) = host.last_call();
    assert_eq!(
        (call.method, call.request.path.as_str()),
        ("GET", "/deny.json")
    );
    assert!(!call.headers.iter().any(|(k, _)| *k == "if-none-match"));
    host.answer_with(
        Some("200"),
        &[("etag", "\"v1\"")],
        &list(json!([{"kind": "jti", "value": "t-1", "expires": T0 / 1000 + 600}])),
    );
    deliver(&mut vm1, &mut host, T0 + 10, t);
    assert_eq!(
        decide(&c, &vm1, &tok, T0 + 10),
        Decision::Deny(AuthError::Revoked)
    );
    // The other VM installs the shared list on its next tick.
    assert!(matches!(
        decide(&c, &vm2, &tok, T0 + 10),
        Decision::Allow(_)
    ));
    vm2.on_tick(&mut host, T0 + 500);
    assert_eq!(
        decide(&c, &vm2, &tok, T0 + 500),
        Decision::Deny(AuthError::Revoked)
    );
    let p = [("provider", "idp")];
    assert_eq!(
        host.metrics
            .value(&stat_name("jwt_filter", "revocation_deny_list_entries", &p)),
        Some(1)
    );
    assert_eq!(
        host.counter_labeled(
            "revocation_deny_list_polls_total",
            &[("provider", "idp"), ("result", "success")]
        ),
        1
    );
    // Another token of alice is not revoked by a jti rule.
    let other = token(
        json!({"iss": "https://issuer.test", "sub": "alice", "jti": "t-2",
        "exp": T0 / 1000 + 3600}),
    );
    assert!(matches!(
        decide(&c, &vm2, &other, T0 + 500),
        Decision::Allow(_)
    ));
}

#[test]
fn not_modified_keeps_the_list_and_broken_documents_keep_the_last_good() {
    let c = config(DENY_LIST);
    let mut host = FakeHost::default();
    let mut vm = RevocationFeeds::new(&c, &mut host, 1, T0).unwrap();
    vm.on_tick(&mut host, T0);
    let (t, _) = host.last_call();
    host.answer_with(
        Some("200"),
        &[("etag", "\"v1\"")],
        &list(json!([{"kind": "sub", "value": "alice", "expires": T0 / 1000 + 600}])),
    );
    deliver(&mut vm, &mut host, T0, t);
    let tok = alice();
    assert_eq!(
        decide(&c, &vm, &tok, T0),
        Decision::Deny(AuthError::Revoked)
    );
    // Next poll, after the interval: asks with the ETag; 304 keeps the list.
    let mut now = T0 + 2_001;
    vm.on_tick(&mut host, now);
    let (t, call) = host.last_call();
    assert!(call
        .headers
        .contains(&("if-none-match", "\"v1\"".to_string())));
    host.answer_with(Some("304"), &[], "");
    deliver(&mut vm, &mut host, now, t);
    assert_eq!(
        decide(&c, &vm, &tok, now),
        Decision::Deny(AuthError::Revoked)
    );
    let polls = |r| [("provider", "idp"), ("result", r)];
    assert_eq!(
        host.counter_labeled("revocation_deny_list_polls_total", &polls("not_modified")),
        1
    );
    // A broken document, then an oversized one: refused, the list stays.
    for body in [
        "{\"version\":1,\"entries\":[".to_string(),
        " ".repeat(denylist::MAX_DOCUMENT_BYTES + 1),
    ] {
        now += 3_000;
        vm.on_tick(&mut host, now);
        let (t, _) = host.last_call();
        host.answer_with(Some("200"), &[], &body);
        deliver(&mut vm, &mut host, now, t);
        assert_eq!(
            decide(&c, &vm, &tok, now),
            Decision::Deny(AuthError::Revoked)
        );
    }
    assert_eq!(
        host.counter_labeled("revocation_deny_list_polls_total", &polls("refused")),
        2
    );
    assert!(host.logged("refused: not a JSON document"));
    assert!(host.logged("keeping the last good list"));
}

#[test]
fn feed_down_keeps_the_last_good_list_by_default_and_fail_closed_denies() {
    for fail_closed in [false, true] {
        let rev = DENY_LIST.replace(
            "\"staleness\":\"10s\"",
            &format!("\"staleness\":\"10s\",\"fail_closed\":{fail_closed}"),
        );
        let c = config(&rev);
        let mut host = FakeHost::default();
        let mut vm = RevocationFeeds::new(&c, &mut host, 1, T0).unwrap();
        vm.on_tick(&mut host, T0);
        let (t, _) = host.last_call();
        host.answer_with(Some("200"), &[], &list(json!([])));
        deliver(&mut vm, &mut host, T0, t);
        let tok = alice();
        // The server goes away: every poll fails.
        let mut now = T0;
        while now < T0 + 12_000 {
            now += 500;
            let before = host.calls.len();
            vm.on_tick(&mut host, now);
            if host.calls.len() > before {
                let (t, _) = host.last_call();
                host.answer_with(None, &[], "");
                deliver(&mut vm, &mut host, now, t);
            }
        }
        let d = decide(&c, &vm, &tok, now);
        if fail_closed {
            assert_eq!(d, Decision::Deny(AuthError::RevocationUnavailable));
            assert!(host.logged("fail_closed is set"));
        } else {
            assert!(matches!(d, Decision::Allow(_)), "{d:?}");
        }
        assert!(
            host.counter_labeled(
                "revocation_deny_list_polls_total",
                &[("provider", "idp"), ("result", "failure")]
            ) >= 3
        );
        // Back: one good poll lifts the denial.
        let before = host.calls.len();
        now += 60_000;
        vm.on_tick(&mut host, now);
        assert!(host.calls.len() > before);
        let (t, _) = host.last_call();
        host.answer_with(Some("200"), &[], &list(json!([])));
        deliver(&mut vm, &mut host, now, t);
        assert!(matches!(decide(&c, &vm, &tok, now), Decision::Allow(_)));
    }
}

fn sign(iss: &str, aud: &str, jti: &str, events: Value) -> String {
    crate::revocation::tests::sign_set("secevent+jwt", iss, aud, jti, events)
}

fn ec_jwks() -> String {
    let all: Value = serde_json::from_str(FIXTURE_JWKS).unwrap();
    let keys: Vec<Value> = all["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["kid"] == "ec-256")
        .cloned()
        .collect();
    json!({ "keys": keys }).to_string()
}

fn revoke_alice(jti: &str) -> String {
    sign(
        "https://tx.test",
        "https://gw.test",
        jti,
        json!({format!("{CAEP}session-revoked"): {
            "subject": {"format": "iss_sub", "iss": "https://issuer.test", "sub": "alice"},
            "event_timestamp": T0 / 1000}}),
    )
}

/// Ticks, answers the JWKS fetch, and returns the poll call.
fn first_poll(vm: &mut RevocationFeeds, host: &mut FakeHost) -> (u32, FeedCall) {
    vm.on_tick(host, T0);
    let (t, call) = host.last_call();
    assert_eq!(call.request.path, "/jwks");
    host.answer_with(Some("200"), &[], &ec_jwks());
    deliver(vm, host, T0, t);
    let (t, call) = host.last_call();
    assert_eq!((call.method, call.request.path.as_str()), ("POST", "/poll"));
    (t, call)
}

fn body_of(call: &FeedCall) -> Value {
    serde_json::from_slice(&call.body).unwrap()
}

#[test]
fn ssf_session_revoked_is_applied_on_every_vm_and_acknowledged() {
    let c = config(&ssf_config(""));
    let mut host = FakeHost::default();
    let mut vm1 = RevocationFeeds::new(&c, &mut host, 1, T0).unwrap();
    let mut vm2 = RevocationFeeds::new(&c, &mut host, 2, T0).unwrap();
    let (t, call) = first_poll(&mut vm1, &mut host);
    assert_eq!(body_of(&call)["ack"], json!([]));
    assert_eq!(body_of(&call)["maxEvents"], 100);
    let tok = alice();
    host.answer_with(
        Some("200"),
        &[],
        &json!({"sets": {"set-1": revoke_alice("set-1")}, "moreAvailable": false}).to_string(),
    );
    deliver(&mut vm1, &mut host, T0 + 5, t);
    assert_eq!(
        decide(&c, &vm1, &tok, T0 + 5),
        Decision::Deny(AuthError::Revoked)
    );
    vm2.on_tick(&mut host, T0 + 500);
    assert_eq!(
        decide(&c, &vm2, &tok, T0 + 500),
        Decision::Deny(AuthError::Revoked)
    );
    // A login after the event is accepted.
    let fresh = token(json!({"iss": "https://issuer.test", "sub": "alice",
        "iat": T0 / 1000 + 1, "exp": T0 / 1000 + 3600}));
    assert!(matches!(
        decide(&c, &vm2, &fresh, T0 + 500),
        Decision::Allow(_)
    ));
    assert_eq!(
        host.counter_labeled(
            "revocation_ssf_events_total",
            &[("provider", "idp"), ("result", "applied")]
        ),
        1
    );
    // The next poll (by whichever VM) acknowledges the SET.
    let now = T0 + 2_500;
    vm2.on_tick(&mut host, now);
    vm1.on_tick(&mut host, now);
    let (t, call) = host.last_call();
    assert_eq!(body_of(&call)["ack"], json!(["set-1"]));
    host.answer_with(Some("200"), &[], r#"{"sets":{}}"#);
    deliver(&mut vm2, &mut host, now, t);
    vm1.on_tick(&mut host, now + 2_500);
    vm2.on_tick(&mut host, now + 2_500);
    let (_, call) = host.last_call();
    assert_eq!(body_of(&call)["ack"], json!([]));
}

#[test]
fn forged_and_wrongly_addressed_sets_are_ignored_counted_and_reported() {
    let c = config(&ssf_config(""));
    let mut host = FakeHost::default();
    let mut vm = RevocationFeeds::new(&c, &mut host, 1, T0).unwrap();
    let (t, _) = first_poll(&mut vm, &mut host);
    let good = revoke_alice("g");
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], parts[1], {
        let mut s = parts[2].to_string();
        s.replace_range(0..2, if s.starts_with("AA") { "BB" } else { "AA" });
        s
    });
    let ev = json!({format!("{CAEP}session-revoked"): {
        "subject": {"format": "iss_sub", "iss": "https://issuer.test", "sub": "alice"}}});
    let sets = json!({
        "forged": forged,
        "aud": sign("https://tx.test", "https://other.test", "aud", ev.clone()),
        "iss": sign("https://evil.test", "https://gw.test", "iss", ev),
    });
    // `forged` carries the jti `g` of the SET it was cut from: delivered under it.
    let mut sets = sets.as_object().unwrap().clone();
    let forged_text = sets.remove("forged").unwrap();
    sets.insert("g".into(), forged_text);
    host.answer_with(Some("200"), &[], &json!({ "sets": sets }).to_string());
    deliver(&mut vm, &mut host, T0 + 5, t);
    assert!(matches!(
        decide(&c, &vm, &alice(), T0 + 5),
        Decision::Allow(_)
    ));
    let rejected = |r| {
        host.counter_labeled(
            "revocation_ssf_sets_rejected_total",
            &[("provider", "idp"), ("reason", r)],
        )
    };
    assert_eq!(
        (
            rejected("signature"),
            rejected("audience"),
            rejected("issuer")
        ),
        (1, 1, 1)
    );
    // Reported to the transmitter as errors, not acknowledged.
    vm.on_tick(&mut host, T0 + 2_500);
    let (_, call) = host.last_call();
    let body = body_of(&call);
    assert_eq!(body["ack"], json!([]));
    assert_eq!(body["setErrs"]["g"]["err"], "authentication_failed");
    assert_eq!(body["setErrs"]["aud"]["err"], "invalid_audience");
    assert_eq!(body["setErrs"]["iss"]["err"], "invalid_issuer");
}

#[test]
fn a_flood_of_events_is_bounded() {
    let c = config(
        &ssf_config(r#","max_events":5"#).replace(r#"{"ssf""#, r#"{"max_entries":20,"ssf""#),
    );
    let mut host = FakeHost::default();
    let mut vm = RevocationFeeds::new(&c, &mut host, 1, T0).unwrap();
    let (mut t, call) = first_poll(&mut vm, &mut host);
    assert_eq!(body_of(&call)["maxEvents"], 5);
    let mut now = T0;
    let mut n = 0;
    // The transmitter sends 10 per answer (more than asked for), with more waiting.
    for _ in 0..8 {
        let mut sets = serde_json::Map::new();
        for _ in 0..10 {
            n += 1;
            let jti = format!("s{n}");
            let ev = json!({format!("{CAEP}credential-change"): {
                "subject": {"format": "iss_sub", "iss": "https://issuer.test", "sub": format!("u{n}")},
                "event_timestamp": T0 / 1000}});
            sets.insert(
                jti.clone(),
                Value::from(sign("https://tx.test", "https://gw.test", &jti, ev)),
            );
        }
        host.answer_with(
            Some("200"),
            &[],
            &json!({"sets": sets, "moreAvailable": true}).to_string(),
        );
        deliver(&mut vm, &mut host, now, t);
        // More waiting: polled again at the next tick, not after the interval.
        now += 500;
        let before = host.calls.len();
        vm.on_tick(&mut host, now);
        assert_eq!(host.calls.len(), before + 1);
        let (next, call) = host.last_call();
        assert!(body_of(&call)["ack"].as_array().unwrap().len() <= 5);
        t = next;
    }
    let applied = host.counter_labeled(
        "revocation_ssf_events_total",
        &[("provider", "idp"), ("result", "applied")],
    );
    assert_eq!(applied, 40, "5 per poll");
    let refused =
        host.counter_labeled("revocation_ssf_rules_refused_total", &[("provider", "idp")]);
    assert_eq!(refused, 20, "past max_entries");
    assert!(host.logged("the rule set is full"));
    let entries = stat_name(
        "jwt_filter",
        "revocation_ssf_entries",
        &[("provider", "idp")],
    );
    assert_eq!(host.metrics.value(&entries), Some(20));
}

#[test]
fn metric_names_cover_both_feeds() {
    let c = config(&ssf_config("").replace(
        r#"{"ssf""#,
        &format!("{},\"ssf\"", &DENY_LIST[..DENY_LIST.len() - 1]),
    ));
    let names: Vec<String> = metric_names(&c).into_iter().map(|(_, n)| n).collect();
    for want in [
        "revocation_deny_list_age_seconds",
        "revocation_deny_list_entries",
        "revocation_ssf_age_seconds",
        "revocation_ssf_events_total",
        "revocation_ssf_sets_rejected_total",
    ] {
        assert!(names.iter().any(|n| n.ends_with(want)), "{want}");
    }
}
