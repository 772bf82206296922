use super::*;
use crate::crypto::rsa_verify::trim_leading_zeros;
use jwt_simple::prelude::*;
use serde_json::json;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture_set() -> KeySet {
    let (set, warnings) = KeySet::parse(&fixture("jwks.json")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    set
}

fn key<'a>(set: &'a KeySet, kid: &str) -> &'a Key {
    set.keys()
        .iter()
        .find(|k| k.kid.as_deref() == Some(kid))
        .unwrap()
}

fn hs_secret() -> Vec<u8> {
    B64URL.decode(fixture("hs.secret").trim()).unwrap()
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn claims() -> JWTClaims<NoCustomClaims> {
    Claims::create(Duration::from_hours(1))
}

/// Signs a token with `alg` using the PEM file (ignored for HS*, which use hs.secret).
fn sign_with(alg: Alg, pem_file: &str) -> String {
    let pem = if alg.is_hmac() {
        String::new()
    } else {
        fixture(pem_file)
    };
    let s = hs_secret();
    match alg {
        Alg::RS256 => RS256KeyPair::from_pem(&pem).unwrap().sign(claims()),
        Alg::RS384 => RS384KeyPair::from_pem(&pem).unwrap().sign(claims()),
        Alg::RS512 => RS512KeyPair::from_pem(&pem).unwrap().sign(claims()),
        Alg::PS256 => PS256KeyPair::from_pem(&pem).unwrap().sign(claims()),
        Alg::PS384 => PS384KeyPair::from_pem(&pem).unwrap().sign(claims()),
        Alg::PS512 => PS512KeyPair::from_pem(&pem).unwrap().sign(claims()),
        Alg::ES256 => ES256KeyPair::from_pem(&pem).unwrap().sign(claims()),
        Alg::ES384 => ES384KeyPair::from_pem(&pem).unwrap().sign(claims()),
        Alg::ES512 => {
            use p521::pkcs8::DecodePrivateKey;
            let sk = p521::SecretKey::from_pkcs8_pem(&pem).unwrap();
            Ok(es512_token(&p521::ecdsa::SigningKey::from(&sk)))
        }
        Alg::EdDSA => Ed25519KeyPair::from_pem(&pem).unwrap().sign(claims()),
        Alg::HS256 => HS256Key::from_bytes(&s).authenticate(claims()),
        Alg::HS384 => HS384Key::from_bytes(&s).authenticate(claims()),
        Alg::HS512 => HS512Key::from_bytes(&s).authenticate(claims()),
    }
    .unwrap()
}

/// A token signed by a key that is NOT in the fixture JWKS.
fn sign_with_other_key(alg: Alg) -> String {
    match alg {
        Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
            sign_with(alg, "rsa2048b.pem")
        }
        Alg::ES256 => ES256KeyPair::generate().sign(claims()).unwrap(),
        Alg::ES384 => ES384KeyPair::generate().sign(claims()).unwrap(),
        Alg::ES512 => {
            let mut scalar = [0x5au8; 66];
            scalar[0] = 0;
            es512_token(&p521::ecdsa::SigningKey::from_slice(&scalar).unwrap())
        }
        Alg::EdDSA => Ed25519KeyPair::generate().sign(claims()).unwrap(),
        Alg::HS256 => HS256Key::generate().authenticate(claims()).unwrap(),
        Alg::HS384 => HS384Key::generate().authenticate(claims()).unwrap(),
        Alg::HS512 => HS512Key::generate().authenticate(claims()).unwrap(),
    }
}

/// An ES512 token (kid `ec-521`) signed with `sk` (r||s, 132 bytes).
fn es512_token(sk: &p521::ecdsa::SigningKey) -> String {
    use p521::ecdsa::signature::Signer;
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"ES512","kid":"ec-521"}"#),
        b64(br#"{"sub":"u"}"#)
    );
    let sig: p521::ecdsa::Signature = sk.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}

fn default_pem(alg: Alg) -> &'static str {
    match alg {
        Alg::ES256 => "ec256.pem",
        Alg::ES384 => "ec384.pem",
        Alg::ES512 => "ec521.pem",
        Alg::EdDSA => "ed25519.pem",
        Alg::HS256 | Alg::HS384 | Alg::HS512 => "hs.secret",
        _ => "rsa2048.pem",
    }
}

fn default_kid(alg: Alg) -> &'static str {
    match alg {
        Alg::ES256 => "ec-256",
        Alg::ES384 => "ec-384",
        Alg::ES512 => "ec-521",
        Alg::EdDSA => "ed-1",
        Alg::HS256 | Alg::HS384 | Alg::HS512 => "hs-1",
        _ => "rsa-a",
    }
}

/// (signing input, decoded signature)
fn split(token: &str) -> (Vec<u8>, Vec<u8>) {
    let (input, sig) = token.rsplit_once('.').unwrap();
    (input.as_bytes().to_vec(), B64URL.decode(sig).unwrap())
}

fn sig_len(alg: Alg) -> usize {
    match alg {
        Alg::ES256 | Alg::EdDSA | Alg::HS512 => 64,
        Alg::ES384 => 96,
        Alg::ES512 => 132,
        Alg::HS384 => 48,
        Alg::HS256 => 32,
        _ => 256,
    }
}

// ---------------------------------------------------------------- Alg

#[test]
fn alg_names_round_trip() {
    for alg in Alg::ALL {
        assert_eq!(Alg::from_name(alg.name()), Some(alg));
        assert_eq!(alg.to_string(), alg.name());
    }
    for bad in [
        "none", "None", "rs256", "ES521", "HS1", "", "RS256 ", "EDDSA", "Ed25519",
    ] {
        assert_eq!(Alg::from_name(bad), None, "{bad}");
    }
    let hmac: Vec<Alg> = Alg::ALL.into_iter().filter(|a| a.is_hmac()).collect();
    assert_eq!(hmac, [Alg::HS256, Alg::HS384, Alg::HS512]);
}

// ------------------------------------------------------- verification

#[test]
fn every_alg_verifies_with_the_right_key() {
    let set = fixture_set();
    for alg in Alg::ALL {
        let (input, sig) = split(&sign_with(alg, default_pem(alg)));
        assert_eq!(sig.len(), sig_len(alg), "{alg}");
        let k = key(&set, default_kid(alg));
        assert!(k.fits(alg), "{alg}");
        assert!(k.verify(alg, &input, &sig), "{alg} should verify");
    }
}

#[test]
fn rsa_3072_verifies() {
    let set = fixture_set();
    let k = key(&set, "rsa-3072");
    assert_eq!(k.rsa_bits(), Some(3072));
    for alg in [Alg::RS256, Alg::PS384, Alg::RS512, Alg::PS512] {
        let (input, sig) = split(&sign_with(alg, "rsa3072.pem"));
        assert_eq!(sig.len(), 384);
        assert!(k.verify(alg, &input, &sig), "{alg}");
        // and not with the 2048-bit keys
        assert!(!key(&set, "rsa-a").verify(alg, &input, &sig));
    }
}

#[test]
fn every_alg_rejects_bad_signatures() {
    let set = fixture_set();
    for alg in Alg::ALL {
        let k = key(&set, default_kid(alg));
        let (input, sig) = split(&sign_with(alg, default_pem(alg)));
        assert!(k.verify(alg, &input, &sig));

        // wrong key
        let (oi, os) = split(&sign_with_other_key(alg));
        assert!(!k.verify(alg, &oi, &os), "{alg}: other key");

        // tampered input
        let mut ti = input.clone();
        let mid = ti.len() / 2;
        ti[mid] ^= 0x01;
        assert!(!k.verify(alg, &ti, &sig), "{alg}: tampered input");
        let mut ti = input.clone();
        ti.push(b'A');
        assert!(!k.verify(alg, &ti, &sig), "{alg}: extended input");

        // tampered signature, at several positions
        for pos in [0, sig.len() / 2, sig.len() - 1] {
            let mut ts = sig.clone();
            ts[pos] ^= 0x80;
            assert!(!k.verify(alg, &input, &ts), "{alg}: sig bit at {pos}");
        }
        // truncated / extended / empty / zero signatures
        assert!(!k.verify(alg, &input, &sig[..sig.len() - 1]), "{alg}");
        let mut ext = sig.clone();
        ext.push(0);
        assert!(!k.verify(alg, &input, &ext), "{alg}: extended sig");
        let mut ext = vec![0u8];
        ext.extend_from_slice(&sig);
        assert!(!k.verify(alg, &input, &ext), "{alg}: zero-prefixed sig");
        assert!(!k.verify(alg, &input, &[]), "{alg}: empty sig");
        assert!(
            !k.verify(alg, &input, &vec![0u8; sig.len()]),
            "{alg}: zeros"
        );
        assert!(
            !k.verify(alg, &input, &vec![0xffu8; sig.len()]),
            "{alg}: ones"
        );
    }
}

#[test]
fn alg_and_key_type_mismatch_fails() {
    let set = fixture_set();
    for alg in Alg::ALL {
        let (input, sig) = split(&sign_with(alg, default_pem(alg)));
        for k in set.keys() {
            let right_key = k.kid.as_deref() == Some(default_kid(alg));
            if !right_key {
                assert!(!k.verify(alg, &input, &sig), "{alg} on {:?}", k.kid);
            }
            // the same signature presented under any other alg fails too
            for other in Alg::ALL {
                if other != alg {
                    assert!(
                        !k.verify(other, &input, &sig),
                        "{alg} sig as {other} on {:?}",
                        k.kid
                    );
                }
            }
        }
    }
    // fits() by key type
    let fits = |kid: &str| -> Vec<Alg> {
        Alg::ALL
            .into_iter()
            .filter(|a| key(&set, kid).fits(*a))
            .collect()
    };
    use Alg::*;
    assert_eq!(fits("rsa-a"), [RS256, RS384, RS512, PS256, PS384, PS512]);
    assert_eq!(fits("ec-256"), [ES256]);
    assert_eq!(fits("ec-384"), [ES384]);
    assert_eq!(fits("ed-1"), [EdDSA]);
    assert_eq!(fits("hs-1"), [HS256, HS384, HS512]);
}

#[test]
fn hmac_with_rsa_public_key_as_secret_is_rejected() {
    // Classic alg confusion: HS256 token whose HMAC secret is the RSA public key.
    let pub_pem = RS256KeyPair::from_pem(&fixture("rsa2048.pem"))
        .unwrap()
        .public_key()
        .to_pem()
        .unwrap();
    let tok = HS256Key::from_bytes(pub_pem.as_bytes())
        .authenticate(claims())
        .unwrap();
    let (input, sig) = split(&tok);
    let set = fixture_set();
    let rsa = key(&set, "rsa-a");
    assert!(!rsa.fits(Alg::HS256));
    assert!(!rsa.verify(Alg::HS256, &input, &sig));
    assert_eq!(set.candidates(Some("rsa-a"), Alg::HS256).count(), 0);
    // sanity: the token itself is a valid HS256 token for that secret
    let oct = Key::from_hmac_secret(None, None, pub_pem.as_bytes()).unwrap();
    assert!(oct.verify(Alg::HS256, &input, &sig));
    // an SPKI-DER secret is refused by the RSA key too
    let spki = rsa.spki_der().unwrap();
    let (input, sig) = split(&HS256Key::from_bytes(spki).authenticate(claims()).unwrap());
    assert!(!rsa.verify(Alg::HS256, &input, &sig));
}

fn p256_order() -> Vec<u8> {
    hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
}

fn p384_order() -> Vec<u8> {
    hex(concat!(
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf",
        "581a0db248b0a77aecec196accc52973"
    ))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// DER-encodes a raw r||s ECDSA signature.
fn to_der(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let int = |v: &[u8]| {
        let v = trim_leading_zeros(v);
        let mut out = vec![0x02];
        let pad = v.first().is_some_and(|b| b & 0x80 != 0);
        out.push((v.len() + pad as usize) as u8);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
        out
    };
    let body = [int(r), int(s)].concat();
    let mut out = vec![0x30];
    if body.len() >= 0x80 {
        out.push(0x81);
    }
    out.push(body.len() as u8);
    out.extend(body);
    out
}

#[test]
fn ecdsa_edge_cases() {
    let set = fixture_set();
    for (alg, kid, order) in [
        (Alg::ES256, "ec-256", p256_order()),
        (Alg::ES384, "ec-384", p384_order()),
    ] {
        let k = key(&set, kid);
        let n = order.len();
        let (input, sig) = split(&sign_with(alg, default_pem(alg)));
        assert!(k.verify(alg, &input, &sig));
        // r = s = 0
        assert!(!k.verify(alg, &input, &vec![0u8; 2 * n]), "{alg} zero");
        // r = 0, s valid / r valid, s = 0
        let mut z = sig.clone();
        z[..n].fill(0);
        assert!(!k.verify(alg, &input, &z));
        let mut z = sig.clone();
        z[n..].fill(0);
        assert!(!k.verify(alg, &input, &z));
        // r = n or s = n (curve order)
        let (r, s) = sig.split_at(n);
        assert!(
            !k.verify(alg, &input, &[&order[..], s].concat()),
            "{alg} r=n"
        );
        assert!(
            !k.verify(alg, &input, &[r, &order[..]].concat()),
            "{alg} s=n"
        );
        // r = s = 0xff..ff (> n)
        assert!(!k.verify(alg, &input, &vec![0xff; 2 * n]));
        // DER-encoded signature of the same valid (r, s)
        let der = to_der(&sig);
        assert_ne!(der.len(), 2 * n);
        assert!(!k.verify(alg, &input, &der), "{alg} DER");
        // DER padded/truncated to the raw length is garbage too
        let mut der_fit = der.clone();
        der_fit.resize(2 * n, 0);
        assert!(!k.verify(alg, &input, &der_fit), "{alg} DER resized");
    }
}

#[test]
fn jwk_alg_restricts_the_key() {
    let pk = RS256KeyPair::from_pem(&fixture("rsa2048.pem"))
        .unwrap()
        .public_key()
        .to_components();
    let jwk = json!({"kty":"RSA","kid":"r","alg":"RS256","n":b64(&pk.n),"e":b64(&pk.e)});
    let k = Key::from_jwk(&jwk).unwrap();
    assert_eq!(k.alg, Some(Alg::RS256));
    assert!(k.fits(Alg::RS256));
    assert!(!k.fits(Alg::PS256) && !k.fits(Alg::RS512));
    let (i, s) = split(&sign_with(Alg::RS256, "rsa2048.pem"));
    assert!(k.verify(Alg::RS256, &i, &s));
    let (i, s) = split(&sign_with(Alg::PS256, "rsa2048.pem"));
    assert!(
        !k.verify(Alg::PS256, &i, &s),
        "PS256 token on an RS256-only key"
    );
    let (i, s) = split(&sign_with(Alg::RS384, "rsa2048.pem"));
    assert!(!k.verify(Alg::RS384, &i, &s));

    let secret = hs_secret();
    let oct = Key::from_jwk(&json!({"kty":"oct","alg":"HS512","k":b64(&secret)})).unwrap();
    let (i, s) = split(&sign_with(Alg::HS256, ""));
    assert!(!oct.verify(Alg::HS256, &i, &s));
    let (i, s) = split(&sign_with(Alg::HS512, ""));
    assert!(oct.verify(Alg::HS512, &i, &s));
}

#[test]
fn spki_der_matches_reference_encoder() {
    let set = fixture_set();
    let rsa = RS256KeyPair::from_pem(&fixture("rsa2048.pem"))
        .unwrap()
        .public_key()
        .to_der()
        .unwrap();
    assert_eq!(key(&set, "rsa-a").spki_der(), Some(&rsa[..]));
    let rsa = RS256KeyPair::from_pem(&fixture("rsa3072.pem"))
        .unwrap()
        .public_key()
        .to_der()
        .unwrap();
    assert_eq!(key(&set, "rsa-3072").spki_der(), Some(&rsa[..]));
    let ec = ES256KeyPair::from_pem(&fixture("ec256.pem"))
        .unwrap()
        .public_key()
        .to_der()
        .unwrap();
    assert_eq!(key(&set, "ec-256").spki_der(), Some(&ec[..]));
    let ec = ES384KeyPair::from_pem(&fixture("ec384.pem"))
        .unwrap()
        .public_key()
        .to_der()
        .unwrap();
    assert_eq!(key(&set, "ec-384").spki_der(), Some(&ec[..]));
    assert_eq!(key(&set, "ed-1").spki_der(), None);
    assert_eq!(key(&set, "hs-1").spki_der(), None);
}

// ------------------------------------------------------------ parsing

#[test]
fn fixture_jwks_yields_eight_keys() {
    let set = fixture_set();
    assert_eq!(set.len(), 8);
    assert!(!set.is_empty());
    let summary: Vec<(&str, &str)> = set
        .keys()
        .iter()
        .map(|k| (k.kid.as_deref().unwrap(), k.kty()))
        .collect();
    assert_eq!(
        summary,
        [
            ("rsa-a", "RSA"),
            ("rsa-b", "RSA"),
            ("rsa-3072", "RSA"),
            ("ec-256", "EC"),
            ("ec-384", "EC"),
            ("ec-521", "EC"),
            ("ed-1", "OKP"),
            ("hs-1", "oct")
        ]
    );
    assert_eq!(key(&set, "rsa-a").rsa_bits(), Some(2048));
    assert_eq!(key(&set, "hs-1").secret_len(), Some(64));
    assert_eq!(key(&set, "hs-1").rsa_bits(), None);
    assert_eq!(key(&set, "rsa-a").secret_len(), None);
    assert!(set.keys().iter().all(|k| k.alg.is_none()));
    assert!(set.has_kid("ed-1") && !set.has_kid("nope"));
}

#[test]
fn weak_rsa_jwks_is_an_error() {
    let err = KeySet::parse(&fixture("jwks_weak.json")).unwrap_err();
    assert!(err.starts_with("no usable key in JWKS"), "{err}");
    assert!(err.contains("RSA key under 2048 bits"), "{err}");
    assert!(err.contains("rsa-weak"), "{err}");
}

fn good_rsa_jwk(kid: &str) -> Value {
    let fixture: Value = serde_json::from_str(&fixture("jwks.json")).unwrap();
    let mut k = fixture["keys"][0].clone();
    k["kid"] = json!(kid);
    k
}

fn fixture_jwk(kid: &str) -> Value {
    let fixture: Value = serde_json::from_str(&fixture("jwks.json")).unwrap();
    fixture["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap()
        .clone()
}

#[test]
fn mixed_set_keeps_good_keys_and_warns_once_per_bad_key() {
    let mut not_on_curve = fixture_jwk("ec-256");
    let mut y = B64URL.decode(not_on_curve["y"].as_str().unwrap()).unwrap();
    y[31] ^= 1;
    not_on_curve["y"] = json!(b64(&y));
    not_on_curve["kid"] = json!("bad-point");
    let mut short = fixture_jwk("rsa-a");
    let n = B64URL.decode(short["n"].as_str().unwrap()).unwrap();
    short["n"] = json!(b64(&n[..128]));
    short["kid"] = json!("bad-short");
    let mut bad_b64 = good_rsa_jwk("bad-b64");
    let n_std = base64::engine::general_purpose::STANDARD.encode(&n);
    assert!(n_std.contains('+') || n_std.contains('/'));
    bad_b64["n"] = json!(n_std);
    let mut alg_mismatch = fixture_jwk("ec-384");
    alg_mismatch["alg"] = json!("ES256");
    alg_mismatch["kid"] = json!("bad-alg");
    let mut enc = fixture_jwk("ed-1");
    enc["use"] = json!("enc");
    enc["kid"] = json!("bad-use");
    let mut oaep = good_rsa_jwk("bad-oaep");
    oaep["alg"] = json!("RSA-OAEP");
    let mut none = fixture_jwk("hs-1");
    none["alg"] = json!("none");
    none["kid"] = json!("bad-none");
    let mut x25519 = fixture_jwk("ed-1");
    x25519["crv"] = json!("X25519");
    x25519["kid"] = json!("bad-crv");
    let mut p521 = fixture_jwk("ec-256");
    p521["crv"] = json!("P-192");
    p521["kid"] = json!("bad-p192");

    let doc = json!({"keys": [
        good_rsa_jwk("good-rsa"),
        {"kty": "XYZ", "kid": "bad-kty"},
        x25519,
        enc,
        bad_b64,
        not_on_curve,
        alg_mismatch,
        short,
        fixture_jwk("ec-256"),
        oaep,
        none,
        p521,
        {"kty": "oct", "k": ""},
        fixture_jwk("ed-1"),
        7,
    ]});
    let (set, warnings) = KeySet::parse(&doc.to_string()).unwrap();
    let kids: Vec<_> = set.keys().iter().map(|k| k.kid.clone().unwrap()).collect();
    assert_eq!(kids, ["good-rsa", "ec-256", "ed-1"]);
    let expect = [
        ("bad-kty", "unsupported kty"),
        ("bad-crv", "unsupported OKP crv"),
        ("bad-use", "\"use\""),
        ("bad-b64", "not valid base64url"),
        ("bad-point", "not on curve"),
        ("bad-alg", "alg ES256 does not suit"),
        ("bad-short", "RSA key under 2048 bits"),
        ("bad-oaep", "unsupported alg \"RSA-OAEP\""),
        ("bad-none", "unsupported alg \"none\""),
        ("bad-p192", "unsupported EC crv"),
        ("#12", "empty"),
        ("#14", "not a JSON object"),
    ];
    assert_eq!(warnings.len(), expect.len(), "{warnings:#?}");
    for (w, (kid, reason)) in warnings.iter().zip(expect) {
        assert!(w.contains(kid), "{w} should name {kid}");
        assert!(w.contains(reason), "{w} should say {reason}");
    }
    // the HMAC secret of the "none" key is not echoed
    let k = fixture_jwk("hs-1")["k"].as_str().unwrap().to_string();
    assert!(warnings.iter().all(|w| !w.contains(&k)));
}

#[test]
fn invalid_documents_are_errors() {
    for doc in [
        "",
        "not json",
        "[]",
        "[{\"kty\":\"oct\",\"k\":\"AAAA\"}]",
        "{\"keys\": 5}",
        "{\"keys\": {}}",
        "{\"keys\": null}",
        "{\"keys\": []}",
        "{}",
        "{\"foo\": 1}",
        "null",
        "\"keys\"",
        "{\"keys\": [1, 2, \"x\"]}",
        "{\"keys\": [{}]}",
        "{\"keys\": [{\"kty\": \"oct\"}]}",
        "{\"keys\": [{\"kty\": \"RSA\", \"n\": \"AQAB\", \"e\": \"AQAB\"}]}",
        "{\"keys\": [{\"kty\":\"oct\",\"k\":\"AAAA\"}]} trailing",
    ] {
        assert!(KeySet::parse(doc).is_err(), "{doc:?} should be an error");
    }
    let err = KeySet::parse("{\"keys\": []}").unwrap_err();
    assert!(err.contains("no usable key"), "{err}");
}

#[test]
fn single_jwk_object_is_accepted() {
    let (set, w) = KeySet::parse(&fixture_jwk("ec-384").to_string()).unwrap();
    assert!(w.is_empty());
    assert_eq!(set.len(), 1);
    assert_eq!(set.keys()[0].kid.as_deref(), Some("ec-384"));
    let mut bad = fixture_jwk("ec-384");
    bad["use"] = json!("enc");
    let err = KeySet::parse(&bad.to_string()).unwrap_err();
    assert!(err.contains("ec-384") && err.contains("use"), "{err}");
}

#[test]
fn too_many_keys_is_an_error() {
    let one = json!({"kty":"oct","k":b64(&[7u8; 32])});
    let ok = json!({ "keys": vec![one.clone(); MAX_KEYS] });
    assert_eq!(KeySet::parse(&ok.to_string()).unwrap().0.len(), MAX_KEYS);
    let too_many = json!({ "keys": vec![one; MAX_KEYS + 1] });
    let err = KeySet::parse(&too_many.to_string()).unwrap_err();
    assert!(err.contains("maximum"), "{err}");
}

#[test]
fn no_usable_key_error_lists_first_reasons() {
    let doc = json!({"keys": [
        {"kty":"a","kid":"k1"},{"kty":"b","kid":"k2"},{"kty":"c","kid":"k3"},
        {"kty":"d","kid":"k4"},{"kty":"e"}
    ]});
    let err = KeySet::parse(&doc.to_string()).unwrap_err();
    assert!(err.starts_with("no usable key in JWKS: "), "{err}");
    assert!(
        err.contains("k1") && err.contains("k3") && !err.contains("k4"),
        "{err}"
    );
    assert!(err.contains("2 more"), "{err}");
}

#[test]
fn base64url_padding_and_alphabet() {
    let secret = b"0123456789abcdef0"; // 17 bytes: needs padding
    let unpadded = b64(secret);
    let padded = base64::engine::general_purpose::URL_SAFE.encode(secret);
    assert!(padded.ends_with('='));
    for k in [&unpadded, &padded] {
        let key = Key::from_jwk(&json!({"kty":"oct","k":k})).unwrap();
        assert_eq!(key.secret_len(), Some(17));
    }
    for bad in [
        "Zm9v+Zg",
        "Zm9v/Zg",
        "Zm9 vZg",
        "Zm=9vZg",
        "Z",
        "Zm9vZg===",
        "Zm9vZh",
    ] {
        let err = Key::from_jwk(&json!({"kty":"oct","kid":"s","k":bad})).unwrap_err();
        assert!(err.contains("base64url"), "{bad}: {err}");
        assert!(!err.contains(bad), "{err} echoes the secret");
    }
    // e with padding still works for RSA
    let mut rsa = good_rsa_jwk("p");
    rsa["e"] = json!("AQAB");
    assert!(Key::from_jwk(&rsa).is_ok());
}

#[test]
fn rsa_exponent_and_size_rules() {
    let base = good_rsa_jwk("e");
    for (e, ok) in [
        (vec![1, 0, 1], true),
        (vec![0, 0, 1, 0, 1], true),
        (vec![3], true),
        (vec![1], false),
        (vec![0], false),
        (vec![], false),
        (vec![1, 0, 0], false),
        (vec![2], false),
        (vec![0xff; 8], false), // larger than the rsa crate's bound
    ] {
        let mut jwk = base.clone();
        jwk["e"] = json!(b64(&e));
        assert_eq!(Key::from_jwk(&jwk).is_ok(), ok, "e = {e:?}");
    }
    // leading zero byte on n is fine
    let n = B64URL.decode(base["n"].as_str().unwrap()).unwrap();
    let mut jwk = base.clone();
    jwk["n"] = json!(b64(&[&[0u8][..], &n].concat()));
    assert_eq!(Key::from_jwk(&jwk).unwrap().rsa_bits(), Some(2048));
    // even modulus
    let mut even = n.clone();
    *even.last_mut().unwrap() &= 0xfe;
    jwk["n"] = json!(b64(&even));
    assert!(Key::from_jwk(&jwk).is_err());
    // huge modulus
    jwk["n"] = json!(b64(&vec![0xff; 2048]));
    let err = Key::from_jwk(&jwk).unwrap_err();
    assert!(err.contains("over"), "{err}");
    // missing members
    for m in ["n", "e"] {
        let mut jwk = base.clone();
        jwk.as_object_mut().unwrap().remove(m);
        let err = Key::from_jwk(&jwk).unwrap_err();
        assert!(err.contains("missing"), "{err}");
    }
}

#[test]
fn private_members_are_ignored_and_not_echoed() {
    let mut jwk = good_rsa_jwk("priv");
    jwk["d"] = json!("c2VjcmV0LWQtdmFsdWU");
    jwk["p"] = json!("c2VjcmV0LXAtdmFsdWU");
    jwk["key_ops"] = json!(["verify"]);
    jwk["x5c"] = json!(["not-checked"]);
    jwk["x5t"] = json!("whatever");
    let k = Key::from_jwk(&jwk).unwrap();
    assert!(k.fits(Alg::RS256));
    jwk["n"] = json!("AQAB");
    let err = Key::from_jwk(&jwk).unwrap_err();
    assert!(!err.contains("c2VjcmV0"), "{err}");
    let mut ec = fixture_jwk("ec-256");
    ec["d"] = json!("c2VjcmV0LWQtdmFsdWU");
    assert!(Key::from_jwk(&ec).is_ok());
}

#[test]
fn debug_output_has_no_secret() {
    let set = fixture_set();
    let dbg = format!("{set:?}");
    let k = fixture_jwk("hs-1")["k"].as_str().unwrap().to_string();
    assert!(!dbg.contains(&k));
    let secret = hs_secret();
    let dec: Vec<String> = secret.iter().map(|b| b.to_string()).collect();
    assert!(!dbg.contains(&dec[..8].join(", ")), "{dbg}");
    assert!(dbg.contains("secret_len: 64"), "{dbg}");
}

#[test]
fn ec_coordinate_rules() {
    let base = fixture_jwk("ec-256");
    let x = B64URL.decode(base["x"].as_str().unwrap()).unwrap();
    // too long
    let mut jwk = base.clone();
    jwk["x"] = json!(b64(&[&[0u8][..], &x].concat()));
    assert!(Key::from_jwk(&jwk).is_err());
    // empty / missing y
    jwk = base.clone();
    jwk["y"] = json!("");
    assert!(Key::from_jwk(&jwk).is_err());
    jwk.as_object_mut().unwrap().remove("y");
    assert!(Key::from_jwk(&jwk).is_err());
    // P-384 coordinates on a P-256 key
    let mut jwk = fixture_jwk("ec-384");
    jwk["crv"] = json!("P-256");
    assert!(Key::from_jwk(&jwk).is_err());
    // all-zero point
    let mut jwk = base.clone();
    jwk["x"] = json!(b64(&[0u8; 32]));
    jwk["y"] = json!(b64(&[0u8; 32]));
    assert!(Key::from_jwk(&jwk).is_err());
    // OKP x of the wrong length
    let mut okp = fixture_jwk("ed-1");
    okp["x"] = json!(b64(&[1u8; 31]));
    assert!(Key::from_jwk(&okp).is_err());
    okp["x"] = json!(b64(&[1u8; 33]));
    assert!(Key::from_jwk(&okp).is_err());
}

// --------------------------------------------------------- candidates

#[test]
fn candidates_semantics() {
    let secret = b64(&hs_secret());
    let doc = json!({"keys": [
        good_rsa_jwk("a"),
        fixture_jwk("rsa-b"),
        {"kty":"oct","k":secret},               // no kid
        {"kty":"oct","kid":"h","k":secret},
        {"kty":"oct","kid":"h2","alg":"HS512","k":secret},
        fixture_jwk("ec-256"),
        {"kty":"RSA","n": good_rsa_jwk("x")["n"], "e":"AQAB"}, // RSA, no kid
    ]});
    let (set, w) = KeySet::parse(&doc.to_string()).unwrap();
    assert!(w.is_empty(), "{w:?}");
    let ids = |kid: Option<&str>, alg: Alg| -> Vec<String> {
        set.candidates(kid, alg)
            .map(|k| k.kid.clone().unwrap_or_else(|| "-".into()))
            .collect()
    };
    // kid match, plus keys without a kid
    assert_eq!(ids(Some("a"), Alg::RS256), ["a", "-"]);
    assert_eq!(ids(Some("rsa-b"), Alg::PS256), ["rsa-b", "-"]);
    // unknown kid: only keyless keys
    assert_eq!(ids(Some("zzz"), Alg::RS256), ["-"]);
    assert_eq!(ids(Some("zzz"), Alg::ES256), Vec::<String>::new());
    // no kid: every fitting key, in order
    assert_eq!(ids(None, Alg::RS512), ["a", "rsa-b", "-"]);
    assert_eq!(ids(None, Alg::HS256), ["-", "h"]);
    assert_eq!(ids(None, Alg::HS512), ["-", "h", "h2"]);
    assert_eq!(ids(None, Alg::ES256), ["ec-256"]);
    assert_eq!(ids(None, Alg::ES384), Vec::<String>::new());
    assert_eq!(ids(None, Alg::EdDSA), Vec::<String>::new());
    // alg filter with kid
    assert_eq!(ids(Some("h2"), Alg::HS256), ["-"]);
    assert_eq!(ids(Some("h2"), Alg::HS512), ["-", "h2"]);
    assert_eq!(ids(Some("ec-256"), Alg::RS256), ["-"]);
    assert_eq!(ids(Some("ec-256"), Alg::ES256), ["ec-256"]);
    assert!(set.has_kid("h2") && !set.has_kid("-"));

    let copy = KeySet::from_keys(set.keys().to_vec());
    assert_eq!(copy.len(), set.len());
    assert!(KeySet::from_keys(Vec::new()).is_empty());
}

// ----------------------------------------------------------- hostile

#[test]
fn hostile_documents_never_panic() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_obj = format!("{{\"keys\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let long_kid = format!(
        "{{\"keys\":[{{\"kty\":\"zz\",\"kid\":\"{}\"}}]}}",
        "é\\n".repeat(10_000)
    );
    let docs: Vec<String> = vec![
        deep,
        deep_obj,
        long_kid,
        "{\"keys\":[{\"kty\":1},{\"kty\":null},{\"kty\":\"RSA\",\"n\":1,\"e\":[]}]}".into(),
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"\",\"y\":\"\"}]}".into(),
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":null,\"x\":\"AA\",\"y\":\"AA\"}]}".into(),
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"=\"}]}".into(),
        "{\"keys\":[{\"kty\":\"oct\",\"k\":\"====\"}]}".into(),
        "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AA\",\"kid\":5}]}".into(),
        "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AA\",\"alg\":{}}]}".into(),
        "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AA\",\"use\":true}]}".into(),
        "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"\",\"e\":\"\"}]}".into(),
        "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AA\",\"e\":\"AQAB\"}]}".into(),
        "\u{0}\u{ffff}".into(),
        "{\"keys\":[1e999999]}".into(),
        "{\"keys\":[\"\\ud800\"]}".into(),
    ];
    for d in &docs {
        let _ = KeySet::parse(d);
    }
    // every doc above has no usable key (or is invalid)
    for d in &docs {
        assert!(KeySet::parse(d).is_err());
    }
    // warnings are bounded even for long kids
    let err = KeySet::parse(&docs[2]).unwrap_err();
    assert!(err.len() < 300, "{}", err.len());
}

#[test]
fn hostile_signatures_never_panic() {
    let set = fixture_set();
    let inputs: [&[u8]; 3] = [b"", b"a.b", &[0xff; 10_000]];
    let mut sigs: Vec<Vec<u8>> = vec![Vec::new()];
    for len in [
        1, 31, 32, 33, 48, 63, 64, 65, 95, 96, 97, 255, 256, 257, 384, 512, 4096,
    ] {
        sigs.push(vec![0u8; len]);
        sigs.push(vec![0xffu8; len]);
        sigs.push((0..len).map(|i| i as u8).collect());
    }
    for k in set.keys() {
        for alg in Alg::ALL {
            for input in inputs {
                for sig in &sigs {
                    assert!(!k.verify(alg, input, sig));
                }
            }
        }
    }
}

#[test]
fn ed25519_keys_of_small_order_or_off_the_curve_are_refused() {
    let okp = |x: &[u8]| {
        let x = b64(x);
        format!(
            "{{\"keys\":[{{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"k\",\"x\":\"{x}\"}}]}}"
        )
    };
    // The neutral point (y = 1): a signature with R = identity and S = 0
    // would "verify" any message under it.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let err = KeySet::parse(&okp(&identity)).unwrap_err();
    assert!(err.contains("small order"), "{err}");
    // y = 2 has no x on edwards25519.
    let mut off_curve = [0u8; 32];
    off_curve[0] = 2;
    let err = KeySet::parse(&okp(&off_curve)).unwrap_err();
    assert!(err.contains("not a curve point"), "{err}");
    // The fixture's real key still loads.
    assert!(fixture_set().has_kid("ed-1"));
}

#[test]
fn rsa_keys_with_an_even_modulus_or_an_exponent_over_33_bits_are_refused() {
    let good = fixture_jwk("rsa-a");
    let n = B64URL.decode(good["n"].as_str().unwrap()).unwrap();
    let mut even = n.clone();
    *even.last_mut().unwrap() &= 0xfe;
    let with = |n: &[u8], e: &[u8]| {
        let mut k = good.clone();
        k["n"] = json!(b64(n));
        k["e"] = json!(b64(e));
        KeySet::parse(&json!({ "keys": [k] }).to_string()).unwrap_err()
    };
    assert!(with(&even, &[1, 0, 1]).contains("modulus must be odd"));
    assert!(with(&n, &[2, 0, 0, 0, 1]).contains("exponent over 33 bits"));
    // 2^33 - 1 is the largest exponent BoringSSL (the host path) accepts.
    let mut k = good.clone();
    k["e"] = json!(b64(&[1, 0xff, 0xff, 0xff, 0xff]));
    assert!(KeySet::parse(&json!({ "keys": [k] }).to_string()).is_ok());
}

#[test]
fn keys_that_cannot_be_used_safely_are_refused() {
    let rsa = fixture_jwk("rsa-a");
    let with = |extra: Value| {
        let mut k = rsa.clone();
        for (name, v) in extra.as_object().unwrap() {
            k[name] = v.clone();
        }
        k
    };
    let doc = json!({"keys": [
        with(json!({"kid": "ops-sign", "key_ops": ["sign"]})),
        with(json!({"kid": "ops-empty", "key_ops": []})),
        with(json!({"kid": "ops-string", "key_ops": "verify"})),
        with(json!({"kid": "ops-verify", "key_ops": ["sign", "verify"]})),
        {"kty": "oct", "kid": "hs-1byte", "k": b64(&[7])},
        {"kty": "oct", "kid": "hs-15", "k": b64(&[7; 15])},
        {"kty": "oct", "kid": "hs-16", "k": b64(&[7; 16])},
    ]});
    let (set, warnings) = KeySet::parse(&doc.to_string()).unwrap();
    let kids: Vec<_> = set.keys().iter().map(|k| k.kid.clone().unwrap()).collect();
    assert_eq!(kids, ["ops-verify", "hs-16"]);
    for (kid, reason) in [
        ("ops-sign", "does not include \"verify\""),
        ("ops-empty", "does not include \"verify\""),
        ("ops-string", "not an array"),
        ("hs-1byte", "1 byte(s) is too short"),
        ("hs-15", "15 byte(s) is too short"),
    ] {
        let w = warnings.iter().find(|w| w.contains(kid)).unwrap();
        assert!(w.contains(reason), "{w}");
    }
    // No secret is quoted.
    assert!(warnings.iter().all(|w| !w.contains(&b64(&[7; 15]))));
}

#[test]
fn duplicate_members_refuse_the_document() {
    let rsa = fixture_jwk("rsa-a").to_string();
    let inner = rsa.replacen('{', r#"{"n":"AQAB","#, 1);
    for doc in [
        format!(r#"{{"keys":[{inner}]}}"#),
        format!(r#"{{"keys":[{rsa}],"keys":[]}}"#),
        r#"{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","k":"BBBB"}"#.to_string(),
    ] {
        let err = KeySet::parse(&doc).unwrap_err();
        assert!(err.contains("duplicate member"), "{err}");
    }
    assert!(KeySet::parse(&format!(r#"{{"keys":[{rsa}]}}"#)).is_ok());
}
