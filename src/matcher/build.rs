//! The JSON form of Envoy's `RouteMatch`, `HeaderMatcher` and `StringMatcher`
//! as a configuration writes them, and the builders that turn it into the
//! matchers of this module, reporting every problem (with its JSON path)
//! into the configuration's diagnostics list.

use serde_json::Value;

use crate::diag::{self, ConfigError};
use crate::header_name::header_name;
use crate::json_read::{self as read, Obj, Read};
use crate::warning::{Kind, Warning};

use super::{HeaderMatcher, PathMatcher, QueryMatcher, RouteMatcher, StringMatch};

/// Longest `safe_regex` pattern a configuration may give, in bytes.
pub const MAX_REGEX_LEN: usize = 1024;

#[derive(Default)]
pub(crate) struct RawRouteMatch {
    prefix: Option<String>,
    path: Option<String>,
    safe_regex: Option<RawRegex>,
    headers: Vec<RawHeaderMatcher>,
    case_sensitive: Option<bool>,
    path_separated_prefix: Option<String>,
    query_parameters: Vec<RawQueryParameterMatcher>,
    /// Accepted and ignored, as `jwt_authn`'s rule matcher ignores them.
    grpc: Option<serde_json::Value>,
    tls_context: Option<serde_json::Value>,
    runtime_fraction: Option<serde_json::Value>,
    dynamic_metadata: Option<serde_json::Value>,
    connect_matcher: Option<diag::Empty>,
    path_match_policy: Option<serde_json::Value>,
    /// Accepted and ignored, as `jwt_authn`'s rule matcher ignores them.
    cookies: Option<serde_json::Value>,
    filter_state: Option<serde_json::Value>,
}

struct RawQueryParameterMatcher {
    name: String,
    string_match: Option<RawStringMatcher>,
    present_match: Option<bool>,
}

struct RawRegex {
    regex: String,
    /// Accepted for compatibility with older configs; ignored (as in Envoy).
    #[allow(dead_code)]
    google_re2: Option<serde_json::Value>,
}

#[derive(Default)]
struct RawHeaderMatcher {
    name: String,
    exact_match: Option<String>,
    prefix_match: Option<String>,
    suffix_match: Option<String>,
    contains_match: Option<String>,
    safe_regex_match: Option<RawRegex>,
    present_match: Option<bool>,
    string_match: Option<RawStringMatcher>,
    invert_match: bool,
}

#[derive(Default)]
pub(crate) struct RawStringMatcher {
    exact: Option<String>,
    prefix: Option<String>,
    suffix: Option<String>,
    contains: Option<String>,
    safe_regex: Option<RawRegex>,
    ignore_case: bool,
}

const ROUTE_MATCH_FIELDS: &[&str] = &[
    "prefix",
    "path",
    "safe_regex",
    "headers",
    "case_sensitive",
    "path_separated_prefix",
    "query_parameters",
    "grpc",
    "tls_context",
    "runtime_fraction",
    "dynamic_metadata",
    "connect_matcher",
    "path_match_policy",
    "cookies",
    "filter_state",
];

impl RawRouteMatch {
    /// A rule's `match` as written, at `path`.
    // Configuration time: one copy, called from its readers; filled field
    // by field, so an error drops `r` once (not each field read so far).
    #[inline(never)]
    #[allow(clippy::field_reassign_with_default)]
    pub(crate) fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, ROUTE_MATCH_FIELDS)?;
        let mut r = RawRouteMatch::default();
        r.prefix = o.opt("prefix", read::string)?;
        r.path = o.opt("path", read::string)?;
        r.safe_regex = o.opt("safe_regex", RawRegex::read)?;
        r.headers = o.or_default("headers", |v, p| read::list(v, p, RawHeaderMatcher::read))?;
        r.case_sensitive = o.opt("case_sensitive", read::boolean)?;
        r.path_separated_prefix = o.opt("path_separated_prefix", read::string)?;
        r.query_parameters = o.or_default("query_parameters", |v, p| {
            read::list(v, p, RawQueryParameterMatcher::read)
        })?;
        r.grpc = o.opt("grpc", read::any)?;
        r.tls_context = o.opt("tls_context", read::any)?;
        r.runtime_fraction = o.opt("runtime_fraction", read::any)?;
        r.dynamic_metadata = o.opt("dynamic_metadata", read::any)?;
        r.connect_matcher = o.opt("connect_matcher", read::empty)?;
        r.path_match_policy = o.opt("path_match_policy", read::any)?;
        r.cookies = o.opt("cookies", read::any)?;
        r.filter_state = o.opt("filter_state", read::any)?;
        Ok(r)
    }
}

impl RawQueryParameterMatcher {
    #[inline(never)] // configuration time: one copy, called from its readers
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, &["name", "string_match", "present_match"])?;
        Ok(RawQueryParameterMatcher {
            name: o.req("name", read::string)?,
            string_match: o.opt("string_match", RawStringMatcher::read)?,
            present_match: o.opt("present_match", read::boolean)?,
        })
    }
}

impl RawRegex {
    #[inline(never)] // configuration time: one copy, called from its readers
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, &["regex", "google_re2"])?;
        Ok(RawRegex {
            regex: o.req("regex", read::string)?,
            google_re2: o.opt("google_re2", read::any)?,
        })
    }
}

const HEADER_MATCHER_FIELDS: &[&str] = &[
    "name",
    "exact_match",
    "prefix_match",
    "suffix_match",
    "contains_match",
    "safe_regex_match",
    "present_match",
    "string_match",
    "invert_match",
];

impl RawHeaderMatcher {
    // Configuration time: one copy, called from its readers; filled field
    // by field, so an error drops `r` once (not each field read so far).
    #[inline(never)]
    #[allow(clippy::field_reassign_with_default)]
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, HEADER_MATCHER_FIELDS)?;
        let mut r = RawHeaderMatcher::default();
        r.name = o.req("name", read::string)?;
        r.exact_match = o.opt("exact_match", read::string)?;
        r.prefix_match = o.opt("prefix_match", read::string)?;
        r.suffix_match = o.opt("suffix_match", read::string)?;
        r.contains_match = o.opt("contains_match", read::string)?;
        r.safe_regex_match = o.opt("safe_regex_match", RawRegex::read)?;
        r.present_match = o.opt("present_match", read::boolean)?;
        r.string_match = o.opt("string_match", RawStringMatcher::read)?;
        r.invert_match = o.or_default("invert_match", read::boolean)?;
        Ok(r)
    }
}

impl RawStringMatcher {
    /// A `StringMatcher` as written, at `path`.
    // Configuration time: one copy, called from its readers; filled field
    // by field, so an error drops `r` once (not each field read so far).
    #[inline(never)]
    #[allow(clippy::field_reassign_with_default)]
    pub(crate) fn read(v: &Value, path: &str) -> Read<Self> {
        let fields = &[
            "exact",
            "prefix",
            "suffix",
            "contains",
            "safe_regex",
            "ignore_case",
        ];
        let o = Obj::new(v, path, fields)?;
        let mut r = RawStringMatcher::default();
        r.exact = o.opt("exact", read::string)?;
        r.prefix = o.opt("prefix", read::string)?;
        r.suffix = o.opt("suffix", read::string)?;
        r.contains = o.opt("contains", read::string)?;
        r.safe_regex = o.opt("safe_regex", RawRegex::read)?;
        r.ignore_case = o.or_default("ignore_case", read::boolean)?;
        Ok(r)
    }
}

/// A `safe_regex` pattern, anchored as Envoy anchors it (the whole value
/// must match); `path` names the `regex` field.
pub(crate) fn regex(
    path: &str,
    pattern: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<regex_lite::Regex> {
    if pattern.len() > MAX_REGEX_LEN {
        diag::report(
            errors,
            path,
            format!("regex longer than {MAX_REGEX_LEN} bytes"),
        );
        return None;
    }
    match regex_lite::Regex::new(&format!("^(?:{pattern})$")) {
        Ok(r) => Some(r),
        Err(e) => {
            let msg = e.to_string();
            // regex-lite's message ends with the reason, after the pattern.
            let reason = msg.lines().last().unwrap_or("invalid regex").trim();
            diag::report(errors, path, format!("invalid regex: {reason}"));
            None
        }
    }
}

/// The literal kinds a matcher may set, in the order Envoy's proto lists
/// them: `exact`, `prefix`, `suffix`, `contains`.
fn literal_kinds(values: [Option<String>; 4], ignore_case: bool) -> Vec<StringMatch> {
    let [exact, prefix, suffix, contains] = values;
    [
        exact.map(|v| StringMatch::Exact(v, ignore_case)),
        prefix.map(|v| StringMatch::Prefix(v, ignore_case)),
        suffix.map(|v| StringMatch::Suffix(v, ignore_case)),
        contains.map(|v| StringMatch::Contains(v, ignore_case)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// An Envoy `StringMatcher` (exactly one kind, `ignore_case` applying to all
/// but `safe_regex`); `path` is its JSON path.
pub(crate) fn string_matcher(
    path: &str,
    raw: RawStringMatcher,
    errors: &mut Vec<ConfigError>,
) -> Option<StringMatch> {
    let mut kinds = literal_kinds(
        [raw.exact, raw.prefix, raw.suffix, raw.contains],
        raw.ignore_case,
    );
    if let Some(r) = raw.safe_regex {
        kinds.push(StringMatch::Regex(regex(
            &format!("{path}.safe_regex.regex"),
            &r.regex,
            errors,
        )?));
    }
    if kinds.len() != 1 {
        diag::report(
            errors,
            path,
            "exactly one of exact, prefix, suffix, contains or safe_regex is required",
        );
        return None;
    }
    kinds.pop()
}

/// An Envoy route `HeaderMatcher`: the deprecated `*_match` fields or one
/// `string_match`; none at all means "the header is present".
fn header_matcher(
    path: &str,
    raw: RawHeaderMatcher,
    errors: &mut Vec<ConfigError>,
) -> Option<HeaderMatcher> {
    let name = match header_name(&raw.name) {
        Ok(n) => n,
        Err(e) => {
            diag::report(errors, format!("{path}.name"), e);
            return None;
        }
    };
    let mut kinds = literal_kinds(
        [
            raw.exact_match,
            raw.prefix_match,
            raw.suffix_match,
            raw.contains_match,
        ],
        false,
    );
    let mut bad = false;
    if let Some(r) = raw.safe_regex_match {
        match regex(&format!("{path}.safe_regex_match.regex"), &r.regex, errors) {
            Some(re) => kinds.push(StringMatch::Regex(re)),
            None => bad = true,
        }
    }
    if let Some(present) = raw.present_match {
        kinds.push(StringMatch::Present(present));
    }
    if let Some(sm) = raw.string_match {
        kinds.push(string_matcher(&format!("{path}.string_match"), sm, errors)?);
    }
    if bad {
        return None;
    }
    match kinds.len() {
        0 => Some(HeaderMatcher::new(
            name,
            StringMatch::Present(true),
            raw.invert_match,
        )),
        1 => kinds
            .pop()
            .map(|k| HeaderMatcher::new(name, k, raw.invert_match)),
        _ => {
            diag::report(errors, path, "set only one way to match the header");
            None
        }
    }
}

/// A rule's `match`; `path` is its JSON path. Fields `jwt_authn`'s rule
/// matcher ignores are ignored here too, each with a warning.
#[inline(never)] // configuration time: keeps the caller's compiled size (V8 compile memory) down
pub(crate) fn route_match(
    path: &str,
    raw: RawRouteMatch,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<Warning>,
) -> Option<RouteMatcher> {
    let before = errors.len();
    let case_sensitive = raw.case_sensitive.unwrap_or(true);
    if raw.path_match_policy.is_some() {
        diag::report(
            errors,
            format!("{path}.path_match_policy"),
            "path match extensions (URI templates) are not supported; use safe_regex",
        );
    }
    for (field, set) in [
        ("grpc", raw.grpc.is_some()),
        ("tls_context", raw.tls_context.is_some()),
        ("runtime_fraction", raw.runtime_fraction.is_some()),
        ("dynamic_metadata", raw.dynamic_metadata.is_some()),
        ("cookies", raw.cookies.is_some()),
        ("filter_state", raw.filter_state.is_some()),
    ] {
        if set {
            warnings.push(Warning::new(
                Kind::IgnoredMatchField,
                format!("{path}.{field}"),
                "ignored, as jwt_authn's rule matcher ignores it (the rule applies whatever it \
                 says)",
            ));
        }
    }
    let set = [
        raw.prefix.is_some(),
        raw.path.is_some(),
        raw.safe_regex.is_some(),
        raw.path_separated_prefix.is_some(),
        raw.connect_matcher.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    let path_matcher = if set != 1 {
        diag::report(
            errors,
            path,
            "exactly one of prefix, path, safe_regex, path_separated_prefix or \
             connect_matcher is required",
        );
        None
    } else if raw.connect_matcher.is_some() {
        Some(PathMatcher::Connect)
    } else if let Some(p) = raw.path_separated_prefix {
        if p.is_empty() || p.ends_with('/') || p.contains(['?', '#']) {
            diag::report(
                errors,
                format!("{path}.path_separated_prefix"),
                "must be non-empty, without ? or #, and not end with /",
            );
            None
        } else {
            Some(PathMatcher::Separated(p))
        }
    } else if let Some(p) = raw.prefix {
        Some(PathMatcher::Prefix(p))
    } else if let Some(p) = raw.path {
        Some(PathMatcher::Exact(p))
    } else if let Some(r) = raw.safe_regex {
        regex(&format!("{path}.safe_regex.regex"), &r.regex, errors).map(PathMatcher::Regex)
    } else {
        None
    };
    let mut headers = Vec::new();
    for (i, h) in raw.headers.into_iter().enumerate() {
        if let Some(m) = header_matcher(&format!("{path}.headers[{i}]"), h, errors) {
            headers.push(m);
        }
    }
    let mut query = Vec::new();
    for (i, q) in raw.query_parameters.into_iter().enumerate() {
        let qpath = format!("{path}.query_parameters[{i}]");
        if q.name.is_empty() {
            diag::report(errors, format!("{qpath}.name"), "parameter name is empty");
            continue;
        }
        let value = match (q.string_match, q.present_match) {
            (Some(_), Some(_)) => {
                diag::report(
                    errors,
                    &qpath,
                    "set only one of string_match and present_match",
                );
                continue;
            }
            (Some(m), None) => match string_matcher(&format!("{qpath}.string_match"), m, errors) {
                Some(m) => Some(m),
                None => continue,
            },
            // Envoy's router: presence, whatever present_match says.
            (None, _) => None,
        };
        query.push(QueryMatcher {
            name: q.name,
            value,
        });
    }
    if errors.len() != before {
        return None;
    }
    path_matcher.map(|p| RouteMatcher::new(p, case_sensitive, headers).with_query(query))
}
