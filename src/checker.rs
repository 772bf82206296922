//! Configuration checking for the native `jwt-filter-check` tool: the filter's
//! own parser ([`Config::parse`], so the verdict and the warnings are exactly
//! the filter's), plus what only an Envoy bootstrap shows (how the HTTP
//! connection manager in front of the filter handles paths).
//!
//! Pure: works on bytes and `serde_json::Value`s, never reads files. Not built
//! for the wasm target (the filter does not need it).

use std::fmt;

use serde_json::Value;

use crate::config::Config;
use crate::matcher::PathMatcher;
use crate::warning::{Kind, Warning};

use crate::case::camel;

#[cfg(test)]
#[path = "checker/revocation_tests.rs"]
mod revocation_tests;

/// How bad a finding is: errors make the filter refuse the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, with the JSON path of the field at fault; a warning also
/// has its [`Kind`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub path: String,
    pub message: String,
    /// `None` for errors.
    pub kind: Option<Kind>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{severity}: ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        match self.kind {
            Some(kind) => write!(f, " [{kind}]"),
            None => Ok(()),
        }
    }
}

impl From<Warning> for Finding {
    fn from(w: Warning) -> Self {
        Finding {
            severity: Severity::Warning,
            path: w.path,
            message: w.message,
            kind: Some(w.kind),
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

/// Checks plugin configuration bytes exactly as the filter's `on_configure`
/// does: its errors, or its warnings ([`Config::warnings`], the list the
/// filter logs at configure time).
pub fn check(bytes: &[u8]) -> Report {
    check_in(bytes, None)
}

/// [`check`], for a plugin configuration found inside an Envoy bootstrap
/// under an HTTP connection manager whose path handling is `hcm`: adds
/// [`Kind::PathNotNormalized`] when a rule exempts a path prefix and that
/// connection manager does not normalise paths.
pub fn check_in(bytes: &[u8], hcm: Option<&PathHandling>) -> Report {
    let mut report = Report::default();
    match Config::parse(bytes) {
        Err(errors) => {
            report.findings = errors
                .into_iter()
                .map(|e| Finding {
                    severity: Severity::Error,
                    path: e.path,
                    message: e.message,
                    kind: None,
                })
                .collect();
        }
        Ok(config) => {
            report
                .findings
                .extend(config.warnings.iter().cloned().map(Finding::from));
            if let Some(h) = hcm {
                report
                    .findings
                    .extend(path_normalization(&config, h).map(Finding::from));
            }
        }
    }
    report
}

/// What an HTTP connection manager does to request paths before the filters
/// see them: the three settings that keep `/public/../admin`, `//admin` and
/// `/public%2F..%2Fadmin` from matching an exempt prefix while the upstream
/// serves another path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathHandling {
    /// JSON path of the connection manager in the bootstrap.
    pub at: String,
    pub normalize_path: bool,
    pub merge_slashes: bool,
    /// `path_with_escaped_slashes_action` (empty: not set).
    pub escaped_slashes: String,
}

impl PathHandling {
    fn of(hcm: &Value, at: &str) -> Self {
        let normalize_path = match field(hcm, "normalize_path") {
            Some(Value::Bool(b)) => *b,
            // A BoolValue written as {"value": true}.
            Some(v) => field(v, "value").and_then(Value::as_bool).unwrap_or(false),
            None => false,
        };
        PathHandling {
            at: at.to_string(),
            normalize_path,
            merge_slashes: is_true(field(hcm, "merge_slashes")),
            escaped_slashes: field(hcm, "path_with_escaped_slashes_action")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        }
    }

    /// What is missing, as the settings to add.
    fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.normalize_path {
            out.push("normalize_path: true");
        }
        if !self.merge_slashes {
            out.push("merge_slashes: true");
        }
        if !matches!(
            self.escaped_slashes.as_str(),
            "UNESCAPE_AND_FORWARD" | "REJECT_REQUEST" | "UNESCAPE_AND_REDIRECT"
        ) {
            out.push("path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD");
        }
        out
    }
}

fn path_normalization<'a>(
    config: &'a Config,
    hcm: &'a PathHandling,
) -> impl Iterator<Item = Warning> + 'a {
    let missing = hcm.missing();
    config
        .rules
        .iter()
        .enumerate()
        .filter(move |(_, r)| {
            !missing.is_empty()
                && crate::config::warnings::exempts(r)
                && !matches!(
                    r.matcher.path(),
                    PathMatcher::Exact(_) | PathMatcher::Connect
                )
        })
        .map(move |(i, _)| {
            Warning::new(
                Kind::PathNotNormalized,
                format!("rules[{i}].match"),
                format!(
                    "this rule lets requests without a token through on a path prefix or \
                     pattern, and the HTTP connection manager at {} does not normalise paths: \
                     \"/public/../admin\", \"//admin\" or \"/public%2F..%2Fadmin\" can match \
                     it while the upstream serves another path (set {})",
                    hcm.at,
                    hcm.missing().join(", ")
                ),
            )
        })
}

/// A field by its proto3-JSON snake_case name, or its lowerCamelCase alias
/// (the filter accepts both).
pub fn field<'a>(obj: &'a Value, snake: &str) -> Option<&'a Value> {
    let map = obj.as_object()?;
    map.get(snake).or_else(|| map.get(&camel(snake)))
}

fn is_true(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool).unwrap_or(false)
}

/// One plugin configuration found in a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Where it was found (a JSON path).
    pub label: String,
    /// The exact bytes the filter would receive.
    pub bytes: Vec<u8>,
    /// The enclosing HTTP connection manager's path handling, when the
    /// document is an Envoy config.
    pub hcm: Option<PathHandling>,
}

/// The plugin configurations inside a document, with where they were found:
///
/// - an Istio `WasmPlugin`: `spec.pluginConfig` (Istio passes it as JSON);
/// - an Envoy bootstrap or filter config: every `envoy.filters.http.wasm`
///   filter's `config.configuration` `StringValue`.
///
/// Empty when the document holds neither (then it is the plugin config itself,
/// or something else).
pub fn plugin_configs(doc: &Value) -> Vec<Found> {
    let mut out = Vec::new();
    if doc.get("kind").and_then(Value::as_str) == Some("WasmPlugin") {
        if let Some(pc) = doc.get("spec").and_then(|s| s.get("pluginConfig")) {
            out.push(Found {
                label: "spec.pluginConfig".to_string(),
                bytes: serde_json::to_vec(pc).unwrap_or_default(),
                hcm: None,
            });
        }
        return out;
    }
    find_wasm_configs(doc, "", None, &mut out, 0);
    out
}

fn has_type(map: &serde_json::Map<String, Value>, suffix: &str) -> bool {
    map.get("@type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with(suffix))
}

fn find_wasm_configs(
    v: &Value,
    path: &str,
    hcm: Option<&PathHandling>,
    out: &mut Vec<Found>,
    depth: usize,
) {
    if depth > 64 {
        return;
    }
    match v {
        Value::Object(map) => {
            if has_type(map, "envoy.extensions.filters.http.wasm.v3.Wasm") {
                if let Some(value) = map
                    .get("config")
                    .and_then(|c| c.get("configuration"))
                    .and_then(|c| c.get("value"))
                    .and_then(Value::as_str)
                {
                    out.push(Found {
                        label: format!("{path}.config.configuration.value"),
                        bytes: value.as_bytes().to_vec(),
                        hcm: hcm.cloned(),
                    });
                }
                return;
            }
            let own;
            let hcm = if has_type(
                map,
                "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            ) {
                own = PathHandling::of(v, path);
                Some(&own)
            } else {
                hcm
            };
            for (k, child) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                find_wasm_configs(child, &p, hcm, out, depth + 1);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                find_wasm_configs(child, &format!("{path}[{i}]"), hcm, out, depth + 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
