//! Istio `RequestAuthentication` (+ simple `AuthorizationPolicy`) to this
//! plugin's configuration.

use serde_json::{json, Map, Value};

use super::*;

/// The Envoy cluster Istio creates for a ServiceEntry / Service host.
pub fn istio_cluster(uri: &str) -> Result<String, String> {
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| format!("{uri:?} is not an absolute URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let default_port = match scheme {
        "https" => 443,
        "http" => 80,
        other => return Err(format!("unsupported scheme {other:?} in {uri:?}")),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || p.is_empty() => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("bad port in {uri:?}"))?,
        ),
        _ => (authority, default_port),
    };
    if host.is_empty() {
        return Err(format!("no host in {uri:?}"));
    }
    Ok(format!("outbound|{port}||{host}"))
}

/// A provider name from an issuer: its host (or the whole issuer), made of
/// `[a-z0-9-]`.
pub(super) fn provider_name(issuer: &str, taken: &Map<String, Value>) -> String {
    let base = issuer
        .split_once("://")
        .map_or(issuer, |(_, rest)| rest)
        .trim_end_matches('/');
    let mut slug: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while slug.contains("--") {
        slug = slug.replace("--", "-");
    }
    let slug = slug.trim_matches('-').to_string();
    let slug = if slug.is_empty() {
        "jwt".to_string()
    } else {
        slug
    };
    let mut name = slug.clone();
    let mut n = 2;
    while taken.contains_key(&name) {
        name = format!("{slug}-{n}");
        n += 1;
    }
    name
}

pub(super) fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn istio_provider(
    rule: &Value,
    path: &str,
    errors: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Value {
    let mut p = Map::new();
    for (k, v) in obj_entries(rule) {
        match k.as_str() {
            "issuer" => {
                p.insert("issuer".into(), v.clone());
            }
            "audiences" => {
                p.insert("audiences".into(), v.clone());
            }
            "jwks" => {
                p.insert("local_jwks".into(), json!({ "inline_string": v }));
            }
            "jwks_uri" => {
                let uri = v.as_str().unwrap_or("");
                match istio_cluster(uri) {
                    Ok(cluster) => {
                        let timeout = get(rule, "timeout").cloned().unwrap_or(json!("5s"));
                        p.insert(
                            "remote_jwks".into(),
                            json!({
                                "http_uri": {"uri": uri, "cluster": cluster, "timeout": timeout},
                                "cache_duration": "1200s",
                            }),
                        );
                    }
                    Err(e) => errors.push(format!("{path}.jwksUri: {e}")),
                }
            }
            "timeout" => {}
            "from_headers" => {
                let hs: Vec<Value> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|h| {
                        let mut o = json!({ "name": get(h, "name").cloned().unwrap_or(json!("")) });
                        if let Some(prefix) = get(h, "prefix") {
                            o["value_prefix"] = prefix.clone();
                        }
                        o
                    })
                    .collect();
                p.insert("from_headers".into(), Value::Array(hs));
            }
            "from_params" => {
                p.insert("from_params".into(), v.clone());
            }
            "from_cookies" => {
                p.insert("from_cookies".into(), v.clone());
            }
            "output_payload_to_header" => {
                p.insert("forward_payload_header".into(), v.clone());
            }
            "output_claim_to_headers" => {
                let hs: Vec<Value> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|h| {
                        json!({
                            "header_name": get(h, "header").cloned().unwrap_or(json!("")),
                            "claim_name": get(h, "claim").cloned().unwrap_or(json!("")),
                        })
                    })
                    .collect();
                p.insert("claim_to_headers".into(), Value::Array(hs));
            }
            "forward_original_token" => {
                p.insert("forward".into(), v.clone());
            }
            other => errors.push(format!("{path}.{other}: not supported by the converter")),
        }
    }
    if !p.contains_key("local_jwks") && !p.contains_key("remote_jwks") {
        // Neither jwks nor jwksUri: Istio finds the JWKS by OIDC discovery from the issuer.
        let issuer = get(rule, "issuer").and_then(Value::as_str).unwrap_or("");
        match istio_cluster(issuer) {
            Ok(cluster) => {
                let timeout = get(rule, "timeout").cloned().unwrap_or(json!("5s"));
                p.insert(
                    "remote_jwks".into(),
                    json!({
                        "http_uri": {"cluster": cluster, "timeout": timeout},
                        "oidc_discovery": true,
                        "cache_duration": "1200s",
                    }),
                );
                notes.push(format!(
                    "{path}: no jwks/jwksUri: OIDC discovery from the issuer through {cluster} \
                     (the JWKS host must use the same cluster, or set jwksUri)"
                ));
            }
            Err(e) => errors.push(format!(
                "{path}: neither jwks nor jwksUri, and OIDC discovery needs an http(s) issuer: {e}"
            )),
        }
    }
    Value::Object(p)
}

/// What one AuthorizationPolicy rule requires of the token.
pub(super) struct Principals {
    /// Provider names allowed (empty: any provider).
    providers: Vec<String>,
    /// Allowed `sub` values (empty: any).
    subjects: Vec<String>,
}

pub(super) fn request_principals(
    list: &[String],
    issuers: &[(String, String)],
    path: &str,
    errors: &mut Vec<String>,
) -> Principals {
    let mut providers: Vec<String> = Vec::new();
    let mut subjects: Vec<String> = Vec::new();
    let mut any_sub = false;
    let mut any_provider = false;
    for rp in list {
        if rp == "*" {
            any_provider = true;
            any_sub = true;
            continue;
        }
        let Some((iss, sub)) = rp.rsplit_once('/') else {
            errors.push(format!(
                "{path}: requestPrincipal {rp:?} is not \"issuer/subject\""
            ));
            continue;
        };
        if iss.contains('*') || (sub.contains('*') && sub != "*") {
            errors.push(format!(
                "{path}: requestPrincipal {rp:?}: only \"*\", \"<issuer>/*\" and \
                 \"<issuer>/<subject>\" can be converted"
            ));
            continue;
        }
        match issuers.iter().find(|(i, _)| i == iss) {
            Some((_, name)) => {
                if !providers.contains(name) {
                    providers.push(name.clone());
                }
            }
            None => errors.push(format!(
                "{path}: requestPrincipal {rp:?} names an issuer no RequestAuthentication has"
            )),
        }
        if sub == "*" {
            any_sub = true;
        } else {
            subjects.push(sub.to_string());
        }
    }
    if any_sub && !subjects.is_empty() {
        errors.push(format!(
            "{path}: requestPrincipals mixing \"*\" subjects and fixed subjects cannot be converted"
        ));
    }
    if any_provider {
        providers.clear();
    }
    Principals {
        providers,
        subjects,
    }
}

/// Istio path pattern -> route match.
pub(super) fn path_match(p: &str) -> Value {
    if p == "*" {
        json!({"prefix": "/"})
    } else if let Some(prefix) = p.strip_suffix('*') {
        json!({ "prefix": prefix })
    } else if let Some(suffix) = p.strip_prefix('*') {
        json!({"safe_regex": {"regex": format!(".*{}", regex_lite::escape(suffix))}})
    } else {
        json!({ "path": p })
    }
}

/// `request.auth.claims[a][b]` -> `a.b`.
pub(super) fn claim_key(key: &str) -> Option<String> {
    let rest = key.strip_prefix("request.auth.claims")?;
    let mut parts = Vec::new();
    let mut s = rest;
    while let Some(r) = s.strip_prefix('[') {
        let (name, after) = r.split_once(']')?;
        if name.is_empty() || name.contains('.') {
            return None;
        }
        parts.push(name.to_string());
        s = after;
    }
    (s.is_empty() && !parts.is_empty()).then(|| parts.join("."))
}

/// Istio value pattern -> a required_claims entry (`exact` or `prefix`).
pub(super) fn claim_entry(
    name: &str,
    values: &[String],
    path: &str,
    errors: &mut Vec<String>,
) -> Value {
    let prefixed: Vec<&String> = values.iter().filter(|v| v.ends_with('*')).collect();
    if values.iter().any(|v| v.starts_with('*') && v.len() > 1) {
        errors.push(format!(
            "{path}: suffix patterns (\"*x\") on claims cannot be converted"
        ));
    }
    if prefixed.is_empty() {
        return json!({ "name": name, "values": values });
    }
    if prefixed.len() != values.len() {
        errors.push(format!(
            "{path}: mixing exact and prefix (\"x*\") values for one claim cannot be converted"
        ));
    }
    let stripped: Vec<&str> = values.iter().map(|v| v.trim_end_matches('*')).collect();
    json!({ "name": name, "values": stripped, "match": "prefix" })
}

pub(super) fn requirement_for(providers: &[String]) -> Value {
    match providers {
        [one] => json!({ "provider_name": one }),
        many => json!({"requires_any": {"requirements":
            many.iter().map(|p| json!({ "provider_name": p })).collect::<Vec<_>>()}}),
    }
}

/// A valid token from one of the providers, or none at all.
pub(super) fn optional_requirement(providers: &[String]) -> Value {
    let mut any: Vec<Value> = providers
        .iter()
        .map(|p| json!({ "provider_name": p }))
        .collect();
    any.push(json!({"allow_missing": {}}));
    json!({"requires_any": {"requirements": any}})
}

pub(super) fn from_istio(docs: &[&Value]) -> Result<Conversion, Vec<String>> {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let mut providers = Map::new();
    // (issuer, provider name)
    let mut issuers: Vec<(String, String)> = Vec::new();
    let kind = |d: &Value| {
        d.get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let name_of = |d: &Value| {
        d.get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    };

    for d in docs.iter().filter(|d| kind(d) == "RequestAuthentication") {
        let doc_name = name_of(d);
        let spec = d.get("spec").cloned().unwrap_or(json!({}));
        for (i, rule) in get(&spec, "jwt_rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let path = format!("RequestAuthentication {doc_name}: spec.jwtRules[{i}]");
            let issuer = get(rule, "issuer").and_then(Value::as_str).unwrap_or("");
            if issuer.is_empty() {
                errors.push(format!("{path}.issuer is required"));
                continue;
            }
            let name = provider_name(issuer, &providers);
            providers.insert(
                name.clone(),
                istio_provider(rule, &path, &mut errors, &mut notes),
            );
            issuers.push((issuer.to_string(), name));
        }
        if get(&spec, "selector").is_some() || get(&spec, "target_refs").is_some() {
            notes.push(format!(
                "RequestAuthentication {doc_name}: selector/targetRefs become the WasmPlugin's \
                 selector/targetRefs"
            ));
        }
    }
    if providers.is_empty() {
        errors.push("no RequestAuthentication with jwtRules found".to_string());
    }
    let all: Vec<String> = issuers.iter().map(|(_, n)| n.clone()).collect();

    let mut rules: Vec<Value> = Vec::new();
    for d in docs.iter().filter(|d| kind(d) == "AuthorizationPolicy") {
        let doc_name = name_of(d);
        let spec = d.get("spec").cloned().unwrap_or(json!({}));
        let action = get(&spec, "action")
            .and_then(Value::as_str)
            .unwrap_or("ALLOW");
        let base = format!("AuthorizationPolicy {doc_name}");
        for (k, _) in obj_entries(&spec) {
            if !matches!(
                k.as_str(),
                "action" | "rules" | "selector" | "target_refs" | "target_ref"
            ) {
                errors.push(format!("{base}: spec.{k} cannot be converted"));
            }
        }
        for (ri, r) in get(&spec, "rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let path = format!("{base}: spec.rules[{ri}]");
            let mut principals: Vec<String> = Vec::new();
            let mut not_principals: Vec<String> = Vec::new();
            for (fi, f) in get(r, "from")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                for (k, v) in obj_entries(get(f, "source").unwrap_or(&Value::Null)) {
                    match k.as_str() {
                        "request_principals" => principals.extend(strings(Some(v))),
                        "not_request_principals" => not_principals.extend(strings(Some(v))),
                        other => errors.push(format!(
                            "{path}.from[{fi}].source.{other}: only requestPrincipals can be converted"
                        )),
                    }
                }
            }
            let mut paths: Vec<String> = Vec::new();
            for (ti, t) in get(r, "to")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                for (k, v) in obj_entries(get(t, "operation").unwrap_or(&Value::Null)) {
                    match k.as_str() {
                        "paths" => paths.extend(strings(Some(v))),
                        other => errors.push(format!(
                            "{path}.to[{ti}].operation.{other}: only paths can be converted"
                        )),
                    }
                }
            }
            let mut claims: Vec<Value> = Vec::new();
            let mut audiences: Vec<String> = Vec::new();
            for (wi, w) in get(r, "when")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let key = get(w, "key").and_then(Value::as_str).unwrap_or("");
                let values = strings(get(w, "values"));
                let wpath = format!("{path}.when[{wi}]");
                if get(w, "not_values").is_some() {
                    errors.push(format!("{wpath}.notValues cannot be converted"));
                }
                if let Some(claim) = claim_key(key) {
                    claims.push(claim_entry(&claim, &values, &wpath, &mut errors));
                } else if key == "request.auth.audiences" {
                    audiences.extend(values);
                } else if key == "request.auth.presenter" {
                    claims.push(claim_entry("azp", &values, &wpath, &mut errors));
                } else if key == "request.auth.principal" {
                    principals.extend(values);
                } else {
                    errors.push(format!("{wpath}: condition {key:?} cannot be converted"));
                }
            }

            // An ALLOW rule without principals or claims admits anyone (no token
            // needed); a token that is present must still be valid (RequestAuthentication).
            let open = action == "ALLOW"
                && principals.is_empty()
                && claims.is_empty()
                && audiences.is_empty();
            let requires = match action {
                "ALLOW" if open => Vec::new(),
                "ALLOW" => {
                    let pr = request_principals(&principals, &issuers, &path, &mut errors);
                    if !pr.subjects.is_empty() {
                        claims.push(json!({"name": "sub", "values": pr.subjects}));
                    }
                    if pr.providers.is_empty() {
                        all.clone()
                    } else {
                        pr.providers
                    }
                }
                "DENY" => {
                    if not_principals != ["*"] || !principals.is_empty() || !claims.is_empty() {
                        errors.push(format!(
                            "{path}: of DENY policies only `from.source.notRequestPrincipals: [\"*\"]` \
                             (require a valid token) can be converted"
                        ));
                    }
                    all.clone()
                }
                other => {
                    errors.push(format!("{base}: action {other} cannot be converted"));
                    continue;
                }
            };
            if action == "ALLOW" && !not_principals.is_empty() {
                errors.push(format!(
                    "{path}: notRequestPrincipals in an ALLOW rule cannot be converted"
                ));
            }
            if paths.is_empty() {
                paths.push("*".to_string());
            }
            for p in &paths {
                let mut rule = Map::new();
                rule.insert("match".into(), path_match(p));
                let req = if open {
                    optional_requirement(&all)
                } else {
                    requirement_for(&requires)
                };
                rule.insert("requires".into(), req);
                if !claims.is_empty() {
                    rule.insert("required_claims".into(), Value::Array(claims.clone()));
                }
                if !audiences.is_empty() {
                    rule.insert("audiences".into(), json!(audiences));
                }
                rules.push(Value::Object(rule));
            }
        }
        if action == "ALLOW" {
            notes.push(format!(
                "{base}: Istio answers a missing token with 403 \"RBAC: access denied\" and \
                 denies requests that match no ALLOW rule; the plugin answers 401 (Jwt is missing) \
                 and only authenticates: keep an AuthorizationPolicy for non-JWT conditions"
            ));
        }
    }
    // RequestAuthentication alone: a token, when present, must be valid;
    // requests without one pass (Istio's semantics).
    rules.push(json!({"match": {"prefix": "/"}, "requires": optional_requirement(&all)}));

    if errors.is_empty() {
        Ok(Conversion {
            config: json!({"providers": providers, "rules": rules}),
            notes,
            route_configs: Vec::new(),
        })
    } else {
        Err(errors)
    }
}
