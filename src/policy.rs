//! The decision for one request: pick the rule, evaluate its requirement tree
//! (`provider_name`, `provider_and_audiences`, `requires_any`, `requires_all`,
//! `allow_missing`, `allow_missing_or_failed`, with `jwt_authn`'s meaning), and
//! turn the outcome into data: allow with header edits, or deny with a cause.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde_json::Value;

use crate::authz::{self, Mode, RuleAuthz, TokenStatus};
use crate::config::{Config, KeySource, Provider, Requirement};
use crate::crypto::jwks::{Alg, Key, KeySet};
use crate::decision::{Decision, HeaderOp, Outcome};
use crate::decision_log::TokenFacts;
use crate::error::AuthError;
use crate::extract::{self, Found, Location, RequestView};
use crate::keys::ProviderState;
#[cfg(feature = "revocation")]
use crate::revocation::Revocations;
use crate::route::{PerRoute, RouteFacts};
use crate::sender::binding::BindingMode;
use crate::sender::dpop::{ProofContext, Scheme};
use crate::sender::replay::{ReplayCache, ReplayScope, ReplaySettings, ReplayVerdict};
use crate::sender::{binding, dpop, replay};
use crate::shared_data::SharedData;
use crate::token::{self, ClaimRules, Jwt};
use crate::token_cache::TokenCache;

/// Largest header value the filter writes from a claim; longer values are
/// not written (the header stays absent, never truncated).
pub const MAX_CLAIM_HEADER_BYTES: usize = 8 * 1024;

/// Signature verification function (pure Rust, or the host's).
pub type VerifyFn<'v> = &'v dyn Fn(&Key, Alg, &[u8], &[u8]) -> bool;

pub use crate::keys::{RemoteKeys, Wait};

/// Evaluates requirements for one request, remembering each provider's result.
pub struct Evaluator<'c, 'r> {
    config: &'c Config,
    req: &'r RequestView,
    now: u64,
    verify: VerifyFn<'c>,
    providers: &'c [ProviderState],
    memo: Vec<Option<ProviderResult<'r>>>,
    /// Remote providers whose failure a JWKS fetch might turn into success.
    pub waits: Vec<(usize, Wait)>,
    /// Whether a denial's outcome carries the token facts for the decision
    /// log (`kid`, `iss`, `sub`, fingerprint); off when nothing will log them.
    pub token_facts: bool,
    /// Cache (hits, misses) during this evaluation.
    cache_counts: Cell<(u32, u32)>,
    /// The route's metadata, filter state and connection facts (read by the
    /// glue when the configuration uses them).
    pub route: RouteFacts,
    /// Shared data of this Envoy, for the DPoP replay record shared by all
    /// workers; `None`: the per-worker record (`local_replay`) is used.
    pub shared: Option<&'c dyn SharedData>,
    /// This worker's DPoP replay record (one for the filter), used when the
    /// record is per worker or shared data is not available; `None` with
    /// neither: DPoP proofs are refused (fail closed).
    pub local_replay: Option<&'c RefCell<ReplayCache>>,
    /// The replay id of the DPoP proof this request already recorded as
    /// fresh: another provider checking the same proof for the same request
    /// takes it as fresh instead of as a replay of itself. A request decided
    /// again (after waiting for keys) carries it over.
    pub recorded_proof: Cell<Option<[u8; 32]>>,
    /// Revocation rules of this VM's providers; `None`: no provider has
    /// revocation configured (then it costs this one branch).
    #[cfg(feature = "revocation")]
    pub revocation: Option<&'c Revocations>,
}

impl<'c, 'r> Evaluator<'c, 'r> {
    /// `providers[i]` holds provider `i`'s fetched keys (ignored for local
    /// keys) and its verified-token cache; an empty slice: no fetched keys,
    /// no cache.
    pub fn new(
        config: &'c Config,
        providers: &'c [ProviderState],
        req: &'r RequestView,
        now: u64,
        verify: VerifyFn<'c>,
    ) -> Self {
        let memo = config.providers.iter().map(|_| None).collect();
        Evaluator {
            config,
            req,
            now,
            verify,
            providers,
            memo,
            waits: Vec::new(),
            token_facts: true,
            cache_counts: Cell::new((0, 0)),
            route: RouteFacts::default(),
            shared: None,
            local_replay: None,
            recorded_proof: Cell::new(None),
            #[cfg(feature = "revocation")]
            revocation: None,
        }
    }

    /// Token cache (hits, misses) so far.
    pub fn cache_counts(&self) -> (u32, u32) {
        self.cache_counts.get()
    }

    /// The whole decision for the request (see [`Evaluator::outcome`] for
    /// the context around it).
    pub fn decide(&mut self) -> Decision {
        self.outcome().decision
    }

    fn provider(&mut self, idx: usize) -> &ProviderResult<'r> {
        if self.memo.get(idx).is_some_and(Option::is_none) {
            let result = match self.config.providers.get(idx) {
                Some(p) => {
                    let mut fetched = None;
                    let keys = match &p.keys {
                        KeySource::Local(set) => Some(set),
                        KeySource::Remote(_) => match self.providers.get(idx).map(|s| &s.keys) {
                            Some(RemoteKeys::Ready(set)) => {
                                fetched = Some(set);
                                Some(&**set)
                            }
                            Some(RemoteKeys::Pending | RemoteKeys::Unavailable) | None => None,
                        },
                    };
                    let cache = self.providers.get(idx).map(|s| CacheRef {
                        cache: &s.cache,
                        keys: fetched,
                        counts: &self.cache_counts,
                    });
                    let sender = Sender {
                        peer_cert: self.route.peer_certificate_sha256.as_deref(),
                        shared: self.shared,
                        local: self.local_replay,
                        replay: self.config.dpop_replay.as_ref(),
                        recorded: &self.recorded_proof,
                    };
                    let r = verify_provider(p, keys, self.req, self.now, self.verify, cache)
                        .and_then(|v| match v {
                            Some(mut v) => {
                                v.binding =
                                    check_sender(p, &v, self.req, self.now, self.verify, &sender)?;
                                Ok(Some(v))
                            }
                            None => Ok(None),
                        });
                    // Revocation: a verified token a rule revokes is denied.
                    #[cfg(feature = "revocation")]
                    let r = match (r, self.revocation) {
                        (Ok(Some(v)), Some(rev)) => {
                            rev.check(idx, &v.claims, self.now).map(|()| Some(v))
                        }
                        (r, _) => r,
                    };
                    match (&r, &p.keys) {
                        (Err(AuthError::JwksUnavailable), _)
                            if keys.is_none()
                                && matches!(
                                    self.providers.get(idx).map(|s| &s.keys),
                                    Some(RemoteKeys::Pending) | None
                                ) =>
                        {
                            self.waits.push((idx, Wait::FirstFetch));
                        }
                        (Err(AuthError::UnknownKid), KeySource::Remote(_)) => {
                            self.waits.push((idx, Wait::UnknownKid));
                        }
                        _ => {}
                    }
                    r
                }
                None => Err(AuthError::Missing),
            };
            if let Some(slot) = self.memo.get_mut(idx) {
                *slot = Some(result);
            }
        }
        match self.memo.get(idx) {
            Some(Some(r)) => r,
            _ => &Err(AuthError::Missing),
        }
    }

    /// Provider indices whose verified tokens satisfied the requirement.
    fn eval(&mut self, req: &Requirement) -> Result<Vec<usize>, AuthError> {
        match req {
            Requirement::Provider {
                provider,
                audiences,
            } => {
                let config = self.config;
                let allowed = match (audiences, config.providers.get(*provider)) {
                    (Some(a), _) => a.as_slice(),
                    (None, Some(p)) => p.audiences.as_slice(),
                    (None, None) => &[],
                };
                match self.provider(*provider) {
                    Err(e) => Err(*e),
                    Ok(None) => Err(AuthError::Missing),
                    Ok(Some(v)) => {
                        token::check_audience(&v.claims, allowed)?;
                        Ok(vec![*provider])
                    }
                }
            }
            Requirement::Any(children) => {
                let mut best: Option<AuthError> = None;
                for child in children {
                    match self.eval(child) {
                        Ok(p) => return Ok(p),
                        Err(e) => {
                            if best.is_none_or(|b| e.specificity() > b.specificity()) {
                                best = Some(e);
                            }
                        }
                    }
                }
                Err(best.unwrap_or(AuthError::Missing))
            }
            Requirement::All(children) => {
                let mut all = Vec::new();
                for child in children {
                    for p in self.eval(child)? {
                        if !all.contains(&p) {
                            all.push(p);
                        }
                    }
                }
                Ok(all)
            }
            Requirement::AllowMissing | Requirement::AllowMissingOrFailed => {
                let (ok, err) = self.any_provider();
                match (ok, err) {
                    (Some(p), _) => Ok(vec![p]),
                    (None, None) => Ok(Vec::new()),
                    (None, Some(_)) if matches!(req, Requirement::AllowMissingOrFailed) => {
                        Ok(Vec::new())
                    }
                    (None, Some(e)) => Err(e),
                }
            }
        }
    }

    /// Tries every provider (with its own audiences): the first that verifies
    /// a token, and the most specific failure of a presented token.
    fn any_provider(&mut self) -> (Option<usize>, Option<AuthError>) {
        let mut err: Option<AuthError> = None;
        for idx in 0..self.config.providers.len() {
            let config = self.config;
            let allowed = config
                .providers
                .get(idx)
                .map(|p| p.audiences.as_slice())
                .unwrap_or(&[]);
            let outcome = match self.provider(idx) {
                Ok(None) => continue,
                Ok(Some(v)) => token::check_audience(&v.claims, allowed),
                Err(e) => Err(*e),
            };
            match outcome {
                Ok(()) => return (Some(idx), None),
                Err(e) => {
                    if err.is_none_or(|b| e.specificity() > b.specificity()) {
                        err = Some(e);
                    }
                }
            }
        }
        (None, err)
    }

    /// Header edits for the providers whose tokens were accepted.
    fn annotations(&self, providers: &[usize]) -> Vec<HeaderOp> {
        let mut ops = Vec::new();
        let mut path: Option<String> = None;
        let mut cookie: Option<Option<String>> = None;
        for &idx in providers {
            let (Some(p), Some(Some(Ok(Some(v))))) =
                (self.config.providers.get(idx), self.memo.get(idx))
            else {
                continue;
            };
            if let (Some(h), Some(b64)) = (&p.payload_header, &v.payload_b64) {
                let mut value = b64.clone();
                if p.pad_payload_header {
                    while value.len() % 4 != 0 {
                        value.push('=');
                    }
                }
                ops.push(HeaderOp::Set(h.clone(), value));
            }
            for ch in &p.claim_headers {
                if let Some(value) = token::claim_at(&v.claims, &ch.claim_path).and_then(claim_text)
                {
                    ops.push(HeaderOp::Set(ch.header.clone(), value));
                }
            }
            for &at in v.found.locations.iter().filter(|_| !p.forward) {
                match p.locations.get(at) {
                    Some(Location::Header { name, .. }) => ops.push(HeaderOp::Remove(name.clone())),
                    Some(Location::Param(name)) => {
                        let current = path.take().unwrap_or_else(|| self.req.path().to_string());
                        path = Some(extract::remove_param(&current, name));
                    }
                    Some(Location::Cookie(name)) => {
                        let current = match cookie.take() {
                            Some(c) => c,
                            None => {
                                Some(self.req.header_all("cookie").collect::<Vec<_>>().join("; "))
                            }
                        };
                        cookie = Some(current.and_then(|c| extract::remove_cookie(&c, name)));
                    }
                    None => {}
                }
            }
        }
        if let Some(p) = path {
            ops.push(HeaderOp::Set(":path".into(), p));
        }
        match cookie {
            Some(Some(c)) => ops.push(HeaderOp::Set("cookie".into(), c)),
            Some(None) => ops.push(HeaderOp::Remove("cookie".into())),
            None => {}
        }
        ops
    }
}

impl<'c> Evaluator<'c, '_> {
    /// The decision plus its context: rule, mode, status, providers, and
    /// for denials who is blamed and what the token said.
    pub fn outcome(&mut self) -> Outcome {
        let config = self.config;
        let mut out = Outcome {
            decision: Decision::NoAuth,
            rule: None,
            mode: Mode::Enforce,
            status: Some(TokenStatus::NotRequired),
            accepted: Vec::new(),
            blamed: None,
            token: None,
            payload: None,
        };
        let (requirement, authz) = match self.select() {
            Selected::Nothing => return out,
            Selected::Wrong => {
                out.mode = config.default_mode;
                out.status = Some(TokenStatus::from_error(AuthError::WrongRequirement));
                out.decision = Decision::Deny(AuthError::WrongRequirement);
                return out;
            }
            Selected::Named(req) => {
                out.mode = config.default_mode;
                match req {
                    Some(r) => (r, None),
                    None => return out,
                }
            }
            Selected::Rule(i, rule) => {
                out.rule = Some(i);
                out.mode = rule.mode;
                match rule.requirement.as_ref() {
                    Some(r) => (r, Some(&rule.authz)),
                    None => return out,
                }
            }
        };
        let (result, accepted) = match self.eval(requirement) {
            Ok(p) => match authz {
                Some(a) => (self.authorize(a, &p), p),
                None => (Ok(p.first().copied()), p),
            },
            Err(e) => (Err(e), Vec::new()),
        };
        match result {
            Ok(passed) => {
                let failed = self.memo.iter().any(|m| matches!(m, Some(Err(_))));
                out.status = Some(match (accepted.is_empty(), failed) {
                    (false, _) => TokenStatus::Valid,
                    (true, true) => TokenStatus::Invalid,
                    (true, false) => TokenStatus::Missing,
                });
                if self.config.filter_state {
                    out.payload = passed
                        .and_then(|i| self.claims(i))
                        .and_then(|c| serde_json::to_string(c).ok());
                }
                out.decision = Decision::Allow(self.annotations(&accepted));
                out.accepted = accepted;
            }
            Err(e) => {
                out.status = Some(TokenStatus::from_error(e));
                out.blamed = self.blame(e, requirement, &accepted);
                if self.token_facts {
                    out.token = out.blamed.and_then(|i| self.token_facts(i));
                }
                out.decision = Decision::Deny(e);
            }
        }
        out
    }

    /// The requirement for this request, as `jwt_authn` picks it: the
    /// route's own selection when it has one, else the first matching rule,
    /// else `filter_state_rules`.
    fn select(&self) -> Selected<'c> {
        let config = self.config;
        match &self.route.per_route {
            Some(PerRoute::Disabled) => return Selected::Nothing,
            Some(PerRoute::Name(name)) => {
                return match config.requirement_map.get(name) {
                    Some(req) => Selected::Named(req.as_ref()),
                    None => Selected::Wrong,
                }
            }
            None => {}
        }
        let req = self.req;
        let full = req.path();
        if let Some((i, rule)) = config.rules.iter().enumerate().find(|(_, r)| {
            r.matcher
                .matches_request(full, |name| req.header_all(name).collect::<Vec<_>>())
        }) {
            return Selected::Rule(i, rule);
        }
        let chosen = config.filter_state_rules.as_ref().and_then(|f| {
            self.route
                .filter_state
                .as_ref()
                .and_then(|v| f.requires.get(v))
        });
        match chosen {
            Some(req) => Selected::Named(req.as_ref()),
            None => Selected::Nothing,
        }
    }

    /// Verified claims of a provider's accepted token.
    fn claims(&self, idx: usize) -> Option<&serde_json::Map<String, Value>> {
        match self.memo.get(idx) {
            Some(Some(Ok(Some(v)))) => Some(&*v.claims),
            _ => None,
        }
    }

    /// The rule's scopes, claims and audiences against the accepted tokens;
    /// Ok: the provider whose token satisfied them (the first accepted one
    /// when the rule asks for nothing more).
    fn authorize(&self, authz: &RuleAuthz, accepted: &[usize]) -> Result<Option<usize>, AuthError> {
        if authz.is_empty() {
            return Ok(accepted.first().copied());
        }
        let pairs: Vec<(usize, &serde_json::Map<String, Value>)> = accepted
            .iter()
            .filter_map(|&i| self.claims(i).map(|c| (i, c)))
            .collect();
        let tokens: Vec<&serde_json::Map<String, Value>> = pairs.iter().map(|(_, c)| *c).collect();
        let i = authz::check(authz, &tokens)?;
        Ok(pairs.get(i).map(|(p, _)| *p))
    }

    /// Which provider to blame for a denial, when one can be named.
    fn blame(
        &self,
        err: AuthError,
        requirement: &Requirement,
        accepted: &[usize],
    ) -> Option<usize> {
        if !accepted.is_empty() {
            // Rejected by the rule's scopes/claims/audiences after acceptance.
            return accepted.first().copied();
        }
        let own = |want: &dyn Fn(&ProviderResult<'_>) -> bool| {
            self.memo.iter().position(|m| m.as_ref().is_some_and(want))
        };
        own(&|r| matches!(r, Err(e) if *e == err))
            .or_else(|| {
                // Audience is checked per requirement, after verification.
                (err == AuthError::Audience)
                    .then(|| own(&|r| matches!(r, Ok(Some(_)))))
                    .flatten()
            })
            .or(match requirement {
                Requirement::Provider { provider, .. } => Some(*provider),
                _ => None,
            })
    }

    /// Unverified kid/iss/sub and the fingerprint of a provider's token.
    fn token_facts(&self, idx: usize) -> Option<TokenFacts> {
        let p = self.config.providers.get(idx)?;
        match extract::extract(&p.locations, self.req) {
            Ok(Some(found)) => Some(TokenFacts::from_token(&found.token)),
            _ => None,
        }
    }
}

/// Where the request's requirement came from.
enum Selected<'c> {
    /// No rule, no selection: no JWT needed.
    Nothing,
    /// The route named a requirement `requirement_map` lacks.
    Wrong,
    /// A named requirement (route metadata or filter state); `None`: none needed.
    Named(Option<&'c Requirement>),
    Rule(usize, &'c crate::config::Rule),
}

/// A claim value as header text, as `jwt_authn` writes it
/// ([`crate::claim_header`]). Values with control characters and overlong
/// values give `None` (not written).
pub fn claim_text(v: &Value) -> Option<String> {
    let text = crate::claim_header::jwt_authn_text(v)?;
    let clean = !text.chars().any(|c| c.is_control());
    (clean && text.len() <= MAX_CLAIM_HEADER_BYTES).then_some(text)
}

/// Whether the request passes without a token as a CORS preflight
/// (`bypass_cors_preflight` and OPTIONS with `Origin` and
/// `Access-Control-Request-Method`).
pub fn bypasses_as_cors_preflight(config: &Config, view: &RequestView) -> bool {
    let present = |name: &str| view.header(name).is_some_and(|v| !v.is_empty());
    config.bypass_cors_preflight
        && view.header(":method") == Some("OPTIONS")
        && present("origin")
        && present("access-control-request-method")
}

mod provider;
mod sender;

use provider::{verify_provider, CacheRef, ProviderResult, Verified};
use sender::{check_sender, Sender};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod dpop_tests;
