use super::*;
use crate::config::Config;
use crate::decision::Decision;
use crate::extract::RequestView;
use crate::policy::Evaluator;
use crate::testutil::{hs_jwks, mint};
use crate::token::native_verify;

const NOW: u64 = 1_700_000_000;

fn claims(json: &str) -> Map<String, Value> {
    serde_json::from_str(json).unwrap()
}

fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn rule_authz(json: &str) -> Result<RuleAuthz, Vec<ConfigError>> {
    let doc: Value = serde_json::from_str(json).unwrap();
    let fields = &["required_scopes", "required_claims", "audiences"];
    let o = Obj::new(&doc, "rules[0]", fields).unwrap();
    let claims = o
        .or_default("required_claims", |v, p| {
            read::list(v, p, RawRequiredClaim::read)
        })
        .unwrap();
    let mut errors = Vec::new();
    let a = validate(
        "rules[0]",
        o.or_default("required_scopes", read::strings).unwrap(),
        claims,
        o.or_default("audiences", read::strings).unwrap(),
        true,
        &mut errors,
    );
    if errors.is_empty() {
        Ok(a)
    } else {
        Err(errors)
    }
}

#[test]
fn scope_string_scp_array_and_scp_string() {
    let want = scopes(&["read", "write"]);
    assert!(has_scopes(
        &claims(r#"{"scope":"openid read write"}"#),
        &want
    ));
    assert!(has_scopes(&claims(r#"{"scp":["write","read"]}"#), &want));
    assert!(has_scopes(&claims(r#"{"scp":"read write"}"#), &want));
    // One of them in each claim also counts.
    assert!(has_scopes(
        &claims(r#"{"scope":"read","scp":["write"]}"#),
        &want
    ));
    assert!(has_scopes(&claims(r#"{}"#), &[]));
}

#[test]
fn missing_one_scope_fails() {
    let want = scopes(&["read", "write"]);
    for c in [
        r#"{"scope":"read"}"#,
        r#"{"scp":["read"]}"#,
        r#"{"scope":"readwrite"}"#,
        r#"{"scope":"read  writer"}"#,
        r#"{"scope":["read","write"]}"#,
        r#"{"scp":{"read":true,"write":true}}"#,
        r#"{}"#,
    ] {
        assert!(!has_scopes(&claims(c), &want), "{c}");
    }
}

#[test]
fn required_claims_string_number_bool_array_nested() {
    let a = rule_authz(
        r#"{"required_claims":[
            {"name":"org.tier","values":["gold","platinum"]},
            {"name":"level","values":[3, 4]},
            {"name":"admin","values":[true]},
            {"name":"groups","values":["ops"]}]}"#,
    )
    .unwrap();
    let ok = claims(r#"{"org":{"tier":"platinum"},"level":3,"admin":true,"groups":["dev","ops"]}"#);
    assert_eq!(check(&a, &[&ok]), Ok(0));
    let float = claims(r#"{"org":{"tier":"gold"},"level":4.0,"admin":true,"groups":"ops"}"#);
    assert_eq!(check(&a, &[&float]), Ok(0));
    for bad in [
        r#"{"org":{"tier":"silver"},"level":3,"admin":true,"groups":["ops"]}"#,
        r#"{"org":{"tier":"gold"},"level":"3","admin":true,"groups":["ops"]}"#,
        r#"{"org":{"tier":"gold"},"level":3,"admin":"true","groups":["ops"]}"#,
        r#"{"org":{"tier":"gold"},"level":3,"admin":true,"groups":["dev"]}"#,
        r#"{"org":"gold","level":3,"admin":true,"groups":["ops"]}"#,
        r#"{"tier":"gold","level":3,"admin":true,"groups":["ops"]}"#,
        r#"{"org":{"tier":["gold"]},"level":3,"admin":false,"groups":["ops"]}"#,
    ] {
        assert_eq!(
            check(&a, &[&claims(bad)]),
            Err(AuthError::InsufficientScope),
            "{bad}"
        );
    }
}

#[test]
fn prefix_match() {
    let a = rule_authz(
        r#"{"required_claims":[{"name":"email","values":["admin-","ops-"],"match":"prefix"}]}"#,
    )
    .unwrap();
    assert_eq!(check(&a, &[&claims(r#"{"email":"ops-1@x"}"#)]), Ok(0));
    assert_eq!(
        check(&a, &[&claims(r#"{"email":["u@x","admin-b"]}"#)]),
        Ok(0)
    );
    assert_eq!(
        check(&a, &[&claims(r#"{"email":"user-ops-1"}"#)]),
        Err(AuthError::InsufficientScope)
    );
}

#[test]
fn audiences_then_scopes_on_one_token() {
    let a =
        rule_authz(r#"{"required_scopes":["read"],"audiences":["https://api.example/"]}"#).unwrap();
    assert_eq!(a.scope_text.as_deref(), Some("read"));
    let good = claims(r#"{"aud":"api.example","scope":"read"}"#);
    let wrong_aud = claims(r#"{"aud":"other","scope":"read"}"#);
    let no_scope = claims(r#"{"aud":["x","api.example"]}"#);
    assert_eq!(check(&a, &[&good]), Ok(0));
    assert_eq!(check(&a, &[&wrong_aud]), Err(AuthError::Audience));
    assert_eq!(check(&a, &[&no_scope]), Err(AuthError::InsufficientScope));
    assert_eq!(check(&a, &[&wrong_aud, &good]), Ok(1));
    assert_eq!(check(&a, &[]), Err(AuthError::Missing));
    // Scope in one token and audience in another do not combine.
    let scope_only = claims(r#"{"aud":"other","scope":"read"}"#);
    assert_eq!(
        check(&a, &[&scope_only, &no_scope]),
        Err(AuthError::InsufficientScope)
    );
}

#[test]
fn bad_authz_config_names_the_field() {
    let cases = [
        (
            r#"{"required_scopes":["a b"]}"#,
            "rules[0].required_scopes[0]",
        ),
        (r#"{"required_scopes":[""]}"#, "rules[0].required_scopes[0]"),
        (
            r#"{"required_claims":[{"name":"a..b","values":["x"]}]}"#,
            "rules[0].required_claims[0].name",
        ),
        (
            r#"{"required_claims":[{"name":"a","values":[]}]}"#,
            "rules[0].required_claims[0].values",
        ),
        (
            r#"{"required_claims":[{"name":"a","values":[null]}]}"#,
            "rules[0].required_claims[0].values[0]",
        ),
        (
            r#"{"required_claims":[{"name":"a","values":[{"x":1}]}]}"#,
            "rules[0].required_claims[0].values[0]",
        ),
        (
            r#"{"required_claims":[{"name":"a","values":[1],"match":"prefix"}]}"#,
            "rules[0].required_claims[0].values[0]",
        ),
        (r#"{"audiences":[""]}"#, "rules[0].audiences[0]"),
    ];
    for (json, path) in cases {
        let errs = rule_authz(json).unwrap_err();
        assert_eq!(errs[0].path, path, "{json}: {errs:?}");
    }
    // `match` is a closed set: refused while parsing, naming the allowed values.
    let Err(errs) = config(
        "",
        r#"{"match":{"prefix":"/"},"requires":{"provider_name":"a"},
            "required_claims":[{"name":"a","values":["x"],"match":"regex"}]}"#,
    ) else {
        panic!("match \"regex\" was accepted");
    };
    assert_eq!(errs[0].path, "rules[0].required_claims[0].match");
    assert!(
        errs[0].message.contains(r#"expected "exact" or "prefix""#),
        "{errs:?}"
    );
}

// ---------------------------------------------------------------------------
// Through Config and Evaluator: rules, modes, status and context.
// ---------------------------------------------------------------------------

fn config(top: &str, rules: &str) -> Result<Config, Vec<ConfigError>> {
    let jwks = serde_json::to_string(&hs_jwks()).unwrap();
    let json = format!(
        r#"{{"providers":{{"a":{{"issuer":"iss-a","audiences":["api"],"local_jwks":{{"inline_string":{jwks}}}}}}},
            "rules":[{rules}]{top}}}"#
    );
    Config::parse(json.as_bytes())
}

fn outcome(c: &Config, path: &str, token: Option<&str>) -> crate::decision::Outcome {
    let mut h = vec![
        (":path".to_string(), path.to_string()),
        (":method".to_string(), "GET".to_string()),
    ];
    if let Some(t) = token {
        h.push(("authorization".into(), format!("Bearer {t}")));
    }
    let view = RequestView::new(h);
    Evaluator::new(c, &[], &view, NOW, &native_verify).outcome()
}

fn tok(extra: &str) -> String {
    mint(&format!(
        r#"{{"iss":"iss-a","aud":"api","sub":"u1","exp":{}{extra}}}"#,
        NOW + 60
    ))
}

const RULES: &str = r#"
    {"match":{"prefix":"/public"}},
    {"match":{"prefix":"/admin"},"requires":{"provider_name":"a"},"required_scopes":["admin","write"]},
    {"match":{"prefix":"/gold"},"requires":{"provider_name":"a"},
     "required_claims":[{"name":"org.tier","values":["gold"]}]},
    {"match":{"prefix":"/aud"},"requires":{"provider_name":"a"},"audiences":["special"]},
    {"match":{"prefix":"/report"},"requires":{"provider_name":"a"},"required_scopes":["x"],"mode":"report"},
    {"match":{"prefix":"/maybe"},"requires":{"allow_missing_or_failed":{}}},
    {"match":{"prefix":"/"},"requires":{"provider_name":"a"}}"#;

#[test]
fn scopes_and_claims_through_the_evaluator() {
    let c = config(r#","filter_state":true"#, RULES).unwrap();
    let o = outcome(&c, "/admin", Some(&tok(r#","scope":"write admin""#)));
    assert!(matches!(o.decision, Decision::Allow(_)));
    assert_eq!(o.status, Some(TokenStatus::Valid));
    assert_eq!(o.accepted, vec![0]);
    let payload: Value = serde_json::from_str(o.payload.as_deref().unwrap()).unwrap();
    assert_eq!(payload["sub"], "u1");
    // Without filter_state the payload is not serialised at all.
    let plain = config("", RULES).unwrap();
    let o = outcome(&plain, "/admin", Some(&tok(r#","scope":"write admin""#)));
    assert!(matches!(o.decision, Decision::Allow(_)));
    assert_eq!(o.payload, None);

    let t = tok(r#","scope":"write""#);
    let o = outcome(&c, "/admin", Some(&t));
    assert_eq!(o.decision, Decision::Deny(AuthError::InsufficientScope));
    assert_eq!(o.status, Some(TokenStatus::Unauthorized));
    assert_eq!((o.rule, o.blamed), (Some(1), Some(0)));
    assert_eq!(c.rules[1].authz.scope_text.as_deref(), Some("admin write"));
    let facts = o.token.unwrap();
    assert_eq!(facts.sub.as_deref(), Some("u1"));
    assert_eq!(facts.iss.as_deref(), Some("iss-a"));

    let o = outcome(&c, "/gold", Some(&tok(r#","org":{"tier":"gold"}"#)));
    assert!(matches!(o.decision, Decision::Allow(_)));
    let o = outcome(&c, "/gold", Some(&tok(r#","org":{"tier":"silver"}"#)));
    assert_eq!(o.decision, Decision::Deny(AuthError::InsufficientScope));

    let o = outcome(&c, "/aud", Some(&tok("")));
    assert_eq!(o.decision, Decision::Deny(AuthError::Audience));
    let t = mint(&format!(
        r#"{{"iss":"iss-a","aud":["api","special"],"exp":{}}}"#,
        NOW + 60
    ));
    assert!(matches!(
        outcome(&c, "/aud", Some(&t)).decision,
        Decision::Allow(_)
    ));
}

#[test]
fn report_mode_is_carried_with_the_would_be_decision() {
    let c = config("", RULES).unwrap();
    let o = outcome(&c, "/report", None);
    assert_eq!(o.mode, Mode::Report);
    assert_eq!(o.decision, Decision::Deny(AuthError::Missing));
    assert_eq!(o.status, Some(TokenStatus::Missing));
    assert_eq!(o.blamed, Some(0));
    assert!(o.token.is_none());
    let o = outcome(&c, "/report", Some(&tok("")));
    assert_eq!(o.decision, Decision::Deny(AuthError::InsufficientScope));
    assert_eq!(o.status, Some(TokenStatus::Unauthorized));
    let o = outcome(&c, "/report", Some("not.a.jwt"));
    assert_eq!(o.decision, Decision::Deny(AuthError::Malformed));
    assert_eq!(o.status, Some(TokenStatus::Invalid));
    assert_eq!(o.token.as_ref().map(|t| t.fingerprint.len()), Some(16));
    // Enforced rules stay enforced.
    assert_eq!(outcome(&c, "/x", None).mode, Mode::Enforce);

    // Top-level report mode, overridden per rule.
    let c = config(
        r#","mode":"report""#,
        r#"{"match":{"prefix":"/strict"},"requires":{"provider_name":"a"},"mode":"enforce"},
           {"match":{"prefix":"/"},"requires":{"provider_name":"a"}}"#,
    )
    .unwrap();
    assert_eq!(c.rules[0].mode, Mode::Enforce);
    assert_eq!(c.rules[1].mode, Mode::Report);
    assert_eq!(outcome(&c, "/other", None).mode, Mode::Report);
    assert_eq!(outcome(&c, "/strict", None).mode, Mode::Enforce);
}

#[test]
fn status_for_allowed_without_a_token() {
    let c = config("", RULES).unwrap();
    let o = outcome(&c, "/maybe", None);
    assert!(matches!(o.decision, Decision::Allow(_)));
    assert_eq!(o.status, Some(TokenStatus::Missing));
    assert!(o.payload.is_none());
    let o = outcome(&c, "/maybe", Some(&tok("").replace("eyJ", "eyK")));
    assert!(matches!(o.decision, Decision::Allow(_)));
    assert_eq!(o.status, Some(TokenStatus::Invalid));
    // Routes that need no token say so, with or without one.
    let o = outcome(&c, "/public", None);
    assert_eq!(o.decision, Decision::NoAuth);
    assert_eq!(o.status, Some(TokenStatus::NotRequired));
    let o = outcome(&c, "/public", Some(&tok("")));
    assert_eq!(o.status, Some(TokenStatus::NotRequired));
}

#[test]
fn expired_token_denial_has_context() {
    let c = config("", RULES).unwrap();
    let t = mint(r#"{"iss":"iss-a","aud":"api","sub":"bob","exp":1}"#);
    let o = outcome(&c, "/x?q=abc", Some(&t));
    assert_eq!(o.decision, Decision::Deny(AuthError::Expired));
    assert_eq!((o.rule, o.blamed), (Some(6), Some(0)));
    let f = o.token.unwrap();
    assert_eq!(f.kid.as_deref(), Some("hs-1"));
    assert_eq!(f.sub.as_deref(), Some("bob"));
}

#[test]
fn top_level_fields_and_errors() {
    let c = config(
        r#","status_header":"X-Jwt-Status","stat_prefix":"edge.jwt""#,
        RULES,
    )
    .unwrap();
    assert_eq!(c.status_header.as_deref(), Some("x-jwt-status"));
    assert!(c.sanitize_headers.contains(&"x-jwt-status".to_string()));
    assert_eq!(c.stat_prefix, "edge.jwt");
    let c = config("", RULES).unwrap();
    assert_eq!(c.stat_prefix, "jwt_filter");
    assert_eq!(c.status_header, None);
    assert_eq!(c.rules[0].mode, Mode::Enforce);

    let path = |top: &str, rules: &str| -> String {
        match config(top, rules) {
            Ok(_) => panic!("accepted {top} {rules}"),
            Err(e) => e[0].path.clone(),
        }
    };
    let any = r#"{"match":{"prefix":"/"},"requires":{"provider_name":"a"}}"#;
    assert_eq!(path(r#","mode":"audit""#, any), "mode");
    assert_eq!(path(r#","status_header":":path""#, any), "status_header");
    assert_eq!(
        path(r#","status_header":"bad header""#, any),
        "status_header"
    );
    assert_eq!(path(r#","stat_prefix":"a-b""#, any), "stat_prefix");
    assert_eq!(
        path(
            "",
            r#"{"match":{"prefix":"/"},"requires":{"provider_name":"a"},"mode":"x"}"#
        ),
        "rules[0].mode"
    );
    assert_eq!(
        path("", r#"{"match":{"prefix":"/"},"required_scopes":["read"]}"#),
        "rules[0].requires"
    );
    assert_eq!(
        path(
            "",
            r#"{"match":{"prefix":"/"},"required_claims":[{"name":"a","values":["b"]}]}"#
        ),
        "rules[0].requires"
    );
    assert_eq!(
        path(
            "",
            r#"{"match":{"prefix":"/"},"requires":{"provider_name":"a"},"scopes":["x"]}"#
        ),
        "rules[0].scopes"
    );
}

#[test]
fn numeric_required_claims_are_exact_integers() {
    let a =
        rule_authz(r#"{"required_claims":[{"name":"tenant_id","values":[1541815603606036480]}]}"#)
            .unwrap();
    let t = |json: &str| check(&a, &[&claims(json)]);
    assert_eq!(t(r#"{"tenant_id":1541815603606036480}"#), Ok(0));
    // One apart: equal as f64, different as integers.
    for bad in [
        r#"{"tenant_id":1541815603606036481}"#,
        r#"{"tenant_id":1541815603606036479}"#,
        r#"{"tenant_id":1.541815603606036481e18}"#,
        r#"{"tenant_id":"1541815603606036480"}"#,
    ] {
        assert_eq!(t(bad), Err(AuthError::InsufficientScope), "{bad}");
    }
    // Negative and u64 integers are exact too; a whole double matches its integer.
    let a = rule_authz(
        r#"{"required_claims":[{"name":"n","values":[-9223372036854775808, 18446744073709551615, 2.0, 1e3]}]}"#,
    )
    .unwrap();
    for good in [
        r#"{"n":-9223372036854775808}"#,
        r#"{"n":18446744073709551615}"#,
        r#"{"n":2}"#,
        r#"{"n":1000.0}"#,
    ] {
        assert_eq!(check(&a, &[&claims(good)]), Ok(0), "{good}");
    }
    assert_eq!(
        check(&a, &[&claims(r#"{"n":18446744073709551614}"#)]),
        Err(AuthError::InsufficientScope)
    );
    // 2^53 written with a fraction reads as the double 2^53, which also
    // stands for 2^53 + 0.5 and 2^53 + 1: it matches no integer, and the
    // integer 2^53 matches only an integer.
    let a =
        rule_authz(r#"{"required_claims":[{"name":"n","values":[9007199254740992]}]}"#).unwrap();
    assert_eq!(check(&a, &[&claims(r#"{"n":9007199254740992}"#)]), Ok(0));
    for bad in [
        r#"{"n":9007199254740992.5}"#,
        r#"{"n":9007199254740992.0}"#,
        r#"{"n":-9007199254740992.0}"#,
        r#"{"n":9.007199254740992e15}"#,
    ] {
        assert_eq!(
            check(&a, &[&claims(bad)]),
            Err(AuthError::InsufficientScope),
            "{bad}"
        );
    }
    // Below 2^53 a whole double is still its integer.
    let a =
        rule_authz(r#"{"required_claims":[{"name":"n","values":[9007199254740991]}]}"#).unwrap();
    assert_eq!(check(&a, &[&claims(r#"{"n":9007199254740991.0}"#)]), Ok(0));
    // Config values that cannot be compared exactly are refused.
    for bad in [
        "4.5",
        "0.1",
        "1e30",
        "9007199254740994.0",
        "9007199254740992.0",
        "9007199254740992.5",
        "-9007199254740992.0",
        "-1e17",
    ] {
        let json = format!(r#"{{"required_claims":[{{"name":"n","values":[{bad}]}}]}}"#);
        let errs = rule_authz(&json).unwrap_err();
        assert!(
            errs[0].message.contains("not an exact integer"),
            "{bad}: {errs:?}"
        );
    }
}
