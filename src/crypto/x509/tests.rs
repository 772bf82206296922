use super::*;
use crate::crypto::jwks::KeySet;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn map() -> Map<String, Value> {
    serde_json::from_str(&fixture("x509_map.json")).unwrap()
}

#[test]
fn openssl_certificates_give_the_same_keys_as_the_jwks() {
    let (set, warnings) = KeySet::parse(&fixture("x509_map.json")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let (jwks, _) = KeySet::parse(&fixture("jwks.json")).unwrap();
    assert_eq!(set.len(), 3);
    for key in set.keys() {
        let kid = key.kid.as_deref().unwrap();
        let same = jwks
            .keys()
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
            .unwrap();
        assert_eq!(key.spki_der(), same.spki_der(), "{kid}");
        assert_eq!(key.kty(), same.kty());
        assert!(key.alg.is_none());
    }
    let kids: Vec<_> = set.keys().iter().map(|k| k.kid.clone().unwrap()).collect();
    assert_eq!(kids, ["ec-256", "ec-521", "rsa-a"]);
}

#[test]
fn key_map_detection() {
    assert!(is_key_map(&map()));
    let not = |json: &str| !is_key_map(&serde_json::from_str(json).unwrap());
    assert!(not("{}"));
    assert!(not(r#"{"a":"hello"}"#));
    assert!(not(r#"{"a":1}"#));
    let cert = map()["rsa-a"].as_str().unwrap().to_string();
    let mixed = serde_json::json!({"a": cert, "b": "x"}).to_string();
    assert!(not(&mixed));
    // Not a key map, not a JWKS: a clear error.
    let err = KeySet::parse(r#"{"a":"hello"}"#).unwrap_err();
    assert!(err.contains("x509 key map"), "{err}");
}

#[test]
fn bad_certificates_are_skipped_with_a_reason() {
    let good = map()["rsa-a"].as_str().unwrap().to_string();
    let body: String = good
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("\n");
    let wrap = |b: &str| format!("{BEGIN}\n{b}\n{END}\n");
    let mut truncated = body.clone();
    truncated.truncate(body.len() / 2);
    let cases = [
        ("bad-b64", wrap("!!!!"), "not valid base64"),
        (
            "bad-der",
            wrap(&STANDARD.encode(b"not a certificate")),
            "not valid DER",
        ),
        ("truncated", wrap(&truncated), "not valid"),
        ("two", format!("{good}{good}"), "not one PEM certificate"),
        (
            "no-end",
            format!("{BEGIN}\n{body}\n"),
            "not one PEM certificate",
        ),
        ("trailing", format!("{good}junk"), "not one PEM certificate"),
    ];
    let mut doc = Map::new();
    doc.insert("good".into(), Value::String(good.clone()));
    for (kid, pem, _) in &cases {
        doc.insert((*kid).into(), Value::String(pem.clone()));
    }
    let (set, warnings) = KeySet::parse(&Value::Object(doc).to_string()).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(warnings.len(), cases.len(), "{warnings:#?}");
    for (kid, _, reason) in &cases {
        let w = warnings
            .iter()
            .find(|w| w.contains(&format!("\"{kid}\"")))
            .unwrap();
        assert!(w.contains(reason), "{w} should say {reason}");
    }
    // All bad: the document is refused.
    let only_bad = serde_json::json!({"x": wrap("!!!!")}).to_string();
    assert!(KeySet::parse(&only_bad)
        .unwrap_err()
        .contains("no usable key"));
}

#[test]
fn hostile_bytes_never_panic() {
    let good = map()["ec-521"].as_str().unwrap().to_string();
    let der = pem_body(&good).unwrap();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..3000usize {
        let mut bytes = der.clone();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = (x as usize) % bytes.len();
        bytes[at] ^= (x >> 32) as u8 | 1;
        bytes.truncate(bytes.len() - i % 7);
        let pem = format!("{BEGIN}\n{}\n{END}", STANDARD.encode(&bytes));
        let _ = jwk_of("k", &pem);
    }
}
