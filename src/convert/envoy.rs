//! Envoy `jwt_authn` (a filter config, a bootstrap or listener holding one,
//! and its per-route configs) to this plugin's configuration.

use serde_json::{json, Map, Value};

use super::*;

pub(super) fn find_jwt_authn<'a>(v: &'a Value, out: &mut Vec<&'a Value>, depth: usize) {
    if depth > 64 {
        return;
    }
    match v {
        Value::Object(map) => {
            let t = map.get("@type").and_then(Value::as_str).unwrap_or("");
            if t.ends_with("jwt_authn.v3.JwtAuthentication") {
                out.push(v);
                return;
            }
            if map.get("name").and_then(Value::as_str) == Some("envoy.filters.http.jwt_authn") {
                if let Some(tc) = get(v, "typed_config") {
                    out.push(tc);
                    return;
                }
            }
            // A bare JwtAuthentication (the typed_config object itself).
            if depth == 0 && t.is_empty() && map.contains_key("providers") {
                out.push(v);
                return;
            }
            for child in map.values() {
                find_jwt_authn(child, out, depth + 1);
            }
        }
        Value::Array(items) => {
            for child in items {
                find_jwt_authn(child, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// Provider fields copied as they are (after snake_casing).
pub(super) const PROVIDER_FIELDS: &[&str] = &[
    "issuer",
    "audiences",
    "remote_jwks",
    "from_headers",
    "from_params",
    "from_cookies",
    "forward",
    "forward_payload_header",
    "pad_forward_payload_header",
    "claim_to_headers",
    "clock_skew_seconds",
    "max_lifetime",
    "require_expiration",
    "jwt_cache_config",
];

/// Provider fields that only feed other filters (dynamic metadata): dropping
/// them does not change which requests pass. The plugin's equivalent is its
/// filter state (`filter_state: true`).
const PROVIDER_DROPPABLE: &[&str] = &[
    "payload_in_metadata",
    "header_in_metadata",
    "failed_status_in_metadata",
    "normalize_payload_in_metadata",
];

/// Route match fields this plugin supports (converted as they are).
const MATCH_FIELDS: &[&str] = &[
    "prefix",
    "path",
    "safe_regex",
    "path_separated_prefix",
    "connect_matcher",
    "headers",
    "query_parameters",
    "case_sensitive",
];

/// Route match fields `jwt_authn`'s rule matcher ignores; the plugin accepts
/// and ignores them the same way (with a warning).
const MATCH_IGNORED: &[&str] = &[
    "grpc",
    "tls_context",
    "runtime_fraction",
    "dynamic_metadata",
    "cookies",
    "filter_state",
];

/// Route match fields the plugin refuses: converting a rule that uses one
/// is an error (the rule would select other requests).
const MATCH_REFUSED: &[&str] = &["path_match_policy"];

pub(super) fn from_jwt_authn(
    ja: &Value,
    docs: &[Value],
    read: FileReader<'_>,
) -> Result<Conversion, Vec<String>> {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let mut providers = Map::new();
    for (name, p) in get(ja, "providers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        providers.insert(
            name.clone(),
            jwt_provider(name, p, read, &mut errors, &mut notes),
        );
    }
    let requirement_map = get(ja, "requirement_map");
    let mut rules = Vec::new();
    for (i, r) in get(ja, "rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = format!("rules[{i}]");
        let mut rule = Map::new();
        for (k, v) in obj_entries(r) {
            match k.as_str() {
                "match" => {
                    for (mk, _) in obj_entries(v) {
                        if MATCH_IGNORED.contains(&mk.as_str()) {
                            notes.push(format!(
                                "{path}.match.{mk}: kept; ignored by the plugin as by jwt_authn's \
                                 rule matcher"
                            ));
                        } else if MATCH_REFUSED.contains(&mk.as_str()) {
                            errors.push(format!(
                                "{path}.match.{mk}: refused: URI-template path matching is not \
                                 implemented by the plugin; express the template as safe_regex"
                            ));
                        } else if !MATCH_FIELDS.contains(&mk.as_str()) {
                            errors.push(format!(
                                "{path}.match.{mk}: not supported by the plugin (supported: {})",
                                MATCH_FIELDS.join(", ")
                            ));
                        }
                    }
                    rule.insert("match".into(), normalize(v));
                }
                "requires" => {
                    rule.insert("requires".into(), normalize(v));
                }
                "requirement_name" => {
                    let name = v.as_str().unwrap_or("");
                    if requirement_map.and_then(|m| m.get(name)).is_some() {
                        rule.insert("requirement_name".into(), v.clone());
                    } else {
                        errors.push(format!(
                            "{path}.requirement_name: {name:?} is not in requirement_map"
                        ));
                    }
                }
                other => errors.push(format!("{path}.{other}: not supported by the plugin")),
            }
        }
        rules.push(Value::Object(rule));
    }
    let mut out = Map::new();
    out.insert("providers".into(), Value::Object(providers));
    out.insert("rules".into(), Value::Array(rules));
    for (k, v) in obj_entries(ja) {
        match k.as_str() {
            "providers" | "rules" | "@type" => {}
            "bypass_cors_preflight" => {
                out.insert(k, v.clone());
            }
            "stat_prefix" => {
                out.insert(k, v.clone());
            }
            "requirement_map" => {
                // Keys are user-chosen names: only the requirements are normalized.
                let map: Map<String, Value> = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, req)| (name.clone(), normalize(req)))
                    .collect();
                out.insert(k, Value::Object(map));
                out.insert(
                    "route_metadata_namespace".into(),
                    json!(ROUTE_METADATA_NAMESPACE),
                );
            }
            "strip_failure_response" => {
                out.insert(k, v.clone());
            }
            "filter_state_rules" => {
                let requires: Map<String, Value> = get(v, "requires")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .map(|(key, req)| (key.clone(), normalize(req)))
                    .collect();
                out.insert(
                    k,
                    json!({
                        "name": get(v, "name").cloned().unwrap_or(json!("")),
                        "requires": requires,
                    }),
                );
            }
            other => errors.push(format!("{other}: not supported by the plugin")),
        }
    }
    notes.push(
        "deviation: a token whose audience is not allowed gets 401 invalid_token here (RFC 6750); \
         jwt_authn answers 403"
            .to_string(),
    );
    let names: Vec<String> = requirement_map
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for (k, v) in obj_entries(ja) {
        if matches!(
            k.as_str(),
            "rules" | "requirement_map" | "filter_state_rules"
        ) {
            refuse_unverified_extraction(v, &k, &mut errors, 0);
        }
    }
    let route_configs = per_route_configs(docs, &names, &mut errors, &mut notes);
    if !route_configs.is_empty() {
        out.insert(
            "route_metadata_namespace".into(),
            json!(ROUTE_METADATA_NAMESPACE),
        );
    } else if out.contains_key("route_metadata_namespace") {
        notes.push(format!(
            "requirement_map: a route selects an entry with the route metadata \
             filter_metadata: {{{ROUTE_METADATA_NAMESPACE}: {{requirement_name: NAME}}}} \
             (or {{disabled: true}}), which replaces jwt_authn's per-route config"
        ));
    }
    if errors.is_empty() {
        Ok(Conversion {
            config: Value::Object(out),
            notes,
            route_configs,
        })
    } else {
        Err(errors)
    }
}

pub(super) fn jwt_provider(
    name: &str,
    p: &Value,
    read: FileReader<'_>,
    errors: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Value {
    let path = format!("providers.{name}");
    let mut out = Map::new();
    for (k, v) in obj_entries(p) {
        if PROVIDER_FIELDS.contains(&k.as_str()) {
            out.insert(k, normalize(v));
        } else if k == "local_jwks" {
            match local_jwks(v, read) {
                Ok(text) => {
                    out.insert("local_jwks".into(), json!({ "inline_string": text }));
                }
                Err(e) => errors.push(format!("{path}.local_jwks: {e}")),
            }
        } else if PROVIDER_DROPPABLE.contains(&k.as_str()) {
            notes.push(format!(
                "{path}.{k} dropped: a wasm filter cannot write dynamic metadata (it only feeds \
                 other filters, not the decision); set filter_state: true for the verified \
                 payload as filter state wasm.jwt_filter_payload"
            ));
        } else if k == "subjects" {
            out.insert(k, normalize(v));
        } else if k == "clear_route_cache" {
            out.insert(k, v.clone());
            if v.as_bool() != Some(true) {
                notes.push(format!(
                    "{path}.clear_route_cache: Envoy recomputes the route after every request \
                     header a wasm filter writes, so the route is recomputed after this \
                     filter's header edits (as jwt_authn with clear_route_cache: true)"
                ));
            }
        } else {
            errors.push(format!("{path}.{k}: not supported by the plugin"));
        }
    }
    Value::Object(out)
}

/// `local_jwks` DataSource -> the JWKS text (a `filename`'s content, read
/// now: the plugin cannot read files).
pub(super) fn local_jwks(ds: &Value, read: FileReader<'_>) -> Result<String, String> {
    if let Some(s) = get(ds, "inline_string").and_then(Value::as_str) {
        return Ok(s.to_string());
    }
    if let Some(b) = get(ds, "inline_bytes").and_then(Value::as_str) {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .map_err(|e| format!("inline_bytes is not base64: {e}"))?;
        return String::from_utf8(bytes).map_err(|_| "inline_bytes is not UTF-8".to_string());
    }
    if let Some(name) = get(ds, "filename").and_then(Value::as_str) {
        return read(name).map_err(|e| {
            format!("filename: {e} (a wasm plugin cannot read files: the converter inlines it)")
        });
    }
    Err("only inline_string / inline_bytes can be converted".to_string())
}

/// `extract_only_without_validation` anywhere in requirements: an error (the
/// plugin never forwards claims of unverified tokens).
pub(super) fn refuse_unverified_extraction(
    v: &Value,
    path: &str,
    errors: &mut Vec<String>,
    depth: usize,
) {
    if depth > 32 {
        return;
    }
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let p = format!("{path}.{}", snake(k));
                if snake(k) == "extract_only_without_validation" {
                    errors.push(format!(
                        "{p}: refused: it forwards claims of tokens that are not verified; use \
                         requires_any of the provider and allow_missing_or_failed instead"
                    ));
                } else {
                    refuse_unverified_extraction(child, &p, errors, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                refuse_unverified_extraction(child, &format!("{path}[{i}]"), errors, depth + 1);
            }
        }
        _ => {}
    }
}

/// Whether a `typed_per_filter_config` value is jwt_authn's `PerRouteConfig`.
pub(super) fn is_jwt_per_route(v: &Value) -> bool {
    v.get("@type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with("jwt_authn.v3.PerRouteConfig"))
}

/// Takes jwt_authn's per-route config out of a `typed_per_filter_config`.
pub(super) fn take_per_route(holder: &mut Value) -> Option<Value> {
    let tpfc = holder
        .as_object_mut()?
        .iter_mut()
        .find(|(k, _)| snake(k) == "typed_per_filter_config")
        .map(|(_, v)| v)?
        .as_object_mut()?;
    let key = tpfc
        .iter()
        .find(|(_, v)| is_jwt_per_route(v))
        .map(|(k, _)| k.clone())?;
    let found = tpfc.remove(&key);
    if tpfc.is_empty() {
        if let Some(obj) = holder.as_object_mut() {
            obj.retain(|k, _| snake(k) != "typed_per_filter_config");
        }
    }
    found
}

/// The route metadata (`filter_metadata` entry) equivalent to a PerRouteConfig.
pub(super) fn per_route_metadata(
    cfg: &Value,
    at: &str,
    names: &[String],
    errors: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Option<Value> {
    if get(cfg, "disabled").and_then(Value::as_bool) == Some(true) {
        return Some(json!({ "disabled": true }));
    }
    match get(cfg, "requirement_name").and_then(Value::as_str) {
        Some(name) => {
            if !names.iter().any(|n| n == name) {
                notes.push(format!(
                    "{at}: requirement_name {name:?} is not in requirement_map: requests on \
                     this route are denied with 403, as with jwt_authn"
                ));
            }
            Some(json!({ "requirement_name": name }))
        }
        None => {
            errors.push(format!(
                "{at}: a jwt_authn PerRouteConfig sets disabled: true or requirement_name"
            ));
            None
        }
    }
}

/// Rewrites every route configuration of the input that carries jwt_authn
/// per-route configs: each route gets the metadata for the most specific
/// one (route, else virtual host, else route configuration, as Envoy picks
/// it) and the `typed_per_filter_config` entry is removed.
pub(super) fn per_route_configs(
    docs: &[Value],
    names: &[String],
    errors: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Vec<Value> {
    let mut found = Vec::new();
    for d in docs {
        find_route_configs(d, &mut found, 0);
    }
    let mut out = Vec::new();
    for (i, rc) in found.into_iter().enumerate() {
        let mut rc = rc.clone();
        let rc_cfg = take_per_route(&mut rc);
        let mut changed = rc_cfg.is_some();
        let vhosts = rc
            .as_object_mut()
            .and_then(|o| {
                o.iter_mut()
                    .find(|(k, _)| snake(k) == "virtual_hosts")
                    .map(|(_, v)| v)
            })
            .and_then(Value::as_array_mut);
        for (vi, vh) in vhosts.into_iter().flatten().enumerate() {
            let vh_cfg = take_per_route(vh).or_else(|| rc_cfg.clone());
            changed |= vh_cfg.is_some();
            let vh_name = get(vh, "name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let routes = vh
                .as_object_mut()
                .and_then(|o| o.get_mut("routes"))
                .and_then(Value::as_array_mut);
            for (ri, route) in routes.into_iter().flatten().enumerate() {
                let own = take_per_route(route);
                changed |= own.is_some();
                let Some(cfg) = own.or_else(|| vh_cfg.clone()) else {
                    continue;
                };
                let at = format!("route_config[{i}].virtual_hosts[{vi}] ({vh_name}).routes[{ri}]");
                if let Some(meta) = per_route_metadata(&cfg, &at, names, errors, notes) {
                    set_route_metadata(route, meta);
                }
            }
        }
        if changed {
            out.push(rc);
        }
    }
    if !out.is_empty() {
        notes.push(format!(
            "per-route configs: replaced by route metadata filter_metadata.{ROUTE_METADATA_NAMESPACE} \
             (requirement_name or disabled); use the rewritten route configuration \
             (jwt-filter-check convert --route-config-out FILE)"
        ));
    }
    out
}

pub(super) fn set_route_metadata(route: &mut Value, meta: Value) {
    let Some(obj) = route.as_object_mut() else {
        return;
    };
    let md = obj.entry("metadata").or_insert_with(|| json!({}));
    if !md.is_object() {
        *md = json!({});
    }
    let Some(md) = md.as_object_mut() else {
        return;
    };
    let fm = md.entry("filter_metadata").or_insert_with(|| json!({}));
    if let Some(fm) = fm.as_object_mut() {
        fm.insert(ROUTE_METADATA_NAMESPACE.into(), meta);
    }
}

/// Route configurations: objects with `virtual_hosts` (an HCM's
/// `route_config`, or a `RouteConfiguration` resource).
pub(super) fn find_route_configs<'a>(v: &'a Value, out: &mut Vec<&'a Value>, depth: usize) {
    if depth > 64 {
        return;
    }
    match v {
        Value::Object(map) => {
            if map.keys().any(|k| snake(k) == "virtual_hosts") {
                out.push(v);
                return;
            }
            for child in map.values() {
                find_route_configs(child, out, depth + 1);
            }
        }
        Value::Array(items) => {
            for child in items {
                find_route_configs(child, out, depth + 1);
            }
        }
        _ => {}
    }
}
