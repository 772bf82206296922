//! Signature verification offloaded to Envoy's `verify_signature` foreign
//! function (BoringSSL), as pure data: which algorithms the host can do, the
//! `VerifySignatureArguments` protobuf encoding, the ECDSA `r||s` -> DER
//! conversion, `VerifySignatureResult` decoding, and the configure-time
//! known-answer probe. The host call itself is a closure passed in by the
//! glue (`filter::host`), so everything here is tested natively.
//!
//! Verdicts must match the pure-Rust path ([`Key::verify`]) exactly, so every
//! input the pure path rejects on shape alone (RSA signature length other
//! than the modulus length, ECDSA `r` or `s` equal to 0 or not below the
//! curve order, a key that does not fit the algorithm) is rejected here
//! before the host is asked. Facts about the host function (encodings,
//! which algorithms work) are in `docs/performance.md`, section "How
//! verification is made cheap".

use crate::crypto::der;
use crate::crypto::jwks::{Alg, Key};

#[allow(dead_code)] // the JWK members are for the tests
#[rustfmt::skip] // generated
mod vectors;

/// Name of Envoy's foreign function.
pub const FUNCTION: &str = "verify_signature";

/// Algorithms the host can verify (PS* always give false: Envoy uses
/// PKCS#1 v1.5 padding; EdDSA is refused because Envoy passes a digest).
pub const OFFLOADABLE: [Alg; 6] = [
    Alg::RS256,
    Alg::RS384,
    Alg::RS512,
    Alg::ES256,
    Alg::ES384,
    Alg::ES512,
];

/// Order `n` of P-256, big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
/// Order `n` of P-384, big-endian.
const P384_ORDER: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

/// Order `n` of P-521, big-endian (66 bytes, as in a JWS signature).
const P521_ORDER: [u8; 66] = [
    0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xfa, 0x51, 0x86, 0x87, 0x83, 0xbf, 0x2f, 0x96, 0x6b, 0x7f, 0xcc, 0x01, 0x48, 0xf7, 0x09,
    0xa5, 0xd0, 0x3b, 0xb5, 0xc9, 0xb8, 0x89, 0x9c, 0x47, 0xae, 0xbb, 0x6f, 0xb7, 0x1e, 0x91, 0x38,
    0x64, 0x09,
];

/// The curve order for an ECDSA algorithm.
fn ecdsa_order(alg: Alg) -> Option<&'static [u8]> {
    match alg {
        Alg::ES256 => Some(&P256_ORDER),
        Alg::ES384 => Some(&P384_ORDER),
        Alg::ES512 => Some(&P521_ORDER),
        _ => None,
    }
}

/// proxy-wasm status codes the host call can return (ABI 0.2.1).
pub mod status {
    pub const OK: u32 = 0;
    pub const NOT_FOUND: u32 = 1;
    pub const BAD_ARGUMENT: u32 = 2;
    pub const SERIALIZATION_FAILURE: u32 = 3;
    pub const PARSE_FAILURE: u32 = 4;
    pub const INTERNAL_FAILURE: u32 = 10;
    pub const UNIMPLEMENTED: u32 = 12;

    /// A readable name for logs.
    pub fn name(code: u32) -> String {
        match code {
            OK => "Ok".into(),
            NOT_FOUND => "NotFound".into(),
            BAD_ARGUMENT => "BadArgument".into(),
            SERIALIZATION_FAILURE => "SerializationFailure".into(),
            PARSE_FAILURE => "ParseFailure".into(),
            INTERNAL_FAILURE => "InternalFailure".into(),
            UNIMPLEMENTED => "Unimplemented".into(),
            other => format!("status {other}"),
        }
    }
}

/// `hash_function` for an offloadable algorithm.
pub fn hash_function(alg: Alg) -> Option<&'static str> {
    match alg {
        Alg::RS256 | Alg::ES256 => Some("sha256"),
        Alg::RS384 | Alg::ES384 => Some("sha384"),
        Alg::RS512 | Alg::ES512 => Some("sha512"),
        _ => None,
    }
}

/// The set of algorithms verified by the host (a bit per `Alg::ALL` entry).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostAlgs(u16);

fn bit(alg: Alg) -> u16 {
    let i = Alg::ALL.iter().position(|a| *a == alg).unwrap_or(15);
    1u16 << i
}

impl HostAlgs {
    /// No algorithm offloaded (the pure-Rust path for all).
    pub const NONE: HostAlgs = HostAlgs(0);

    pub fn contains(self, alg: Alg) -> bool {
        self.0 & bit(alg) != 0
    }

    pub fn insert(&mut self, alg: Alg) {
        if hash_function(alg).is_some() {
            self.0 |= bit(alg);
        }
    }

    /// `host: RS256 ES256; wasm: PS256 EdDSA HS256` (every algorithm once).
    pub fn describe(self) -> String {
        let names = |host: bool| -> String {
            let list: Vec<&str> = Alg::ALL
                .iter()
                .filter(|a| self.contains(**a) == host)
                .map(|a| a.name())
                .collect();
            if list.is_empty() {
                "none".to_string()
            } else {
                list.join(" ")
            }
        };
        format!("host: {}; wasm: {}", names(true), names(false))
    }
}

// ---------------------------------------------------------------------------
// Protobuf encoding and decoding (only what these two messages need).
// ---------------------------------------------------------------------------

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// A length-delimited field (wire type 2). Empty values are omitted, as
/// proto3 does.
fn put_bytes(buf: &mut Vec<u8>, field: u8, value: &[u8]) {
    if value.is_empty() {
        return;
    }
    buf.push(field << 3 | 2);
    put_varint(buf, value.len() as u64);
    buf.extend_from_slice(value);
}

/// `VerifySignatureArguments { hash_function = 1, public_key = 2,
/// signature = 3, text = 4 }` (the PEM field 5 is never used).
pub fn encode_args(hash: &str, spki_der: &[u8], signature: &[u8], text: &[u8]) -> Vec<u8> {
    let mut buf =
        Vec::with_capacity(hash.len() + spki_der.len() + signature.len() + text.len() + 16);
    put_bytes(&mut buf, 1, hash.as_bytes());
    put_bytes(&mut buf, 2, spki_der);
    put_bytes(&mut buf, 3, signature);
    put_bytes(&mut buf, 4, text);
    buf
}

/// What the host said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostVerdict {
    /// `result: true`.
    Valid,
    /// `result: false`, with the host's error text when given.
    Invalid(Option<String>),
    /// The bytes are not a `VerifySignatureResult`.
    Malformed,
}

struct Reader<'b> {
    buf: &'b [u8],
    pos: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: u64) -> Option<&[u8]> {
        let n = usize::try_from(n).ok()?;
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
}

/// Longest host error text kept (the rest is cut).
const MAX_ERROR_CHARS: usize = 200;

/// Decodes `VerifySignatureResult { bool result = 1; string error = 2; }`.
/// Unknown fields are skipped; the last `result` wins (protobuf rules); any
/// truncation or invalid wire type gives `Malformed`. Never panics.
pub fn decode_result(bytes: &[u8]) -> HostVerdict {
    let mut r = Reader { buf: bytes, pos: 0 };
    let mut result = false;
    let mut error: Option<String> = None;
    while r.pos < bytes.len() {
        let Some(tag) = r.varint() else {
            return HostVerdict::Malformed;
        };
        let (field, wire) = (tag >> 3, tag & 7);
        if field == 0 {
            return HostVerdict::Malformed;
        }
        let ok = match (field, wire) {
            (1, 0) => r.varint().map(|v| result = v != 0).is_some(),
            (2, 2) => match r.varint().and_then(|n| r.take(n)) {
                Some(text) => {
                    let text = String::from_utf8_lossy(text);
                    error = Some(text.chars().take(MAX_ERROR_CHARS).collect());
                    true
                }
                None => false,
            },
            (1, _) | (2, _) => false,
            (_, 0) => r.varint().is_some(),
            (_, 1) => r.take(8).is_some(),
            (_, 2) => r.varint().and_then(|n| r.take(n)).is_some(),
            (_, 5) => r.take(4).is_some(),
            _ => false,
        };
        if !ok {
            return HostVerdict::Malformed;
        }
    }
    if result {
        HostVerdict::Valid
    } else {
        HostVerdict::Invalid(error)
    }
}

// ---------------------------------------------------------------------------
// ECDSA signature conversion.
// ---------------------------------------------------------------------------

/// `1 <= x < order`, both big-endian of the same length.
fn in_range(x: &[u8], order: &[u8]) -> bool {
    x.len() == order.len() && x.iter().any(|&b| b != 0) && x < order
}

/// JWS ECDSA `r || s` (each exactly the order's length) -> DER
/// `SEQUENCE { INTEGER r, INTEGER s }`. `None` (invalid signature) when the
/// length is wrong or `r` or `s` is 0 or not below the curve order: the
/// pure-Rust path rejects exactly these.
pub fn ecdsa_raw_to_der(raw: &[u8], order: &[u8]) -> Option<Vec<u8>> {
    if raw.len() != order.len() * 2 {
        return None;
    }
    let (r, s) = raw.split_at(order.len());
    if !in_range(r, order) || !in_range(s, order) {
        return None;
    }
    der::integer_pair(r, s)
}

// ---------------------------------------------------------------------------
// The verification itself.
// ---------------------------------------------------------------------------

/// How one verification goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Prepared {
    /// Ask the host with these encoded arguments.
    Call(Vec<u8>),
    /// Invalid without asking anyone (shape check failed).
    Reject,
    /// Not offloaded: use the pure-Rust path.
    Pure,
}

/// Decides how to verify `signature` over `input` with `key` and `alg`.
pub fn prepare(host: HostAlgs, key: &Key, alg: Alg, input: &[u8], signature: &[u8]) -> Prepared {
    let Some(hash) = hash_function(alg).filter(|_| host.contains(alg)) else {
        return Prepared::Pure;
    };
    if !key.fits(alg) {
        return Prepared::Reject;
    }
    let Some(spki) = key.spki_der() else {
        return Prepared::Pure;
    };
    match alg {
        Alg::RS256 | Alg::RS384 | Alg::RS512 => {
            let Some(bits) = key.rsa_bits() else {
                return Prepared::Pure;
            };
            if signature.len() != bits.div_ceil(8) {
                return Prepared::Reject;
            }
            Prepared::Call(encode_args(hash, spki, signature, input))
        }
        Alg::ES256 | Alg::ES384 | Alg::ES512 => {
            let Some(order) = ecdsa_order(alg) else {
                return Prepared::Pure;
            };
            match ecdsa_raw_to_der(signature, order) {
                Some(der) => Prepared::Call(encode_args(hash, spki, &der, input)),
                None => Prepared::Reject,
            }
        }
        _ => Prepared::Pure,
    }
}

/// Verifies like [`Key::verify`], through `call` (the host function: encoded
/// arguments -> result bytes, or the proxy-wasm status) for the algorithms
/// in `host`. A failed call or an unreadable result falls back to the
/// pure-Rust path, so the verdict never depends on the host's health.
pub fn verify_with(
    host: HostAlgs,
    call: impl FnOnce(&[u8]) -> Result<Vec<u8>, u32>,
    key: &Key,
    alg: Alg,
    input: &[u8],
    signature: &[u8],
) -> bool {
    match prepare(host, key, alg, input, signature) {
        Prepared::Pure => key.verify(alg, input, signature),
        Prepared::Reject => false,
        Prepared::Call(args) => match call(&args).map(|bytes| decode_result(&bytes)) {
            Ok(HostVerdict::Valid) => true,
            Ok(HostVerdict::Invalid(_)) => false,
            Ok(HostVerdict::Malformed) | Err(_) => key.verify(alg, input, signature),
        },
    }
}

// ---------------------------------------------------------------------------
// The configure-time probe.
// ---------------------------------------------------------------------------

/// Known-answer vector for an offloadable algorithm: SPKI DER and the JWS
/// signature (raw) over [`vectors::MESSAGE`].
fn vector(alg: Alg) -> Option<(&'static [u8], &'static [u8])> {
    use vectors::*;
    Some(match alg {
        Alg::RS256 => (&RSA_SPKI, &RS256_SIG),
        Alg::RS384 => (&RSA_SPKI, &RS384_SIG),
        Alg::RS512 => (&RSA_SPKI, &RS512_SIG),
        Alg::ES256 => (&P256_SPKI, &ES256_SIG),
        Alg::ES384 => (&P384_SPKI, &ES384_SIG),
        Alg::ES512 => (&P521_SPKI, &ES512_SIG),
        _ => return None,
    })
}

/// Encoded arguments for the probe of `alg`; `tamper` flips a bit of the
/// signature's last byte (a known-bad vector, still well-formed).
fn probe_args(alg: Alg, tamper: bool) -> Option<Vec<u8>> {
    let (spki, sig) = vector(alg)?;
    let mut sig = sig.to_vec();
    if tamper {
        if let Some(last) = sig.last_mut() {
            *last ^= 0x01;
        }
    }
    let sig = match ecdsa_order(alg) {
        Some(order) => ecdsa_raw_to_der(&sig, order)?,
        None => sig,
    };
    Some(encode_args(
        hash_function(alg)?,
        spki,
        &sig,
        vectors::MESSAGE,
    ))
}

/// The probe's findings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Algorithms that passed both vectors.
    pub host: HostAlgs,
    /// Why the others did not (one line each), for the log.
    pub problems: Vec<String>,
}

/// Runs the known-good and known-bad vector of every offloadable algorithm
/// through `call`; an algorithm is offloaded only when the good one gives
/// `result: true` and the bad one `result: false`. Stops at the first
/// `NotFound` (the host has no such function).
pub fn probe(mut call: impl FnMut(&[u8]) -> Result<Vec<u8>, u32>) -> Probe {
    let mut out = Probe {
        host: HostAlgs::NONE,
        problems: Vec::new(),
    };
    for alg in OFFLOADABLE {
        let (Some(good), Some(bad)) = (probe_args(alg, false), probe_args(alg, true)) else {
            continue;
        };
        let good = call(&good).map(|b| decode_result(&b));
        if good == Err(status::NOT_FOUND) {
            out.problems.push(format!(
                "Envoy has no {FUNCTION:?} foreign function (needs Envoy 1.31+)"
            ));
            return out;
        }
        let bad = call(&bad).map(|b| decode_result(&b));
        match (good, bad) {
            (Ok(HostVerdict::Valid), Ok(HostVerdict::Invalid(_))) => out.host.insert(alg),
            (good, bad) => out.problems.push(format!(
                "{alg}: known-answer probe failed (good vector: {}, bad vector: {})",
                show(&good),
                show(&bad)
            )),
        }
    }
    out
}

fn show(r: &Result<HostVerdict, u32>) -> String {
    match r {
        Ok(HostVerdict::Valid) => "valid".into(),
        Ok(HostVerdict::Invalid(None)) => "invalid".into(),
        Ok(HostVerdict::Invalid(Some(e))) => format!("invalid ({e})"),
        Ok(HostVerdict::Malformed) => "malformed result".into(),
        Err(code) => status::name(*code),
    }
}

#[cfg(test)]
mod tests;
