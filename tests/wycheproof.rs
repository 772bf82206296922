//! Project Wycheproof signature vectors run through the filter's own
//! verification path: `Key::from_jwk` (the JWKS parser's per-key code) and
//! `Key::verify(alg, input, sig)`, exactly what a token's signature goes
//! through. Vendored subset and its provenance: tests/fixtures/wycheproof/.
//!
//! Expectations per vector:
//! - `valid`: the key is accepted and the signature verifies;
//! - `invalid`: the signature does not verify (or the key is refused);
//! - `acceptable`: legacy encodings Wycheproof lets a library accept or
//!   refuse. We refuse every one of them (stricter is the safe side for an
//!   authentication gateway); the test asserts that, so a dependency update
//!   that starts accepting one is noticed.
//!
//! Nothing may panic: every call runs under `catch_unwind`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use jwt_filter::crypto::jwks::{Alg, Key};
use serde_json::{json, Value};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wycheproof")
}

fn load(name: &str) -> Value {
    let path = fixture_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Big-endian integer bytes without leading zeros (Wycheproof hex may carry a sign byte).
fn unsigned(mut b: Vec<u8>) -> Vec<u8> {
    while b.len() > 1 && b[0] == 0 {
        b.remove(0);
    }
    b
}

/// Left-pads to `len` after stripping sign bytes (EC coordinates).
fn fixed(b: Vec<u8>, len: usize) -> Vec<u8> {
    let b = unsigned(b);
    let mut out = vec![0u8; len.saturating_sub(b.len())];
    out.extend(b);
    out
}

/// The group's public key as a JWK: Wycheproof's own JWK when present,
/// otherwise built from the raw key material. `kid`/`alg` are dropped so the
/// key is chosen for the alg under test only by its type.
fn group_jwk(group: &Value) -> Value {
    let jwk = group
        .get("publicKeyJwk")
        .or_else(|| group.get("keyJwk"))
        .cloned();
    if let Some(Value::Object(mut m)) = jwk {
        m.remove("kid");
        m.remove("alg");
        return Value::Object(m);
    }
    let pk = &group["publicKey"];
    match group["type"].as_str().unwrap_or("") {
        "RsassaPkcs1Verify" | "RsassaPssVerify" => json!({
            "kty": "RSA",
            "n": b64url(&unsigned(unhex(pk["modulus"].as_str().expect("modulus")))),
            "e": b64url(&unsigned(unhex(pk["publicExponent"].as_str().expect("exponent")))),
        }),
        "EcdsaP1363Verify" => {
            let (crv, len) = match pk["curve"].as_str() {
                Some("secp256r1") => ("P-256", 32),
                Some("secp384r1") => ("P-384", 48),
                Some("secp521r1") => ("P-521", 66),
                other => panic!("curve {other:?}"),
            };
            json!({
                "kty": "EC",
                "crv": crv,
                "x": b64url(&fixed(unhex(pk["wx"].as_str().expect("wx")), len)),
                "y": b64url(&fixed(unhex(pk["wy"].as_str().expect("wy")), len)),
            })
        }
        "EddsaVerify" => json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url(&unhex(pk["pk"].as_str().expect("pk"))),
        }),
        other => panic!("unexpected group type {other}"),
    }
}

#[derive(Default, Debug)]
struct Tally {
    valid_ok: usize,
    invalid_rejected: usize,
    acceptable_rejected: usize,
    key_refused: usize,
    failures: Vec<String>,
}

/// Runs every vector of one file with `alg`; returns the tally. `refused_keys`
/// lists tcIds whose key our JWKS policy refuses (documented deviations).
fn run_file(name: &str, alg: Alg) -> Tally {
    let doc = load(name);
    let mut t = Tally::default();
    let groups = doc["testGroups"].as_array().expect("testGroups");
    assert!(!groups.is_empty(), "{name}: no groups");
    for group in groups {
        let jwk = group_jwk(group);
        let key = catch_unwind(|| Key::from_jwk(&jwk));
        let key = match key {
            Ok(k) => k,
            Err(_) => {
                t.failures.push(format!("{name}: Key::from_jwk panicked"));
                continue;
            }
        };
        for test in group["tests"].as_array().expect("tests") {
            let id = test["tcId"].as_u64().unwrap_or(0);
            let result = test["result"].as_str().unwrap_or("");
            let msg = unhex(test["msg"].as_str().expect("msg"));
            let sig = unhex(test["sig"].as_str().expect("sig"));
            let comment = test["comment"].as_str().unwrap_or("");
            let key = match &key {
                Ok(k) => k,
                Err(reason) => {
                    t.key_refused += 1;
                    if result == "valid" {
                        t.failures.push(format!(
                            "{name} tc {id} ({comment}): valid vector but key refused: {reason}"
                        ));
                    }
                    continue;
                }
            };
            let verified = catch_unwind(AssertUnwindSafe(|| key.verify(alg, &msg, &sig)));
            let Ok(verified) = verified else {
                t.failures
                    .push(format!("{name} tc {id} ({comment}): verify panicked"));
                continue;
            };
            match (result, verified) {
                ("valid", true) => t.valid_ok += 1,
                ("invalid", false) => t.invalid_rejected += 1,
                ("acceptable", false) => t.acceptable_rejected += 1,
                (r, v) => t.failures.push(format!(
                    "{name} tc {id} ({comment}, flags {}): result {r} but verify returned {v}",
                    test["flags"]
                )),
            }
        }
    }
    t
}

fn check(name: &str, alg: Alg) {
    let t = run_file(name, alg);
    eprintln!(
        "{name} as {alg}: {} valid verified, {} invalid rejected, {} acceptable rejected, {} with refused key",
        t.valid_ok, t.invalid_rejected, t.acceptable_rejected, t.key_refused
    );
    assert!(t.failures.is_empty(), "{}", t.failures.join("\n"));
    assert!(t.valid_ok > 0, "{name}: no valid vector ran");
    assert!(t.invalid_rejected > 0, "{name}: no invalid vector ran");
}

#[test]
fn rsa_pkcs1_2048() {
    check("rsa_signature_2048_sha256_test.json", Alg::RS256);
    check("rsa_signature_2048_sha384_test.json", Alg::RS384);
    check("rsa_signature_2048_sha512_test.json", Alg::RS512);
}

#[test]
fn rsa_pkcs1_3072() {
    check("rsa_signature_3072_sha256_test.json", Alg::RS256);
    check("rsa_signature_3072_sha384_test.json", Alg::RS384);
    check("rsa_signature_3072_sha512_test.json", Alg::RS512);
}

#[test]
fn rsa_pkcs1_4096() {
    check("rsa_signature_4096_sha256_test.json", Alg::RS256);
    check("rsa_signature_4096_sha384_test.json", Alg::RS384);
    check("rsa_signature_4096_sha512_test.json", Alg::RS512);
}

#[test]
fn rsa_pss() {
    check("rsa_pss_2048_sha256_mgf1_32_test.json", Alg::PS256);
    check("rsa_pss_2048_sha384_mgf1_48_test.json", Alg::PS384);
    check("rsa_pss_3072_sha256_mgf1_32_test.json", Alg::PS256);
    check("rsa_pss_4096_sha384_mgf1_48_test.json", Alg::PS384);
    check("rsa_pss_4096_sha512_mgf1_64_test.json", Alg::PS512);
}

#[test]
fn ecdsa_p256_p1363() {
    check("ecdsa_secp256r1_sha256_p1363_test.json", Alg::ES256);
}

#[test]
fn ecdsa_p384_p1363() {
    check("ecdsa_secp384r1_sha384_p1363_test.json", Alg::ES384);
}

#[test]
fn ecdsa_p521_p1363() {
    check("ecdsa_secp521r1_sha512_p1363_test.json", Alg::ES512);
}

#[test]
fn ed25519() {
    check("ed25519_test.json", Alg::EdDSA);
}

/// A vector's key under the wrong algorithm never verifies (the alg/key-type
/// binding holds for Wycheproof keys too): valid RS256 signatures are refused
/// as PS256 / RS384, valid ES256 ones as ES384, and no key verifies as HS256.
#[test]
fn valid_vectors_fail_under_other_algs() {
    for (name, right, wrong) in [
        (
            "rsa_signature_2048_sha256_test.json",
            Alg::RS256,
            &[Alg::PS256, Alg::RS384, Alg::HS256, Alg::ES256][..],
        ),
        (
            "ecdsa_secp256r1_sha256_p1363_test.json",
            Alg::ES256,
            &[Alg::ES384, Alg::ES512, Alg::HS256, Alg::EdDSA][..],
        ),
        (
            "ecdsa_secp521r1_sha512_p1363_test.json",
            Alg::ES512,
            &[Alg::ES256, Alg::ES384, Alg::HS512][..],
        ),
        (
            "ed25519_test.json",
            Alg::EdDSA,
            &[Alg::ES256, Alg::HS512][..],
        ),
    ] {
        let doc = load(name);
        let mut checked = 0;
        for group in doc["testGroups"].as_array().expect("groups") {
            let Ok(key) = Key::from_jwk(&group_jwk(group)) else {
                continue;
            };
            for test in group["tests"].as_array().expect("tests") {
                if test["result"] != "valid" {
                    continue;
                }
                let msg = unhex(test["msg"].as_str().expect("msg"));
                let sig = unhex(test["sig"].as_str().expect("sig"));
                assert!(key.verify(right, &msg, &sig));
                for alg in wrong {
                    assert!(!key.verify(*alg, &msg, &sig), "{name} verified as {alg}");
                }
                checked += 1;
            }
        }
        assert!(checked > 0, "{name}");
    }
}
