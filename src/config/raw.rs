//! The configuration as written: serde types that refuse unknown fields
//! (with the camelCase spellings proto3 JSON allows), and the parse that
//! turns a syntax or type error into a [`ConfigError`] with its JSON path.

use super::*;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    pub(super) rules: Vec<RawRule>,
    #[serde(default, alias = "bypassCorsPreflight")]
    pub(super) bypass_cors_preflight: bool,
    /// Our addition: default rule mode, `enforce` or `report`.
    #[serde(default)]
    pub(super) mode: Option<OneOf<Mode>>,
    /// Our addition: header set to the outcome on requests let through.
    #[serde(default, alias = "statusHeader")]
    pub(super) status_header: Option<String>,
    /// Our addition: metric name prefix (default `jwt_filter`).
    #[serde(default, alias = "statPrefix")]
    pub(super) stat_prefix: Option<String>,
    /// Our addition: verify RS*/ES* through Envoy's
    /// `verify_signature` when it passes the start-up probe (default true);
    /// false forces the pure-Rust path.
    #[serde(default, alias = "hostCrypto")]
    pub(super) host_crypto: Option<bool>,
    /// Our addition: write the decision, status, reason, provider and
    /// verified payload as filter state for access logs and other filters
    /// (like `jwt_authn`'s `payload_in_metadata`; off by default, it costs
    /// host calls and a JSON serialisation per request).
    #[serde(default, alias = "filterState")]
    pub(super) filter_state: bool,
    /// Our addition: record the decision-time histogram (default true; it
    /// costs two host calls per decision).
    #[serde(default, alias = "decisionHistogram")]
    pub(super) decision_histogram: Option<bool>,
    /// Our addition: `text` (default) or `json` decision log lines.
    #[serde(default, alias = "decisionLogFormat")]
    pub(super) decision_log_format: Option<OneOf<crate::decision_log::Format>>,
    /// Named requirements, for rules' and routes' `requirement_name`.
    #[serde(default, alias = "requirementMap")]
    pub(super) requirement_map: BTreeMap<String, RawRequirement>,
    /// Requirements chosen by a filter state string, when no rule matched.
    #[serde(default, alias = "filterStateRules")]
    pub(super) filter_state_rules: Option<RawFilterStateRule>,
    /// Denials carry no body and no `WWW-Authenticate`.
    #[serde(default, alias = "stripFailureResponse")]
    pub(super) strip_failure_response: bool,
    /// Our addition: the route metadata namespace (`filter_metadata`) whose
    /// `requirement_name` / `disabled` select the requirement per route, as
    /// `jwt_authn`'s per-route config does.
    #[serde(default, alias = "routeMetadataNamespace")]
    pub(super) route_metadata_namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFilterStateRule {
    pub(super) name: String,
    #[serde(default)]
    pub(super) requires: BTreeMap<String, RawRequirement>,
}

/// `jwt_authn`'s `jwt_cache_config`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJwtCacheConfig {
    /// Entries; 0 or absent: the default (100, as Envoy).
    #[serde(default, alias = "jwtCacheSize")]
    pub(super) jwt_cache_size: u32,
    /// Our addition: turn the provider's cache off.
    #[serde(default)]
    pub(super) disabled: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    #[serde(default)]
    pub(super) issuer: Option<String>,
    #[serde(default)]
    pub(super) audiences: Vec<String>,
    #[serde(default, alias = "localJwks")]
    pub(super) local_jwks: Option<RawDataSource>,
    #[serde(default, alias = "remoteJwks")]
    pub(super) remote_jwks: Option<RawRemoteJwks>,
    #[serde(default, alias = "fromHeaders")]
    pub(super) from_headers: Vec<extract::build::RawHeaderLocation>,
    #[serde(default, alias = "fromParams")]
    pub(super) from_params: Vec<String>,
    #[serde(default, alias = "fromCookies")]
    pub(super) from_cookies: Vec<String>,
    #[serde(default)]
    pub(super) forward: bool,
    #[serde(default, alias = "forwardPayloadHeader")]
    pub(super) forward_payload_header: String,
    #[serde(default, alias = "padForwardPayloadHeader")]
    pub(super) pad_forward_payload_header: bool,
    #[serde(default, alias = "claimToHeaders")]
    pub(super) claim_to_headers: Vec<RawClaimToHeader>,
    #[serde(default, alias = "clockSkewSeconds")]
    pub(super) clock_skew_seconds: Option<u32>,
    #[serde(default, alias = "maxLifetime")]
    pub(super) max_lifetime: Option<String>,
    #[serde(default, alias = "requireExpiration")]
    pub(super) require_expiration: bool,
    /// Our addition: which JWS algorithms this provider accepts.
    #[serde(default, alias = "allowedAlgorithms")]
    pub(super) allowed_algorithms: Option<Vec<OneOf<Alg>>>,
    /// Verified-token cache; on by default, unlike `jwt_authn`.
    #[serde(default, alias = "jwtCacheConfig")]
    pub(super) jwt_cache_config: Option<RawJwtCacheConfig>,
    /// A string matcher the token's `sub` must satisfy.
    #[serde(default)]
    pub(super) subjects: Option<RawStringMatcher>,
    /// Accepted: Envoy recomputes the route after every request header the
    /// filter writes, whatever this says (see docs/jwt_authn-fields.md).
    #[serde(default, alias = "clearRouteCache")]
    #[allow(dead_code)]
    pub(super) clear_route_cache: bool,
    /// Refused with the reason: they write dynamic metadata.
    #[serde(default, alias = "payloadInMetadata")]
    pub(super) payload_in_metadata: Option<serde_json::Value>,
    #[serde(default, alias = "headerInMetadata")]
    pub(super) header_in_metadata: Option<serde_json::Value>,
    #[serde(default, alias = "failedStatusInMetadata")]
    pub(super) failed_status_in_metadata: Option<serde_json::Value>,
    #[serde(default, alias = "normalizePayloadInMetadata")]
    pub(super) normalize_payload_in_metadata: Option<serde_json::Value>,
    /// Our addition: DPoP-bound tokens (RFC 9449).
    #[serde(default)]
    pub(super) dpop: Option<dpop::build::RawDpop>,
    /// Our addition: certificate-bound tokens (RFC 8705).
    #[serde(default, alias = "certificateBinding")]
    pub(super) certificate_binding: Option<OneOf<BindingMode>>,
    /// Our addition: the token's `typ` must be `at+jwt` (RFC 9068).
    #[serde(default, alias = "requireAccessTokenType")]
    pub(super) require_access_token_type: bool,
    /// Our addition: refuse an `iat` in the future beyond the clock skew.
    #[serde(default, alias = "rejectFutureIat")]
    pub(super) reject_future_iat: bool,
    /// Our addition: revocation rules from a deny list and/or an SSF stream.
    #[serde(default)]
    #[cfg(feature = "revocation")]
    pub(super) revocation: Option<crate::revocation::build::RawRevocation>,
    /// Built without revocation: the field is refused when given.
    #[cfg(not(feature = "revocation"))]
    pub(super) revocation: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDataSource {
    #[serde(default, alias = "inlineString")]
    pub(super) inline_string: Option<String>,
    /// Refused with the reason: a wasm filter cannot read files.
    #[serde(default)]
    pub(super) filename: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClaimToHeader {
    #[serde(alias = "headerName")]
    pub(super) header_name: String,
    #[serde(alias = "claimName")]
    pub(super) claim_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    #[serde(rename = "match")]
    pub(super) route: RawRouteMatch,
    #[serde(default)]
    pub(super) requires: Option<RawRequirement>,
    /// Our additions: authorization and report mode per rule.
    /// A requirement from `requirement_map`, instead of `requires`.
    #[serde(default, alias = "requirementName")]
    pub(super) requirement_name: Option<String>,
    #[serde(default, alias = "requiredScopes")]
    pub(super) required_scopes: Vec<String>,
    #[serde(default, alias = "requiredClaims")]
    pub(super) required_claims: Vec<crate::authz::RawRequiredClaim>,
    #[serde(default)]
    pub(super) audiences: Vec<String>,
    #[serde(default)]
    pub(super) mode: Option<OneOf<Mode>>,
    /// Our addition: a name for the rule's metrics (`rule` label).
    #[serde(default)]
    pub(super) name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequirement {
    #[serde(default, alias = "providerName")]
    pub(super) provider_name: Option<String>,
    #[serde(default, alias = "providerAndAudiences")]
    pub(super) provider_and_audiences: Option<RawProviderAndAudiences>,
    #[serde(default, alias = "requiresAny")]
    pub(super) requires_any: Option<RawRequirementList>,
    #[serde(default, alias = "requiresAll")]
    pub(super) requires_all: Option<RawRequirementList>,
    #[serde(default, alias = "allowMissingOrFailed")]
    pub(super) allow_missing_or_failed: Option<diag::Empty>,
    #[serde(default, alias = "allowMissing")]
    pub(super) allow_missing: Option<diag::Empty>,
    /// Refused with the reason: it lets unverified claims through.
    #[serde(default, alias = "extractOnlyWithoutValidation")]
    pub(super) extract_only_without_validation: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProviderAndAudiences {
    #[serde(alias = "providerName")]
    pub(super) provider_name: String,
    #[serde(default)]
    pub(super) audiences: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequirementList {
    pub(super) requirements: Vec<RawRequirement>,
}

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
