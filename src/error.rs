//! One enum of denial causes, mapped to everything a denial needs: the HTTP
//! status, the body (short and stable, like Envoy's `jwt_authn`), the RFC 6750
//! `error` / `error_description` for `WWW-Authenticate`, and the reason label
//! used by counters and the decision log.

/// Why a request was not allowed. Ordered roughly by where in the flow the
/// cause is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthError {
    /// No token in any location the requirement looks at.
    Missing,
    /// More than one distinct token was presented (RFC 6750 section 2: a
    /// client must use only one method); ambiguous, so refused.
    Multiple,
    /// The token or the header carrying it is over a size bound.
    TooLarge,
    /// Not `header.payload.signature`, bad base64url, or not JSON objects.
    Malformed,
    /// `alg` is `none`, unknown, or not allowed for the provider.
    AlgNotAllowed,
    /// The header lists a `crit` parameter this filter does not understand.
    UnsupportedCrit,
    /// `iss` is not the provider's issuer.
    Issuer,
    /// `aud` does not intersect the configured audiences.
    Audience,
    /// `exp` is in the past (beyond the clock skew).
    Expired,
    /// `nbf` is in the future (beyond the clock skew).
    NotYetValid,
    /// `exp` is absent while the provider requires it.
    MissingExp,
    /// `exp` is further out than the provider's `max_lifetime` allows.
    LifetimeTooLong,
    /// No key in the provider's set matches the token's `kid` and `alg`.
    UnknownKid,
    /// A matching key exists but the signature does not verify.
    BadSignature,
    /// The provider's keys could not be obtained (remote JWKS).
    JwksUnavailable,
    /// A valid token lacks a scope or claim the route requires.
    InsufficientScope,
    /// The token's `sub` does not satisfy the provider's `subjects`.
    Subject,
    /// The route's metadata names a requirement `requirement_map` lacks.
    WrongRequirement,
    /// The token's `kid` (or the provider's first keys) needs a JWKS fetch,
    /// but this VM already holds as many waiting requests as it may.
    KeyWaitFull,
}

impl AuthError {
    /// Every variant, for tests and for defining one counter per reason.
    pub const ALL: [AuthError; 19] = [
        AuthError::Missing,
        AuthError::Multiple,
        AuthError::TooLarge,
        AuthError::Malformed,
        AuthError::AlgNotAllowed,
        AuthError::UnsupportedCrit,
        AuthError::Issuer,
        AuthError::Audience,
        AuthError::Expired,
        AuthError::NotYetValid,
        AuthError::MissingExp,
        AuthError::LifetimeTooLong,
        AuthError::UnknownKid,
        AuthError::BadSignature,
        AuthError::JwksUnavailable,
        AuthError::InsufficientScope,
        AuthError::Subject,
        AuthError::WrongRequirement,
        AuthError::KeyWaitFull,
    ];

    /// HTTP status of the local reply. 403 only when a valid token lacks
    /// permissions; everything about the token itself is 401 (RFC 6750 3.1;
    /// a deliberate deviation from `jwt_authn`, which answers 403 for audience).
    pub fn status(self) -> u32 {
        match self {
            AuthError::InsufficientScope | AuthError::WrongRequirement => 403,
            _ => 401,
        }
    }

    /// Response body. Where Envoy's `jwt_authn` has a string for the same cause
    /// it is reused verbatim, so dashboards and clients keep working.
    pub fn body(self) -> &'static str {
        match self {
            AuthError::Missing => "Jwt is missing",
            AuthError::Multiple => "Jwt is presented more than once",
            AuthError::TooLarge => "Jwt is too large",
            AuthError::Malformed => "Jwt is not in the form of Header.Payload.Signature",
            AuthError::AlgNotAllowed => "Jwt algorithm is not allowed",
            AuthError::UnsupportedCrit => "Jwt has an unsupported critical header",
            AuthError::Issuer => "Jwt issuer is not configured",
            AuthError::Audience => "Audiences in Jwt are not allowed",
            AuthError::Expired => "Jwt is expired",
            AuthError::NotYetValid => "Jwt not yet valid",
            AuthError::MissingExp => "Jwt is missing the exp claim",
            AuthError::LifetimeTooLong => "Jwt lifetime exceeds max_lifetime",
            AuthError::UnknownKid => "Jwks doesn't have key to match kid or alg from Jwt",
            AuthError::BadSignature => "Jwt verification fails",
            AuthError::JwksUnavailable => "Jwks remote fetch is failed",
            AuthError::InsufficientScope => "Jwt is not authorized",
            AuthError::Subject => "Jwt verification fails",
            AuthError::WrongRequirement => "Failed JWT authentication: wrong requirement_name",
            AuthError::KeyWaitFull => "Jwks refetch is busy: too many requests wait for keys",
        }
    }

    /// RFC 6750 `error` code, or `None` when no token was presented (then the
    /// challenge carries only the realm, section 3.1).
    pub fn rfc6750_error(self) -> Option<&'static str> {
        match self {
            AuthError::Missing => None,
            AuthError::InsufficientScope => Some("insufficient_scope"),
            AuthError::WrongRequirement => None,
            AuthError::Multiple => Some("invalid_request"),
            _ => Some("invalid_token"),
        }
    }

    /// Short, token-free `error_description`.
    pub fn description(self) -> &'static str {
        match self {
            AuthError::Missing => "token missing",
            AuthError::Multiple => "more than one token presented",
            AuthError::TooLarge => "token too large",
            AuthError::Malformed => "malformed token",
            AuthError::AlgNotAllowed => "algorithm not allowed",
            AuthError::UnsupportedCrit => "unsupported critical header",
            AuthError::Issuer => "issuer not accepted",
            AuthError::Audience => "audience not accepted",
            AuthError::Expired => "token expired",
            AuthError::NotYetValid => "token not yet valid",
            AuthError::MissingExp => "exp claim required",
            AuthError::LifetimeTooLong => "token lifetime too long",
            AuthError::UnknownKid => "no key matches kid or alg",
            AuthError::BadSignature => "signature verification failed",
            AuthError::JwksUnavailable => "signing keys unavailable",
            AuthError::InsufficientScope => "insufficient scope",
            AuthError::Subject => "subject not allowed",
            AuthError::WrongRequirement => "route names an unknown requirement",
            AuthError::KeyWaitFull => "too many requests waiting for signing keys",
        }
    }

    /// Reason label for counters (`denied_<reason>`) and the decision log.
    pub fn reason(self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Multiple => "multiple",
            AuthError::TooLarge => "too_large",
            AuthError::Malformed => "malformed",
            AuthError::AlgNotAllowed => "alg_not_allowed",
            AuthError::UnsupportedCrit => "unsupported_crit",
            AuthError::Issuer => "issuer",
            AuthError::Audience => "audience",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::MissingExp => "missing_exp",
            AuthError::LifetimeTooLong => "lifetime_too_long",
            AuthError::UnknownKid => "unknown_kid",
            AuthError::BadSignature => "bad_signature",
            AuthError::JwksUnavailable => "jwks_unavailable",
            AuthError::InsufficientScope => "insufficient_scope",
            AuthError::Subject => "subject",
            AuthError::WrongRequirement => "route_requirement",
            AuthError::KeyWaitFull => "key_wait_full",
        }
    }

    /// How informative an error is when several alternatives failed
    /// (`requires_any`): a concrete problem with a presented token beats an
    /// issuer mismatch (the token was probably meant for another provider),
    /// which beats "missing".
    pub fn specificity(self) -> u8 {
        match self {
            AuthError::Missing => 0,
            AuthError::Issuer => 1,
            _ => 2,
        }
    }
}

/// Builds the `WWW-Authenticate` value for a denial (RFC 6750 section 3).
/// `realm` must not contain the query string (a token may be there);
/// `scope` is the space-separated list of required scopes, if any.
pub fn www_authenticate(realm: &str, err: AuthError, scope: Option<&str>) -> String {
    let mut out = String::with_capacity(96);
    out.push_str("Bearer realm=\"");
    push_quoted(&mut out, realm);
    out.push('"');
    if let Some(code) = err.rfc6750_error() {
        out.push_str(", error=\"");
        out.push_str(code);
        out.push_str("\", error_description=\"");
        out.push_str(err.description());
        out.push('"');
    }
    if let Some(scope) = scope {
        out.push_str(", scope=\"");
        push_quoted(&mut out, scope);
        out.push('"');
    }
    out
}

/// RFC 7230 quoted-string content: escape `"` and `\`, drop control bytes.
fn push_quoted(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests;
