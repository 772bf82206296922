//! Envoy's `verify_signature` foreign function, for RSA: decodes
//! `VerifySignatureArguments { hash_function = 1, public_key = 2 (DER
//! SubjectPublicKeyInfo), signature = 3, text = 4 }`, verifies RSASSA-PKCS1-v1_5
//! with the `rsa` crate (independent of the filter's own RSA code) and answers
//! `VerifySignatureResult { result = 1, error = 2 }`. Anything else (ECDSA
//! included) gets `result: false` with an error text, as a host that cannot
//! verify it: the filter's start-up probe then keeps those algorithms in wasm.

use rsa::pkcs8::DecodePublicKey;
use rsa::sha2::{Digest, Sha256, Sha384, Sha512};
use rsa::{Pkcs1v15Sign, RsaPublicKey};

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The four length-delimited fields; `None` if the bytes are not that message.
fn decode_args(buf: &[u8]) -> Option<[Vec<u8>; 4]> {
    let mut fields: [Vec<u8>; 4] = Default::default();
    let mut pos = 0;
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        if tag & 7 != 2 {
            return None;
        }
        let n = usize::try_from(varint(buf, &mut pos)?).ok()?;
        let value = buf.get(pos..pos.checked_add(n)?)?;
        pos += n;
        if let Some(slot) = (tag >> 3)
            .checked_sub(1)
            .and_then(|i| fields.get_mut(i as usize))
        {
            *slot = value.to_vec();
        }
    }
    Some(fields)
}

fn answer(ok: bool, error: &str) -> Vec<u8> {
    if ok {
        return vec![0x08, 0x01];
    }
    let mut out = vec![0x12, error.len() as u8];
    out.extend_from_slice(error.as_bytes());
    out
}

/// The serialized `VerifySignatureResult` for serialized arguments.
pub fn verify_signature(args: &[u8]) -> Vec<u8> {
    let Some([hash, key, signature, text]) = decode_args(args) else {
        return answer(false, "malformed arguments");
    };
    let Ok(key) = RsaPublicKey::from_public_key_der(&key) else {
        return answer(false, "not an RSA key (this host verifies RSA only)");
    };
    let (scheme, digest) = match hash.as_slice() {
        b"sha256" => (
            Pkcs1v15Sign::new::<Sha256>(),
            Sha256::digest(&text).to_vec(),
        ),
        b"sha384" => (
            Pkcs1v15Sign::new::<Sha384>(),
            Sha384::digest(&text).to_vec(),
        ),
        b"sha512" => (
            Pkcs1v15Sign::new::<Sha512>(),
            Sha512::digest(&text).to_vec(),
        ),
        _ => return answer(false, "unknown hash function"),
    };
    match key.verify(scheme, &digest, &signature) {
        Ok(()) => answer(true, ""),
        Err(_) => answer(false, "Failed to verify signature"),
    }
}
