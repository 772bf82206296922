//! `jwt-filter-check`: checks plugin configurations exactly as the filter
//! parses them, and converts Envoy `jwt_authn` / Istio configs into one.
//!
//! ```text
//! jwt-filter-check check FILE...     validate (exit 1 on errors; warnings exit 0)
//! jwt-filter-check convert [--route-config-out OUT] FILE...
//!                                    jwt_authn or Istio YAML/JSON -> plugin config JSON on stdout;
//!                                    OUT: the route configuration(s) with jwt_authn's per-route
//!                                    configs replaced by route metadata
//! ```
//!
//! `check` takes a plugin config (JSON or YAML), an Istio `WasmPlugin`
//! manifest (its `spec.pluginConfig`), or an Envoy bootstrap (every
//! `envoy.filters.http.wasm` filter's configuration). Native only: built with
//! `--features cli` (see Cargo.toml).

use std::path::Path;
use std::process::ExitCode;

use jwt_filter::{checker, convert};
use serde_json::Value;

const USAGE: &str = "\
usage: jwt-filter-check check FILE...     check plugin configs (JSON/YAML, WasmPlugin, Envoy bootstrap)
       jwt-filter-check convert [--route-config-out OUT] FILE...
                                          convert Envoy jwt_authn or Istio RequestAuthentication
                                          (+ AuthorizationPolicy) YAML/JSON to a plugin config (stdout);
                                          local_jwks.filename is read and inlined; OUT gets the
                                          route configuration(s) with jwt_authn per-route configs
                                          replaced by route metadata (JSON list)
       jwt-filter-check -h | --help
Exit status: 0 ok (warnings allowed), 1 errors found, 2 usage or I/O error.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, files) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match cmd {
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        "check" if !files.is_empty() => run_check(files),
        "convert" if !files.is_empty() => run_convert(files),
        // `jwt-filter-check config.json` is `check`.
        _ if Path::new(cmd).exists() => run_check(&args),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Reads a file as JSON (kept as raw bytes too) or as (multi-document) YAML.
struct Input {
    raw: Vec<u8>,
    docs: Vec<Value>,
    is_json: bool,
}

fn read(path: &str) -> Result<Input, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if let Ok(v) = serde_json::from_slice::<Value>(&raw) {
        return Ok(Input {
            raw,
            docs: vec![v],
            is_json: true,
        });
    }
    let text = String::from_utf8(raw.clone()).map_err(|_| format!("{path}: not UTF-8"))?;
    let mut docs = Vec::new();
    for de in serde_norway::Deserializer::from_str(&text) {
        let v: Value = serde::Deserialize::deserialize(de)
            .map_err(|e| format!("{path}: neither JSON nor YAML: {e}"))?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(Input {
        raw,
        docs,
        is_json: false,
    })
}

/// A document that is neither a plugin config nor holds one (another
/// Kubernetes kind, an Envoy config without the wasm filter).
fn is_foreign(doc: &Value) -> bool {
    doc.get("kind").is_some() && doc.get("apiVersion").is_some()
        || [
            "static_resources",
            "admin",
            "node",
            "dynamic_resources",
            "services",
        ]
        .iter()
        .any(|k| doc.get(k).is_some())
}

/// "ServiceEntry idp-example-com", or "Envoy config" for a bootstrap.
fn describe(doc: &Value) -> String {
    match doc.get("kind").and_then(Value::as_str) {
        Some(kind) => {
            let name = doc
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("(unnamed)");
            format!("{kind} {name}")
        }
        None => "Envoy config without an envoy.filters.http.wasm filter".to_string(),
    }
}

fn run_check(files: &[String]) -> ExitCode {
    let mut status = 0u8;
    for file in files {
        let input = match read(file) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("error: {e}");
                status = status.max(2);
                continue;
            }
        };
        // Every plugin config in the file.
        let mut configs: Vec<checker::Found> = Vec::new();
        let many = input.docs.len() > 1;
        let mut skipped = 0usize;
        for (i, doc) in input.docs.iter().enumerate() {
            let found = checker::plugin_configs(doc);
            let prefix = if many {
                format!("doc {i}: ")
            } else {
                String::new()
            };
            if !found.is_empty() {
                configs.extend(found.into_iter().map(|f| checker::Found {
                    label: format!("{prefix}{}", f.label),
                    ..f
                }));
            } else if is_foreign(doc) {
                // Manifests shipped next to a WasmPlugin (ServiceEntry, ...), or an
                // Envoy config without the wasm filter: nothing to check.
                println!(
                    "{file}: {prefix}note: {}: no plugin configuration, skipped",
                    describe(doc)
                );
                skipped += 1;
            } else {
                // The document is the plugin config itself: give the filter's
                // parser the file's bytes when it is one JSON document.
                let bytes = if input.is_json {
                    input.raw.clone()
                } else {
                    serde_json::to_vec(doc).unwrap_or_default()
                };
                configs.push(checker::Found {
                    label: prefix.trim_end_matches(": ").to_string(),
                    bytes,
                    hcm: None,
                });
            }
        }
        if configs.is_empty() && skipped > 0 {
            continue;
        }
        if configs.is_empty() {
            eprintln!("{file}: error: no plugin configuration found");
            status = status.max(1);
            continue;
        }
        for found in configs {
            let at = if found.label.is_empty() {
                file.clone()
            } else {
                format!("{file}: {}", found.label)
            };
            let report = checker::check_in(&found.bytes, found.hcm.as_ref());
            for f in &report.findings {
                println!("{at}: {f}");
            }
            let (e, w) = (report.errors().count(), report.warnings().count());
            if report.has_errors() {
                println!("{at}: INVALID ({e} error(s), {w} warning(s)): the filter would refuse to start");
                status = status.max(1);
            } else {
                println!("{at}: OK ({w} warning(s))");
            }
        }
    }
    ExitCode::from(status)
}

fn run_convert(args: &[String]) -> ExitCode {
    let (route_out, files) = match args {
        [flag, out, rest @ ..] if flag == "--route-config-out" && !rest.is_empty() => {
            (Some(out.as_str()), rest)
        }
        [flag, ..] if flag == "--route-config-out" => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
        _ => (None, args),
    };
    let mut docs = Vec::new();
    for file in files {
        match read(file) {
            Ok(i) => docs.extend(i.docs),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let read_file = |name: &str| std::fs::read_to_string(name).map_err(|e| format!("{name}: {e}"));
    let conversion = match convert::convert_with_files(&docs, &read_file) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            eprintln!("conversion failed: nothing written");
            return ExitCode::from(1);
        }
    };
    for n in &conversion.notes {
        eprintln!("note: {n}");
    }
    let text = match serde_json::to_string_pretty(&conversion.config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{text}");
    if let Some(out) = route_out {
        let routes = match serde_json::to_string_pretty(&conversion.route_configs) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        if let Err(e) = std::fs::write(out, routes + "\n") {
            eprintln!("error: {out}: {e}");
            return ExitCode::from(2);
        }
        eprintln!(
            "wrote {} route configuration(s) to {out}",
            conversion.route_configs.len()
        );
    }
    // The result goes through the same check as any config.
    let report = checker::check(text.as_bytes());
    for f in &report.findings {
        eprintln!("converted config: {f}");
    }
    if report.has_errors() {
        eprintln!("the converted config is not accepted by the filter (see errors above)");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
