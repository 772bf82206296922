use super::*;
use crate::testutil::{hs_jwks, hs_secret, mint, mint_raw};
use crate::token::native_verify;

const NOW: u64 = 1_700_000_000;

fn cfg(rules: &str, extra_a: &str) -> Config {
    let jwks = serde_json::to_string(&hs_jwks()).unwrap();
    let json = format!(
        r#"{{"providers":{{
            "a":{{"issuer":"iss-a","audiences":["api"],"local_jwks":{{"inline_string":{jwks}}},
                 "forward_payload_header":"x-payload","claim_to_headers":[
                   {{"header_name":"x-sub","claim_name":"sub"}},
                   {{"header_name":"x-team","claim_name":"org.team"}},
                   {{"header_name":"x-roles","claim_name":"roles"}},
                   {{"header_name":"x-level","claim_name":"level"}},
                   {{"header_name":"x-admin","claim_name":"admin"}}]{extra_a}}},
            "b":{{"issuer":"iss-b","local_jwks":{{"inline_string":{jwks}}},
                 "from_headers":[{{"name":"x-b-token"}}],"from_params":["b_token"],"from_cookies":["b_session"]}}
        }},"rules":[{rules}]}}"#
    );
    Config::parse(json.as_bytes()).unwrap()
}

fn req(path: &str, headers: &[(&str, &str)]) -> RequestView {
    let mut h = vec![
        (":path".to_string(), path.to_string()),
        (":method".into(), "GET".into()),
    ];
    h.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    RequestView::new(h)
}

fn decide(c: &Config, r: &RequestView) -> Decision {
    Evaluator::new(c, &[], r, NOW, &native_verify).decide()
}

fn tok(iss: &str, extra: &str) -> String {
    mint(&format!(
        r#"{{"iss":"{iss}","aud":"api","sub":"u1","exp":{}{extra}}}"#,
        NOW + 60
    ))
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

const A_ONLY: &str =
    r#"{"match":{"prefix":"/public"}},{"match":{"prefix":"/"},"requires":{"provider_name":"a"}}"#;

#[test]
fn public_route_and_no_match_need_nothing() {
    let c = cfg(A_ONLY, "");
    assert_eq!(decide(&c, &req("/public/x", &[])), Decision::NoAuth);
    let c = cfg(
        r#"{"match":{"prefix":"/api"},"requires":{"provider_name":"a"}}"#,
        "",
    );
    assert_eq!(decide(&c, &req("/other", &[])), Decision::NoAuth);
}

#[test]
fn first_matching_rule_wins() {
    let c = cfg(
        r#"{"match":{"prefix":"/"},"requires":{"provider_name":"a"}},{"match":{"prefix":"/public"}}"#,
        "",
    );
    assert_eq!(
        decide(&c, &req("/public", &[])),
        Decision::Deny(AuthError::Missing)
    );
}

#[test]
fn valid_token_allows_with_annotations() {
    let c = cfg(A_ONLY, "");
    let t = tok(
        "iss-a",
        r#","org":{"team":"blue"},"roles":["r1","r2"],"level":3,"admin":false"#,
    );
    let d = decide(&c, &req("/x", &[("authorization", &bearer(&t))]));
    let payload = t.split('.').nth(1).unwrap().to_string();
    assert_eq!(
        d,
        Decision::Allow(vec![
            HeaderOp::Set("x-payload".into(), payload),
            HeaderOp::Set("x-sub".into(), "u1".into()),
            HeaderOp::Set("x-team".into(), "blue".into()),
            // base64 of `["r1","r2"]`, as jwt_authn writes a list.
            HeaderOp::Set("x-roles".into(), "WyJyMSIsInIyIl0=".into()),
            HeaderOp::Set("x-level".into(), "3".into()),
            HeaderOp::Set("x-admin".into(), "false".into()),
            HeaderOp::Remove("authorization".into()),
        ])
    );
}

#[test]
fn forward_true_keeps_token_and_padding_pads() {
    let c = cfg(
        A_ONLY,
        r#","forward":true,"pad_forward_payload_header":true"#,
    );
    let t = tok("iss-a", "");
    let Decision::Allow(ops) = decide(&c, &req("/x", &[("authorization", &bearer(&t))])) else {
        panic!("not allowed")
    };
    assert!(!ops.iter().any(|o| matches!(o, HeaderOp::Remove(_))));
    let HeaderOp::Set(_, payload) = &ops[0] else {
        panic!()
    };
    assert_eq!(payload.len() % 4, 0);
    assert!(payload.starts_with(t.split('.').nth(1).unwrap()));
}

#[test]
fn denials_map_to_causes() {
    let c = cfg(A_ONLY, "");
    let cases = [
        (None, AuthError::Missing),
        (Some(tok("iss-b", "")), AuthError::Issuer),
        (
            Some(mint(&format!(
                r#"{{"iss":"iss-a","aud":"api","exp":{}}}"#,
                NOW - 100
            ))),
            AuthError::Expired,
        ),
        (
            Some(mint(&format!(
                r#"{{"iss":"iss-a","aud":"other","exp":{}}}"#,
                NOW + 100
            ))),
            AuthError::Audience,
        ),
        (Some("garbage".to_string()), AuthError::Malformed),
        (
            Some(mint_raw(
                r#"{"alg":"HS256","kid":"zz"}"#,
                r#"{"iss":"iss-a","aud":"api"}"#,
                &hs_secret(),
            )),
            AuthError::UnknownKid,
        ),
    ];
    for (t, want) in cases {
        let h = t.map(|t| bearer(&t));
        let headers: Vec<(&str, &str)> = h.iter().map(|v| ("authorization", v.as_str())).collect();
        assert_eq!(
            decide(&c, &req("/x", &headers)),
            Decision::Deny(want),
            "{want:?}"
        );
    }
}

#[test]
fn provider_and_audiences_overrides() {
    let c = cfg(
        r#"{"match":{"prefix":"/"},"requires":{"provider_and_audiences":{"provider_name":"a","audiences":["special"]}}}"#,
        "",
    );
    let t = tok("iss-a", "");
    assert_eq!(
        decide(&c, &req("/", &[("authorization", &bearer(&t))])),
        Decision::Deny(AuthError::Audience)
    );
    let t2 = mint(&format!(
        r#"{{"iss":"iss-a","aud":["special"],"exp":{}}}"#,
        NOW + 60
    ));
    assert!(matches!(
        decide(&c, &req("/", &[("authorization", &bearer(&t2))])),
        Decision::Allow(_)
    ));
}

#[test]
fn requires_any_and_all() {
    let any = cfg(
        r#"{"match":{"prefix":"/"},"requires":{"requires_any":{"requirements":[{"provider_name":"a"},{"provider_name":"b"}]}}}"#,
        "",
    );
    let ta = tok("iss-a", "");
    let tb = tok("iss-b", "");
    assert!(matches!(
        decide(&any, &req("/", &[("authorization", &bearer(&ta))])),
        Decision::Allow(_)
    ));
    assert!(matches!(
        decide(&any, &req("/", &[("x-b-token", &tb)])),
        Decision::Allow(_)
    ));
    assert_eq!(
        decide(&any, &req("/", &[])),
        Decision::Deny(AuthError::Missing)
    );
    // A bad token with b's issuer in a's location: the issuer mismatch for a
    // is less specific than nothing at all for b... b is missing, a says issuer.
    assert_eq!(
        decide(&any, &req("/", &[("authorization", &bearer(&tb))])),
        Decision::Deny(AuthError::Issuer)
    );
    let all = cfg(
        r#"{"match":{"prefix":"/"},"requires":{"requires_all":{"requirements":[{"provider_name":"a"},{"provider_name":"b"}]}}}"#,
        "",
    );
    assert_eq!(
        decide(&all, &req("/", &[("authorization", &bearer(&ta))])),
        Decision::Deny(AuthError::Missing)
    );
    assert!(matches!(
        decide(
            &all,
            &req("/", &[("authorization", &bearer(&ta)), ("x-b-token", &tb)])
        ),
        Decision::Allow(_)
    ));
}

#[test]
fn allow_missing_and_allow_missing_or_failed() {
    let am = cfg(
        r#"{"match":{"prefix":"/"},"requires":{"allow_missing":{}}}"#,
        "",
    );
    assert_eq!(decide(&am, &req("/", &[])), Decision::Allow(vec![]));
    let expired = mint(&format!(
        r#"{{"iss":"iss-a","aud":"api","exp":{}}}"#,
        NOW - 1000
    ));
    assert_eq!(
        decide(&am, &req("/", &[("authorization", &bearer(&expired))])),
        Decision::Deny(AuthError::Expired)
    );
    let good = tok("iss-a", "");
    assert!(matches!(
        decide(&am, &req("/", &[("authorization", &bearer(&good))])),
        Decision::Allow(ops) if !ops.is_empty()
    ));
    let amf = cfg(
        r#"{"match":{"prefix":"/"},"requires":{"allow_missing_or_failed":{}}}"#,
        "",
    );
    assert_eq!(decide(&amf, &req("/", &[])), Decision::Allow(vec![]));
    assert_eq!(
        decide(&amf, &req("/", &[("authorization", &bearer(&expired))])),
        Decision::Allow(vec![])
    );
    // requires_any [a, allow_missing]: the jwt_authn idiom for optional auth.
    let opt = cfg(
        r#"{"match":{"prefix":"/"},"requires":{"requires_any":{"requirements":[{"provider_name":"a"},{"allow_missing":{}}]}}}"#,
        "",
    );
    assert_eq!(decide(&opt, &req("/", &[])), Decision::Allow(vec![]));
    assert_eq!(
        decide(&opt, &req("/", &[("authorization", &bearer(&expired))])),
        Decision::Deny(AuthError::Expired)
    );
}

#[test]
fn token_removed_from_query_and_cookie() {
    let c = cfg(
        r#"{"match":{"prefix":"/"},"requires":{"provider_name":"b"}}"#,
        "",
    );
    let tb = tok("iss-b", "");
    let d = decide(&c, &req(&format!("/p?x=1&b_token={tb}&y=2"), &[]));
    assert_eq!(
        d,
        Decision::Allow(vec![HeaderOp::Set(":path".into(), "/p?x=1&y=2".into())])
    );
    let cookie = format!("a=1; b_session={tb}; c=3");
    let d = decide(&c, &req("/p", &[("cookie", &cookie)]));
    assert_eq!(
        d,
        Decision::Allow(vec![HeaderOp::Set("cookie".into(), "a=1; c=3".into())])
    );
    let cookie = format!("b_session={tb}");
    let d = decide(&c, &req("/p", &[("cookie", &cookie)]));
    assert_eq!(d, Decision::Allow(vec![HeaderOp::Remove("cookie".into())]));
}

#[test]
fn two_different_tokens_are_refused() {
    let c = cfg(
        r#"{"match":{"prefix":"/"},"requires":{"provider_name":"b"}}"#,
        "",
    );
    let t1 = tok("iss-b", "");
    let t2 = tok("iss-b", r#","n":1"#);
    let d = decide(&c, &req(&format!("/p?b_token={t2}"), &[("x-b-token", &t1)]));
    assert_eq!(d, Decision::Deny(AuthError::Multiple));
}

#[test]
fn header_and_regex_rules() {
    let c = cfg(
        r#"{"match":{"safe_regex":{"regex":"/v[0-9]+/open"}}},
           {"match":{"prefix":"/","headers":[{"name":"x-anon","exact_match":"yes"}]}},
           {"match":{"prefix":"/"},"requires":{"provider_name":"a"}}"#,
        "",
    );
    assert_eq!(decide(&c, &req("/v2/open?q=1", &[])), Decision::NoAuth);
    assert_eq!(
        decide(&c, &req("/v2/open/x", &[])),
        Decision::Deny(AuthError::Missing)
    );
    assert_eq!(
        decide(&c, &req("/y", &[("x-anon", "yes")])),
        Decision::NoAuth
    );
    assert_eq!(
        decide(&c, &req("/y", &[("x-anon", "no")])),
        Decision::Deny(AuthError::Missing)
    );
}

#[test]
fn header_rules_see_every_value_of_a_repeated_header() {
    let c = cfg(
        r#"{"match":{"prefix":"/","headers":[{"name":"x-anon","exact_match":"yes"}]}},
           {"match":{"prefix":"/"},"requires":{"provider_name":"a"}}"#,
        "",
    );
    for values in [["no", "yes"], ["yes", "no"]] {
        let h: Vec<(&str, &str)> = values.iter().map(|v| ("x-anon", *v)).collect();
        assert_eq!(decide(&c, &req("/y", &h)), Decision::NoAuth, "{values:?}");
    }
    let c = cfg(
        r#"{"match":{"prefix":"/","headers":[{"name":"x-env","exact_match":"internal","invert_match":true}]}},
           {"match":{"prefix":"/"},"requires":{"provider_name":"a"}}"#,
        "",
    );
    for values in [["public", "internal"], ["internal", "public"]] {
        let h: Vec<(&str, &str)> = values.iter().map(|v| ("x-env", *v)).collect();
        assert_eq!(
            decide(&c, &req("/y", &h)),
            Decision::Deny(AuthError::Missing),
            "{values:?}"
        );
    }
    assert_eq!(
        decide(&c, &req("/y", &[("x-env", "public"), ("x-env", "public")])),
        Decision::NoAuth
    );
}

#[test]
fn claim_text_forms() {
    use serde_json::json;
    assert_eq!(claim_text(&json!("s")), Some("s".into()));
    assert_eq!(claim_text(&json!(1.5)), Some("1.500000".into()));
    assert_eq!(claim_text(&json!(true)), Some("true".into()));
    // Lists and objects: base64 of their JSON text (`["a",1,false]`, `{"a":1}`).
    assert_eq!(
        claim_text(&json!(["a", 1, false])),
        Some("WyJhIiwxLGZhbHNlXQ==".into())
    );
    assert_eq!(claim_text(&json!({"a": 1})), Some("eyJhIjoxfQ==".into()));
    assert_eq!(claim_text(&json!(null)), None);
    assert_eq!(claim_text(&json!("")), None);
    assert_eq!(claim_text(&json!("a\r\nInjected: 1")), None);
    assert_eq!(
        claim_text(&json!("x".repeat(MAX_CLAIM_HEADER_BYTES + 1))),
        None
    );
}

fn cfg_with(rules: &str, top: &str, extra_a: &str) -> Config {
    let jwks = serde_json::to_string(&hs_jwks()).unwrap();
    let json = format!(
        r#"{{"providers":{{
            "a":{{"issuer":"iss-a","audiences":["api"],"local_jwks":{{"inline_string":{jwks}}}{extra_a}}},
            "b":{{"issuer":"iss-b","local_jwks":{{"inline_string":{jwks}}},"from_headers":[{{"name":"x-b-token"}}]}}
        }},"rules":[{rules}]{top}}}"#
    );
    Config::parse(json.as_bytes()).unwrap()
}

fn decide_with(c: &Config, r: &RequestView, route: RouteFacts) -> Decision {
    let mut ev = Evaluator::new(c, &[], r, NOW, &native_verify);
    ev.route = route;
    ev.decide()
}

const MAP: &str = r#","requirement_map":{"need_a":{"provider_name":"a"},"need_b":{"provider_name":"b"},"open":{}},
    "route_metadata_namespace":"jwt_filter",
    "filter_state_rules":{"name":"sel","requires":{"a":{"provider_name":"a"},"none":{}}}"#;

fn per_route(p: PerRoute) -> RouteFacts {
    RouteFacts {
        per_route: Some(p),
        ..RouteFacts::default()
    }
}

#[test]
fn route_metadata_selects_the_requirement_before_the_rules() {
    let c = cfg_with(A_ONLY, MAP, "");
    let a = bearer(&tok("iss-a", ""));
    let b = tok("iss-b", "");
    let with_a = req("/public/x", &[("authorization", &a)]);
    let with_b = req("/public/x", &[("x-b-token", &b)]);
    let none = req("/public/x", &[]);
    // The rules alone: /public needs nothing.
    assert_eq!(
        decide_with(&c, &none, RouteFacts::default()),
        Decision::NoAuth
    );
    // The route's requirement replaces them.
    let need_b = per_route(PerRoute::Name("need_b".into()));
    assert_eq!(
        decide_with(&c, &none, need_b.clone()),
        Decision::Deny(AuthError::Missing)
    );
    assert!(matches!(
        decide_with(&c, &with_b, need_b.clone()),
        Decision::Allow(_)
    ));
    assert_eq!(
        decide_with(&c, &with_a, need_b),
        Decision::Deny(AuthError::Missing)
    );
    // An empty requirement and `disabled` need nothing, even where a rule would.
    let all = req("/x", &[]);
    assert_eq!(
        decide_with(&c, &all, per_route(PerRoute::Name("open".into()))),
        Decision::NoAuth
    );
    assert_eq!(
        decide_with(&c, &all, per_route(PerRoute::Disabled)),
        Decision::NoAuth
    );
    assert_eq!(
        decide_with(&c, &all, RouteFacts::default()),
        Decision::Deny(AuthError::Missing)
    );
    // A name the map lacks denies with 403, as jwt_authn.
    let wrong = decide_with(&c, &with_a, per_route(PerRoute::Name("nope".into())));
    assert_eq!(wrong, Decision::Deny(AuthError::WrongRequirement));
    assert_eq!(AuthError::WrongRequirement.status(), 403);
}

#[test]
fn filter_state_rules_apply_only_when_no_rule_matched() {
    let c = cfg_with(r#"{"match":{"prefix":"/ruled"}}"#, MAP, "");
    let state = |v: &str| RouteFacts {
        filter_state: Some(v.into()),
        ..RouteFacts::default()
    };
    let none = req("/x", &[]);
    assert_eq!(
        decide_with(&c, &none, state("a")),
        Decision::Deny(AuthError::Missing)
    );
    assert_eq!(decide_with(&c, &none, state("none")), Decision::NoAuth);
    assert_eq!(decide_with(&c, &none, state("other")), Decision::NoAuth);
    assert_eq!(
        decide_with(&c, &none, RouteFacts::default()),
        Decision::NoAuth
    );
    // A matching rule comes first.
    assert_eq!(
        decide_with(&c, &req("/ruled", &[]), state("a")),
        Decision::NoAuth
    );
}

#[test]
fn rules_name_requirements_from_the_map() {
    let c = cfg_with(
        r#"{"match":{"prefix":"/b"},"requirement_name":"need_b"},{"match":{"prefix":"/"},"requirement_name":"open"}"#,
        MAP,
        "",
    );
    assert_eq!(
        decide(&c, &req("/b", &[])),
        Decision::Deny(AuthError::Missing)
    );
    assert_eq!(decide(&c, &req("/c", &[])), Decision::NoAuth);
}

#[test]
fn subjects_match_the_sub_claim() {
    let c = cfg_with(
        A_ONLY,
        "",
        r#","subjects":{"prefix":"spiffe://example.org/"}"#,
    );
    let with = |claims: &str| {
        let t = mint(&format!(
            r#"{{"iss":"iss-a","aud":"api","exp":{}{claims}}}"#,
            NOW + 60
        ));
        decide(&c, &req("/x", &[("authorization", &bearer(&t))]))
    };
    assert!(matches!(
        with(r#","sub":"spiffe://example.org/ns/a""#),
        Decision::Allow(_)
    ));
    assert_eq!(
        with(r#","sub":"spiffe://evil.org/x""#),
        Decision::Deny(AuthError::Subject)
    );
    assert_eq!(with(""), Decision::Deny(AuthError::Subject));
    assert_eq!(AuthError::Subject.body(), "Jwt verification fails");
}

#[test]
fn forward_false_strips_every_copy_of_the_token() {
    let c = cfg(
        r#"{"match":{"prefix":"/"},"requires":{"provider_name":"b"}}"#,
        "",
    );
    let t = tok("iss-b", "");
    let path = format!("/x?keep=1&b_token={t}&b_token={t}");
    let cookie = format!("a=1; b_session={t}");
    let r = req(
        &path,
        &[("x-b-token", &t), ("cookie", &cookie), ("x-other", "y")],
    );
    let Decision::Allow(ops) = decide(&c, &r) else {
        panic!("not allowed")
    };
    assert!(
        ops.contains(&HeaderOp::Remove("x-b-token".into())),
        "{ops:?}"
    );
    assert!(
        ops.contains(&HeaderOp::Set(":path".into(), "/x?keep=1".into())),
        "{ops:?}"
    );
    assert!(
        ops.contains(&HeaderOp::Set("cookie".into(), "a=1".into())),
        "{ops:?}"
    );
    // The token is nowhere in what is set.
    assert!(!ops
        .iter()
        .any(|o| matches!(o, HeaderOp::Set(_, v) if v.contains(&t))));
}
