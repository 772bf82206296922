//! DPoP proofs (RFC 9449): the proof checks, the server nonce and the
//! `DPoP` challenge. The replay record is [`super::replay`], the token's
//! binding to the proof key or client certificate [`super::binding`].
//!
//! Everything here is pure: the request's method, target URI, client
//! certificate digest and the current time are arguments, and the replay cache
//! is a value the caller owns. The proof's signature is checked through the
//! same `verify` callback the access token uses, so the host's crypto serves
//! both.
//!
//! Order of the proof checks (RFC 9449 section 4.3), cheapest first: one
//! proof, size, structure, `typ`, `alg` allowed, `jwk` public and usable,
//! required claims, `htm`, `htu`, `iat` window, `ath`, nonce, signature,
//! `jti` not seen before. A token bound to a key (`cnf.jkt`) must then name
//! the proof's key (RFC 7638 thumbprint).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::binding::BindingMode;
use super::replay::ReplayScope;
use crate::crypto::jwks::{Alg, Key};
use crate::error::AuthError;
use crate::extract::Location;
use crate::token;

pub mod build;

/// Largest DPoP proof accepted, in bytes. A proof carries a public key in its
/// header: an RSA-4096 JWK and the claims stay well under this.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;
/// Longest `jti` accepted (RFC 9449 suggests 96 bits of randomness; UUIDs and
/// base64url strings are far shorter).
pub const MAX_JTI_BYTES: usize = 256;

/// The `Authorization` prefix of a DPoP-bound token (RFC 9449 section 7.1).
pub const DPOP_PREFIX: &str = "DPoP ";
/// Default `dpop.max_age`: how old a proof may be.
pub const DEFAULT_MAX_AGE_SECS: u64 = 60;
/// Default `dpop.nonce.lifetime`.
pub const DEFAULT_NONCE_LIFETIME_SECS: u64 = 60;
/// Shortest nonce secret accepted, in bytes.
pub const MIN_NONCE_SECRET_BYTES: usize = 16;
/// Default and largest `dpop.replay_cache_size`.
pub const DEFAULT_REPLAY_ENTRIES: usize = 10_000;
pub const MAX_REPLAY_ENTRIES: usize = 1_000_000;
/// Default `dpop.replay_cache_per_key`: this fraction (1/10) of the record.
pub const DEFAULT_PER_KEY_DIVISOR: usize = 10;

/// A provider's DPoP settings, built from its configuration.
#[derive(Clone, Debug)]
pub struct DpopSettings {
    pub policy: DpopPolicy,
    /// The origin (and path prefix) clients use, for proxies behind TLS
    /// termination or a rewrite: `htu` is this plus the request path.
    pub public_base_url: Option<String>,
    pub replay: ReplayScope,
    /// Entries in the replay record (in all buckets together when shared).
    pub replay_capacity: usize,
    /// Entries one proof key may hold in the replay record.
    pub replay_per_key: usize,
}

/// The headers of a denial's local reply: the challenge (`DPoP` for a
/// provider that takes DPoP-bound tokens, RFC 9449 section 7.1; else
/// `Bearer`, RFC 6750), a fresh `DPoP-Nonce` when the provider issues
/// nonces, and the content type.
pub fn denial_headers(
    realm: &str,
    err: AuthError,
    scope: Option<&str>,
    dpop: Option<&DpopSettings>,
    now: u64,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(3);
    match dpop {
        Some(d) => {
            out.push((
                "www-authenticate",
                crate::error::www_authenticate_dpop(realm, err, &d.policy.algs_param()),
            ));
            if let Some(n) = &d.policy.nonce {
                out.push(("dpop-nonce", n.issue(now)));
            }
        }
        None => out.push((
            "www-authenticate",
            crate::error::www_authenticate(realm, err, scope),
        )),
    }
    out.push(("content-type", "text/plain".to_string()));
    out
}

/// Where a DPoP-bound token arrives: `Authorization: DPoP <token>` (RFC 9449
/// section 7.1).
pub fn dpop_location() -> Location {
    Location::Header {
        name: "authorization".into(),
        prefix: DPOP_PREFIX.into(),
    }
}

/// Whether `location` is `Authorization` with the `DPoP` scheme (the prefix
/// matched ignoring ASCII case, as the token is found).
pub fn is_dpop_location(location: &Location) -> bool {
    matches!(location, Location::Header { name, prefix }
        if name == "authorization" && prefix.eq_ignore_ascii_case(DPOP_PREFIX))
}

/// How the client presented the access token in `Authorization`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `Bearer`, or a location other than `Authorization` (query, cookie,
    /// another header): bearer semantics.
    Bearer,
    /// `Authorization: DPoP <token>`.
    Dpop,
}

/// A provider's DPoP policy, built from its configuration.
#[derive(Clone, Debug)]
pub struct DpopPolicy {
    pub mode: BindingMode,
    /// Proof algorithms accepted: asymmetric only.
    pub algs: Vec<Alg>,
    /// How old a proof's `iat` may be, in seconds.
    pub max_age_secs: u64,
    /// How far in the future a proof's `iat` may be (clock skew), in seconds.
    pub future_skew_secs: u64,
    /// When set, proofs must carry a nonce this secret issued (RFC 9449
    /// section 8).
    pub nonce: Option<NonceIssuer>,
}

impl DpopPolicy {
    /// The `algs` parameter of the `DPoP` challenge: space-separated names.
    pub fn algs_param(&self) -> String {
        let mut out = String::new();
        for a in &self.algs {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(a.name());
        }
        out
    }
}

/// What the request says about itself, for the proof checks.
#[derive(Clone, Copy, Debug)]
pub struct ProofContext<'a> {
    /// The request method (`GET`, ...), as sent.
    pub method: &'a str,
    /// The target URI the client used, without query and fragment
    /// ([`target_uri`]).
    pub htu: &'a str,
    /// The access token the proof must be bound to (`ath`).
    pub access_token: &'a str,
    pub now: u64,
}

/// A proof that passed every check but the replay check and the token's
/// key binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedProof {
    /// RFC 7638 thumbprint of the proof's key (base64url SHA-256).
    pub jkt: String,
    pub jti: String,
    pub iat: u64,
}

#[derive(Deserialize)]
struct ProofHeader {
    typ: Option<String>,
    alg: String,
    jwk: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// JWK members that make a key private; a proof must never carry them.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Checks one DPoP proof against the request and the access token.
/// `verify` checks a signature (the host's crypto or the pure-Rust path).
pub fn check_proof(
    proof: &str,
    policy: &DpopPolicy,
    ctx: &ProofContext<'_>,
    verify: impl Fn(&Key, Alg, &[u8], &[u8]) -> bool,
) -> Result<CheckedProof, AuthError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(AuthError::DpopMalformed);
    }
    // The one compact-JWS reader of the filter (tokens use it too): three
    // segments, base64url without padding, JSON objects whose member names
    // are unique at every depth (the jwk's included).
    let parts = token::split_compact(proof).ok_or(AuthError::DpopMalformed)?;
    let header_members = token::json_object(parts.header).ok_or(AuthError::DpopMalformed)?;
    let header: ProofHeader = serde_json::from_value(Value::Object(header_members))
        .map_err(|_| AuthError::DpopMalformed)?;
    if header.crit {
        return Err(AuthError::DpopMalformed);
    }
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
    {
        return Err(AuthError::DpopMalformed);
    }
    let alg = Alg::from_name(&header.alg).ok_or(AuthError::DpopAlg)?;
    if alg.is_hmac() || !policy.algs.contains(&alg) {
        return Err(AuthError::DpopAlg);
    }
    let jwk = header.jwk.ok_or(AuthError::DpopMalformed)?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(AuthError::DpopMalformed);
    }
    let key = Key::from_jwk(&Value::Object(jwk.clone())).map_err(|_| AuthError::DpopMalformed)?;
    if !key.fits(alg) {
        return Err(AuthError::DpopAlg);
    }
    let jkt = thumbprint(&jwk).ok_or(AuthError::DpopMalformed)?;

    let claims = token::json_object(parts.payload).ok_or(AuthError::DpopMalformed)?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let jti = text("jti").ok_or(AuthError::DpopMalformed)?;
    if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
        return Err(AuthError::DpopMalformed);
    }
    let htm = text("htm").ok_or(AuthError::DpopMalformed)?;
    let htu = text("htu").ok_or(AuthError::DpopMalformed)?;
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or(AuthError::DpopMalformed)?;

    if htm != ctx.method {
        return Err(AuthError::DpopMethod);
    }
    if !same_uri(htu, ctx.htu) {
        return Err(AuthError::DpopUri);
    }
    if iat > ctx.now.saturating_add(policy.future_skew_secs)
        || iat.saturating_add(policy.max_age_secs) < ctx.now
    {
        return Err(AuthError::DpopStale);
    }
    if text("ath") != Some(access_token_hash(ctx.access_token).as_str()) {
        return Err(AuthError::DpopAth);
    }
    if let Some(issuer) = &policy.nonce {
        if !text("nonce").is_some_and(|n| issuer.accepts(n, ctx.now)) {
            return Err(AuthError::DpopNonce);
        }
    }
    let signature = token::segment_bytes(parts.signature).ok_or(AuthError::DpopMalformed)?;
    if signature.is_empty() || !verify(&key, alg, parts.signing_input.as_bytes(), &signature) {
        return Err(AuthError::DpopSignature);
    }
    Ok(CheckedProof {
        jkt,
        jti: jti.to_string(),
        iat,
    })
}

fn b64_sha256(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(bytes))
}

/// `ath`: base64url(SHA-256(ASCII access token)), RFC 9449 section 4.2.
pub fn access_token_hash(token: &str) -> String {
    b64_sha256(token.as_bytes())
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in
/// lexicographic order, no whitespace; base64url. `None` for a key type
/// without public members defined here, or members that are not strings.
pub fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let kty = jwk.get("kty")?.as_str()?;
    let members: &[&str] = match kty {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (i, name) in members.iter().enumerate() {
        let value = jwk.get(*name)?.as_str()?;
        if i > 0 {
            canonical.push(',');
        }
        // serde_json writes a JSON string exactly as RFC 7638 wants it
        // (the values here are base64url or short names, nothing to escape).
        canonical.push_str(&Value::String((*name).to_string()).to_string());
        canonical.push(':');
        canonical.push_str(&Value::String(value.to_string()).to_string());
    }
    canonical.push('}');
    Some(b64_sha256(canonical.as_bytes()))
}

/// The target URI the client used, without query and fragment (the `htu` a
/// proof must carry): `public_base_url` (a proxy behind TLS termination
/// knows its public origin) or `scheme://authority`, then the path.
pub fn target_uri(
    scheme: &str,
    authority: &str,
    path: &str,
    public_base_url: Option<&str>,
) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut out = match public_base_url {
        Some(base) => base.trim_end_matches('/').to_string(),
        None => format!("{scheme}://{authority}"),
    };
    out.push_str(path);
    out
}

/// Compares two URIs after dropping query and fragment and applying the
/// normalizations RFC 9449 section 4.3 asks for (RFC 3986 6.2.2 and 6.2.3):
/// scheme and host case, default ports, an empty path as `/`, and
/// percent-encoding case of unreserved characters.
fn same_uri(a: &str, b: &str) -> bool {
    match (normalize_uri(a), normalize_uri(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn normalize_uri(uri: &str) -> Option<String> {
    let uri = uri.split(['?', '#']).next().unwrap_or("");
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let mut host = authority.to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    if let Some(stripped) = host.strip_suffix(default_port) {
        host = stripped.to_string();
    }
    Some(format!("{scheme}://{host}{}", normalize_percent(path)?))
}

/// Decodes percent-encoded unreserved characters and upper-cases the hex of
/// the rest, so equivalent paths compare equal. `None` on a bad escape.
fn normalize_percent(path: &str) -> Option<String> {
    // A request path from Envoy is ASCII; anything else cannot match it.
    if !path.is_ascii() {
        return None;
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        if c != b'%' {
            out.push(char::from(c));
            i += 1;
            continue;
        }
        let hex = bytes.get(i + 1..i + 3)?;
        let hex = std::str::from_utf8(hex).ok()?;
        let v = u8::from_str_radix(hex, 16).ok()?;
        if v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(v));
        } else {
            out.push('%');
            out.push_str(&hex.to_ascii_uppercase());
        }
        i += 3;
    }
    Some(out)
}

/// Server-issued DPoP nonces (RFC 9449 section 8) without shared state: a
/// nonce is the time window it was issued in and an HMAC of it, so every
/// worker and every Envoy holding the same secret accepts it. A nonce is
/// accepted in its window and the next.
#[derive(Clone)]
pub struct NonceIssuer {
    secret: Vec<u8>,
    window_secs: u64,
}

impl std::fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceIssuer")
            .field("window_secs", &self.window_secs)
            .finish_non_exhaustive()
    }
}

impl NonceIssuer {
    /// `None` for an empty secret or a zero window.
    pub fn new(secret: Vec<u8>, window_secs: u64) -> Option<NonceIssuer> {
        (!secret.is_empty() && window_secs > 0).then_some(NonceIssuer {
            secret,
            window_secs,
        })
    }

    fn mac(&self, window: u64) -> Option<Hmac<Sha256>> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret).ok()?;
        mac.update(&window.to_be_bytes());
        Some(mac)
    }

    /// The nonce to hand out now (`DPoP-Nonce` response header).
    pub fn issue(&self, now: u64) -> String {
        let window = now / self.window_secs;
        let mut raw = window.to_be_bytes().to_vec();
        if let Some(mac) = self.mac(window) {
            raw.extend_from_slice(mac.finalize().into_bytes().get(..16).unwrap_or_default());
        }
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// True for a nonce issued in this window or the one before.
    pub fn accepts(&self, nonce: &str, now: u64) -> bool {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let (Some(w), Some(tag)) = (raw.get(..8), raw.get(8..)) else {
            return false;
        };
        let Ok(w) = <[u8; 8]>::try_from(w) else {
            return false;
        };
        let window = u64::from_be_bytes(w);
        let current = now / self.window_secs;
        if window != current && window.saturating_add(1) != current {
            return false;
        }
        tag.len() == 16
            && self
                .mac(window)
                .is_some_and(|mac| mac.verify_truncated_left(tag).is_ok())
    }
}

#[cfg(test)]
mod tests;
