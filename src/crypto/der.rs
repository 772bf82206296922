//! The DER this filter writes for Envoy's `verify_signature`: an ECDSA
//! signature `SEQUENCE { INTEGER r, INTEGER s }` and an RSA
//! SubjectPublicKeyInfo, encoded by the `der` crate (minimal non-negative
//! INTEGERs, definite lengths).

use der::asn1::{BitStringRef, Null, ObjectIdentifier, UintRef};
use der::{Encode, Sequence};

/// rsaEncryption (RFC 8017 appendix C).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// `SEQUENCE { INTEGER, INTEGER }`: an ECDSA signature (r, s) or an RSA
/// public key (n, e).
#[derive(Sequence)]
struct Pair<'a> {
    a: UintRef<'a>,
    b: UintRef<'a>,
}

#[derive(Sequence)]
struct AlgorithmIdentifier {
    algorithm: ObjectIdentifier,
    parameters: Null,
}

#[derive(Sequence)]
struct SubjectPublicKeyInfo<'a> {
    algorithm: AlgorithmIdentifier,
    subject_public_key: BitStringRef<'a>,
}

/// `SEQUENCE { INTEGER a, INTEGER b }` for two non-negative big-endian
/// numbers (leading zeros allowed); `None` if the encoder refuses.
pub fn integer_pair(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    Pair {
        a: UintRef::new(zero_as_byte(a)).ok()?,
        b: UintRef::new(zero_as_byte(b)).ok()?,
    }
    .to_der()
    .ok()
}

/// Zero as one 0x00 byte (an empty INTEGER is not DER).
fn zero_as_byte(x: &[u8]) -> &[u8] {
    if x.iter().all(|&d| d == 0) {
        &[0]
    } else {
        x
    }
}

/// SubjectPublicKeyInfo { rsaEncryption, NULL } of the RSA key (n, e).
pub fn rsa_spki(n: &[u8], e: &[u8]) -> Option<Vec<u8>> {
    let key = integer_pair(n, e)?;
    SubjectPublicKeyInfo {
        algorithm: AlgorithmIdentifier {
            algorithm: RSA_ENCRYPTION,
            parameters: Null,
        },
        subject_public_key: BitStringRef::from_bytes(&key).ok()?,
    }
    .to_der()
    .ok()
}

#[cfg(test)]
mod tests;
