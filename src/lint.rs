//! Configuration checking for the native `jwt-filter-check` tool: the filter's
//! own parser ([`Config::parse`], so the verdict is exactly the filter's) plus
//! warnings about setups that are legal but unsafe.
//!
//! Pure: works on bytes and `serde_json::Value`s, never reads files. Not built
//! for the wasm target (the filter does not need it).

use std::fmt;

use serde_json::{Map, Value};

use crate::config::Config;

mod revocation;

/// How bad a finding is: errors make the filter refuse the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, with the JSON path of the field at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.path.is_empty() {
            write!(f, "{kind}: {}", self.message)
        } else {
            write!(f, "{kind}: {}: {}", self.path, self.message)
        }
    }
}

/// The result of checking one plugin configuration.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }
}

fn warning(path: impl Into<String>, message: impl Into<String>) -> Finding {
    Finding {
        severity: Severity::Warning,
        path: path.into(),
        message: message.into(),
    }
}

/// Checks plugin configuration bytes exactly as the filter's `on_configure`
/// does; when they are valid, adds the parser's own warnings (skipped keys)
/// and the [`lint`] warnings.
pub fn check(bytes: &[u8]) -> Report {
    let mut report = Report::default();
    match Config::parse(bytes) {
        Err(errors) => {
            report.findings = errors
                .into_iter()
                .map(|e| Finding {
                    severity: Severity::Error,
                    path: e.path,
                    message: e.message,
                })
                .collect();
        }
        Ok(config) => {
            for w in &config.warnings {
                // The parser's warnings read "<path>: <message>".
                let (path, message) = match w.split_once(": ") {
                    Some((p, m)) if !p.contains(' ') => (p.to_string(), m.to_string()),
                    _ => (String::new(), w.clone()),
                };
                report.findings.push(warning(path, message));
            }
            // The unsafe setups the filter itself logs at configure time.
            for w in crate::safety::warnings(&config) {
                report.findings.push(warning(w.path, w.message));
            }
            report.findings.extend(revocation::warnings(&config));
            if let Ok(doc) = serde_json::from_slice::<Value>(bytes) {
                report.findings.extend(lint(&doc));
            }
        }
    }
    report
}

/// A field by its proto3-JSON snake_case name, or its lowerCamelCase alias
/// (the filter accepts both).
pub fn field<'a>(obj: &'a Value, snake: &str) -> Option<&'a Value> {
    let map = obj.as_object()?;
    map.get(snake).or_else(|| map.get(&camel(snake)))
}

fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn non_empty_array(v: Option<&Value>) -> bool {
    v.and_then(Value::as_array).is_some_and(|a| !a.is_empty())
}

fn is_true(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool).unwrap_or(false)
}

/// Warnings about a configuration that the filter accepts (call it only on
/// a config that [`Config::parse`] accepted; on others the result is
/// meaningless but harmless). The unsafe setups the filter logs itself
/// (plain-HTTP JWKS, short HMAC secrets) come from [`crate::safety`] in
/// [`check`].
pub fn lint(doc: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    let empty = Map::new();
    let providers = field(doc, "providers")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    // Rules naming a requirement_map entry are linted with that requirement.
    let map = field(doc, "requirement_map");
    let resolved: Vec<Value> = field(doc, "rules")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|r| {
            let named = field(r, "requirement_name")
                .and_then(Value::as_str)
                .and_then(|n| map.and_then(|m| m.get(n)));
            match (named, r) {
                (Some(req), Value::Object(o)) => {
                    let mut o = o.clone();
                    o.insert("requires".into(), req.clone());
                    Value::Object(o)
                }
                _ => r.clone(),
            }
        })
        .collect();
    let rules: &[Value] = &resolved;

    for (name, p) in providers {
        lint_provider(&mut out, name, p, rules);
    }
    lint_rules(&mut out, rules);

    if field(doc, "mode").and_then(Value::as_str) == Some("report") {
        out.push(warning(
            "mode",
            "report mode: requests that fail verification are let through (only counted and logged)",
        ));
    }
    out
}

fn lint_provider(out: &mut Vec<Finding>, name: &str, p: &Value, rules: &[Value]) {
    let path = format!("providers.{name}");

    if field(p, "issuer")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        out.push(warning(
            path.clone(),
            "no issuer: a token from any issuer signed by these keys is accepted",
        ));
    }

    if !non_empty_array(field(p, "audiences")) && !audiences_set_by_every_use(name, rules) {
        out.push(warning(
            format!("{path}.audiences"),
            "no audiences: a token this issuer minted for any other service is accepted here \
             (set audiences, or provider_and_audiences in every rule)",
        ));
    }

    if !is_true(field(p, "require_expiration")) {
        out.push(warning(
            format!("{path}.require_expiration"),
            "require_expiration is false: a token without \"exp\" never expires \
             (set require_expiration: true, and max_lifetime)",
        ));
    }

    let from_headers = non_empty_array(field(p, "from_headers"));
    let from_params = non_empty_array(field(p, "from_params"));
    let from_cookies = non_empty_array(field(p, "from_cookies"));
    if from_params {
        out.push(warning(
            format!("{path}.from_params"),
            "tokens are accepted from query parameters: URLs end up in access logs, browser \
             history and Referer headers (prefer from_headers)",
        ));
    } else if !from_headers && !from_cookies {
        out.push(warning(
            path.clone(),
            "no from_headers/from_params/from_cookies: by default (as jwt_authn) tokens are also \
             accepted from the \"access_token\" query parameter, which ends up in access logs \
             (set from_headers: [{name: authorization, value_prefix: \"Bearer \"}] to accept the \
             header only)",
        ));
    }

    if let Some(skew) = field(p, "clock_skew_seconds").and_then(Value::as_u64) {
        if skew > 300 {
            out.push(warning(
                format!("{path}.clock_skew_seconds"),
                format!("{skew}s of clock skew lets expired tokens through for that long; fix the clocks (NTP) instead"),
            ));
        }
    }
}

/// Every rule naming this provider does so through `provider_and_audiences`
/// with a non-empty list (and at least one rule names it).
fn audiences_set_by_every_use(name: &str, rules: &[Value]) -> bool {
    let mut uses = Vec::new();
    for r in rules {
        if let Some(req) = field(r, "requires") {
            provider_uses(req, name, &mut uses, 0);
        }
    }
    !uses.is_empty() && uses.iter().all(|with_aud| *with_aud)
}

/// Collects, for each reference to `name`, whether it sets audiences.
fn provider_uses(req: &Value, name: &str, uses: &mut Vec<bool>, depth: usize) {
    if depth > 16 {
        return;
    }
    if field(req, "provider_name").and_then(Value::as_str) == Some(name) {
        uses.push(false);
    }
    if let Some(pa) = field(req, "provider_and_audiences") {
        if field(pa, "provider_name").and_then(Value::as_str) == Some(name) {
            uses.push(non_empty_array(field(pa, "audiences")));
        }
    }
    for list in ["requires_any", "requires_all"] {
        if let Some(reqs) = field(req, list)
            .and_then(|l| field(l, "requirements"))
            .and_then(Value::as_array)
        {
            for r in reqs {
                provider_uses(r, name, uses, depth + 1);
            }
        }
    }
}

/// The requirement lets a request with a missing or invalid token through:
/// `allow_missing_or_failed`, or a `requires_any` with such a branch.
fn passes_anything(req: &Value, depth: usize) -> bool {
    if depth > 16 {
        return false;
    }
    if field(req, "allow_missing_or_failed").is_some() {
        return true;
    }
    field(req, "requires_any")
        .and_then(|l| field(l, "requirements"))
        .and_then(Value::as_array)
        .is_some_and(|reqs| reqs.iter().any(|r| passes_anything(r, depth + 1)))
}

/// The `prefix` of a rule that lets requests without a token through (no
/// `requires`, or one satisfied without a token) when that prefix does not end
/// at a path segment: `/public` also matches `/publicity`.
fn open_segment_prefix(rule: &Value) -> Option<&str> {
    let m = field(rule, "match")?;
    let prefix = field(m, "prefix").and_then(Value::as_str)?;
    if prefix.is_empty() || prefix.ends_with('/') {
        return None;
    }
    match field(rule, "requires") {
        None => Some(prefix),
        Some(req) if passes_without_token(req, 0) => Some(prefix),
        Some(_) => None,
    }
}

/// The requirement lets a request without a token through: `allow_missing`,
/// `allow_missing_or_failed`, or a `requires_any` with such a branch.
fn passes_without_token(req: &Value, depth: usize) -> bool {
    if depth > 16 {
        return false;
    }
    if field(req, "allow_missing").is_some() || field(req, "allow_missing_or_failed").is_some() {
        return true;
    }
    field(req, "requires_any")
        .and_then(|l| field(l, "requirements"))
        .and_then(Value::as_array)
        .is_some_and(|reqs| reqs.iter().any(|r| passes_without_token(r, depth + 1)))
}

/// A rule that matches every path (`prefix: "/"` or `""`, a `.*` regex) with
/// no header condition.
fn is_catch_all(rule: &Value) -> bool {
    let Some(m) = field(rule, "match") else {
        return false;
    };
    if non_empty_array(field(m, "headers")) {
        return false;
    }
    let prefix = field(m, "prefix").and_then(Value::as_str);
    let regex = field(m, "safe_regex")
        .and_then(|r| field(r, "regex"))
        .and_then(Value::as_str);
    matches!(prefix, Some("/") | Some("")) || matches!(regex, Some(".*") | Some("/.*"))
}

fn lint_rules(out: &mut Vec<Finding>, rules: &[Value]) {
    let with_requires: Vec<(usize, &Value)> = rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| field(r, "requires").map(|req| (i, req)))
        .collect();
    let open: Vec<usize> = with_requires
        .iter()
        .filter(|(_, req)| passes_anything(req, 0))
        .map(|(i, _)| *i)
        .collect();
    if !with_requires.is_empty() && open.len() == with_requires.len() {
        out.push(warning(
            "rules",
            "every rule uses allow_missing_or_failed: no request is ever rejected, and requests \
             with invalid or forged tokens reach the upstream",
        ));
    } else {
        for i in open {
            if rules.get(i).is_some_and(is_catch_all) {
                out.push(warning(
                    format!("rules[{i}].requires"),
                    "allow_missing_or_failed on a catch-all rule: every path it covers lets \
                     requests with invalid or forged tokens through",
                ));
            }
        }
    }
    for (i, r) in rules.iter().enumerate() {
        if let Some(prefix) = open_segment_prefix(r) {
            out.push(warning(
                format!("rules[{i}].match.prefix"),
                format!(
                    "prefix {prefix:?} is a string prefix, not a path segment: this rule also \
                     lets requests without a token reach {:?}; use {{\"path\": {prefix:?}}} \
                     and {{\"prefix\": \"{prefix}/\"}}",
                    format!("{prefix}-admin")
                ),
            ));
        }
        if field(r, "mode").and_then(Value::as_str) == Some("report") {
            out.push(warning(
                format!("rules[{i}].mode"),
                "report mode: this rule lets failing requests through (only counted and logged)",
            ));
        }
    }
}

/// The plugin configurations inside a document, each as the exact bytes the
/// filter would receive, with where it was found:
///
/// - an Istio `WasmPlugin`: `spec.pluginConfig` (Istio passes it as JSON);
/// - an Envoy bootstrap or filter config: every `envoy.filters.http.wasm`
///   filter's `config.configuration` `StringValue`.
///
/// Empty when the document holds neither (then it is the plugin config itself,
/// or something else).
pub fn plugin_configs(doc: &Value) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if doc.get("kind").and_then(Value::as_str) == Some("WasmPlugin") {
        if let Some(pc) = doc.get("spec").and_then(|s| s.get("pluginConfig")) {
            out.push((
                "spec.pluginConfig".to_string(),
                serde_json::to_vec(pc).unwrap_or_default(),
            ));
        }
        return out;
    }
    find_wasm_configs(doc, "", &mut out, 0);
    out
}

fn find_wasm_configs(v: &Value, path: &str, out: &mut Vec<(String, Vec<u8>)>, depth: usize) {
    if depth > 64 {
        return;
    }
    match v {
        Value::Object(map) => {
            let is_wasm = map
                .get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("envoy.extensions.filters.http.wasm.v3.Wasm"));
            if is_wasm {
                if let Some(value) = map
                    .get("config")
                    .and_then(|c| c.get("configuration"))
                    .and_then(|c| c.get("value"))
                    .and_then(Value::as_str)
                {
                    out.push((
                        format!("{path}.config.configuration.value"),
                        value.as_bytes().to_vec(),
                    ));
                }
                return;
            }
            for (k, child) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                find_wasm_configs(child, &p, out, depth + 1);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                find_wasm_configs(child, &format!("{path}[{i}]"), out, depth + 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
