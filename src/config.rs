//! Plugin configuration: the proto3-JSON (snake_case; lowerCamelCase also
//! accepted, as proto3-JSON parsers do) form of Envoy's `jwt_authn`
//! `JwtAuthentication`, parsed strictly (unknown fields are errors) and then
//! validated into an immutable [`Config`] that the request path only reads.
//!
//! Every problem is reported with the JSON path of the field at fault, so the
//! plugin can refuse to start with a message that says what to fix.

use std::collections::BTreeMap;

use crate::authz::{Mode, RuleAuthz};
use crate::crypto::jwks::{Alg, KeySet};
use crate::diag::{self, ConfigError, OneOf};
use crate::extract::{self, Location};
use crate::header_name::{header_name, reserved_header};
use crate::matcher::build::{self as matcher_build, RawRouteMatch, RawStringMatcher};
use crate::matcher::{RouteMatcher, StringMatch};
use crate::remote_jwks::{RawRemoteJwks, RemoteJwks};
use crate::sender::binding::BindingMode;
use crate::sender::dpop::DpopSettings;
use crate::sender::{dpop, replay};
use crate::token::MAX_CLAIM_PATH_SEGMENTS;
use crate::warning::{Kind, Warning};

mod json_path;
mod raw;
mod validate;
pub mod warnings;

use raw::parse_raw;
use validate::Validator;

/// Bounds on what a configuration may ask for; beyond them the config is refused.
pub const MAX_PROVIDERS: usize = 64;
pub const MAX_RULES: usize = 1024;
pub const MAX_REQUIREMENT_DEPTH: usize = 8;

// ---------------------------------------------------------------------------
// Validated configuration: what the request path reads.
// ---------------------------------------------------------------------------

/// A claim copied into a request header.
#[derive(Clone, Debug)]
pub struct ClaimHeader {
    /// Lowercased header name.
    pub header: String,
    /// Dotted claim name split into segments (`org.team` -> [`org`, `team`]).
    pub claim_path: Vec<String>,
}

/// Where a provider's keys come from.
pub enum KeySource {
    Local(KeySet),
    Remote(RemoteJwks),
}

/// One identity provider: who issues tokens, how to find and check them.
pub struct Provider {
    pub name: String,
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
    pub keys: KeySource,
    pub locations: Vec<Location>,
    pub forward: bool,
    pub payload_header: Option<String>,
    pub pad_payload_header: bool,
    pub claim_headers: Vec<ClaimHeader>,
    pub clock_skew_secs: u64,
    pub max_lifetime_secs: Option<u64>,
    pub require_expiration: bool,
    pub allowed_algs: Vec<Alg>,
    /// Verified-token cache entries for this provider (0: no cache).
    pub jwt_cache_size: usize,
    /// `subjects`: the token's `sub` (empty when absent) must match.
    pub subjects: Option<StringMatch>,
    /// DPoP-bound tokens: the policy, `None` when off.
    pub dpop: Option<DpopSettings>,
    /// Certificate-bound tokens (`cnf["x5t#S256"]`).
    pub cert_binding: BindingMode,
    /// The token's `typ` must be `at+jwt` (RFC 9068).
    pub require_access_token_type: bool,
    /// An `iat` in the future beyond the clock skew is refused.
    pub reject_future_iat: bool,
    /// Revocation feeds (`None`: none; the request path skips revocation).
    #[cfg(feature = "revocation")]
    pub revocation: Option<crate::revocation::RevocationSettings>,
}

impl Provider {
    /// The sender bindings this provider checks, for the decision log:
    /// `dpop`, `mtls`, `dpop+mtls`, or `None`.
    pub fn binding_label(&self) -> Option<&'static str> {
        match (self.dpop.is_some(), self.cert_binding != BindingMode::Off) {
            (true, true) => Some("dpop+mtls"),
            (true, false) => Some("dpop"),
            (false, true) => Some("mtls"),
            (false, false) => None,
        }
    }
}

/// A requirement tree with provider names resolved to indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// Token from this provider; `audiences` overrides the provider's when set.
    Provider {
        provider: usize,
        audiences: Option<Vec<String>>,
    },
    Any(Vec<Requirement>),
    All(Vec<Requirement>),
    AllowMissing,
    AllowMissingOrFailed,
}

/// Route match -> requirement (none: no JWT needed).
pub struct Rule {
    pub matcher: RouteMatcher,
    pub requirement: Option<Requirement>,
    /// Scopes, claims and audiences checked after the requirement passed.
    pub authz: RuleAuthz,
    /// This rule's mode (its own `mode`, else the top-level one).
    pub mode: Mode,
    /// The rule's `name` (its metrics' `rule` label), if it has one.
    pub name: Option<String>,
}

/// The validated, immutable plugin configuration.
pub struct Config {
    pub providers: Vec<Provider>,
    pub rules: Vec<Rule>,
    pub bypass_cors_preflight: bool,
    /// Every header the filter may write, lowercased and deduplicated: removed
    /// from each incoming request first so a client cannot spoof them.
    pub sanitize_headers: Vec<String>,
    /// Every warning about this configuration ([`crate::warning`]), in
    /// order: the parser's, then those about the whole configuration.
    pub warnings: Vec<Warning>,
    /// Header (lowercased) carrying the outcome upstream, if configured.
    pub status_header: Option<String>,
    /// Metric name prefix.
    pub stat_prefix: String,
    /// Offload RS*/ES* verification to the host when it can.
    pub host_crypto: bool,
    /// Write the outcome as filter state (`wasm.jwt_filter_*`).
    pub filter_state: bool,
    /// Record the decision-time histogram.
    pub decision_histogram: bool,
    /// Format of the decision log lines.
    pub decision_log_format: crate::decision_log::Format,
    /// `requirement_map`: name -> requirement (`None`: no JWT needed).
    pub requirement_map: BTreeMap<String, Option<Requirement>>,
    /// `filter_state_rules`, tried when no rule matched.
    pub filter_state_rules: Option<FilterStateRules>,
    /// Denials carry no body and no `WWW-Authenticate` header.
    pub strip_failure_response: bool,
    /// Route metadata namespace selecting the requirement per route.
    pub route_metadata_namespace: Option<String>,
    /// The top-level `mode`: applies to requirements chosen by the route's
    /// metadata or by filter state.
    pub default_mode: Mode,
    /// The one DPoP replay record of the filter (all its providers);
    /// `None` without a DPoP provider.
    pub dpop_replay: Option<replay::ReplaySettings>,
}

/// `jwt_authn`'s `filter_state_rules`: the filter state `name` holds a
/// string that picks one of `requires`.
pub struct FilterStateRules {
    pub name: String,
    pub requires: BTreeMap<String, Option<Requirement>>,
}

impl Config {
    /// Parses and validates a plugin configuration. On failure returns every
    /// problem found, each with its JSON path.
    pub fn parse(json: &[u8]) -> Result<Config, Vec<ConfigError>> {
        let raw = parse_raw(json)?;
        let mut v = Validator::default();
        let mut config = v.config(raw);
        if v.errors.is_empty() {
            let more = warnings::of_config(&config);
            config.warnings.extend(more);
            Ok(config)
        } else {
            Err(v.errors)
        }
    }
}

#[cfg(test)]
mod tests;
