use serde_json::{json, Value};

use crate::checker::{check, Report};

const DEMO_JWKS: &str = include_str!("../../envoy/demo/jwks.json");

/// A provider with no lint warning, and `revocation` as given.
fn config(revocation: Value) -> Value {
    json!({
        "providers": {"p": {
            "issuer": "https://issuer.test",
            "audiences": ["api"],
            "require_expiration": true,
            "max_lifetime": "3600s",
            "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
            "local_jwks": {"inline_string": DEMO_JWKS},
            "revocation": revocation,
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}],
    })
}

fn deny_list() -> Value {
    json!({"http_uri": {"uri": "https://idp.test/revoked.json", "cluster": "idp"}})
}

fn ssf() -> Value {
    json!({
        "poll_endpoint": {"uri": "https://idp.test/ssf/poll", "cluster": "idp"},
        "transmitter_jwks": {"http_uri": {"uri": "https://idp.test/ssf/jwks", "cluster": "idp"}},
        "issuer": "https://idp.test",
        "audience": "https://gw.test",
    })
}

fn run(doc: &Value) -> Report {
    check(&serde_json::to_vec(doc).unwrap())
}

fn error_paths(r: &Report) -> Vec<String> {
    r.errors().map(|f| f.path.clone()).collect()
}

fn warning_paths(r: &Report) -> Vec<String> {
    r.warnings().map(|f| f.path.clone()).collect()
}

const R: &str = "providers.p.revocation";

#[test]
fn safe_revocation_has_no_findings() {
    let r = run(&config(json!({"deny_list": deny_list(), "ssf": ssf()})));
    assert!(r.findings.is_empty(), "{:?}", r.findings);
}

#[test]
fn bad_values_are_errors_with_their_paths() {
    let mut d = deny_list();
    d["poll_interval"] = json!("ten");
    d["http_uri"]["cluster"] = json!("");
    let mut s = ssf();
    s["max_events"] = json!(0);
    s["audience"] = json!("");
    s["staleness"] = json!("1s");
    s["authorization"] = json!("Bearer a\nb");
    let r = run(&config(
        json!({"deny_list": d, "ssf": s, "max_entries": 0, "max_bytes": 10}),
    ));
    let paths = error_paths(&r);
    for want in [
        "deny_list.poll_interval",
        "deny_list.http_uri.cluster",
        "ssf.max_events",
        "ssf.audience",
        "ssf.staleness",
        "ssf.authorization",
        "max_entries",
        "max_bytes",
    ] {
        assert!(paths.contains(&format!("{R}.{want}")), "{want}: {paths:?}");
    }
    assert_eq!(r.warnings().count(), 0, "no warnings on a refused config");

    // A provider in error also fails the rule naming it.
    let rule = "rules[0].requires.provider_name";
    let r = run(&config(json!({})));
    assert_eq!(error_paths(&r), [R, rule], "no source");

    let r = run(&config(json!({"deny_list": deny_list(), "bogus": 1})));
    // The reader stops at the first unknown field.
    assert_eq!(error_paths(&r), [format!("{R}.bogus")]);

    let mut s = ssf();
    s.as_object_mut().unwrap().remove("issuer");
    let r = run(&config(json!({"ssf": s})));
    assert!(r.has_errors(), "issuer is required: {:?}", r.findings);
    assert!(
        r.errors().any(|e| e.message.contains("issuer")),
        "{:?}",
        r.findings
    );
}

#[test]
fn long_poll_interval_and_staleness_warn() {
    let mut d = deny_list();
    d["poll_interval"] = json!("600s");
    d["staleness"] = json!("7200s");
    let r = run(&config(json!({"deny_list": d})));
    assert_eq!(
        warning_paths(&r),
        [
            format!("{R}.deny_list.poll_interval"),
            format!("{R}.deny_list.staleness")
        ]
    );
    let stale = r.warnings().nth(1).unwrap();
    assert!(stale.message.contains("without fail_closed"), "{stale}");

    let mut d = deny_list();
    d["staleness"] = json!("7200s");
    d["fail_closed"] = json!(true);
    let r = run(&config(json!({"deny_list": d})));
    assert_eq!(warning_paths(&r), [format!("{R}.deny_list.staleness")]);
    let stale = r.warnings().next().unwrap();
    assert!(stale.message.contains("only after 7200s"), "{stale}");

    // At the bounds: no warning.
    let mut s = ssf();
    s["poll_interval"] = json!("300s");
    s["staleness"] = json!("3600s");
    let r = run(&config(json!({"ssf": s})));
    assert!(r.findings.is_empty(), "{:?}", r.findings);
}

#[test]
fn plain_http_feeds_warn() {
    let mut d = deny_list();
    d["http_uri"]["uri"] = json!("http://idp.test/revoked.json");
    let mut s = ssf();
    s["poll_endpoint"]["uri"] = json!("http://idp.test/ssf/poll");
    s["transmitter_jwks"]["http_uri"]["uri"] = json!("http://idp.test/ssf/jwks");
    s["authorization"] = json!("Bearer receiver-credential");
    let r = run(&config(json!({"deny_list": d, "ssf": s})));
    assert_eq!(
        warning_paths(&r),
        [
            format!("{R}.deny_list.http_uri.uri"),
            format!("{R}.ssf.poll_endpoint.uri"),
            format!("{R}.ssf.authorization"),
            format!("{R}.ssf.transmitter_jwks.http_uri.uri"),
        ]
    );
    // The credential itself is never echoed.
    assert!(
        r.findings
            .iter()
            .all(|f| !f.message.contains("receiver-credential")),
        "{:?}",
        r.findings
    );
}

#[test]
fn rule_lifetime_shorter_than_max_lifetime_warns() {
    let mut s = ssf();
    s["rule_lifetime"] = json!("600s");
    let r = run(&config(json!({"ssf": s})));
    assert_eq!(warning_paths(&r), [format!("{R}.ssf.rule_lifetime")]);
    // camelCase spelling, same verdict.
    let s = json!({
        "pollEndpoint": {"uri": "https://idp.test/ssf/poll", "cluster": "idp"},
        "transmitterJwks": {"http_uri": {"uri": "https://idp.test/ssf/jwks", "cluster": "idp"}},
        "issuer": "https://idp.test",
        "audience": "https://gw.test",
        "ruleLifetime": "600s",
        "pollInterval": "900s",
    });
    let r = run(&config(json!({"ssf": s})));
    assert_eq!(
        warning_paths(&r),
        [
            format!("{R}.ssf.poll_interval"),
            format!("{R}.ssf.rule_lifetime")
        ]
    );
}
