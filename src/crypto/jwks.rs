//! JWK / JWKS parsing into verification keys, and raw JWS signature
//! verification for every supported algorithm.
//!
//! Pure Rust, no proxy-wasm. Everything that can be parsed is parsed once, at
//! JWKS parse time (RSA public key, EC verifying key, SubjectPublicKeyInfo
//! DER), so [`Key::verify`] does no parsing. Untrusted input reaches this
//! module: nothing here may panic, and HMAC secrets never appear in any
//! error or warning string (nor in `Debug` output).

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::{Map, Value};

use crate::crypto::rsa_verify::{self, Hash};
use hmac::{EagerHash, Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha384, Sha512};

/// More keys than this in one JWKS document is an error.
pub const MAX_KEYS: usize = 256;

/// Smallest accepted RSA modulus, in bits.
const MIN_RSA_BITS: usize = 2048;
/// Largest accepted RSA modulus, in bits (bounds verification cost).
const MAX_RSA_BITS: usize = 8192;
/// Shortest HMAC secret accepted, in bytes: below 128 bits a secret can be
/// searched for. (RFC 7518 3.2 asks for the hash size; shorter ones down to
/// this are accepted with a warning, see [`crate::safety`].)
pub const MIN_HMAC_SECRET_BYTES: usize = 16;
/// How many skip reasons are quoted in the "no usable key" error.
const MAX_REASONS_IN_ERROR: usize = 3;
/// Untrusted strings (kid, kty, alg...) echoed in messages are cut to this many chars.
const MAX_ECHO_CHARS: usize = 64;

/// SPKI DER prefix for an uncompressed P-256 point (id-ecPublicKey, prime256v1).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// SPKI DER prefix for an uncompressed P-384 point (id-ecPublicKey, secp384r1).
const P384_SPKI_PREFIX: [u8; 23] = [
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];

/// SPKI DER prefix for an uncompressed P-521 point (id-ecPublicKey, secp521r1).
const P521_SPKI_PREFIX: [u8; 25] = [
    0x30, 0x81, 0x9b, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05,
    0x2b, 0x81, 0x04, 0x00, 0x23, 0x03, 0x81, 0x86, 0x00,
];

/// base64url decoder accepting input with or without `=` padding, rejecting
/// the standard alphabet (`+`, `/`) and non-canonical trailing bits.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// JWS signature algorithms supported by the filter (configuration lists
/// them by their JWS names, exactly as written here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
    HS256,
    HS384,
    HS512,
}

impl Alg {
    pub const ALL: [Alg; 13] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::ES512,
        Alg::EdDSA,
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
    ];

    /// A configured algorithm name (exact JOSE name), at `path`.
    pub(crate) fn read(v: &Value, path: &str) -> crate::json_read::Read<crate::diag::OneOf<Alg>> {
        let name = crate::json_read::string(v, path)?;
        Alg::from_name(&name)
            .map(crate::diag::OneOf)
            .ok_or_else(|| {
                let names: Vec<&str> = Alg::ALL.iter().map(|a| a.name()).collect();
                crate::json_read::unknown_value(path, &name, &names)
            })
    }

    /// Exact, case-sensitive JOSE name. `"none"` and anything unknown -> `None`.
    pub fn from_name(s: &str) -> Option<Alg> {
        Alg::ALL.iter().copied().find(|a| a.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::ES512 => "ES512",
            Alg::EdDSA => "EdDSA",
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
        }
    }

    pub fn is_hmac(self) -> bool {
        matches!(self, Alg::HS256 | Alg::HS384 | Alg::HS512)
    }
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Pre-parsed key material.
#[derive(Clone)]
enum Material {
    Rsa {
        key: rsa_verify::PublicKey,
        spki: Vec<u8>,
    },
    P256 {
        key: p256::ecdsa::VerifyingKey,
        spki: Vec<u8>,
    },
    P384 {
        key: p384::ecdsa::VerifyingKey,
        spki: Vec<u8>,
    },
    P521 {
        key: p521::ecdsa::VerifyingKey,
        spki: Vec<u8>,
    },
    Ed25519(ed25519_dalek::VerifyingKey),
    Oct(Vec<u8>),
}

impl Material {
    fn suits(&self, alg: Alg) -> bool {
        use Alg::*;
        matches!(
            (self, alg),
            (
                Material::Rsa { .. },
                RS256 | RS384 | RS512 | PS256 | PS384 | PS512
            ) | (Material::P256 { .. }, ES256)
                | (Material::P384 { .. }, ES384)
                | (Material::P521 { .. }, ES512)
                | (Material::Ed25519(_), EdDSA)
                | (Material::Oct(_), HS256 | HS384 | HS512)
        )
    }
}

/// One usable verification key.
#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    pub alg: Option<Alg>,
    material: Material,
}

impl std::fmt::Debug for Key {
    // Hand-written so that secrets never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Key");
        d.field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kty", &self.kty());
        match &self.material {
            Material::Rsa { key, .. } => d.field("bits", &key.bits()),
            Material::P256 { .. } => d.field("crv", &"P-256"),
            Material::P384 { .. } => d.field("crv", &"P-384"),
            Material::P521 { .. } => d.field("crv", &"P-521"),
            Material::Ed25519(_) => d.field("crv", &"Ed25519"),
            Material::Oct(k) => d.field("secret_len", &k.len()),
        };
        d.finish()
    }
}

impl Key {
    /// Parses one JWK object. `Err` carries the reason (never secret material).
    pub fn from_jwk(jwk: &Value) -> Result<Key, String> {
        match jwk.as_object() {
            Some(obj) => parse_jwk(obj),
            None => Err("JWK is not a JSON object".to_string()),
        }
    }

    /// An HMAC (`oct`) key from raw secret bytes; `None` when the secret is empty.
    pub fn from_hmac_secret(kid: Option<String>, alg: Option<Alg>, secret: &[u8]) -> Option<Key> {
        if secret.is_empty() || alg.is_some_and(|a| !a.is_hmac()) {
            return None;
        }
        Some(Key {
            kid,
            alg,
            material: Material::Oct(secret.to_vec()),
        })
    }

    /// The key type (and curve) suits `alg`, and the JWK's own `alg`, when
    /// present, is `alg`.
    pub fn fits(&self, alg: Alg) -> bool {
        self.material.suits(alg) && self.alg.is_none_or(|a| a == alg)
    }

    /// Verifies a raw JWS signature (already base64url-decoded) over
    /// `signing_input` (`base64url(header) "." base64url(payload)`).
    /// `false` when the key does not fit `alg` or the signature is bad.
    pub fn verify(&self, alg: Alg, signing_input: &[u8], signature: &[u8]) -> bool {
        if !self.fits(alg) {
            return false;
        }
        match &self.material {
            Material::Rsa { key, .. } => {
                // Length and range are checked inside (exactly the modulus length).
                let (pss, hash) = match alg {
                    Alg::RS256 => (false, Hash::Sha256),
                    Alg::RS384 => (false, Hash::Sha384),
                    Alg::RS512 => (false, Hash::Sha512),
                    Alg::PS256 => (true, Hash::Sha256),
                    Alg::PS384 => (true, Hash::Sha384),
                    Alg::PS512 => (true, Hash::Sha512),
                    _ => return false,
                };
                if pss {
                    key.verify_pss(hash, signing_input, signature)
                } else {
                    key.verify_pkcs1v15(hash, signing_input, signature)
                }
            }
            Material::P256 { key, .. } => verify_p256(key, signing_input, signature),
            Material::P384 { key, .. } => verify_p384(key, signing_input, signature),
            Material::P521 { key, .. } => verify_p521(key, signing_input, signature),
            Material::Ed25519(pk) => verify_ed25519(pk, signing_input, signature),
            Material::Oct(secret) => match alg {
                Alg::HS256 => hmac_ok::<Sha256>(secret, signing_input, signature),
                Alg::HS384 => hmac_ok::<Sha384>(secret, signing_input, signature),
                Alg::HS512 => hmac_ok::<Sha512>(secret, signing_input, signature),
                _ => false,
            },
        }
    }

    /// `"RSA"`, `"EC"`, `"OKP"` or `"oct"`.
    pub fn kty(&self) -> &'static str {
        match self.material {
            Material::Rsa { .. } => "RSA",
            Material::P256 { .. } | Material::P384 { .. } | Material::P521 { .. } => "EC",
            Material::Ed25519(_) => "OKP",
            Material::Oct(_) => "oct",
        }
    }

    /// SubjectPublicKeyInfo DER for RSA and EC keys; `None` for OKP and oct.
    pub fn spki_der(&self) -> Option<&[u8]> {
        match &self.material {
            Material::Rsa { spki, .. }
            | Material::P256 { spki, .. }
            | Material::P384 { spki, .. }
            | Material::P521 { spki, .. } => Some(spki.as_slice()),
            Material::Ed25519(_) | Material::Oct(_) => None,
        }
    }

    /// RSA modulus size in bits.
    pub fn rsa_bits(&self) -> Option<usize> {
        match &self.material {
            Material::Rsa { key, .. } => Some(key.bits()),
            _ => None,
        }
    }

    /// HMAC secret length in bytes (oct keys only).
    pub fn secret_len(&self) -> Option<usize> {
        match &self.material {
            Material::Oct(k) => Some(k.len()),
            _ => None,
        }
    }
}

// One function per curve, not inlined into `Key::verify`: V8's compile memory
// for one function grows with its size, and Envoy's allocator keeps it.

#[inline(never)]
fn verify_p256(key: &p256::ecdsa::VerifyingKey, input: &[u8], signature: &[u8]) -> bool {
    use p256::ecdsa::signature::Verifier;
    if signature.len() != 64 {
        return false;
    }
    // from_slice rejects r or s outside [1, n-1].
    match p256::ecdsa::Signature::from_slice(signature) {
        Ok(sig) => key.verify(input, &sig).is_ok(),
        Err(_) => false,
    }
}

#[inline(never)]
fn verify_p384(key: &p384::ecdsa::VerifyingKey, input: &[u8], signature: &[u8]) -> bool {
    use p384::ecdsa::signature::Verifier;
    if signature.len() != 96 {
        return false;
    }
    match p384::ecdsa::Signature::from_slice(signature) {
        Ok(sig) => key.verify(input, &sig).is_ok(),
        Err(_) => false,
    }
}

#[inline(never)]
fn verify_p521(key: &p521::ecdsa::VerifyingKey, input: &[u8], signature: &[u8]) -> bool {
    use p521::ecdsa::signature::Verifier;
    if signature.len() != 132 {
        return false;
    }
    match p521::ecdsa::Signature::from_slice(signature) {
        Ok(sig) => key.verify(input, &sig).is_ok(),
        Err(_) => false,
    }
}

/// RFC 8032 with the strict checks: S < L, and neither R nor the key of small
/// order (no signature "valid for any message").
#[inline(never)]
fn verify_ed25519(key: &ed25519_dalek::VerifyingKey, input: &[u8], signature: &[u8]) -> bool {
    match <[u8; ed25519_dalek::SIGNATURE_LENGTH]>::try_from(signature) {
        Ok(bytes) => key
            .verify_strict(input, &ed25519_dalek::Signature::from_bytes(&bytes))
            .is_ok(),
        Err(_) => false,
    }
}

/// Whether `signature` is the HMAC of `input` with `secret` (compared in
/// constant time).
fn hmac_ok<D: EagerHash>(secret: &[u8], input: &[u8], signature: &[u8]) -> bool {
    let Ok(mut mac) = <Hmac<D> as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(input);
    mac.verify_slice(signature).is_ok()
}

/// A parsed JWKS: the usable keys, in document order.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

impl KeySet {
    /// Parses a JWKS JSON document (`{"keys":[...]}`); a single JWK object
    /// (no `"keys"`, but a `"kty"`) is accepted too, and so is Google's x509
    /// key map (`{"kid": "-----BEGIN CERTIFICATE-----..."}`, [`crate::crypto::x509`]).
    ///
    /// Returns the usable keys plus one warning per skipped key (naming its
    /// kid, or its index when it has none, and the reason). `Err(reason)` when
    /// the text is not JSON / not a JWKS, has more than [`MAX_KEYS`] keys, or
    /// when no usable key remains.
    pub fn parse(json: &str) -> Result<(KeySet, Vec<String>), String> {
        // A member named twice (in a key or anywhere else) is refused: which
        // of the values counts would be a guess.
        let crate::strict_json::UniqueValue(doc) =
            serde_json::from_str(json).map_err(|e| format!("JWKS is not valid JSON: {e}"))?;
        let Some(obj) = doc.as_object() else {
            return Err("JWKS is not a JSON object".to_string());
        };
        let single;
        let converted;
        let mut warnings = Vec::new();
        let entries: &[Value] = match obj.get("keys") {
            Some(Value::Array(arr)) => arr.as_slice(),
            Some(_) => return Err("JWKS \"keys\" member is not an array".to_string()),
            None if obj.contains_key("kty") => {
                single = [doc.clone()];
                &single
            }
            None if crate::crypto::x509::is_key_map(obj) => {
                if obj.len() > MAX_KEYS {
                    return Err(format!(
                        "x509 key map has {} keys, more than the maximum of {MAX_KEYS}",
                        obj.len()
                    ));
                }
                let mut jwks = Vec::with_capacity(obj.len());
                for (kid, pem) in obj {
                    match crate::crypto::x509::jwk_of(kid, pem.as_str().unwrap_or_default()) {
                        Ok(jwk) => jwks.push(jwk),
                        Err(reason) => {
                            warnings.push(format!("key {} skipped: {reason}", echo(kid)))
                        }
                    }
                }
                converted = jwks;
                &converted
            }
            None => {
                return Err(
                    "not a JWKS: no \"keys\" member (and not a JWK or an x509 key map)".to_string(),
                )
            }
        };
        if entries.is_empty() && warnings.is_empty() {
            return Err("no usable key in JWKS: \"keys\" array is empty".to_string());
        }
        if entries.len() > MAX_KEYS {
            return Err(format!(
                "JWKS has {} keys, more than the maximum of {MAX_KEYS}",
                entries.len()
            ));
        }
        let mut keys = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            match Key::from_jwk(entry) {
                Ok(key) => keys.push(key),
                Err(reason) => {
                    warnings.push(format!("{} skipped: {reason}", key_label(entry, index)))
                }
            }
        }
        if keys.is_empty() {
            let reasons: Vec<&str> = warnings
                .iter()
                .take(MAX_REASONS_IN_ERROR)
                .map(String::as_str)
                .collect();
            let more = if warnings.len() > MAX_REASONS_IN_ERROR {
                format!(
                    "; and {} more",
                    warnings.len().saturating_sub(MAX_REASONS_IN_ERROR)
                )
            } else {
                String::new()
            };
            return Err(format!(
                "no usable key in JWKS: {}{more}",
                reasons.join("; ")
            ));
        }
        Ok((KeySet { keys }, warnings))
    }

    pub fn from_keys(keys: Vec<Key>) -> KeySet {
        KeySet { keys }
    }

    /// Keys that may verify a token with this `kid` and `alg`: with a token
    /// kid, the keys whose kid equals it or that have no kid; without one,
    /// every key. Always filtered by [`Key::fits`]. Order preserved.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Alg,
    ) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys.iter().filter(move |k| {
            k.fits(alg)
                && match (kid, k.kid.as_deref()) {
                    (Some(want), Some(have)) => want == have,
                    _ => true,
                }
        })
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[Key] {
        &self.keys
    }
}

mod parse;

use parse::{echo, key_label, parse_jwk};

#[cfg(test)]
mod tests;
