use super::*;
use rsa::traits::PublicKeyParts;
use rsa::BigUint;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
            })
            .collect()
    }
}

/// An odd modulus of exactly `bits` bits (not an RSA modulus: Montgomery
/// arithmetic only needs it odd).
fn odd_modulus(rng: &mut Rng, bits: usize) -> Vec<u8> {
    let mut n = rng.bytes(bits.div_ceil(8));
    let top_bits = bits - 8 * (n.len() - 1);
    n[0] &= 0xff >> (8 - top_bits);
    n[0] |= 1 << (top_bits - 1);
    *n.last_mut().unwrap() |= 1;
    n
}

fn fixture_rsa(kid: &str) -> (Vec<u8>, Vec<u8>) {
    let path = format!(
        "{}/tests/fixtures/keys/jwks.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let jwks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let k = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap();
    let d = |f: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(k[f].as_str().unwrap())
            .unwrap()
    };
    (d("n"), d("e"))
}

/// `s^e mod n` here against num-bigint's `modpow`, for many `s`, on moduli
/// of many sizes (one limb, limb boundaries, bit lengths 1 mod 8) and on the
/// fixture keys.
#[test]
fn public_operation_matches_modpow() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut moduli: Vec<(Vec<u8>, u64)> = [
        3, 17, 31, 32, 33, 63, 64, 65, 95, 96, 97, 521, 1025, 2047, 2048, 2049, 3072, 4096,
    ]
    .iter()
    .map(|&bits| (odd_modulus(&mut rng, bits), 65537))
    .collect();
    moduli.push((odd_modulus(&mut rng, 2048), 3));
    moduli.push((odd_modulus(&mut rng, 2048), (1 << 33) - 1));
    for kid in ["rsa-a", "rsa-b", "rsa-3072"] {
        let (n, e) = fixture_rsa(kid);
        moduli.push((n, e.iter().fold(0u64, |a, &b| a << 8 | u64::from(b))));
    }
    for (n_be, e) in &moduli {
        let key = PublicKey::new(n_be, &e.to_be_bytes()).expect("valid key");
        let n = BigUint::from_bytes_be(n_be);
        assert_eq!(key.bits(), n.bits());
        let mut samples = vec![vec![0u8; key.size()], {
            let mut one = vec![0u8; key.size()];
            *one.last_mut().unwrap() = 1;
            one
        }];
        let n_minus_1 = (&n - 1u32).to_bytes_be();
        let mut padded = vec![0u8; key.size() - n_minus_1.len()];
        padded.extend_from_slice(&n_minus_1);
        samples.push(padded);
        for _ in 0..20 {
            let s = BigUint::from_bytes_be(&rng.bytes(key.size())) % &n;
            let mut b = vec![0u8; key.size() - s.to_bytes_be().len()];
            b.extend_from_slice(&s.to_bytes_be());
            samples.push(b);
        }
        for s in samples {
            let want = BigUint::from_bytes_be(&s).modpow(&BigUint::from(*e), &n);
            let got = key.public_op(&s).expect("s < n of the right length");
            assert_eq!(got.len(), key.size());
            assert_eq!(BigUint::from_bytes_be(&got), want, "n {} bits", n.bits());
        }
    }
}

#[test]
fn signatures_not_below_the_modulus_or_of_another_length_are_refused() {
    let mut rng = Rng(7);
    let n_be = odd_modulus(&mut rng, 2048);
    let key = PublicKey::new(&n_be, &[1, 0, 1]).unwrap();
    assert!(key.public_op(&n_be).is_none(), "s = n");
    assert!(key.public_op(&[0xff; 256]).is_none(), "s > n");
    assert!(key.public_op(&[0; 255]).is_none(), "one byte short");
    assert!(key.public_op(&[0; 257]).is_none(), "one byte long");
    assert!(key.public_op(&[]).is_none());
    assert!(!key.verify_pkcs1v15(Hash::Sha256, b"m", &[0xff; 256]));
    assert!(!key.verify_pss(Hash::Sha256, b"m", &[0; 12]));
}

#[test]
fn only_odd_moduli_and_odd_exponents_from_3_to_64_bits() {
    let n = [0xc3, 0x5b, 0x01];
    assert!(PublicKey::new(&n, &[3]).is_some());
    assert!(
        PublicKey::new(&[0, 0, 0xc3, 0x5b, 0x01], &[0, 1, 0, 1]).is_some(),
        "leading zeros"
    );
    assert!(
        PublicKey::new(&[0xc3, 0x5b, 0x02], &[3]).is_none(),
        "even n"
    );
    assert!(PublicKey::new(&[1], &[3]).is_none(), "n = 1");
    assert!(PublicKey::new(&[], &[3]).is_none(), "n = 0");
    assert!(PublicKey::new(&[0, 0], &[3]).is_none(), "n = 0, padded");
    assert!(PublicKey::new(&n, &[1]).is_none(), "e = 1");
    assert!(PublicKey::new(&n, &[4]).is_none(), "even e");
    assert!(PublicKey::new(&n, &[]).is_none(), "e = 0");
    assert!(PublicKey::new(&n, &[1; 9]).is_none(), "e over 64 bits");
    assert!(PublicKey::new(&n, &[0xff; 8]).is_some(), "e of 64 bits");
}

/// Signatures made by the `rsa` crate (PKCS#1 v1.5, and PSS with a salt as
/// long as the hash) verify; the same under another hash, a changed message
/// or a flipped signature bit does not.
#[test]
fn rsa_crate_signatures_verify_and_tampering_does_not() {
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::sha2::{Sha256, Sha384, Sha512};
    use rsa::{Pkcs1v15Sign, RsaPrivateKey};
    let pem = std::fs::read_to_string(format!(
        "{}/tests/fixtures/keys/rsa3072.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let sk = RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
    let key = PublicKey::new(&sk.n().to_bytes_be(), &sk.e().to_bytes_be()).unwrap();
    let msg = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0";
    let mut rng = Rng(42);
    for hash in [Hash::Sha256, Hash::Sha384, Hash::Sha512] {
        let digest = hash.digest(&[msg]);
        let (pkcs1, pss) = match hash {
            Hash::Sha256 => (
                sk.sign(Pkcs1v15Sign::new::<Sha256>(), &digest).unwrap(),
                sk.sign_with_rng(&mut DetRng(&mut rng), rsa::Pss::new::<Sha256>(), &digest)
                    .unwrap(),
            ),
            Hash::Sha384 => (
                sk.sign(Pkcs1v15Sign::new::<Sha384>(), &digest).unwrap(),
                sk.sign_with_rng(&mut DetRng(&mut rng), rsa::Pss::new::<Sha384>(), &digest)
                    .unwrap(),
            ),
            Hash::Sha512 => (
                sk.sign(Pkcs1v15Sign::new::<Sha512>(), &digest).unwrap(),
                sk.sign_with_rng(&mut DetRng(&mut rng), rsa::Pss::new::<Sha512>(), &digest)
                    .unwrap(),
            ),
        };
        assert!(key.verify_pkcs1v15(hash, msg, &pkcs1), "{hash:?}");
        assert!(key.verify_pss(hash, msg, &pss), "{hash:?}");
        assert!(
            !key.verify_pss(hash, msg, &pkcs1),
            "padding confusion {hash:?}"
        );
        assert!(
            !key.verify_pkcs1v15(hash, msg, &pss),
            "padding confusion {hash:?}"
        );
        assert!(!key.verify_pkcs1v15(hash, b"other", &pkcs1));
        assert!(!key.verify_pss(hash, b"other", &pss));
        for other in [Hash::Sha256, Hash::Sha384, Hash::Sha512]
            .into_iter()
            .filter(|&h| h != hash)
        {
            assert!(!key.verify_pkcs1v15(other, msg, &pkcs1));
            assert!(!key.verify_pss(other, msg, &pss));
        }
        for sig in [&pkcs1, &pss] {
            for i in [0, sig.len() / 2, sig.len() - 1] {
                let mut bad = sig.clone();
                bad[i] ^= 0x01;
                assert!(!key.verify_pkcs1v15(hash, msg, &bad));
                assert!(!key.verify_pss(hash, msg, &bad));
            }
        }
    }
}

/// The `rand_core` interface the `rsa` crate's PSS signing wants, from the
/// deterministic generator above.
struct DetRng<'a>(&'a mut Rng);
impl rsa::rand_core::RngCore for DetRng<'_> {
    fn next_u32(&mut self) -> u32 {
        u32::from_le_bytes(self.0.bytes(4).try_into().unwrap())
    }
    fn next_u64(&mut self) -> u64 {
        u64::from_le_bytes(self.0.bytes(8).try_into().unwrap())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.copy_from_slice(&self.0.bytes(dest.len()));
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rsa::rand_core::CryptoRng for DetRng<'_> {}

/// The hand-written SubjectPublicKeyInfo is byte for byte the `rsa` crate's.
#[test]
fn spki_der_matches_the_rsa_crate() {
    use rsa::pkcs8::EncodePublicKey;
    let mut rng = Rng(3);
    let mut cases: Vec<(Vec<u8>, Vec<u8>)> = ["rsa-a", "rsa-b", "rsa-3072"]
        .iter()
        .map(|k| fixture_rsa(k))
        .collect();
    cases.push((odd_modulus(&mut rng, 8192), vec![0x01, 0x00, 0x01]));
    cases.push((odd_modulus(&mut rng, 2047), vec![0x03]));
    cases.push((
        odd_modulus(&mut rng, 2048),
        vec![0x01, 0xff, 0xff, 0xff, 0xff],
    ));
    for (n, e) in cases {
        let ours = PublicKey::new(&n, &e).unwrap().spki_der();
        let theirs = rsa::RsaPublicKey::new_with_max_size(
            BigUint::from_bytes_be(&n),
            BigUint::from_bytes_be(&e),
            8192,
        )
        .unwrap()
        .to_public_key_der()
        .unwrap();
        assert_eq!(ours, theirs.as_bytes());
    }
}

/// Many random odd moduli of every size up to 2200 bits, random exponents:
/// the Montgomery arithmetic against num-bigint.
#[test]
fn random_moduli_and_exponents_match_modpow() {
    let mut rng = Rng(0x5eed);
    for round in 0..300 {
        let size_byte = rng.bytes(2);
        let bits = 2 + (usize::from(u16::from_be_bytes([size_byte[0], size_byte[1]])) % 2199);
        let n_be = odd_modulus(&mut rng, bits);
        let e = u64::from_be_bytes(rng.bytes(8).try_into().unwrap()) >> (round % 62) | 3;
        let Some(key) = PublicKey::new(&n_be, &e.to_be_bytes()) else {
            panic!("odd n of {bits} bits, odd e {e} refused");
        };
        let n = BigUint::from_bytes_be(&n_be);
        for _ in 0..3 {
            let s = BigUint::from_bytes_be(&rng.bytes(key.size())) % &n;
            let mut b = vec![0u8; key.size() - s.to_bytes_be().len()];
            b.extend_from_slice(&s.to_bytes_be());
            let want = s.modpow(&BigUint::from(e), &n);
            let got = key.public_op(&b).expect("s < n");
            assert_eq!(BigUint::from_bytes_be(&got), want, "n {bits} bits, e {e}");
        }
    }
}

#[test]
fn leading_zeros_are_trimmed_and_nothing_else() {
    assert_eq!(trim_leading_zeros(&[0, 0, 1, 0, 2]), &[1, 0, 2]);
    assert_eq!(trim_leading_zeros(&[7, 0]), &[7, 0]);
    assert_eq!(trim_leading_zeros(&[0, 0, 0]), &[] as &[u8]);
    assert_eq!(trim_leading_zeros(&[]), &[] as &[u8]);
}
