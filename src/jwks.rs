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
use rsa::pkcs8::EncodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPublicKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// More keys than this in one JWKS document is an error.
pub const MAX_KEYS: usize = 256;

/// Smallest accepted RSA modulus, in bits.
const MIN_RSA_BITS: usize = 2048;
/// Largest accepted RSA modulus, in bits (bounds verification cost).
const MAX_RSA_BITS: usize = 8192;
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

/// base64url decoder accepting input with or without `=` padding, rejecting
/// the standard alphabet (`+`, `/`) and non-canonical trailing bits.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// JWS signature algorithms supported by the filter.
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
    EdDSA,
    HS256,
    HS384,
    HS512,
}

impl Alg {
    pub const ALL: [Alg; 12] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
    ];

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
        key: RsaPublicKey,
        bits: usize,
        /// Modulus length in bytes: the exact signature length.
        size: usize,
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
    Ed25519(ed25519_compact::PublicKey),
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
            Material::Rsa { bits, .. } => d.field("bits", bits),
            Material::P256 { .. } => d.field("crv", &"P-256"),
            Material::P384 { .. } => d.field("crv", &"P-384"),
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
            Material::Rsa { key, size, .. } => {
                if signature.len() != *size {
                    return false;
                }
                let res = match alg {
                    Alg::RS256 => key.verify(
                        Pkcs1v15Sign::new::<Sha256>(),
                        &Sha256::digest(signing_input),
                        signature,
                    ),
                    Alg::RS384 => key.verify(
                        Pkcs1v15Sign::new::<Sha384>(),
                        &Sha384::digest(signing_input),
                        signature,
                    ),
                    Alg::RS512 => key.verify(
                        Pkcs1v15Sign::new::<Sha512>(),
                        &Sha512::digest(signing_input),
                        signature,
                    ),
                    Alg::PS256 => key.verify(
                        Pss::new::<Sha256>(),
                        &Sha256::digest(signing_input),
                        signature,
                    ),
                    Alg::PS384 => key.verify(
                        Pss::new::<Sha384>(),
                        &Sha384::digest(signing_input),
                        signature,
                    ),
                    Alg::PS512 => key.verify(
                        Pss::new::<Sha512>(),
                        &Sha512::digest(signing_input),
                        signature,
                    ),
                    _ => return false,
                };
                res.is_ok()
            }
            Material::P256 { key, .. } => {
                use p256::ecdsa::signature::Verifier;
                if signature.len() != 64 {
                    return false;
                }
                // from_slice rejects r or s outside [1, n-1].
                match p256::ecdsa::Signature::from_slice(signature) {
                    Ok(sig) => key.verify(signing_input, &sig).is_ok(),
                    Err(_) => false,
                }
            }
            Material::P384 { key, .. } => {
                use p384::ecdsa::signature::Verifier;
                if signature.len() != 96 {
                    return false;
                }
                match p384::ecdsa::Signature::from_slice(signature) {
                    Ok(sig) => key.verify(signing_input, &sig).is_ok(),
                    Err(_) => false,
                }
            }
            Material::Ed25519(pk) => {
                if signature.len() != ed25519_compact::Signature::BYTES {
                    return false;
                }
                match ed25519_compact::Signature::from_slice(signature) {
                    Ok(sig) => pk.verify(signing_input, &sig).is_ok(),
                    Err(_) => false,
                }
            }
            Material::Oct(secret) => match alg {
                Alg::HS256 => ct_eq(&hmac_sha256::HMAC::mac(signing_input, secret), signature),
                Alg::HS384 => ct_eq(
                    &hmac_sha512::sha384::HMAC::mac(signing_input, secret),
                    signature,
                ),
                Alg::HS512 => ct_eq(&hmac_sha512::HMAC::mac(signing_input, secret), signature),
                _ => false,
            },
        }
    }

    /// `"RSA"`, `"EC"`, `"OKP"` or `"oct"`.
    pub fn kty(&self) -> &'static str {
        match self.material {
            Material::Rsa { .. } => "RSA",
            Material::P256 { .. } | Material::P384 { .. } => "EC",
            Material::Ed25519(_) => "OKP",
            Material::Oct(_) => "oct",
        }
    }

    /// SubjectPublicKeyInfo DER for RSA and EC keys; `None` for OKP and oct.
    pub fn spki_der(&self) -> Option<&[u8]> {
        match &self.material {
            Material::Rsa { spki, .. }
            | Material::P256 { spki, .. }
            | Material::P384 { spki, .. } => Some(spki.as_slice()),
            Material::Ed25519(_) | Material::Oct(_) => None,
        }
    }

    /// RSA modulus size in bits.
    pub fn rsa_bits(&self) -> Option<usize> {
        match &self.material {
            Material::Rsa { bits, .. } => Some(*bits),
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

/// Constant-time equality (length is not secret: it is the MAC length).
fn ct_eq(expected: &[u8], given: &[u8]) -> bool {
    if expected.len() != given.len() {
        return false;
    }
    let diff = expected
        .iter()
        .zip(given.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(diff) == 0
}

/// A parsed JWKS: the usable keys, in document order.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

impl KeySet {
    /// Parses a JWKS JSON document (`{"keys":[...]}`); a single JWK object
    /// (no `"keys"`, but a `"kty"`) is accepted too.
    ///
    /// Returns the usable keys plus one warning per skipped key (naming its
    /// kid, or its index when it has none, and the reason). `Err(reason)` when
    /// the text is not JSON / not a JWKS, has more than [`MAX_KEYS`] keys, or
    /// when no usable key remains.
    pub fn parse(json: &str) -> Result<(KeySet, Vec<String>), String> {
        let doc: Value =
            serde_json::from_str(json).map_err(|e| format!("JWKS is not valid JSON: {e}"))?;
        let Some(obj) = doc.as_object() else {
            return Err("JWKS is not a JSON object".to_string());
        };
        let single;
        let entries: &[Value] = match obj.get("keys") {
            Some(Value::Array(arr)) => arr.as_slice(),
            Some(_) => return Err("JWKS \"keys\" member is not an array".to_string()),
            None if obj.contains_key("kty") => {
                single = [doc.clone()];
                &single
            }
            None => return Err("not a JWKS: no \"keys\" member (and not a JWK)".to_string()),
        };
        if entries.is_empty() {
            return Err("no usable key in JWKS: \"keys\" array is empty".to_string());
        }
        if entries.len() > MAX_KEYS {
            return Err(format!(
                "JWKS has {} keys, more than the maximum of {MAX_KEYS}",
                entries.len()
            ));
        }
        let mut keys = Vec::with_capacity(entries.len());
        let mut warnings = Vec::new();
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

/// Truncates and escapes an untrusted string for inclusion in a message.
fn echo(s: &str) -> String {
    let cut: String = s.chars().take(MAX_ECHO_CHARS).collect();
    if cut.len() < s.len() {
        format!("{:?}...", cut)
    } else {
        format!("{:?}", cut)
    }
}

/// "key \"kid\"" or "key #index" for warnings.
fn key_label(entry: &Value, index: usize) -> String {
    match entry.get("kid").and_then(Value::as_str) {
        Some(kid) => format!("key {}", echo(kid)),
        None => format!("key #{index}"),
    }
}

/// An optional string member; JSON `null` counts as absent.
fn opt_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(format!("\"{name}\" is not a string")),
    }
}

fn req_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    opt_str(obj, name)?.ok_or_else(|| format!("missing \"{name}\""))
}

/// A required base64url member, decoded. Errors never echo the value.
fn b64_member(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = req_str(obj, name)?;
    B64URL
        .decode(text)
        .map_err(|_| format!("\"{name}\" is not valid base64url"))
}

fn parse_jwk(obj: &Map<String, Value>) -> Result<Key, String> {
    let kid = opt_str(obj, "kid")?.map(str::to_string);
    let kty = req_str(obj, "kty")?;
    if let Some(usage) = opt_str(obj, "use")? {
        if usage != "sig" {
            return Err(format!("\"use\" is {}, not \"sig\"", echo(usage)));
        }
    }
    let alg_name = opt_str(obj, "alg")?;
    let material = match kty {
        "RSA" => parse_rsa(obj)?,
        "EC" => parse_ec(obj)?,
        "OKP" => parse_okp(obj)?,
        "oct" => parse_oct(obj)?,
        other => return Err(format!("unsupported kty {}", echo(other))),
    };
    let alg = match alg_name {
        None => None,
        Some(name) => match Alg::from_name(name) {
            Some(a) if material.suits(a) => Some(a),
            Some(a) => return Err(format!("alg {a} does not suit a {kty} key")),
            None => return Err(format!("unsupported alg {}", echo(name))),
        },
    };
    Ok(Key { kid, alg, material })
}

/// Strips leading zero bytes.
fn trim_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or(&[])
}

fn parse_rsa(obj: &Map<String, Value>) -> Result<Material, String> {
    let n_raw = b64_member(obj, "n")?;
    let e_raw = b64_member(obj, "e")?;
    let n_bytes = trim_zeros(&n_raw);
    let e_bytes = trim_zeros(&e_raw);
    // Quick size gate before any big-number work.
    if n_bytes.len() > MAX_RSA_BITS / 8 {
        return Err(format!("RSA key over {MAX_RSA_BITS} bits"));
    }
    let e_odd = e_bytes.last().is_some_and(|b| b & 1 == 1);
    let e_gt_one = e_bytes.len() > 1 || e_bytes.first().is_some_and(|&b| b > 1);
    if !e_odd || !e_gt_one {
        return Err("RSA exponent must be odd and greater than 1".to_string());
    }
    let n = BigUint::from_bytes_be(n_bytes);
    let bits = n.bits();
    if bits < MIN_RSA_BITS {
        return Err(format!("RSA key under {MIN_RSA_BITS} bits ({bits} bits)"));
    }
    let e = BigUint::from_bytes_be(e_bytes);
    let key = RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
        .map_err(|err| format!("invalid RSA key: {err}"))?;
    let spki = key
        .to_public_key_der()
        .map_err(|_| "cannot encode RSA key as SPKI".to_string())?
        .into_vec();
    let size = key.size();
    Ok(Material::Rsa {
        key,
        bits,
        size,
        spki,
    })
}

/// Uncompressed SEC1 point `04 || x || y`, coordinates left-padded to `len`.
fn sec1_point(obj: &Map<String, Value>, len: usize) -> Result<Vec<u8>, String> {
    let x = b64_member(obj, "x")?;
    let y = b64_member(obj, "y")?;
    let mut point = Vec::with_capacity(len.saturating_mul(2).saturating_add(1));
    point.push(0x04);
    for (name, c) in [("x", &x), ("y", &y)] {
        if c.is_empty() || c.len() > len {
            return Err(format!("EC \"{name}\" has the wrong length ({})", c.len()));
        }
        point.resize(point.len().saturating_add(len.saturating_sub(c.len())), 0);
        point.extend_from_slice(c);
    }
    Ok(point)
}

fn parse_ec(obj: &Map<String, Value>) -> Result<Material, String> {
    let crv = req_str(obj, "crv")?;
    match crv {
        "P-256" => {
            let point = sec1_point(obj, 32)?;
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                .map_err(|_| "EC point is not on curve P-256".to_string())?;
            let mut spki = P256_SPKI_PREFIX.to_vec();
            spki.extend_from_slice(&point);
            Ok(Material::P256 { key, spki })
        }
        "P-384" => {
            let point = sec1_point(obj, 48)?;
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                .map_err(|_| "EC point is not on curve P-384".to_string())?;
            let mut spki = P384_SPKI_PREFIX.to_vec();
            spki.extend_from_slice(&point);
            Ok(Material::P384 { key, spki })
        }
        other => Err(format!("unsupported EC crv {}", echo(other))),
    }
}

fn parse_okp(obj: &Map<String, Value>) -> Result<Material, String> {
    let crv = req_str(obj, "crv")?;
    if crv != "Ed25519" {
        return Err(format!("unsupported OKP crv {}", echo(crv)));
    }
    let x = b64_member(obj, "x")?;
    if x.len() != ed25519_compact::PublicKey::BYTES {
        return Err(format!("Ed25519 \"x\" must be 32 bytes, not {}", x.len()));
    }
    ed25519_compact::PublicKey::from_slice(&x)
        .map(Material::Ed25519)
        .map_err(|_| "invalid Ed25519 public key".to_string())
}

fn parse_oct(obj: &Map<String, Value>) -> Result<Material, String> {
    let k = b64_member(obj, "k")?;
    if k.is_empty() {
        return Err("oct key \"k\" is empty".to_string());
    }
    Ok(Material::Oct(k))
}

#[cfg(test)]
mod tests {
    use super::*;
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
            Alg::EdDSA => Ed25519KeyPair::generate().sign(claims()).unwrap(),
            Alg::HS256 => HS256Key::generate().authenticate(claims()).unwrap(),
            Alg::HS384 => HS384Key::generate().authenticate(claims()).unwrap(),
            Alg::HS512 => HS512Key::generate().authenticate(claims()).unwrap(),
        }
    }

    fn default_pem(alg: Alg) -> &'static str {
        match alg {
            Alg::ES256 => "ec256.pem",
            Alg::ES384 => "ec384.pem",
            Alg::EdDSA => "ed25519.pem",
            Alg::HS256 | Alg::HS384 | Alg::HS512 => "hs.secret",
            _ => "rsa2048.pem",
        }
    }

    fn default_kid(alg: Alg) -> &'static str {
        match alg {
            Alg::ES256 => "ec-256",
            Alg::ES384 => "ec-384",
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
            "none", "None", "rs256", "ES512", "HS1", "", "RS256 ", "EDDSA", "Ed25519",
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
            let v = trim_zeros(v);
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
    fn fixture_jwks_yields_seven_keys() {
        let set = fixture_set();
        assert_eq!(set.len(), 7);
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
        p521["crv"] = json!("P-521");
        p521["kid"] = json!("bad-p521");

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
            ("bad-p521", "unsupported EC crv"),
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
        let one = json!({"kty":"oct","k":"c2VjcmV0"});
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
}
