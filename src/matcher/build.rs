//! The JSON form of Envoy's `RouteMatch`, `HeaderMatcher` and `StringMatcher`
//! as a configuration writes them, and the builders that turn it into the
//! matchers of this module, reporting every problem (with its JSON path)
//! into the configuration's diagnostics list.

use serde::Deserialize;

use crate::diag::{self, ConfigError};
use crate::header_name::header_name;
use crate::warning::{Kind, Warning};

use super::{HeaderMatcher, PathMatcher, QueryMatcher, RouteMatcher, StringMatch};

/// Longest `safe_regex` pattern a configuration may give, in bytes.
pub const MAX_REGEX_LEN: usize = 1024;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouteMatch {
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default, alias = "safeRegex")]
    safe_regex: Option<RawRegex>,
    #[serde(default)]
    headers: Vec<RawHeaderMatcher>,
    #[serde(default, alias = "caseSensitive")]
    case_sensitive: Option<bool>,
    #[serde(default, alias = "pathSeparatedPrefix")]
    path_separated_prefix: Option<String>,
    #[serde(default, alias = "queryParameters")]
    query_parameters: Vec<RawQueryParameterMatcher>,
    /// Accepted and ignored, as `jwt_authn`'s rule matcher ignores them.
    #[serde(default)]
    grpc: Option<serde_json::Value>,
    #[serde(default, alias = "tlsContext")]
    tls_context: Option<serde_json::Value>,
    #[serde(default, alias = "runtimeFraction")]
    runtime_fraction: Option<serde_json::Value>,
    #[serde(default, alias = "dynamicMetadata")]
    dynamic_metadata: Option<serde_json::Value>,
    #[serde(default, alias = "connectMatcher")]
    connect_matcher: Option<diag::Empty>,
    #[serde(default, alias = "pathMatchPolicy")]
    path_match_policy: Option<serde_json::Value>,
    /// Accepted and ignored, as `jwt_authn`'s rule matcher ignores them.
    #[serde(default)]
    cookies: Option<serde_json::Value>,
    #[serde(default, alias = "filterState")]
    filter_state: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueryParameterMatcher {
    name: String,
    #[serde(default, alias = "stringMatch")]
    string_match: Option<RawStringMatcher>,
    #[serde(default, alias = "presentMatch")]
    present_match: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegex {
    regex: String,
    /// Accepted for compatibility with older configs; ignored (as in Envoy).
    #[serde(default, alias = "googleRe2")]
    #[allow(dead_code)]
    google_re2: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaderMatcher {
    name: String,
    #[serde(default, alias = "exactMatch")]
    exact_match: Option<String>,
    #[serde(default, alias = "prefixMatch")]
    prefix_match: Option<String>,
    #[serde(default, alias = "suffixMatch")]
    suffix_match: Option<String>,
    #[serde(default, alias = "containsMatch")]
    contains_match: Option<String>,
    #[serde(default, alias = "safeRegexMatch")]
    safe_regex_match: Option<RawRegex>,
    #[serde(default, alias = "presentMatch")]
    present_match: Option<bool>,
    #[serde(default, alias = "stringMatch")]
    string_match: Option<RawStringMatcher>,
    #[serde(default, alias = "invertMatch")]
    invert_match: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStringMatcher {
    #[serde(default)]
    exact: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    suffix: Option<String>,
    #[serde(default)]
    contains: Option<String>,
    #[serde(default, alias = "safeRegex")]
    safe_regex: Option<RawRegex>,
    #[serde(default, alias = "ignoreCase")]
    ignore_case: bool,
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
