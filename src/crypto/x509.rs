//! Google's x509 key map, the other JWKS form `jwt_authn` reads: a JSON
//! object of `kid` -> PEM certificate, as published by Google service
//! accounts and Firebase Auth (for example
//! `https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com`):
//!
//! ```json
//! {"d1a8...": "-----BEGIN CERTIFICATE-----\nMIIDHDCC...\n-----END CERTIFICATE-----\n"}
//! ```
//!
//! Each certificate gives its SubjectPublicKeyInfo, read with the RustCrypto
//! `der` crate (a walk over the certificate's outer structure: the rest of
//! the certificate is only skipped, which keeps the module small), and is
//! turned into the equivalent JWK so that every key goes through the same
//! checks ([`crate::crypto::jwks::Key::from_jwk`]).
//! Only the key is used: as in `jwt_authn`, the certificate's validity
//! dates, issuer and signature are not looked at (the document's origin is
//! what is trusted, as for any JWKS).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, UintRef};
use der::{Decode, Reader, SliceReader, Tag, TagNumber};
use serde_json::{json, Map, Value};

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// Whether a JSON object is an x509 key map: not empty, and every member a
/// string that starts as a PEM certificate (the test `jwt_authn` uses).
pub fn is_key_map(obj: &Map<String, Value>) -> bool {
    !obj.is_empty()
        && obj.values().all(|v| {
            v.as_str()
                .is_some_and(|s| s.trim_start().starts_with(BEGIN))
        })
}

/// The JWK (with `kid`) for one certificate of the map; `Err` says why not
/// (never quoting the certificate).
pub fn jwk_of(kid: &str, pem: &str) -> Result<Value, String> {
    let der = pem_body(pem)?;
    let spki = subject_public_key_info(&der)
        .map_err(|_| "certificate is not valid DER X.509".to_string())?;
    let key = spki
        .key
        .as_bytes()
        .ok_or_else(|| "certificate public key is not a whole number of bytes".to_string())?;
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let oid = spki.oid;
    if oid == RSA_ENCRYPTION {
        let (n, e) = rsa_public_key(key)
            .ok_or_else(|| "certificate RSA public key is malformed".to_string())?;
        Ok(json!({"kty": "RSA", "kid": kid, "n": b64(n), "e": b64(e)}))
    } else if oid == EC_PUBLIC_KEY {
        let curve = spki
            .parameters
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        let (crv, len) = match curve {
            Some(c) if c == P256 => ("P-256", 32),
            Some(c) if c == P384 => ("P-384", 48),
            Some(c) if c == P521 => ("P-521", 66),
            _ => return Err("certificate EC key is not on P-256, P-384 or P-521".to_string()),
        };
        let coords = match key.split_first() {
            Some((0x04, xy)) if xy.len() == 2 * len => xy,
            _ => return Err("certificate EC key is not an uncompressed point".to_string()),
        };
        let (x, y) = coords.split_at(len);
        Ok(json!({"kty": "EC", "kid": kid, "crv": crv, "x": b64(x), "y": b64(y)}))
    } else if oid == ED25519 {
        Ok(json!({"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(key)}))
    } else {
        Err(format!("certificate key algorithm {oid} is not supported"))
    }
}

/// What a certificate's `SubjectPublicKeyInfo` says.
struct Spki<'a> {
    oid: ObjectIdentifier,
    parameters: Option<AnyRef<'a>>,
    key: BitStringRef<'a>,
}

/// The `subjectPublicKeyInfo` of an X.509 certificate (RFC 5280 4.1):
///
/// ```text
/// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
/// TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature,
///     issuer, validity, subject, subjectPublicKeyInfo, ... }
/// ```
fn subject_public_key_info(der: &[u8]) -> der::Result<Spki<'_>> {
    let mut reader = SliceReader::new(der)?;
    let spki = reader.sequence(|cert| {
        let spki = cert.sequence(|tbs| {
            let version = Tag::ContextSpecific {
                constructed: true,
                number: TagNumber(0),
            };
            if Tag::peek(tbs)? == version {
                tbs.tlv_bytes()?;
            }
            // serialNumber, signature, issuer, validity, subject
            for _ in 0..5 {
                tbs.tlv_bytes()?;
            }
            let spki = tbs.sequence(|s| {
                let (oid, parameters) = s.sequence(|alg| {
                    let oid = ObjectIdentifier::decode(alg)?;
                    let parameters = Option::<AnyRef<'_>>::decode(alg)?;
                    Ok::<_, der::Error>((oid, parameters))
                })?;
                let key = BitStringRef::decode(s)?;
                Ok::<_, der::Error>(Spki {
                    oid,
                    parameters,
                    key,
                })
            })?;
            // issuerUniqueID, subjectUniqueID, extensions
            while !tbs.is_finished() {
                tbs.tlv_bytes()?;
            }
            Ok::<_, der::Error>(spki)
        })?;
        cert.tlv_bytes()?; // signatureAlgorithm
        BitStringRef::decode(cert)?; // signatureValue
        Ok::<_, der::Error>(spki)
    })?;
    reader.finish()?;
    Ok(spki)
}

/// The DER of exactly one PEM certificate (text around it: whitespace only).
fn pem_body(pem: &str) -> Result<Vec<u8>, String> {
    let bad = || "not one PEM certificate".to_string();
    let rest = pem.trim().strip_prefix(BEGIN).ok_or_else(bad)?;
    let body = rest.strip_suffix(END).ok_or_else(bad)?;
    if body.contains('-') {
        return Err(bad());
    }
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(b64)
        .map_err(|_| "PEM certificate is not valid base64".to_string())
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`
/// (RFC 8017), as big-endian magnitudes.
fn rsa_public_key(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut reader = SliceReader::new(der).ok()?;
    let (n, e) = reader
        .sequence(|r| -> Result<_, der::Error> { Ok((UintRef::decode(r)?, UintRef::decode(r)?)) })
        .ok()?;
    reader.finish().ok()?;
    Some((n.as_bytes(), e.as_bytes()))
}

#[cfg(test)]
mod tests;
