use serde_json::{json, Map, Value};

use super::ssf::{self, Pending, Reject};
use super::*;
use crate::crypto::jwks::KeySet;
use crate::remote_jwks::RemoteJwks;

const NOW: u64 = 1_800_000_000;

fn claims(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn entry(expires: u64) -> Entry {
    Entry {
        expires,
        not_before: 0,
        issued_before: None,
    }
}

#[test]
fn jti_rule_revokes_that_token_only_until_it_expires() {
    let mut set = RuleSet::new(10, 10_000);
    set.insert(Kind::Jti, "t-1", entry(NOW + 60), NOW).unwrap();
    let revoked = claims(json!({"jti": "t-1", "sub": "a"}));
    let other = claims(json!({"jti": "t-2", "sub": "a"}));
    assert!(set.revokes(&revoked, NOW));
    assert!(!set.revokes(&other, NOW));
    assert!(
        !set.revokes(&revoked, NOW + 60),
        "expired rule applies no more"
    );
}

#[test]
fn sub_rule_with_cutoff_revokes_earlier_tokens_and_lets_new_logins_in() {
    let mut set = RuleSet::new(10, 10_000);
    let e = Entry {
        expires: NOW + 3600,
        not_before: 0,
        issued_before: Some(NOW - 10),
    };
    set.insert(Kind::Sub, "alice", e, NOW).unwrap();
    assert!(set.revokes(&claims(json!({"sub": "alice", "iat": NOW - 100})), NOW));
    assert!(!set.revokes(&claims(json!({"sub": "alice", "iat": NOW - 10})), NOW));
    assert!(!set.revokes(&claims(json!({"sub": "alice", "iat": NOW})), NOW));
    // Without iat the token cannot show it is newer: revoked.
    assert!(set.revokes(&claims(json!({"sub": "alice"})), NOW));
    assert!(!set.revokes(&claims(json!({"sub": "bob", "iat": 1})), NOW));
    // A fractional iat is cut to whole seconds.
    assert!(set.revokes(
        &claims(json!({"sub": "alice", "iat": (NOW - 11) as f64 + 0.5})),
        NOW
    ));
}

#[test]
fn sid_and_email_rules_and_not_before() {
    let mut set = RuleSet::new(10, 10_000);
    set.insert(Kind::Sid, "s-1", entry(NOW + 60), NOW).unwrap();
    let later = Entry {
        expires: NOW + 60,
        not_before: NOW + 30,
        issued_before: None,
    };
    set.insert(Kind::Email, "a@example.com", later, NOW)
        .unwrap();
    assert!(set.revokes(&claims(json!({"sid": "s-1"})), NOW));
    assert!(!set.revokes(&claims(json!({"sid": "s-2"})), NOW));
    let mail = claims(json!({"email": "a@example.com"}));
    assert!(!set.revokes(&mail, NOW), "not before its not_before");
    assert!(set.revokes(&mail, NOW + 30));
    // A claim of another type never matches.
    assert!(!set.revokes(&claims(json!({"sid": ["s-1"]})), NOW));
}

#[test]
fn rules_for_one_value_merge_into_the_wider() {
    let mut set = RuleSet::new(10, 10_000);
    let a = Entry {
        expires: NOW + 60,
        not_before: 0,
        issued_before: Some(NOW - 100),
    };
    let b = Entry {
        expires: NOW + 600,
        not_before: 0,
        issued_before: Some(NOW - 5),
    };
    set.insert(Kind::Sub, "u", a, NOW).unwrap();
    set.insert(Kind::Sub, "u", b, NOW).unwrap();
    assert_eq!(set.len(), 1);
    assert!(set.revokes(&claims(json!({"sub": "u", "iat": NOW - 50})), NOW + 100));
}

#[test]
fn bounds_refuse_clearly_and_pruning_frees_room() {
    let mut set = RuleSet::new(2, 10_000);
    set.insert(Kind::Jti, "a", entry(NOW + 1), NOW).unwrap();
    set.insert(Kind::Jti, "b", entry(NOW + 100), NOW).unwrap();
    assert_eq!(
        set.insert(Kind::Jti, "c", entry(NOW + 100), NOW),
        Err(Refused::Full)
    );
    assert_eq!(set.prune(NOW + 1), 1);
    set.insert(Kind::Jti, "c", entry(NOW + 100), NOW + 1)
        .unwrap();
    // Bytes: two entries of 10 bytes with the overhead fit in 120, a third does not.
    let mut small = RuleSet::new(100, 2 * (10 + ENTRY_OVERHEAD));
    small
        .insert(Kind::Sub, "0123456789", entry(NOW + 9), NOW)
        .unwrap();
    small
        .insert(Kind::Sub, "abcdefghij", entry(NOW + 9), NOW)
        .unwrap();
    assert_eq!(
        small.insert(Kind::Sub, "klmnopqrst", entry(NOW + 9), NOW),
        Err(Refused::Full)
    );
    assert_eq!(
        set.insert(Kind::Jti, "", entry(NOW + 9), NOW),
        Err(Refused::BadValue)
    );
    let long = "x".repeat(MAX_VALUE_BYTES + 1);
    assert_eq!(
        set.insert(Kind::Jti, &long, entry(NOW + 9), NOW),
        Err(Refused::BadValue)
    );
    assert_eq!(
        set.insert(Kind::Jti, "d", entry(NOW), NOW),
        Err(Refused::Expired)
    );
}

#[test]
fn ten_thousand_entries_are_looked_up_by_hash() {
    let mut set = RuleSet::new(DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES);
    for i in 0..10_000 {
        set.insert(Kind::Jti, &format!("jti-{i}"), entry(NOW + 60), NOW)
            .unwrap();
    }
    assert_eq!(set.len(), 10_000);
    assert!(set.revokes(&claims(json!({"jti": "jti-9999"})), NOW));
    assert!(!set.revokes(&claims(json!({"jti": "jti-10000"})), NOW));
}

#[test]
fn provider_rules_decide_revoked_unavailable_or_ok() {
    let mut set = RuleSet::new(10, 10_000);
    set.insert(Kind::Sub, "alice", entry(NOW + 60), NOW)
        .unwrap();
    let rules = ProviderRules {
        deny_list: None,
        ssf: Some(Rc::new(set)),
        unavailable: false,
    };
    let all = Revocations {
        providers: vec![None, Some(rules.clone())],
    };
    let alice = claims(json!({"sub": "alice"}));
    assert_eq!(
        all.check(0, &alice, NOW),
        Ok(()),
        "no revocation configured"
    );
    assert_eq!(all.check(1, &alice, NOW), Err(AuthError::Revoked));
    assert_eq!(all.check(1, &claims(json!({"sub": "bob"})), NOW), Ok(()));
    assert_eq!(all.check(7, &alice, NOW), Ok(()));
    let closed = ProviderRules {
        unavailable: true,
        ..rules
    };
    assert_eq!(
        closed.check(&claims(json!({"sub": "bob"})), NOW),
        Err(AuthError::RevocationUnavailable)
    );
}

#[test]
fn revoked_answers_invalid_token_token_revoked() {
    let e = AuthError::Revoked;
    assert_eq!(e.status(), 401);
    assert_eq!(e.reason(), "revoked");
    assert_eq!(
        crate::error::www_authenticate("api", e, None),
        "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"token revoked\""
    );
    assert_eq!(AuthError::RevocationUnavailable.status(), 401);
}

// --- deny-list document ---

#[test]
fn document_reads_every_kind_and_skips_expired_entries() {
    let doc = json!({"version": 1, "entries": [
        {"kind": "jti", "value": "j", "expires": NOW + 60},
        {"kind": "sub", "value": "s", "expires": NOW + 60, "issued_before": NOW - 1},
        {"kind": "sid", "value": "x", "expires": NOW + 60, "not_before": NOW + 5},
        {"kind": "email", "value": "e@x", "expires": NOW + 60},
        {"kind": "jti", "value": "old", "expires": NOW - 1}
    ]});
    let p = denylist::parse(doc.to_string().as_bytes(), 100, 100_000, NOW).unwrap();
    assert_eq!((p.set.len(), p.expired, p.refused), (4, 1, 0));
    assert!(p
        .set
        .revokes(&claims(json!({"sub": "s", "iat": NOW - 2})), NOW));
    assert!(!p.set.revokes(&claims(json!({"sid": "x"})), NOW));
    // Written out and read back: the same rules.
    let again = denylist::parse(denylist::encode(&p.set).as_bytes(), 100, 100_000, NOW).unwrap();
    assert_eq!(again.set.len(), 4);
    assert!(again.set.revokes(&claims(json!({"sid": "x"})), NOW + 5));
}

#[test]
fn broken_documents_are_refused_with_a_reason() {
    let cases: [(&str, &str); 8] = [
        ("{", "not a JSON document"),
        (r#"{"version":1,"entries":[],"entries":[]}"#, "repeat"),
        (r#"{"version":2,"entries":[]}"#, "version 2"),
        (r#"{"version":1,"entries":[],"extra":1}"#, "unknown field"),
        (
            r#"{"version":1,"entries":[{"kind":"ip","value":"v","expires":1}]}"#,
            "entries[0].kind",
        ),
        (
            r#"{"version":1,"entries":[{"kind":"jti","value":"","expires":1}]}"#,
            "entries[0].value",
        ),
        (
            r#"{"version":1,"entries":[{"kind":"jti","value":"v","expires":"soon"}]}"#,
            "invalid type",
        ),
        (r#"[1,2]"#, "not a deny list"),
    ];
    for (body, want) in cases {
        let e = denylist::parse(body.as_bytes(), 10, 10_000, NOW).unwrap_err();
        assert!(e.contains(want), "{body}: {e}");
    }
    let big = vec![b' '; denylist::MAX_DOCUMENT_BYTES + 1];
    assert!(denylist::parse(&big, 10, 10_000, NOW)
        .unwrap_err()
        .contains("exceeds"));
}

#[test]
fn document_past_the_bounds_keeps_what_fits_and_counts_the_rest() {
    let entries: Vec<Value> = (0..5)
        .map(|i| json!({"kind": "jti", "value": format!("j{i}"), "expires": NOW + 60}))
        .collect();
    let doc = json!({"version": 1, "entries": entries}).to_string();
    let p = denylist::parse(doc.as_bytes(), 3, 100_000, NOW).unwrap();
    assert_eq!((p.set.len(), p.refused), (3, 2));
}

// --- SSF ---

const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";
const ISS: &str = "https://idp.test";

fn rules(event: &str, payload: Value, sub_id: Option<Value>) -> Vec<ssf::Rule> {
    ssf::rules_for_event(event, &payload, sub_id.as_ref(), NOW, Some(ISS), 3600)
}

#[test]
fn session_revoked_with_a_session_revokes_that_session_only() {
    let subject = json!({"format": "complex",
        "session": {"format": "opaque", "id": "sess-1"},
        "user": {"format": "iss_sub", "iss": ISS, "sub": "alice"}});
    let r = rules(
        &format!("{CAEP}session-revoked"),
        json!({"subject": subject, "event_timestamp": NOW - 5}),
        None,
    );
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].kind, r[0].value.as_str()), (Kind::Sid, "sess-1"));
    assert_eq!(r[0].entry.expires, NOW - 5 + 3600);
}

#[test]
fn user_events_revoke_tokens_issued_before_the_event() {
    for event in [
        format!("{CAEP}session-revoked"),
        format!("{CAEP}credential-change"),
        format!("{CAEP}token-claims-change"),
        format!("{RISC}account-disabled"),
        format!("{RISC}account-purged"),
        format!("{RISC}sessions-revoked"),
    ] {
        // SSF 1.0 puts the subject in the SET's sub_id.
        let r = rules(
            &event,
            json!({}),
            Some(json!({"format": "iss_sub", "iss": ISS, "sub": "alice"})),
        );
        assert_eq!(r.len(), 1, "{event}");
        assert_eq!((r[0].kind, r[0].value.as_str()), (Kind::Sub, "alice"));
        assert_eq!(r[0].entry.issued_before, Some(NOW), "{event}");
    }
}

#[test]
fn subjects_that_match_no_claim_make_no_rule() {
    let ev = format!("{CAEP}credential-change");
    // Another issuer's subject.
    assert!(rules(
        &ev,
        json!({"subject": {"format": "iss_sub", "iss": "https://other", "sub": "a"}}),
        None
    )
    .is_empty());
    for s in [
        json!({"format": "opaque", "id": "x"}),
        json!({"format": "phone_number", "phone_number": "+1"}),
        json!({"format": "account", "uri": "acct:a@b"}),
    ] {
        assert!(rules(&ev, json!({"subject": s}), None).is_empty());
    }
    // Unknown event types.
    assert!(rules(
        &format!("{CAEP}assurance-level-change"),
        json!({"subject": {"format": "email", "email": "a@b"}}),
        None
    )
    .is_empty());
    assert!(rules(
        "https://example.com/x",
        json!({"subject": {"format": "email", "email": "a@b"}}),
        None
    )
    .is_empty());
    // Email and aliases map.
    let r = rules(
        &ev,
        json!({"subject": {"format": "aliases", "identifiers": [
            {"format": "email", "email": "a@b"},
            {"format": "iss_sub", "iss": ISS, "sub": "a"},
            {"format": "aliases", "identifiers": [{"format": "email", "email": "deep@b"}]}
        ]}}),
        None,
    );
    let kinds: Vec<_> = r.iter().map(|r| (r.kind, r.value.as_str())).collect();
    assert_eq!(kinds, vec![(Kind::Email, "a@b"), (Kind::Sub, "a")]);
}

fn settings() -> ssf::SsfSettings {
    let fetch = RemoteJwks {
        uri: "http://tx/poll".into(),
        oidc_discovery: false,
        cluster: "tx".into(),
        authority: "tx".into(),
        path: "/poll".into(),
        timeout_ms: 1000,
        cache_duration_ms: 1000,
        fast_listener: false,
        failed_refetch_ms: 1000,
        num_retries: 3,
        base_interval_ms: 200,
        max_interval_ms: 1000,
        min_refetch_ms: 1000,
        max_stale_ms: 10_000,
        shared_key: "k".into(),
    };
    ssf::SsfSettings {
        poll: FeedSettings {
            fetch: fetch.clone(),
            staleness_ms: 10_000,
            fail_closed: false,
        },
        jwks: fetch,
        issuer: ISS.into(),
        audience: "gw".into(),
        max_events: 10,
        rule_lifetime_secs: 3600,
        authorization: None,
    }
}

pub(crate) fn sign_set(typ: &str, iss: &str, aud: &str, jti: &str, events: Value) -> String {
    use jwt_simple::prelude::*;
    #[derive(Serialize, Deserialize)]
    struct Ev {
        events: Value,
    }
    let pem = std::fs::read_to_string(format!(
        "{}/tests/fixtures/keys/ec256.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let key = ES256KeyPair::from_pem(&pem).unwrap().with_key_id("ec-256");
    let claims = Claims::with_custom_claims(Ev { events }, Duration::from_hours(1))
        .with_issuer(iss)
        .with_audience(aud)
        .with_jwt_id(jti);
    let opts = HeaderOptions {
        signature_type: Some(typ.to_string()),
        ..Default::default()
    };
    key.sign_with_options(claims, &opts).unwrap()
}

fn keys() -> KeySet {
    KeySet::parse(crate::testutil::FIXTURE_JWKS).unwrap().0
}

fn verify(jti: &str, set: &str) -> Result<ssf::Verified, Reject> {
    ssf::verify_set(jti, set, &settings(), &keys(), &crate::token::native_verify)
}

#[test]
fn a_set_signed_by_the_transmitter_is_verified() {
    let ev =
        json!({format!("{CAEP}session-revoked"): {"subject": {"format": "email", "email": "a@b"}}});
    let set = sign_set("secevent+jwt", ISS, "gw", "set-1", ev);
    let v = verify("set-1", &set).unwrap();
    assert_eq!(v.events.len(), 1);
}

#[test]
fn forged_or_wrongly_addressed_sets_are_refused_with_their_reason() {
    let ev = json!({format!("{CAEP}session-revoked"): {}});
    let good = sign_set("secevent+jwt", ISS, "gw", "j", ev.clone());
    assert_eq!(
        verify("j", &sign_set("JWT", ISS, "gw", "j", ev.clone())).unwrap_err(),
        Reject::Type
    );
    assert_eq!(
        verify(
            "j",
            &sign_set("secevent+jwt", "https://evil", "gw", "j", ev.clone())
        )
        .unwrap_err(),
        Reject::Issuer
    );
    assert_eq!(
        verify(
            "j",
            &sign_set("secevent+jwt", ISS, "other", "j", ev.clone())
        )
        .unwrap_err(),
        Reject::Audience
    );
    assert_eq!(verify("other-jti", &good).unwrap_err(), Reject::Malformed);
    assert_eq!(verify("j", "not.a.jwt").unwrap_err(), Reject::Malformed);
    // Payload swapped under the signature: a forgery.
    let parts: Vec<&str> = good.split('.').collect();
    let forged_payload = crate::testutil::b64(
        json!({"iss": ISS, "aud": "gw", "jti": "j", "iat": NOW, "events": ev})
            .to_string()
            .as_bytes(),
    );
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(verify("j", &forged).unwrap_err(), Reject::Signature);
    // Signed by a key the transmitter does not hold (HS with a made-up kid).
    let hs = crate::testutil::mint_raw(
        r#"{"alg":"ES256","typ":"secevent+jwt","kid":"nope"}"#,
        r#"{"iss":"x"}"#,
        b"k",
    );
    assert_eq!(verify("j", &hs).unwrap_err(), Reject::UnknownKey);
}

#[test]
fn poll_body_acknowledges_and_reports_errors() {
    let p = Pending {
        ack: vec!["a".into()],
        errs: vec![("b".into(), Reject::Signature.code())],
    };
    let body: Value = serde_json::from_str(&p.poll_body(5)).unwrap();
    assert_eq!(body["ack"], json!(["a"]));
    assert_eq!(body["setErrs"]["b"]["err"], "authentication_failed");
    assert_eq!(body["maxEvents"], 5);
    assert_eq!(body["returnImmediately"], true);
    assert_eq!(Pending::decode(p.encode().as_bytes()), p);
    assert_eq!(Pending::decode(b"garbage"), Pending::default());
}

#[test]
fn poll_responses_are_read_strictly() {
    let r = ssf::parse_poll_response(br#"{"sets":{"a":"x.y.z"},"moreAvailable":true}"#).unwrap();
    assert_eq!(r.sets, vec![("a".to_string(), "x.y.z".to_string())]);
    assert!(r.more_available);
    assert!(ssf::parse_poll_response(br#"{"sets":{}}"#)
        .unwrap()
        .sets
        .is_empty());
    for bad in [
        &br#"{"sets":{"a":"x","a":"y"}}"#[..],
        br#"{"sets":[]}"#,
        br#"{"sets":{"a":1}}"#,
        br#"{"moreAvailable":"yes"}"#,
        b"[]",
        b"",
    ] {
        assert!(
            ssf::parse_poll_response(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}
