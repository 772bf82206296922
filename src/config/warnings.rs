//! The warnings that need the whole validated [`Config`] (rules, providers
//! compared with each other): [`Config::parse`] appends them to the parser's
//! own, so [`Config::warnings`] is the one list ([`crate::warning`]).

use crate::config::{Config, KeySource, Provider, Requirement, Rule};
use crate::crypto::jwks::Alg;
use crate::matcher::PathMatcher;
#[cfg(feature = "revocation")]
use crate::revocation::FeedSettings;
use crate::warning::{discovered_uri_problem, Kind, Warning};

/// Output size of the hash behind an HMAC algorithm, in bytes.
fn hmac_output_len(alg: Alg) -> Option<usize> {
    match alg {
        Alg::HS256 => Some(32),
        Alg::HS384 => Some(48),
        Alg::HS512 => Some(64),
        _ => None,
    }
}

/// The warnings that need the whole validated configuration, in order:
/// per provider (keys, DPoP, issuer, audiences, discovery), then rules, then
/// the top-level mode. [`Config::parse`] appends them to the parser's own.
pub(crate) fn of_config(cfg: &Config) -> Vec<Warning> {
    let mut out = Vec::new();
    for (idx, p) in cfg.providers.iter().enumerate() {
        provider(cfg, idx, p, &mut out);
    }
    rules(cfg, &mut out);
    if cfg.default_mode == crate::authz::Mode::Report {
        out.push(Warning::new(
            Kind::ReportMode,
            "mode",
            "report mode: requests that fail verification are let through (only counted and \
             logged)",
        ));
    }
    out
}

fn provider(cfg: &Config, idx: usize, p: &Provider, out: &mut Vec<Warning>) {
    #[cfg(feature = "revocation")]
    revocation(p, out);
    let path = format!("providers.{}", p.name);
    if p.issuer.is_none() {
        out.push(Warning::new(
            Kind::NoIssuer,
            path.clone(),
            "no issuer: a token from any issuer signed by these keys is accepted",
        ));
    }
    if p.audiences.is_empty() && !audiences_set_by_every_use(cfg, idx) {
        out.push(Warning::new(
            Kind::NoAudiences,
            format!("{path}.audiences"),
            "no audiences: a token this issuer minted for any other service is accepted here \
             (set audiences, or provider_and_audiences in every rule)",
        ));
    }
    match &p.keys {
        KeySource::Remote(remote) => {
            if remote.oidc_discovery {
                if let Some(why) = discovered_uri_problem(&remote.uri, p.issuer.as_deref()) {
                    out.push(Warning::new(
                        Kind::DiscoveryUntrusted,
                        format!("{path}.remote_jwks.oidc_discovery"),
                        format!(
                            "the OIDC discovery document names the JWKS, and {why} (fetch \
                             discovery over https from the issuer's own host, or set the \
                             jwks_uri itself)"
                        ),
                    ));
                }
            } else if remote.uri.starts_with("http://") {
                out.push(Warning::new(
                    Kind::PlainHttpJwks,
                    format!("{path}.remote_jwks.http_uri.uri"),
                    "the JWKS is downloaded over plain HTTP: whoever can alter it can mint tokens \
                     (use https, or a cluster with TLS)",
                ));
            }
        }
        KeySource::Local(set) => {
            for (i, key) in set.keys().iter().enumerate() {
                let Some(len) = key.secret_len() else {
                    continue;
                };
                let short: Vec<String> = p
                    .allowed_algs
                    .iter()
                    .copied()
                    .filter(|a| key.fits(*a))
                    .filter_map(|a| hmac_output_len(a).filter(|h| len < *h).map(|h| (a, h)))
                    .map(|(a, h)| format!("{} needs {h}", a.name()))
                    .collect();
                if short.is_empty() {
                    continue;
                }
                let who = match &key.kid {
                    Some(kid) => format!("key {kid:?}"),
                    None => format!("key #{i}"),
                };
                out.push(Warning::new(
                    Kind::ShortHmacSecret,
                    format!("{path}.local_jwks.inline_string"),
                    format!(
                        "{who}: {len}-byte HMAC secret is shorter than the hash output ({}; RFC \
                         7518 3.2): use a longer random secret, or pin the JWK's \"alg\"",
                        short.join(", ")
                    ),
                ));
            }
        }
    }
    if let Some(d) = &p.dpop {
        if d.replay == crate::sender::replay::ReplayScope::Worker {
            out.push(Warning::new(
                Kind::DpopReplayPerWorker,
                format!("{path}.dpop.replay_cache"),
                "a per-worker replay record misses a proof replayed to another worker: use it \
                 only with one Envoy worker (--concurrency 1)",
            ));
        }
        if p.forward {
            out.push(Warning::new(
                Kind::DpopTokenForwarded,
                format!("{path}.forward"),
                "the DPoP-bound token goes upstream: a backend that accepts it as a bearer token \
                 makes the binding moot",
            ));
        }
    } else if let Some(iss) = &p.issuer {
        let bound: Vec<&str> = cfg
            .providers
            .iter()
            .filter(|o| o.dpop.is_some() && o.issuer.as_ref() == Some(iss))
            .map(|o| o.name.as_str())
            .collect();
        if !bound.is_empty() {
            out.push(Warning::new(
                Kind::DpopIssuerAcceptsBearer,
                path,
                format!(
                    "no dpop, but issuer {iss:?} is also provider(s) {bound:?} with dpop: a \
                     DPoP-bound token (cnf.jkt) from that issuer is accepted here as a bearer \
                     token, without a proof (set dpop here too, or require only the DPoP \
                     provider where bound tokens are used)"
                ),
            ));
        }
    }
}

/// Every rule naming provider `idx` does so with a non-empty
/// `provider_and_audiences` list (and at least one rule names it).
fn audiences_set_by_every_use(cfg: &Config, idx: usize) -> bool {
    let mut uses = Vec::new();
    for r in &cfg.rules {
        if let Some(req) = &r.requirement {
            provider_uses(req, idx, &mut uses);
        }
    }
    !uses.is_empty() && uses.iter().all(|with_aud| *with_aud)
}

fn provider_uses(req: &Requirement, idx: usize, uses: &mut Vec<bool>) {
    match req {
        Requirement::Provider {
            provider,
            audiences,
        } if *provider == idx => {
            uses.push(audiences.as_ref().is_some_and(|a| !a.is_empty()));
        }
        Requirement::Any(list) | Requirement::All(list) => {
            for r in list {
                provider_uses(r, idx, uses);
            }
        }
        _ => {}
    }
}

/// The requirement lets a request with an invalid token through.
fn passes_anything(req: &Requirement) -> bool {
    match req {
        Requirement::AllowMissingOrFailed => true,
        Requirement::Any(list) => list.iter().any(passes_anything),
        _ => false,
    }
}

/// The requirement lets a request without a token through.
fn passes_without_token(req: &Requirement) -> bool {
    match req {
        Requirement::AllowMissing | Requirement::AllowMissingOrFailed => true,
        Requirement::Any(list) => list.iter().any(passes_without_token),
        _ => false,
    }
}

/// The rule lets requests without a token through: no requirement, or one
/// satisfied without a token.
pub fn exempts(rule: &Rule) -> bool {
    rule.requirement.as_ref().is_none_or(passes_without_token)
}

fn rules(cfg: &Config, out: &mut Vec<Warning>) {
    let with_requires: Vec<(usize, &Requirement)> = cfg
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.requirement.as_ref().map(|req| (i, req)))
        .collect();
    let open: Vec<usize> = with_requires
        .iter()
        .filter(|(_, req)| passes_anything(req))
        .map(|(i, _)| *i)
        .collect();
    if !with_requires.is_empty() && open.len() == with_requires.len() {
        out.push(Warning::new(
            Kind::NeverRejects,
            "rules",
            "every rule uses allow_missing_or_failed: no request is ever rejected, and requests \
             with invalid or forged tokens reach the upstream",
        ));
    } else {
        for i in open {
            if cfg.rules.get(i).is_some_and(|r| r.matcher.is_catch_all()) {
                out.push(Warning::new(
                    Kind::AllowFailedCatchAll,
                    format!("rules[{i}].requires"),
                    "allow_missing_or_failed on a catch-all rule: every path it covers lets \
                     requests with invalid or forged tokens through",
                ));
            }
        }
    }
    for (i, r) in cfg.rules.iter().enumerate() {
        if exempts(r) {
            if let PathMatcher::Prefix(prefix) = r.matcher.path() {
                if !prefix.is_empty() && !prefix.ends_with('/') {
                    out.push(Warning::new(
                        Kind::StringPrefixExemption,
                        format!("rules[{i}].match.prefix"),
                        format!(
                            "prefix {prefix:?} is a string prefix, not a path segment: this rule \
                             also lets requests without a token reach {:?}; use {{\"path\": \
                             {prefix:?}}} and {{\"prefix\": \"{prefix}/\"}}",
                            format!("{prefix}-admin")
                        ),
                    ));
                }
            }
            let names: Vec<&str> = r
                .matcher
                .headers()
                .iter()
                .map(|h| h.name.as_str())
                .collect();
            if !names.is_empty() {
                out.push(Warning::new(
                    Kind::HeaderExemption,
                    format!("rules[{i}].match.headers"),
                    format!(
                        "this rule lets requests without a token through on request header(s) \
                         {names:?}, which a client can send itself: rely on it only when a proxy \
                         in front of Envoy always sets or removes the header, or an earlier \
                         filter in this Envoy does"
                    ),
                ));
            }
        }
        if r.mode == crate::authz::Mode::Report && cfg.default_mode != crate::authz::Mode::Report {
            out.push(Warning::new(
                Kind::ReportMode,
                format!("rules[{i}].mode"),
                "report mode: this rule lets failing requests through (only counted and logged)",
            ));
        }
    }
}

/// A poll interval past this leaves a revoked token accepted for that long.
#[cfg(feature = "revocation")]
const LONG_POLL_MS: u64 = 300_000;
/// A staleness past this lets a feed go unread for that long unnoticed.
#[cfg(feature = "revocation")]
const LONG_STALENESS_MS: u64 = 3_600_000;

/// A provider's revocation warnings: feeds that leave revoked tokens
/// accepted for long, or that can be altered in transit.
#[cfg(feature = "revocation")]
fn revocation(p: &Provider, out: &mut Vec<Warning>) {
    {
        let Some(rev) = &p.revocation else {
            return;
        };
        let path = format!("providers.{}.revocation", p.name);
        if let Some(d) = &rev.deny_list {
            feed(out, &format!("{path}.deny_list"), "http_uri", d);
        }
        let Some(s) = &rev.ssf else {
            return;
        };
        let ssf = format!("{path}.ssf");
        feed(out, &ssf, "poll_endpoint", &s.poll);
        if s.poll.fetch.uri.starts_with("http://") && s.authorization.is_some() {
            out.push(Warning::new(
                Kind::PlainHttpRevocation,
                format!("{ssf}.authorization"),
                "the receiver's credential is sent over plain HTTP with every poll",
            ));
        }
        if s.jwks.uri.starts_with("http://") {
            out.push(Warning::new(
                Kind::PlainHttpRevocation,
                format!("{ssf}.transmitter_jwks.http_uri.uri"),
                "the transmitter's keys are downloaded over plain HTTP: whoever can alter them \
                 can forge events (use https, or a cluster with TLS)",
            ));
        }
        if let Some(max) = p.max_lifetime_secs {
            if s.rule_lifetime_secs < max {
                out.push(Warning::new(
                    Kind::ShortRevocationRules,
                    format!("{ssf}.rule_lifetime"),
                    format!(
                        "rules from events last {}s but tokens may live {max}s (max_lifetime): \
                         a token issued before the event is accepted again once its rule \
                         expires (set rule_lifetime to at least max_lifetime)",
                        s.rule_lifetime_secs
                    ),
                ));
            }
        }
    }
}

/// One feed: plain HTTP, a long poll interval, a long staleness.
#[cfg(feature = "revocation")]
fn feed(out: &mut Vec<Warning>, path: &str, uri_field: &str, f: &FeedSettings) {
    if f.fetch.uri.starts_with("http://") {
        out.push(Warning::new(
            Kind::PlainHttpRevocation,
            format!("{path}.{uri_field}.uri"),
            "the feed is read over plain HTTP: whoever can alter it can drop revocations, or \
             revoke every token (use https, or a cluster with TLS)",
        ));
    }
    let poll_s = f.fetch.cache_duration_ms / 1000;
    if f.fetch.cache_duration_ms > LONG_POLL_MS {
        out.push(Warning::new(
            Kind::SlowRevocation,
            format!("{path}.poll_interval"),
            format!("polled every {poll_s}s: a revoked token stays accepted for up to that long"),
        ));
    }
    let stale_s = f.staleness_ms / 1000;
    if f.staleness_ms > LONG_STALENESS_MS {
        let message = if f.fail_closed {
            format!(
                "fail_closed applies only after {stale_s}s without a successful poll: tokens \
                 revoked meanwhile are accepted for that long"
            )
        } else {
            format!(
                "staleness {stale_s}s without fail_closed: when the feed stops being read the \
                 last good rules apply indefinitely and tokens revoked since are accepted; \
                 alert on jwt_filter_revocation_*_age_seconds, or set fail_closed"
            )
        };
        out.push(Warning::new(
            Kind::StaleRevocation,
            format!("{path}.staleness"),
            message,
        ));
    }
}
