use super::*;
use serde_json::json;

fn rsa_key() -> Key {
    Key::from_jwk(&json!({"kty": "RSA", "n": vectors::RSA_JWK_N, "e": vectors::RSA_JWK_E})).unwrap()
}

fn ec_key(crv: &str) -> Key {
    let (x, y) = match crv {
        "P-256" => (vectors::P256_JWK_X, vectors::P256_JWK_Y),
        "P-384" => (vectors::P384_JWK_X, vectors::P384_JWK_Y),
        _ => (vectors::P521_JWK_X, vectors::P521_JWK_Y),
    };
    Key::from_jwk(&json!({"kty": "EC", "crv": crv, "x": x, "y": y})).unwrap()
}

fn key_for(alg: Alg) -> Key {
    match alg {
        Alg::ES256 => ec_key("P-256"),
        Alg::ES384 => ec_key("P-384"),
        Alg::ES512 => ec_key("P-521"),
        _ => rsa_key(),
    }
}

fn all_host() -> HostAlgs {
    let mut h = HostAlgs::NONE;
    for a in OFFLOADABLE {
        h.insert(a);
    }
    h
}

/// Test-only decoder of the arguments: (field, bytes) pairs.
fn decode_args(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some((&tag, rest)) = b.split_first() {
        let mut r = Reader { buf: rest, pos: 0 };
        let len = r.varint().unwrap() as usize;
        let value = r.take(len as u64).unwrap().to_vec();
        assert_eq!(tag & 7, 2);
        out.push((tag >> 3, value));
        b = &rest[r.pos..];
    }
    out
}

/// Test-only DER `SEQUENCE { INTEGER r, INTEGER s }` -> fixed-size `r || s`.
fn der_to_raw(der: &[u8], size: usize) -> Vec<u8> {
    assert_eq!(der[0], 0x30);
    // Short form, or 0x81 and one length byte (P-521: 128..=139 bytes).
    let (len, header) = if der[1] == 0x81 {
        assert!(der[2] >= 0x80);
        (der[2] as usize, 3)
    } else {
        (der[1] as usize, 2)
    };
    assert_eq!(len, der.len() - header);
    let mut out = Vec::new();
    let mut rest = &der[header..];
    for _ in 0..2 {
        assert_eq!(rest[0], 0x02);
        let len = rest[1] as usize;
        let int = &rest[2..2 + len];
        // Minimal: no superfluous leading zero, and never negative.
        assert!(int[0] & 0x80 == 0);
        assert!(int[0] != 0 || (int.len() > 1 && int[1] & 0x80 != 0));
        let digits = if int[0] == 0 { &int[1..] } else { int };
        out.extend(std::iter::repeat_n(0u8, size - digits.len()));
        out.extend_from_slice(digits);
        rest = &rest[2 + len..];
    }
    assert!(rest.is_empty());
    out
}

/// A stand-in for Envoy: decodes the arguments, checks them, and answers
/// with the pure-Rust verdict (the DER signature converted back).
fn fake_host(key: &Key, alg: Alg) -> impl Fn(&[u8]) -> Result<Vec<u8>, u32> + '_ {
    move |args: &[u8]| {
        let fields = decode_args(args);
        let get = |f: u8| {
            fields
                .iter()
                .find(|(n, _)| *n == f)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get(1), hash_function(alg).unwrap().as_bytes());
        assert_eq!(get(2), key.spki_der().unwrap());
        let sig = match alg {
            Alg::ES256 => der_to_raw(&get(3), 32),
            Alg::ES384 => der_to_raw(&get(3), 48),
            Alg::ES512 => der_to_raw(&get(3), 66),
            _ => get(3),
        };
        let ok = key.verify(alg, &get(4), &sig);
        Ok(if ok {
            vec![0x08, 0x01]
        } else {
            b"\x12\x05wrong".to_vec()
        })
    }
}

#[test]
fn encoding_is_byte_exact() {
    let got = encode_args("sha256", &[1, 2], &[3], b"ab");
    let want = [
        0x0a, 6, b's', b'h', b'a', b'2', b'5', b'6', 0x12, 2, 1, 2, 0x1a, 1, 3, 0x22, 2, b'a', b'b',
    ];
    assert_eq!(got, want);
    // Multi-byte varint lengths (300 = 0xac 0x02), empty fields omitted.
    let big = vec![7u8; 300];
    let got = encode_args("", &big, &[], b"");
    assert_eq!(&got[..3], &[0x12, 0xac, 0x02]);
    assert_eq!(got.len(), 3 + 300);
    let mut v = Vec::new();
    put_varint(&mut v, 0);
    put_varint(&mut v, 127);
    put_varint(&mut v, 128);
    put_varint(&mut v, 16384);
    assert_eq!(v, [0x00, 0x7f, 0x80, 0x01, 0x80, 0x80, 0x01]);
}

#[test]
fn der_conversion_edge_cases() {
    let n = &P256_ORDER;
    let mut raw = [0u8; 64];
    // r = 1, s = 0x7f: one-byte integers, no padding.
    raw[31] = 1;
    raw[63] = 0x7f;
    assert_eq!(
        ecdsa_raw_to_der(&raw, n).unwrap(),
        [0x30, 6, 0x02, 1, 1, 0x02, 1, 0x7f]
    );
    // s = 0x80: high bit set -> a 0x00 is prepended.
    raw[63] = 0x80;
    assert_eq!(
        ecdsa_raw_to_der(&raw, n).unwrap(),
        [0x30, 7, 0x02, 1, 1, 0x02, 2, 0x00, 0x80]
    );
    // Leading zeros stripped: r = 0x00 0x00 0x01 0x02 ...
    let mut raw = [0x11u8; 64];
    raw[0] = 0;
    raw[1] = 0;
    let der = ecdsa_raw_to_der(&raw, n).unwrap();
    assert_eq!(&der[2..4], &[0x02, 30]);
    assert_eq!(der_to_raw(&der, 32), raw);
    // Full-width r with the top bit set: 33-byte integer.
    let mut raw = [0u8; 64];
    raw[..32].copy_from_slice(&P256_ORDER);
    raw[31] -= 1; // r = n - 1
    raw[63] = 1;
    let der = ecdsa_raw_to_der(&raw, n).unwrap();
    assert_eq!(&der[2..5], &[0x02, 33, 0x00]);
    assert_eq!(der_to_raw(&der, 32), raw);
    // r = 0, s = 0, r = n, s = n, s > n: rejected.
    let mut zero_r = [0u8; 64];
    zero_r[63] = 1;
    assert_eq!(ecdsa_raw_to_der(&zero_r, n), None);
    let mut zero_s = [0u8; 64];
    zero_s[31] = 1;
    assert_eq!(ecdsa_raw_to_der(&zero_s, n), None);
    assert_eq!(ecdsa_raw_to_der(&[0u8; 64], n), None);
    let mut r_is_n = [1u8; 64];
    r_is_n[..32].copy_from_slice(n);
    assert_eq!(ecdsa_raw_to_der(&r_is_n, n), None);
    let mut s_is_n = [1u8; 64];
    s_is_n[32..].copy_from_slice(n);
    assert_eq!(ecdsa_raw_to_der(&s_is_n, n), None);
    assert_eq!(ecdsa_raw_to_der(&[0xff; 64], n), None);
    // Wrong lengths.
    assert_eq!(ecdsa_raw_to_der(&[1u8; 63], n), None);
    assert_eq!(ecdsa_raw_to_der(&[1u8; 96], n), None);
    assert_eq!(ecdsa_raw_to_der(&[], n), None);
    // P-384: both integers with the high bit: 2 * (2 + 49) = 102 bytes inside.
    let mut raw = [0u8; 96];
    raw[..48].copy_from_slice(&P384_ORDER);
    raw[47] -= 1;
    raw[48..].copy_from_slice(&P384_ORDER);
    raw[95] -= 2;
    let der = ecdsa_raw_to_der(&raw, &P384_ORDER).unwrap();
    assert_eq!(&der[..2], &[0x30, 102]);
    assert_eq!(der_to_raw(&der, 48), raw);
}

#[test]
fn result_decoding() {
    assert_eq!(decode_result(&[0x08, 0x01]), HostVerdict::Valid);
    assert_eq!(decode_result(&[]), HostVerdict::Invalid(None));
    assert_eq!(decode_result(&[0x08, 0x00]), HostVerdict::Invalid(None));
    assert_eq!(
        decode_result(b"\x12\x1bFailed to verify signature."),
        HostVerdict::Invalid(Some("Failed to verify signature.".into()))
    );
    // Last result wins; unknown fields of every wire type are skipped.
    assert_eq!(
        decode_result(&[0x08, 0x01, 0x08, 0x00]),
        HostVerdict::Invalid(None)
    );
    assert_eq!(
        decode_result(&[
            0x18, 0x05, 0x21, 1, 2, 3, 4, 5, 6, 7, 8, 0x2a, 1, 9, 0x35, 1, 2, 3, 4, 0x08, 0x01
        ]),
        HostVerdict::Valid
    );
    // Non-canonical but valid varint for true (0x81 0x00 = 1).
    assert_eq!(decode_result(&[0x08, 0x81, 0x00]), HostVerdict::Valid);
    // Long error text is cut; invalid UTF-8 is replaced, not a failure.
    let mut long = vec![0x12, 0xe8, 0x07];
    long.extend(std::iter::repeat_n(b'x', 1000));
    match decode_result(&long) {
        HostVerdict::Invalid(Some(e)) => assert_eq!(e.len(), MAX_ERROR_CHARS),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        decode_result(&[0x12, 1, 0xff]),
        HostVerdict::Invalid(Some(_))
    ));
    for garbage in [
        &[0x08][..],                     // truncated varint
        &[0xff],                         // truncated tag
        &[0x12, 5, b'a'],                // length past the end
        &[0x00, 0x01],                   // field 0
        &[0x0b],                         // wire type 3 (group)
        &[0x09, 1, 2, 3, 4, 5, 6, 7, 8], // result with the wrong wire type
        &[0x10, 0x01],                   // error as a varint
        &[
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ], // 11-byte varint
        &[0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f], // huge length
        &[0x21, 1, 2],                   // truncated fixed64
        &[0x35, 1],                      // truncated fixed32
    ] {
        assert_eq!(
            decode_result(garbage),
            HostVerdict::Malformed,
            "{garbage:?}"
        );
    }
}

#[test]
fn decoding_never_panics_on_random_bytes() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in 0..2000usize {
        let bytes: Vec<u8> = (0..len % 40)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let _ = decode_result(&bytes);
    }
}

#[test]
fn vectors_match_our_key_encoding_and_the_pure_path() {
    for alg in OFFLOADABLE {
        let key = key_for(alg);
        let (spki, sig) = vector(alg).unwrap();
        assert_eq!(key.spki_der().unwrap(), spki, "{alg}");
        assert!(key.verify(alg, vectors::MESSAGE, sig), "{alg}");
        let mut bad = sig.to_vec();
        *bad.last_mut().unwrap() ^= 1;
        assert!(!key.verify(alg, vectors::MESSAGE, &bad), "{alg}");
    }
}

#[test]
fn probe_against_a_faithful_host_offloads_everything() {
    let p = probe(|args| {
        let hash = decode_args(args)
            .into_iter()
            .find(|(f, _)| *f == 1)
            .unwrap()
            .1;
        let spki = decode_args(args)
            .into_iter()
            .find(|(f, _)| *f == 2)
            .unwrap()
            .1;
        let alg = OFFLOADABLE
            .into_iter()
            .find(|a| {
                hash_function(*a).unwrap().as_bytes() == hash.as_slice()
                    && key_for(*a).spki_der().unwrap() == spki.as_slice()
            })
            .unwrap();
        let key = key_for(alg);
        let answer = fake_host(&key, alg)(args);
        answer
    });
    assert_eq!(p.host, all_host(), "{:?}", p.problems);
    assert!(p.problems.is_empty());
    assert_eq!(
        p.host.describe(),
        "host: RS256 RS384 RS512 ES256 ES384 ES512; wasm: PS256 PS384 PS512 EdDSA HS256 HS384 HS512"
    );
}

#[test]
fn probe_refuses_hosts_that_lie_or_lack_the_function() {
    let mut calls = 0;
    let p = probe(|_| {
        calls += 1;
        Err(status::NOT_FOUND)
    });
    assert_eq!((p.host, calls), (HostAlgs::NONE, 1));
    assert!(p.problems[0].contains("no \"verify_signature\""));
    // Always true: the bad vector catches it.
    let p = probe(|_| Ok(vec![0x08, 0x01]));
    assert_eq!(p.host, HostAlgs::NONE);
    assert_eq!(p.problems.len(), OFFLOADABLE.len());
    assert!(
        p.problems[0].contains("bad vector: valid"),
        "{}",
        p.problems[0]
    );
    // Always false, with Envoy's key error.
    let p = probe(|_| Ok(b"\x12\x1eFailed to initialize digest verify.".to_vec()));
    assert_eq!(p.host, HostAlgs::NONE);
    // Other statuses and garbage.
    assert_eq!(
        probe(|_| Err(status::INTERNAL_FAILURE)).host,
        HostAlgs::NONE
    );
    assert_eq!(probe(|_| Ok(vec![0xff])).host, HostAlgs::NONE);
    assert_eq!(
        HostAlgs::NONE.describe(),
        format!("host: none; wasm: {}", Alg::ALL.map(|a| a.name()).join(" "))
    );
}

#[test]
fn offloaded_verdicts_match_the_pure_path() {
    let host = all_host();
    for alg in OFFLOADABLE {
        let key = key_for(alg);
        let (_, sig) = vector(alg).unwrap();
        let msg = vectors::MESSAGE;
        let mut cases: Vec<(Vec<u8>, Vec<u8>)> = vec![(msg.to_vec(), sig.to_vec())];
        let mut flipped = sig.to_vec();
        flipped[0] ^= 0x80;
        cases.push((msg.to_vec(), flipped));
        cases.push((b"other".to_vec(), sig.to_vec()));
        cases.push((msg.to_vec(), sig[..sig.len() - 1].to_vec()));
        let mut longer = sig.to_vec();
        longer.push(0);
        cases.push((msg.to_vec(), longer));
        cases.push((msg.to_vec(), vec![0; sig.len()]));
        cases.push((msg.to_vec(), vec![0xff; sig.len()]));
        if let Some(order) = ecdsa_order(alg) {
            // High-S twin (n - s) of the valid signature: ECDSA accepts both.
            let size = sig.len() / 2;
            let s = &sig[size..];
            let mut twin = vec![0u8; size];
            let mut borrow = 0i16;
            for i in (0..size).rev() {
                let d = order[i] as i16 - s[i] as i16 - borrow;
                borrow = i16::from(d < 0);
                twin[i] = (d + 256 * borrow) as u8;
            }
            let mut high = sig[..size].to_vec();
            high.extend_from_slice(&twin);
            cases.push((msg.to_vec(), high));
        }
        for (input, sig) in cases {
            let pure = key.verify(alg, &input, &sig);
            let offloaded = verify_with(host, fake_host(&key, alg), &key, alg, &input, &sig);
            assert_eq!(pure, offloaded, "{alg} {sig:02x?}");
        }
        // Host failures and garbage fall back to the pure verdict.
        assert!(verify_with(
            host,
            |_| Err(status::INTERNAL_FAILURE),
            &key,
            alg,
            msg,
            sig
        ));
        assert!(verify_with(host, |_| Ok(vec![0xff]), &key, alg, msg, sig));
        // Not offloaded: the host is never asked.
        assert!(verify_with(
            HostAlgs::NONE,
            |_| panic!("called"),
            &key,
            alg,
            msg,
            sig
        ));
    }
}

#[test]
fn shape_rejections_never_reach_the_host() {
    let host = all_host();
    let never = |_: &[u8]| -> Result<Vec<u8>, u32> { panic!("host called") };
    let rsa = rsa_key();
    let msg = vectors::MESSAGE;
    assert_eq!(
        prepare(host, &rsa, Alg::RS256, msg, &[1; 255]),
        Prepared::Reject
    );
    assert_eq!(
        prepare(host, &rsa, Alg::RS256, msg, &[1; 257]),
        Prepared::Reject
    );
    assert!(!verify_with(host, never, &rsa, Alg::RS256, msg, &[1; 255]));
    // RSA key with an EC alg, EC key with RS / the other curve.
    assert_eq!(
        prepare(host, &rsa, Alg::ES256, msg, &[1; 64]),
        Prepared::Reject
    );
    let p256 = ec_key("P-256");
    assert_eq!(
        prepare(host, &p256, Alg::RS256, msg, &[1; 256]),
        Prepared::Reject
    );
    assert_eq!(
        prepare(host, &p256, Alg::ES384, msg, &[1; 96]),
        Prepared::Reject
    );
    assert_eq!(
        prepare(host, &p256, Alg::ES256, msg, &[0; 64]),
        Prepared::Reject
    );
    // PS*, EdDSA and HS* are never offloaded.
    for alg in [Alg::PS256, Alg::PS384, Alg::PS512, Alg::EdDSA, Alg::HS256] {
        let mut h = host;
        h.insert(alg);
        assert!(!h.contains(alg));
        assert_eq!(prepare(h, &rsa, alg, msg, &[1; 256]), Prepared::Pure);
    }
    // An RSA-JWK pinned to RS256 does not fit RS384.
    let pinned =
        Key::from_jwk(&json!({"kty": "RSA", "alg": "RS256", "n": vectors::RSA_JWK_N, "e": "AQAB"}))
            .unwrap();
    assert_eq!(
        prepare(host, &pinned, Alg::RS384, msg, &[1; 256]),
        Prepared::Reject
    );
}
