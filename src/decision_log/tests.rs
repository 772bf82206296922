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
        binding: None,
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
    let (mut keys, mut quoted, mut escaped, mut cur) = (Vec::new(), false, false, String::new());
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

#[test]
fn json_line_has_the_same_fields() {
    let t = mint(r#"{"iss":"https://issuer.test","sub":"user-1","exp":1}"#);
    let facts = TokenFacts::from_token(&t);
    let line = line(
        Format::Json,
        &entry(Some(&facts), "/api/x?access_token=secret"),
    );
    assert!(!line.contains('\n'));
    assert!(!line.contains(&t) && !line.contains("secret"), "{line}");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "decision": "deny", "reason": "expired", "status": 401, "provider": "main",
            "rule": 3, "kid": "hs-1", "iss": "https://issuer.test", "sub": "user-1",
            "method": "GET", "path": "/api/x", "token_sha256": facts.fingerprint,
        })
    );
    assert!(line.starts_with(r#"{"decision":"deny","reason":"expired","status":401,"#));
    assert_eq!(
        super::line(Format::Text, &entry(Some(&facts), "/api/x")),
        format(&entry(Some(&facts), "/api/x"))
    );
}

#[test]
fn json_absent_values_are_null_and_hostile_values_stay_inside() {
    let sub = format!("a\"}}\n{{\"x\":1 {}", "é".repeat(80));
    let facts = TokenFacts {
        sub: Some(sub.clone()),
        fingerprint: "00".into(),
        ..TokenFacts::default()
    };
    let mut e = entry(Some(&facts), "/");
    e.provider = None;
    e.rule = None;
    e.verdict = Verdict::WouldDeny;
    let line = format_json(&e);
    assert_eq!(line.lines().count(), 1, "{line}");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["decision"], "would_deny");
    assert!(v["provider"].is_null() && v["rule"].is_null() && v["kid"].is_null());
    let logged = v["sub"].as_str().unwrap();
    assert_eq!(logged.chars().count(), MAX_FIELD_CHARS + 3);
    assert!(logged.ends_with("...") && sub.starts_with(&logged[..logged.len() - 3]));
    assert_eq!(v.as_object().unwrap().len(), 11);
}

#[test]
fn the_binding_is_written_when_the_provider_checks_one() {
    let e = Entry {
        binding: Some("dpop"),
        error: AuthError::DpopReplay,
        ..entry(None, "/api")
    };
    assert!(format(&e).ends_with(" binding=dpop"), "{}", format(&e));
    assert!(format(&e).contains("reason=dpop_replay"));
    let json: Value = serde_json::from_str(&format_json(&e)).unwrap();
    assert_eq!(json["binding"], "dpop");
    assert!(!format(&entry(None, "/api")).contains("binding"));
}

#[test]
fn token_facts_are_read_as_strictly_as_the_token() {
    // A member given twice: the verifier refuses the token, and the log
    // names no `sub` (neither the first nor the last) for it.
    let t = mint(r#"{"iss":"https://issuer.test","sub":"user-1","sub":"admin","exp":1}"#);
    let facts = TokenFacts::from_token(&t);
    assert_eq!(facts.sub, None);
    assert_eq!(facts.iss, None);
    assert_eq!(facts.kid.as_deref(), Some("hs-1"));
    // Four segments: not a compact JWS, only the fingerprint.
    let facts = TokenFacts::from_token(&format!("{t}.x"));
    assert_eq!((facts.kid, facts.sub), (None, None));
    assert_eq!(facts.fingerprint.len(), 16);
}
