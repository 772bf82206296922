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
mod tests {
    use super::*;

    #[test]
    fn integers_are_minimal_and_non_negative() {
        let pair = |a: &[u8], b: &[u8]| integer_pair(a, b).unwrap();
        assert_eq!(
            pair(&[], &[0, 0]),
            [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]
        );
        assert_eq!(
            pair(&[0, 0x7f], &[0x80]),
            [0x30, 0x07, 0x02, 0x01, 0x7f, 0x02, 0x02, 0x00, 0x80]
        );
        assert_eq!(
            pair(&[0, 1, 0, 1], &[1]),
            [0x30, 0x08, 0x02, 0x03, 0x01, 0x00, 0x01, 0x02, 0x01, 0x01]
        );
        // Long form lengths.
        let big = pair(&[0xff; 200], &[1]);
        assert_eq!(big[..4], [0x30, 0x81, 0xcf, 0x02]);
        assert_eq!(big[4..7], [0x81, 0xc9, 0x00]);
    }

    #[test]
    fn rsa_spki_layout() {
        let der = rsa_spki(&[0xc5; 256], &[1, 0, 1]).unwrap();
        let prefix = [
            0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
            0x01, 0x01, 0x01, 0x05, 0x00, 0x03, 0x82, 0x01, 0x0f, 0x00, 0x30, 0x82, 0x01, 0x0a,
            0x02, 0x82, 0x01, 0x01, 0x00, 0xc5,
        ];
        assert_eq!(der[..prefix.len()], prefix);
        assert_eq!(der[der.len() - 5..], [0x02, 0x03, 0x01, 0x00, 0x01]);
        assert_eq!(der.len(), 0x126);
    }
}
