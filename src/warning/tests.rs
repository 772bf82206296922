use super::*;
use crate::config::Config;
use serde_json::json;

/// The warnings about keys and DPoP settings.
fn warnings(c: &Config) -> Vec<Warning> {
    let about = [
        Kind::PlainHttpJwks,
        Kind::ShortHmacSecret,
        Kind::DpopReplayPerWorker,
        Kind::DpopTokenForwarded,
    ];
    c.warnings
        .iter()
        .filter(|w| about.contains(&w.kind))
        .cloned()
        .collect()
}

fn cfg(provider: serde_json::Value) -> Config {
    let doc = json!({"providers": {"p": provider},
                     "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]});
    Config::parse(doc.to_string().as_bytes()).unwrap()
}

fn oct(secret: &[u8], alg: Option<&str>) -> serde_json::Value {
    let mut k = json!({"kty": "oct", "kid": "hs", "k": crate::testutil::b64(secret)});
    if let Some(a) = alg {
        k["alg"] = json!(a);
    }
    json!({"issuer": "i", "local_jwks": {"inline_string": json!({"keys": [k]}).to_string()}})
}

#[test]
fn plain_http_jwks() {
    let remote = |uri: &str| {
        cfg(json!({"issuer": "i", "remote_jwks": {"http_uri": {"uri": uri, "cluster": "c"}}}))
    };
    let w = warnings(&remote("http://idp/jwks"));
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].path, "providers.p.remote_jwks.http_uri.uri");
    assert!(w[0].to_string().contains("plain HTTP"));
    assert!(warnings(&remote("https://idp/jwks")).is_empty());
}

#[test]
fn short_hmac_secrets() {
    let w = warnings(&cfg(oct(&[7u8; 16], None)));
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].path, "providers.p.local_jwks.inline_string");
    assert!(w[0].message.contains("16-byte"), "{}", w[0].message);
    assert!(w[0].message.contains("HS256 needs 32"));
    assert!(w[0].message.contains("\"hs\""));
    assert!(warnings(&cfg(oct(&[7u8; 32], Some("HS256")))).is_empty());
    assert!(warnings(&cfg(oct(&[7u8; 64], None))).is_empty());
    let w = warnings(&cfg(oct(&[7u8; 48], Some("HS512"))));
    assert_eq!(w.len(), 1);
}

#[test]
fn dpop_replay_per_worker_and_forwarded_bound_tokens() {
    let with = |dpop: serde_json::Value, forward: bool| {
        let mut p = oct(&[7u8; 64], Some("HS256"));
        p["dpop"] = dpop;
        p["forward"] = json!(forward);
        warnings(&cfg(p))
    };
    assert!(with(json!({}), false).is_empty());
    let w = with(json!({"replay_cache": "worker"}), true);
    let paths: Vec<&str> = w.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        ["providers.p.dpop.replay_cache", "providers.p.forward"]
    );
}

fn parse(doc: serde_json::Value) -> Config {
    Config::parse(doc.to_string().as_bytes()).unwrap()
}

fn kinds(c: &Config) -> Vec<(Kind, String)> {
    c.warnings
        .iter()
        .map(|w| (w.kind, w.path.clone()))
        .collect()
}

/// A provider with none of the warnings.
fn safe(issuer: &str) -> serde_json::Value {
    let mut p = oct(&[7u8; 64], Some("HS256"));
    p["issuer"] = json!(issuer);
    p["audiences"] = json!(["api"]);
    p["require_expiration"] = json!(true);
    p["from_headers"] = json!([{"name": "authorization", "value_prefix": "Bearer "}]);
    p
}

#[test]
fn kinds_are_unique_snake_case_ids() {
    let ids: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len());
    for id in ids {
        assert!(
            id.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{id}"
        );
    }
}

#[test]
fn a_safe_config_has_no_warnings() {
    let c = parse(json!({"providers": {"p": safe("i")},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]}));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn one_list_with_kind_path_and_message() {
    let mut p = oct(&[7u8; 16], None);
    p.as_object_mut().unwrap().remove("issuer");
    p["from_params"] = json!(["token"]);
    p["clock_skew_seconds"] = json!(900);
    let c = parse(json!({"mode": "report", "providers": {"p": p}, "rules": [
        {"match": {"prefix": "/public", "grpc": {}}},
        {"match": {"prefix": "/", "headers": [{"name": "x-env", "exact_match": "public"}]}},
        {"match": {"prefix": "/"}, "requires": {"allow_missing_or_failed": {}}}]}));
    let got = kinds(&c);
    let want = [
        (Kind::NoRequireExpiration, "providers.p.require_expiration"),
        (Kind::TokenInQuery, "providers.p.from_params"),
        (Kind::LargeClockSkew, "providers.p.clock_skew_seconds"),
        (Kind::IgnoredMatchField, "rules[0].match.grpc"),
        (Kind::NoIssuer, "providers.p"),
        (Kind::NoAudiences, "providers.p.audiences"),
        (
            Kind::ShortHmacSecret,
            "providers.p.local_jwks.inline_string",
        ),
        (Kind::NeverRejects, "rules"),
        (Kind::StringPrefixExemption, "rules[0].match.prefix"),
        (Kind::HeaderExemption, "rules[1].match.headers"),
        (Kind::ReportMode, "mode"),
    ];
    let want: Vec<(Kind, String)> = want.iter().map(|(k, p)| (*k, p.to_string())).collect();
    assert_eq!(got, want);
    let line = c.warnings[9].to_string();
    assert!(
        line.starts_with("rules[1].match.headers: this rule lets requests without a token")
            && line.contains("[\"x-env\"]")
            && line.contains("a client can send itself")
            && line.ends_with(" [header_exemption]"),
        "{line}"
    );
}

#[test]
fn header_exemptions_warn_only_when_they_let_requests_through() {
    let rules = |requires: Option<serde_json::Value>| {
        let mut r = json!({"match": {"prefix": "/", "headers": [
            {"name": "x-internal", "present_match": true}]}});
        if let Some(q) = requires {
            r["requires"] = q;
        }
        let c = parse(json!({"providers": {"p": safe("i")}, "rules": [r,
            {"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]}));
        kinds(&c).into_iter().map(|(k, _)| k).collect::<Vec<_>>()
    };
    assert_eq!(rules(None), [Kind::HeaderExemption]);
    assert_eq!(
        rules(Some(json!({"allow_missing": {}}))),
        [Kind::HeaderExemption]
    );
    assert_eq!(
        rules(Some(json!({"requires_any": {"requirements": [
            {"provider_name": "p"}, {"allow_missing": {}}]}}))),
        [Kind::HeaderExemption]
    );
    assert!(rules(Some(json!({"provider_name": "p"}))).is_empty());
}

#[test]
fn a_bearer_provider_sharing_a_dpop_providers_issuer() {
    let mut bound = safe("https://idp.test");
    bound["dpop"] = json!({});
    let doc = |other_issuer: &str| {
        json!({"providers": {"bound": bound.clone(), "plain": safe(other_issuer)},
            "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
                {"provider_name": "bound"}, {"provider_name": "plain"}]}}}]})
    };
    let c = parse(doc("https://idp.test"));
    assert_eq!(
        kinds(&c),
        [(Kind::DpopIssuerAcceptsBearer, "providers.plain".to_string())]
    );
    assert!(c.warnings[0].message.contains("[\"bound\"]"));
    assert!(c.warnings[0].message.contains("cnf.jkt"));
    assert!(parse(doc("https://other.test")).warnings.is_empty());
}

#[test]
fn oidc_discovery_from_plain_http_or_another_host() {
    let with = |issuer: &str, uri: Option<&str>| {
        let mut p = safe(issuer);
        let o = p.as_object_mut().unwrap();
        o.remove("local_jwks");
        let mut http_uri = json!({"cluster": "c"});
        if let Some(u) = uri {
            http_uri["uri"] = json!(u);
        }
        o.insert(
            "remote_jwks".into(),
            json!({"http_uri": http_uri, "oidc_discovery": true}),
        );
        let c = parse(json!({"providers": {"p": p},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]}));
        c.warnings
    };
    assert!(with("https://idp.test", None).is_empty());
    assert!(with(
        "https://idp.test/realms/a",
        Some("https://IDP.test:443/realms/a/.well-known/openid-configuration")
    )
    .is_empty());
    for (issuer, uri, why) in [
        ("http://idp.test", None, "plain HTTP"),
        (
            "https://idp.test",
            Some("https://evil.test/d"),
            "\"evil.test\"",
        ),
    ] {
        let w = with(issuer, uri);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].kind, Kind::DiscoveryUntrusted);
        assert_eq!(w[0].path, "providers.p.remote_jwks.oidc_discovery");
        assert!(w[0].message.contains(why), "{}", w[0].message);
    }
}

#[test]
fn discovered_uri_problems() {
    let iss = Some("https://accounts.idp.test");
    assert_eq!(
        discovered_uri_problem("https://accounts.idp.test/k", iss),
        None
    );
    assert_eq!(discovered_uri_problem("https://keys.test/k", None), None);
    assert!(discovered_uri_problem("http://accounts.idp.test/k", iss)
        .unwrap()
        .contains("plain HTTP"));
    assert!(discovered_uri_problem("HTTP://x/k", None).is_some());
    assert!(discovered_uri_problem("https://keys.idp.test/k", iss)
        .unwrap()
        .contains("\"keys.idp.test\""));
    assert!(discovered_uri_problem("https://accounts.idp.test@evil.test/k", iss).is_some());
    assert_eq!(uri_host("https://[::1]:8443/x"), Some("::1".into()));
    assert_eq!(uri_host("issuer-name"), None);
}
