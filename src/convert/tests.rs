use serde_json::{json, Value};

use super::*;
use crate::config::Config;

const DEMO_JWKS: &str = include_str!("../../envoy/demo/jwks.json");

fn converted(docs: &[Value]) -> Conversion {
    match convert(docs) {
        Ok(c) => c,
        Err(e) => panic!("conversion failed: {e:?}"),
    }
}

fn errors(docs: &[Value]) -> Vec<String> {
    match convert(docs) {
        Ok(c) => panic!("expected errors, got {}", c.config),
        Err(e) => e,
    }
}

/// The converted config is accepted by the filter's own parser.
fn assert_parses(c: &Conversion) {
    let bytes = serde_json::to_vec(&c.config).unwrap();
    if let Err(e) = Config::parse(&bytes) {
        panic!("filter rejects converted config {}: {e:?}", c.config);
    }
}

fn jwt_authn() -> Value {
    json!({
        "providers": {
            "demo": {
                "issuer": "https://demo.test",
                "audiences": ["api"],
                "localJwks": {"inlineString": DEMO_JWKS},
                "fromHeaders": [{"name": "x-token", "valuePrefix": "Token "}],
                "forwardPayloadHeader": "x-payload",
                "claimToHeaders": [{"headerName": "x-sub", "claimName": "sub"}],
                "maxLifetime": {"seconds": 3600},
                "payloadInMetadata": "jwt",
                "requireExpiration": true,
            }
        },
        "rules": [
            {"match": {"prefix": "/public"}},
            {"match": {"safeRegex": {"googleRe2": {}, "regex": "/api/.*"}}, "requirementName": "demo-req"},
            {"match": {"prefix": "/"}, "requires": {"requiresAny": {"requirements": [
                {"providerName": "demo"}, {"allowMissing": {}}]}}},
        ],
        "requirementMap": {"demo-req": {"providerAndAudiences": {"providerName": "demo", "audiences": ["api"]}}},
        "bypassCorsPreflight": true,
    })
}

#[test]
fn jwt_authn_typed_config_camel_case_to_snake_case() {
    let c = converted(&[jwt_authn()]);
    assert_parses(&c);
    let p = &c.config["providers"]["demo"];
    assert_eq!(p["local_jwks"]["inline_string"], DEMO_JWKS);
    assert_eq!(
        p["from_headers"][0],
        json!({"name": "x-token", "value_prefix": "Token "})
    );
    assert_eq!(
        p["claim_to_headers"][0],
        json!({"header_name": "x-sub", "claim_name": "sub"})
    );
    assert_eq!(p["max_lifetime"], "3600s");
    assert!(p.get("payload_in_metadata").is_none());
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("payload_in_metadata dropped")),
        "{:?}",
        c.notes
    );
    let rules = c.config["rules"].as_array().unwrap();
    assert_eq!(rules[0], json!({"match": {"prefix": "/public"}}));
    // requirement_name kept, with requirement_map beside it.
    assert_eq!(
        rules[1]["requirement_name"],
        c.config["requirement_map"]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .as_str()
    );
    assert_eq!(c.config["route_metadata_namespace"], "jwt_filter");
    assert_eq!(rules[1]["match"]["safe_regex"]["regex"], "/api/.*");
    assert_eq!(
        rules[2]["requires"]["requires_any"]["requirements"][1],
        json!({"allow_missing": {}})
    );
    assert_eq!(c.config["bypass_cors_preflight"], true);
}

#[test]
fn jwt_authn_found_in_filter_entry_and_bootstrap() {
    let entry = json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"p": {"issuer": "i", "local_jwks": {"inline_string": DEMO_JWKS}}},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}],
        }
    });
    let c = converted(std::slice::from_ref(&entry));
    assert_parses(&c);
    assert_eq!(c.config["providers"]["p"]["issuer"], "i");
    assert!(c.config.get("@type").is_none());

    let bootstrap = json!({"static_resources": {"listeners": [{"filter_chains": [{"filters": [
        {"typed_config": {"http_filters": [entry, {"name": "envoy.filters.http.router"}]}}]}]}]}});
    let c = converted(&[bootstrap]);
    assert_parses(&c);
}

#[test]
fn jwt_authn_inline_bytes_decoded() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(DEMO_JWKS);
    let doc = json!({"providers": {"p": {"issuer": "i", "local_jwks": {"inline_bytes": b64}}}});
    let c = converted(&[doc]);
    assert_eq!(
        c.config["providers"]["p"]["local_jwks"]["inline_string"],
        DEMO_JWKS
    );
}

#[test]
fn jwt_authn_fields_convert_or_are_refused_with_reason() {
    let doc = json!({
        "providers": {"p": {
            "issuer": "i",
            "subjects": {"prefix": "spiffe://"},
            "local_jwks": {"filename": "/etc/jwks.json"},
        }},
        "rules": [{"match": {"prefix": "/", "query_parameters": [{"name": "x"}],
                             "path_match_policy": {"name": "t"}},
                   "requires": {"provider_name": "p"}}],
        "filter_state_rules": {"name": "x"},
    });
    let e = errors(std::slice::from_ref(&doc));
    let joined = e.join("\n");
    assert!(!joined.contains("providers.p.subjects"), "{joined}");
    assert!(
        joined.contains("providers.p.local_jwks: filename"),
        "{joined}"
    );
    assert!(joined.contains("match.path_match_policy"), "{joined}");
    assert!(!joined.contains("match.query_parameters"), "{joined}");
    // With the file readable, it is inlined.
    let read = |name: &str| -> Result<String, String> {
        assert_eq!(name, "/etc/jwks.json");
        Ok(DEMO_JWKS.to_string())
    };
    let mut ok = doc;
    ok["rules"][0]["match"]
        .as_object_mut()
        .unwrap()
        .remove("path_match_policy");
    let c = convert_with_files(&[ok], &read).unwrap();
    assert_eq!(
        c.config["providers"]["p"]["local_jwks"]["inline_string"],
        DEMO_JWKS
    );
    assert_eq!(
        c.config["providers"]["p"]["subjects"]["prefix"],
        "spiffe://"
    );
    assert_eq!(c.config["filter_state_rules"]["name"], "x");
    assert_parses(&c);
}

#[test]
fn nothing_to_convert_is_an_error() {
    let e = errors(&[json!({"kind": "ServiceEntry"})]);
    assert!(e[0].contains("no jwt_authn configuration"), "{e:?}");
}

#[test]
fn istio_cluster_names() {
    assert_eq!(
        istio_cluster("https://idp.example.com/.well-known/jwks.json").unwrap(),
        "outbound|443||idp.example.com"
    );
    assert_eq!(
        istio_cluster("http://jwks.auth.svc.cluster.local:8080/keys").unwrap(),
        "outbound|8080||jwks.auth.svc.cluster.local"
    );
    assert_eq!(istio_cluster("http://idp").unwrap(), "outbound|80||idp");
    assert!(istio_cluster("idp.example.com/jwks").is_err());
    assert!(istio_cluster("ftp://idp/jwks").is_err());
}

fn request_authentication() -> Value {
    json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "RequestAuthentication",
        "metadata": {"name": "jwt", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "httpbin"}},
            "jwtRules": [
                {
                    "issuer": "https://demo.jwt-filter.local",
                    "audiences": ["demo-api"],
                    "jwks": DEMO_JWKS,
                    "outputClaimToHeaders": [{"header": "x-jwt-sub", "claim": "sub"}],
                    "outputPayloadToHeader": "x-jwt-payload",
                },
                {
                    "issuer": "https://idp.example.com",
                    "jwksUri": "https://idp.example.com/.well-known/jwks.json",
                    "fromHeaders": [{"name": "x-idp-token", "prefix": "Bearer "}],
                    "forwardOriginalToken": true,
                },
            ],
        },
    })
}

fn authorization_policy(rules: Value, action: &str) -> Value {
    json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "require-jwt", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "httpbin"}}, "action": action, "rules": rules},
    })
}

#[test]
fn istio_request_authentication_alone() {
    let c = converted(&[request_authentication()]);
    let providers = c.config["providers"].as_object().unwrap();
    let names: Vec<&String> = providers.keys().collect();
    assert_eq!(names, ["demo-jwt-filter-local", "idp-example-com"]);
    let demo = &providers["demo-jwt-filter-local"];
    assert_eq!(demo["local_jwks"]["inline_string"], DEMO_JWKS);
    assert_eq!(
        demo["claim_to_headers"][0],
        json!({"header_name": "x-jwt-sub", "claim_name": "sub"})
    );
    assert_eq!(demo["forward_payload_header"], "x-jwt-payload");
    let idp = &providers["idp-example-com"];
    assert_eq!(
        idp["remote_jwks"]["http_uri"],
        json!({"uri": "https://idp.example.com/.well-known/jwks.json",
               "cluster": "outbound|443||idp.example.com", "timeout": "5s"})
    );
    assert_eq!(
        idp["from_headers"][0],
        json!({"name": "x-idp-token", "value_prefix": "Bearer "})
    );
    assert_eq!(idp["forward"], true);
    // Missing token passes; a present token must be valid for one of them.
    assert_eq!(
        c.config["rules"],
        json!([{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
            {"provider_name": "demo-jwt-filter-local"}, {"provider_name": "idp-example-com"},
            {"allow_missing": {}}]}}}])
    );
}

#[test]
fn istio_allow_policy_with_principals_paths_and_claims() {
    let ap = authorization_policy(
        json!([
            {"from": [{"source": {"requestPrincipals": ["*"]}}],
             "to": [{"operation": {"paths": ["/api/*", "/exact"]}}]},
            {"from": [{"source": {"requestPrincipals": ["https://demo.jwt-filter.local/alice"]}}],
             "to": [{"operation": {"paths": ["*.admin"]}}],
             "when": [{"key": "request.auth.claims[groups]", "values": ["admins"]},
                      {"key": "request.auth.claims[org][team]", "values": ["core*"]},
                      {"key": "request.auth.audiences", "values": ["demo-api"]}]},
        ]),
        "ALLOW",
    );
    let mut ap = ap;
    ap["spec"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"to": [{"operation": {"paths": ["/public/*"]}}]}));
    let c = converted(&[request_authentication(), ap]);
    let rules = c.config["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 5, "{rules:?}");
    // No from/when: anyone, but a present token must be valid.
    assert_eq!(rules[3]["match"], json!({"prefix": "/public/"}));
    assert_eq!(rules[3]["requires"], rules[4]["requires"]);
    let any = json!({"requires_any": {"requirements": [
        {"provider_name": "demo-jwt-filter-local"}, {"provider_name": "idp-example-com"}]}});
    assert_eq!(
        rules[0],
        json!({"match": {"prefix": "/api/"}, "requires": any})
    );
    assert_eq!(
        rules[1],
        json!({"match": {"path": "/exact"}, "requires": any})
    );
    assert_eq!(
        rules[2]["match"],
        json!({"safe_regex": {"regex": ".*\\.admin"}})
    );
    assert_eq!(
        rules[2]["requires"],
        json!({"provider_name": "demo-jwt-filter-local"})
    );
    assert_eq!(
        rules[2]["required_claims"],
        json!([{"name": "groups", "values": ["admins"]},
               {"name": "org.team", "values": ["core"], "match": "prefix"},
               {"name": "sub", "values": ["alice"]}])
    );
    assert_eq!(rules[2]["audiences"], json!(["demo-api"]));
    assert!(rules[4]["requires"]["requires_any"].is_object());
    assert!(c.notes.iter().any(|n| n.contains("403")), "{:?}", c.notes);
}

#[test]
fn istio_deny_not_request_principals() {
    let ap = authorization_policy(
        json!([{"from": [{"source": {"notRequestPrincipals": ["*"]}}],
                "to": [{"operation": {"paths": ["/secure/*"]}}]}]),
        "DENY",
    );
    let ra = {
        let mut ra = request_authentication();
        ra["spec"]["jwtRules"].as_array_mut().unwrap().truncate(1);
        ra
    };
    let c = converted(&[ra, ap]);
    assert_parses(&c);
    assert_eq!(
        c.config["rules"][0],
        json!({"match": {"prefix": "/secure/"}, "requires": {"provider_name": "demo-jwt-filter-local"}})
    );
}

#[test]
fn istio_unconvertible_conditions_are_errors() {
    let ap = authorization_policy(
        json!([{"from": [{"source": {"namespaces": ["prod"], "requestPrincipals": ["*/x"]}}],
                "to": [{"operation": {"methods": ["GET"]}}],
                "when": [{"key": "source.ip", "values": ["10.0.0.1"]},
                         {"key": "request.auth.claims[groups]", "notValues": ["x"]}]}]),
        "ALLOW",
    );
    let e = errors(&[request_authentication(), ap]).join("\n");
    assert!(e.contains("source.namespaces"), "{e}");
    assert!(e.contains("operation.methods"), "{e}");
    assert!(e.contains("\"source.ip\""), "{e}");
    assert!(e.contains("notValues"), "{e}");
    assert!(e.contains("\"*/x\""), "{e}");

    let custom = authorization_policy(json!([]), "CUSTOM");
    let mut custom = custom;
    custom["spec"]["rules"] = json!([{}]);
    let e = errors(&[request_authentication(), custom]).join("\n");
    assert!(e.contains("action CUSTOM"), "{e}");

    let mut ra = request_authentication();
    ra["spec"]["jwtRules"][0]
        .as_object_mut()
        .unwrap()
        .remove("jwks");
    ra["spec"]["jwtRules"][0]["issuer"] = json!("demo-issuer");
    let e = errors(&[ra]).join("\n");
    assert!(e.contains("neither jwks nor jwksUri"), "{e}");
}

#[test]
fn istio_without_jwks_uses_oidc_discovery() {
    let mut ra = request_authentication();
    ra["spec"]["jwtRules"].as_array_mut().unwrap().truncate(1);
    ra["spec"]["jwtRules"][0]
        .as_object_mut()
        .unwrap()
        .remove("jwks");
    let c = converted(&[ra]);
    assert_parses(&c);
    let remote = &c.config["providers"]["demo-jwt-filter-local"]["remote_jwks"];
    assert_eq!(remote["oidc_discovery"], true);
    assert_eq!(
        remote["http_uri"],
        json!({"cluster": "outbound|443||demo.jwt-filter.local", "timeout": "5s"})
    );
    assert!(
        c.notes.iter().any(|n| n.contains("OIDC discovery")),
        "{:?}",
        c.notes
    );
}

#[test]
fn claim_keys() {
    assert_eq!(
        claim_key("request.auth.claims[groups]").as_deref(),
        Some("groups")
    );
    assert_eq!(
        claim_key("request.auth.claims[a][b]").as_deref(),
        Some("a.b")
    );
    assert_eq!(claim_key("request.auth.claims[]"), None);
    assert_eq!(claim_key("request.auth.claims[a"), None);
    assert_eq!(claim_key("request.auth.claims"), None);
    assert_eq!(claim_key("request.headers[x]"), None);
}

#[test]
fn snake_and_durations() {
    assert_eq!(snake("fromHeaders"), "from_headers");
    assert_eq!(snake("from_headers"), "from_headers");
    assert_eq!(
        normalize(&json!({"cacheDuration": {"seconds": "300"}})),
        json!({"cache_duration": "300s"})
    );
    assert_eq!(
        normalize(&json!({"t": {"seconds": 1, "nanos": 500000000}})),
        json!({"t": "1.500000000s"})
    );
}

/// A `*suffix` path becomes a regex matching that suffix literally, however
/// many regex meta characters it holds.
#[test]
fn istio_suffix_path_is_matched_literally() {
    for suffix in [".admin", "/a+b(c)|[d]{2}^$-#&~?", "/plain"] {
        let m = path_match(&format!("*{suffix}"));
        let regex = m["safe_regex"]["regex"].as_str().unwrap();
        let re = regex_lite::Regex::new(&format!("^{regex}$")).unwrap();
        assert!(re.is_match(&format!("/x{suffix}")), "{regex}");
        assert!(re.is_match(suffix), "{regex}");
        assert!(!re.is_match(&format!("{suffix}x")), "{regex}");
        if suffix.len() > 2 {
            assert!(!re.is_match(&suffix.replacen(|c: char| !c.is_alphanumeric(), "_", 1)));
        }
    }
}
