//! Fixtures for the ABI tests: configurations, TEST-ONLY tokens signed with
//! the keys in tests/fixtures/keys (jwt-simple, independent of the filter's
//! code), and shorthands over the fake host.

#![allow(dead_code)]

use std::path::PathBuf;

use abi_tests::host::{HostState, START_NS};
use abi_tests::wire::headers;
use abi_tests::Filter;
use jwt_simple::prelude::*;
use serde_json::{json, Value};

pub const ISSUER: &str = "https://issuer.test";

fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/keys")
}

pub fn jwks_text() -> String {
    std::fs::read_to_string(keys_dir().join("jwks.json")).unwrap()
}

/// jwks.json with only these kids.
pub fn jwks_subset(kids: &[&str]) -> String {
    let all: Value = serde_json::from_str(&jwks_text()).unwrap();
    let keys: Vec<Value> = all["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| kids.contains(&k["kid"].as_str().unwrap_or("")))
        .cloned()
        .collect();
    json!({ "keys": keys }).to_string()
}

/// The provider `idp` with these key settings, one rule on `/` requiring it,
/// claim and payload headers, a status header; `extra` is merged at the top.
pub fn config_with(keys: Value, extra: Value) -> String {
    let mut provider = json!({
        "issuer": ISSUER,
        "audiences": ["api"],
        "forward_payload_header": "x-jwt-payload",
        "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}],
    });
    for (k, v) in keys.as_object().unwrap() {
        provider[k] = v.clone();
    }
    let mut cfg = json!({
        "providers": {"idp": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}],
        "status_header": "x-jwt-status",
    });
    for (k, v) in extra.as_object().unwrap() {
        if k == "provider" {
            for (pk, pv) in v.as_object().unwrap() {
                cfg["providers"]["idp"][pk] = pv.clone();
            }
        } else {
            cfg[k] = v.clone();
        }
    }
    cfg.to_string()
}

/// Inline keys (all of jwks.json).
pub fn local_config(extra: Value) -> String {
    config_with(json!({"local_jwks": {"inline_string": jwks_text()}}), extra)
}

/// Keys from `http://idp.test/jwks` through cluster `jwks`.
pub fn remote_config(extra: Value) -> String {
    config_with(
        json!({"remote_jwks": {
            "http_uri": {"uri": "http://idp.test/jwks", "cluster": "jwks", "timeout": "1s"},
        }}),
        extra,
    )
}

fn claims(sub: &str) -> JWTClaims<NoCustomClaims> {
    let now = START_NS / 1_000_000_000;
    let mut c = Claims::create(Duration::from_hours(1))
        .with_issuer(ISSUER)
        .with_audience("api")
        .with_subject(sub);
    // The host clock, not the machine's.
    c.issued_at = Some(UnixTimeStamp::from_secs(now));
    c.invalid_before = Some(UnixTimeStamp::from_secs(now));
    c.expires_at = Some(UnixTimeStamp::from_secs(now + 3600));
    c
}

fn pem(name: &str) -> String {
    std::fs::read_to_string(keys_dir().join(name)).unwrap()
}

/// RS256 with the TEST-ONLY key rsa-a (rsa2048.pem).
pub fn rs256_token(sub: &str) -> String {
    RS256KeyPair::from_pem(&pem("rsa2048.pem"))
        .unwrap()
        .with_key_id("rsa-a")
        .sign(claims(sub))
        .unwrap()
}

/// ES256 with the TEST-ONLY key ec-256.
pub fn es256_token(sub: &str) -> String {
    ES256KeyPair::from_pem(&pem("ec256.pem"))
        .unwrap()
        .with_key_id("ec-256")
        .sign(claims(sub))
        .unwrap()
}

/// A token whose signature is another token's (same header and length).
pub fn bad_signature_token() -> String {
    let good = rs256_token("user-1");
    let other = rs256_token("user-2");
    let (head, _) = good.rsplit_once('.').unwrap();
    let (_, sig) = other.rsplit_once('.').unwrap();
    format!("{head}.{sig}")
}

/// GET `path` on `host.test` with these extra headers.
pub fn get(path: &str, extra: &[(&str, &str)]) -> abi_tests::host::HeaderMap {
    let mut h = headers(&[
        (":method", "GET"),
        (":path", path),
        (":authority", "host.test"),
        (":scheme", "http"),
    ]);
    h.extend(headers(extra));
    h
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A configured filter (panics on a trap or a refused configuration).
pub fn started(config: &str) -> Filter {
    started_with(HostState::new(config))
}

pub fn started_with(host: HostState) -> Filter {
    let mut f = Filter::new(host).unwrap_or_else(|e| panic!("{e}"));
    let ok = f.start().unwrap_or_else(|e| panic!("{e}"));
    assert!(ok, "configuration refused:\n{}", f.host().log_text());
    f
}

/// Sum of the counters named `<prefix>.<labels...>name` carrying every label.
pub fn counter(f: &Filter, name: &str, labels: &[(&str, &str)]) -> i64 {
    f.host()
        .metrics
        .iter()
        .filter(|m| {
            m.name.ends_with(&format!(";.;{name}")) || m.name.ends_with(&format!(".{name}"))
        })
        .filter(|m| {
            labels
                .iter()
                .all(|(k, v)| m.name.contains(&format!("{k}=.={v};.;")))
        })
        .map(|m| m.value)
        .sum()
}
