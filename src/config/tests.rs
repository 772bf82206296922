use super::*;
use crate::diag::{describe, parse_duration_ms};
use crate::testutil::hs_jwks;

fn jwks_json_string() -> String {
    serde_json::to_string(&hs_jwks()).unwrap()
}

fn provider(extra: &str) -> String {
    format!(
        r#"{{"issuer":"https://issuer.test","audiences":["api"],"local_jwks":{{"inline_string":{}}}{extra}}}"#,
        jwks_json_string()
    )
}

fn config(providers: &str, rules: &str) -> String {
    format!(r#"{{"providers":{{{providers}}},"rules":[{rules}]}}"#)
}

fn errors(json: &str) -> Vec<ConfigError> {
    match Config::parse(json.as_bytes()) {
        Ok(_) => panic!("config accepted: {json}"),
        Err(e) => e,
    }
}

fn first_path(json: &str) -> String {
    errors(json)[0].path.clone()
}

#[test]
fn full_config_parses() {
    let p = provider(
        r#","from_headers":[{"name":"X-Jwt","value_prefix":"Bearer "}],"from_params":["t"],
        "from_cookies":["session"],"forward":true,"forward_payload_header":"x-jwt-payload",
        "pad_forward_payload_header":true,"claim_to_headers":[{"header_name":"x-sub","claim_name":"sub"},
        {"header_name":"x-team","claim_name":"org.team"}],"clock_skew_seconds":30,"max_lifetime":"86400s",
        "require_expiration":true"#,
    );
    let json = config(
        &format!(r#""a":{p},"b":{}"#, provider("")),
        r#"{"match":{"prefix":"/public"}},
           {"match":{"path":"/x","headers":[{"name":"x-tenant","exact_match":"t1"}]},"requires":{"provider_and_audiences":{"provider_name":"a","audiences":["other"]}}},
           {"match":{"safe_regex":{"regex":"/v[0-9]+/.*"}},"requires":{"requires_any":{"requirements":[{"provider_name":"a"},{"allow_missing":{}}]}}},
           {"match":{"prefix":"/"},"requires":{"requires_all":{"requirements":[{"provider_name":"a"},{"provider_name":"b"}]}}}"#,
    );
    let c = Config::parse(json.as_bytes()).unwrap();
    assert_eq!(c.providers.len(), 2);
    let a = &c.providers[0];
    assert_eq!(a.name, "a");
    assert_eq!(a.clock_skew_secs, 30);
    assert_eq!(a.max_lifetime_secs, Some(86400));
    assert!(a.require_expiration && a.forward && a.pad_payload_header);
    assert_eq!(
        a.locations,
        vec![
            Location::Header {
                name: "x-jwt".into(),
                prefix: "Bearer ".into()
            },
            Location::Param("t".into()),
            Location::Cookie("session".into())
        ]
    );
    assert_eq!(a.claim_headers[1].claim_path, vec!["org", "team"]);
    assert_eq!(c.rules.len(), 4);
    assert!(c.rules[0].requirement.is_none());
    assert_eq!(
        c.rules[1].requirement,
        Some(Requirement::Provider {
            provider: 0,
            audiences: Some(vec!["other".into()])
        })
    );
    assert_eq!(c.sanitize_headers, vec!["x-sub", "x-team", "x-jwt-payload"]);
    // Provider b: Envoy's default locations and skew.
    let b = &c.providers[1];
    assert_eq!(b.clock_skew_secs, 60);
    assert_eq!(
        b.locations,
        vec![
            Location::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into()
            },
            Location::Param("access_token".into())
        ]
    );
}

#[test]
fn camel_case_names_are_accepted() {
    let json = format!(
        r#"{{"providers":{{"a":{{"issuer":"i","localJwks":{{"inlineString":{}}},"fromHeaders":[{{"name":"x","valuePrefix":""}}],"clockSkewSeconds":5}}}},
        "rules":[{{"match":{{"prefix":"/"}},"requires":{{"providerName":"a"}}}}],"bypassCorsPreflight":true}}"#,
        jwks_json_string()
    );
    let c = Config::parse(json.as_bytes()).unwrap();
    assert!(c.bypass_cors_preflight);
    assert_eq!(c.providers[0].clock_skew_secs, 5);
}

#[test]
fn empty_config_needs_nothing() {
    let c = Config::parse(b"{}").unwrap();
    assert!(c.providers.is_empty() && c.rules.is_empty());
    assert!(!errors("").is_empty());
    assert!(!errors("  ").is_empty());
}

#[test]
fn unknown_field_is_named_with_its_path() {
    let json = config(&format!(r#""a":{}"#, provider(r#","from_header":[]"#)), "");
    let e = errors(&json);
    assert_eq!(e[0].path, "providers.a.from_header");
    assert!(
        e[0].message.contains("unknown field `from_header`"),
        "{}",
        e[0].message
    );
    let e = errors(r#"{"providers":{},"rulez":[]}"#);
    assert!(e[0].message.contains("rulez"));
}

/// A member given twice in one object, at any depth, is refused at its
/// path (the last one would otherwise win silently: two providers of one
/// name kept only the second); so is a field given in both spellings.
#[test]
fn repeated_members_are_refused_with_their_path() {
    let a = provider("");
    let b = provider(r#","forward":true"#);
    let rule = r#"{"match":{"prefix":"/"},"requires":{"provider_name":"a"}}"#;
    let cases = [
        (
            format!(r#"{{"providers":{{"a":{a},"a":{b}}}}}"#),
            "providers.a",
        ),
        (
            r#"{"mode":"enforce","rules":[],"mode":"report"}"#.to_string(),
            "mode",
        ),
        (
            config(&format!(r#""a":{}"#, provider(r#","issuer":"x""#)), ""),
            "providers.a.issuer",
        ),
        (
            config(
                &format!(r#""a":{a}"#),
                &format!(
                    r#"{rule},{{"match":{{"prefix":"/a","headers":[{{"name":"x","name":"y"}}]}}}}"#
                ),
            ),
            "rules[1].match.headers[0].name",
        ),
        (
            r#"{"requirement_map":{"r":{"provider_name":"a"},"r":{"allow_missing":{}}}}"#
                .to_string(),
            "requirement_map.r",
        ),
    ];
    for (json, path) in cases {
        let e = errors(&json);
        assert_eq!(e.len(), 1, "{json}: {e:?}");
        assert_eq!(e[0].path, path, "{json}: {e:?}");
        assert!(
            e[0].message.starts_with("duplicate member `"),
            "{json}: {e:?}"
        );
    }
    // A syntax error before a repeated member is the error reported, at its place.
    let e = errors(r#"{"rules":[x],"mode":"enforce","mode":"report"}"#);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].path, "rules[0]", "{e:?}");
    assert!(!e[0].message.starts_with("duplicate member"), "{e:?}");
    let e = errors(r#"{"stat_prefix":"a","statPrefix":"b"}"#);
    assert_eq!(
        (e[0].path.as_str(), e[0].message.as_str()),
        ("", "duplicate field `stat_prefix`")
    );
    let e = errors(&config(
        &format!(
            r#""a":{}"#,
            provider(r#","clockSkewSeconds":1,"clock_skew_seconds":2"#)
        ),
        "",
    ));
    assert_eq!(e[0].path, "providers.a");
    assert_eq!(e[0].message, "duplicate field `clock_skew_seconds`");
    // One provider of each name is read as before.
    let ok = format!(r#"{{"providers":{{"a":{a},"b":{b}}}}}"#);
    let c = Config::parse(ok.as_bytes()).unwrap();
    assert_eq!(c.providers.len(), 2);
}

#[test]
fn wrong_type_is_named() {
    let json = config(&format!(r#""a":{}"#, provider(r#","forward":"yes""#)), "");
    assert_eq!(first_path(&json), "providers.a.forward");
    let json = config(
        &format!(r#""a":{}"#, provider(r#","clock_skew_seconds":-1"#)),
        "",
    );
    assert_eq!(first_path(&json), "providers.a.clock_skew_seconds");
    assert_eq!(first_path(r#"{"rules":{}}"#), "rules");
    assert!(!errors("[1]").is_empty());
    assert!(!errors("[]").is_empty());
    assert!(!errors("null").is_empty());
    assert!(!errors("\"{}\"").is_empty());
    assert!(!errors("not json").is_empty());
}

#[test]
fn unknown_provider_in_rule() {
    let json = config(
        &format!(r#""a":{}"#, provider("")),
        r#"{"match":{"prefix":"/"},"requires":{"requires_any":{"requirements":[{"provider_name":"a"},{"provider_name":"zz"}]}}}"#,
    );
    let e = errors(&json);
    assert_eq!(
        e[0].path,
        "rules[0].requires.requires_any.requirements[1].provider_name"
    );
    assert!(e[0].message.contains("\"zz\""));
}

#[test]
fn parse_errors_name_the_member_or_element_read() {
    let rule = r#"{"match":{"prefix":"/"},"requires":{"provider_name":"a"}}"#;
    let cases = [
        (
            format!(r#"{{"rules":[{rule},{{"match":{{"prefix":5}}}}]}}"#),
            "rules[1].match.prefix",
        ),
        (
            format!(
                "{{\n  \"rules\": [\n    {rule},\n    {{\"match\": {{\"prefix\": 5}}}}\n  ]\n}}"
            ),
            "rules[1].match.prefix",
        ),
        (
            r#"{"providers":{"a":{"issuer":{"x":[1]}}}}"#.to_string(),
            "providers.a.issuer",
        ),
        (
            r#"{"providers":{"a":{"issuer":"x\"y,[{\\","audiences":5}}}"#.to_string(),
            "providers.a.audiences",
        ),
        (
            r#"{"providers":{"a":{"audiences":["x",7]}}}"#.to_string(),
            "providers.a.audiences[1]",
        ),
        (
            r#"{"rules":[{"match":{"prefix":"/"}"#.to_string(),
            "rules[0].match",
        ),
        (r#"{"mode":"enforce","#.to_string(), ""),
    ];
    for (json, path) in cases {
        assert_eq!(first_path(&json), path, "{json}");
    }
}

#[test]
fn provider_without_keys() {
    let json = config(r#""a":{"issuer":"i"}"#, "");
    let e = errors(&json);
    assert_eq!(e[0].path, "providers.a");
    assert!(e[0].message.contains("no key source"));
}

#[test]
fn jwks_without_usable_key() {
    let weak = include_str!("../../tests/fixtures/keys/jwks_weak.json");
    let p = format!(
        r#""a":{{"local_jwks":{{"inline_string":{}}}}}"#,
        serde_json::to_string(weak).unwrap()
    );
    let e = errors(&config(&p, ""));
    assert_eq!(e[0].path, "providers.a.local_jwks.inline_string");
    let p = r#""a":{"local_jwks":{"inline_string":"not json"}}"#;
    assert_eq!(
        first_path(&config(p, "")),
        "providers.a.local_jwks.inline_string"
    );
    // Keys exist but none fits the allowed algorithms.
    let p = format!(r#""a":{}"#, provider(r#","allowed_algorithms":["RS256"]"#));
    assert_eq!(
        first_path(&config(&p, "")),
        "providers.a.local_jwks.inline_string"
    );
    let p = format!(r#""a":{}"#, provider(r#","allowed_algorithms":["none"]"#));
    assert_eq!(
        first_path(&config(&p, "")),
        "providers.a.allowed_algorithms[0]"
    );
}

#[test]
fn bad_regex_and_duration() {
    let p = format!(r#""a":{}"#, provider(""));
    let e = errors(&config(
        &p,
        r#"{"match":{"safe_regex":{"regex":"(unclosed"}}}"#,
    ));
    assert_eq!(e[0].path, "rules[0].match.safe_regex.regex");
    assert!(e[0].message.starts_with("invalid regex"));
    let e = errors(&config(
        &p,
        r#"{"match":{"prefix":"/","headers":[{"name":"x","safe_regex_match":{"regex":"["}}]}}"#,
    ));
    assert_eq!(
        e[0].path,
        "rules[0].match.headers[0].safe_regex_match.regex"
    );
    for bad in ["10", "10m", "-1s", "s", "1.s", "abc"] {
        let p = format!(
            r#""a":{}"#,
            provider(&format!(r#","max_lifetime":"{bad}""#))
        );
        assert_eq!(
            first_path(&config(&p, "")),
            "providers.a.max_lifetime",
            "{bad}"
        );
    }
}

#[test]
fn rule_shape_errors() {
    let p = format!(r#""a":{}"#, provider(""));
    let e = errors(&config(&p, r#"{"match":{"prefix":"/","path":"/x"}}"#));
    assert_eq!(e[0].path, "rules[0].match");
    let e = errors(&config(&p, r#"{"match":{}}"#));
    assert_eq!(e[0].path, "rules[0].match");
    let e = errors(&config(&p, r#"{"match":{"prefix":"/"},"requires":{}}"#));
    assert_eq!(e[0].path, "rules[0].requires");
    let e = errors(&config(
        &p,
        r#"{"match":{"prefix":"/"},"requires":{"provider_name":"a","allow_missing":{}}}"#,
    ));
    assert_eq!(e[0].path, "rules[0].requires");
    let e = errors(&config(
        &p,
        r#"{"match":{"prefix":"/"},"requires":{"requires_any":{"requirements":[{"provider_name":"a"}]}}}"#,
    ));
    assert_eq!(e[0].path, "rules[0].requires.requires_any.requirements");
}

#[test]
fn bad_header_names() {
    let bad = format!(
        r#""a":{}"#,
        provider(r#","claim_to_headers":[{"header_name":"bad header","claim_name":"sub"}]"#)
    );
    assert_eq!(
        first_path(&config(&bad, "")),
        "providers.a.claim_to_headers[0].header_name"
    );
    let reserved = format!(
        r#""a":{}"#,
        provider(r#","forward_payload_header":":path""#)
    );
    assert_eq!(
        first_path(&config(&reserved, "")),
        "providers.a.forward_payload_header"
    );
    let auth = format!(
        r#""a":{}"#,
        provider(r#","claim_to_headers":[{"header_name":"Authorization","claim_name":"sub"}]"#)
    );
    assert_eq!(
        first_path(&config(&auth, "")),
        "providers.a.claim_to_headers[0].header_name"
    );
    let empty_claim = format!(
        r#""a":{}"#,
        provider(r#","claim_to_headers":[{"header_name":"x","claim_name":"a..b"}]"#)
    );
    assert_eq!(
        first_path(&config(&empty_claim, "")),
        "providers.a.claim_to_headers[0].claim_name"
    );
}

#[test]
fn all_semantic_errors_are_reported_together() {
    let json = config(
        r#""a":{"issuer":"i"},"b":{"issuer":"j"}"#,
        r#"{"match":{"prefix":"/"},"requires":{"provider_name":"c"}}"#,
    );
    let e = errors(&json);
    assert_eq!(e.len(), 3, "{e:?}");
    let line = describe(&e);
    assert!(
        line.contains("providers.a") && line.contains("providers.b") && line.contains("rules[0]")
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration_ms("600s"), Ok(600_000));
    assert_eq!(parse_duration_ms("0s"), Ok(0));
    assert_eq!(parse_duration_ms("1.5s"), Ok(1_500));
    assert_eq!(parse_duration_ms("0.000000001s"), Ok(0));
    assert!(parse_duration_ms("1.0000000001s").is_err());
    assert!(parse_duration_ms("99999999999999999999s").is_err());
    assert!(parse_duration_ms("").is_err());
}

#[test]
fn skipped_keys_become_warnings() {
    let jwks = r#"{"keys":[{"kty":"oct","kid":"ok","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"},{"kty":"XYZ","kid":"odd"}]}"#;
    let p = format!(
        r#""a":{{"local_jwks":{{"inline_string":{}}}}}"#,
        serde_json::to_string(jwks).unwrap()
    );
    let c = Config::parse(config(&p, "").as_bytes()).unwrap();
    let skipped: Vec<_> = c
        .warnings
        .iter()
        .filter(|w| w.kind == crate::warning::Kind::SkippedKey)
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].path, "providers.a.local_jwks");
    assert!(skipped[0].message.contains("odd"));
}

#[test]
fn rule_names_are_label_safe_and_unique() {
    let ok = br#"{"providers":{"p":{"local_jwks":{"inline_string":"{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA\"}]}"}}},
        "rules":[{"match":{"prefix":"/a"},"requires":{"provider_name":"p"},"name":"api-v1"},
                 {"match":{"prefix":"/"},"requires":{"provider_name":"p"}}]}"#;
    let c = Config::parse(ok).map_err(|e| describe(&e)).unwrap();
    let names: Vec<_> = c.rules.iter().map(|r| r.name.as_deref()).collect();
    assert_eq!(names, [Some("api-v1"), None]);
    let text = String::from_utf8_lossy(ok);
    for (name, want) in [
        ("a.b", "invalid rule name"),
        ("", "invalid rule name"),
        ("x;.;y", "invalid rule name"),
    ] {
        let bad = text.replacen("\"api-v1\"", &format!("{name:?}"), 1);
        let errs = Config::parse(bad.as_bytes()).err().unwrap();
        assert!(
            errs.iter()
                .any(|e| e.path == "rules[0].name" && e.message.contains(want)),
            "{errs:?}"
        );
    }
    let dup = text.replacen(
        r#""requires":{"provider_name":"p"}}]"#,
        r#""requires":{"provider_name":"p"},"name":"api-v1"}]"#,
        1,
    );
    let errs = Config::parse(dup.as_bytes()).err().unwrap();
    assert!(
        errs.iter()
            .any(|e| e.path == "rules[1].name" && e.message.contains("earlier rule")),
        "{errs:?}"
    );
}

#[test]
fn decision_log_format() {
    use crate::decision_log::Format;
    let base = r#"{"providers":{},"rules":[]"#;
    let parse = |extra: &str| Config::parse(format!("{base}{extra}}}").as_bytes());
    assert_eq!(parse("").ok().unwrap().decision_log_format, Format::Text);
    assert_eq!(
        parse(r#","decision_log_format":"json""#)
            .ok()
            .unwrap()
            .decision_log_format,
        Format::Json
    );
    let errs = parse(r#","decision_log_format":"xml""#).err().unwrap();
    assert_eq!(errs[0].path, "decision_log_format");
}

/// Closed sets of names (mode, match, algorithms, bindings, replay scope,
/// log format) are refused at the field's path with the allowed names, and
/// a wrong JSON type there is an "invalid type".
#[test]
fn closed_sets_name_the_path_and_the_allowed_values() {
    let rule = r#"{"match":{"prefix":"/"},"requires":{"provider_name":"a"}"#;
    let cases = [
        (
            format!(r#"{{"mode":"audit","providers":{{"a":{}}}}}"#, provider("")),
            "mode",
            r#"unknown value "audit": expected "enforce" or "report""#,
        ),
        (
            config(
                &format!(r#""a":{}"#, provider("")),
                &format!(r#"{rule},"mode":"Report"}}"#),
            ),
            "rules[0].mode",
            r#"unknown value "Report": expected "enforce" or "report""#,
        ),
        (
            config(
                &format!(r#""a":{}"#, provider("")),
                &format!(
                    r#"{rule},"required_claims":[{{"name":"a","values":["x"],"match":"suffix"}}]}}"#
                ),
            ),
            "rules[0].required_claims[0].match",
            r#"unknown value "suffix": expected "exact" or "prefix""#,
        ),
        (
            config(
                &format!(
                    r#""a":{}"#,
                    provider(r#","allowed_algorithms":["HS256","none"]"#)
                ),
                "",
            ),
            "providers.a.allowed_algorithms[1]",
            r#"unknown value "none": expected "RS256", "RS384""#,
        ),
        (
            config(
                &format!(r#""a":{}"#, provider(r#","dpop":{"algorithms":["es256"]}"#)),
                "",
            ),
            "providers.a.dpop.algorithms[0]",
            r#""HS384" or "HS512""#,
        ),
        (
            config(
                &format!(r#""a":{}"#, provider(r#","dpop":{"mode":"on"}"#)),
                "",
            ),
            "providers.a.dpop.mode",
            r#"unknown value "on": expected "off", "optional" or "required""#,
        ),
        (
            config(
                &format!(r#""a":{}"#, provider(r#","certificate_binding":true"#)),
                "",
            ),
            "providers.a.certificate_binding",
            "invalid type: boolean `true`, expected a string",
        ),
        (
            config(
                &format!(
                    r#""a":{}"#,
                    provider(r#","dpop":{"replay_cache":"cluster"}"#)
                ),
                "",
            ),
            "providers.a.dpop.replay_cache",
            r#"unknown value "cluster": expected "shared" or "worker""#,
        ),
        (
            r#"{"decision_log_format":"xml"}"#.to_string(),
            "decision_log_format",
            r#"unknown value "xml": expected "text" or "json""#,
        ),
        (
            r#"{"mode":5}"#.to_string(),
            "mode",
            "invalid type: integer `5`, expected a string",
        ),
    ];
    for (json, path, text) in cases {
        let e = errors(&json);
        assert_eq!(e[0].path, path, "{json}: {e:?}");
        assert!(e[0].message.contains(text), "{json}: {e:?}");
    }
}

#[test]
fn requirement_map_and_requirement_name() {
    let p = provider("");
    let ok = format!(
        r#"{{"providers":{{"a":{p}}},"requirement_map":{{"r":{{"provider_name":"a"}},"open":{{}}}},
            "rules":[{{"match":{{"prefix":"/"}},"requirement_name":"r"}}]}}"#
    );
    let c = Config::parse(ok.as_bytes()).unwrap();
    assert!(c.rules[0].requirement.is_some());
    assert_eq!(c.requirement_map.get("open"), Some(&None));
    let unknown = ok.replace(r#""requirement_name":"r""#, r#""requirement_name":"x""#);
    assert_eq!(first_path(&unknown), "rules[0].requirement_name");
    let both = ok.replace(
        r#""requirement_name":"r""#,
        r#""requirement_name":"r","requires":{"provider_name":"a"}"#,
    );
    assert_eq!(first_path(&both), "rules[0]");
    let bad_map = ok.replace(
        r#""provider_name":"a"},"open""#,
        r#""provider_name":"zz"},"open""#,
    );
    assert_eq!(first_path(&bad_map), "requirement_map.r.provider_name");
}

#[test]
fn fields_a_wasm_filter_cannot_honour_are_refused_with_the_reason() {
    for (field_json, path, reason) in [
        (
            r#""payload_in_metadata":"p""#.to_string(),
            "providers.a.payload_in_metadata",
            "filter_state",
        ),
        (
            r#""failed_status_in_metadata":"s""#.to_string(),
            "providers.a.failed_status_in_metadata",
            "dynamic metadata",
        ),
    ] {
        let json = config(
            &format!(r#""a":{}"#, provider(&format!(",{field_json}"))),
            "",
        );
        let e = errors(&json);
        let hit = e
            .iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("{e:?}"));
        assert!(hit.message.contains(reason), "{hit:?}");
    }
    let file = r#"{"providers":{"a":{"local_jwks":{"filename":"/etc/jwks"}}}}"#;
    let e = errors(file);
    assert!(
        e.iter().any(|e| e.path == "providers.a.local_jwks.filename"
            && e.message.contains("cannot read files")),
        "{e:?}"
    );
    let extract = config(
        &format!(r#""a":{}"#, provider("")),
        r#"{"match":{"prefix":"/"},"requires":{"extract_only_without_validation":{}}}"#,
    );
    assert_eq!(
        first_path(&extract),
        "rules[0].requires.extract_only_without_validation"
    );
    let template = config(
        &format!(r#""a":{}"#, provider("")),
        r#"{"match":{"prefix":"/","path_match_policy":{"name":"t"}}}"#,
    );
    assert!(errors(&template)
        .iter()
        .any(|e| e.path == "rules[0].match.path_match_policy"));
}

#[test]
fn route_match_fields_jwt_authn_ignores_are_warnings() {
    let json = config(
        &format!(r#""a":{}"#, provider("")),
        r#"{"match":{"prefix":"/","grpc":{},"tls_context":{"presented":true},"cookies":[]}}"#,
    );
    let c = Config::parse(json.as_bytes()).unwrap();
    for f in ["grpc", "tls_context", "cookies"] {
        assert!(
            c.warnings
                .iter()
                .any(|w| w.kind == crate::warning::Kind::IgnoredMatchField
                    && w.to_string()
                        .contains(&format!("rules[0].match.{f}: ignored"))),
            "{:?}",
            c.warnings
        );
    }
}

#[test]
fn path_separated_prefix_is_validated_as_envoy() {
    for bad in ["/api/", "/a?b", "/a#b", ""] {
        let json = config(
            &format!(r#""a":{}"#, provider("")),
            &format!(r#"{{"match":{{"path_separated_prefix":"{bad}"}}}}"#),
        );
        assert_eq!(
            first_path(&json),
            "rules[0].match.path_separated_prefix",
            "{bad}"
        );
    }
}

#[test]
fn dpop_settings_defaults_locations_and_errors() {
    use crate::sender::binding::BindingMode;
    use crate::sender::replay::ReplayScope;
    let json = config(&format!(r#""a":{}"#, provider(r#","dpop":{}"#)), "");
    let c = Config::parse(json.as_bytes()).unwrap();
    let p = &c.providers[0];
    let d = p.dpop.as_ref().unwrap();
    assert_eq!(d.policy.mode, BindingMode::Required);
    assert_eq!(d.policy.max_age_secs, 60);
    assert_eq!(d.replay, ReplayScope::Shared);
    assert!(d.policy.algs.iter().all(|a| !a.is_hmac()));
    // `Authorization: DPoP` is looked at first, Bearer and the query still after it.
    assert!(matches!(&p.locations[0], Location::Header { name, prefix }
        if name == "authorization" && prefix == "DPoP "));
    assert_eq!(p.locations.len(), 3);
    assert_eq!(p.binding_label(), Some("dpop"));

    let off = config(
        &format!(r#""a":{}"#, provider(r#","dpop":{"mode":"off"}"#)),
        "",
    );
    assert!(Config::parse(off.as_bytes()).unwrap().providers[0]
        .dpop
        .is_none());

    for (extra, path) in [
        (r#","dpop":{"mode":"sometimes"}"#, "providers.a.dpop.mode"),
        (
            r#","dpop":{"algorithms":["HS256"]}"#,
            "providers.a.dpop.algorithms[0]",
        ),
        (
            r#","dpop":{"algorithms":[]}"#,
            "providers.a.dpop.algorithms",
        ),
        (r#","dpop":{"max_age":"0.5s"}"#, "providers.a.dpop.max_age"),
        (
            r#","dpop":{"public_base_url":"api.example.com"}"#,
            "providers.a.dpop.public_base_url",
        ),
        (
            r#","dpop":{"replay_cache":"cluster"}"#,
            "providers.a.dpop.replay_cache",
        ),
        (
            r#","dpop":{"replay_cache_size":0}"#,
            "providers.a.dpop.replay_cache_size",
        ),
        (
            r#","dpop":{"replay_cache_per_key":0}"#,
            "providers.a.dpop.replay_cache_per_key",
        ),
        (
            r#","dpop":{"replay_cache_size":100,"replay_cache_per_key":101}"#,
            "providers.a.dpop.replay_cache_per_key",
        ),
        (
            r#","dpop":{"nonce":{"secret":"c2hvcnQ="}}"#,
            "providers.a.dpop.nonce.secret",
        ),
        (
            r#","certificate_binding":"always""#,
            "providers.a.certificate_binding",
        ),
    ] {
        let json = config(&format!(r#""a":{}"#, provider(extra)), "");
        assert_eq!(first_path(&json), path, "{extra}");
    }
    let mtls = config(
        &format!(
            r#""a":{}"#,
            provider(r#","certificate_binding":"optional""#)
        ),
        "",
    );
    let c = Config::parse(mtls.as_bytes()).unwrap();
    assert_eq!(c.providers[0].cert_binding, BindingMode::Optional);
    assert_eq!(c.providers[0].binding_label(), Some("mtls"));
}

#[test]
fn decision_histogram_is_on_unless_turned_off() {
    let parse = |json: &str| Config::parse(json.as_bytes()).map(|c| c.decision_histogram);
    assert!(matches!(parse("{}"), Ok(true)));
    assert!(matches!(parse(r#"{"decision_histogram":true}"#), Ok(true)));
    assert!(matches!(
        parse(r#"{"decision_histogram":false}"#),
        Ok(false)
    ));
    assert!(matches!(parse(r#"{"decisionHistogram":false}"#), Ok(false)));
    assert_eq!(
        first_path(r#"{"decision_histogram":"no"}"#),
        "decision_histogram"
    );
}

/// Every problem a rule's `match` can have, with its path and text (the
/// matchers are built by `matcher::build`, reporting into the config's list).
#[test]
fn route_match_problems_are_reported_with_path_and_text() {
    let p = format!(r#""a":{}"#, provider(""));
    let cases: &[(&str, &[&str])] = &[
        (
            r#"{}"#,
            &["rules[0].match: exactly one of prefix, path, safe_regex, path_separated_prefix or connect_matcher is required"],
        ),
        (
            r#"{"prefix":"/","path":"/a"}"#,
            &["rules[0].match: exactly one of prefix, path, safe_regex, path_separated_prefix or connect_matcher is required"],
        ),
        (
            r#"{"prefix":"/","path_match_policy":{}}"#,
            &["rules[0].match.path_match_policy: path match extensions (URI templates) are not supported; use safe_regex"],
        ),
        (
            r#"{"prefix":"/","headers":[{"name":"x y"}]}"#,
            &["rules[0].match.headers[0].name: \"x y\" is not a valid HTTP header name"],
        ),
        (
            r#"{"prefix":"/","headers":[{"name":""}]}"#,
            &["rules[0].match.headers[0].name: header name is empty"],
        ),
        (
            r#"{"prefix":"/","headers":[{"name":"x","exact_match":"a","prefix_match":"b"}]}"#,
            &["rules[0].match.headers[0]: set only one way to match the header"],
        ),
        (
            r#"{"prefix":"/","headers":[{"name":"x","present_match":true,"string_match":{"exact":"a"}}]}"#,
            &["rules[0].match.headers[0]: set only one way to match the header"],
        ),
        (
            r#"{"prefix":"/","headers":[{"name":"x","string_match":{"exact":"a","suffix":"b"}}]}"#,
            &["rules[0].match.headers[0].string_match: exactly one of exact, prefix, suffix, contains or safe_regex is required"],
        ),
        (
            r#"{"prefix":"/","headers":[{"name":"x","string_match":{"ignore_case":true}}]}"#,
            &["rules[0].match.headers[0].string_match: exactly one of exact, prefix, suffix, contains or safe_regex is required"],
        ),
        (
            r#"{"prefix":"/","headers":[{"name":"x","safe_regex_match":{"regex":"["}},{"name":"y","string_match":{"safe_regex":{"regex":"("}}}]}"#,
            &[
                "rules[0].match.headers[0].safe_regex_match.regex: invalid regex",
                "rules[0].match.headers[1].string_match.safe_regex.regex: invalid regex",
            ],
        ),
        (
            r#"{"prefix":"/","query_parameters":[{"name":""},{"name":"q","present_match":true,"string_match":{"exact":"a"}},{"name":"r","string_match":{}}]}"#,
            &[
                "rules[0].match.query_parameters[0].name: parameter name is empty",
                "rules[0].match.query_parameters[1]: set only one of string_match and present_match",
                "rules[0].match.query_parameters[2].string_match: exactly one of exact, prefix, suffix, contains or safe_regex is required",
            ],
        ),
    ];
    for (m, want) in cases {
        let e = errors(&config(&p, &format!(r#"{{"match":{m}}}"#)));
        let got: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(got.len(), want.len(), "{m}: {got:?}");
        for (g, w) in got.iter().zip(want.iter()) {
            assert!(g.starts_with(w), "{m}: got {g:?}, want {w:?}");
        }
    }
    let long = "a".repeat(crate::matcher::build::MAX_REGEX_LEN + 1);
    let e = errors(&config(
        &p,
        &format!(r#"{{"match":{{"safe_regex":{{"regex":"{long}"}}}}}}"#),
    ));
    assert_eq!(
        e[0].to_string(),
        "rules[0].match.safe_regex.regex: regex longer than 1024 bytes"
    );
    let e = errors(&config(
        &format!(
            r#""a":{}"#,
            provider(r#","subjects":{"prefix":"a","exact":"b"}"#)
        ),
        "",
    ));
    assert_eq!(
        e[0].to_string(),
        "providers.a.subjects: exactly one of exact, prefix, suffix, contains or safe_regex is required"
    );
}

/// Token locations: each problem at its path with its text; none given means
/// Envoy's default (`Authorization: Bearer`, then `access_token`).
#[test]
fn token_location_problems_and_default() {
    use crate::extract::Location;
    let cases: &[(&str, &str)] = &[
        (
            r#","from_headers":[{"name":":path"}]"#,
            "providers.a.from_headers[0].name: \":path\" is not a valid HTTP header name",
        ),
        (
            r#","from_headers":[{"name":"Transfer-Encoding"}]"#,
            "providers.a.from_headers[0].name: \"transfer-encoding\" cannot carry a token",
        ),
        (
            r#","from_headers":[{"name":"x y"}]"#,
            "providers.a.from_headers[0].name: \"x y\" is not a valid HTTP header name",
        ),
        (
            r#","from_params":["t",""]"#,
            "providers.a.from_params[1]: parameter name is empty",
        ),
        (
            r#","from_cookies":["a=b"]"#,
            "providers.a.from_cookies[0]: invalid cookie name",
        ),
    ];
    for (extra, want) in cases {
        let e = errors(&config(&format!(r#""a":{}"#, provider(extra)), ""));
        assert_eq!(e.len(), 1, "{extra}: {e:?}");
        assert_eq!(e[0].to_string(), *want);
    }
    let c = Config::parse(config(&format!(r#""a":{}"#, provider("")), "").as_bytes()).unwrap();
    assert_eq!(
        c.providers[0].locations,
        vec![
            Location::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into()
            },
            Location::Param("access_token".into()),
        ]
    );
    let c = Config::parse(
        config(
            &format!(
                r#""a":{}"#,
                provider(
                    r#","from_headers":[{"name":"X-Jwt","value_prefix":"T "}],"from_params":["p"],"from_cookies":["c"]"#
                )
            ),
            "",
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        c.providers[0].locations,
        vec![
            Location::Header {
                name: "x-jwt".into(),
                prefix: "T ".into()
            },
            Location::Param("p".into()),
            Location::Cookie("c".into()),
        ]
    );
}
