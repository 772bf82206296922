//! The decision log line: one structured `key=value` line per denial (and per
//! report-mode would-deny), e.g.
//!
//! ```text
//! jwt_filter decision=deny reason=expired status=401 provider=main rule=3 kid=rsa-a iss=https://issuer.test sub=user-1 method=GET path=/api token_sha256=5f2b0c3e9a1d7744
//! ```
//!
//! Never the token, never a query string (the token may be in it). Fields
//! from the token are attacker-controlled (the token may not verify): values
//! outside a safe character set are quoted with escapes, and every value is
//! capped in length, so a claim cannot forge fields or lines.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use crate::error::AuthError;
use crate::token::MAX_TOKEN_BYTES;

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
        let mut parts = token.split('.');
        let decode = |seg: Option<&str>| -> Option<Map<String, Value>> {
            let bytes = URL_SAFE_NO_PAD.decode(seg?).ok()?;
            serde_json::from_slice(&bytes).ok()
        };
        if let Some(h) = decode(parts.next()) {
            facts.kid = h.get("kid").and_then(text);
        }
        if let Some(p) = decode(parts.next()) {
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
    let digest = hmac_sha256::Hash::hash(token.as_bytes());
    let mut out = String::with_capacity(FINGERPRINT_BYTES * 2);
    for b in digest.iter().take(FINGERPRINT_BYTES) {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

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
mod tests {
    use super::*;
    use crate::testutil::mint;

    fn entry<'a>(token: Option<&'a TokenFacts>, path: &'a str) -> Entry<'a> {
        Entry {
            verdict: Verdict::Deny,
            error: AuthError::Expired,
            provider: Some("main"),
            rule: Some(3),
            token,
            method: "GET",
            path,
        }
    }

    #[test]
    fn full_line() {
        let t = mint(r#"{"iss":"https://issuer.test","sub":"user-1","exp":1}"#);
        let facts = TokenFacts::from_token(&t);
        let line = format(&entry(Some(&facts), "/api/x"));
        assert_eq!(
            line,
            format!(
                "jwt_filter decision=deny reason=expired status=401 provider=main rule=3 \
                 kid=hs-1 iss=https://issuer.test sub=user-1 method=GET path=/api/x token_sha256={}",
                facts.fingerprint
            )
        );
        assert_eq!(facts.fingerprint.len(), 16);
        assert!(!line.contains(&t));
        assert!(!line.contains(t.rsplit('.').next().unwrap()));
    }

    #[test]
    fn fingerprint_is_sha256_prefix() {
        // SHA-256("abc") = ba7816bf8f01cfea...
        assert_eq!(fingerprint("abc"), "ba7816bf8f01cfea");
    }

    #[test]
    fn query_string_never_logged() {
        let line = format(&entry(None, "/p?access_token=secret.tok.en&x=1"));
        assert!(line.contains(" path=/p "), "{line}");
        assert!(!line.contains("secret"));
        let line = format(&entry(None, "/p#frag?x"));
        assert!(line.contains(" path=/p "), "{line}");
    }

    #[test]
    fn missing_fields_are_dashes() {
        let mut e = entry(None, "/");
        e.provider = None;
        e.rule = None;
        e.error = AuthError::Missing;
        e.verdict = Verdict::WouldDeny;
        assert_eq!(
            format(&e),
            "jwt_filter decision=would_deny reason=missing status=401 provider=- rule=- \
             kid=- iss=- sub=- method=GET path=/ token_sha256=-"
        );
    }

    #[test]
    fn hostile_claims_are_quoted_escaped_and_capped() {
        let evil_sub = "x decision=allow\n\"\\ é";
        let facts = TokenFacts {
            kid: Some("k".repeat(500)),
            iss: Some("a b".into()),
            sub: Some(evil_sub.into()),
            fingerprint: "00".repeat(8),
        };
        let line = format(&entry(Some(&facts), "/a b"));
        assert!(!line.contains('\n'));
        assert!(
            line.contains(r#" sub="x decision=allow\u{a}\"\\ \u{e9}""#),
            "{line}"
        );
        assert!(line.contains(r#" iss="a b""#), "{line}");
        assert!(line.contains(&format!(" kid=\"{}...\"", "k".repeat(MAX_FIELD_CHARS))));
        assert!(line.contains(r#" path="/a b""#), "{line}");
        // A quote-aware split still finds exactly one `decision` key.
        let (mut keys, mut quoted, mut escaped, mut cur) =
            (Vec::new(), false, false, String::new());
        for c in line.chars() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                ' ' if !quoted => keys.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        keys.push(cur);
        let decisions = keys.iter().filter(|k| k.starts_with("decision=")).count();
        assert_eq!(decisions, 1, "{keys:?}");
    }

    #[test]
    fn facts_from_garbage_keep_only_the_fingerprint() {
        for t in [
            "",
            "a.b",
            "!!!.???.x",
            "e30.e30.e30",
            &"a".repeat(MAX_TOKEN_BYTES + 10),
        ] {
            let f = TokenFacts::from_token(t);
            assert_eq!(f.fingerprint.len(), 16);
            assert_eq!((f.kid, f.iss, f.sub), (None, None, None), "{t:.20}");
        }
    }

    #[test]
    fn numeric_sub_is_text() {
        let t = mint(r#"{"iss":"i","sub":12345}"#);
        assert_eq!(TokenFacts::from_token(&t).sub.as_deref(), Some("12345"));
    }
}
