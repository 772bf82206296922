use serde_json::{json, Value};

use super::*;

const DEMO_JWKS: &str = include_str!("../../envoy/demo/jwks.json");

/// A provider with none of the warnings: issuer, audiences, exp required,
/// header-only extraction.
fn safe_provider() -> Value {
    json!({
        "issuer": "https://issuer.test",
        "audiences": ["api"],
        "require_expiration": true,
        "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
        "local_jwks": {"inline_string": DEMO_JWKS},
    })
}

fn config(provider: Value, rules: Value) -> Value {
    json!({"providers": {"p": provider}, "rules": rules})
}

fn required_rule() -> Value {
    json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}])
}

fn run(doc: &Value) -> Report {
    check(&serde_json::to_vec(doc).unwrap())
}

fn warning_paths(r: &Report) -> Vec<String> {
    r.warnings().map(|f| f.path.clone()).collect()
}

#[test]
fn safe_config_has_no_findings() {
    let r = run(&config(safe_provider(), required_rule()));
    assert!(r.findings.is_empty(), "{:?}", r.findings);
}

#[test]
fn errors_are_the_parsers_with_paths() {
    let mut p = safe_provider();
    p["audiences"] = json!([""]);
    p["bogus"] = json!(1);
    let r = run(&config(p, required_rule()));
    assert!(r.has_errors());
    let e: Vec<&Finding> = r.errors().collect();
    assert_eq!(
        e.len(),
        1,
        "the reader stops at the first unknown field: {e:?}"
    );
    assert_eq!(e[0].path, "providers.p.bogus");
    assert!(
        e[0].message.contains("unknown field `bogus`"),
        "{}",
        e[0].message
    );

    // Several semantic errors are all reported, each with its path.
    let mut p = safe_provider();
    p["audiences"] = json!([""]);
    p["max_lifetime"] = json!("ten");
    let r = run(&config(
        p,
        json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "nope"}}]),
    ));
    let paths: Vec<String> = r.errors().map(|f| f.path.clone()).collect();
    assert!(
        paths.contains(&"providers.p.audiences[0]".to_string()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"providers.p.max_lifetime".to_string()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"rules[0].requires.provider_name".to_string()),
        "{paths:?}"
    );
    // No lint warnings on an invalid config.
    assert_eq!(r.warnings().count(), 0);
}

#[test]
fn same_verdict_as_config_parse() {
    for text in [
        "",
        "[]",
        "{}",
        "{\"providers\": 1}",
        "{\"rules\": [{\"match\": {}}]}",
    ] {
        let r = check(text.as_bytes());
        assert_eq!(
            r.has_errors(),
            Config::parse(text.as_bytes()).is_err(),
            "{text}"
        );
    }
}

#[test]
fn no_audiences_warns_unless_every_rule_sets_them() {
    let mut p = safe_provider();
    p.as_object_mut().unwrap().remove("audiences");
    let r = run(&config(p.clone(), required_rule()));
    assert_eq!(warning_paths(&r), ["providers.p.audiences"]);

    let with_aud = json!([{"match": {"prefix": "/"}, "requires":
        {"provider_and_audiences": {"provider_name": "p", "audiences": ["api"]}}}]);
    let r = run(&config(p.clone(), with_aud));
    assert!(r.findings.is_empty(), "{:?}", r.findings);

    // One rule with, one without: still a warning.
    let mixed = json!([
        {"match": {"prefix": "/a"}, "requires":
            {"provider_and_audiences": {"provider_name": "p", "audiences": ["api"]}}},
        {"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
            {"provider_name": "p"}, {"allow_missing": {}}]}}},
    ]);
    let r = run(&config(p, mixed));
    assert_eq!(warning_paths(&r), ["providers.p.audiences"]);
}

#[test]
fn require_expiration_false_warns() {
    let mut p = safe_provider();
    p["require_expiration"] = json!(false);
    let r = run(&config(p, required_rule()));
    assert_eq!(warning_paths(&r), ["providers.p.require_expiration"]);
    assert!(r
        .warnings()
        .next()
        .unwrap()
        .message
        .contains("never expires"));
}

#[test]
fn missing_issuer_warns() {
    let mut p = safe_provider();
    p.as_object_mut().unwrap().remove("issuer");
    let r = run(&config(p, required_rule()));
    assert_eq!(warning_paths(&r), ["providers.p"]);
}

#[test]
fn query_parameters_warn_explicit_and_default() {
    let mut p = safe_provider();
    p["from_params"] = json!(["jwt"]);
    let r = run(&config(p, required_rule()));
    assert_eq!(warning_paths(&r), ["providers.p.from_params"]);

    // No from_* at all: jwt_authn's default includes ?access_token=.
    let mut p = safe_provider();
    p.as_object_mut().unwrap().remove("from_headers");
    let r = run(&config(p, required_rule()));
    assert_eq!(warning_paths(&r), ["providers.p"]);
    assert!(r
        .warnings()
        .next()
        .unwrap()
        .message
        .contains("access_token"));

    // Cookies only: no query parameter involved.
    let mut p = safe_provider();
    p.as_object_mut().unwrap().remove("from_headers");
    p["from_cookies"] = json!(["session"]);
    assert!(run(&config(p, required_rule())).findings.is_empty());
}

fn oct_jwks(secret: &[u8], alg: Option<&str>) -> String {
    let mut k = json!({"kty": "oct", "kid": "hs", "k": crate::testutil::b64(secret)});
    if let Some(a) = alg {
        k["alg"] = json!(a);
    }
    json!({"keys": [k]}).to_string()
}

#[test]
fn short_hmac_secrets_warn() {
    let hs = |secret: &[u8], alg: Option<&str>, allowed: Option<Value>| {
        let mut p = safe_provider();
        p["local_jwks"] = json!({"inline_string": oct_jwks(secret, alg)});
        if let Some(a) = allowed {
            p["allowed_algorithms"] = a;
        }
        run(&config(p, required_rule()))
    };
    // 16 bytes, usable with any HS alg: short for all three.
    let r = hs(&[7u8; 16], None, None);
    assert_eq!(warning_paths(&r), ["providers.p.local_jwks.inline_string"]);
    let msg = &r.warnings().next().unwrap().message;
    assert!(
        msg.contains("16-byte") && msg.contains("HS256 needs 32") && msg.contains("HS512 needs 64"),
        "{msg}"
    );
    assert!(msg.contains("\"hs\""), "names the kid: {msg}");

    // 32 bytes pinned to HS256: fine.
    assert!(hs(&[7u8; 32], Some("HS256"), None).findings.is_empty());
    // 32 bytes, alg free: short for HS384/HS512 only.
    let r = hs(&[7u8; 32], None, None);
    let msg = &r.warnings().next().unwrap().message;
    assert!(
        !msg.contains("HS256") && msg.contains("HS384 needs 48"),
        "{msg}"
    );
    // 32 bytes, provider allows HS256 only: fine.
    assert!(hs(&[7u8; 32], None, Some(json!(["HS256"])))
        .findings
        .is_empty());
    // 48 bytes pinned to HS512: short.
    assert_eq!(hs(&[7u8; 48], Some("HS512"), None).warnings().count(), 1);
}

#[test]
fn allow_missing_or_failed_everywhere_warns() {
    let amof = json!({"allow_missing_or_failed": {}});
    let rules = json!([
        {"match": {"prefix": "/a/"}, "requires": amof},
        {"match": {"prefix": "/b/"}, "requires": {"requires_any": {"requirements": [
            {"provider_name": "p"}, {"allow_missing_or_failed": {}}]}}},
        {"match": {"prefix": "/public/"}},
    ]);
    let r = run(&config(safe_provider(), rules));
    assert_eq!(warning_paths(&r), ["rules"]);

    // As the catch-all only.
    let rules = json!([
        {"match": {"prefix": "/admin"}, "requires": {"provider_name": "p"}},
        {"match": {"prefix": "/"}, "requires": amof},
    ]);
    let r = run(&config(safe_provider(), rules));
    assert_eq!(warning_paths(&r), ["rules[1].requires"]);

    // On a narrow rule next to enforcing rules: legal and fine.
    let rules = json!([
        {"match": {"prefix": "/optional/"}, "requires": amof},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "p"}},
    ]);
    assert!(run(&config(safe_provider(), rules)).findings.is_empty());

    // A catch-all with a header condition is not a catch-all; it exempts on
    // a header a client can send.
    let rules = json!([
        {"match": {"prefix": "/", "headers": [{"name": "x-debug"}]}, "requires": amof},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "p"}},
    ]);
    let r = run(&config(safe_provider(), rules));
    assert_eq!(warning_paths(&r), ["rules[0].match.headers"]);
    assert_eq!(
        r.warnings().next().unwrap().kind,
        Some(Kind::HeaderExemption)
    );
}

#[test]
fn camel_case_fields_are_linted_too() {
    let doc = json!({"providers": {"p": {
        "issuer": "https://issuer.test",
        "audiences": ["api"],
        "requireExpiration": true,
        "fromHeaders": [{"name": "authorization", "valuePrefix": "Bearer "}],
        "localJwks": {"inlineString": DEMO_JWKS},
    }}, "rules": required_rule()});
    let r = run(&doc);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
}

#[test]
fn skipped_keys_are_warnings_with_a_path() {
    let jwks = json!({"keys": [
        serde_json::from_str::<Value>(DEMO_JWKS).unwrap()["keys"][0].clone(),
        {"kty": "XYZ", "kid": "weird"},
    ]})
    .to_string();
    let mut p = safe_provider();
    p["local_jwks"] = json!({"inline_string": jwks});
    let r = run(&config(p, required_rule()));
    assert!(!r.has_errors());
    let w: Vec<&Finding> = r.warnings().collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].path, "providers.p.local_jwks");
    assert!(w[0].message.contains("weird"), "{}", w[0].message);
}

#[test]
fn plugin_configs_from_wasmplugin_and_envoy_bootstrap() {
    let wp = json!({"apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin",
        "spec": {"pluginConfig": {"providers": {}}}});
    let found = plugin_configs(&wp);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].label, "spec.pluginConfig");
    assert_eq!(found[0].bytes, br#"{"providers":{}}"#);

    let bootstrap = json!({"static_resources": {"listeners": [{"filter_chains": [{"filters": [{
        "typed_config": {"http_filters": [
            {"name": "envoy.filters.http.wasm", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {"configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": "{\"rules\": []}"}}}},
            {"name": "envoy.filters.http.router"}]}}]}]}]}});
    let found = plugin_configs(&bootstrap);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].label,
        "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config.configuration.value"
    );
    assert_eq!(found[0].bytes, b"{\"rules\": []}");

    assert!(plugin_configs(&json!({"providers": {}})).is_empty());
}

#[test]
fn report_mode_and_plain_http_jwks_warn() {
    let mut doc = config(safe_provider(), required_rule());
    doc["mode"] = json!("report");
    assert_eq!(warning_paths(&run(&doc)), ["mode"]);

    let mut p = safe_provider();
    p.as_object_mut().unwrap().remove("local_jwks");
    p["remote_jwks"] = json!({"http_uri": {"uri": "http://idp/jwks", "cluster": "idp"}});
    let doc = config(p, required_rule());
    assert_eq!(
        warning_paths(&run(&doc)),
        ["providers.p.remote_jwks.http_uri.uri"]
    );
}

#[test]
fn open_prefix_not_ending_at_a_segment_is_flagged() {
    let rules = json!([
        {"match": {"prefix": "/public"}},
        {"match": {"prefix": "/optional"}, "requires": {"allow_missing": {}}},
        {"match": {"prefix": "/maybe"},
         "requires": {"requires_any": {"requirements": [{"provider_name": "p"}, {"allow_missing": {}}]}}},
        {"match": {"prefix": "/static/"}},
        {"match": {"path": "/healthz"}},
        {"match": {"prefix": "/admin"}, "requires": {"provider_name": "p"}},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "p"}},
    ]);
    let r = run(&config(safe_provider(), rules));
    assert!(!r.has_errors(), "{:?}", r.findings);
    let paths = warning_paths(&r);
    assert_eq!(
        paths,
        vec![
            "rules[0].match.prefix",
            "rules[1].match.prefix",
            "rules[2].match.prefix"
        ],
        "{:?}",
        r.findings
    );
    let msg = &r
        .warnings()
        .next()
        .map(|f| f.message.clone())
        .unwrap_or_default();
    assert!(msg.contains("\"/public-admin\""), "{msg}");
    assert!(msg.contains("{\"path\": \"/public\"}"), "{msg}");
    assert!(msg.contains("{\"prefix\": \"/public/\"}"), "{msg}");
}

/// An Envoy bootstrap with one HTTP connection manager (`hcm` merged into
/// it) whose wasm filter carries `plugin`.
fn bootstrap(plugin: &Value, hcm: Value) -> Value {
    let mut tc = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "in",
        "http_filters": [
            {"name": "envoy.filters.http.wasm", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {"configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": plugin.to_string()}}}},
            {"name": "envoy.filters.http.router"}]});
    for (k, v) in hcm.as_object().unwrap() {
        tc[k] = v.clone();
    }
    json!({"static_resources": {"listeners": [{"filter_chains": [{"filters": [{
        "name": "envoy.filters.network.http_connection_manager", "typed_config": tc}]}]}]}})
}

fn check_bootstrap(doc: &Value) -> Vec<String> {
    plugin_configs(doc)
        .iter()
        .flat_map(|f| check_in(&f.bytes, f.hcm.as_ref()).findings)
        .map(|f| f.to_string())
        .collect()
}

#[test]
fn exempt_prefixes_need_a_normalising_connection_manager() {
    let rules = json!([
        {"match": {"prefix": "/public/"}},
        {"match": {"path": "/health"}},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "p"}},
    ]);
    let plugin = config(safe_provider(), rules);
    let found = check_bootstrap(&bootstrap(&plugin, json!({})));
    assert_eq!(found.len(), 1, "{found:?}");
    let line = &found[0];
    assert!(line.starts_with("warning: rules[0].match: "), "{line}");
    assert!(line.ends_with(" [path_not_normalized]"), "{line}");
    for setting in [
        "normalize_path: true",
        "merge_slashes: true",
        "path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD",
    ] {
        assert!(line.contains(setting), "{line}");
    }
    assert!(line.contains("static_resources.listeners[0].filter_chains[0].filters[0].typed_config"));

    // Only what is missing is named.
    let found = check_bootstrap(&bootstrap(
        &plugin,
        json!({"normalize_path": true, "merge_slashes": true}),
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(!found[0].contains("merge_slashes"), "{}", found[0]);
    assert!(found[0].contains("path_with_escaped_slashes_action"));

    for action in [
        "UNESCAPE_AND_FORWARD",
        "REJECT_REQUEST",
        "UNESCAPE_AND_REDIRECT",
    ] {
        let hcm = json!({"normalize_path": {"value": true}, "merge_slashes": true,
                         "path_with_escaped_slashes_action": action});
        assert!(
            check_bootstrap(&bootstrap(&plugin, hcm)).is_empty(),
            "{action}"
        );
    }
    let keep = json!({"normalize_path": true, "merge_slashes": true,
                      "path_with_escaped_slashes_action": "KEEP_UNCHANGED"});
    assert_eq!(check_bootstrap(&bootstrap(&plugin, keep)).len(), 1);

    // No exempt prefix: nothing to say; the plugin config alone: not known.
    let strict = config(safe_provider(), required_rule());
    assert!(check_bootstrap(&bootstrap(&strict, json!({}))).is_empty());
    assert!(run(&plugin).findings.is_empty());
}

#[test]
fn the_checker_lists_exactly_the_configs_warnings() {
    let mut p = safe_provider();
    p.as_object_mut().unwrap().remove("issuer");
    p["from_params"] = json!(["t"]);
    let doc = json!({"mode": "report", "providers": {"p": p}, "rules": [
        {"match": {"prefix": "/open", "headers": [{"name": "x-env", "exact_match": "dev"}]}},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]});
    let bytes = serde_json::to_vec(&doc).unwrap();
    let config = Config::parse(&bytes).unwrap();
    let printed: Vec<String> = check(&bytes)
        .findings
        .iter()
        .map(|f| f.to_string())
        .collect();
    let logged: Vec<String> = config
        .warnings
        .iter()
        .map(|w| format!("warning: {w}"))
        .collect();
    assert!(logged.len() >= 5, "{logged:?}");
    assert_eq!(printed, logged);
}
