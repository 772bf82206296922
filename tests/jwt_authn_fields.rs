//! Every field of `jwt_authn`'s v3 `JwtAuthentication`, `JwtProvider`,
//! `RemoteJwks`, `JwtRequirement`, `RequirementRule` and `RouteMatch` is
//! accounted for, and the account is true.
//!
//! The field lists are read from the vendored protos (tests/fixtures/proto/,
//! source in SOURCE.md). For each field:
//!
//! - docs/jwt_authn-fields.md has a row, whose status is `supported`,
//!   `supported differently` or `refused`, and whose test exists;
//! - schema/plugin-config.schema.json describes the field where the message
//!   sits (refused fields as `not: {}`; tests/schema_drift.rs keeps the schema
//!   equal to the parser);
//! - the parser, given a `jwt_authn` config using the field, agrees with the
//!   status: supported fields parse (an ignored one with a warning naming it),
//!   refused ones are refused at that field with a reason, never as unknown;
//! - the converter agrees too: supported fields convert into a config the
//!   parser accepts; refused ones are a conversion error naming the field, or
//!   dropped with a note naming it.
//!
//! A field added to the proto, or a row changed without the code (or the
//! reverse), fails here.

use std::collections::BTreeMap;
use std::path::Path;

use jwt_filter::config::Config;
use jwt_filter::convert;
use serde_json::{json, Value};

const JWT_AUTHN_PROTO: &str =
    include_str!("fixtures/proto/envoy/extensions/filters/http/jwt_authn/v3/config.proto");
const ROUTE_MATCH_PROTO: &str =
    include_str!("fixtures/proto/envoy/config/route/v3/route_components.RouteMatch.proto");
const TABLE: &str = include_str!("../docs/jwt_authn-fields.md");
const SCHEMA: &str = include_str!("../schema/plugin-config.schema.json");
const JWKS: &str = include_str!("fixtures/keys/jwks.json");
const JWKS_PATH: &str = "tests/fixtures/keys/jwks.json";

/// The messages the table covers, with the proto text each is in.
const MESSAGES: [(&str, &str); 6] = [
    ("JwtAuthentication", JWT_AUTHN_PROTO),
    ("JwtProvider", JWT_AUTHN_PROTO),
    ("RemoteJwks", JWT_AUTHN_PROTO),
    ("JwtRequirement", JWT_AUTHN_PROTO),
    ("RequirementRule", JWT_AUTHN_PROTO),
    ("RouteMatch", ROUTE_MATCH_PROTO),
];

/// The field names of top-level `message name { ... }` in `proto`: fields
/// directly in it or in its `oneof`s, not in nested messages or enums.
fn proto_fields(proto: &str, name: &str) -> Vec<String> {
    let text: String = proto
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let start = text
        .find(&format!("\nmessage {name} {{"))
        .unwrap_or_else(|| panic!("message {name} not in the proto"));
    let body = &text[start..];
    let open = body.find('{').unwrap();
    // Collect the text at the message's own level (and inside oneofs).
    let mut depth = 0usize;
    let mut skip_at: Option<usize> = None;
    let mut own = String::new();
    let mut word_start = open + 1;
    for (i, c) in body.char_indices().skip(open) {
        match c {
            '{' => {
                depth += 1;
                if depth >= 2 && skip_at.is_none() {
                    let head = body[word_start..i].trim();
                    if !head.starts_with("oneof") {
                        skip_at = Some(depth);
                    }
                }
                word_start = i + 1;
                if skip_at.is_none() {
                    own.push(';');
                }
            }
            '}' => {
                if skip_at == Some(depth) {
                    skip_at = None;
                }
                depth -= 1;
                word_start = i + 1;
                if depth == 0 {
                    break;
                }
                own.push(';');
            }
            ';' => {
                word_start = i + 1;
                if skip_at.is_none() {
                    own.push(';');
                }
            }
            _ => {
                if skip_at.is_none() && depth >= 1 {
                    own.push(c);
                }
            }
        }
    }
    let mut fields = Vec::new();
    for stmt in own.split(';') {
        // `[repeated] type name = N [options]`, `map<K, V> name = N`.
        let Some((lhs, rhs)) = stmt.split_once('=') else {
            continue;
        };
        if !rhs.trim_start().starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let words: Vec<&str> = lhs.split_whitespace().collect();
        if words.first() == Some(&"option") || words.len() < 2 {
            continue;
        }
        fields.push(words[words.len() - 1].to_string());
    }
    fields
}

/// docs/jwt_authn-fields.md rows: (message, field) -> (status, test).
fn table() -> BTreeMap<(String, String), (String, String)> {
    let mut rows = BTreeMap::new();
    for line in TABLE.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 7 || !MESSAGES.iter().any(|(m, _)| *m == cells[1]) {
            continue;
        }
        let key = (cells[1].to_string(), cells[2].to_string());
        assert!(
            rows.insert(key.clone(), (cells[3].to_string(), cells[5].to_string()))
                .is_none(),
            "two rows for {key:?}"
        );
    }
    rows
}

/// A value for each field, as a `jwt_authn` user writes it.
fn sample(message: &str, field: &str) -> Value {
    match (message, field) {
        ("JwtAuthentication", "providers") => base()["providers"].clone(),
        ("JwtAuthentication", "rules") => base()["rules"].clone(),
        ("JwtAuthentication", "filter_state_rules") => {
            json!({"name": "sel", "requires": {"a": {"provider_name": "p"}, "none": {}}})
        }
        ("JwtAuthentication", "bypass_cors_preflight") => json!(true),
        ("JwtAuthentication", "requirement_map") => json!({"r": {"provider_name": "p"}}),
        ("JwtAuthentication", "strip_failure_response") => json!(true),
        ("JwtAuthentication", "stat_prefix") => json!("custom"),
        ("JwtProvider", "issuer") => json!("https://issuer.test"),
        ("JwtProvider", "audiences") => json!(["api"]),
        ("JwtProvider", "subjects") => json!({"prefix": "user-"}),
        ("JwtProvider", "require_expiration") => json!(true),
        ("JwtProvider", "max_lifetime") => json!("3600s"),
        ("JwtProvider", "remote_jwks") => remote(),
        ("JwtProvider", "local_jwks") => json!({"filename": JWKS_PATH}),
        ("JwtProvider", "forward") => json!(true),
        ("JwtProvider", "from_headers") => json!([{"name": "x-token", "value_prefix": "T "}]),
        ("JwtProvider", "from_params") => json!(["tok"]),
        ("JwtProvider", "from_cookies") => json!(["session"]),
        ("JwtProvider", "forward_payload_header") => json!("x-payload"),
        ("JwtProvider", "pad_forward_payload_header") => json!(true),
        ("JwtProvider", "payload_in_metadata") => json!("payload"),
        ("JwtProvider", "normalize_payload_in_metadata") => {
            json!({"space_delimited_claims": ["scope"]})
        }
        ("JwtProvider", "header_in_metadata") => json!("header"),
        ("JwtProvider", "failed_status_in_metadata") => json!("status"),
        ("JwtProvider", "clock_skew_seconds") => json!(30),
        ("JwtProvider", "jwt_cache_config") => json!({"jwt_cache_size": 10}),
        ("JwtProvider", "claim_to_headers") => {
            json!([{"header_name": "x-sub", "claim_name": "sub"}])
        }
        ("JwtProvider", "clear_route_cache") => json!(true),
        ("RemoteJwks", "http_uri") => remote()["http_uri"].clone(),
        ("RemoteJwks", "cache_duration") => json!("300s"),
        ("RemoteJwks", "async_fetch") => json!({"fast_listener": true}),
        ("RemoteJwks", "retry_policy") => json!({"num_retries": 2}),
        ("JwtRequirement", "provider_name") => json!("p"),
        ("JwtRequirement", "provider_and_audiences") => {
            json!({"provider_name": "p", "audiences": ["api"]})
        }
        ("JwtRequirement", "requires_any") | ("JwtRequirement", "requires_all") => {
            json!({"requirements": [{"provider_name": "p"}, {"allow_missing": {}}]})
        }
        ("JwtRequirement", "allow_missing_or_failed")
        | ("JwtRequirement", "allow_missing")
        | ("JwtRequirement", "extract_only_without_validation") => json!({}),
        ("RequirementRule", "match") => json!({"prefix": "/"}),
        ("RequirementRule", "requires") => json!({"provider_name": "p"}),
        ("RequirementRule", "requirement_name") => json!("r"),
        ("RouteMatch", "prefix") => json!("/"),
        ("RouteMatch", "path") => json!("/x"),
        ("RouteMatch", "safe_regex") => json!({"regex": "/.*"}),
        ("RouteMatch", "connect_matcher") => json!({}),
        ("RouteMatch", "path_separated_prefix") => json!("/api"),
        ("RouteMatch", "path_match_policy") => json!({
            "name": "envoy.path.match.uri_template.uri_template_matcher",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig",
                "path_template": "/foo/{x}"}}),
        ("RouteMatch", "case_sensitive") => json!(false),
        ("RouteMatch", "runtime_fraction") => {
            json!({"default_value": {"numerator": 50}, "runtime_key": "k"})
        }
        ("RouteMatch", "headers") => json!([{"name": "x-a", "present_match": true}]),
        ("RouteMatch", "query_parameters") => json!([{"name": "q", "present_match": true}]),
        ("RouteMatch", "cookies") => json!([{"name": "c", "string_match": {"exact": "v"}}]),
        ("RouteMatch", "grpc") => json!({}),
        ("RouteMatch", "tls_context") => json!({"presented": true}),
        ("RouteMatch", "dynamic_metadata") => {
            json!([{"filter": "f", "path": [{"key": "k"}], "value": {"present_match": true}}])
        }
        ("RouteMatch", "filter_state") => json!([{"key": "k", "string_match": {"exact": "v"}}]),
        other => panic!("no sample value for {other:?}: add one (and a table row)"),
    }
}

fn base() -> Value {
    json!({
        "providers": {"p": {"issuer": "https://issuer.test", "local_jwks": {"inline_string": JWKS}}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}],
    })
}

fn remote() -> Value {
    json!({"http_uri": {"uri": "https://idp.test/jwks", "cluster": "idp", "timeout": "1s"}})
}

const PATH_SPECIFIERS: [&str; 6] = [
    "prefix",
    "path",
    "safe_regex",
    "connect_matcher",
    "path_separated_prefix",
    "path_match_policy",
];

/// A `jwt_authn` config using the field, and the JSON path of the field.
fn config_with(message: &str, field: &str) -> (Value, String) {
    let mut doc = base();
    let v = sample(message, field);
    let path = match message {
        "JwtAuthentication" => {
            doc[field] = v;
            field.to_string()
        }
        "JwtProvider" => {
            let p = &mut doc["providers"]["p"];
            if field == "remote_jwks" {
                p.as_object_mut().unwrap().remove("local_jwks");
            }
            p[field] = v;
            format!("providers.p.{field}")
        }
        "RemoteJwks" => {
            let p = &mut doc["providers"]["p"];
            p.as_object_mut().unwrap().remove("local_jwks");
            p["remote_jwks"] = remote();
            p["remote_jwks"][field] = v;
            format!("providers.p.remote_jwks.{field}")
        }
        "JwtRequirement" => {
            doc["rules"][0]["requires"] = json!({ field: v });
            format!("rules[0].requires.{field}")
        }
        "RequirementRule" => {
            if field == "requirement_name" {
                doc["rules"][0].as_object_mut().unwrap().remove("requires");
                doc["requirement_map"] = json!({"r": {"provider_name": "p"}});
            }
            doc["rules"][0][field] = v;
            format!("rules[0].{field}")
        }
        "RouteMatch" => {
            let m = &mut doc["rules"][0]["match"];
            if PATH_SPECIFIERS.contains(&field) {
                *m = json!({});
            }
            m[field] = v;
            format!("rules[0].match.{field}")
        }
        other => panic!("{other}"),
    };
    (doc, path)
}

/// The schema object describing `message`.
fn schema_object<'a>(schema: &'a Value, message: &str) -> &'a Value {
    let d = &schema["$defs"];
    match message {
        "JwtAuthentication" => schema,
        "JwtProvider" => &d["provider"],
        "RemoteJwks" => &d["remote_jwks"],
        "JwtRequirement" => &d["requirement"],
        "RequirementRule" => &d["rule"],
        "RouteMatch" => &d["route_match"],
        other => panic!("{other}"),
    }
}

/// Whether a test of that name exists (integration or Rust).
fn test_exists(name: &str) -> bool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stack = vec![root.join("src"), root.join("tests")];
    let py = format!("def {name}(");
    let rs = format!("fn {name}(");
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if !path.ends_with("fixtures") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "py" || e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if text.contains(&py) || text.contains(&rs) {
                    return true;
                }
            }
        }
    }
    false
}

fn read_file(name: &str) -> Result<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).map_err(|e| format!("{name}: {e}"))
}

#[test]
fn proto_field_lists_are_read() {
    let provider = proto_fields(JWT_AUTHN_PROTO, "JwtProvider");
    for f in [
        "issuer",
        "subjects",
        "forward_payload_header",
        "clear_route_cache",
        "local_jwks",
    ] {
        assert!(provider.contains(&f.to_string()), "{f} in {provider:?}");
    }
    // Nested messages' fields are not the message's.
    let rm = proto_fields(ROUTE_MATCH_PROTO, "RouteMatch");
    assert!(rm.contains(&"tls_context".to_string()), "{rm:?}");
    assert!(!rm.contains(&"presented".to_string()), "{rm:?}");
    assert_eq!(
        proto_fields(JWT_AUTHN_PROTO, "RequirementRule"),
        ["match", "requires", "requirement_name"]
    );
}

#[test]
fn every_field_is_in_the_table_schema_parser_and_converter() {
    let rows = table();
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let mut problems = Vec::new();
    let mut seen = 0;
    for (message, proto) in MESSAGES {
        for field in proto_fields(proto, message) {
            seen += 1;
            let at = format!("{message}.{field}");
            let Some((status, test)) = rows.get(&(message.to_string(), field.clone())) else {
                problems.push(format!("{at}: no row in docs/jwt_authn-fields.md"));
                continue;
            };
            if !["supported", "supported differently", "refused"].contains(&status.as_str()) {
                problems.push(format!("{at}: unknown status {status:?}"));
                continue;
            }
            if test.is_empty() || !test_exists(test) {
                problems.push(format!("{at}: test {test:?} not found"));
            }
            // Schema.
            let prop = &schema_object(&schema, message)["properties"][field.as_str()];
            if prop.is_null() {
                problems.push(format!("{at}: not in schema/plugin-config.schema.json"));
            } else if (status == "refused") != prop.get("not").is_some() {
                problems.push(format!(
                    "{at}: schema says {}refused, the table {status}",
                    if prop.get("not").is_some() {
                        ""
                    } else {
                        "not "
                    }
                ));
            }
            // Parser, on the jwt_authn config itself.
            let (doc, path) = config_with(message, &field);
            let parsed = Config::parse(doc.to_string().as_bytes());
            let unknown = |errs: &[jwt_filter::diag::ConfigError]| {
                errs.iter().any(|e| e.message.contains("unknown field"))
            };
            match (status.as_str(), &parsed) {
                (_, Err(errs)) if unknown(errs) => {
                    problems.push(format!("{at}: the parser does not know it: {errs:?}"))
                }
                ("supported", Err(errs)) => {
                    problems.push(format!("{at}: supported, but refused: {errs:?}"))
                }
                ("refused", Ok(_)) => problems.push(format!("{at}: refused, but accepted")),
                ("refused", Err(errs))
                    if !errs
                        .iter()
                        .any(|e| e.path.starts_with(&path) && e.message.len() > 20) =>
                {
                    problems.push(format!(
                        "{at}: refused without a reason at {path}: {errs:?}"
                    ));
                }
                _ => {}
            }
            // Converter.
            match convert::convert_with_files(std::slice::from_ref(&doc), &read_file) {
                Ok(c) => {
                    let text = c.config.to_string();
                    if let Err(errs) = Config::parse(text.as_bytes()) {
                        let noted = c.notes.iter().any(|n| n.contains(field.as_str()));
                        if status != "refused" || !noted {
                            problems.push(format!(
                                "{at}: converted into a config the parser refuses: {errs:?}"
                            ));
                        }
                    }
                    if status == "refused" && !c.notes.iter().any(|n| n.contains(field.as_str())) {
                        problems.push(format!(
                            "{at}: refused, but converted without a note: {:?}",
                            c.notes
                        ));
                    }
                }
                Err(errs) => {
                    if status != "refused" {
                        problems.push(format!(
                            "{at}: {status}, but the converter refuses: {errs:?}"
                        ));
                    } else if !errs.iter().any(|e| e.contains(field.as_str())) {
                        problems.push(format!(
                            "{at}: the converter's error does not name it: {errs:?}"
                        ));
                    }
                }
            }
        }
    }
    assert!(seen >= 50, "only {seen} fields read from the protos");
    for (message, field) in rows.keys() {
        let proto = MESSAGES.iter().find(|(m, _)| m == message).unwrap().1;
        if !proto_fields(proto, message).contains(field) {
            problems.push(format!(
                "{message}.{field}: row for a field the proto does not have"
            ));
        }
    }
    assert!(problems.is_empty(), "\n  {}", problems.join("\n  "));
}

#[test]
fn ignored_route_match_fields_warn() {
    let rows = table();
    for ((message, field), _) in rows.iter().filter(|(k, _)| k.0 == "RouteMatch") {
        let line = TABLE
            .lines()
            .find(|l| l.contains(&format!("| {message} | {field} |")))
            .unwrap();
        if !line.contains("Ignored") {
            continue;
        }
        let (doc, path) = config_with(message, field);
        let c = Config::parse(doc.to_string().as_bytes()).unwrap();
        assert!(
            c.warnings
                .iter()
                .any(|w| w.to_string().contains(&format!("{path}: ignored"))),
            "{path}: {:?}",
            c.warnings
        );
    }
}
