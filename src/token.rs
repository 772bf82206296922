//! JWS compact parsing and JWT validation, in the order a careful verifier
//! uses: size bound, structure, header (alg allow-list, `crit`), then the cheap
//! claim checks (issuer, time, audience), then the key chosen by `kid` and
//! `alg`, then the signature. The current time is an argument, so every
//! boundary is tested exactly.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::Deserializer;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::crypto::jwks::{Alg, Key, KeySet};
use crate::error::AuthError;
use crate::strict_json::UniqueMap;

/// Largest token accepted, in bytes (base64url text).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Keys tried for one token without a matching `kid` before giving up.
pub const MAX_KEY_TRIES: usize = 8;
/// Deepest dotted claim path (`a.b.c`) a configuration may name.
pub const MAX_CLAIM_PATH_SEGMENTS: usize = 16;

/// A structurally valid JWS whose signature has not been checked yet.
#[derive(Debug)]
pub struct Jwt<'t> {
    pub alg: Alg,
    pub kid: Option<String>,
    /// The header's `typ` (RFC 7515 4.1.9), when a string.
    pub typ: Option<String>,
    /// Top-level claims (duplicate names rejected).
    pub claims: Map<String, Value>,
    /// The payload segment as sent (base64url, unpadded).
    pub payload_b64: &'t str,
    signing_input: &'t str,
    signature: Vec<u8>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    /// Any `crit` at all, even `null` or `[]` (both invalid per RFC 7515
    /// 4.1.11), is refused: no extension is understood here.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// True whenever the member is present, whatever its value (even `null`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// The segments of a compact JWS (RFC 7515 section 7.1), as sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Compact<'t> {
    pub header: &'t str,
    pub payload: &'t str,
    pub signature: &'t str,
    /// `header.payload`: what the signature covers.
    pub signing_input: &'t str,
}

/// Splits a compact JWS: exactly three segments, the header and the payload
/// not empty. Access tokens and DPoP proofs are both split here.
pub(crate) fn split_compact(text: &str) -> Option<Compact<'_>> {
    let mut parts = text.splitn(4, '.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if header.is_empty() || payload.is_empty() {
        return None;
    }
    let signing_input = text.get(..header.len() + 1 + payload.len())?;
    Some(Compact {
        header,
        payload,
        signature,
        signing_input,
    })
}

/// A segment's bytes: base64url without padding (RFC 7515 section 2), and
/// nothing else (no `=`, no `+` or `/`, no whitespace).
pub(crate) fn segment_bytes(segment: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(segment).ok()
}

/// A header or payload segment: base64url of a JSON object whose member
/// names are unique at every depth ([`UniqueMap`]); an array, a string or
/// anything else is refused.
pub(crate) fn json_object(segment: &str) -> Option<Map<String, Value>> {
    let bytes = segment_bytes(segment)?;
    serde_json::from_slice::<UniqueMap>(&bytes)
        .ok()
        .map(|UniqueMap(m)| m)
}

/// Splits and decodes a compact JWS ([`split_compact`], [`json_object`]).
/// Rejects: over-long tokens, anything but three segments, padded or
/// non-URL-safe base64, headers or payloads that are not JSON objects (a
/// header that is an array included), member names given twice at any depth
/// of the header or the claims, `alg` that is `none` or unknown, and any
/// `crit` (no extension is understood here, RFC 7515 4.1.11). `jku`, `x5u`,
/// `jwk` and `x5c` are ignored: keys come only from config.
pub fn parse(token: &str) -> Result<Jwt<'_>, AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::TooLarge);
    }
    let parts = split_compact(token).ok_or(AuthError::Malformed)?;
    let header_members = json_object(parts.header).ok_or(AuthError::Malformed)?;
    let header: Header =
        serde_json::from_value(Value::Object(header_members)).map_err(|_| AuthError::Malformed)?;
    let alg = Alg::from_name(&header.alg).ok_or(AuthError::AlgNotAllowed)?;
    if header.crit {
        return Err(AuthError::UnsupportedCrit);
    }
    let claims = json_object(parts.payload).ok_or(AuthError::Malformed)?;
    check_registered_types(&claims)?;
    let signature = segment_bytes(parts.signature).ok_or(AuthError::Malformed)?;
    if signature.is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(Jwt {
        alg,
        kid: header.kid,
        typ: header.typ,
        claims,
        payload_b64: parts.payload,
        signing_input: parts.signing_input,
        signature,
    })
}

/// What a provider demands of a token's claims.
#[derive(Clone, Copy, Debug)]
pub struct ClaimRules<'a> {
    pub issuer: Option<&'a str>,
    pub clock_skew_secs: u64,
    pub max_lifetime_secs: Option<u64>,
    pub require_expiration: bool,
    /// Refuse an `iat` in the future beyond the clock skew.
    pub reject_future_iat: bool,
}

/// The registered claims (RFC 7519 section 4.1) must have their types
/// whether or not a rule reads them, as `jwt_authn` demands: `iss` a string
/// (else [`AuthError::Issuer`]), `aud` a string or an array of strings only
/// (else [`AuthError::Audience`]), `sub` and `jti` strings and `exp`, `nbf`,
/// `iat` NumericDates (else [`AuthError::Malformed`]). A lenient reading (say,
/// `aud: ["api", 1]` matching on its one string) is how two components come
/// to disagree about what a token says.
fn check_registered_types(claims: &Map<String, Value>) -> Result<(), AuthError> {
    let ok = |name: &str, valid: fn(&Value) -> bool| claims.get(name).is_none_or(valid);
    let aud = |v: &Value| match v {
        Value::String(_) => true,
        Value::Array(items) => items.iter().all(Value::is_string),
        _ => false,
    };
    if !ok("iss", Value::is_string) {
        return Err(AuthError::Issuer);
    }
    if !ok("aud", aud) {
        return Err(AuthError::Audience);
    }
    let date = |v: &Value| numeric_date_value(v).is_some();
    let rest = ok("sub", Value::is_string)
        && ok("jti", Value::is_string)
        && ok("exp", date)
        && ok("nbf", date)
        && ok("iat", date);
    if rest {
        Ok(())
    } else {
        Err(AuthError::Malformed)
    }
}

/// 2^64, the first value past the NumericDate range.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// A NumericDate as `jwt_authn` reads it: a JSON number in `[0, 2^64)`
/// (negative values, 1e300 and the like are refused: "not a positive 64 bit
/// integer"), a fraction cut off (`1.9` is `1`).
fn numeric_date_value(v: &Value) -> Option<u64> {
    let f = v.as_number()?.as_f64()?;
    // `as` saturates, and the range check makes it exact: the integer part.
    (0.0..TWO_POW_64).contains(&f).then_some(f as u64)
}

/// A numeric date claim: absent is fine, present must be a NumericDate.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => numeric_date_value(v).map(Some).ok_or(AuthError::Malformed),
    }
}

/// Issuer and time checks, `now` in seconds since the epoch.
/// `exp`: rejected when `now > exp + skew`; `nbf`: when `nbf > now + skew`.
/// `max_lifetime`: `exp` must be present and neither `exp - iat` (when `iat`
/// is present) nor `exp - now` may exceed it.
pub fn check_claims(jwt: &Jwt<'_>, rules: &ClaimRules<'_>, now: u64) -> Result<(), AuthError> {
    check_claim_map(&jwt.claims, rules, now)
}

/// [`check_claims`] on a claims map (a cached token's).
pub fn check_claim_map(
    claims: &Map<String, Value>,
    rules: &ClaimRules<'_>,
    now: u64,
) -> Result<(), AuthError> {
    if let Some(want) = rules.issuer {
        match claims.get("iss") {
            Some(Value::String(iss)) if iss == want => {}
            _ => return Err(AuthError::Issuer),
        }
    }
    let skew = rules.clock_skew_secs;
    let exp = numeric_date(claims, "exp")?;
    let nbf = numeric_date(claims, "nbf")?;
    let iat = numeric_date(claims, "iat")?;
    if let Some(exp) = exp {
        if now > exp.saturating_add(skew) {
            return Err(AuthError::Expired);
        }
    } else if rules.require_expiration || rules.max_lifetime_secs.is_some() {
        return Err(AuthError::MissingExp);
    }
    if let Some(nbf) = nbf {
        if nbf > now.saturating_add(skew) {
            return Err(AuthError::NotYetValid);
        }
    }
    if rules.reject_future_iat && iat.is_some_and(|iat| iat > now.saturating_add(skew)) {
        return Err(AuthError::IatInFuture);
    }
    if let (Some(max), Some(exp)) = (rules.max_lifetime_secs, exp) {
        let from_iat = iat.is_some_and(|iat| exp.saturating_sub(iat) > max);
        if from_iat || exp.saturating_sub(now) > max.saturating_add(skew) {
            return Err(AuthError::LifetimeTooLong);
        }
    }
    Ok(())
}

/// Envoy's audience normalisation: a scheme prefix and a trailing `/` do not
/// make two audiences different.
fn normalize_aud(a: &str) -> &str {
    let a = a
        .strip_prefix("https://")
        .or_else(|| a.strip_prefix("http://"))
        .unwrap_or(a);
    a.strip_suffix('/').unwrap_or(a)
}

/// `aud` (a string or an array of strings) must name one of `allowed`.
/// An empty `allowed` list means any audience (and none) is accepted.
pub fn check_audience(claims: &Map<String, Value>, allowed: &[String]) -> Result<(), AuthError> {
    if allowed.is_empty() {
        return Ok(());
    }
    let ok = |a: &str| {
        let a = normalize_aud(a);
        allowed.iter().any(|x| normalize_aud(x) == a)
    };
    let hit = match claims.get("aud") {
        Some(Value::String(a)) => ok(a),
        Some(Value::Array(list)) => list.iter().any(|v| v.as_str().is_some_and(ok)),
        _ => false,
    };
    if hit {
        Ok(())
    } else {
        Err(AuthError::Audience)
    }
}

/// Verifies the signature with the provider's keys: only keys whose `kid`
/// matches (or that have none) and whose type fits `alg` are tried, and `alg`
/// must be allowed for the provider. An RSA key never fits an HMAC alg, so
/// HS/RS confusion is impossible by construction.
pub fn verify_signature(
    jwt: &Jwt<'_>,
    keys: &KeySet,
    allowed: &[Alg],
    verify: impl Fn(&Key, Alg, &[u8], &[u8]) -> bool,
) -> Result<(), AuthError> {
    if !allowed.contains(&jwt.alg) {
        return Err(AuthError::AlgNotAllowed);
    }
    let mut tried = 0;
    for key in keys
        .candidates(jwt.kid.as_deref(), jwt.alg)
        .take(MAX_KEY_TRIES)
    {
        tried += 1;
        if verify(key, jwt.alg, jwt.signing_input.as_bytes(), &jwt.signature) {
            return Ok(());
        }
    }
    if tried == 0 {
        Err(AuthError::UnknownKid)
    } else {
        Err(AuthError::BadSignature)
    }
}

/// The pure-Rust signature check (the default verifier).
pub fn native_verify(key: &Key, alg: Alg, input: &[u8], sig: &[u8]) -> bool {
    key.verify(alg, input, sig)
}

/// A claim by dotted path (`org.team` looks into nested objects).
pub fn claim_at<'c>(claims: &'c Map<String, Value>, path: &[String]) -> Option<&'c Value> {
    let (first, rest) = path.split_first()?;
    let mut v = claims.get(first)?;
    for seg in rest {
        v = v.as_object()?.get(seg)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests;
