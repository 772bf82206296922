//! Migration: converts an Envoy `jwt_authn` filter configuration, or Istio
//! `RequestAuthentication` (+ simple `AuthorizationPolicy`) resources, into
//! this plugin's configuration.
//!
//! Pure: takes already-parsed documents (`serde_json::Value`; the native tool
//! reads YAML or JSON into them) and returns the plugin config plus notes on
//! what was dropped. Anything that would make the converted config accept a
//! request the original rejects is an error, never a silent drop.

use serde_json::{json, Map, Value};

/// A converted configuration and what the user should know about it.
#[derive(Clone, Debug)]
pub struct Conversion {
    pub config: Value,
    /// Dropped settings that do not change which requests pass, and
    /// behaviour differences to be aware of.
    pub notes: Vec<String>,
    /// The input's route configurations (`RouteConfiguration`s, in input
    /// order) with every `jwt_authn` per-route config replaced by the route
    /// metadata the plugin reads (see [`ROUTE_METADATA_NAMESPACE`]); empty
    /// when the input has no per-route config.
    pub route_configs: Vec<Value>,
}

/// The route metadata namespace the converter uses for per-route
/// requirements: `metadata.filter_metadata.jwt_filter.requirement_name`
/// (or `disabled: true`) on each route.
pub const ROUTE_METADATA_NAMESPACE: &str = "jwt_filter";

/// Reads a file named in the input (`local_jwks.filename`).
pub type FileReader<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// Converts the documents (all the YAML documents of the input files).
/// `Err` lists every setting that cannot be converted safely. Files named in
/// the input are not read (a `local_jwks.filename` is an error).
pub fn convert(docs: &[Value]) -> Result<Conversion, Vec<String>> {
    convert_with_files(docs, &|name: &str| {
        Err(format!(
            "{name}: files are not read here (jwt-filter-check convert reads them)"
        ))
    })
}

/// [`convert`], reading a `local_jwks.filename` with `read` and inlining its
/// content (a wasm filter cannot read files at run time).
pub fn convert_with_files(docs: &[Value], read: FileReader<'_>) -> Result<Conversion, Vec<String>> {
    let kind = |d: &Value| d.get("kind").and_then(Value::as_str).map(str::to_string);
    let istio: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            matches!(
                kind(d).as_deref(),
                Some("RequestAuthentication") | Some("AuthorizationPolicy")
            )
        })
        .collect();
    if !istio.is_empty() {
        return from_istio(&istio);
    }
    let mut found = Vec::new();
    for d in docs {
        find_jwt_authn(d, &mut found, 0);
    }
    match found.len() {
        0 => Err(vec![
            "no jwt_authn configuration (JwtAuthentication with providers, or an \
             envoy.filters.http.jwt_authn filter) and no Istio RequestAuthentication found"
                .to_string(),
        ]),
        1 => from_jwt_authn(found[0], docs, read),
        n => {
            let mut c = from_jwt_authn(found[0], docs, read)?;
            c.notes.push(format!(
                "{n} jwt_authn configurations found; converted the first one"
            ));
            Ok(c)
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `fooBar` -> `foo_bar` (proto3-JSON lowerCamelCase to the field name).
pub fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Deep copy with every object key snake_cased and `{seconds, nanos}`
/// durations turned into `"Ns"` strings. Only for values whose keys are all
/// field names (never user-chosen map keys).
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            if let Some(d) = duration_object(map) {
                return Value::String(d);
            }
            Value::Object(map.iter().map(|(k, v)| (snake(k), normalize(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn duration_object(map: &Map<String, Value>) -> Option<String> {
    if map.is_empty() || !map.keys().all(|k| k == "seconds" || k == "nanos") {
        return None;
    }
    let num = |k: &str| -> Option<u64> {
        match map.get(k) {
            None => Some(0),
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }
    };
    let (secs, nanos) = (num("seconds")?, num("nanos")?);
    if nanos == 0 {
        Some(format!("{secs}s"))
    } else {
        Some(format!("{secs}.{nanos:09}s"))
    }
}

/// Object field by snake_case name, or its lowerCamelCase form.
fn get<'a>(obj: &'a Value, snake_name: &str) -> Option<&'a Value> {
    crate::lint::field(obj, snake_name)
}

fn obj_entries(v: &Value) -> Vec<(String, &Value)> {
    v.as_object()
        .map(|m| m.iter().map(|(k, v)| (snake(k), v)).collect())
        .unwrap_or_default()
}

fn find_jwt_authn<'a>(v: &'a Value, out: &mut Vec<&'a Value>, depth: usize) {
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

// ---------------------------------------------------------------------------
// Envoy jwt_authn
// ---------------------------------------------------------------------------

/// Provider fields copied as they are (after snake_casing).
const PROVIDER_FIELDS: &[&str] = &[
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
pub const PROVIDER_DROPPABLE: &[&str] = &[
    "payload_in_metadata",
    "header_in_metadata",
    "failed_status_in_metadata",
    "normalize_payload_in_metadata",
];

/// Route match fields this plugin supports (converted as they are).
pub const MATCH_FIELDS: &[&str] = &[
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
pub const MATCH_IGNORED: &[&str] = &[
    "grpc",
    "tls_context",
    "runtime_fraction",
    "dynamic_metadata",
    "cookies",
    "filter_state",
];

/// Route match fields the plugin refuses: converting a rule that uses one
/// is an error (the rule would select other requests).
pub const MATCH_REFUSED: &[&str] = &["path_match_policy"];

/// Top-level `JwtAuthentication` fields, and how each converts.
pub const TOP_FIELDS: &[&str] = &[
    "providers",
    "rules",
    "filter_state_rules",
    "bypass_cors_preflight",
    "requirement_map",
    "strip_failure_response",
    "stat_prefix",
];

fn from_jwt_authn(
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

fn jwt_provider(
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
fn local_jwks(ds: &Value, read: FileReader<'_>) -> Result<String, String> {
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
fn refuse_unverified_extraction(v: &Value, path: &str, errors: &mut Vec<String>, depth: usize) {
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
fn is_jwt_per_route(v: &Value) -> bool {
    v.get("@type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with("jwt_authn.v3.PerRouteConfig"))
}

/// Takes jwt_authn's per-route config out of a `typed_per_filter_config`.
fn take_per_route(holder: &mut Value) -> Option<Value> {
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
fn per_route_metadata(
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
fn per_route_configs(
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

fn set_route_metadata(route: &mut Value, meta: Value) {
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
fn find_route_configs<'a>(v: &'a Value, out: &mut Vec<&'a Value>, depth: usize) {
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

// ---------------------------------------------------------------------------
// Istio RequestAuthentication + AuthorizationPolicy
// ---------------------------------------------------------------------------

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
fn provider_name(issuer: &str, taken: &Map<String, Value>) -> String {
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

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn istio_provider(
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
struct Principals {
    /// Provider names allowed (empty: any provider).
    providers: Vec<String>,
    /// Allowed `sub` values (empty: any).
    subjects: Vec<String>,
}

fn request_principals(
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
fn path_match(p: &str) -> Value {
    if p == "*" {
        json!({"prefix": "/"})
    } else if let Some(prefix) = p.strip_suffix('*') {
        json!({ "prefix": prefix })
    } else if let Some(suffix) = p.strip_prefix('*') {
        json!({"safe_regex": {"regex": format!(".*{}", regex_escape(suffix))}})
    } else {
        json!({ "path": p })
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `request.auth.claims[a][b]` -> `a.b`.
fn claim_key(key: &str) -> Option<String> {
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
fn claim_entry(name: &str, values: &[String], path: &str, errors: &mut Vec<String>) -> Value {
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

fn requirement_for(providers: &[String]) -> Value {
    match providers {
        [one] => json!({ "provider_name": one }),
        many => json!({"requires_any": {"requirements":
            many.iter().map(|p| json!({ "provider_name": p })).collect::<Vec<_>>()}}),
    }
}

/// A valid token from one of the providers, or none at all.
fn optional_requirement(providers: &[String]) -> Value {
    let mut any: Vec<Value> = providers
        .iter()
        .map(|p| json!({ "provider_name": p }))
        .collect();
    any.push(json!({"allow_missing": {}}));
    json!({"requires_any": {"requirements": any}})
}

fn from_istio(docs: &[&Value]) -> Result<Conversion, Vec<String>> {
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

#[cfg(test)]
mod tests;
