//! The configuration as written: plain types filled by [`crate::json_read`]
//! from the strictly parsed JSON tree (unknown fields refused, the camelCase
//! spellings proto3 JSON allows accepted, repeated members refused), and the
//! parse that turns a syntax or type error into a [`ConfigError`] with its
//! JSON path.

use serde_json::Value;

use super::json_path::{error_offset, json_path_at, repeated_member};
use super::*;
use crate::strict_json::UniqueValue;

#[derive(Default)]
pub(super) struct RawConfig {
    pub(super) providers: BTreeMap<String, RawProvider>,
    pub(super) rules: Vec<RawRule>,
    pub(super) bypass_cors_preflight: bool,
    /// Our addition: default rule mode, `enforce` or `report`.
    pub(super) mode: Option<OneOf<Mode>>,
    /// Our addition: header set to the outcome on requests let through.
    pub(super) status_header: Option<String>,
    /// Our addition: metric name prefix (default `jwt_filter`).
    pub(super) stat_prefix: Option<String>,
    /// Our addition: verify RS*/ES* through Envoy's
    /// `verify_signature` when it passes the start-up probe (default true);
    /// false forces the pure-Rust path.
    pub(super) host_crypto: Option<bool>,
    /// Our addition: write the decision, status, reason, provider and
    /// verified payload as filter state for access logs and other filters
    /// (like `jwt_authn`'s `payload_in_metadata`; off by default, it costs
    /// host calls and a JSON serialisation per request).
    pub(super) filter_state: bool,
    /// Our addition: record the decision-time histogram (default true; it
    /// costs two host calls per decision).
    pub(super) decision_histogram: Option<bool>,
    /// Our addition: `text` (default) or `json` decision log lines.
    pub(super) decision_log_format: Option<OneOf<crate::decision_log::Format>>,
    /// Named requirements, for rules' and routes' `requirement_name`.
    pub(super) requirement_map: BTreeMap<String, RawRequirement>,
    /// Requirements chosen by a filter state string, when no rule matched.
    pub(super) filter_state_rules: Option<RawFilterStateRule>,
    /// Denials carry no body and no `WWW-Authenticate`.
    pub(super) strip_failure_response: bool,
    /// Our addition: the route metadata namespace (`filter_metadata`) whose
    /// `requirement_name` / `disabled` select the requirement per route, as
    /// `jwt_authn`'s per-route config does.
    pub(super) route_metadata_namespace: Option<String>,
}

pub(super) struct RawFilterStateRule {
    pub(super) name: String,
    pub(super) requires: BTreeMap<String, RawRequirement>,
}

/// `jwt_authn`'s `jwt_cache_config`.
#[derive(Default)]
pub(super) struct RawJwtCacheConfig {
    /// Entries; 0 or absent: the default (100, as Envoy).
    pub(super) jwt_cache_size: u32,
    /// Our addition: turn the provider's cache off.
    pub(super) disabled: bool,
}

#[derive(Default)]
pub(super) struct RawProvider {
    pub(super) issuer: Option<String>,
    pub(super) audiences: Vec<String>,
    pub(super) local_jwks: Option<RawDataSource>,
    pub(super) remote_jwks: Option<RawRemoteJwks>,
    pub(super) from_headers: Vec<extract::build::RawHeaderLocation>,
    pub(super) from_params: Vec<String>,
    pub(super) from_cookies: Vec<String>,
    pub(super) forward: bool,
    pub(super) forward_payload_header: String,
    pub(super) pad_forward_payload_header: bool,
    pub(super) claim_to_headers: Vec<RawClaimToHeader>,
    pub(super) clock_skew_seconds: Option<u32>,
    pub(super) max_lifetime: Option<String>,
    pub(super) require_expiration: bool,
    /// Our addition: which JWS algorithms this provider accepts.
    pub(super) allowed_algorithms: Option<Vec<OneOf<Alg>>>,
    /// Verified-token cache; on by default, unlike `jwt_authn`.
    pub(super) jwt_cache_config: Option<RawJwtCacheConfig>,
    /// A string matcher the token's `sub` must satisfy.
    pub(super) subjects: Option<RawStringMatcher>,
    /// Accepted: Envoy recomputes the route after every request header the
    /// filter writes, whatever this says (see docs/jwt_authn-fields.md).
    #[allow(dead_code)]
    pub(super) clear_route_cache: bool,
    /// Refused with the reason: they write dynamic metadata.
    pub(super) payload_in_metadata: Option<serde_json::Value>,
    pub(super) header_in_metadata: Option<serde_json::Value>,
    pub(super) failed_status_in_metadata: Option<serde_json::Value>,
    pub(super) normalize_payload_in_metadata: Option<serde_json::Value>,
    /// Our addition: DPoP-bound tokens (RFC 9449).
    pub(super) dpop: Option<dpop::build::RawDpop>,
    /// Our addition: certificate-bound tokens (RFC 8705).
    pub(super) certificate_binding: Option<OneOf<BindingMode>>,
    /// Our addition: the token's `typ` must be `at+jwt` (RFC 9068).
    pub(super) require_access_token_type: bool,
    /// Our addition: refuse an `iat` in the future beyond the clock skew.
    pub(super) reject_future_iat: bool,
    /// Our addition: revocation rules from a deny list and/or an SSF stream.
    #[cfg(feature = "revocation")]
    pub(super) revocation: Option<crate::revocation::build::RawRevocation>,
    /// Built without revocation: the field is refused when given.
    #[cfg(not(feature = "revocation"))]
    pub(super) revocation: Option<serde_json::Value>,
}

pub(super) struct RawDataSource {
    pub(super) inline_string: Option<String>,
    /// Refused with the reason: a wasm filter cannot read files.
    pub(super) filename: Option<serde_json::Value>,
}

pub(super) struct RawClaimToHeader {
    pub(super) header_name: String,
    pub(super) claim_name: String,
}

#[derive(Default)]
pub(super) struct RawRule {
    pub(super) route: RawRouteMatch,
    pub(super) requires: Option<RawRequirement>,
    /// Our additions: authorization and report mode per rule.
    /// A requirement from `requirement_map`, instead of `requires`.
    pub(super) requirement_name: Option<String>,
    pub(super) required_scopes: Vec<String>,
    pub(super) required_claims: Vec<crate::authz::RawRequiredClaim>,
    pub(super) audiences: Vec<String>,
    pub(super) mode: Option<OneOf<Mode>>,
    /// Our addition: a name for the rule's metrics (`rule` label).
    pub(super) name: Option<String>,
}

#[derive(Default)]
pub(super) struct RawRequirement {
    pub(super) provider_name: Option<String>,
    pub(super) provider_and_audiences: Option<RawProviderAndAudiences>,
    pub(super) requires_any: Option<RawRequirementList>,
    pub(super) requires_all: Option<RawRequirementList>,
    pub(super) allow_missing_or_failed: Option<diag::Empty>,
    pub(super) allow_missing: Option<diag::Empty>,
    /// Refused with the reason: it lets unverified claims through.
    pub(super) extract_only_without_validation: Option<serde_json::Value>,
}

pub(super) struct RawProviderAndAudiences {
    pub(super) provider_name: String,
    pub(super) audiences: Vec<String>,
}

pub(super) struct RawRequirementList {
    pub(super) requirements: Vec<RawRequirement>,
}

use crate::json_read::{self as read, Obj, Read};

const CONFIG_FIELDS: &[&str] = &[
    "providers",
    "rules",
    "bypass_cors_preflight",
    "mode",
    "status_header",
    "stat_prefix",
    "host_crypto",
    "filter_state",
    "decision_histogram",
    "decision_log_format",
    "requirement_map",
    "filter_state_rules",
    "strip_failure_response",
    "route_metadata_namespace",
];

impl RawConfig {
    // Configuration time: one copy, called from its readers; filled field
    // by field, so an error drops `r` once (not each field read so far).
    #[inline(never)]
    #[allow(clippy::field_reassign_with_default)]
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, CONFIG_FIELDS)?;
        let mut r = RawConfig::default();
        r.providers = o.or_default("providers", |v, p| read::map(v, p, RawProvider::read))?;
        r.rules = o.or_default("rules", |v, p| read::list(v, p, RawRule::read))?;
        r.bypass_cors_preflight = o.or_default("bypass_cors_preflight", read::boolean)?;
        r.mode = o.opt("mode", Mode::read)?;
        r.status_header = o.opt("status_header", read::string)?;
        r.stat_prefix = o.opt("stat_prefix", read::string)?;
        r.host_crypto = o.opt("host_crypto", read::boolean)?;
        r.filter_state = o.or_default("filter_state", read::boolean)?;
        r.decision_histogram = o.opt("decision_histogram", read::boolean)?;
        r.decision_log_format = o.opt("decision_log_format", crate::decision_log::Format::read)?;
        r.requirement_map = o.or_default("requirement_map", |v, p| {
            read::map(v, p, RawRequirement::read)
        })?;
        r.filter_state_rules = o.opt("filter_state_rules", RawFilterStateRule::read)?;
        r.strip_failure_response = o.or_default("strip_failure_response", read::boolean)?;
        r.route_metadata_namespace = o.opt("route_metadata_namespace", read::string)?;
        Ok(r)
    }
}

impl RawFilterStateRule {
    #[inline(never)] // configuration time: one copy, called from its readers
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, &["name", "requires"])?;
        Ok(RawFilterStateRule {
            name: o.req("name", read::string)?,
            requires: o.or_default("requires", |v, p| read::map(v, p, RawRequirement::read))?,
        })
    }
}

impl RawJwtCacheConfig {
    #[inline(never)] // configuration time: one copy, called from its readers
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, &["jwt_cache_size", "disabled"])?;
        Ok(RawJwtCacheConfig {
            jwt_cache_size: o.or_default("jwt_cache_size", read::u32)?,
            disabled: o.or_default("disabled", read::boolean)?,
        })
    }
}

const PROVIDER_FIELDS: &[&str] = &[
    "issuer",
    "audiences",
    "local_jwks",
    "remote_jwks",
    "from_headers",
    "from_params",
    "from_cookies",
    "forward",
    "forward_payload_header",
    "pad_forward_payload_header",
    "claim_to_headers",
    "clock_skew_seconds",
    "max_lifetime",
    "require_expiration",
    "allowed_algorithms",
    "jwt_cache_config",
    "subjects",
    "clear_route_cache",
    "payload_in_metadata",
    "header_in_metadata",
    "failed_status_in_metadata",
    "normalize_payload_in_metadata",
    "dpop",
    "certificate_binding",
    "require_access_token_type",
    "reject_future_iat",
    "revocation",
];

impl RawProvider {
    // Configuration time: one copy, called from its readers; filled field
    // by field, so an error drops `r` once (not each field read so far).
    #[inline(never)]
    #[allow(clippy::field_reassign_with_default)]
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, PROVIDER_FIELDS)?;
        let mut r = RawProvider::default();
        r.issuer = o.opt("issuer", read::string)?;
        r.audiences = o.or_default("audiences", read::strings)?;
        r.local_jwks = o.opt("local_jwks", RawDataSource::read)?;
        r.remote_jwks = o.opt("remote_jwks", RawRemoteJwks::read)?;
        r.from_headers = o.or_default("from_headers", |v, p| {
            read::list(v, p, extract::build::RawHeaderLocation::read)
        })?;
        r.from_params = o.or_default("from_params", read::strings)?;
        r.from_cookies = o.or_default("from_cookies", read::strings)?;
        r.forward = o.or_default("forward", read::boolean)?;
        r.forward_payload_header = o.or_default("forward_payload_header", read::string)?;
        r.pad_forward_payload_header = o.or_default("pad_forward_payload_header", read::boolean)?;
        r.claim_to_headers = o.or_default("claim_to_headers", |v, p| {
            read::list(v, p, RawClaimToHeader::read)
        })?;
        r.clock_skew_seconds = o.opt("clock_skew_seconds", read::u32)?;
        r.max_lifetime = o.opt("max_lifetime", read::string)?;
        r.require_expiration = o.or_default("require_expiration", read::boolean)?;
        r.allowed_algorithms = o.opt("allowed_algorithms", |v, p| read::list(v, p, Alg::read))?;
        r.jwt_cache_config = o.opt("jwt_cache_config", RawJwtCacheConfig::read)?;
        r.subjects = o.opt("subjects", RawStringMatcher::read)?;
        r.clear_route_cache = o.or_default("clear_route_cache", read::boolean)?;
        r.payload_in_metadata = o.opt("payload_in_metadata", read::any)?;
        r.header_in_metadata = o.opt("header_in_metadata", read::any)?;
        r.failed_status_in_metadata = o.opt("failed_status_in_metadata", read::any)?;
        r.normalize_payload_in_metadata = o.opt("normalize_payload_in_metadata", read::any)?;
        r.dpop = o.opt("dpop", dpop::build::RawDpop::read)?;
        r.certificate_binding = o.opt("certificate_binding", BindingMode::read)?;
        r.require_access_token_type = o.or_default("require_access_token_type", read::boolean)?;
        r.reject_future_iat = o.or_default("reject_future_iat", read::boolean)?;
        #[cfg(feature = "revocation")]
        {
            r.revocation = o.opt("revocation", crate::revocation::build::RawRevocation::read)?;
        }
        #[cfg(not(feature = "revocation"))]
        {
            r.revocation = o.opt("revocation", read::any)?;
        }
        Ok(r)
    }
}

impl RawDataSource {
    #[inline(never)] // configuration time: one copy, called from its readers
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, &["inline_string", "filename"])?;
        Ok(RawDataSource {
            inline_string: o.opt("inline_string", read::string)?,
            filename: o.opt("filename", read::any)?,
        })
    }
}

impl RawClaimToHeader {
    #[inline(never)] // configuration time: one copy, called from its readers
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, &["header_name", "claim_name"])?;
        Ok(RawClaimToHeader {
            header_name: o.req("header_name", read::string)?,
            claim_name: o.req("claim_name", read::string)?,
        })
    }
}

const RULE_FIELDS: &[&str] = &[
    "match",
    "requires",
    "requirement_name",
    "required_scopes",
    "required_claims",
    "audiences",
    "mode",
    "name",
];

impl RawRule {
    // Configuration time: one copy, called from its readers; filled field
    // by field, so an error drops `r` once (not each field read so far).
    #[inline(never)]
    #[allow(clippy::field_reassign_with_default)]
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, RULE_FIELDS)?;
        let mut r = RawRule::default();
        r.route = o.req("match", RawRouteMatch::read)?;
        r.requires = o.opt("requires", RawRequirement::read)?;
        r.requirement_name = o.opt("requirement_name", read::string)?;
        r.required_scopes = o.or_default("required_scopes", read::strings)?;
        r.required_claims = o.or_default("required_claims", |v, p| {
            read::list(v, p, crate::authz::RawRequiredClaim::read)
        })?;
        r.audiences = o.or_default("audiences", read::strings)?;
        r.mode = o.opt("mode", Mode::read)?;
        r.name = o.opt("name", read::string)?;
        Ok(r)
    }
}

const REQUIREMENT_FIELDS: &[&str] = &[
    "provider_name",
    "provider_and_audiences",
    "requires_any",
    "requires_all",
    "allow_missing_or_failed",
    "allow_missing",
    "extract_only_without_validation",
];

impl RawRequirement {
    // Configuration time: one copy, called from its readers; filled field
    // by field, so an error drops `r` once (not each field read so far).
    #[inline(never)]
    #[allow(clippy::field_reassign_with_default)]
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, REQUIREMENT_FIELDS)?;
        let list = RawRequirementList::read;
        let mut r = RawRequirement::default();
        r.provider_name = o.opt("provider_name", read::string)?;
        r.provider_and_audiences =
            o.opt("provider_and_audiences", RawProviderAndAudiences::read)?;
        r.requires_any = o.opt("requires_any", list)?;
        r.requires_all = o.opt("requires_all", list)?;
        r.allow_missing_or_failed = o.opt("allow_missing_or_failed", read::empty)?;
        r.allow_missing = o.opt("allow_missing", read::empty)?;
        r.extract_only_without_validation = o.opt("extract_only_without_validation", read::any)?;
        Ok(r)
    }
}

impl RawProviderAndAudiences {
    #[inline(never)] // configuration time: one copy, called from its readers
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, &["provider_name", "audiences"])?;
        Ok(RawProviderAndAudiences {
            provider_name: o.req("provider_name", read::string)?,
            audiences: o.or_default("audiences", read::strings)?,
        })
    }
}

impl RawRequirementList {
    #[inline(never)] // configuration time: one copy, called from its readers
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, &["requirements"])?;
        Ok(RawRequirementList {
            requirements: o.req("requirements", |v, p| {
                read::list(v, p, RawRequirement::read)
            })?,
        })
    }
}

#[inline(never)] // configuration time: keeps the caller's compiled size (V8 compile memory) down
pub(super) fn parse_raw(json: &[u8]) -> Result<RawConfig, Vec<ConfigError>> {
    let trimmed = json.trim_ascii();
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
    // Read strictly: a member repeated in any object is refused (the last
    // one would otherwise win silently), at the path of the repeated member.
    let doc = match serde_json::from_slice::<UniqueValue>(trimmed) {
        Ok(UniqueValue(doc)) => doc,
        Err(e) => {
            let at = error_offset(trimmed, e.line(), e.column());
            // A repeated member is a data error of the strict reader; a syntax
            // error is reported where it is, whatever follows it.
            let repeated = if e.is_data() {
                repeated_member(trimmed)
            } else {
                None
            };
            let error = match repeated {
                Some((path, name)) => ConfigError {
                    path,
                    message: format!("duplicate member `{name}`"),
                },
                None => ConfigError {
                    path: json_path_at(trimmed, at),
                    message: e.to_string(),
                },
            };
            return Err(vec![error]);
        }
    };
    RawConfig::read(&doc, "").map_err(|e| vec![e])
}
