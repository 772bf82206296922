//! Migration: converts an Envoy `jwt_authn` filter configuration, or Istio
//! `RequestAuthentication` (+ simple `AuthorizationPolicy`) resources, into
//! this plugin's configuration.
//!
//! Pure: takes already-parsed documents (`serde_json::Value`; the native tool
//! reads YAML or JSON into them) and returns the plugin config plus notes on
//! what was dropped. Anything that would make the converted config accept a
//! request the original rejects is an error, never a silent drop.

use serde_json::{Map, Value};

pub use crate::case::snake;

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
    crate::checker::field(obj, snake_name)
}

fn obj_entries(v: &Value) -> Vec<(String, &Value)> {
    v.as_object()
        .map(|m| m.iter().map(|(k, v)| (snake(k), v)).collect())
        .unwrap_or_default()
}

mod envoy;
mod istio;

use envoy::*;
pub use istio::istio_cluster;
use istio::*;

#[cfg(test)]
mod tests;
