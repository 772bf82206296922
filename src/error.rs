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
    /// A token bound to a key (or sent with the DPoP scheme) came without a `DPoP` proof.
    DpopMissing,
    /// The `DPoP` proof is not a well-formed proof JWT (structure, `typ`, `jwk`, claims), or there is more than one.
    DpopMalformed,
    /// The proof's `alg` is not an allowed asymmetric algorithm, or does not fit its key.
    DpopAlg,
    /// The proof's signature does not verify with the key in its header.
    DpopSignature,
    /// The proof's `htm` is not the request method.
    DpopMethod,
    /// The proof's `htu` is not the request URI.
    DpopUri,
    /// The proof's `iat` is too old, or in the future beyond the skew.
    DpopStale,
    /// The proof's `ath` is not the hash of the access token it came with.
    DpopAth,
    /// The proof lacks a current server nonce (RFC 9449 section 8).
    DpopNonce,
    /// The proof's `jti` was already used within its window.
    DpopReplay,
    /// Every replay-cache slot holds a live proof, so a new one cannot be recorded.
    DpopReplayFull,
    /// The proof's key is not the key the token is bound to (`cnf.jkt`).
    DpopKeyMismatch,
    /// A DPoP-bound token sent as a bearer token, or an unbound token where DPoP is required.
    DpopRequired,
    /// The token is not bound to a client certificate where the provider requires it.
    CertUnbound,
    /// The token is bound to a client certificate but the connection presented none.
    CertMissing,
    /// The client certificate is not the one the token is bound to (`cnf["x5t#S256"]`).
    CertMismatch,
    /// The token's `typ` is not `at+jwt` where the provider requires access tokens (RFC 9068).
    TokenType,
    /// The token's `iat` is in the future beyond the clock skew.
    IatInFuture,
    /// A revocation rule of the provider (deny list or shared signal) matches the token.
    Revoked,
    /// The provider's revocation feed is `fail_closed` and has not been read for longer than its staleness.
    RevocationUnavailable,
}

impl AuthError {
    /// Every variant, for tests and for defining one counter per reason.
    pub const ALL: [AuthError; 39] = [
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
        AuthError::DpopMissing,
        AuthError::DpopMalformed,
        AuthError::DpopAlg,
        AuthError::DpopSignature,
        AuthError::DpopMethod,
        AuthError::DpopUri,
        AuthError::DpopStale,
        AuthError::DpopAth,
        AuthError::DpopNonce,
        AuthError::DpopReplay,
        AuthError::DpopReplayFull,
        AuthError::DpopKeyMismatch,
        AuthError::DpopRequired,
        AuthError::CertUnbound,
        AuthError::CertMissing,
        AuthError::CertMismatch,
        AuthError::TokenType,
        AuthError::IatInFuture,
        AuthError::Revoked,
        AuthError::RevocationUnavailable,
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
            AuthError::DpopMissing => "DPoP proof is missing",
            AuthError::DpopMalformed => "DPoP proof is invalid",
            AuthError::DpopAlg => "DPoP proof algorithm is not allowed",
            AuthError::DpopSignature => "DPoP proof verification fails",
            AuthError::DpopMethod => "DPoP proof htm does not match the request",
            AuthError::DpopUri => "DPoP proof htu does not match the request",
            AuthError::DpopStale => "DPoP proof iat is outside the accepted window",
            AuthError::DpopAth => "DPoP proof ath does not match the access token",
            AuthError::DpopNonce => "DPoP proof nonce is missing or stale",
            AuthError::DpopReplay => "DPoP proof was already used",
            AuthError::DpopReplayFull => "DPoP replay cache is full",
            AuthError::DpopKeyMismatch => "DPoP proof key does not match the token",
            AuthError::DpopRequired => "Jwt must be presented with a DPoP proof",
            AuthError::CertUnbound => "Jwt is not bound to a client certificate",
            AuthError::CertMissing => "Jwt requires a client certificate",
            AuthError::CertMismatch => "Client certificate does not match the token",
            AuthError::TokenType => "Jwt type is not allowed",
            AuthError::IatInFuture => "Jwt issued in the future",
            AuthError::Revoked => "Jwt is revoked",
            AuthError::RevocationUnavailable => "Jwt revocation list is unavailable",
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

    /// True for the failures of a DPoP proof itself, which RFC 9449 answers
    /// with `error="invalid_dpop_proof"` (or `use_dpop_nonce`) in a `DPoP`
    /// challenge.
    pub fn is_dpop_proof_error(self) -> bool {
        matches!(
            self,
            AuthError::DpopMissing
                | AuthError::DpopMalformed
                | AuthError::DpopAlg
                | AuthError::DpopSignature
                | AuthError::DpopMethod
                | AuthError::DpopUri
                | AuthError::DpopStale
                | AuthError::DpopAth
                | AuthError::DpopNonce
                | AuthError::DpopReplay
                | AuthError::DpopReplayFull
                | AuthError::DpopKeyMismatch
        )
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
            AuthError::DpopMissing => "DPoP proof missing",
            AuthError::DpopMalformed => "malformed DPoP proof",
            AuthError::DpopAlg => "DPoP proof algorithm not allowed",
            AuthError::DpopSignature => "DPoP proof signature invalid",
            AuthError::DpopMethod => "DPoP proof htm mismatch",
            AuthError::DpopUri => "DPoP proof htu mismatch",
            AuthError::DpopStale => "DPoP proof too old or in the future",
            AuthError::DpopAth => "DPoP proof ath mismatch",
            AuthError::DpopNonce => "use the DPoP-Nonce header",
            AuthError::DpopReplay => "DPoP proof replayed",
            AuthError::DpopReplayFull => "DPoP replay cache full",
            AuthError::DpopKeyMismatch => "DPoP key mismatch",
            AuthError::DpopRequired => "DPoP required",
            AuthError::CertUnbound => "token not certificate-bound",
            AuthError::CertMissing => "client certificate required",
            AuthError::CertMismatch => "client certificate mismatch",
            AuthError::TokenType => "token type not allowed",
            AuthError::IatInFuture => "token issued in the future",
            AuthError::Revoked => "token revoked",
            AuthError::RevocationUnavailable => "revocation status unavailable",
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
            AuthError::DpopMissing => "dpop_missing",
            AuthError::DpopMalformed => "dpop_malformed",
            AuthError::DpopAlg => "dpop_alg",
            AuthError::DpopSignature => "dpop_signature",
            AuthError::DpopMethod => "dpop_htm",
            AuthError::DpopUri => "dpop_htu",
            AuthError::DpopStale => "dpop_iat",
            AuthError::DpopAth => "dpop_ath",
            AuthError::DpopNonce => "dpop_nonce",
            AuthError::DpopReplay => "dpop_replay",
            AuthError::DpopReplayFull => "dpop_replay_cache_full",
            AuthError::DpopKeyMismatch => "dpop_jkt_mismatch",
            AuthError::DpopRequired => "dpop_required",
            AuthError::CertUnbound => "cert_unbound",
            AuthError::CertMissing => "cert_missing",
            AuthError::CertMismatch => "cert_mismatch",
            AuthError::TokenType => "token_type",
            AuthError::IatInFuture => "iat_future",
            AuthError::Revoked => "revoked",
            AuthError::RevocationUnavailable => "revocation_unavailable",
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

/// Builds a `DPoP` challenge (RFC 9449 section 7.1) for a provider that
/// takes DPoP-bound tokens: proof failures are `invalid_dpop_proof` (a missing
/// nonce `use_dpop_nonce`), token failures RFC 6750's codes; `algs` lists the
/// proof algorithms accepted.
pub fn www_authenticate_dpop(realm: &str, err: AuthError, algs: &str) -> String {
    let mut out = String::with_capacity(128);
    out.push_str("DPoP realm=\"");
    push_quoted(&mut out, realm);
    out.push('"');
    let code = match err {
        AuthError::DpopNonce => Some("use_dpop_nonce"),
        e if e.is_dpop_proof_error() => Some("invalid_dpop_proof"),
        e => e.rfc6750_error(),
    };
    if let Some(code) = code {
        out.push_str(", error=\"");
        out.push_str(code);
        out.push_str("\", error_description=\"");
        out.push_str(err.description());
        out.push('"');
    }
    out.push_str(", algs=\"");
    push_quoted(&mut out, algs);
    out.push('"');
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
