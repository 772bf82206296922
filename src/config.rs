//! Plugin configuration: the proto3-JSON (snake_case; lowerCamelCase also
//! accepted, as proto3-JSON parsers do) form of Envoy's `jwt_authn`
//! `JwtAuthentication`, parsed strictly (unknown fields are errors) and then
//! validated into an immutable [`Config`] that the request path only reads.
//!
//! Every problem is reported with the JSON path of the field at fault, so the
//! plugin can refuse to start with a message that says what to fix.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::authz::{Mode, RuleAuthz};
use crate::crypto::jwks::{Alg, KeySet};
use crate::diag::{self, ConfigError, OneOf};
use crate::extract::{self, Location};
use crate::header_name::{header_name, reserved_header};
use crate::matcher::build::{self as matcher_build, RawRouteMatch, RawStringMatcher};
use crate::matcher::{RouteMatcher, StringMatch};
use crate::remote_jwks::{RawRemoteJwks, RemoteJwks};
use crate::sender::binding::BindingMode;
use crate::sender::dpop::{DpopSettings, DPOP_PREFIX};
use crate::sender::{dpop, replay};
use crate::token::MAX_CLAIM_PATH_SEGMENTS;
use crate::warning::{Kind, Warning};

pub mod warnings;

/// Bounds on what a configuration may ask for; beyond them the config is refused.
pub const MAX_PROVIDERS: usize = 64;
pub const MAX_RULES: usize = 1024;
pub const MAX_REQUIREMENT_DEPTH: usize = 8;

// ---------------------------------------------------------------------------
// Raw serde types: the JSON as written.
// ---------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default, alias = "bypassCorsPreflight")]
    bypass_cors_preflight: bool,
    /// Our addition: default rule mode, `enforce` or `report`.
    #[serde(default)]
    mode: Option<OneOf<Mode>>,
    /// Our addition: header set to the outcome on requests let through.
    #[serde(default, alias = "statusHeader")]
    status_header: Option<String>,
    /// Our addition: metric name prefix (default `jwt_filter`).
    #[serde(default, alias = "statPrefix")]
    stat_prefix: Option<String>,
    /// Our addition: verify RS*/ES* through Envoy's
    /// `verify_signature` when it passes the start-up probe (default true);
    /// false forces the pure-Rust path.
    #[serde(default, alias = "hostCrypto")]
    host_crypto: Option<bool>,
    /// Our addition: write the decision, status, reason, provider and
    /// verified payload as filter state for access logs and other filters
    /// (like `jwt_authn`'s `payload_in_metadata`; off by default, it costs
    /// host calls and a JSON serialisation per request).
    #[serde(default, alias = "filterState")]
    filter_state: bool,
    /// Our addition: record the decision-time histogram (default true; it
    /// costs two host calls per decision).
    #[serde(default, alias = "decisionHistogram")]
    decision_histogram: Option<bool>,
    /// Our addition: `text` (default) or `json` decision log lines.
    #[serde(default, alias = "decisionLogFormat")]
    decision_log_format: Option<OneOf<crate::decision_log::Format>>,
    /// Named requirements, for rules' and routes' `requirement_name`.
    #[serde(default, alias = "requirementMap")]
    requirement_map: BTreeMap<String, RawRequirement>,
    /// Requirements chosen by a filter state string, when no rule matched.
    #[serde(default, alias = "filterStateRules")]
    filter_state_rules: Option<RawFilterStateRule>,
    /// Denials carry no body and no `WWW-Authenticate`.
    #[serde(default, alias = "stripFailureResponse")]
    strip_failure_response: bool,
    /// Our addition: the route metadata namespace (`filter_metadata`) whose
    /// `requirement_name` / `disabled` select the requirement per route, as
    /// `jwt_authn`'s per-route config does.
    #[serde(default, alias = "routeMetadataNamespace")]
    route_metadata_namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilterStateRule {
    name: String,
    #[serde(default)]
    requires: BTreeMap<String, RawRequirement>,
}

/// `jwt_authn`'s `jwt_cache_config`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawJwtCacheConfig {
    /// Entries; 0 or absent: the default (100, as Envoy).
    #[serde(default, alias = "jwtCacheSize")]
    jwt_cache_size: u32,
    /// Our addition: turn the provider's cache off.
    #[serde(default)]
    disabled: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default, alias = "localJwks")]
    local_jwks: Option<RawDataSource>,
    #[serde(default, alias = "remoteJwks")]
    remote_jwks: Option<RawRemoteJwks>,
    #[serde(default, alias = "fromHeaders")]
    from_headers: Vec<extract::build::RawHeaderLocation>,
    #[serde(default, alias = "fromParams")]
    from_params: Vec<String>,
    #[serde(default, alias = "fromCookies")]
    from_cookies: Vec<String>,
    #[serde(default)]
    forward: bool,
    #[serde(default, alias = "forwardPayloadHeader")]
    forward_payload_header: String,
    #[serde(default, alias = "padForwardPayloadHeader")]
    pad_forward_payload_header: bool,
    #[serde(default, alias = "claimToHeaders")]
    claim_to_headers: Vec<RawClaimToHeader>,
    #[serde(default, alias = "clockSkewSeconds")]
    clock_skew_seconds: Option<u32>,
    #[serde(default, alias = "maxLifetime")]
    max_lifetime: Option<String>,
    #[serde(default, alias = "requireExpiration")]
    require_expiration: bool,
    /// Our addition: which JWS algorithms this provider accepts.
    #[serde(default, alias = "allowedAlgorithms")]
    allowed_algorithms: Option<Vec<OneOf<Alg>>>,
    /// Verified-token cache; on by default, unlike `jwt_authn`.
    #[serde(default, alias = "jwtCacheConfig")]
    jwt_cache_config: Option<RawJwtCacheConfig>,
    /// A string matcher the token's `sub` must satisfy.
    #[serde(default)]
    subjects: Option<RawStringMatcher>,
    /// Accepted: Envoy recomputes the route after every request header the
    /// filter writes, whatever this says (see docs/jwt_authn-fields.md).
    #[serde(default, alias = "clearRouteCache")]
    #[allow(dead_code)]
    clear_route_cache: bool,
    /// Refused with the reason: they write dynamic metadata.
    #[serde(default, alias = "payloadInMetadata")]
    payload_in_metadata: Option<serde_json::Value>,
    #[serde(default, alias = "headerInMetadata")]
    header_in_metadata: Option<serde_json::Value>,
    #[serde(default, alias = "failedStatusInMetadata")]
    failed_status_in_metadata: Option<serde_json::Value>,
    #[serde(default, alias = "normalizePayloadInMetadata")]
    normalize_payload_in_metadata: Option<serde_json::Value>,
    /// Our addition: DPoP-bound tokens (RFC 9449).
    #[serde(default)]
    dpop: Option<dpop::build::RawDpop>,
    /// Our addition: certificate-bound tokens (RFC 8705).
    #[serde(default, alias = "certificateBinding")]
    certificate_binding: Option<OneOf<BindingMode>>,
    /// Our addition: the token's `typ` must be `at+jwt` (RFC 9068).
    #[serde(default, alias = "requireAccessTokenType")]
    require_access_token_type: bool,
    /// Our addition: refuse an `iat` in the future beyond the clock skew.
    #[serde(default, alias = "rejectFutureIat")]
    reject_future_iat: bool,
    /// Our addition: revocation rules from a deny list and/or an SSF stream.
    #[serde(default)]
    revocation: Option<crate::revocation::build::RawRevocation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataSource {
    #[serde(default, alias = "inlineString")]
    inline_string: Option<String>,
    /// Refused with the reason: a wasm filter cannot read files.
    #[serde(default)]
    filename: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaimToHeader {
    #[serde(alias = "headerName")]
    header_name: String,
    #[serde(alias = "claimName")]
    claim_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(rename = "match")]
    route: RawRouteMatch,
    #[serde(default)]
    requires: Option<RawRequirement>,
    /// Our additions: authorization and report mode per rule.
    /// A requirement from `requirement_map`, instead of `requires`.
    #[serde(default, alias = "requirementName")]
    requirement_name: Option<String>,
    #[serde(default, alias = "requiredScopes")]
    required_scopes: Vec<String>,
    #[serde(default, alias = "requiredClaims")]
    required_claims: Vec<crate::authz::RawRequiredClaim>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    mode: Option<OneOf<Mode>>,
    /// Our addition: a name for the rule's metrics (`rule` label).
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    #[serde(default, alias = "providerName")]
    provider_name: Option<String>,
    #[serde(default, alias = "providerAndAudiences")]
    provider_and_audiences: Option<RawProviderAndAudiences>,
    #[serde(default, alias = "requiresAny")]
    requires_any: Option<RawRequirementList>,
    #[serde(default, alias = "requiresAll")]
    requires_all: Option<RawRequirementList>,
    #[serde(default, alias = "allowMissingOrFailed")]
    allow_missing_or_failed: Option<diag::Empty>,
    #[serde(default, alias = "allowMissing")]
    allow_missing: Option<diag::Empty>,
    /// Refused with the reason: it lets unverified claims through.
    #[serde(default, alias = "extractOnlyWithoutValidation")]
    extract_only_without_validation: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProviderAndAudiences {
    #[serde(alias = "providerName")]
    provider_name: String,
    #[serde(default)]
    audiences: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirementList {
    requirements: Vec<RawRequirement>,
}

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

fn parse_raw(json: &[u8]) -> Result<RawConfig, Vec<ConfigError>> {
    let trimmed = trim_ascii(json);
    if trimmed.is_empty() {
        return Err(vec![ConfigError {
            path: String::new(),
            message: "the plugin configuration is empty; expected a JSON object".into(),
        }]);
    }
    if trimmed.first() != Some(&b'{') {
        return Err(vec![ConfigError {
            path: String::new(),
            message: "the plugin configuration must be a JSON object".into(),
        }]);
    }
    match serde_json::from_slice::<RawConfig>(trimmed) {
        Ok(raw) => Ok(raw),
        Err(e) => {
            let mut at = error_offset(trimmed, e.line(), e.column());
            // An error raised after a value was read (an unknown enum value, a
            // number out of range) takes the position where the enclosing object
            // or array ended when it was the last member: the path is that member,
            // not the container. A missing field is the container's.
            let closed = at
                .checked_sub(1)
                .and_then(|i| trimmed.get(i))
                .is_some_and(|&c| c == b'}' || c == b']');
            if closed && e.is_data() && !e.to_string().starts_with("missing field") {
                at -= 1;
            }
            Err(vec![ConfigError {
                path: json_path_at(trimmed, at),
                message: e.to_string(),
            }])
        }
    }
}

/// The byte offset of serde_json's error position: `line` is 1-based, `column`
/// the bytes read on that line.
fn error_offset(json: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match json
            .get(start..)
            .and_then(|rest| rest.iter().position(|&c| c == b'\n'))
        {
            Some(nl) => start += nl + 1,
            None => break,
        }
    }
    start + column
}

/// The JSON path (`providers.a.issuer`, `rules[0].match`) of the member or element
/// being read when the parser stopped at byte `offset`: the key just read, the
/// value just read, or the object just closed. Worked out by
/// scanning the text up to there, so the configuration types need no path-tracking
/// wrappers (one generic copy of each deserializer fewer in the module).
fn json_path_at(json: &[u8], offset: usize) -> String {
    enum Seg<'a> {
        Key(Option<&'a [u8]>),
        Index(usize),
    }
    let text = json.get(..offset).unwrap_or(json);
    let mut stack: Vec<Seg> = Vec::new();
    let mut want_key = false;
    let mut i = 0;
    while let Some(&c) = text.get(i) {
        match c {
            b'{' => {
                stack.push(Seg::Key(None));
                want_key = true;
            }
            b'[' => {
                stack.push(Seg::Index(0));
                want_key = false;
            }
            b'}' | b']' => {
                stack.pop();
                want_key = false;
            }
            b',' => match stack.last_mut() {
                Some(Seg::Index(n)) => *n += 1,
                Some(Seg::Key(k)) => {
                    *k = None;
                    want_key = true;
                }
                None => {}
            },
            b'"' => {
                let start = i + 1;
                i = start;
                while let Some(&c) = text.get(i) {
                    match c {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                if want_key {
                    if let Some(Seg::Key(k)) = stack.last_mut() {
                        *k = text.get(start..i.min(text.len()));
                    }
                    want_key = false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for seg in &stack {
        match seg {
            Seg::Key(Some(k)) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&String::from_utf8_lossy(k));
            }
            Seg::Key(None) => {}
            Seg::Index(n) => {
                path.push('[');
                path.push_str(&n.to_string());
                path.push(']');
            }
        }
    }
    path
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    b.get(start..end).unwrap_or_default()
}

#[derive(Default)]
struct Validator {
    errors: Vec<ConfigError>,
    warnings: Vec<Warning>,
}

impl Validator {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        if raw.providers.len() > MAX_PROVIDERS {
            self.err("providers", format!("at most {MAX_PROVIDERS} providers"));
        }
        if raw.rules.len() > MAX_RULES {
            self.err("rules", format!("at most {MAX_RULES} rules"));
        }
        let mut providers = Vec::with_capacity(raw.providers.len());
        for (name, p) in raw.providers {
            if let Some(p) = self.provider(name, p) {
                providers.push(p);
            }
        }
        let names: Vec<String> = providers.iter().map(|p| p.name.clone()).collect();
        let default_mode = raw.mode.map_or(Mode::Enforce, |m| m.0);
        let requirement_map =
            self.requirement_table("requirement_map", raw.requirement_map, &names);
        let filter_state_rules = raw.filter_state_rules.map(|f| {
            if f.name.is_empty() || f.name.contains('\0') {
                self.err("filter_state_rules.name", "name is empty or has a NUL byte");
            }
            FilterStateRules {
                name: f.name,
                requires: self.requirement_table("filter_state_rules.requires", f.requires, &names),
            }
        });
        let route_metadata_namespace = raw.route_metadata_namespace.filter(|ns| {
            let ok = !ns.is_empty() && !ns.contains('\0');
            if !ok {
                self.err(
                    "route_metadata_namespace",
                    "namespace is empty or has a NUL byte",
                );
            }
            ok
        });
        let mut rules = Vec::with_capacity(raw.rules.len());
        let mut rule_names: Vec<String> = Vec::new();
        for (i, r) in raw.rules.into_iter().enumerate() {
            let path = format!("rules[{i}]");
            let matcher = matcher_build::route_match(
                &format!("{path}.match"),
                r.route,
                &mut self.errors,
                &mut self.warnings,
            );
            let has_requires = r.requires.is_some() || r.requirement_name.is_some();
            let requirement = match (r.requires, r.requirement_name) {
                (Some(_), Some(_)) => {
                    self.err(&path, "set only one of requires and requirement_name");
                    None
                }
                (Some(req), None) => self.requirement(&format!("{path}.requires"), req, &names, 0),
                (None, Some(name)) => match requirement_map.get(&name) {
                    Some(req) => req.clone(),
                    None => {
                        self.err(
                            format!("{path}.requirement_name"),
                            format!("{name:?} is not in requirement_map"),
                        );
                        None
                    }
                },
                (None, None) => None,
            };
            let authz = crate::authz::validate(
                &path,
                r.required_scopes,
                r.required_claims,
                r.audiences,
                has_requires,
                &mut self.errors,
            );
            let mode = r.mode.map_or(default_mode, |m| m.0);
            let name = r.name.filter(|n| self.rule_name(&path, n, &rule_names));
            rule_names.extend(name.clone());
            if let Some(matcher) = matcher {
                rules.push(Rule {
                    matcher,
                    requirement,
                    authz,
                    mode,
                    name,
                });
            }
        }
        let mut sanitize: Vec<String> = Vec::new();
        for p in &providers {
            for h in p
                .claim_headers
                .iter()
                .map(|c| &c.header)
                .chain(p.payload_header.iter())
            {
                if !sanitize.contains(h) {
                    sanitize.push(h.clone());
                }
            }
        }
        let status_header = raw
            .status_header
            .and_then(|h| self.written_header("status_header", &h));
        if let Some(h) = &status_header {
            if !sanitize.contains(h) {
                sanitize.push(h.clone());
            }
        }
        let stat_prefix = raw
            .stat_prefix
            .unwrap_or_else(|| crate::metrics::DEFAULT_STAT_PREFIX.to_string());
        if let Err(e) = crate::metrics::check_prefix(&stat_prefix) {
            self.err("stat_prefix", e);
        }
        let dpop_replay =
            replay::ReplaySettings::for_providers(providers.iter().filter_map(|p| p.dpop.as_ref()));
        Config {
            dpop_replay,
            requirement_map,
            filter_state_rules,
            strip_failure_response: raw.strip_failure_response,
            route_metadata_namespace,
            default_mode,
            providers,
            rules,
            bypass_cors_preflight: raw.bypass_cors_preflight,
            sanitize_headers: sanitize,
            warnings: std::mem::take(&mut self.warnings),
            status_header,
            stat_prefix,
            host_crypto: raw.host_crypto.unwrap_or(true),
            filter_state: raw.filter_state,
            decision_histogram: raw.decision_histogram.unwrap_or(true),
            decision_log_format: raw.decision_log_format.map(|f| f.0).unwrap_or_default(),
        }
    }

    /// A rule `name`: a metric label value, so `[A-Za-z0-9_-]{1,64}`, unique.
    fn rule_name(&mut self, path: &str, name: &str, seen: &[String]) -> bool {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            self.err(
                format!("{path}.name"),
                format!("invalid rule name {name:?}: use 1 to 64 characters of [A-Za-z0-9_-]"),
            );
        } else if seen.iter().any(|s| s == name) {
            self.err(
                format!("{path}.name"),
                format!("rule name {name:?} is used by an earlier rule"),
            );
        }
        ok && !seen.iter().any(|s| s == name)
    }

    /// A map of named requirements; an empty requirement (`{}`) needs no JWT.
    fn requirement_table(
        &mut self,
        path: &str,
        raw: BTreeMap<String, RawRequirement>,
        providers: &[String],
    ) -> BTreeMap<String, Option<Requirement>> {
        if raw.len() > MAX_RULES {
            self.err(path, format!("at most {MAX_RULES} entries"));
        }
        let mut out = BTreeMap::new();
        for (name, req) in raw {
            let p = format!("{path}.{name}");
            if name.is_empty() {
                self.err(path, "name is empty");
            }
            let empty = req.provider_name.is_none()
                && req.provider_and_audiences.is_none()
                && req.requires_any.is_none()
                && req.requires_all.is_none()
                && req.allow_missing.is_none()
                && req.allow_missing_or_failed.is_none()
                && req.extract_only_without_validation.is_none();
            let value = if empty {
                None
            } else {
                self.requirement(&p, req, providers, 0)
            };
            out.insert(name, value);
        }
        out
    }

    fn provider(&mut self, name: String, raw: RawProvider) -> Option<Provider> {
        let path = format!("providers.{name}");
        let before = self.errors.len();
        if name.is_empty() {
            self.err("providers", "provider name is empty");
        }
        if let Some(iss) = &raw.issuer {
            if iss.is_empty() {
                self.err(
                    format!("{path}.issuer"),
                    "issuer is empty; omit it to accept any issuer",
                );
            }
        }
        for (i, a) in raw.audiences.iter().enumerate() {
            if a.is_empty() {
                self.err(format!("{path}.audiences[{i}]"), "audience is empty");
            }
        }

        let mut allowed_algs = match &raw.allowed_algorithms {
            None => Alg::ALL.to_vec(),
            Some(list) if list.is_empty() => {
                self.err(format!("{path}.allowed_algorithms"), "list is empty");
                Vec::new()
            }
            Some(list) => list.iter().map(|a| a.0).collect(),
        };

        let keys = match (raw.local_jwks, raw.remote_jwks) {
            (None, None) => {
                self.err(
                    path.clone(),
                    "provider has no key source: set local_jwks.inline_string or remote_jwks",
                );
                None
            }
            (Some(_), Some(_)) => {
                self.err(path.clone(), "set only one of local_jwks and remote_jwks");
                None
            }
            (None, Some(remote)) => {
                if raw.allowed_algorithms.is_none() {
                    allowed_algs.retain(|a| !a.is_hmac());
                } else if allowed_algs.iter().any(|a| a.is_hmac()) {
                    self.err(
                        format!("{path}.allowed_algorithms"),
                        "HS* algorithms are only allowed with local_jwks: a shared secret must not travel in a fetched JWKS",
                    );
                }
                crate::remote_jwks::remote_jwks(
                    &format!("{path}.remote_jwks"),
                    remote,
                    raw.issuer.as_deref(),
                    &mut self.errors,
                )
                .map(KeySource::Remote)
            }
            (Some(ds), None) => match ds.inline_string {
                None if ds.filename.is_some() => {
                    self.err(
                        format!("{path}.local_jwks.filename"),
                        "a wasm filter cannot read files; put the JWKS in inline_string \
                         (jwt-filter-check convert inlines the file)",
                    );
                    None
                }
                None => {
                    self.err(format!("{path}.local_jwks"), "inline_string is required");
                    None
                }
                Some(text) => match KeySet::parse(&text) {
                    Ok((set, warnings)) => {
                        for w in warnings {
                            self.warnings.push(Warning::new(
                                Kind::SkippedKey,
                                format!("{path}.local_jwks"),
                                format!("skipped key: {w}"),
                            ));
                        }
                        if !set
                            .keys()
                            .iter()
                            .any(|k| allowed_algs.iter().any(|a| k.fits(*a)))
                        {
                            self.err(
                                format!("{path}.local_jwks.inline_string"),
                                "no key in the JWKS can verify any allowed algorithm",
                            );
                        }
                        Some(KeySource::Local(set))
                    }
                    Err(e) => {
                        self.err(format!("{path}.local_jwks.inline_string"), e);
                        None
                    }
                },
            },
        };

        crate::warning::of_provider_settings(
            &path,
            raw.require_expiration,
            raw.clock_skew_seconds,
            [
                !raw.from_headers.is_empty(),
                !raw.from_params.is_empty(),
                !raw.from_cookies.is_empty(),
            ],
            &mut self.warnings,
        );
        let mut locations = extract::build::locations(
            &path,
            &raw.from_headers,
            &raw.from_params,
            &raw.from_cookies,
            &mut self.errors,
        );

        let payload_header = if raw.forward_payload_header.is_empty() {
            None
        } else {
            self.written_header(
                &format!("{path}.forward_payload_header"),
                &raw.forward_payload_header,
            )
        };
        let mut claim_headers = Vec::new();
        for (i, c) in raw.claim_to_headers.iter().enumerate() {
            let cpath = format!("{path}.claim_to_headers[{i}]");
            let header = self.written_header(&format!("{cpath}.header_name"), &c.header_name);
            let segments: Vec<String> = c.claim_name.split('.').map(str::to_string).collect();
            if c.claim_name.is_empty() || segments.iter().any(String::is_empty) {
                self.err(
                    format!("{cpath}.claim_name"),
                    "claim name is empty or has an empty segment",
                );
            } else if segments.len() > MAX_CLAIM_PATH_SEGMENTS {
                self.err(
                    format!("{cpath}.claim_name"),
                    "claim name is nested too deeply",
                );
            } else if let Some(header) = header {
                claim_headers.push(ClaimHeader {
                    header,
                    claim_path: segments,
                });
            }
        }

        let max_lifetime_secs = match &raw.max_lifetime {
            None => None,
            Some(d) => match diag::parse_duration_ms(d) {
                Ok(0) => {
                    self.err(format!("{path}.max_lifetime"), "must be greater than 0s");
                    None
                }
                Ok(ms) => Some(ms.div_ceil(1000)),
                Err(e) => {
                    self.err(format!("{path}.max_lifetime"), e);
                    None
                }
            },
        };

        for (field, set) in [
            ("payload_in_metadata", raw.payload_in_metadata.is_some()),
            ("header_in_metadata", raw.header_in_metadata.is_some()),
            (
                "failed_status_in_metadata",
                raw.failed_status_in_metadata.is_some(),
            ),
            (
                "normalize_payload_in_metadata",
                raw.normalize_payload_in_metadata.is_some(),
            ),
        ] {
            if set {
                self.err(
                    format!("{path}.{field}"),
                    "a wasm filter cannot write dynamic metadata; set filter_state: true \
                     instead (the verified payload is then filter state wasm.jwt_filter_payload)",
                );
            }
        }
        let subjects = raw.subjects.and_then(|m| {
            matcher_build::string_matcher(&format!("{path}.subjects"), m, &mut self.errors)
        });
        let dpop = raw.dpop.and_then(|d| {
            dpop::build::settings(
                &format!("{path}.dpop"),
                d,
                raw.clock_skew_seconds,
                &mut self.errors,
            )
        });
        let cert_binding = raw.certificate_binding.map_or(BindingMode::Off, |m| m.0);
        if dpop.is_some()
            && !locations.iter().any(|l| {
                matches!(l, Location::Header { name, prefix }
                    if name == "authorization" && prefix.eq_ignore_ascii_case(DPOP_PREFIX))
            })
        {
            // A DPoP-bound token arrives as `Authorization: DPoP <token>`.
            locations.insert(
                0,
                Location::Header {
                    name: "authorization".into(),
                    prefix: DPOP_PREFIX.into(),
                },
            );
        }

        let jwt_cache_size = match &raw.jwt_cache_config {
            None => crate::token_cache::DEFAULT_ENTRIES,
            Some(c) if c.disabled => 0,
            Some(c) if c.jwt_cache_size == 0 => crate::token_cache::DEFAULT_ENTRIES,
            Some(c) if c.jwt_cache_size as usize > crate::token_cache::MAX_ENTRIES => {
                self.err(
                    format!("{path}.jwt_cache_config.jwt_cache_size"),
                    format!("at most {}", crate::token_cache::MAX_ENTRIES),
                );
                0
            }
            Some(c) => c.jwt_cache_size as usize,
        };

        let revocation = raw.revocation.and_then(|r| {
            crate::revocation::build::settings(
                &format!("{path}.revocation"),
                &name,
                r,
                max_lifetime_secs,
                &mut self.errors,
            )
        });

        if self.errors.len() != before {
            return None;
        }
        Some(Provider {
            name,
            issuer: raw.issuer,
            audiences: raw.audiences,
            keys: keys?,
            locations,
            forward: raw.forward,
            payload_header,
            pad_payload_header: raw.pad_forward_payload_header,
            claim_headers,
            clock_skew_secs: u64::from(raw.clock_skew_seconds.unwrap_or(60)),
            max_lifetime_secs,
            require_expiration: raw.require_expiration,
            allowed_algs,
            jwt_cache_size,
            subjects,
            dpop,
            cert_binding,
            require_access_token_type: raw.require_access_token_type,
            reject_future_iat: raw.reject_future_iat,
            revocation,
        })
    }

    /// A header the filter writes: valid, lowercased, not reserved.
    fn written_header(&mut self, path: &str, name: &str) -> Option<String> {
        match header_name(name) {
            Ok(n) if reserved_header(&n) || n == "authorization" || n == "cookie" => {
                self.err(path, format!("the filter may not write header {n:?}"));
                None
            }
            Ok(n) => Some(n),
            Err(e) => {
                self.err(path, e);
                None
            }
        }
    }

    fn requirement(
        &mut self,
        path: &str,
        raw: RawRequirement,
        providers: &[String],
        depth: usize,
    ) -> Option<Requirement> {
        if depth >= MAX_REQUIREMENT_DEPTH {
            self.err(
                path,
                format!("requirements nested deeper than {MAX_REQUIREMENT_DEPTH}"),
            );
            return None;
        }
        if raw.extract_only_without_validation.is_some() {
            self.err(
                format!("{path}.extract_only_without_validation"),
                "refused: it forwards claims of tokens that are not verified; use \
                 allow_missing_or_failed with the provider instead (claims are forwarded \
                 only from verified tokens)",
            );
            return None;
        }
        let set = [
            raw.provider_name.is_some(),
            raw.provider_and_audiences.is_some(),
            raw.requires_any.is_some(),
            raw.requires_all.is_some(),
            raw.allow_missing_or_failed.is_some(),
            raw.allow_missing.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if set != 1 {
            self.err(
                path,
                "a requirement sets exactly one of provider_name, provider_and_audiences, \
                 requires_any, requires_all, allow_missing, allow_missing_or_failed",
            );
            return None;
        }
        let lookup = |v: &mut Self, p: &str, name: &str| -> Option<usize> {
            let idx = providers.iter().position(|n| n == name);
            if idx.is_none() {
                v.err(p, format!("unknown provider {name:?}"));
            }
            idx
        };
        if let Some(name) = raw.provider_name {
            return lookup(self, &format!("{path}.provider_name"), &name).map(|provider| {
                Requirement::Provider {
                    provider,
                    audiences: None,
                }
            });
        }
        if let Some(pa) = raw.provider_and_audiences {
            let p = format!("{path}.provider_and_audiences");
            if pa.audiences.iter().any(String::is_empty) {
                self.err(format!("{p}.audiences"), "audience is empty");
            }
            return lookup(self, &format!("{p}.provider_name"), &pa.provider_name).map(
                |provider| Requirement::Provider {
                    provider,
                    audiences: Some(pa.audiences),
                },
            );
        }
        let list = |v: &mut Self, p: String, l: RawRequirementList| -> Option<Vec<Requirement>> {
            if l.requirements.len() < 2 {
                v.err(format!("{p}.requirements"), "needs at least 2 requirements");
            }
            let before = v.errors.len();
            let out: Vec<Requirement> = l
                .requirements
                .into_iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    v.requirement(&format!("{p}.requirements[{i}]"), r, providers, depth + 1)
                })
                .collect();
            (v.errors.len() == before).then_some(out)
        };
        if let Some(l) = raw.requires_any {
            return list(self, format!("{path}.requires_any"), l).map(Requirement::Any);
        }
        if let Some(l) = raw.requires_all {
            return list(self, format!("{path}.requires_all"), l).map(Requirement::All);
        }
        if raw.allow_missing_or_failed.is_some() {
            return Some(Requirement::AllowMissingOrFailed);
        }
        Some(Requirement::AllowMissing)
    }
}

#[cfg(test)]
mod tests;
