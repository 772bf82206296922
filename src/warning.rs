//! Setups the filter accepts but that are unsafe or surprising: one
//! [`Warning`] per problem, each with a stable [`Kind`] and the JSON path of
//! the field at fault.
//!
//! There is one list per configuration, [`Config::warnings`]: the parser adds
//! what it sees while validating (ignored fields, skipped keys, provider
//! settings) and [`of_config`] adds what needs the whole validated config
//! (rules, providers compared with each other). The filter logs that list at
//! configure time, one line each; the `jwt-filter-check` tool prints the same
//! list (plus [`Kind::PathNotNormalized`], which needs the Envoy bootstrap
//! the filter never sees). Keys that cannot be used safely at all are not
//! here: the JWKS parser refuses them ([`crate::jwks`]: `key_ops` without
//! `verify`, duplicate members, HMAC secrets under 16 bytes).

use std::fmt;

use crate::config::{Config, KeySource, Provider, Requirement, Rule};
use crate::jwks::Alg;
use crate::matcher::PathMatcher;

/// What a warning is about: a stable id (its [`Kind::as_str`]) that tools
/// and tests can match on while the message text changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A route match field `jwt_authn`'s rule matcher ignores.
    IgnoredMatchField,
    /// A key of a local JWKS that cannot be used and is skipped.
    SkippedKey,
    /// A remote JWKS fetched over plain HTTP.
    PlainHttpJwks,
    /// An HMAC secret shorter than the hash output.
    ShortHmacSecret,
    /// A DPoP replay record per worker.
    DpopReplayPerWorker,
    /// `forward: true` on a DPoP provider.
    DpopTokenForwarded,
    /// A provider without `dpop` sharing its issuer with one that has it.
    DpopIssuerAcceptsBearer,
    /// OIDC discovery from a plain-HTTP URI or another host than the issuer's.
    DiscoveryUntrusted,
    /// A provider without `issuer`.
    NoIssuer,
    /// A provider without audiences (and not every use sets them).
    NoAudiences,
    /// `require_expiration: false`.
    NoRequireExpiration,
    /// Tokens accepted from query parameters (`from_params`).
    TokenInQuery,
    /// No token location set: the `access_token` query parameter is one.
    DefaultTokenLocations,
    /// `clock_skew_seconds` over 300.
    LargeClockSkew,
    /// Every rule uses `allow_missing_or_failed`.
    NeverRejects,
    /// `allow_missing_or_failed` on a catch-all rule.
    AllowFailedCatchAll,
    /// An exempting `prefix` that is not a path segment.
    StringPrefixExemption,
    /// A rule that exempts requests by a request header.
    HeaderExemption,
    /// Report mode, top-level or on a rule.
    ReportMode,
    /// An exempting rule behind an HTTP connection manager that does not
    /// normalise paths (checker only: it needs the Envoy bootstrap).
    PathNotNormalized,
}

impl Kind {
    pub const ALL: [Kind; 20] = [
        Kind::IgnoredMatchField,
        Kind::SkippedKey,
        Kind::PlainHttpJwks,
        Kind::ShortHmacSecret,
        Kind::DpopReplayPerWorker,
        Kind::DpopTokenForwarded,
        Kind::DpopIssuerAcceptsBearer,
        Kind::DiscoveryUntrusted,
        Kind::NoIssuer,
        Kind::NoAudiences,
        Kind::NoRequireExpiration,
        Kind::TokenInQuery,
        Kind::DefaultTokenLocations,
        Kind::LargeClockSkew,
        Kind::NeverRejects,
        Kind::AllowFailedCatchAll,
        Kind::StringPrefixExemption,
        Kind::HeaderExemption,
        Kind::ReportMode,
        Kind::PathNotNormalized,
    ];

    /// The stable snake_case id.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::IgnoredMatchField => "ignored_match_field",
            Kind::SkippedKey => "skipped_key",
            Kind::PlainHttpJwks => "plain_http_jwks",
            Kind::ShortHmacSecret => "short_hmac_secret",
            Kind::DpopReplayPerWorker => "dpop_replay_per_worker",
            Kind::DpopTokenForwarded => "dpop_token_forwarded",
            Kind::DpopIssuerAcceptsBearer => "dpop_issuer_accepts_bearer",
            Kind::DiscoveryUntrusted => "discovery_untrusted",
            Kind::NoIssuer => "no_issuer",
            Kind::NoAudiences => "no_audiences",
            Kind::NoRequireExpiration => "no_require_expiration",
            Kind::TokenInQuery => "token_in_query",
            Kind::DefaultTokenLocations => "default_token_locations",
            Kind::LargeClockSkew => "large_clock_skew",
            Kind::NeverRejects => "never_rejects",
            Kind::AllowFailedCatchAll => "allow_failed_catch_all",
            Kind::StringPrefixExemption => "string_prefix_exemption",
            Kind::HeaderExemption => "header_exemption",
            Kind::ReportMode => "report_mode",
            Kind::PathNotNormalized => "path_not_normalized",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One unsafe or surprising setup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub kind: Kind,
    /// JSON path of the field at fault (empty: the whole configuration).
    pub path: String,
    pub message: String,
}

impl Warning {
    pub fn new(kind: Kind, path: impl Into<String>, message: impl Into<String>) -> Self {
        Warning {
            kind,
            path: path.into(),
            message: message.into(),
        }
    }
}

/// `<path>: <message> [<kind>]`: the filter logs it after `warning: `, and
/// the checker prints it after `warning: `.
impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{} [{}]", self.message, self.kind)
        } else {
            write!(f, "{}: {} [{}]", self.path, self.message, self.kind)
        }
    }
}

/// Output size of the hash behind an HMAC algorithm, in bytes.
fn hmac_output_len(alg: Alg) -> Option<usize> {
    match alg {
        Alg::HS256 => Some(32),
        Alg::HS384 => Some(48),
        Alg::HS512 => Some(64),
        _ => None,
    }
}

/// Clock skew beyond which a warning says so.
pub const LARGE_CLOCK_SKEW_SECS: u64 = 300;

/// The warnings about one provider that its raw settings show (the parser
/// calls this while it validates the provider): `explicit_*` say whether the
/// configuration set `from_headers`, `from_params`, `from_cookies`.
pub(crate) fn of_provider_settings(
    path: &str,
    require_expiration: bool,
    clock_skew_secs: Option<u32>,
    explicit: [bool; 3],
    out: &mut Vec<Warning>,
) {
    if !require_expiration {
        out.push(Warning::new(
            Kind::NoRequireExpiration,
            format!("{path}.require_expiration"),
            "require_expiration is false: a token without \"exp\" never expires \
             (set require_expiration: true, and max_lifetime)",
        ));
    }
    let [from_headers, from_params, from_cookies] = explicit;
    if from_params {
        out.push(Warning::new(
            Kind::TokenInQuery,
            format!("{path}.from_params"),
            "tokens are accepted from query parameters: URLs end up in access logs, browser \
             history and Referer headers (prefer from_headers)",
        ));
    } else if !from_headers && !from_cookies {
        out.push(Warning::new(
            Kind::DefaultTokenLocations,
            path,
            "no from_headers/from_params/from_cookies: by default (as jwt_authn) tokens are also \
             accepted from the \"access_token\" query parameter, which ends up in access logs \
             (set from_headers: [{name: authorization, value_prefix: \"Bearer \"}] to accept the \
             header only)",
        ));
    }
    if let Some(skew) = clock_skew_secs.filter(|s| u64::from(*s) > LARGE_CLOCK_SKEW_SECS) {
        out.push(Warning::new(
            Kind::LargeClockSkew,
            format!("{path}.clock_skew_seconds"),
            format!(
                "{skew}s of clock skew lets expired tokens through for that long; fix the clocks \
                 (NTP) instead"
            ),
        ));
    }
}

/// The host of an `http(s)://` URI or an issuer that is one (lowercased,
/// port and user info dropped); `None` for anything else.
pub fn uri_host(uri: &str) -> Option<String> {
    let lower = uri
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rest = if lower.starts_with("https://") {
        uri.get(8..)?
    } else if lower.starts_with("http://") {
        uri.get(7..)?
    } else {
        return None;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    (!host.is_empty()).then(|| host.trim_end_matches('.').to_ascii_lowercase())
}

/// What is wrong with a `jwks_uri` learned by OIDC discovery for an issuer:
/// it is plain HTTP, or on another host than the issuer's. `None`: neither.
pub fn discovered_uri_problem(jwks_uri: &str, issuer: Option<&str>) -> Option<String> {
    if jwks_uri
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
    {
        return Some("it is plain HTTP: whoever can alter it can mint tokens".into());
    }
    let issuer_host = issuer.and_then(uri_host)?;
    match uri_host(jwks_uri) {
        Some(h) if h == issuer_host => None,
        h => Some(format!(
            "its host {:?} is not the issuer's ({issuer_host:?}): the keys are trusted from \
             wherever the discovery document points",
            h.unwrap_or_default()
        )),
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
        if d.replay == crate::dpop::ReplayScope::Worker {
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

#[cfg(test)]
mod tests;
