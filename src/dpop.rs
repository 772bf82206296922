//! Sender-constrained tokens: DPoP proofs (RFC 9449), certificate-bound
//! tokens (RFC 8705) and the JWT access-token profile (RFC 9068).
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

use std::cmp::Reverse;
use std::collections::BinaryHeap;

pub mod build;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hashbrown::HashMap;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::crypto::jwks::{Alg, Key};
use crate::error::AuthError;
use crate::token;

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

/// Where seen proofs are remembered: in shared data, for every worker of
/// the Envoy (the default: a proof replayed to another worker is caught),
/// or per worker (cheaper; sound only with one worker).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplayScope {
    #[default]
    Shared,
    Worker,
}

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

/// Shared data of one Envoy (proxy-wasm `get_shared_data` /
/// `set_shared_data`): value and compare-and-swap tag; a write with a tag
/// succeeds only if nobody wrote since. A write to a key that does not exist
/// yet always succeeds (Envoy ignores the tag then).
pub trait SharedData {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}

/// Compare-and-swap attempts before a contended record gives up (and the
/// proof is refused: fail closed).
const SHARED_ATTEMPTS: usize = 8;

/// The filter's one replay record, for all its providers: a proof is
/// accepted at most once whichever provider checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplaySettings {
    /// `Shared` unless every DPoP provider asks for `worker`.
    pub scope: ReplayScope,
    /// Entries in the record: the largest `replay_cache_size`.
    pub capacity: usize,
    /// Entries one proof key (`jkt`) may hold: the largest
    /// `replay_cache_per_key`.
    pub per_key: usize,
    /// The longest `max_age`: an entry is kept until its proof could pass
    /// no provider's `iat` check.
    pub max_age_secs: u64,
}

impl ReplaySettings {
    /// The record of a filter whose DPoP providers have these settings;
    /// `None` without any.
    pub fn for_providers<'a>(
        settings: impl IntoIterator<Item = &'a DpopSettings>,
    ) -> Option<ReplaySettings> {
        let mut out: Option<ReplaySettings> = None;
        for d in settings {
            out = Some(match out {
                None => ReplaySettings {
                    scope: d.replay,
                    capacity: d.replay_capacity,
                    per_key: d.replay_per_key,
                    max_age_secs: d.policy.max_age_secs,
                },
                Some(r) => ReplaySettings {
                    scope: if r.scope == ReplayScope::Worker && d.replay == ReplayScope::Worker {
                        ReplayScope::Worker
                    } else {
                        ReplayScope::Shared
                    },
                    capacity: r.capacity.max(d.replay_capacity),
                    per_key: r.per_key.max(d.replay_per_key),
                    max_age_secs: r.max_age_secs.max(d.policy.max_age_secs),
                },
            });
        }
        out.map(|r| ReplaySettings {
            per_key: r.per_key.clamp(1, r.capacity.max(1)),
            ..r
        })
    }

    /// Entries one shared bucket holds.
    fn per_bucket(&self) -> usize {
        self.capacity.div_ceil(SHARED_BUCKETS).max(1)
    }

    /// Entries one key may hold in one shared bucket.
    fn per_key_per_bucket(&self) -> usize {
        self.per_key.div_ceil(SHARED_BUCKETS).max(1)
    }
}

/// Shared-data key of the replay record's bucket `i`.
pub fn bucket_key(i: usize) -> String {
    format!("{SHARED_NAMESPACE}{i}")
}

/// The filter's DPoP replay record as configured: this worker's record, and
/// for a shared record, whether it could be created in `store`
/// ([`prepare_shared`]; `false`: proofs are refused until it exists). No
/// DPoP provider: an empty record, nothing shared.
pub fn replay_record(
    settings: Option<ReplaySettings>,
    store: &dyn SharedData,
    random: &[u8; 32],
) -> (ReplayCache, bool) {
    match settings {
        Some(r) => {
            let ready = r.scope != ReplayScope::Shared || prepare_shared(store, random);
            (ReplayCache::new(r.capacity, r.per_key), ready)
        }
        None => (ReplayCache::new(0, 0), true),
    }
}

/// Creates the shared replay record when it does not exist yet: the secret
/// that picks a proof's bucket and the (empty) buckets. Run at configure time,
/// before any request: at request time a missing bucket or secret refuses the
/// proof instead of writing without compare-and-swap. `random`: 32 bytes the
/// clients cannot know (the host's random). Returns whether the record is
/// complete afterwards.
pub fn prepare_shared(store: &dyn SharedData, random: &[u8; 32]) -> bool {
    let valid = |v: &Option<Vec<u8>>| v.as_ref().is_some_and(|v| v.len() == SECRET_BYTES);
    let (value, cas) = store.get(SHARED_SECRET_KEY);
    if !valid(&value) {
        // An empty placeholder first, so that the secret itself is written
        // with compare-and-swap: when VMs start together one secret wins and
        // every VM reads that one.
        let cas = match cas {
            Some(c) => Some(c),
            None => {
                store.set(SHARED_SECRET_KEY, b"", None);
                store.get(SHARED_SECRET_KEY).1
            }
        };
        if cas.is_some() && !valid(&store.get(SHARED_SECRET_KEY).0) {
            store.set(SHARED_SECRET_KEY, random, cas);
        }
    }
    let mut complete = valid(&store.get(SHARED_SECRET_KEY).0);
    for i in 0..SHARED_BUCKETS {
        let key = bucket_key(i);
        if store.get(&key).1.is_none() {
            store.set(&key, b"", None);
            complete &= store.get(&key).1.is_some();
        }
    }
    complete
}

/// Records a proof in the replay record shared by all workers of the Envoy
/// ([`prepare_shared`] made it). The bucket is chosen by a keyed hash of the
/// replay id under the record's secret, so a client cannot aim its proofs
/// at one bucket. A missing secret or bucket refuses the proof
/// ([`ReplayVerdict::Unavailable`]): a write to an absent key cannot be a
/// compare-and-swap, and two workers could then both take a proof as fresh.
pub fn record_shared(
    store: &dyn SharedData,
    proof: &CheckedProof,
    forget_at: u64,
    now: u64,
    settings: &ReplaySettings,
) -> ReplayVerdict {
    let Some(secret) = store
        .get(SHARED_SECRET_KEY)
        .0
        .filter(|s| s.len() == SECRET_BYTES)
    else {
        return ReplayVerdict::Unavailable;
    };
    let id = replay_id(proof);
    let Some(bucket) = shared_bucket(&secret, &id) else {
        return ReplayVerdict::Unavailable;
    };
    let key = bucket_key(bucket);
    let entry = SharedEntry {
        id: &id,
        key: key_tag(proof),
        forget_at,
    };
    for _ in 0..SHARED_ATTEMPTS {
        // An empty bucket reads as no bytes with a tag (the SDK's answer for
        // an empty value); no tag: the bucket does not exist.
        let (bytes, cas) = store.get(&key);
        let Some(cas) = cas else {
            return ReplayVerdict::Unavailable;
        };
        match shared_record(
            bytes.as_deref().unwrap_or_default(),
            &entry,
            now,
            settings.per_bucket(),
            settings.per_key_per_bucket(),
        ) {
            Ok(new) => {
                if store.set(&key, &new, Some(cas)) {
                    return ReplayVerdict::Fresh;
                }
            }
            Err(verdict) => return verdict,
        }
    }
    ReplayVerdict::Full
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

/// Whether a provider checks a binding: `off` (bearer semantics, as
/// `jwt_authn`), `optional` (checked when the token or request carries it),
/// `required` (a token without it is refused).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindingMode {
    #[default]
    Off,
    Optional,
    Required,
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

/// A member of the token's confirmation claim (`cnf`, RFC 7800): `Ok(None)`
/// when the token has no `cnf` or no such member, `Err` when `cnf` is not
/// an object or the member is not a string. A binding the filter cannot read
/// is refused, never taken as no binding.
fn cnf_member<'c>(claims: &'c Map<String, Value>, name: &str) -> Result<Option<&'c str>, ()> {
    match claims.get("cnf") {
        None => Ok(None),
        Some(Value::Object(cnf)) => match cnf.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(()),
        },
        Some(_) => Err(()),
    }
}

/// The key a token is bound to (`cnf.jkt`), if any; a `cnf` or `cnf.jkt`
/// of the wrong type is [`AuthError::DpopKeyMismatch`].
pub fn bound_jkt(claims: &Map<String, Value>) -> Result<Option<&str>, AuthError> {
    cnf_member(claims, "jkt").map_err(|()| AuthError::DpopKeyMismatch)
}

/// The certificate a token is bound to (`cnf["x5t#S256"]`), if any; a `cnf`
/// or `cnf["x5t#S256"]` of the wrong type is [`AuthError::CertMismatch`].
pub fn bound_x5t(claims: &Map<String, Value>) -> Result<Option<&str>, AuthError> {
    cnf_member(claims, "x5t#S256").map_err(|()| AuthError::CertMismatch)
}

/// Decides the DPoP binding of an accepted token (RFC 9449 section 7):
/// `proof` is the result of [`check_proof`] when the request carried one.
pub fn check_dpop_binding(
    claims: &Map<String, Value>,
    mode: BindingMode,
    scheme: Scheme,
    proof: Option<&CheckedProof>,
) -> Result<(), AuthError> {
    if mode == BindingMode::Off {
        return Ok(());
    }
    match (bound_jkt(claims)?, scheme) {
        // A DPoP-bound token sent as a bearer token: whoever holds it could
        // use it, which is what binding exists to prevent.
        (Some(_), Scheme::Bearer) => Err(AuthError::DpopRequired),
        (Some(jkt), Scheme::Dpop) => match proof {
            Some(p) if p.jkt == jkt => Ok(()),
            Some(_) => Err(AuthError::DpopKeyMismatch),
            None => Err(AuthError::DpopMissing),
        },
        // The DPoP scheme names a bound token; this one names no key.
        (None, Scheme::Dpop) => Err(AuthError::DpopKeyMismatch),
        (None, Scheme::Bearer) if mode == BindingMode::Required => Err(AuthError::DpopRequired),
        (None, Scheme::Bearer) => Ok(()),
    }
}

/// Decides the certificate binding of an accepted token (RFC 8705 section 3):
/// `peer_sha256_hex` is the SHA-256 of the client certificate Envoy verified
/// on this connection, as Envoy's `connection.sha256_peer_certificate_digest`
/// attribute gives it (hex), or `None` without a client certificate.
pub fn check_cert_binding(
    claims: &Map<String, Value>,
    mode: BindingMode,
    peer_sha256_hex: Option<&str>,
) -> Result<(), AuthError> {
    if mode == BindingMode::Off {
        return Ok(());
    }
    let Some(want) = bound_x5t(claims)? else {
        return match mode {
            BindingMode::Required => Err(AuthError::CertUnbound),
            _ => Ok(()),
        };
    };
    let Some(hex) = peer_sha256_hex.filter(|h| !h.is_empty()) else {
        return Err(AuthError::CertMissing);
    };
    match hex_to_bytes(hex) {
        Some(digest) if digest.len() == 32 && URL_SAFE_NO_PAD.encode(&digest) == want => Ok(()),
        _ => Err(AuthError::CertMismatch),
    }
}

fn hex_to_bytes(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// RFC 9068 section 2.1: an access token's `typ` is `at+jwt` (or its media
/// type form). An ID token (`typ` `JWT` or none) is refused where required.
pub fn is_access_token_type(typ: Option<&str>) -> bool {
    typ.is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    })
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

/// Proofs seen recently, per worker: bounded by entries, each kept until
/// its proof could no longer pass the `iat` window, and expired by time (the
/// soonest to expire first, whatever the order they came in). When every
/// slot holds a proof still inside its window, a new proof is refused rather
/// than an old one forgotten (forgetting would let that one be replayed);
/// one proof key may hold at most `per_key` entries, so a single client
/// filling the record is refused alone.
#[derive(Debug)]
pub struct ReplayCache {
    capacity: usize,
    per_key: usize,
    /// Replay id -> (the time it may be forgotten, its key's tag).
    seen: HashMap<[u8; 32], (u64, [u8; 8])>,
    /// Every entry of `seen`, soonest to expire on top.
    expiry: BinaryHeap<Reverse<(u64, [u8; 32])>>,
    /// Entries each key holds (only keys holding some).
    per_key_count: HashMap<[u8; 8], usize>,
}

/// What the replay record says about a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayVerdict {
    /// First use: recorded.
    Fresh,
    /// Seen before within its window.
    Replayed,
    /// Every slot holds a live proof, or the proof's key holds its share;
    /// refused (fail closed).
    Full,
    /// The shared record is missing (its secret or bucket was never
    /// created); refused (fail closed).
    Unavailable,
}

impl ReplayCache {
    /// A record of `capacity` entries, at most `per_key` of them for one key.
    pub fn new(capacity: usize, per_key: usize) -> ReplayCache {
        ReplayCache {
            capacity,
            per_key,
            seen: HashMap::new(),
            expiry: BinaryHeap::new(),
            per_key_count: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Records `proof` unless it was seen; `forget_at` is when its `iat`
    /// window closes (so a replay after it fails the `iat` check instead).
    pub fn check_and_record(
        &mut self,
        proof: &CheckedProof,
        forget_at: u64,
        now: u64,
    ) -> ReplayVerdict {
        while let Some(Reverse((at, id))) = self.expiry.peek().copied() {
            if at > now {
                break;
            }
            self.expiry.pop();
            if let Some((_, key)) = self.seen.remove(&id) {
                if let Some(n) = self.per_key_count.get_mut(&key) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.per_key_count.remove(&key);
                    }
                }
            }
        }
        let id = replay_id(proof);
        if self.seen.contains_key(&id) {
            return ReplayVerdict::Replayed;
        }
        let key = key_tag(proof);
        let held = self.per_key_count.get(&key).copied().unwrap_or(0);
        if self.seen.len() >= self.capacity || held >= self.per_key {
            return ReplayVerdict::Full;
        }
        self.seen.insert(id, (forget_at, key));
        self.expiry.push(Reverse((forget_at, id)));
        self.per_key_count.insert(key, held + 1);
        ReplayVerdict::Fresh
    }
}

/// Buckets of the replay record shared by all workers of one Envoy (proxy-wasm
/// shared data): a proof's bucket is chosen by a keyed hash of its replay id,
/// so concurrent workers rarely contend for one compare-and-swap and no
/// client can choose the bucket its proofs land in.
pub const SHARED_BUCKETS: usize = 64;
/// Prefix of the shared replay record's keys (one record per Envoy for the
/// filter: every provider, every worker).
pub const SHARED_NAMESPACE: &str = "jwt_filter.dpop_replay|";
/// Shared-data key of the secret that picks buckets.
pub const SHARED_SECRET_KEY: &str = "jwt_filter.dpop_replay|secret";
/// Bytes of that secret.
pub const SECRET_BYTES: usize = 32;
/// Bytes per entry in a shared bucket: 16 bytes of the replay id (128 bits
/// keep collisions out of reach), 8 bytes naming the proof's key (for the
/// per-key share) and the time it may be forgotten.
const SHARED_ENTRY: usize = 32;

/// The shared bucket of a replay id: HMAC-SHA-256 under the record's secret.
pub fn shared_bucket(secret: &[u8], id: &[u8; 32]) -> Option<usize> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).ok()?;
    mac.update(id);
    let tag = mac.finalize().into_bytes();
    let first = <[u8; 8]>::try_from(tag.get(..8)?).ok()?;
    usize::try_from(u64::from_be_bytes(first) % SHARED_BUCKETS as u64).ok()
}

/// A proof as a shared bucket stores it.
#[derive(Debug, Clone, Copy)]
pub struct SharedEntry<'a> {
    /// [`replay_id`] of the proof.
    pub id: &'a [u8; 32],
    /// [`key_tag`] of its key.
    pub key: [u8; 8],
    /// When it may be forgotten.
    pub forget_at: u64,
}

/// Records `entry` in a shared bucket's bytes (as read from shared data):
/// `Ok(new bytes)` to write back with the compare-and-swap token that was
/// read, or the verdict when the proof must be refused. Entries past their
/// time are dropped while rewriting (by time, wherever they sit); a bucket
/// never holds more than `capacity` entries, nor more than `per_key` of one
/// key.
pub fn shared_record(
    bucket: &[u8],
    entry: &SharedEntry<'_>,
    now: u64,
    capacity: usize,
    per_key: usize,
) -> Result<Vec<u8>, ReplayVerdict> {
    let prefix = entry.id.get(..16).unwrap_or_default();
    let mut out = Vec::with_capacity(bucket.len() + SHARED_ENTRY);
    let mut held = 0usize;
    for e in bucket.chunks_exact(SHARED_ENTRY) {
        let (eid, rest) = e.split_at(16);
        let (key, at) = rest.split_at(8);
        let at = <[u8; 8]>::try_from(at).map(u64::from_be_bytes).unwrap_or(0);
        if at <= now {
            continue;
        }
        if eid == prefix {
            return Err(ReplayVerdict::Replayed);
        }
        if key == entry.key {
            held += 1;
        }
        out.extend_from_slice(e);
    }
    if out.len() / SHARED_ENTRY >= capacity || held >= per_key {
        return Err(ReplayVerdict::Full);
    }
    out.extend_from_slice(prefix);
    out.extend_from_slice(&entry.key);
    out.extend_from_slice(&entry.forget_at.to_be_bytes());
    Ok(out)
}

/// The replay key of a proof: its `jti` is unique per key (RFC 9449 11.1), so
/// two clients choosing the same `jti` do not collide.
pub fn replay_id(proof: &CheckedProof) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(proof.jkt.as_bytes());
    h.update([0]);
    h.update(proof.jti.as_bytes());
    h.finalize().into()
}

/// 8 bytes naming a proof's key (SHA-256 of its thumbprint), for the
/// per-key share of the replay record.
pub fn key_tag(proof: &CheckedProof) -> [u8; 8] {
    let digest = Sha256::digest(proof.jkt.as_bytes());
    <[u8; 8]>::try_from(digest.get(..8).unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests;
