//! One provider's part of a decision (`jwt_authn`'s verifier): find its
//! token, verify it (signature, provider-level claims, subject) or take it
//! from the verified-token cache.

use super::*;

/// A provider's verified token (signature and provider-level claims checked;
/// audience is checked per requirement).
pub(super) struct Verified<'r> {
    pub(super) found: Found<'r>,
    pub(super) payload_b64: Option<String>,
    pub(super) claims: Rc<serde_json::Map<String, Value>>,
    /// The sender binding checked on this request, if any.
    pub(super) binding: Option<&'static str>,
}

/// Per-provider result, computed at most once per request.
pub(super) type ProviderResult<'r> = Result<Option<Verified<'r>>, AuthError>;

/// One provider's verified-token cache and the fetched key set (`None`:
/// local keys) its entries must have been verified with.
pub(super) struct CacheRef<'a> {
    pub(super) cache: &'a RefCell<TokenCache>,
    pub(super) keys: Option<&'a Rc<KeySet>>,
    pub(super) counts: &'a Cell<(u32, u32)>,
}

impl CacheRef<'_> {
    pub(super) fn get(&self, token: &str, now: u64) -> Option<Rc<serde_json::Map<String, Value>>> {
        let mut cache = self.cache.try_borrow_mut().ok()?;
        if !cache.is_enabled() {
            return None;
        }
        let hit = cache.get(token, self.keys, now);
        let (h, m) = self.counts.get();
        self.counts.set(if hit.is_some() {
            (h + 1, m)
        } else {
            (h, m + 1)
        });
        hit.map(|c| c.claims.clone())
    }

    pub(super) fn put(
        &self,
        token: &str,
        claims: &Rc<serde_json::Map<String, Value>>,
        payload_len: usize,
        now: u64,
    ) {
        if let Ok(mut cache) = self.cache.try_borrow_mut() {
            let exp = claims.get("exp").and_then(Value::as_f64);
            cache.insert(token, self.keys, claims.clone(), exp, payload_len, now);
        }
    }
}

/// Finds and verifies one provider's token (everything but the audience).
/// `keys`: the provider's key set, `None` while remote keys are pending or
/// unavailable. With a cache, a token verified
/// before with the same keys skips parsing and the signature; the claim
/// checks still run.
pub(super) fn verify_provider<'r>(
    p: &Provider,
    keys: Option<&KeySet>,
    req: &'r RequestView,
    now: u64,
    verify: VerifyFn<'_>,
    cache: Option<CacheRef<'_>>,
) -> ProviderResult<'r> {
    let Some(found) = extract::extract(&p.locations, req)? else {
        return Ok(None);
    };
    let token: &str = &found.token;
    let rules = ClaimRules {
        issuer: p.issuer.as_deref(),
        clock_skew_secs: p.clock_skew_secs,
        max_lifetime_secs: p.max_lifetime_secs,
        require_expiration: p.require_expiration,
        reject_future_iat: p.reject_future_iat,
    };
    let cache = cache.filter(|_| keys.is_some());
    if let Some(claims) = cache.as_ref().and_then(|c| c.get(token, now)) {
        token::check_claim_map(&claims, &rules, now)?;
        check_subject(p, &claims)?;
        let payload_b64 = p
            .payload_header
            .as_ref()
            .and_then(|_| token.split('.').nth(1))
            .map(str::to_string);
        return Ok(Some(Verified {
            found,
            payload_b64,
            claims,
            binding: None,
        }));
    }
    let jwt: Jwt<'_> = token::parse(token)?;
    // A cached token passed this when it was verified.
    if p.require_access_token_type && !binding::is_access_token_type(jwt.typ.as_deref()) {
        return Err(AuthError::TokenType);
    }
    token::check_claims(&jwt, &rules, now)?;
    check_subject(p, &jwt.claims)?;
    let keys = keys.ok_or(AuthError::JwksUnavailable)?;
    token::verify_signature(&jwt, keys, &p.allowed_algs, verify)?;
    // Copied only when a header will carry it.
    let payload_b64 = p
        .payload_header
        .as_ref()
        .map(|_| jwt.payload_b64.to_string());
    let claims = Rc::new(jwt.claims);
    if let Some(c) = &cache {
        c.put(token, &claims, jwt.payload_b64.len(), now);
    }
    Ok(Some(Verified {
        found,
        payload_b64,
        claims,
        binding: None,
    }))
}

/// `subjects`: the token's `sub` (the empty string when absent or not a
/// string, as `jwt_authn`) must match the provider's string matcher.
pub(super) fn check_subject(
    p: &Provider,
    claims: &serde_json::Map<String, Value>,
) -> Result<(), AuthError> {
    match &p.subjects {
        None => Ok(()),
        Some(m) => {
            let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
            if m.is_match(sub) {
                Ok(())
            } else {
                Err(AuthError::Subject)
            }
        }
    }
}
