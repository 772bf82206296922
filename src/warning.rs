//! Setups the filter accepts but that are unsafe or surprising: one
//! [`Warning`] per problem, each with a stable [`Kind`] and the JSON path of
//! the field at fault.
//!
//! There is one list per configuration, `Config::warnings`: the parser adds
//! what it sees while validating (ignored fields, skipped keys, provider
//! settings) and `config::warnings::of_config` adds what needs the whole
//! validated config (rules, providers compared with each other). This module
//! is a leaf (the type and the pure checks); the config analysis lives with
//! the config. The filter logs that list at
//! configure time, one line each; the `jwt-filter-check` tool prints the same
//! list (plus [`Kind::PathNotNormalized`], which needs the Envoy bootstrap
//! the filter never sees). Keys that cannot be used safely at all are not
//! here: the JWKS parser refuses them ([`crate::crypto::jwks`]: `key_ops` without
//! `verify`, duplicate members, HMAC secrets under 16 bytes).

use std::fmt;

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
    /// A revocation feed, its transmitter keys or its credential over plain HTTP.
    PlainHttpRevocation,
    /// A revocation feed polled so rarely that revoked tokens stay accepted long.
    SlowRevocation,
    /// A revocation feed allowed to go unread long (with or without `fail_closed`).
    StaleRevocation,
    /// Rules from revocation events that expire before the tokens they match.
    ShortRevocationRules,
}

impl Kind {
    pub const ALL: [Kind; 24] = [
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
        Kind::PlainHttpRevocation,
        Kind::SlowRevocation,
        Kind::StaleRevocation,
        Kind::ShortRevocationRules,
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
            Kind::PlainHttpRevocation => "plain_http_revocation",
            Kind::SlowRevocation => "slow_revocation",
            Kind::StaleRevocation => "stale_revocation",
            Kind::ShortRevocationRules => "short_revocation_rules",
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

#[cfg(test)]
mod tests;
