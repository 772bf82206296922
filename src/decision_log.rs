//! The decision log line: one structured `key=value` line per denial (and per
//! report-mode would-deny), e.g.
//!
//! ```text
//! jwt_filter decision=deny reason=expired status=401 provider=main rule=3 kid=rsa-a iss=https://issuer.test sub=user-1 method=GET path=/api token_sha256=5f2b0c3e9a1d7744
//! ```
//!
//! With `decision_log_format: "json"` the same fields are one JSON object
//! per line ([`format_json`]), absent values as `null`:
//!
//! ```text
//! {"decision":"deny","reason":"expired","status":401,"provider":"main","rule":3,"kid":"rsa-a","iss":"https://issuer.test","sub":"user-1","method":"GET","path":"/api","token_sha256":"5f2b0c3e9a1d7744"}
//! ```
//!
//! Never the token, never a query string (the token may be in it). Fields
//! from the token are attacker-controlled (the token may not verify): values
//! outside a safe character set are quoted with escapes, and every value is
//! capped in length, so a claim cannot forge fields or lines.

use serde_json::Value;

use crate::error::AuthError;
use crate::token::{self, MAX_TOKEN_BYTES};

/// Longest value written for a token field (characters).
pub const MAX_FIELD_CHARS: usize = 64;
/// Longest path written (characters).
pub const MAX_PATH_CHARS: usize = 256;
/// Bytes of the token's SHA-256 written as its fingerprint.
pub const FINGERPRINT_BYTES: usize = 8;

/// Unverified facts about a presented token, for the log only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenFacts {
    pub kid: Option<String>,
    pub iss: Option<String>,
    pub sub: Option<String>,
    /// First [`FINGERPRINT_BYTES`] of SHA-256(token), lowercase hex.
    pub fingerprint: String,
}

impl TokenFacts {
    /// Best effort: fields that cannot be decoded are left out; the
    /// fingerprint is always there.
    pub fn from_token(token: &str) -> TokenFacts {
        let mut facts = TokenFacts {
            fingerprint: fingerprint(token),
            ..TokenFacts::default()
        };
        if token.len() > MAX_TOKEN_BYTES {
            return facts;
        }
        // Read as strictly as the token itself (one splitter, member names
        // unique): the log never shows a `sub` the verifier would not read.
        let Some(parts) = token::split_compact(token) else {
            return facts;
        };
        if let Some(h) = token::json_object(parts.header) {
            facts.kid = h.get("kid").and_then(text);
        }
        if let Some(p) = token::json_object(parts.payload) {
            facts.iss = p.get("iss").and_then(text);
            facts.sub = p.get("sub").and_then(text);
        }
        facts
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.chars().take(MAX_FIELD_CHARS + 1).collect()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// First bytes of SHA-256 of the token, hex: enough to correlate log lines
/// and a token a user hands in, useless to replay.
pub fn fingerprint(token: &str) -> String {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes());
    let mut out = String::with_capacity(FINGERPRINT_BYTES * 2);
    for b in digest.iter().take(FINGERPRINT_BYTES) {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// How decision log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// `key=value` pairs ([`format`]).
    #[default]
    Text,
    /// One JSON object ([`format_json`]).
    Json,
}

impl Format {
    /// `"text"` or `"json"`, at `path`.
    pub(crate) fn read(
        v: &serde_json::Value,
        path: &str,
    ) -> crate::json_read::Read<crate::diag::OneOf<Format>> {
        let names = &["text", "json"];
        crate::json_read::one_of(v, path, names, &[Format::Text, Format::Json])
            .map(crate::diag::OneOf)
    }
}

/// The line in the configured format.
pub fn line(fmt: Format, e: &Entry<'_>) -> String {
    match fmt {
        Format::Text => format(e),
        Format::Json => format_json(e),
    }
}

/// `deny` (rejected) or `would_deny` (report mode, let through).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Deny,
    WouldDeny,
}

/// What goes into one line.
pub struct Entry<'a> {
    pub verdict: Verdict,
    pub error: AuthError,
    pub provider: Option<&'a str>,
    pub rule: Option<usize>,
    pub token: Option<&'a TokenFacts>,
    pub method: &'a str,
    /// The request path; anything from `?` on is dropped here.
    pub path: &'a str,
    /// The sender bindings the blamed provider checks (`dpop`, `mtls`,
    /// `dpop+mtls`); written only when there is one.
    pub binding: Option<&'static str>,
}

/// Formats the line (without a trailing newline).
pub fn format(e: &Entry<'_>) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("jwt_filter decision=");
    out.push_str(match e.verdict {
        Verdict::Deny => "deny",
        Verdict::WouldDeny => "would_deny",
    });
    out.push_str(" reason=");
    out.push_str(e.error.reason());
    out.push_str(" status=");
    out.push_str(&e.error.status().to_string());
    field(&mut out, "provider", e.provider, MAX_FIELD_CHARS);
    out.push_str(" rule=");
    match e.rule {
        Some(r) => out.push_str(&r.to_string()),
        None => out.push('-'),
    }
    let t = e.token;
    field(
        &mut out,
        "kid",
        t.and_then(|t| t.kid.as_deref()),
        MAX_FIELD_CHARS,
    );
    field(
        &mut out,
        "iss",
        t.and_then(|t| t.iss.as_deref()),
        MAX_FIELD_CHARS,
    );
    field(
        &mut out,
        "sub",
        t.and_then(|t| t.sub.as_deref()),
        MAX_FIELD_CHARS,
    );
    field(&mut out, "method", Some(e.method), 16);
    let path = e.path.split(['?', '#']).next().unwrap_or("");
    field(&mut out, "path", Some(path), MAX_PATH_CHARS);
    field(
        &mut out,
        "token_sha256",
        t.map(|t| t.fingerprint.as_str()),
        2 * FINGERPRINT_BYTES,
    );
    if let Some(b) = e.binding {
        out.push_str(" binding=");
        out.push_str(b);
    }
    out
}

/// The same fields as [`format`], as one JSON object (no trailing
/// newline). String values are cut like the text form's (a cut value ends
/// in `...`) and escaped by serde_json, so no value can end the object or
/// the line; absent or empty values are `null`.
pub fn format_json(e: &Entry<'_>) -> String {
    let t = e.token;
    let s = |v: Option<&str>, cap: usize| -> Value {
        match v {
            Some(v) if !v.is_empty() => {
                let mut out: String = v.chars().take(cap).collect();
                if v.chars().count() > cap {
                    out.push_str("...");
                }
                Value::String(out)
            }
            _ => Value::Null,
        }
    };
    let path = e.path.split(['?', '#']).next().unwrap_or("");
    let verdict = match e.verdict {
        Verdict::Deny => "deny",
        Verdict::WouldDeny => "would_deny",
    };
    // In the text form's order (serde_json's map would sort the keys).
    let fields: [(&str, Value); 11] = [
        ("decision", Value::from(verdict)),
        ("reason", Value::from(e.error.reason())),
        ("status", Value::from(e.error.status())),
        ("provider", s(e.provider, MAX_FIELD_CHARS)),
        ("rule", e.rule.map_or(Value::Null, Value::from)),
        ("kid", s(t.and_then(|t| t.kid.as_deref()), MAX_FIELD_CHARS)),
        ("iss", s(t.and_then(|t| t.iss.as_deref()), MAX_FIELD_CHARS)),
        ("sub", s(t.and_then(|t| t.sub.as_deref()), MAX_FIELD_CHARS)),
        ("method", s(Some(e.method), 16)),
        ("path", s(Some(path), MAX_PATH_CHARS)),
        (
            "token_sha256",
            s(t.map(|t| t.fingerprint.as_str()), 2 * FINGERPRINT_BYTES),
        ),
    ];
    let binding = e.binding.map(|b| ("binding", Value::from(b)));
    let mut out = String::with_capacity(256);
    out.push('{');
    for (i, (k, v)) in fields.iter().chain(binding.iter()).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(k);
        out.push_str("\":");
        out.push_str(&v.to_string());
    }
    out.push('}');
    out
}

/// ` key=value`, `-` when absent or empty. Values made only of safe
/// characters are written bare; others are double-quoted with `"` and `\`
/// escaped and anything non-printable or non-ASCII as `\u{..}`. Longer than
/// `cap` characters: cut and marked with `...`.
fn field(out: &mut String, key: &str, value: Option<&str>, cap: usize) {
    out.push(' ');
    out.push_str(key);
    out.push('=');
    let v = match value {
        Some(v) if !v.is_empty() => v,
        _ => {
            out.push('-');
            return;
        }
    };
    let cut = v.chars().count() > cap;
    let shown = v.chars().take(cap);
    let safe = |c: char| c.is_ascii_alphanumeric() || "-._~:/@+,%!$&'()*;[]|^".contains(c);
    if !cut && v.chars().all(safe) {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in shown {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    if cut {
        out.push_str("...");
    }
    out.push('"');
}

#[cfg(test)]
mod tests;
