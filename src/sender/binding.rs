//! A token's binding to its sender: to a DPoP proof key (`cnf.jkt`,
//! RFC 9449) or a client certificate (`cnf.x5t#S256`, RFC 8705); and the
//! JWT access-token profile's `typ` (RFC 9068).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use super::dpop::{CheckedProof, Scheme};
use crate::diag::OneOf;
use crate::error::AuthError;
use crate::json_read::{self, Read};

/// Whether a provider checks a binding: `off` (bearer semantics, as
/// `jwt_authn`), `optional` (checked when the token or request carries it),
/// `required` (a token without it is refused).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BindingMode {
    #[default]
    Off,
    Optional,
    Required,
}

impl BindingMode {
    /// `"off"`, `"optional"` or `"required"`, at `path`.
    pub(crate) fn read(v: &Value, path: &str) -> Read<OneOf<BindingMode>> {
        let names = &["off", "optional", "required"];
        let values = &[
            BindingMode::Off,
            BindingMode::Optional,
            BindingMode::Required,
        ];
        json_read::one_of(v, path, names, values).map(OneOf)
    }
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
    // Hex of either case; odd, longer or shorter than a SHA-256: no match.
    let mut digest = [0u8; 32];
    match base16ct::mixed::decode(hex, &mut digest) {
        Ok(d) if d.len() == 32 && URL_SAFE_NO_PAD.encode(d) == want => Ok(()),
        _ => Err(AuthError::CertMismatch),
    }
}

/// RFC 9068 section 2.1: an access token's `typ` is `at+jwt` (or its media
/// type form). An ID token (`typ` `JWT` or none) is refused where required.
pub fn is_access_token_type(typ: Option<&str>) -> bool {
    typ.is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    })
}
